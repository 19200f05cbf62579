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

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import pandas as pd

from lifecycle import catalog, lake
from lifecycle.drift.windows import (
    WindowInputs,
    bucket_sql,
    calendar_inputs,
    window_filters,
)
from lifecycle.names import GRAINS
from lifecycle.store import Store, feature_table, quote_ident

RAW, TYPED = "_manifest_raw", "_manifest_typed"

# A label comes after its prediction: period queries skip labels stamped more than this
# before the period (clock skew between systems), and so may the files they read.
LABEL_CLOCK_SLACK = timedelta(days=7)


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
    return lake.file_states(lake.files(source))


def refresh(store: Store, model: str) -> dict[str, int]:
    """Read what is new in the model's lake into the manifest (one transaction); returns
    how many files were read per kind."""
    with store.write_lock(), store.transaction() as cur:
        sources = lake.external_kinds(cur, model)
        task = catalog.model_info(cur, model)["task"]
        features = catalog.logged_features(cur, model)
        preds = sources["predictions"]
        files = current_files(preds)
        new_preds, changed = _sync_files(cur, model, "predictions", files)
        if changed:  # a prediction file rewritten or gone: labels may point elsewhere now
            cur.execute("DELETE FROM lake_hours WHERE model_name = ? AND kind = 'labels'", [model])
            cur.execute("DELETE FROM lake_files WHERE model_name = ? AND kind = 'labels'", [model])
        if new_preds:
            _read_predictions(cur, model, preds, new_preds, files, task, features)
        new_labels: list[str] = []
        if (labels := sources.get("labels")) is not None:
            files = current_files(labels)
            new_labels, _ = _sync_files(cur, model, "labels", files)
            if new_labels:
                _read_labels(cur, model, labels, new_labels, files, task, features)
        cur.execute(f"DROP VIEW IF EXISTS {TYPED}")
        cur.execute(f"DROP TABLE IF EXISTS {RAW}")
    return {"predictions": len(new_preds), "labels": len(new_labels)}


def _sync_files(cur, model: str, kind: str, now: dict[str, tuple[int, int]]):
    """Forget files gone or changed. Returns (paths to read: new or changed, whether any
    known file was changed or removed); each is recorded once read (_record)."""
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
    return sorted(p for p, state in now.items() if known.get(p) != state), bool(stale)


def _record(cur, model: str, kind: str, paths: list[str], now: dict, column: str) -> None:
    """Record the staged files with their size, mtime and the range of `column` (a file
    without a readable time stamp has none, and no period reads it)."""
    cur.execute(
        f"""
        INSERT INTO lake_files
        SELECT ?, ?, f.path, f.size, f.mtime_ns, now(), r.first_ts, r.last_ts
        FROM (SELECT unnest(?) AS path, unnest(?) AS size, unnest(?) AS mtime_ns) f
        LEFT JOIN (SELECT _file, min({column}) AS first_ts, max({column}) AS last_ts
                   FROM {TYPED} GROUP BY _file) r ON r._file = f.path
        """,
        [model, kind, paths, [now[p][0] for p in paths], [now[p][1] for p in paths]],
    )


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


# Bytes of Parquet read per step: a first run over a whole lake stages a batch at a time, so
# its temp table stays small whatever the files' size (8 days of a 100M lake's predictions,
# 68 of a 10M lake's). Each label batch scans the prediction ids once, so label batches are
# larger. At most MAX_BATCH_FILES files a step.
PREDICTION_BATCH_BYTES, LABEL_BATCH_BYTES, MAX_BATCH_FILES = 32 << 20, 128 << 20, 256


def _batches(paths: list[str], now: dict[str, tuple[int, int]], max_bytes: int):
    """`paths` in consecutive batches of at most `max_bytes` (`now`: path -> (size, mtime);
    a file larger than that is a batch of its own)."""
    batch, size = [], 0
    for path in paths:
        if batch and (size + now[path][0] > max_bytes or len(batch) == MAX_BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += now[path][0]
    if batch:
        yield batch


def _read_predictions(cur, model, source, paths, now, task, features) -> None:
    for batch in _batches(paths, now, PREDICTION_BATCH_BYTES):
        _stage(cur, source, batch, task, features)
        _record(cur, model, "predictions", batch, now, "ts")
        cur.execute(
            f"INSERT INTO lake_hours SELECT ?, 'predictions', _file, model_version, variant, "
            f"date_trunc('hour', ts), count(*), max(batch_id) FROM {TYPED} "
            f"WHERE {lake.PREDICTION_KEY} ts IS NOT NULL GROUP BY ALL",
            [model],
        )


def _read_labels(cur, model, source, paths, now, task, features) -> None:
    for batch in _batches(paths, now, LABEL_BATCH_BYTES):
        _stage(cur, source, batch, task, features)
        _record(cur, model, "labels", batch, now, "labeled_at")
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


# -- reading a period, not the whole lake ---------------------------------------------------
#
# The lake views read the files bound in the cursor's `lake` variable. A query that filters on
# time (a page's period) or asks only for the oldest and newest time stamps needs far fewer
# files than the whole lake; the manifest knows each file's range (m018), so the binding can
# leave out the files that cannot change the answer. Files the manifest has not read (new or
# rewritten since the last monitoring run) are always bound, so answers are exact whenever
# the query filters on the time it was narrowed by.


@contextlib.contextmanager
def period(store: Store, models: str | list[str], since, until=None) -> Iterator[None]:
    """Within the block, this thread's queries of the lakes of `models` read only the files
    that may hold predictions in [since, until) and labels stamped from since - the clock
    slack on. Exact for queries that filter on those times (the period functions of
    lifecycle.layers); without a manifest (never monitored) or a period nothing changes."""
    if since is None:
        yield
        return
    since, until = _utc(since), until and _utc(until)

    def keep(kind: str, current: dict, _) -> list[str]:
        lo, hi = (since, until) if kind == "predictions" else (since - LABEL_CLOCK_SLACK, None)
        return [p for p, known in current.items() if _meets(known, lo, hi)]

    with _narrow(store, [models] if isinstance(models, str) else list(models), keep):
        yield


@contextlib.contextmanager
def edges(store: Store, models: list[str] | str | None = None) -> Iterator[None]:
    """Within the block, the lakes of `models` (default: every model) read only the files
    that may hold their oldest or newest time stamps: a prediction file holding the first
    or last hour of a version and variant, a label file with the oldest or newest label, and
    files not read yet. Exact for min() and max() of ts and labeled_at (freshness, the
    span of a model's logs) without a scan of the whole lake."""
    if models is None:
        with store.cursor() as cur:
            models = catalog.model_names(cur)
    with _narrow(store, [models] if isinstance(models, str) else list(models), _edge_files):
        yield


@contextlib.contextmanager
def tallied(store: Store, models: list[str] | None = None) -> Iterator[list[str]]:
    """Within the block, the lake views leave out each lake's prediction files whose rows
    the manifest has counted (read and unchanged since), keeping one when all are (a view
    needs a file); yields the paths left out. A count of predictions is then exact as the
    count over the views plus lake_hours' rows of those paths (same rows: the views and
    the manifest both keep rows with an id and a time stamp): history at the cost of the
    files not read yet."""
    if models is None:
        with store.cursor() as cur:
            models = catalog.model_names(cur)
    counted: list[str] = []

    def keep(kind: str, current: dict, _) -> list[str]:
        if kind != "predictions":
            return list(current)
        unread = [p for p, known in current.items() if known is None]
        read = sorted(p for p, known in current.items() if known is not None)
        if not unread and read:
            unread, read = read[:1], read[1:]
        counted.extend(read)
        return unread

    with _narrow(store, models, keep):
        yield counted


def _edge_files(kind: str, current: dict, spans: list[tuple]) -> list[str]:
    known = {p: r for p, r in current.items() if r is not None and r[1] is not None}
    keep = {p for p, r in current.items() if r is None}  # not read yet
    if known:
        first = min(r[0] for r in known.values())
        last = max(r[1] for r in known.values())
        keep |= {p for p, r in known.items() if r[0] == first or r[1] == last}
    # each version and variant's first and last hour, over the files in the lake now
    edge: dict[tuple, list] = {}
    for path, version, variant, lo, hi in spans:
        if path in known:
            e = edge.setdefault((version, variant), [lo, hi, set(), set()])
            for i, value, better in ((0, lo, lo < e[0]), (1, hi, hi > e[1])):
                if better:
                    e[i], e[2 + i] = value, set()
                if value == e[i]:
                    e[2 + i].add(path)
    for _, _, firsts, lasts in edge.values():
        keep |= firsts | lasts
    return sorted(keep)


@contextlib.contextmanager
def _narrow(store: Store, models: list[str], keep) -> Iterator[None]:
    """Bind, for each lake model of `models`, only the files `keep(kind, current, spans)`
    returns of its prediction and label files (features read from the prediction files
    follow them): `current` maps each file now in the lake to its (first, last) time stamp
    as read, or None when not read yet; `spans` lists (file, version, variant, first hour,
    last hour) of the prediction files as read.

    Every other model's lake binds one file: the log views are a UNION ALL of every lake,
    and DuckDB reads each branch even when the query keeps one model's rows, so a query
    of one model would otherwise read the others' whole lakes (the queries run in these
    blocks all filter on the model)."""
    if not store.lake_values:
        yield
        return
    values = {name: dict(parts) for name, parts in store.lake_values.items()}
    with store.cursor() as cur:
        others = [s.variable for s in lake.load_sources(cur) if s.model not in models]
    for variable in others:
        if variable in values and (states := store.lake_file_states(variable)):
            values[variable]["files"] = [min(states)]
    for model in models:
        files = _known(store, model)
        if not files:
            continue
        for kind in ("predictions", "labels"):
            if kind not in files:
                continue
            source, current, spans = files[kind]
            if source.variable in values and current:
                # no file meets: one file keeps the view readable (its rows are outside
                # the times the query filters on)
                kept = keep(kind, current, spans) or [min(current)]
                values[source.variable]["files"] = kept
        if "features" in files and "predictions" in files:  # the same files
            features, predictions = files["features"][0].variable, files["predictions"][0].variable
            if features in values and predictions in values:
                values[features]["files"] = values[predictions]["files"]
    with store.narrow_lake(values):
        yield


def _known(store: Store, model: str) -> dict | None:
    """kind -> (source, {file now in the lake: (first, last) time stamp as the manifest
    read it, or None when new or changed since}, [(prediction file, version, variant,
    first hour, last hour)]) for the model's prediction and label sources, and
    features -> (source, None, None) when read from the prediction files; None when the
    manifest does not apply or is empty."""
    with store.cursor() as cur:
        if not applies(cur, model, "day"):
            return None
        sources = lake.external_kinds(cur, model)
        rows = cur.execute(
            "SELECT kind, path, size, mtime_ns, first_ts, last_ts FROM lake_files "
            "WHERE model_name = ?",
            [model],
        ).fetchall()
        spans = cur.execute(
            "SELECT path, model_version, variant, min(hour), max(hour) FROM lake_hours "
            "WHERE model_name = ? AND kind = 'predictions' GROUP BY ALL",
            [model],
        ).fetchall()
    if not rows:
        return None
    read = {(k, path): ((size, mtime), first, last) for k, path, size, mtime, first, last in rows}
    out = {}
    for kind in ("predictions", "labels"):
        if (source := sources.get(kind)) is None:
            continue
        current = {}
        states = store.lake_file_states(source.variable)  # as of the store's last look
        for path, state in (states if states is not None else current_files(source)).items():
            known = read.get((kind, path))
            current[path] = known[1:] if known and known[0] == state else None
        out[kind] = (source, current, spans if kind == "predictions" else [])
    if "features" in sources:  # applies(): the prediction files themselves
        out["features"] = (sources["features"], None, None)
    return out


def _utc(when) -> datetime:
    """A bound as an aware datetime (a naive one is UTC, as the database's session)."""
    stamp = pd.Timestamp(when)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def _meets(known, lo, hi) -> bool:
    """Whether a file may hold rows in [lo, hi): unknown files may; files without a time
    stamp hold none."""
    if known is None:
        return True
    first, last = known
    if last is None:
        return False
    return (lo is None or last >= lo) and (hi is None or first < hi)
