"""Which windows a lake model has, without reading its whole lake on every run.

Listing windows with their fingerprints (rows, labels, newest batch) is an aggregate over
every prediction and label: over a lake that is O(history) on each run, so a new day would
cost as much as the whole past. The manifest (tables `lake_files`, `lake_hours`, m017)
remembers, per file, its size and modification time, and per file and UTC hour the rows it
holds (prediction files) or the labels it brings to each prediction hour (label files).
`refresh` reads only files that are new or changed and forgets files that are gone; windows
of any calendar grain are then sums of hours.

What a new label file costs: its labels are matched with their predictions by id, a scan of
the lake's prediction ids and timestamps (two narrow columns; labels carry no prediction
time). Its rows and everything else are O(new files).

Applies to lake models whose features live in the prediction files (or nowhere) and to
calendar grains; anything else (row-count chunks, features in their own files) is listed by
the general query (lifecycle.drift.windows.list_windows), with the same numbers.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime

from lifecycle import catalog, lake
from lifecycle.drift.windows import WindowInputs, bucket_sql, calendar_inputs, window_filters
from lifecycle.names import GRAINS
from lifecycle.store import Store, feature_table, quote_ident

RAW, TYPED = "_manifest_raw", "_manifest_typed"


def applies(cur, model: str, grain: str) -> bool:
    """Whether the manifest lists this model's `grain` windows."""
    if grain not in GRAINS:
        return False
    sources = lake.external_kinds(cur, model)
    preds, feats = sources.get("predictions"), sources.get("features")
    if preds is None:
        return False
    if feats is not None:
        return (feats.path, feats.format) == (preds.path, preds.format)
    return not _stored_features(cur, model)


def _stored_features(cur, model: str) -> bool:
    table = feature_table(model)
    rows = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()[0][0]
    return bool(rows) and bool(
        cur.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0]
    )


def current_files(source: lake.Source) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of the files the source reads now."""
    found = lake.files(source)
    if found is None:
        return {}
    names = found if isinstance(found, list) else glob.glob(found, recursive=True)
    out = {}
    for name in names:
        try:
            info = os.stat(name)
        except OSError:
            continue
        out[name] = (info.st_size, info.st_mtime_ns)
    return out


def refresh(store: Store, model: str) -> dict[str, int]:
    """Read what is new in the model's lake into the manifest (one transaction); returns
    how many files were read per kind."""
    with store.write_lock(), store.transaction() as cur:
        sources = lake.external_kinds(cur, model)
        task = catalog.model_info(cur, model)["task"]
        features = catalog.logged_features(cur, model)
        preds = sources["predictions"]
        new_preds, changed = _sync_files(cur, model, "predictions", current_files(preds))
        if changed:  # a prediction file rewritten or gone: labels may point elsewhere now
            cur.execute("DELETE FROM lake_hours WHERE model_name = ? AND kind = 'labels'", [model])
            cur.execute("DELETE FROM lake_files WHERE model_name = ? AND kind = 'labels'", [model])
        if new_preds:
            _read_predictions(cur, model, preds, new_preds, task, features)
        new_labels: list[str] = []
        if (labels := sources.get("labels")) is not None:
            new_labels, _ = _sync_files(cur, model, "labels", current_files(labels))
            if new_labels:
                _read_labels(cur, model, labels, new_labels, task, features)
        cur.execute(f"DROP VIEW IF EXISTS {TYPED}")
        cur.execute(f"DROP TABLE IF EXISTS {RAW}")
    return {"predictions": len(new_preds), "labels": len(new_labels)}


def _sync_files(cur, model: str, kind: str, now: dict[str, tuple[int, int]]):
    """Forget files gone or changed; record the new ones. Returns (paths to read, whether
    any known file was changed or removed)."""
    known = {
        path: (size, mtime)
        for path, size, mtime in cur.execute(
            "SELECT path, size, mtime_ns FROM lake_files WHERE model_name = ? AND kind = ?",
            [model, kind],
        ).fetchall()
    }
    stale = [p for p, state in known.items() if now.get(p) != state]
    if stale:
        for table in ("lake_hours", "lake_files"):
            cur.execute(
                f"DELETE FROM {table} WHERE model_name = ? AND kind = ? AND list_contains(?, path)",
                [model, kind, stale],
            )
    new = sorted(p for p, state in now.items() if known.get(p) != state)
    if new:
        cur.execute(
            "INSERT INTO lake_files SELECT ?, ?, unnest(?), unnest(?), unnest(?), now()",
            [model, kind, new, [now[p][0] for p in new], [now[p][1] for p in new]],
        )
    return new, bool(stale)


def _stage(cur, source: lake.Source, paths: list[str], task: str, features: dict) -> None:
    """The raw rows of `paths` in a temp table, typed by the source's own view SQL."""
    have = lake.read_schema(cur, paths)
    cols = lake.raw_columns(source, features)
    select = ", ".join(
        f"raw.{quote_ident(c)}" if c in have else f"NULL AS {quote_ident(c)}" for c in cols
    )
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {RAW} AS SELECT {select}, raw._file FROM "
        "read_parquet($f, hive_partitioning = true, union_by_name = true, filename = '_file') "
        "AS raw",
        {"f": paths},
    )
    cur.execute(lake.view_sql(source, task, features, raw_rows=RAW, name=TYPED))


# Files read per step: a first run over a whole lake stages a batch at a time (memory), and
# each label batch scans the prediction ids once (so label batches are larger).
PREDICTION_BATCH, LABEL_BATCH = 32, 256


def _batches(paths: list[str], size: int):
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def _read_predictions(cur, model, source, paths, task, features) -> None:
    for batch in _batches(paths, PREDICTION_BATCH):
        _stage(cur, source, batch, task, features)
        cur.execute(
            f"INSERT INTO lake_hours SELECT ?, 'predictions', _file, model_version, variant, "
            f"date_trunc('hour', ts), count(*), max(batch_id) FROM {TYPED} "
            "WHERE ts IS NOT NULL AND prediction_id IS NOT NULL GROUP BY ALL",
            [model],
        )


def _read_labels(cur, model, source, paths, task, features) -> None:
    for batch in _batches(paths, LABEL_BATCH):
        _stage(cur, source, batch, task, features)
        cur.execute(
            f"INSERT INTO lake_hours SELECT ?, 'labels', l._file, p.model_version, p.variant, "
            f"date_trunc('hour', p.ts), count(*), max(l.batch_id) FROM {TYPED} l "
            "JOIN predictions p ON p.prediction_id = l.prediction_id AND p.model_name = ? "
            "WHERE l.prediction_id IS NOT NULL AND l.labeled_at IS NOT NULL GROUP BY ALL",
            [model, model],
        )


def windows(
    cur,
    model: str,
    grain: str,
    *,
    version: str | None = None,
    variant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[WindowInputs]:
    """The model's `grain` windows from the manifest, with list_windows' fingerprint
    numbers (a prediction's features are in its own row: feature rows = rows)."""
    bucket = bucket_sql(grain, "hour")
    where, params = window_filters(model, bucket, version, variant, since, until)
    keep = " AND ".join(where)
    rows = cur.execute(
        f"""
        WITH hours AS (
            SELECT kind, model_version, variant, {bucket} AS w, sum(rows) AS n,
                   max(batch_id) AS b
            FROM lake_hours WHERE {keep} GROUP BY ALL
        )
        SELECT p.model_version, p.variant, p.w, p.n, p.n, p.b, p.b, coalesce(l.n, 0),
               coalesce(l.b, 0)
        FROM hours p LEFT JOIN hours l ON l.kind = 'labels' AND l.model_version =
             p.model_version AND l.variant = p.variant AND l.w = p.w
        WHERE p.kind = 'predictions' ORDER BY 1, 2, 3
        """,
        params,
    ).fetchall()
    return calendar_inputs(model, grain, rows)  # feature rows and batch: the row's own
