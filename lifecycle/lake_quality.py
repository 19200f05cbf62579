"""Checks on read for logs kept in a lake: what `ingest` would have refused, reported instead.

Ingestion refuses a batch with unparseable values or duplicate ids before anything is
stored. A lake is written by someone else and read in place, so there is nothing to refuse:
each window gets a `source_read` data-quality result (values of the window's rows that did
not parse as their column's type, duplicate prediction ids), and `source_status` describes
each source as a whole (files, rows, rows that cannot join any window because their id or
timestamp is missing or unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifecycle.drift.results_model import CheckResult
from lifecycle.drift.windows import Window, utc_time
from lifecycle.lake import Source, files, load_sources
from lifecycle.serving_state import SIGNIFICANT_SHARE, rows_severity
from lifecycle.store import quote_ident

CHECK = "source_read"
RESPONSE = {
    "moderate": "investigate the writer of the lake (schema or serialisation change?)",
    "significant": "fix the lake's writer: many rows are unreadable (do not retrain on them)",
}


def source_read_check(cur, window: Window, sources: dict[str, Source]) -> CheckResult | None:
    """The window's unreadable values and duplicate ids (None: predictions not in a lake)."""
    preds = sources.get("predictions")
    if preds is None:
        return None
    where = (
        "model_version = $version AND variant = $variant AND ts >= $start AND ts < $end "
        "AND prediction_id IS NOT NULL"
    )
    params = {"version": window.version, "variant": window.variant,
              "start": utc_time(window.start), "end": utc_time(window.end)}  # fmt: skip
    view = quote_ident(preds.variable)
    window_rows = f"SELECT prediction_id, _bad, _any_bad FROM {view} WHERE {where}"
    per_source = [window_rows]
    if (feats := sources.get("features")) is not None:
        per_source.append(
            f"SELECT prediction_id, _bad, _any_bad FROM {quote_ident(feats.variable)} "
            f"WHERE prediction_id IN (SELECT prediction_id FROM ({window_rows}))"
        )
    rows, distinct = cur.execute(
        f"SELECT count(*), count(DISTINCT prediction_id) FROM ({window_rows})", params
    ).fetchall()[0]
    if not rows:
        return None
    every = " UNION ALL ".join(f"SELECT prediction_id, _any_bad FROM ({q})" for q in per_source)
    bad_rows = cur.execute(
        f"SELECT count(DISTINCT prediction_id) FROM ({every}) WHERE _any_bad", params
    ).fetchall()[0][0]
    columns: dict[str, int] = {}
    for query in per_source:
        for name, count in _bad_columns(cur, query, params).items():
            columns[name] = columns.get(name, 0) + count
    duplicates = rows - distinct
    flagged = min(rows, bad_rows + duplicates)
    return _result(window, preds, rows, flagged, columns, duplicates)


def _bad_columns(cur, query: str, params: dict) -> dict[str, int]:
    """Unreadable values per column among `query`'s rows (their `_bad` flags), most first."""
    result = cur.execute(
        f"SELECT sum(CAST(COLUMNS(*) AS BIGINT)) FROM (SELECT unnest(_bad) FROM ({query}))",
        params,
    )
    names = [d[0] for d in result.description]
    counts = result.fetchall()[0]
    found = {n: int(c) for n, c in zip(names, counts, strict=True) if c and n != "_none"}
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def _result(window, source, rows, flagged, columns, duplicates) -> CheckResult:
    share = flagged / rows
    severity = rows_severity(flagged, rows)
    parts = [f"{n:,} unreadable {name}" for name, n in columns.items()]
    if duplicates:
        parts.append(f"{duplicates:,} duplicate prediction id(s)")
    return CheckResult(
        check=CHECK,
        subject=f"{source.format} source",
        method="values parsed on read",
        statistic=share,  # the quality tier's statistic is the affected share of rows
        effect_size=share,
        threshold=SIGNIFICANT_SHARE,
        severity=severity,
        response=RESPONSE.get(severity),
        n_current=int(rows),
        details={
            "source": source.path,
            "affected_rows": int(flagged),
            "unreadable": columns,
            "duplicate_ids": int(duplicates),
            "summary": (
                f"{flagged:,} of {rows:,} row(s) read with problems: {', '.join(parts)}"
                if flagged
                else f"all {rows:,} row(s) read cleanly"
            ),
        },
    )


@dataclass
class SourceStatus:
    model: str
    kind: str
    format: str
    path: str
    files: int
    rows: int
    unusable_rows: int  # no id, version, variant or time stamp: in no window
    unreadable: dict[str, int]
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def source_status(cur, model: str | None = None) -> list[SourceStatus]:
    """Every external source read now (a whole-lake scan: for the CLI and the Data page)."""
    out = []
    for s in load_sources(cur, model):
        found = files(s)
        count = 0 if found is None else (len(found) if isinstance(found, list) else None)
        if found is None:
            out.append(SourceStatus(s.model, s.kind, s.format, s.path, 0, 0, 0, {},
                                    "no files: the source is empty or unreachable"))  # fmt: skip
            continue
        key = {"predictions": "ts IS NULL OR prediction_id IS NULL OR model_version IS NULL "
                              "OR variant IS NULL",
               "labels": "labeled_at IS NULL OR prediction_id IS NULL",
               "business": "ts IS NULL OR kpi IS NULL OR value IS NULL",
               "features": "prediction_id IS NULL"}[s.kind]  # fmt: skip
        view = quote_ident(s.variable)
        rows, unusable, nfiles = cur.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {key}), count(DISTINCT _file) FROM {view}"
        ).fetchall()[0]
        unreadable = _bad_columns(cur, f"SELECT _bad FROM {view}", {})
        out.append(SourceStatus(s.model, s.kind, s.format, s.path, count or int(nfiles),
                                int(rows), int(unusable), unreadable))  # fmt: skip
    return out


def declared_sources(store, model: str) -> list[dict[str, Any]]:
    """The model's external sources as declared (kind, format, path): cheap, no scan."""
    with store.cursor() as cur:
        return [
            {"kind": s.kind, "format": s.format, "path": s.path} for s in load_sources(cur, model)
        ]


def status_frame(store, model: str):
    """source_status of one model as a table for pages (reads every file of its lake)."""
    import pandas as pd

    with store.cursor() as cur:
        found = source_status(cur, model)
    return pd.DataFrame(
        [
            {"log": s.kind, "format": s.format, "files": s.files, "rows": s.rows,
             "rows in no window": s.unusable_rows,
             "unreadable values": ", ".join(f"{c}: {n:,}" for c, n in s.unreadable.items())
             or "none", "problem": s.problem or ""}
            for s in found
        ]
    )  # fmt: skip
