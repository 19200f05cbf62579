"""Logs read in place (lifecycle.lake): the stored log tables become `logged_*`, and
`predictions`, `labels` and `business_events` become views over them (and, once a model
declares an external source, over its lake as well). Readers keep their names; writers
(ingest) append to the `logged_*` tables.
"""

NAME = "logs read in place: external sources, log views over stored and lake rows"

STATEMENTS = [
    "ALTER TABLE predictions RENAME TO logged_predictions",
    "ALTER TABLE labels RENAME TO logged_labels",
    "ALTER TABLE business_events RENAME TO logged_business_events",
    "CREATE VIEW predictions AS SELECT prediction_id, request_id, model_name, model_version, "
    "ts, variant, prediction, predicted_label, latency_ms, status, segment, batch_id "
    "FROM logged_predictions",
    "CREATE VIEW labels AS SELECT prediction_id, model_name, actual_value, actual_label, "
    "labeled_at, batch_id FROM logged_labels",
    "CREATE VIEW business_events AS SELECT model_name, prediction_id, ts, kpi, value, batch_id "
    "FROM logged_business_events",
    """
    CREATE TABLE external_sources (
        model_name  VARCHAR NOT NULL,
        kind        VARCHAR NOT NULL,
        settings    JSON NOT NULL,
        declared_in VARCHAR NOT NULL,
        updated_at  TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_name, kind)
    )
    """,
]
