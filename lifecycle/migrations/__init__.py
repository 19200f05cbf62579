"""Versioned schema migrations, applied in order on open.

A migration, once committed, is never edited: a schema change is a new module appended to
MIGRATIONS. The list position is the schema version (1-based); `schema_version` in the
database records which ones ran.
"""

from lifecycle.migrations import m001_logs, m002_governance, m003_monitoring

MIGRATIONS: list[tuple[str, list[str]]] = [
    (m001_logs.NAME, m001_logs.STATEMENTS),
    (m002_governance.NAME, m002_governance.STATEMENTS),
    (m003_monitoring.NAME, m003_monitoring.STATEMENTS),
]
