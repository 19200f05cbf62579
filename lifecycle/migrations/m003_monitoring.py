"""Stored monitoring results: one row per (model, version, variant, window, check, subject).

Every check (drift, concept, data quality) stores the same shape. `severity` is NULL when
the check had too little data for a verdict (`status` = 'insufficient_data', the reason in
`details`). `input_version` fingerprints the logs and settings a row was computed from, so
a run recomputes only windows whose inputs changed.
"""

NAME = "monitoring results"

STATEMENTS = [
    """
    CREATE TABLE monitor_results (
        model_name     VARCHAR NOT NULL,
        model_version  VARCHAR NOT NULL,
        variant        VARCHAR NOT NULL,
        grain          VARCHAR NOT NULL,
        window_start   TIMESTAMPTZ NOT NULL,
        window_end     TIMESTAMPTZ NOT NULL,
        reference_kind VARCHAR NOT NULL,
        check_name     VARCHAR NOT NULL,
        subject        VARCHAR NOT NULL,
        layer          VARCHAR NOT NULL,
        method         VARCHAR,
        statistic      DOUBLE,
        p_value        DOUBLE,
        p_adjusted     DOUBLE,
        effect_size    DOUBLE,
        threshold      DOUBLE,
        severity       VARCHAR,
        response       VARCHAR,
        n_reference    BIGINT,
        n_current      BIGINT,
        status         VARCHAR NOT NULL,
        details        JSON,
        input_version  BIGINT NOT NULL,
        computed_at    TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_name, model_version, variant, grain, window_start,
                     reference_kind, check_name, subject)
    )
    """,
]
