"""Read API for pages and alerts: stored results, windows, and distributions for overlays.

Everything here reads; nothing computes a test. Distributions are computed in SQL over the
full window (histogram bins or category counts), so an overlay chart never loads a log.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime

import numpy as np
import pandas as pd

from lifecycle import catalog, lake_manifest
from lifecycle.drift.config import drift_config
from lifecycle.drift.results_model import CHECKS
from lifecycle.drift.windows import (
    bucket_sql,
    check_grain,
    chunk_size,
    list_windows,
    reference_relation,
    window_at,
    window_end,
    window_ends,
    window_relation,
)
from lifecycle.store import Sql, Store, quote_ident

PREDICTION_SUBJECTS = {"prediction": "numeric", "predicted_label": "categorical"}


def result_filter(since=None, until=None, **equal) -> tuple[list[str], list]:
    """WHERE terms and params over monitor_results: `column = value` for every non-None
    keyword (column names are this module's, never a caller's input), window_start in
    [since, until)."""
    where, params = [], []
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    _window_bounds(where, params, since, until)
    return where, params


def _window_bounds(where: list[str], params: list, since, until) -> None:
    if since is not None:
        where.append("window_start >= ?")
        params.append(since)
    if until is not None:
        where.append("window_start < ?")
        params.append(until)


def results(
    store: Store,
    model: str,
    version: str | None = None,
    variant: str | None = None,
    grain: str = "day",
    check: str | list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    reference: str | None = None,
    layer: str | None = None,
    subject: str | None = None,
    changed: tuple[datetime, datetime] | None = None,
) -> pd.DataFrame:
    """Stored results, one row per (version, variant, window, reference, check, subject).

    Columns: those of monitor_results plus `tier` (e.g. schema / statistics /
    business_rules for quality checks); `details` is parsed into a dict. `since`/`until`
    bound window_start (inclusive / exclusive). `changed` = (computed, ended): only rows
    computed at or after `computed` or whose window ended after `ended` (what an
    incremental check evaluates). Ordered by window, check and subject.
    """
    check_grain(grain)
    where, params = result_filter(
        model_name=model, grain=grain, model_version=version, variant=variant,
        reference_kind=reference, layer=layer, subject=subject,
    )  # fmt: skip
    if check is not None:
        checks = [check] if isinstance(check, str) else list(check)
        unknown = sorted(set(checks) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
        where.append("list_contains(?, check_name)")
        params.append(checks)
    _window_bounds(where, params, since, until)
    if changed is not None:
        where.append("(computed_at >= ? OR window_end > ?)")
        params += list(changed)
    frame = store.query_df(
        f"SELECT * FROM monitor_results WHERE {' AND '.join(where)} "
        "ORDER BY window_start, model_version, variant, reference_kind, check_name, subject",
        params,
    )
    frame["details"] = [json.loads(d) if d else {} for d in frame["details"]]
    frame["tier"] = [CHECKS[c][1] for c in frame["check_name"]]
    return frame


def window_counts(
    store: Store,
    model: str,
    grain: str = "day",
    version: str | None = None,
    variant: str | None = None,
) -> pd.DataFrame:
    """Windows that hold predictions: model_version, variant, window_start, window_end, rows
    (and `complete`: False for a trailing row-count chunk that is not full yet)."""
    if chunk_size(check_grain(grain)):
        with store.cursor() as cur:
            found = list_windows(cur, model, grain, version=version, variant=variant)
        columns = ["model_version", "variant", "window_start", "window_end", "rows", "complete"]
        return pd.DataFrame(
            [
                (
                    w.window.version,
                    w.window.variant,
                    w.window.start,
                    w.window.end,
                    w.rows,
                    w.complete,
                )
                for w in found
            ],
            columns=columns,
        ).sort_values(["window_start", "model_version", "variant"], ignore_index=True)
    bucket = bucket_sql(grain)
    where, params = ["model_name = ?"], [model]
    for column, value in (("model_version", version), ("variant", variant)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    frame = store.query_df(
        f"SELECT model_version, variant, {bucket} AS window_start, count(*) AS rows "
        f"FROM predictions WHERE {' AND '.join(where)} GROUP BY ALL ORDER BY 3, 1, 2",
        params,
    )
    frame.insert(3, "window_end", window_ends(frame["window_start"], grain))
    frame["complete"] = True
    return frame


def feature_distribution(
    store: Store,
    model: str,
    version: str,
    variant: str,
    grain: str,
    window_start: datetime,
    feature: str,
    *,
    reference: str = "spec",
    bins: int = 30,
) -> pd.DataFrame:
    """Reference vs current distribution of one feature (or `prediction` /
    `predicted_label`) in one window, for overlay charts.

    Numeric: equal-width bins over both samples' range, columns bin_left, bin_right,
    reference_count, current_count, reference_share, current_share, reference_cdf,
    current_cdf. Categorical: category, reference_count, current_count, reference_share,
    current_share, unseen (True for categories the reference never had). Shares are of
    non-missing values; `frame.attrs` holds kind, n_reference, n_current and the
    missing counts. An empty side gives zero counts (and NaN shares), never an error.
    """
    kind, config = _feature_kind(store, model, version, feature)
    features = [] if feature in PREDICTION_SUBJECTS else [feature]
    # a calendar window compared with the spec's reference reads the window's lake files
    # only; other references read other times of the logs (lifecycle.lake_manifest)
    narrow = reference == "spec" and not chunk_size(check_grain(grain))
    with (lake_manifest.period(store, model, window_start, window_end(window_start, grain))
          if narrow else contextlib.nullcontext()), store.cursor() as cur:  # fmt: skip
        window = window_at(cur, model, version, variant, grain, window_start)
        if window is None:
            raise KeyError(f"no {grain} window of {model} {version} {variant} at {window_start}")
        ref_rel = reference_relation(cur, reference, window, features, config.baseline)
        cur_rel = window_relation(window, features)
        union = Sql(
            f"SELECT 0 AS side, {quote_ident(feature)} AS x FROM ({ref_rel.text}) "
            f"UNION ALL SELECT 1 AS side, {quote_ident(feature)} AS x FROM ({cur_rel.text})",
            ref_rel.params | cur_rel.params,
        )
        missing = dict(
            union.execute(
                cur, "SELECT side, count(*) - count(x) FROM (", ") GROUP BY side"
            ).fetchall()
        )
        frame = _histogram(cur, union, bins) if kind == "numeric" else _categories(cur, union)
    frame.attrs.update(
        kind=kind,
        feature=feature,
        reference=reference,
        n_reference=int(frame["reference_count"].sum()),
        n_current=int(frame["current_count"].sum()),
        missing_reference=int(missing.get(0, 0)),
        missing_current=int(missing.get(1, 0)),
    )
    return frame


def _feature_kind(store: Store, model: str, version: str, feature: str):
    with store.cursor() as cur:
        spec = catalog.version_spec(cur, model, version)
    config = drift_config(spec)
    if feature in PREDICTION_SUBJECTS:
        return PREDICTION_SUBJECTS[feature], config
    for f in spec["features"]:
        if f["name"] == feature:
            return f["type"], config
    names = ", ".join(f["name"] for f in spec["features"])
    raise KeyError(f"{model} {version} has no feature {feature!r} (features: {names})")


def _histogram(cur, union: Sql, bins: int) -> pd.DataFrame:
    lo, hi = union.execute(cur, "SELECT min(x), max(x) FROM (", ")").fetchall()[0]
    columns = ["bin_left", "bin_right", "reference_count", "current_count"]
    if lo is None:
        frame = pd.DataFrame(columns=columns)
        return _with_shares(frame, cdf=True)
    span = (hi - lo) or 1.0
    n = bins if hi > lo else 1
    counts = union.execute(
        cur,
        "SELECT least(floor((x - $h_lo) / $h_span * $h_n), $h_n - 1)::BIGINT AS k, "
        "count(*) FILTER (WHERE side = 0), count(*) FILTER (WHERE side = 1) FROM (",
        ") WHERE x IS NOT NULL GROUP BY k ORDER BY k",
        {"h_lo": lo, "h_span": span, "h_n": n},
    ).fetchall()
    ref, curr = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for k, r, c in counts:
        ref[k], curr[k] = r, c
    edges = lo + np.arange(n + 1) * (span / n)
    frame = pd.DataFrame(
        {
            "bin_left": edges[:-1],
            "bin_right": edges[1:],
            "reference_count": ref,
            "current_count": curr,
        }
    )
    return _with_shares(frame, cdf=True)


def _categories(cur, union: Sql) -> pd.DataFrame:
    rows = union.execute(
        cur,
        "SELECT CAST(x AS VARCHAR) AS category, count(*) FILTER (WHERE side = 0), "
        "count(*) FILTER (WHERE side = 1) FROM (",
        ") WHERE x IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 3 DESC, 1",
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["category", "reference_count", "current_count"])
    frame = _with_shares(frame, cdf=False)
    frame["unseen"] = frame["reference_count"] == 0
    return frame


def _with_shares(frame: pd.DataFrame, *, cdf: bool) -> pd.DataFrame:
    for side in ("reference", "current"):
        counts = frame[f"{side}_count"].astype("int64")
        frame[f"{side}_count"] = counts
        total = counts.sum()
        shares = counts / total if total else counts * np.nan
        frame[f"{side}_share"] = shares.astype(float)
        if cdf:
            frame[f"{side}_cdf"] = shares.cumsum().astype(float)
    return frame
