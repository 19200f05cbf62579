"""Each lake file's time range (lifecycle.lake_manifest): a prediction file's first and last
`ts`, a label file's first and last `labeled_at`. A page's period then reads only the files
whose range meets it, and the newest time stamp (freshness) only the newest files, instead of
every file of the lake. The manifest is emptied: the next monitoring run reads every file
again and records its range (a manifest is a cache of the lake, never the only copy).
"""

NAME = "lake manifest: each file's time range"

STATEMENTS = [
    "DELETE FROM lake_hours",
    "DROP TABLE lake_files",
    """
    CREATE TABLE lake_files (
        model_name VARCHAR NOT NULL,
        kind       VARCHAR NOT NULL,
        path       VARCHAR NOT NULL,
        size       BIGINT NOT NULL,
        mtime_ns   BIGINT NOT NULL,
        read_at    TIMESTAMPTZ NOT NULL,
        first_ts   TIMESTAMPTZ,
        last_ts    TIMESTAMPTZ,
        PRIMARY KEY (model_name, kind, path)
    )
    """,
]
