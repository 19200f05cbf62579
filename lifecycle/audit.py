"""The append-only audit trail. Rows are only ever inserted, inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

import duckdb


def append_audit(
    cur: duckdb.DuckDBPyConnection,
    *,
    actor: str,
    action: str,
    model_name: str | None = None,
    version: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> int:
    """Insert one audit row in the current transaction and return its id."""
    if not actor or not actor.strip():
        raise ValueError("an audited action needs a named actor")
    row = cur.execute(
        "INSERT INTO audit_log VALUES (nextval('audit_seq'), now(), ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING audit_id",
        [
            actor,
            action,
            model_name,
            version,
            from_state,
            to_state,
            reason,
            json.dumps(evidence or {}, default=str, sort_keys=True),
        ],
    ).fetchall()
    return int(row[0][0])
