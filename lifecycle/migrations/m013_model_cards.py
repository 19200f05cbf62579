"""Governance: model cards per version, append-only revisions (lifecycle.model_card).

A card comes with the version's spec (revision 1, written in the registration's transaction)
or is written later; each write is a new revision with its author, time and reason, so the
card a reviewer approved stays readable beside the newer ones.
"""

NAME = "governance: model card revisions per version"

STATEMENTS = [
    """
    CREATE TABLE model_cards (
        model_name  VARCHAR NOT NULL,
        version     VARCHAR NOT NULL,
        revision    INTEGER NOT NULL,
        card        JSON NOT NULL,
        written_by  VARCHAR NOT NULL,
        written_at  TIMESTAMPTZ NOT NULL,
        reason      VARCHAR NOT NULL,
        PRIMARY KEY (model_name, version, revision)
    )
    """,
]
