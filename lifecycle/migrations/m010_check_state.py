"""Alerts: what each model's last check saw, so the next one evaluates only what changed.

One row per model, written at the end of a check in the same transaction as nothing else
(a check that dies before it leaves the previous row, and the next check re-evaluates the
same changes again; evaluation is idempotent). lifecycle.alerts.incremental reads it.
"""

NAME = "alerts: per-model check watermarks for incremental evaluation"

STATEMENTS = [
    """
    CREATE TABLE check_state (
        model_name        VARCHAR PRIMARY KEY,
        as_of             TIMESTAMPTZ NOT NULL,
        batch_watermark   BIGINT NOT NULL,
        results_watermark TIMESTAMPTZ NOT NULL,
        settings_digest   VARCHAR NOT NULL,
        updated_at        TIMESTAMPTZ NOT NULL
    )
    """,
]
