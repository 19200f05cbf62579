"""Registry: who asked for the current review and the quorum it started with.

Four-eyes compares an approver with the requester too, and a pending review keeps the quorum
of the risk tier it was requested under (a later tier change does not lower it). Versions
already under review get both from their latest `request_approval` audit row.
"""

NAME = "registry: review requester and quorum"

STATEMENTS = [
    "ALTER TABLE model_versions ADD COLUMN review_requested_by VARCHAR",
    "ALTER TABLE model_versions ADD COLUMN review_quorum INTEGER",
    """
    UPDATE model_versions SET review_requested_by = a.actor,
        review_quorum = TRY_CAST(json_extract_string(a.evidence, '$.quorum') AS INTEGER)
    FROM (
        SELECT model_name, version, actor, evidence,
               row_number() OVER (PARTITION BY model_name, version
                                  ORDER BY ts DESC, audit_id DESC) AS rn
        FROM audit_log WHERE action = 'request_approval'
    ) a
    WHERE a.rn = 1 AND a.model_name = model_versions.model_name
      AND a.version = model_versions.version
    """,
]
