"""What monitoring has read of each lake (lifecycle.lake_manifest): per file, its size and
modification time, and per file and hour the rows it holds (prediction files) or the labels
it brings to each prediction hour (label files). A run lists its windows from these and
reads only files that are new or changed: a new day costs a day, not the history.
"""

NAME = "lake manifest: files read and their rows per hour"

STATEMENTS = [
    """
    CREATE TABLE lake_files (
        model_name VARCHAR NOT NULL,
        kind       VARCHAR NOT NULL,
        path       VARCHAR NOT NULL,
        size       BIGINT NOT NULL,
        mtime_ns   BIGINT NOT NULL,
        read_at    TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_name, kind, path)
    )
    """,
    """
    CREATE TABLE lake_hours (
        model_name    VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        path          VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        variant       VARCHAR NOT NULL,
        hour          TIMESTAMPTZ NOT NULL,
        rows          BIGINT NOT NULL,
        batch_id      BIGINT NOT NULL
    )
    """,
]
