"""Ingestion: content hashes of loaded files, so a landing folder never loads a file twice.

`python -m lifecycle watch` (lifecycle/watch.py) records each file's sha256 here in the same
transaction as its batch; a file whose hash is recorded for the same model and kind is
skipped as a duplicate, even when the watcher died between the commit and moving the file.
"""

NAME = "ingestion: sha256 of each file loaded from a landing folder"

STATEMENTS = [
    """
    CREATE TABLE loaded_files (
        model_name  VARCHAR NOT NULL,
        kind        VARCHAR NOT NULL,
        sha256      VARCHAR NOT NULL,
        batch_id    BIGINT NOT NULL,
        source      VARCHAR NOT NULL,
        loaded_at   TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_name, kind, sha256)
    )
    """,
]
