"""Performance over pooled spans of windows, for alerting on sparse labels.

A window with too few labels for a verdict borrows its predecessors: each window is
evaluated on the shortest span of consecutive windows ending with it that holds
`min_labels` labelled rows, looking back at most `pool_days`. Everything is pooled from
per-window counts in SQL (confusion counts, per-class counts, error sums, and score
histograms for ROC AUC), so a span never re-reads rows and the same query answers many
check times at once (`steps`): a label counts at a step only if it had arrived by then
(labeled_at <= step), which is what `check --replay` needs.

Intervals (95%): Wilson for accuracy, precision and recall (binary); delta-method normal
for F1 and the macro averages (covariance between classes ignored); Hanley-McNeil for
ROC AUC; normal for MAE and RMSE (delta method). ROC AUC comes from score histograms at
0.001 resolution: two scores in one bin count as a tie (half a pair), which moves AUC by
well under 0.001 on continuous scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from lifecycle import catalog
from lifecycle.drift import noise
from lifecycle.drift.windows import bucket_sql, check_calendar_grain, window_ends
from lifecycle.layers import MIN_LABELS, Z95, ModelTask, model_task, predicted_label_sql
from lifecycle.store import Store

AUC_RESOLUTION = 2  # decimals of the score histogram behind pooled ROC AUC (101 bins)

_BINARY_COUNTS = {
    "n": "predicted_label IS NOT NULL AND actual_label IS NOT NULL",
    "tp": "actual_label = {pos} AND predicted_label = {pos}",
    "fp": "actual_label <> {pos} AND predicted_label = {pos}",
    "fn": "actual_label = {pos} AND predicted_label <> {pos}",
    "tn": "actual_label <> {pos} AND predicted_label <> {pos}",
}
_REGRESSION_SUMS = {
    "n": "count(*) FILTER (WHERE labeled_at IS NOT NULL AND score IS NOT NULL "
    "AND actual_value IS NOT NULL)",
    "s_abs": "sum(abs(score - actual_value))",
    "s_sq": "sum((score - actual_value) ^ 2)",
    "s_err": "sum(score - actual_value)",
    "s_q4": "sum((score - actual_value) ^ 4)",
}


def pooled_performance(
    store: Store,
    model: str,
    *,
    steps: list[datetime],
    min_labels: int | Mapping[str, int],
    pool_days: int | Mapping[str, int],
    grain: str = "day",
    since: datetime | None = None,
) -> pd.DataFrame:
    """One row per (step, complete window, version, variant): metrics over the window's span.

    `min_labels` / `pool_days` are one value or one per version. Only windows that ended by
    the step and start at or after `since` are rows (earlier windows still pool). Columns:
    step, window_start, window_end, model_version, variant, span_start, span_windows,
    predictions and labelled (over the span), then the task's metrics with `_low` / `_high`
    95% bounds: accuracy, precision, recall, f1, roc_auc (classifiers); mae, rmse, bias
    (regression). Metrics are NaN under MIN_LABELS labelled rows.
    """
    check_calendar_grain(grain)  # pooling spans consecutive calendar windows
    if not steps:
        raise ValueError("pooled_performance needs at least one step (check time)")
    task = model_task(store, model)
    with store.cursor() as cur:
        versions = catalog.version_names(cur, model)
    settings = {
        "versions": versions,
        "min_labels": [_per_version(min_labels, v) for v in versions],
        "pool_days": [_per_version(pool_days, v) for v in versions],
    }
    classes = _classes(store, model) if task.task == "multiclass_classification" else []
    counts = _count_columns(task, classes)
    sql, params = _pooled_sql(model, task, grain, steps, since, settings, counts)
    frame = store.query_df(sql, params)
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    frame["step"] = pd.to_datetime(frame["step"], utc=True)
    frame["span_start"] = pd.to_datetime(frame["span_start"], utc=True)
    frame.insert(2, "window_end", window_ends(frame["window_start"], grain))
    for column in ("predictions", "labelled", "span_windows"):
        frame[column] = frame[column].fillna(0).astype("int64")
    if task.task == "regression":
        _regression_metrics(frame)
    elif task.binary:
        _binary_metrics(frame)
    else:
        _multiclass_metrics(frame, len(classes))
    keep = [c for c in frame.columns if not c.startswith(("c_", "h_"))]
    return frame[keep].sort_values(["step", "window_start", "model_version", "variant"],
                                   kind="stable").reset_index(drop=True)  # fmt: skip


def _per_version(value: int | Mapping[str, int], version: str) -> int:
    return int(value[version] if isinstance(value, Mapping) else value)


def _classes(store: Store, model: str) -> list[str]:
    rows = store.query_all(
        "SELECT DISTINCT actual_label FROM labels WHERE model_name = ? AND actual_label IS NOT NULL "
        "UNION SELECT DISTINCT predicted_label FROM predictions WHERE model_name = ? "
        "AND predicted_label IS NOT NULL ORDER BY 1",
        [model, model],
    )
    return [r[0] for r in rows]


def _count_columns(task: ModelTask, classes: list[str]) -> list[tuple[str, str, list]]:
    """(column, SQL aggregate over labelled rows, params) of the counts a span sums."""
    labelled = "labeled_at IS NOT NULL"
    if task.task == "regression":
        return [(f"c_{k}", expr, []) for k, expr in _REGRESSION_SUMS.items()]
    if task.binary:
        return [
            (f"c_{k}", f"count(*) FILTER (WHERE {labelled} AND {cond.format(pos='?')})",
             [task.positive] * cond.count("{pos}"))
            for k, cond in _BINARY_COUNTS.items()
        ]  # fmt: skip
    out = [("c_n", f"count(*) FILTER (WHERE {labelled} AND actual_label IS NOT NULL)", [])]
    for i, cls in enumerate(classes):
        out += [
            (f"c_tp{i}", f"count(*) FILTER (WHERE {labelled} AND actual_label = ? "
                         "AND predicted_label = ?)", [cls, cls]),
            (f"c_pred{i}", f"count(*) FILTER (WHERE {labelled} AND actual_label IS NOT NULL "
                           "AND predicted_label = ?)", [cls]),
            (f"c_act{i}", f"count(*) FILTER (WHERE {labelled} AND actual_label = ?)", [cls]),
        ]  # fmt: skip
    return out


INTERVALS = {"hour": "1 hour", "day": "1 day", "week": "7 days", "month": "1 month"}


def _pooled_sql(model, task, grain, steps, since, settings, counts):
    """The whole computation as one statement; see the module docstring."""
    delta = INTERVALS[grain]  # a month has no fixed length: an SQL interval, not a timedelta
    label_sql, label_params = predicted_label_sql("p", task)
    last = max(steps)
    names = [c for c, _, _ in counts]
    aggregates = ", ".join(f"{expr} AS {c}" for c, expr, _ in counts)
    count_params = [p for _, _, ps in counts for p in ps]
    step_sums = ", ".join(
        f"coalesce(sum(p.{c}) FILTER (WHERE p.arrival <= s.step), 0) AS {c}" for c in names
    )
    span_sums = ", ".join(f"sum(g.{c}) AS {c}" for c in names)
    since_filter = "" if since is None else "AND e.window_start >= ?"
    binary = task.binary
    pos_param = [task.positive] if binary else []
    hist_cte = (
        f""",
        hist AS (
            SELECT window_start, model_version, variant, arrival,
                   round(score, {AUC_RESOLUTION}) AS bin,
                   count(*) FILTER (WHERE actual_label = ?) AS pos,
                   count(*) FILTER (WHERE actual_label <> ?) AS neg
            FROM arrived WHERE labeled_at IS NOT NULL AND score IS NOT NULL
                               AND actual_label IS NOT NULL
            GROUP BY ALL
        ),
        span_hist AS (
            SELECT c.step, c.model_version, c.variant, c.window_start, h.bin,
                   sum(h.pos) AS pos, sum(h.neg) AS neg
            FROM chosen c JOIN hist h ON h.model_version = c.model_version
                 AND h.variant = c.variant AND h.arrival <= c.step
                 AND h.window_start BETWEEN c.span_start AND c.window_start
            GROUP BY ALL
        ),
        auc AS (
            SELECT step, model_version, variant, window_start, sum(pos) AS h_pos,
                   sum(neg) AS h_neg, sum(pos * (neg_below + neg / 2.0)) AS h_u
            FROM (SELECT *, coalesce(sum(neg) OVER (
                      PARTITION BY step, model_version, variant, window_start ORDER BY bin
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS neg_below
                  FROM span_hist)
            GROUP BY ALL
        )"""
        if binary
        else ""
    )
    sql = f"""
        WITH steps AS (SELECT unnest(?::TIMESTAMPTZ[]) AS step),
        settings AS (SELECT unnest(?::VARCHAR[]) AS model_version,
                            unnest(?::BIGINT[]) AS min_labels,
                            unnest(?::BIGINT[]) AS pool_days),
        rel AS (
            SELECT {bucket_sql(grain, "p.ts")} AS window_start, p.model_version, p.variant,
                   p.prediction AS score, {label_sql} AS predicted_label,
                   l.actual_value, l.actual_label, l.labeled_at
            FROM predictions p
            LEFT JOIN (SELECT prediction_id, actual_value, actual_label, labeled_at
                       FROM labels WHERE model_name = ? AND labeled_at <= ?) l
                   ON l.prediction_id = p.prediction_id
            WHERE p.model_name = ? AND p.status = 'ok' AND p.ts < ?
        ),
        arrived AS (
            SELECT r.*, s.step AS arrival
            FROM rel r ASOF LEFT JOIN steps s ON r.labeled_at <= s.step
        ),
        per AS (
            SELECT window_start, model_version, variant, arrival, count(*) AS predictions,
                   count(labeled_at) AS labelled, {aggregates}
            FROM arrived GROUP BY ALL
        ),
        grid AS (
            SELECT s.step, p.window_start, p.model_version, p.variant,
                   sum(p.predictions) AS predictions,
                   coalesce(sum(p.labelled) FILTER (WHERE p.arrival <= s.step), 0) AS labelled,
                   {step_sums}
            FROM steps s JOIN per p ON p.window_start + ?::INTERVAL <= s.step
            GROUP BY ALL
        ),
        pairs AS (
            SELECT e.step, e.model_version, e.variant, e.window_start,
                   f.window_start AS from_start, st.min_labels,
                   sum(f.labelled) OVER (
                       PARTITION BY e.step, e.model_version, e.variant, e.window_start
                       ORDER BY f.window_start DESC ROWS UNBOUNDED PRECEDING) AS pooled
            FROM grid e
            JOIN settings st ON st.model_version = e.model_version
            JOIN grid f ON f.step = e.step AND f.model_version = e.model_version
                 AND f.variant = e.variant AND f.window_start <= e.window_start
                 AND f.window_start > e.window_start - to_days(st.pool_days::INTEGER)
            WHERE TRUE {since_filter}
        ),
        chosen AS (
            SELECT step, model_version, variant, window_start,
                   coalesce(max(from_start) FILTER (WHERE pooled >= min_labels),
                            min(from_start)) AS span_start
            FROM pairs GROUP BY ALL
        ){hist_cte}
        SELECT c.step, c.window_start, c.model_version, c.variant, c.span_start,
               count(*) AS span_windows, sum(g.predictions) AS predictions,
               sum(g.labelled) AS labelled, {span_sums}
               {", any_value(a.h_pos) AS h_pos, any_value(a.h_neg) AS h_neg, "
                "any_value(a.h_u) AS h_u" if binary else ""}
        FROM chosen c
        JOIN grid g ON g.step = c.step AND g.model_version = c.model_version
             AND g.variant = c.variant AND g.window_start BETWEEN c.span_start AND c.window_start
        {"LEFT JOIN auc a ON a.step = c.step AND a.model_version = c.model_version "
         "AND a.variant = c.variant AND a.window_start = c.window_start" if binary else ""}
        GROUP BY c.step, c.window_start, c.model_version, c.variant, c.span_start
    """  # fmt: skip
    params = [
        list(steps),
        settings["versions"],
        settings["min_labels"],
        settings["pool_days"],
        *label_params,  # the predicted label's class names, in `rel` before its filters
        model,
        last,
        model,
        last,
        *count_params,
        delta,
        *([since] if since is not None else []),
        *(pos_param * 2),
    ]
    return sql, params


# -- metrics from pooled counts (vectorised over rows) -------------------------------------------


def _div(num, den) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def wilson(successes, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval (NaN where n = 0)."""
    low, high = noise.wilson(np.asarray(successes, dtype=float), np.asarray(n, dtype=float), z)
    return np.asarray(low), np.asarray(high)


def f1_variance(tp, errors) -> np.ndarray:
    """Delta-method variance of F1 = 2tp / (2tp + fp + fn), errors = fp + fn (multinomial
    counts; F1 is scale-free, so true negatives drop out): 4 tp e (tp + e) / (2tp + e)^4."""
    tp, e = np.asarray(tp, dtype=float), np.asarray(errors, dtype=float)
    return _div(4 * tp * e * (tp + e), (2 * tp + e) ** 4)


def _bounded(frame, name, value, se, enough) -> None:
    frame[name] = np.where(enough, value, np.nan)
    frame[f"{name}_low"] = np.where(enough, np.clip(value - Z95 * se, 0, 1), np.nan)
    frame[f"{name}_high"] = np.where(enough, np.clip(value + Z95 * se, 0, 1), np.nan)


def _binary_metrics(frame: pd.DataFrame) -> None:
    n, tp, fp, fn, tn = (frame[f"c_{k}"].to_numpy(float) for k in ("n", "tp", "fp", "fn", "tn"))
    enough = n >= MIN_LABELS
    for name, hits, total in (("accuracy", tp + tn, n), ("precision", tp, tp + fp),
                              ("recall", tp, tp + fn)):  # fmt: skip
        low, high = wilson(hits, total)
        ok = enough & (total > 0)
        frame[name] = np.where(ok, _div(hits, total), np.nan)
        frame[f"{name}_low"] = np.where(ok, low, np.nan)
        frame[f"{name}_high"] = np.where(ok, high, np.nan)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    _bounded(frame, "f1", f1, np.sqrt(f1_variance(tp, fp + fn)), enough & (2 * tp + fp + fn > 0))
    n1, n0 = frame["h_pos"].fillna(0).to_numpy(float), frame["h_neg"].fillna(0).to_numpy(float)
    auc = _div(frame["h_u"].fillna(0).to_numpy(float), n1 * n0)
    ok = (n1 + n0 >= MIN_LABELS) & (n1 > 0) & (n0 > 0)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = _div(auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2), n1 * n0)
    _bounded(frame, "roc_auc", auc, np.sqrt(np.maximum(var, 0)), ok)


def _multiclass_metrics(frame: pd.DataFrame, k: int) -> None:
    """Accuracy (Wilson) and macro precision / recall / F1 over the classes present in the
    span (labels or predictions), normal intervals with the classes taken as independent."""
    n = frame["c_n"].to_numpy(float)
    tp = (
        np.stack([frame[f"c_tp{i}"].to_numpy(float) for i in range(k)])
        if k
        else np.zeros((0, len(frame)))
    )
    pred = np.stack([frame[f"c_pred{i}"].to_numpy(float) for i in range(k)]) if k else tp
    act = np.stack([frame[f"c_act{i}"].to_numpy(float) for i in range(k)]) if k else tp
    enough = n >= MIN_LABELS
    correct = tp.sum(axis=0)
    low, high = wilson(correct, n)
    frame["accuracy"] = np.where(enough, _div(correct, n), np.nan)
    frame["accuracy_low"] = np.where(enough, low, np.nan)
    frame["accuracy_high"] = np.where(enough, high, np.nan)
    present = (pred + act) > 0
    count = np.maximum(present.sum(axis=0), 1)
    precision = np.where(pred > 0, _div(tp, pred), 0.0)
    recall = np.where(act > 0, _div(tp, act), 0.0)
    f1 = np.where(2 * tp + (pred - tp) + (act - tp) > 0, _div(2 * tp, pred + act), 0.0)
    var_p = np.where(pred > 0, _div(precision * (1 - precision), pred), 0.0)
    var_r = np.where(act > 0, _div(recall * (1 - recall), act), 0.0)
    var_f = np.nan_to_num(f1_variance(tp, (pred - tp) + (act - tp)))
    for name, values, var in (("precision", precision, var_p), ("recall", recall, var_r),
                              ("f1", f1, var_f)):  # fmt: skip
        macro = np.where(present, values, 0).sum(axis=0) / count
        se = np.sqrt(np.where(present, var, 0).sum(axis=0)) / count
        _bounded(frame, name, macro, se, enough)
    for name in ("roc_auc", "roc_auc_low", "roc_auc_high"):
        frame[name] = np.nan


def _regression_metrics(frame: pd.DataFrame) -> None:
    n = frame["c_n"].to_numpy(float)
    s_abs, s_sq, s_err, s_q4 = (frame[c].fillna(0).to_numpy(float)
                                for c in ("c_s_abs", "c_s_sq", "c_s_err", "c_s_q4"))  # fmt: skip
    enough = n >= MIN_LABELS
    mae, mse = _div(s_abs, n), _div(s_sq, n)
    rmse = np.sqrt(mse)
    var_abs = _div(s_sq - n * mae**2, n - 1)  # sample variance of |error|
    var_sq = _div(s_q4 - n * mse**2, n - 1)  # sample variance of error^2
    se_mae = np.sqrt(np.maximum(_div(var_abs, n), 0))
    se_rmse = _div(np.sqrt(np.maximum(_div(var_sq, n), 0)), 2 * rmse)
    for name, value, se in (("mae", mae, se_mae), ("rmse", rmse, se_rmse)):
        frame[name] = np.where(enough, value, np.nan)
        frame[f"{name}_low"] = np.where(enough, np.maximum(0, value - Z95 * se), np.nan)
        frame[f"{name}_high"] = np.where(enough, value + Z95 * se, np.nan)
    frame["bias"] = np.where(enough, _div(s_err, n), np.nan)
