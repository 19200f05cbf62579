"""Governance: deployment pointer per model, approvals and rollout history."""

NAME = "governance: deployments, approvals, rollouts"

STATEMENTS = [
    # One row per model: which version serves production, which one is on standby or in
    # canary. Updated only with a compare-and-swap on `revision`, which keeps "exactly one
    # production version per model" true under concurrent writers.
    """
    CREATE TABLE deployments (
        model_name          VARCHAR PRIMARY KEY,
        production_version  VARCHAR,
        previous_version    VARCHAR,
        canary_version      VARCHAR,
        canary_share        DOUBLE,
        revision            INTEGER NOT NULL DEFAULT 0,
        updated_at          TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE approvals (
        model_name  VARCHAR NOT NULL,
        version     VARCHAR NOT NULL,
        reviewer    VARCHAR NOT NULL,
        decision    VARCHAR NOT NULL,
        reason      VARCHAR,
        decided_at  TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE rollouts (
        model_name    VARCHAR NOT NULL,
        version       VARCHAR NOT NULL,
        variant       VARCHAR NOT NULL,
        traffic_share DOUBLE NOT NULL,
        started_at    TIMESTAMPTZ NOT NULL,
        actor         VARCHAR NOT NULL
    )
    """,
]
