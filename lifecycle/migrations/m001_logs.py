"""Logs written by serving systems, the model catalogue and the audit trail.

Per-model tables (`features__<model>`, `reference__<model>`) are created when a model's
first version is registered, because their columns come from its feature schema.
"""

NAME = "logs, models, versions, audit log"

STATEMENTS = [
    """
    CREATE TABLE models (
        name        VARCHAR PRIMARY KEY,
        task        VARCHAR NOT NULL,
        owner       VARCHAR NOT NULL,
        risk_tier   VARCHAR NOT NULL,
        description VARCHAR NOT NULL DEFAULT '',
        created_at  TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE model_versions (
        model_name          VARCHAR NOT NULL,
        version             VARCHAR NOT NULL,
        state               VARCHAR NOT NULL,
        registered_by       VARCHAR NOT NULL,
        registered_at       TIMESTAMPTZ NOT NULL,
        spec_toml           VARCHAR NOT NULL,
        spec                JSON NOT NULL,
        training_fingerprint VARCHAR,
        parameters          JSON,
        validation_metrics  JSON,
        reference_rows      BIGINT NOT NULL,
        reference_sha256    VARCHAR NOT NULL,
        revision            INTEGER NOT NULL DEFAULT 0,
        state_changed_at    TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_name, version)
    )
    """,
    """
    CREATE TABLE ingest_batches (
        batch_id     BIGINT PRIMARY KEY,
        model_name   VARCHAR NOT NULL,
        kind         VARCHAR NOT NULL,
        source       VARCHAR NOT NULL,
        row_count    BIGINT NOT NULL,
        received_at  TIMESTAMPTZ NOT NULL,
        min_ts       TIMESTAMPTZ,
        max_ts       TIMESTAMPTZ,
        report       JSON NOT NULL
    )
    """,
    """
    CREATE TABLE predictions (
        prediction_id   VARCHAR NOT NULL,
        request_id      VARCHAR NOT NULL,
        model_name      VARCHAR NOT NULL,
        model_version   VARCHAR NOT NULL,
        ts              TIMESTAMPTZ NOT NULL,
        variant         VARCHAR NOT NULL,
        prediction      DOUBLE,
        predicted_label VARCHAR,
        latency_ms      DOUBLE,
        status          VARCHAR NOT NULL,
        segment         VARCHAR,
        batch_id        BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE labels (
        prediction_id VARCHAR NOT NULL,
        model_name    VARCHAR NOT NULL,
        actual_value  DOUBLE,
        actual_label  VARCHAR,
        labeled_at    TIMESTAMPTZ NOT NULL,
        batch_id      BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE business_events (
        model_name    VARCHAR NOT NULL,
        prediction_id VARCHAR,
        ts            TIMESTAMPTZ NOT NULL,
        kpi           VARCHAR NOT NULL,
        value         DOUBLE NOT NULL,
        batch_id      BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE infra_metrics (
        model_name    VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        variant       VARCHAR NOT NULL,
        ts            TIMESTAMPTZ NOT NULL,
        metric        VARCHAR NOT NULL,
        value         DOUBLE NOT NULL,
        batch_id      BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE audit_log (
        audit_id    BIGINT PRIMARY KEY,
        ts          TIMESTAMPTZ NOT NULL,
        actor       VARCHAR NOT NULL,
        action      VARCHAR NOT NULL,
        model_name  VARCHAR,
        version     VARCHAR,
        from_state  VARCHAR,
        to_state    VARCHAR,
        reason      VARCHAR,
        evidence    JSON
    )
    """,
    "CREATE SEQUENCE audit_seq START 1",
    "CREATE SEQUENCE batch_seq START 1",
]
