"""Windows over a model's logs, the samples they compare, and SQL summaries of those samples.

A window is one (model, version, variant) over [start, end). Its grain is either calendar
(start is the UTC hour, day, ISO week (Monday) or calendar month of the prediction
timestamps) or a row-count chunk (`chunk:N`, see `chunk_windows`: N consecutive predictions
ordered by ts then prediction_id, kept as the time range they span). A *sample* is a temporary table on the
caller's cursor holding one side of a comparison: the rows of a window (predictions
left-joined with the feature log), or the version's reference data from its spec.
Everything below returns small summaries; only `sample_rows` returns rows, and only a
bounded, deterministic sample of them.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # ecdf loads scipy; checks with nothing to compute never need it
    from lifecycle.drift.ecdf import Bins
from lifecycle.names import (  # noqa: F401 - re-exported
    CHUNK_PREFIX,
    GRAINS,
    MAX_CHUNK_ROWS,
    REFERENCE_KINDS,
    check_grain,
    chunk_size,
)
from lifecycle.store import (
    Sql,
    bind,
    feature_table,
    quote_ident,
    reference_table,
    stored_feature,
)

# The step from one window start to the next, for pandas (`Series + step`, `date_range`):
# a month has no fixed length, so its step is a calendar offset, not a timedelta.
GRAIN_STEP = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": pd.DateOffset(months=1),
}
# Columns a sample adds to the features start with "_" (a feature name cannot), so a
# feature called e.g. `ts` or `status` never collides with them.
KEY = "_key"  # stable row identity in a sample (prediction id, or reference row number)
HAS_FEATURES = "_has_features"
BATCH = "_batch"  # feature-log batch of the row (NULL when the row has no feature record)


def chunk_grain(rows: int) -> str:
    """The grain of row-count chunks of `rows` predictions, e.g. "chunk:5000"."""
    return f"{CHUNK_PREFIX}{int(rows)}"


def check_calendar_grain(grain: str) -> str:
    """`grain` if it is a calendar grain (hour, day, week, month)."""
    if check_grain(grain) not in GRAINS:
        raise ValueError(
            f"grain {grain!r} is a row-count chunk; this summary needs a calendar grain "
            f"({', '.join(GRAINS)})"
        )
    return grain


def grain_label(grain: str) -> str:
    """Words for a grain: "day", "month", "5,000-row chunk"."""
    rows = chunk_size(grain)
    return f"{rows:,}-row chunk" if rows else grain


def bucket_sql(grain: str, column: str = "ts") -> str:
    """SQL for the UTC window start of a timestamp (ISO weeks start on Monday)."""
    return f"date_trunc('{check_calendar_grain(grain)}', {column})"


def add_months(when: datetime, months: int) -> datetime:
    """`when` moved by whole calendar months (the day is kept, capped at the month's end)."""
    index = when.year * 12 + when.month - 1 + months
    year, month = divmod(index, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


def window_end(start: datetime, grain: str) -> datetime:
    """End of the calendar window starting at `start` (a month ends on the next 1st)."""
    check_calendar_grain(grain)
    if grain == "month":
        return add_months(start, 1)
    return start + GRAIN_STEP[grain]


def window_ends(starts: pd.Series, grain: str) -> pd.Series:
    """Ends of calendar windows from their starts (a pandas Series of UTC timestamps)."""
    return pd.to_datetime(starts, utc=True) + GRAIN_STEP[check_calendar_grain(grain)]


@dataclass(frozen=True)
class Window:
    model: str
    version: str
    variant: str
    grain: str
    start: datetime
    end: datetime
    # chunk windows only: where the chunk before this one starts (None: this is the first)
    prev_start: datetime | None = field(default=None, compare=False)

    def previous(self) -> Window:
        """The window just before this one (for a first chunk: an empty range)."""
        if chunk_size(self.grain):
            start = self.prev_start or self.start
        elif self.grain == "month":
            start = add_months(self.start, -1)
        else:
            start = self.start - GRAIN_STEP[self.grain]
        return Window(self.model, self.version, self.variant, self.grain, start, self.start)

    def seed(self, salt: str = "") -> int:
        """A deterministic seed for this window (sampling, bootstrap, classifiers)."""
        text = f"{self.model}|{self.version}|{self.variant}|{self.start.isoformat()}|{salt}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


@dataclass(frozen=True)
class WindowInputs:
    """What a window's results depend on in the logs: changes whenever rows are added."""

    window: Window
    rows: int
    feature_rows: int
    last_prediction_batch: int
    last_feature_batch: int
    labels: int
    last_label_batch: int
    complete: bool = True  # False for the trailing chunk that has not reached its size yet

    @property
    def data_key(self) -> tuple:
        return (self.rows, self.feature_rows, self.last_prediction_batch, self.last_feature_batch)

    @property
    def label_key(self) -> tuple:
        return (*self.data_key, self.labels, self.last_label_batch)


def list_windows(
    cur,
    model: str,
    grain: str,
    *,
    version: str | None = None,
    variant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[WindowInputs]:
    """Every window that holds predictions, with the counts that fingerprint its inputs.

    For chunk grains this includes the trailing chunk that is not full yet
    (`complete=False`); `since`/`until` bound the window start.
    """
    if chunk_size(check_grain(grain)):
        return chunk_windows(
            cur, model, grain, version=version, variant=variant, since=since, until=until
        )
    bucket = bucket_sql(grain, "p.ts")
    where, params = window_filters(model, bucket, version, variant, since, until, alias="p.")
    ftable = quote_ident(feature_table(model))
    rows = cur.execute(
        f"SELECT p.model_version, p.variant, {bucket} AS w, count(*), "
        "count(f.prediction_id), max(p.batch_id), coalesce(max(f.batch_id), 0), "
        "count(l.prediction_id), coalesce(max(l.batch_id), 0) "
        f"FROM predictions p LEFT JOIN {ftable} f ON f.prediction_id = p.prediction_id "
        "LEFT JOIN labels l ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name "
        f"WHERE {' AND '.join(where)} GROUP BY ALL ORDER BY 1, 2, 3",
        params,
    ).fetchall()
    return calendar_inputs(model, grain, rows)


def calendar_inputs(model: str, grain: str, rows) -> list[WindowInputs]:
    """WindowInputs of calendar windows from rows of (version, variant, window start,
    rows, feature rows, newest prediction batch, newest feature batch, labels, newest
    label batch): list_windows' query and the lake manifest's (lifecycle.lake_manifest)."""
    return [
        WindowInputs(
            window=Window(model, v, var, grain, w, window_end(w, grain)),
            rows=int(n),
            feature_rows=int(nf),
            last_prediction_batch=int(bp),
            last_feature_batch=int(bf),
            labels=int(nl),
            last_label_batch=int(bl),
        )
        for v, var, w, n, nf, bp, bf, nl, bl in rows
    ]


def window_filters(model: str, bucket: str, version, variant, since, until, alias: str = ""):
    """WHERE clauses and their params picking a model's windows: version, variant, and the
    window start (`bucket`, the SQL of a row's window start) in [since, until)."""
    where, params = [f"{alias}model_name = ?"], [model]
    for column, value in (("model_version", version), ("variant", variant)):
        if value is not None:
            where.append(f"{alias}{column} = ?")
            params.append(value)
    if since is not None:
        where.append(f"{bucket} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{bucket} < ?")
        params.append(until)
    return where, params


def chunk_windows(
    cur,
    model: str,
    grain: str,
    *,
    version: str | None = None,
    variant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[WindowInputs]:
    """Row-count chunks: the predictions of each (version, variant), ordered by ts then
    prediction_id, cut every N rows (N from `chunk:N`), each kept as a time range.

    A chunk spans [ts of its first row, ts of the next chunk's first row); the last one ends
    a microsecond after its newest row. Tie rule: rows that share their timestamp with the
    next chunk's first row belong to the next chunk (a time range cannot split a timestamp),
    so a chunk can hold a few rows fewer (and the next a few more) than N when timestamps
    tie at a boundary; chunks whose ranges would be empty merge into the next. A chunk is
    complete once its N-row block is full; the trailing one is listed with complete=False.
    Rows logged late (with older timestamps) move the boundaries after them, and the moved
    chunks are recomputed. Boundaries and counts come from one SQL query (row_number and an
    ASOF join), never a loop over rows.
    """
    size = chunk_size(check_grain(grain))
    if size is None:
        raise ValueError(f"grain {grain!r} is not a chunk grain")
    where, params = ["model_name = ?"], [model]
    for column, value in (("model_version", version), ("variant", variant)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    ftable = quote_ident(feature_table(model))
    rows = cur.execute(
        f"""
        WITH ordered AS (
            SELECT model_version, variant, ts, prediction_id, batch_id,
                   (row_number() OVER (PARTITION BY model_version, variant
                                       ORDER BY ts, prediction_id) - 1) // ? AS chunk
            FROM predictions WHERE {" AND ".join(where)}
        ), blocks AS (
            SELECT model_version, variant, chunk, min(ts) AS first_ts, max(ts) AS last_ts,
                   count(*) AS block_rows
            FROM ordered GROUP BY ALL
        ), starts AS (  -- blocks starting at one timestamp share one range: merge them
            SELECT model_version, variant, first_ts AS window_start, max(chunk) AS last_chunk,
                   arg_max(block_rows, chunk) = ? AS full_block
            FROM blocks GROUP BY ALL
        ), bounds AS (
            SELECT s.*, lag(window_start) OVER w AS prev_start,
                   coalesce(lead(window_start) OVER w, b.last_ts + INTERVAL 1 MICROSECOND)
                   AS window_end
            FROM starts s JOIN (SELECT model_version, variant, max(last_ts) AS last_ts
                                FROM blocks GROUP BY ALL) b USING (model_version, variant)
            WINDOW w AS (PARTITION BY s.model_version, s.variant ORDER BY window_start)
        )
        SELECT b.model_version, b.variant, b.window_start, any_value(b.window_end),
               any_value(b.prev_start), any_value(b.full_block), count(*),
               count(f.prediction_id), max(o.batch_id), coalesce(max(f.batch_id), 0),
               count(l.prediction_id), coalesce(max(l.batch_id), 0)
        FROM ordered o ASOF JOIN bounds b ON o.model_version = b.model_version
             AND o.variant = b.variant AND o.ts >= b.window_start
        LEFT JOIN {ftable} f ON f.prediction_id = o.prediction_id
        LEFT JOIN labels l ON l.prediction_id = o.prediction_id AND l.model_name = ?
        GROUP BY b.model_version, b.variant, b.window_start ORDER BY 1, 2, 3
        """,
        [size, *params, size, model],
    ).fetchall()
    out = []
    for v, var, start, end, prev, full, n, nf, bp, bf, nl, bl in rows:
        if (since is not None and start < since) or (until is not None and start >= until):
            continue
        out.append(
            WindowInputs(
                window=Window(model, v, var, grain, start, end, prev_start=prev),
                rows=int(n),
                feature_rows=int(nf),
                last_prediction_batch=int(bp),
                last_feature_batch=int(bf),
                labels=int(nl),
                last_label_batch=int(bl),
                complete=bool(full),
            )
        )
    return out


def window_at(
    cur, model: str, version: str, variant: str, grain: str, start: datetime
) -> Window | None:
    """The window of `grain` that starts at `start` (None if no chunk starts there)."""
    if not chunk_size(check_grain(grain)):
        return Window(model, version, variant, grain, start, window_end(start, grain))
    found = chunk_windows(cur, model, grain, version=version, variant=variant, since=start)
    match = [w.window for w in found if w.window.start == start]
    return match[0] if match else None


def window_inputs(cur, window: Window) -> WindowInputs | None:
    """The inputs of one window (None when it holds no predictions)."""
    found = list_windows(
        cur,
        window.model,
        window.grain,
        version=window.version,
        variant=window.variant,
        since=window.start,
        until=window.end,
    )
    return found[0] if found else None


def fingerprint(*parts: Any) -> int:
    """A stable signed 63-bit number for `parts` (stored as monitor_results.input_version)."""
    text = json.dumps(parts, default=str, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


# -- samples -----------------------------------------------------------------------


def utc_time(value: datetime) -> datetime:
    """A window bound to bind as a parameter: it must carry its time zone."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return value


@dataclass(frozen=True)
class Sampling:
    """Keep about `cap` of `rows` rows, chosen by a seeded hash of each row's key.

    Deterministic (the same rows every run, whatever the insertion order), and a plain
    predicate on the key, so it filters both sides of a join before the join is built.
    """

    rows: int
    cap: int | None
    seed: int

    @property
    def active(self) -> bool:
        return self.cap is not None and self.rows > self.cap

    def predicate(self, key_sql: str) -> str:
        if not self.active:
            return "TRUE"
        threshold = int(self.cap / self.rows * 2**64)
        return f"hash({key_sql}, {int(self.seed)}) < {threshold}::UBIGINT"


def range_relation(
    model: str,
    version: str,
    variant: str,
    start: datetime,
    end: datetime,
    features: list[str],
    sampling: Sampling | None = None,
) -> Sql:
    """SQL for the predictions of [start, end) left-joined with their feature rows."""
    cols = "".join(f", {stored_feature(c, 'f')}" for c in features)
    ftable = quote_ident(feature_table(model))
    keep_p = "TRUE"
    if sampling is not None and sampling.active:
        keep_p = sampling.predicate("p.prediction_id")
        ftable = f"(SELECT * FROM {ftable} WHERE {sampling.predicate('prediction_id')})"
    params: dict = {}
    text = (
        f"SELECT p.prediction_id AS {KEY}, p.ts AS _ts, p.prediction, p.predicted_label, "
        "p.status AS _status, "
        f"f.prediction_id IS NOT NULL AS {HAS_FEATURES}, f.batch_id AS {BATCH}{cols} "
        f"FROM predictions p LEFT JOIN {ftable} f "
        f"ON f.prediction_id = p.prediction_id WHERE p.model_name = {bind(params, model)} "
        f"AND p.model_version = {bind(params, version)} "
        f"AND p.variant = {bind(params, variant)} "
        f"AND p.ts >= {bind(params, utc_time(start))} AND p.ts < {bind(params, utc_time(end))} "
        f"AND {keep_p}"
    )
    return Sql(text, params)


def window_relation(window: Window, features: list[str], sampling: Sampling | None = None) -> Sql:
    return range_relation(
        window.model,
        window.version,
        window.variant,
        window.start,
        window.end,
        features,
        sampling,
    )


def spec_relation(
    model: str, version: str, features: list[str], sampling: Sampling | None = None
) -> Sql:
    """SQL for the version's reference (validation) rows, shaped like a window's rows."""
    cols = "".join(f", {stored_feature(c)}" for c in features)
    keep = sampling.predicate("CAST(rowid AS VARCHAR)") if sampling else "TRUE"
    params: dict = {}
    text = (
        f"SELECT CAST(rowid AS VARCHAR) AS {KEY}, NULL::TIMESTAMPTZ AS _ts, prediction, "
        f"predicted_label, 'ok' AS _status, TRUE AS {HAS_FEATURES}, NULL::BIGINT AS {BATCH}"
        f"{cols} FROM {quote_ident(reference_table(model))} "
        f"WHERE model_version = {bind(params, version)} AND {keep}"
    )
    return Sql(text, params)


def labelled_relation(model: str, version: str, variant: str, start, end, features) -> Sql:
    """Predictions of [start, end) that have a label, with their features and the label."""
    cols = "".join(f", {stored_feature(c, 'f')}" for c in features)
    params: dict = {}
    text = (
        f"SELECT p.prediction_id AS {KEY}, p.prediction, p.predicted_label, l.actual_value, "
        f"l.actual_label{cols} FROM predictions p JOIN labels l "
        "ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name "
        f"LEFT JOIN {quote_ident(feature_table(model))} f ON f.prediction_id = p.prediction_id "
        f"WHERE p.model_name = {bind(params, model)} "
        f"AND p.model_version = {bind(params, version)} AND p.variant = {bind(params, variant)} "
        f"AND p.ts >= {bind(params, utc_time(start))} AND p.ts < {bind(params, utc_time(end))} "
        "AND p.status = 'ok'"
    )
    return Sql(text, params)


def spec_labelled_relation(model: str, version: str, features: list[str]) -> Sql:
    cols = "".join(f", {stored_feature(c)}" for c in features)
    params: dict = {}
    text = (
        f"SELECT CAST(rowid AS VARCHAR) AS {KEY}, prediction, predicted_label, actual_value, "
        f"actual_label{cols} FROM {quote_ident(reference_table(model))} "
        f"WHERE model_version = {bind(params, version)} "
        "AND (actual_value IS NOT NULL OR actual_label IS NOT NULL)"
    )
    return Sql(text, params)


def materialise(cur, table: str, relation: Sql) -> None:
    """Temp table `table` from a relation."""
    relation.execute(cur, f"CREATE OR REPLACE TEMP TABLE {table} AS ")


def drop(cur, *tables: str) -> None:
    for t in tables:
        cur.execute(f"DROP TABLE IF EXISTS {t}")


def numeric_moments(cur, table: str, columns: list[str]) -> dict[str, dict[str, float]]:
    """count, mean, sample std, min, max and sum of squares per numeric column (non-null)."""
    if not columns:
        return {}
    parts = []
    for c in columns:
        q = quote_ident(c)
        parts += [f"count({q})", f"avg({q})", f"stddev_samp({q})", f"min({q})", f"max({q})"]
    row = cur.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchall()[0]
    out = {}
    for i, c in enumerate(columns):
        n, mean, std, lo, hi = row[5 * i : 5 * i + 5]
        out[c] = {"n": int(n), "mean": mean, "std": std, "min": lo, "max": hi}
    return out


def pooled_std(a: dict, b: dict) -> float:
    """Sample std of two samples together, from their counts, means and sample stds."""
    n1, n2 = a["n"], b["n"]
    n = n1 + n2
    if n < 2:
        return 0.0
    m1, m2 = a["mean"] or 0.0, b["mean"] or 0.0
    ss = (n1 - 1) * (a["std"] or 0.0) ** 2 + (n2 - 1) * (b["std"] or 0.0) ** 2
    mean = (n1 * m1 + n2 * m2) / n
    ss += n1 * (m1 - mean) ** 2 + n2 * (m2 - mean) ** 2
    return float(np.sqrt(ss / (n - 1)))


def category_counts(cur, table: str, column: str) -> dict[str, int]:
    return category_counts_of(cur, table, [column])[column]


def category_counts_of(cur, table: str, columns: list[str]) -> dict[str, dict[str, int]]:
    """Per column, each non-null value (as text, in the column's own sort order) and its
    count: one query for all columns, each column keeping its own type."""
    if not columns:
        return {}
    parts = []
    for c in columns:
        q = quote_ident(c)
        parts.append(
            "(SELECT list({'k': k, 'n': n} ORDER BY k) FROM "
            f"(SELECT {q} AS k, count(*) AS n FROM {table} WHERE {q} IS NOT NULL GROUP BY 1))"
        )
    row = cur.execute(f"SELECT {', '.join(parts)}").fetchall()[0]
    return {
        c: {str(item["k"]): int(item["n"]) for item in (pairs or [])}
        for c, pairs in zip(columns, row, strict=True)
    }


def value_counts_of(cur, table: str, columns: list[str]) -> dict[str, tuple]:
    """Per numeric column, its distinct non-null values (ascending, as doubles) and their
    counts: one query for all columns."""
    if not columns:
        return {}
    branches = " UNION ALL ".join(
        f"SELECT {i} AS i, CAST({quote_ident(c)} AS DOUBLE) AS x FROM {table} "
        f"WHERE {quote_ident(c)} IS NOT NULL"
        for i, c in enumerate(columns)
    )
    res = cur.execute(
        f"SELECT i, x, count(*) AS n FROM ({branches}) GROUP BY ALL ORDER BY i, x"
    ).fetchnumpy()
    i = np.asarray(res["i"], dtype=np.int64)
    x, n = np.asarray(res["x"], dtype=float), np.asarray(res["n"], dtype=np.int64)
    return {c: (x[i == k], n[i == k]) for k, c in enumerate(columns)}


def merge_value_counts(ref: tuple, cur: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, reference counts, current counts) over the union of two samples' values:
    what `SqlTwoSample.value_counts` returns for the whole range."""
    values = np.union1d(ref[0], cur[0])
    counts = []
    for v, n in (ref, cur):
        full = np.zeros(len(values), dtype=np.int64)
        full[np.searchsorted(values, v)] = n
        counts.append(full)
    return values, counts[0], counts[1]


def sample_rows(cur, table: str, columns: list[str], limit: int, seed: int, where: str = ""):
    """A deterministic sample of at most `limit` rows as a DataFrame (hash order, seeded)."""
    cols = ", ".join(quote_ident(c) for c in columns)
    clause = f"WHERE {where}" if where else ""
    return cur.execute(
        f"SELECT {cols} FROM {table} {clause} ORDER BY hash({KEY}, {int(seed)}), {KEY} "
        f"LIMIT {int(limit)}"
    ).df()


# -- the two-sample source for the exact ECDF walk ---------------------------------


class SqlTwoSample:
    """One numeric column of two sample tables, binned and counted by DuckDB."""

    def __init__(
        self, cur, ref_table: str, cur_table: str, column: str, lo: float, hi: float,
        whole: tuple | None = None,
    ):  # fmt: skip
        """`whole`: the value counts of the whole range if already known (merge_value_counts)."""
        self.cur, self.whole = cur, whole
        q = quote_ident(column)
        self.union = (
            f"SELECT 0 AS side, {q} AS x FROM {ref_table} WHERE {q} IS NOT NULL "
            f"UNION ALL SELECT 1 AS side, {q} AS x FROM {cur_table} WHERE {q} IS NOT NULL"
        )
        self.lo, self.span = float(lo), float(hi) - float(lo)

    def _keyed(self, scale: float) -> tuple[str, list]:
        # u = (x - lo) / span lies in [0, 1]; the key at scale S is floor(u * S), capped
        # at S - 1 for the maximum. Scales are powers of two, so keys nest across scales.
        sql = (
            f"SELECT side, x, least(floor((x - ?) / ? * ?), ? - 1)::BIGINT AS k FROM ({self.union})"
        )
        return sql, [self.lo, self.span, scale, scale]

    def _filtered(self, scale: float, parent_scale: float, parent_keys) -> tuple[str, list]:
        keyed, params = self._keyed(scale)
        if parent_scale <= 1:
            return keyed, params
        ratio = int(scale // parent_scale)
        keys = [int(k) for k in parent_keys]
        return (
            f"SELECT * FROM ({keyed}) WHERE k // {ratio} IN (SELECT unnest(?::BIGINT[]))",
            [*params, keys],
        )

    def bins(self, scale: float, parent_scale: float, parent_keys) -> Bins:
        from lifecycle.drift.ecdf import Bins

        inner, params = self._filtered(scale, parent_scale, parent_keys)
        width = self.span / scale
        res = self.cur.execute(
            "SELECT k, count(*) FILTER (WHERE side = 0), count(*) FILTER (WHERE side = 1), "
            "min(x), max(x), coalesce(sum(x - (? + k * ?)) FILTER (WHERE side = 0), 0), "
            "coalesce(sum(x - (? + k * ?)) FILTER (WHERE side = 1), 0) "
            f"FROM ({inner}) GROUP BY k ORDER BY k",
            [self.lo, width, self.lo, width, *params],
        ).fetchnumpy()
        k, r, c, vmin, vmax, s_ref, s_cur = (res[name] for name in res)
        key = np.asarray(k, dtype=np.int64)
        return Bins(
            scale=scale,
            key=key,
            r=np.asarray(r, dtype=np.int64),
            c=np.asarray(c, dtype=np.int64),
            vmin=np.asarray(vmin, dtype=float),
            vmax=np.asarray(vmax, dtype=float),
            s_ref=np.asarray(s_ref, dtype=float),
            s_cur=np.asarray(s_cur, dtype=float),
            edge=self.lo + key * width,
        )

    def value_counts(self, parent_scale: float, parent_keys):
        if parent_scale <= 1 and self.whole is not None:
            return self.whole
        scale = max(parent_scale, 1.0)
        inner, params = self._filtered(scale, 1.0, [])
        if parent_scale > 1:
            keys = [int(k) for k in parent_keys]
            inner = f"SELECT * FROM ({inner}) WHERE k IN (SELECT unnest(?::BIGINT[]))"
            params = [*params, keys]
        res = self.cur.execute(
            "SELECT x, count(*) FILTER (WHERE side = 0), count(*) FILTER (WHERE side = 1) "
            f"FROM ({inner}) GROUP BY x ORDER BY x",
            params,
        ).fetchnumpy()
        x, r, c = (res[name] for name in res)
        return (
            np.asarray(x, dtype=float),
            np.asarray(r, dtype=np.int64),
            np.asarray(c, dtype=np.int64),
        )


# -- references ---------------------------------------------------------------------

DEFAULT_BASELINE = timedelta(days=7)


def baseline_range(
    cur, model: str, version: str, variant: str, configured: tuple[datetime, datetime] | None
) -> tuple[datetime, datetime] | None:
    """The fixed baseline: the spec's `[drift].baseline`, else the version's first 7 days
    of logs in this variant (from the UTC midnight of its first prediction)."""
    if configured is not None:
        return configured
    first = cur.execute(
        "SELECT date_trunc('day', min(ts)) FROM predictions WHERE model_name = ? "
        "AND model_version = ? AND variant = ?",
        [model, version, variant],
    ).fetchall()[0][0]
    if first is None:
        return None
    return first, first + DEFAULT_BASELINE


def reference_range(cur, kind: str, window: Window, baseline) -> tuple[datetime, datetime] | None:
    """The time range of a log-based reference ("baseline" or "previous") for `window`."""
    if kind == "previous":
        prev = window.previous()
        return prev.start, prev.end
    if kind == "baseline":
        return baseline_range(cur, window.model, window.version, window.variant, baseline)
    raise ValueError(f"reference {kind!r} is not a time range")


def reference_relation(
    cur,
    kind: str,
    window: Window,
    features: list[str],
    baseline,
    sampling: Sampling | None = None,
) -> Sql:
    """SQL for the reference rows of `window`: spec data, the baseline or the previous window."""
    if kind not in REFERENCE_KINDS:
        raise ValueError(f"unknown reference {kind!r}; use one of {', '.join(REFERENCE_KINDS)}")
    if kind == "spec":
        return spec_relation(window.model, window.version, features, sampling)
    rng = reference_range(cur, kind, window, baseline)
    if rng is None:  # no logs at all: an empty relation of the right shape
        rng = (window.start, window.start)
    return range_relation(window.model, window.version, window.variant, *rng, features, sampling)


def range_key(cur, model: str, version: str, variant: str, start, end) -> tuple:
    """Counts that change whenever logs of [start, end) change: the fingerprint of a
    log-based reference (rows, feature rows, labels and the newest batch of each)."""
    row = cur.execute(
        "SELECT count(*), count(f.prediction_id), coalesce(max(p.batch_id), 0), "
        "coalesce(max(f.batch_id), 0), count(l.prediction_id), coalesce(max(l.batch_id), 0) "
        f"FROM predictions p LEFT JOIN {quote_ident(feature_table(model))} f "
        "ON f.prediction_id = p.prediction_id LEFT JOIN labels l "
        "ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name "
        "WHERE p.model_name = ? AND p.model_version = ? AND p.variant = ? AND p.ts >= ? "
        "AND p.ts < ?",
        [model, version, variant, start, end],
    ).fetchall()[0]
    return tuple(int(v) for v in row)
