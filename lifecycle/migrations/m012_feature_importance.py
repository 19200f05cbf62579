"""Monitoring: each version's feature-importance profile (lifecycle.importance).

Computed once per version from its reference by the monitoring run; pages and reports show
it beside drift findings. A profile that could not be computed is one row with `feature`
NULL and the reason.
"""

NAME = "monitoring: feature-importance profile per version"

STATEMENTS = [
    """
    CREATE TABLE feature_importance (
        model_name    VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        feature       VARCHAR,
        share         DOUBLE,
        fidelity      DOUBLE,
        method        VARCHAR NOT NULL,
        reason        VARCHAR,
        computed_at   TIMESTAMPTZ NOT NULL
    )
    """,
]
