"""Windows over a model's logs, the samples they compare, and SQL summaries of those samples.

A window is one (model, version, variant) over [start, end) where start is the UTC hour, day
or ISO week (Monday) of the prediction timestamps. A *sample* is a temporary table on the
caller's cursor holding one side of a comparison: the rows of a window (predictions
left-joined with the feature log), or the version's reference data from its spec.
Everything below returns small summaries; only `sample_rows` returns rows, and only a
bounded, deterministic sample of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from lifecycle.drift.ecdf import Bins
from lifecycle.store import feature_table, quote_ident, reference_table

GRAINS = ("hour", "day", "week")
GRAIN_DELTA = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
REFERENCE_KINDS = ("spec", "baseline", "previous")
KEY = "_key"  # stable row identity in a sample (prediction id, or reference row number)
HAS_FEATURES = "_has_features"
BATCH = "_batch"  # feature-log batch of the row (NULL when the row has no feature record)


def check_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    return grain


def bucket_sql(grain: str, column: str = "ts") -> str:
    """SQL for the UTC window start of a timestamp (ISO weeks start on Monday)."""
    return f"date_trunc('{check_grain(grain)}', {column})"


@dataclass(frozen=True)
class Window:
    model: str
    version: str
    variant: str
    grain: str
    start: datetime
    end: datetime

    def previous(self) -> Window:
        delta = GRAIN_DELTA[self.grain]
        return Window(
            self.model,
            self.version,
            self.variant,
            self.grain,
            self.start - delta,
            self.start,
        )

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
    """Every window that holds predictions, with the counts that fingerprint its inputs."""
    bucket = bucket_sql(grain, "p.ts")
    where, params = ["p.model_name = ?"], [model]
    for column, value in (("p.model_version", version), ("p.variant", variant)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append(f"{bucket} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{bucket} < ?")
        params.append(until)
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
    delta = GRAIN_DELTA[grain]
    return [
        WindowInputs(
            window=Window(model, v, var, grain, w, w + delta),
            rows=int(n),
            feature_rows=int(nf),
            last_prediction_batch=int(bp),
            last_feature_batch=int(bf),
            labels=int(nl),
            last_label_batch=int(bl),
        )
        for v, var, w, n, nf, bp, bf, nl, bl in rows
    ]


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


def materialise_window(
    cur, table: str, model: str, version: str, variant: str, start, end, features: list[str]
) -> int:
    """Temp table `table` with the window's predictions joined to their feature rows."""
    cols = ", ".join(f"f.{quote_ident(c)}" for c in features)
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT p.prediction_id AS {KEY}, p.ts, "
        "p.prediction, p.predicted_label, p.status, "
        f"f.prediction_id IS NOT NULL AS {HAS_FEATURES}, f.batch_id AS {BATCH}"
        + (f", {cols}" if cols else "")
        + f" FROM predictions p LEFT JOIN {quote_ident(feature_table(model))} f "
        "ON f.prediction_id = p.prediction_id WHERE p.model_name = ? AND p.model_version = ? "
        "AND p.variant = ? AND p.ts >= ? AND p.ts < ?",
        [model, version, variant, start, end],
    )
    return int(cur.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def materialise_reference(cur, table: str, model: str, version: str, features: list[str]) -> int:
    """Temp table `table` with the version's reference (validation) rows from its spec."""
    cols = ", ".join(quote_ident(c) for c in features)
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT CAST(rowid AS VARCHAR) AS {KEY}, "
        "NULL::TIMESTAMPTZ AS ts, prediction, predicted_label, 'ok' AS status, "
        f"TRUE AS {HAS_FEATURES}, NULL::BIGINT AS {BATCH}, actual_value, actual_label"
        + (f", {cols}" if cols else "")
        + f" FROM {quote_ident(reference_table(model))} WHERE model_version = ?",
        [version],
    )
    return int(cur.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


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
    q = quote_ident(column)
    rows = cur.execute(
        f"SELECT {q}, count(*) FROM {table} WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(k): int(n) for k, n in rows}


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

    def __init__(self, cur, ref_table: str, cur_table: str, column: str, lo: float, hi: float):
        self.cur = cur
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
