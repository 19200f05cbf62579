"""The four monitoring layers as per-window summaries computed in DuckDB.

Every function returns one row per (UTC window, model version, variant) from SQL
aggregates over the logs; only those summaries reach pandas. Windows are UTC hours, days
or ISO weeks (Monday) of the row's own timestamp (`date_trunc`), exactly as the drift
engine buckets them. `since` / `until` keep rows with since <= ts < until.

- infrastructure: `infra_windows` (latency, errors, throughput from `predictions`),
  `resource_windows` (`infra_metrics`);
- performance: `performance_windows` (labelled predictions, late labels honoured with
  `as_of`), `reference_performance`, `confusion_matrix`, `calibration_bins`,
  `residual_histogram`, `estimated_windows` (performance estimated before labels, stored by
  lifecycle.monitor);
- business: `business_windows` (KPI events beside the model's output);
- data quality: `quality_summary` (stored results of lifecycle.monitor, by tier);
- `freshness`: when each kind of log was last written and received.

Metric definitions, intervals and minimum sample sizes are documented in docs/monitoring.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from lifecycle import catalog, lake_manifest
from lifecycle.drift.windows import (
    bucket_sql,
    check_calendar_grain,
    check_grain,
    chunk_size,
    list_windows,
    window_ends,
)
from lifecycle.store import Store, quote_ident, reference_table

MIN_LABELS = 30  # fewer labelled rows in a window: its metrics are NULL (count shown beside)
Z95 = 1.959963984540054  # two-sided 95% normal quantile
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "bias")
KEYS = ["window_start", "model_version", "variant"]


class LayerError(ValueError):
    """Bad arguments for a layer query (unknown model, grain, ...), named."""


# -- shared filters ---------------------------------------------------------------------------


def _where(
    model: str,
    *,
    since: datetime | None,
    until: datetime | None,
    version: str | None,
    variant: str | None,
    alias: str = "",
    ts: str = "ts",
) -> tuple[str, list]:
    a = f"{alias}." if alias else ""
    clauses, params = [f"{a}model_name = ?"], [model]
    for column, value in (("model_version", version), ("variant", variant)):
        if value is not None:
            clauses.append(f"{a}{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append(f"{a}{ts} >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{a}{ts} < ?")
        params.append(until)
    return " AND ".join(clauses), params


def _lake_period(function):
    """Run a period function (store, model, *, since, until, ...) reading only the lake
    files its period may touch: a page's month of a lake, not its history."""

    @functools.wraps(function)
    def run(store: Store, model: str, *args, since=None, until=None, **kwargs):
        with lake_manifest.period(store, model, since, until):
            return function(store, model, *args, since=since, until=until, **kwargs)

    return run


@dataclass(frozen=True)
class ModelTask:
    """A model's task and, for binary classifiers, its positive and negative class."""

    task: str
    positive: str | None = None
    negative: str | None = None

    @property
    def binary(self) -> bool:
        return self.task == "binary_classification"


def model_task(store: Store, model: str) -> ModelTask:
    with store.cursor() as cur:
        info = catalog.model_info(cur, model)
        if info is None:
            known = ", ".join(catalog.model_names(cur)) or "none registered"
            raise LayerError(f"unknown model {model!r} (known: {known})")
        if info["task"] != "binary_classification":
            return ModelTask(info["task"])
        positive = catalog.positive_class(cur, model)
        classes = catalog.model_classes(cur, model) or []
        negative = next((c for c in classes if c != positive), None)
        return ModelTask(info["task"], positive, negative)


def _window_end(frame: pd.DataFrame, grain: str) -> pd.DataFrame:
    if "window_start" in frame and len(frame):
        frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    frame.insert(1, "window_end", window_ends(frame["window_start"], grain))
    return frame


# -- infrastructure ----------------------------------------------------------------------------


@_lake_period
def infra_windows(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
) -> pd.DataFrame:
    """Requests, errors (status other than ok), latency percentiles (ms, linear
    interpolation as numpy's default) and requests per minute of window length.

    Columns: window_start, window_end, model_version, variant, requests, errors,
    error_rate, latency_p50, latency_p95, latency_p99, throughput_per_min.
    """
    bucket = bucket_sql(check_calendar_grain(grain))
    # a month has no fixed length: the rate divides by each window's own length
    end = f"window_start + INTERVAL 1 {grain.upper()}"
    where, params = _where(model, since=since, until=until, version=version, variant=variant)
    frame = store.query_df(
        f"""
        SELECT window_start, model_version, variant, requests, errors,
               errors / requests AS error_rate,
               q[1] AS latency_p50, q[2] AS latency_p95, q[3] AS latency_p99,
               requests / (epoch({end}) - epoch(window_start)) * 60 AS throughput_per_min
        FROM (
            SELECT {bucket} AS window_start, model_version, variant,
                   count(*) AS requests,
                   count(*) FILTER (WHERE status <> 'ok') AS errors,
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
            FROM predictions WHERE {where} GROUP BY ALL
        )
        ORDER BY window_start, model_version, variant
        """,
        params,
    )
    return _window_end(frame, grain)


def resource_windows(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
) -> pd.DataFrame:
    """Mean and max of each infrastructure metric (cpu_util %, memory_mb, replicas, ...).

    Columns: window_start, window_end, model_version, variant, metric, samples,
    value_mean, value_max.
    """
    bucket = bucket_sql(check_calendar_grain(grain))
    where, params = _where(model, since=since, until=until, version=version, variant=variant)
    frame = store.query_df(
        f"""
        SELECT {bucket} AS window_start, model_version, variant, metric,
               count(*) AS samples, avg(value) AS value_mean, max(value) AS value_max
        FROM infra_metrics WHERE {where} GROUP BY ALL
        ORDER BY window_start, model_version, variant, metric
        """,
        params,
    )
    return _window_end(frame, grain)


# -- performance -------------------------------------------------------------------------------


LABEL_CLOCK_SLACK = lake_manifest.LABEL_CLOCK_SLACK  # labels stamped before their period


def _labelled_relation(
    model: str,
    task: ModelTask,
    *,
    grain: str,
    since,
    until,
    version,
    variant,
    as_of,
) -> tuple[str, list]:
    """Served predictions (status ok) left-joined with the labels known by `as_of`.

    Columns: window_start, model_version, variant, score, predicted_label, actual_value,
    actual_label, has_label.
    """
    where, params = _where(
        model, since=since, until=until, version=version, variant=variant, alias="p"
    )
    label_filter = ""
    label_params: list = [model]
    if as_of is not None:
        label_filter = "AND labeled_at <= ?"
        label_params.append(as_of)
    if since is not None:
        # a label comes after its prediction: labels older than the period (with a week's
        # slack for clocks) cannot join it, and skipping them skips most of a lake's files
        label_filter += " AND labeled_at >= ?"
        label_params.append(since - LABEL_CLOCK_SLACK)
    label_sql, label_sql_params = predicted_label_sql("p", task)
    sql = f"""
        SELECT {bucket_sql(grain, "p.ts")} AS window_start, p.model_version, p.variant,
               p.prediction AS score, {label_sql} AS predicted_label,
               l.actual_value, l.actual_label, l.prediction_id IS NOT NULL AS has_label
        FROM predictions p
        LEFT JOIN (SELECT prediction_id, actual_value, actual_label FROM labels
                   WHERE model_name = ? {label_filter}) l
               ON l.prediction_id = p.prediction_id
        WHERE {where} AND p.status = 'ok'
    """
    return sql, label_sql_params + label_params + params


def predicted_label_sql(alias: str, task: ModelTask) -> tuple[str, list]:
    """The predicted label; for binary models without one, score >= 0.5 means positive.

    Returns (sql, params): the class names are bound as positional parameters, so the
    caller puts these params where the SQL lands in its statement's `?` order."""
    if task.positive is None or task.negative is None:
        return f"{alias}.predicted_label", []
    return (
        f"coalesce({alias}.predicted_label, CASE WHEN {alias}.prediction >= 0.5 THEN ? "
        f"WHEN {alias}.prediction < 0.5 THEN ? END)",
        [task.positive, task.negative],
    )


def _reference_relation(model: str, version: str, task: ModelTask) -> tuple[str, list]:
    table = quote_ident(reference_table(model))
    label_sql, label_params = predicted_label_sql("r", task)
    sql = f"""
        SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00' AS window_start, r.model_version,
               'reference' AS variant,
               r.prediction AS score, {label_sql} AS predicted_label,
               r.actual_value, r.actual_label,
               (r.actual_value IS NOT NULL OR r.actual_label IS NOT NULL) AS has_label
        FROM {table} r WHERE r.model_version = ?
    """
    return sql, [*label_params, version]


def _classification_counts(store: Store, relation: str, params: list, positive: str | None):
    """Per group: predictions, labelled, and the confusion counts / rank sums for AUC."""
    if positive is None:  # multiclass: per-class counts, macro-averaged in Python
        return store.query_df(
            f"""
            WITH rel AS MATERIALIZED ({relation})
            SELECT window_start, model_version, variant, predictions, labelled,
                   list(struct_pack(cls := cls, tp := tp, pred := pred, act := act)) AS classes
            FROM (
                SELECT r.window_start, r.model_version, r.variant, c.cls,
                       count(*) FILTER (WHERE has_label AND predicted_label = c.cls
                                         AND actual_label = c.cls) AS tp,
                       count(*) FILTER (WHERE has_label AND predicted_label = c.cls) AS pred,
                       count(*) FILTER (WHERE has_label AND actual_label = c.cls) AS act
                FROM rel r, (SELECT DISTINCT actual_label AS cls FROM rel
                             WHERE actual_label IS NOT NULL
                             UNION SELECT DISTINCT predicted_label FROM rel
                             WHERE has_label AND predicted_label IS NOT NULL) c
                GROUP BY ALL
            ) per_class
            JOIN (SELECT window_start, model_version, variant, count(*) AS predictions,
                         count(*) FILTER (WHERE has_label) AS labelled
                  FROM rel GROUP BY ALL) totals USING (window_start, model_version, variant)
            GROUP BY window_start, model_version, variant, predictions, labelled
            """,
            params,
        )
    # AUC = (sum of positives' mid-ranks - n1 (n1 + 1) / 2) / (n1 n0): the Mann-Whitney U
    # statistic, with ties sharing the average of their ranks (as roc_auc_score counts
    # a tied positive/negative pair as one half).
    return store.query_df(
        f"""
        WITH rel AS MATERIALIZED ({relation}),
        lab AS (
            SELECT window_start, model_version, variant, score, predicted_label,
                   actual_label = ? AS y, predicted_label = ? AS y_hat
            FROM rel WHERE has_label AND actual_label IS NOT NULL
        ),
        ranked AS (
            SELECT window_start, model_version, variant, y,
                   rank() OVER (PARTITION BY window_start, model_version, variant
                                ORDER BY score)
                   + (count(*) OVER (PARTITION BY window_start, model_version, variant, score)
                      - 1) / 2.0 AS r
            FROM lab WHERE score IS NOT NULL
        ),
        auc AS (
            SELECT window_start, model_version, variant,
                   count(*) FILTER (WHERE y) AS auc_pos, count(*) FILTER (WHERE NOT y) AS auc_neg,
                   sum(r) FILTER (WHERE y) AS rank_sum
            FROM ranked GROUP BY ALL
        ),
        conf AS (
            SELECT window_start, model_version, variant,
                   count(*) FILTER (WHERE predicted_label IS NOT NULL) AS n,
                   count(*) FILTER (WHERE y AND y_hat) AS tp,
                   count(*) FILTER (WHERE NOT y AND y_hat) AS fp,
                   count(*) FILTER (WHERE y AND NOT y_hat) AS fn,
                   count(*) FILTER (WHERE NOT y AND NOT y_hat) AS tn
            FROM lab GROUP BY ALL
        ),
        totals AS (
            SELECT window_start, model_version, variant, count(*) AS predictions,
                   count(*) FILTER (WHERE has_label) AS labelled
            FROM rel GROUP BY ALL
        )
        SELECT t.*, c.n, c.tp, c.fp, c.fn, c.tn, a.auc_pos, a.auc_neg, a.rank_sum
        FROM totals t
        LEFT JOIN conf c USING (window_start, model_version, variant)
        LEFT JOIN auc a USING (window_start, model_version, variant)
        """,
        [*params, positive, positive],
    )


def _regression_sums(store: Store, relation: str, params: list) -> pd.DataFrame:
    return store.query_df(
        f"""
        WITH rel AS MATERIALIZED ({relation})
        SELECT window_start, model_version, variant, count(*) AS predictions,
               count(*) FILTER (WHERE has_label) AS labelled,
               count(*) FILTER (WHERE has_label AND score IS NOT NULL
                                AND actual_value IS NOT NULL) AS n,
               avg(abs(score - actual_value)) AS mae,
               stddev_samp(abs(score - actual_value)) AS abs_sd,
               sqrt(avg((score - actual_value) ^ 2)) AS rmse,
               avg(score - actual_value) AS bias
        FROM rel GROUP BY ALL
        """,
        params,
    )


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN, NaN for n = 0)."""
    from lifecycle.drift import noise

    return noise.wilson(successes, n, z)


def auc_interval(auc: float, n_pos: int, n_neg: int, z: float = Z95) -> tuple[float, float]:
    """Hanley & McNeil (1982) normal interval of a ROC AUC, clipped to [0, 1]."""
    if not n_pos or not n_neg or auc is None or math.isnan(auc):
        return math.nan, math.nan
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def _ratio(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def _binary_metrics(row) -> dict[str, float]:
    n = int(row.n or 0) if not pd.isna(row.n) else 0
    tp, fp, fn, tn = (0 if pd.isna(v) else int(v) for v in (row.tp, row.fp, row.fn, row.tn))
    out = dict.fromkeys(
        [*CLASSIFICATION_METRICS, "accuracy_low", "accuracy_high", "roc_auc_low", "roc_auc_high"],
        math.nan,
    )
    if n >= MIN_LABELS:
        out["accuracy"] = _ratio(tp + tn, n)
        out["accuracy_low"], out["accuracy_high"] = wilson_interval(tp + tn, n)
        out["precision"] = _ratio(tp, tp + fp)
        out["recall"] = _ratio(tp, tp + fn)
        out["f1"] = _ratio(2 * tp, 2 * tp + fp + fn)
    n1 = 0 if pd.isna(row.auc_pos) else int(row.auc_pos)
    n0 = 0 if pd.isna(row.auc_neg) else int(row.auc_neg)
    if n1 + n0 >= MIN_LABELS and n1 and n0:
        auc = (float(row.rank_sum) - n1 * (n1 + 1) / 2) / (n1 * n0)
        out["roc_auc"] = auc
        out["roc_auc_low"], out["roc_auc_high"] = auc_interval(auc, n1, n0)
    return out


def _multiclass_metrics(row) -> dict[str, float]:
    """Accuracy and macro precision / recall / F1 over the classes seen in labels or
    predictions (a class never predicted scores 0 precision, as scikit-learn does)."""
    out = dict.fromkeys(
        [*CLASSIFICATION_METRICS, "accuracy_low", "accuracy_high", "roc_auc_low", "roc_auc_high"],
        math.nan,
    )
    classes = [c for c in (row.classes if row.classes is not None else []) if c["act"] or c["pred"]]
    n = sum(c["act"] for c in classes)
    correct = sum(c["tp"] for c in classes)
    if n < MIN_LABELS:
        return out
    out["accuracy"] = correct / n
    out["accuracy_low"], out["accuracy_high"] = wilson_interval(correct, n)
    precision = [c["tp"] / c["pred"] if c["pred"] else 0.0 for c in classes]
    recall = [c["tp"] / c["act"] if c["act"] else 0.0 for c in classes]
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision, recall, strict=True)]
    out["precision"], out["recall"], out["f1"] = (
        float(np.mean(v)) for v in (precision, recall, f1)
    )
    return out


def _regression_metrics(row) -> dict[str, float]:
    out = dict.fromkeys([*REGRESSION_METRICS, "mae_low", "mae_high"], math.nan)
    n = 0 if pd.isna(row.n) else int(row.n)
    if n >= MIN_LABELS:
        out.update(mae=float(row.mae), rmse=float(row.rmse), bias=float(row.bias))
        half = Z95 * float(row.abs_sd) / math.sqrt(n)
        out["mae_low"], out["mae_high"] = max(0.0, out["mae"] - half), out["mae"] + half
    return out


def metrics_frame(store: Store, task: ModelTask, relation: str, params: list):
    """The task's metrics per (window_start, model_version, variant) over `relation`, a SQL
    relation of labelled rows (also used by the promotion gates and the review pack)."""
    if task.task == "regression":
        sums = _regression_sums(store, relation, params)
        compute = _regression_metrics
    else:
        sums = _classification_counts(store, relation, params, task.positive)
        compute = _binary_metrics if task.binary else _multiclass_metrics
    metrics = pd.DataFrame([compute(r) for r in sums.itertuples(index=False)])
    base = sums[["window_start", "model_version", "variant", "predictions", "labelled"]].copy()
    base["coverage"] = base["labelled"] / base["predictions"].where(base["predictions"] > 0)
    frame = pd.concat([base.reset_index(drop=True), metrics], axis=1)
    for column in frame.columns[3:]:
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    for column in ("predictions", "labelled"):
        frame[column] = frame[column].fillna(0).astype("int64")
    return frame


def _metric_columns(task: str) -> list[str]:
    if task == "regression":
        return [*REGRESSION_METRICS, "mae_low", "mae_high"]
    return [*CLASSIFICATION_METRICS, "accuracy_low", "accuracy_high", "roc_auc_low", "roc_auc_high"]


@_lake_period
def performance_windows(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """The task's metrics per window on the labelled predictions (status ok).

    A prediction belongs to the window of its own ts; a label counts only if it had
    arrived by `as_of` (labeled_at <= as_of) when given. Columns: window_start,
    window_end, model_version, variant, predictions, labelled,
    coverage (labelled / predictions), then classification: accuracy, precision,
    recall, f1 (of the positive class; macro for multiclass), roc_auc, accuracy_low /
    accuracy_high (Wilson 95%), roc_auc_low / roc_auc_high (Hanley-McNeil 95%);
    regression: mae, rmse, bias (mean prediction - actual), mae_low / mae_high (normal
    95%). Metrics are NaN where fewer than MIN_LABELS labelled rows exist (or a ratio is
    undefined, e.g. precision with no positive predictions; AUC with one class).
    """
    check_calendar_grain(grain)
    task = model_task(store, model)
    relation, params = _labelled_relation(
        model,
        task,
        grain=grain,
        since=since,
        until=until,
        version=version,
        variant=variant,
        as_of=as_of,
    )
    frame = metrics_frame(store, task, relation, params)
    if frame.empty:
        frame = pd.DataFrame(
            columns=[*KEYS, "predictions", "labelled", "coverage", *_metric_columns(task.task)]
        )
    frame = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
    return _window_end(frame, grain)


def reference_performance(store: Store, model: str, version: str) -> dict[str, Any]:
    """The same metrics on the version's reference (validation) data from its spec.

    Keys: the metric names of the task (plus intervals), `labelled` and `predictions`.
    Metrics are NaN where the reference has fewer than MIN_LABELS labelled rows.
    """
    task = model_task(store, model)
    with store.cursor() as cur:
        if version not in catalog.version_names(cur, model):
            raise LayerError(f"{model} has no version {version!r}")
    relation, params = _reference_relation(model, version, task)
    frame = metrics_frame(store, task, relation, params)
    if frame.empty:
        return dict.fromkeys(["predictions", "labelled", *_metric_columns(task.task)], math.nan)
    row = frame.iloc[0]
    return {
        k: (int(row[k]) if k in ("predictions", "labelled") else float(row[k]))
        for k in ["predictions", "labelled", *_metric_columns(task.task)]
    }


ESTIMATED_COLUMNS = [
    "window_start", "window_end", "model_version", "variant", "metric", "estimate", "low",
    "high", "reference_value", "severity", "status", "reason", "basis", "predictions",
]  # fmt: skip


def estimated_windows(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
    reference: str = "spec",
) -> pd.DataFrame:
    """Performance estimated from the predictions (before labels), per window and metric.

    Read from the stored `estimated_performance` results of lifecycle.monitor (CBPE for
    classifiers, DLE for regressors: lifecycle.estimation); nothing is computed here.
    Columns: window_start, window_end, model_version, variant, metric, estimate, low / high
    (95% band), reference_value (the version's realized metric on its reference), severity,
    status ("ok", or "insufficient_data" with NaN numbers and the `reason`), basis, and
    predictions (the scored predictions the estimate used). `since` / `until` bound
    window_start. Windows not monitored yet have no row (lifecycle.layers.unmonitored_windows).
    """
    from lifecycle.drift import results as stored_results

    frame = stored_results(
        store, model, version=version, variant=variant, grain=grain, since=since,
        until=until, reference=reference, check="estimated_performance",
    )  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=ESTIMATED_COLUMNS)
    ok = frame["status"] == "ok"

    def detail(key: str) -> list:
        return [d.get(key) for d in frame["details"]]

    out = frame[["window_start", "window_end", "model_version", "variant"]].assign(
        metric=frame["subject"],
        estimate=frame["statistic"].where(ok).astype(float),
        low=pd.to_numeric(pd.Series(detail("low"), index=frame.index)).astype(float),
        high=pd.to_numeric(pd.Series(detail("high"), index=frame.index)).astype(float),
        reference_value=pd.to_numeric(
            pd.Series(detail("reference_value"), index=frame.index)
        ).astype(float),
        severity=frame["severity"].fillna("none"),
        status=frame["status"],
        reason=detail("reason"),
        basis=detail("basis"),
        predictions=frame["n_current"],
    )
    out["window_start"] = pd.to_datetime(out["window_start"], utc=True)
    out["window_end"] = pd.to_datetime(out["window_end"], utc=True)
    order = ["window_start", "model_version", "variant", "metric"]
    return out.sort_values(order, kind="stable").reset_index(drop=True)[ESTIMATED_COLUMNS]


def live_estimate(
    store: Store,
    model: str,
    version: str,
    *,
    variant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """A version's performance estimated on its live traffic (labels pending): per metric,
    the mean of its stored window estimates weighted by each window's predictions, over
    windows starting in [since, until) of `variant` (any when None), at the model's
    monitored grain. Keys: metrics (name -> estimate), predictions, windows, basis ("estimated
    from N predictions, labels pending"), reason (why there is none; then metrics is empty).
    """
    from lifecycle.coverage import layer_grains

    grain = layer_grains(store, model)["drift"]
    frame = estimated_windows(store, model, grain=grain, version=version, variant=variant,
                              since=since, until=until)  # fmt: skip
    have = frame[frame["estimate"].notna()]
    if have.empty:
        reasons = frame["reason"].dropna()
        reason = (
            f"no estimate: {reasons.value_counts().index[0]}" if len(reasons)
            else f"no estimated performance stored for {version}'s traffic"
        )  # fmt: skip
        return {"metrics": {}, "predictions": 0, "windows": 0, "basis": None, "reason": reason}
    weights = have["predictions"].astype(float)
    metrics = {
        metric: float((part["estimate"] * weights[part.index]).sum() / weights[part.index].sum())
        for metric, part in have.groupby("metric")
    }
    # every metric is estimated from the same windows: count one metric's predictions
    first = have[have["metric"] == have["metric"].iloc[0]]
    predictions = int(first["predictions"].sum())
    return {
        "metrics": metrics,
        "predictions": predictions,
        "windows": int(first["window_start"].nunique()),
        "basis": f"estimated from {predictions:,} predictions, labels pending",
        "reason": None,
    }


@_lake_period
def confusion_matrix(
    store: Store,
    model: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Counts of (actual, predicted) labels over the labelled predictions of the period.

    Columns: actual, predicted, count. Empty for regression models or without labels.
    """
    task = model_task(store, model)
    if task.task == "regression":
        return pd.DataFrame(columns=["actual", "predicted", "count"])
    relation, params = _labelled_relation(
        model,
        task,
        grain="day",
        since=since,
        until=until,
        version=version,
        variant=variant,
        as_of=as_of,
    )
    return store.query_df(
        f"SELECT actual_label AS actual, predicted_label AS predicted, count(*) AS count "
        f"FROM ({relation}) WHERE has_label AND actual_label IS NOT NULL "
        "AND predicted_label IS NOT NULL GROUP BY ALL ORDER BY 1, 2",
        params,
    )


@_lake_period
def calibration_bins(
    store: Store,
    model: str,
    *,
    bins: int = 10,
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Reliability of a binary classifier's score: `bins` equal-width score bins on [0, 1].

    Columns: bin_left, bin_right, labelled, mean_score, observed_rate (share of the
    positive class), observed_low / observed_high (Wilson 95%). Empty bins are omitted.
    """
    task = model_task(store, model)
    columns = ["bin_left", "bin_right", "labelled", "mean_score", "observed_rate"]
    if not task.binary:
        return pd.DataFrame(columns=[*columns, "observed_low", "observed_high"])
    relation, params = _labelled_relation(
        model,
        task,
        grain="day",
        since=since,
        until=until,
        version=version,
        variant=variant,
        as_of=as_of,
    )
    frame = store.query_df(
        f"""
        SELECT least(floor(score * {int(bins)}), {int(bins) - 1})::INTEGER AS k,
               count(*) AS labelled, avg(score) AS mean_score,
               avg(CASE WHEN actual_label = ? THEN 1.0 ELSE 0.0 END) AS observed_rate
        FROM ({relation}) WHERE has_label AND score IS NOT NULL AND actual_label IS NOT NULL
        GROUP BY k ORDER BY k
        """,
        [task.positive, *params],
    )
    frame.insert(0, "bin_left", frame.pop("k") / bins)
    frame.insert(1, "bin_right", frame["bin_left"] + 1 / bins)
    intervals = [
        wilson_interval(r * n, n)
        for r, n in zip(frame["observed_rate"], frame["labelled"], strict=True)
    ]
    frame["observed_low"] = [lo for lo, _ in intervals]
    frame["observed_high"] = [hi for _, hi in intervals]
    return frame


@_lake_period
def residual_histogram(
    store: Store,
    model: str,
    *,
    bins: int = 40,
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Histogram of residuals (prediction - actual) of a regression model, counted in SQL.

    Columns: bin_left, bin_right, count over equal-width bins between the 0.5% and 99.5%
    residual quantiles (the tails are counted in the first and last bin); `attrs` holds
    n, mean and the clipped share.
    """
    task = model_task(store, model)
    columns = ["bin_left", "bin_right", "count"]
    if task.task != "regression":
        return pd.DataFrame(columns=columns)
    relation, params = _labelled_relation(
        model,
        task,
        grain="day",
        since=since,
        until=until,
        version=version,
        variant=variant,
        as_of=as_of,
    )
    residuals = (
        f"SELECT score - actual_value AS e FROM ({relation}) "
        "WHERE has_label AND score IS NOT NULL AND actual_value IS NOT NULL"
    )
    with store.cursor() as cur:
        n, mean, lo, hi = cur.execute(
            f"SELECT count(*), avg(e), quantile_cont(e, 0.005), quantile_cont(e, 0.995) "
            f"FROM ({residuals})",
            params,
        ).fetchall()[0]
        if not n:
            frame = pd.DataFrame(columns=columns)
            frame.attrs.update(n=0, mean=math.nan, clipped_share=0.0)
            return frame
        span = (hi - lo) or 1.0
        rows = cur.execute(
            f"SELECT greatest(least(floor((e - ?) / ? * ?), ? - 1), 0)::BIGINT AS k, count(*), "
            "count(*) FILTER (WHERE e < ? OR e > ?) "
            f"FROM ({residuals}) GROUP BY k ORDER BY k",
            [lo, span, bins, bins, lo, hi, *params],
        ).fetchall()
    counts = np.zeros(bins, dtype=np.int64)
    clipped = 0
    for k, c, out in rows:
        counts[k] += c
        clipped += out
    edges = lo + np.arange(bins + 1) * (span / bins)
    frame = pd.DataFrame({"bin_left": edges[:-1], "bin_right": edges[1:], "count": counts})
    frame.attrs.update(n=int(n), mean=float(mean), clipped_share=clipped / n)
    return frame


def label_delay(
    store: Store, model: str, *, version: str | None = None, variant: str | None = None
) -> dict[str, float | int | None]:
    """How late labels arrive: median and 90th percentile of labeled_at - ts (hours) over
    the labelled predictions, and how many predictions have a label at all."""
    where, params = _where(
        model, since=None, until=None, version=version, variant=variant, alias="p"
    )
    row = store.query_all(
        f"""
        SELECT count(*), count(l.prediction_id),
               quantile_cont(epoch(l.labeled_at - p.ts) / 3600.0, [0.5, 0.9])
        FROM predictions p
        LEFT JOIN labels l ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name
        WHERE {where} AND p.status = 'ok'
        """,
        params,
    )[0]
    quantiles = row[2] or [None, None]
    return {"predictions": int(row[0]), "labelled": int(row[1]),
            "p50_hours": quantiles[0], "p90_hours": quantiles[1]}  # fmt: skip


# -- business ---------------------------------------------------------------------------------


def business_windows(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
) -> pd.DataFrame:
    """Each KPI per window of its event time, beside the model's output.

    Events are tied to the prediction they follow (prediction_id), which gives their
    version and variant; events without a prediction id have NULL version and variant
    (and are left out when a version or variant is asked for). Columns: window_start,
    window_end, model_version, variant, kpi, events, value_mean, mean_prediction (mean
    score or value of the predictions behind the events).
    """
    bucket = bucket_sql(check_calendar_grain(grain), "e.ts")
    where, params = _where(model, since=since, until=until, version=None, variant=None, alias="e")
    if not store.query_one(f"SELECT count(*) FROM business_events e WHERE {where}", params)[0]:
        # no event: no KPI row, and no join with every prediction of the logs
        frame = pd.DataFrame(columns=[*KEYS, "kpi", "events", "value_mean", "mean_prediction"])
        return _window_end(frame, grain)
    for column, value in (("p.model_version", version), ("p.variant", variant)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    frame = store.query_df(
        f"""
        SELECT {bucket} AS window_start, p.model_version, p.variant, e.kpi,
               count(*) AS events, avg(e.value) AS value_mean,
               avg(p.prediction) AS mean_prediction
        FROM business_events e
        LEFT JOIN predictions p ON p.prediction_id = e.prediction_id
             AND p.model_name = e.model_name
        WHERE {where} GROUP BY ALL
        ORDER BY window_start, model_version, variant, kpi
        """,
        params,
    )
    return _window_end(frame, grain)


# -- data quality -----------------------------------------------------------------------------


def quality_summary(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
    reference: str = "spec",
) -> pd.DataFrame:
    """Stored data-quality results (lifecycle.monitor) per window and check.

    One row per (window, version, variant, tier, check, subject) with the affected share
    (`rate`), severity, response, rows and up to five offending rows (`examples`).
    """
    from lifecycle.drift import results as stored_results

    frame = stored_results(
        store,
        model,
        version=version,
        variant=variant,
        grain=grain,
        since=since,
        until=until,
        reference=reference,
        layer="quality",
    )
    columns = [
        "window_start",
        "window_end",
        "model_version",
        "variant",
        "tier",
        "check_name",
        "subject",
        "method",
        "rate",
        "severity",
        "response",
        "n_current",
        "status",
        "examples",
        "details",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    # serving_state's statistic is the count of mismatched requests (alert evidence reads
    # it); its share of the window's requests is its effect size
    counted = frame["check_name"].eq("serving_state")
    frame = frame.assign(
        rate=frame["effect_size"].where(counted, frame["statistic"]),
        examples=[d.get("examples") or [] for d in frame["details"]],
    )
    return frame[columns].reset_index(drop=True)


# -- freshness ------------------------------------------------------------------------------


def freshness(store: Store, model: str) -> dict[str, Any]:
    """When each kind of log was last written (its newest time stamp) and last received
    (a lake's newest files only: lake_manifest.edges)."""
    with lake_manifest.edges(store, model):
        row = _freshness_row(store, model)
    keys = ("last_prediction", "last_label", "last_business_event", "last_infra_metric")
    return {**dict(zip(keys, row[:4], strict=True)), "last_received": row[4],
            "read_in_place": bool(row[5])}  # fmt: skip


def _freshness_row(store: Store, model: str) -> tuple:
    return store.query_all(
        """
        SELECT (SELECT max(ts) FROM predictions WHERE model_name = $m),
               (SELECT max(labeled_at) FROM labels WHERE model_name = $m),
               (SELECT max(ts) FROM business_events WHERE model_name = $m),
               (SELECT max(ts) FROM infra_metrics WHERE model_name = $m),
               (SELECT max(received_at) FROM ingest_batches WHERE model_name = $m),
               (SELECT count(*) FROM external_sources WHERE model_name = $m)
        """,
        {"m": model},
    )[0]


# -- page context -------------------------------------------------------------------------------


def model_context(store: Store, model: str) -> dict[str, Any]:
    """What the monitoring pages need to set up their controls for one model.

    Keys: task, risk_tier, positive_class, versions (list of {version, state}, newest
    first), production_version, variants (version -> variants with predictions), first_ts /
    last_ts of its predictions (version_spans: the same per version), kpis (name -> {unit, direction, description}), features
    (name -> numeric / categorical, of the newest spec).
    """
    task = model_task(store, model)
    with store.cursor() as cur:
        info = catalog.model_info(cur, model)
        versions = cur.execute(
            "SELECT version, state FROM model_versions WHERE model_name = ? "
            "ORDER BY registered_at DESC",
            [model],
        ).fetchall()
        spec = catalog.latest_spec(cur, model) or {}
        kpis: dict[str, dict] = {}
        for version, _ in versions:
            for kpi in catalog.version_spec(cur, model, version).get("kpis", []):
                kpis.setdefault(kpi["name"], kpi)
    with lake_manifest.edges(store, model), store.cursor() as cur:  # a lake's edge files
        spans = cur.execute(
            "SELECT model_version, variant, min(ts), max(ts) FROM predictions "
            "WHERE model_name = ? GROUP BY ALL ORDER BY 1, 2",
            [model],
        ).fetchall()
    variants: dict[str, list[str]] = {}
    for version, variant, _, _ in spans:
        variants.setdefault(version, []).append(variant)
    production = next((v for v, s in versions if s == "production"), None)
    return {
        "task": task.task,
        "risk_tier": info["risk_tier"],
        "positive_class": task.positive,
        "versions": [{"version": v, "state": s} for v, s in versions],
        "production_version": production,
        "variants": variants,
        "first_ts": min((s[2] for s in spans), default=None),
        "last_ts": max((s[3] for s in spans), default=None),
        "version_spans": {
            v: (min(s[2] for s in spans if s[0] == v), max(s[3] for s in spans if s[0] == v))
            for v in variants
        },
        "kpis": kpis,
        "features": {f["name"]: f["type"] for f in spec.get("features", [])},
    }


def results_version(store: Store, model: str) -> tuple[int, Any]:
    """Changes whenever monitor results of the model are written: a cache key for pages."""
    row = store.query_all(
        "SELECT count(*), max(computed_at) FROM monitor_results WHERE model_name = ?", [model]
    )[0]
    return int(row[0]), row[1]


def unmonitored_windows(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    reference: str = "spec",
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
    variant: str | None = None,
) -> int:
    """How many windows with predictions have no stored data-check results yet
    (run lifecycle.monitor.monitor_model to compute them). For chunk grains only complete
    chunks count (the trailing one is not judged until it is full)."""
    if chunk_size(check_grain(grain)):
        return _unmonitored_chunks(store, model, grain, reference, since, until, version, variant)
    bucket = bucket_sql(grain)
    # a window starting at or after `since` holds rows from `since` on: the ts bound lets
    # the query (and a lake's manifest) skip the history before the period
    where, params = _where(model, since=since, until=None, version=version, variant=variant)
    window_filter, window_params = "", []
    if since is not None:
        window_filter += f" AND {bucket} >= ?"
        window_params.append(since)
    if until is not None:
        window_filter += f" AND {bucket} < ?"
        window_params.append(until)
    with lake_manifest.period(store, model, since):
        row = _unmonitored_count(store, bucket, where, window_filter,
                                 [*params, *window_params, model, grain, reference])  # fmt: skip
    return int(row[0][0])


def _unmonitored_count(store: Store, bucket: str, where: str, window_filter: str, params: list):
    return store.query_all(
        f"""
        SELECT count(*) FROM (
            SELECT DISTINCT model_version, variant, {bucket} AS window_start FROM predictions
            WHERE {where}{window_filter}
        ) w
        WHERE NOT EXISTS (
            SELECT 1 FROM monitor_results r
            WHERE r.model_name = ? AND r.grain = ? AND r.reference_kind = ?
              AND r.check_name = 'data_drift' AND r.model_version = w.model_version
              AND r.variant = w.variant AND r.window_start = w.window_start
        )
        """,
        params,
    )


def _unmonitored_chunks(store, model, grain, reference, since, until, version, variant) -> int:
    with store.cursor() as cur:
        found = list_windows(
            cur, model, grain, version=version, variant=variant, since=since, until=until
        )
        stored = cur.execute(
            "SELECT DISTINCT model_version, variant, window_start FROM monitor_results "
            "WHERE model_name = ? AND grain = ? AND reference_kind = ? "
            "AND check_name = 'data_drift'",
            [model, grain, reference],
        ).fetchall()
    done = {(v, var, pd.Timestamp(start)) for v, var, start in stored}
    return sum(
        1
        for w in found
        if w.complete
        and (w.window.version, w.window.variant, pd.Timestamp(w.window.start)) not in done
    )


DRIFT_ROW_PREFIX = {
    "prediction_drift": "prediction · ",
    "multivariate_drift": "multivariate · ",
    "performance_drift": "concept · performance ",
    "concept_drift": "concept · surrogate ",
}


def drift_cells(stored: pd.DataFrame) -> pd.DataFrame:
    """Rows for a drift heatmap from stored results (lifecycle.drift.results): features
    first (their own names), then prediction, multivariate and concept rows (prefixed).

    Columns: row, check_name, subject, window_start, severity, status, effect_size.
    """
    columns = ["row", "check_name", "subject", "window_start", "severity", "status",
               "effect_size"]  # fmt: skip
    if stored.empty:
        return pd.DataFrame(columns=columns)
    order = ["data_drift", *DRIFT_ROW_PREFIX]
    part = stored[stored["check_name"].isin(order)].copy()
    part["row"] = [
        DRIFT_ROW_PREFIX.get(c, "") + s
        for c, s in zip(part["check_name"], part["subject"], strict=True)
    ]
    part["_order"] = part["check_name"].map(order.index)
    part = part.sort_values(["_order", "window_start"], kind="stable")
    return part[columns].reset_index(drop=True)


def worst_cell(cells: pd.DataFrame, check: str | None = None) -> tuple[str, Any] | None:
    """(subject, window_start) of the most severe result of `check`: highest severity,
    then the subject flagged in most windows, then the latest window. Without `check`: of
    feature drift, else of prediction drift when no feature is flagged but the prediction is
    (the cells an investigation opens on)."""
    from lifecycle.drift.severity import severity_rank

    if check is None:
        flagged = set(_flagged(cells)["check_name"])
        check = "prediction_drift" if flagged.isdisjoint({"data_drift"}) and (
            "prediction_drift" in flagged) else "data_drift"  # fmt: skip
    part = cells[cells["check_name"] == check]
    if part.empty:
        return None
    part = part.assign(rank=[severity_rank(s) for s in part["severity"]])
    flagged = part.groupby("subject")["rank"].transform(lambda r: int((r > 0).sum()))
    part = part.assign(flagged=flagged)
    best = part.sort_values(["rank", "flagged", "window_start"], kind="stable").iloc[-1]
    return best["subject"], best["window_start"]


def findings_elsewhere(cells: pd.DataFrame) -> list[str]:
    """Heatmap rows with a flagged result when no feature or prediction cell is flagged:
    the investigation's evidence is then in the multivariate or concept sections."""
    flagged = _flagged(cells)
    if flagged["check_name"].isin(["data_drift", "prediction_drift"]).any():
        return []
    return list(dict.fromkeys(flagged["row"]))


def _flagged(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells graded minor or worse."""
    from lifecycle.drift.severity import severity_rank

    return cells[[severity_rank(s) > 0 for s in cells["severity"]]]


# -- portfolio ----------------------------------------------------------------------------------

PORTFOLIO_LAYERS = ("infrastructure", "performance", "business", "data_quality", "drift")
# by rank; a layer whose evaluations were all insufficient had no verdict: not evaluated
STATUS_ORDER = ("not evaluated", "not evaluated", "ok", "warning", "critical")


def portfolio_health(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """One row per model: production version, each layer's worst alert-rule outcome over
    the period's windows (production version and traffic), active alerts by severity and
    when data last arrived.

    Layer columns hold critical / warning / ok / not evaluated (no verdict in the period:
    every evaluation lacked data, or the alert check has not evaluated the layer) /
    awaiting labels (performance whose labels are not due yet); `performance_basis` is
    "estimated" when the performance verdict rests on estimated performance alone (no
    realized verdict as bad: labels pending), else "", and then `performance_estimate` says
    the headline metric's estimate ("roc_auc 0.731 (estimated, labels pending)");
    business is "no KPI" for
    a model whose specs declare none. `<layer>_checks` says how many checks had a verdict
    ("21/28": 7 were insufficient) and `evaluation` is the model's coverage state:
    "not evaluated" when its drift or performance had no verdict (lifecycle.coverage).
    Outcomes come from `alert_evaluations`, written by the scheduled check
    (lifecycle.alerts) on the model's declared grains; the period holds the windows that
    ended in (since, until], so a weekly or monthly window counts once it is complete.
    """
    have_alerts = store.table_exists("alert_evaluations")
    with lake_manifest.edges(store):  # last_prediction: the lakes' newest files
        base = _portfolio_base(store)
    for layer in PORTFOLIO_LAYERS:
        base[layer] = "not evaluated"
    with store.cursor() as cur:
        without_kpi = [m for m in base["model"] if not catalog.model_kpis(cur, m)]
    base.loc[base["model"].isin(without_kpi), "business"] = "no KPI"
    for layer in PORTFOLIO_LAYERS:
        base[f"{layer}_checks"] = ""
    base["evaluation"] = "not evaluated"
    base["performance_basis"] = ""
    base["performance_estimate"] = ""
    base["critical_alerts"] = 0
    base["warning_alerts"] = 0
    if not have_alerts or base.empty:
        return base
    outcomes = store.query_df(
        """
        SELECT e.model_name AS model, e.layer,
               max(CASE e.outcome WHEN 'critical' THEN 4 WHEN 'warning' THEN 3
                   WHEN 'ok' THEN 2 WHEN 'insufficient' THEN 1 ELSE 0 END) AS rank,
               max(CASE e.outcome WHEN 'critical' THEN 4 WHEN 'warning' THEN 3
                   WHEN 'ok' THEN 2 WHEN 'insufficient' THEN 1 ELSE 0 END)
                   FILTER (WHERE e.rule <> 'estimated_performance') AS realized_rank
        FROM alert_evaluations e
        JOIN model_versions v ON v.model_name = e.model_name AND v.version = e.model_version
             AND v.state = 'production'
        WHERE e.variant = 'production'
          AND ($since IS NULL OR e.window_end > $since)
          AND ($until IS NULL OR e.window_end <= $until)
        GROUP BY ALL
        """,
        {"since": since, "until": until},
    )
    for row in outcomes.itertuples(index=False):
        if row.layer in PORTFOLIO_LAYERS:
            base.loc[base["model"] == row.model, row.layer] = STATUS_ORDER[int(row.rank)]
        realized = 0 if pd.isna(row.realized_rank) else int(row.realized_rank)
        if row.layer == "performance" and row.rank > 1 and realized < row.rank:
            base.loc[base["model"] == row.model, "performance_basis"] = "estimated"
    _add_estimates(store, base, since, until)
    _add_coverage(store, base, since, until)
    active = store.query_df(
        "SELECT model_name AS model, severity, count(*) AS n FROM alerts "
        "WHERE state IN ('open', 'acknowledged') GROUP BY ALL"
    )
    for row in active.itertuples(index=False):
        column = f"{row.severity}_alerts"
        if column in base:
            base.loc[base["model"] == row.model, column] = int(row.n)
    return base


HEADLINE_METRIC = {"binary_classification": "roc_auc", "regression": "mae"}  # else accuracy


def _portfolio_base(store: Store) -> pd.DataFrame:
    return store.query_df(
        """
        SELECT m.name AS model, m.task, m.risk_tier,
               (SELECT max(version) FROM model_versions v
                WHERE v.model_name = m.name AND v.state = 'production') AS production_version,
               (SELECT max(received_at) FROM ingest_batches b
                WHERE b.model_name = m.name) AS last_received,
               (SELECT max(ts) FROM predictions p WHERE p.model_name = m.name) AS last_prediction
        FROM models m ORDER BY m.name
        """
    )


def _add_estimates(store: Store, base: pd.DataFrame, since, until) -> None:
    """For a performance verdict resting on estimates: the headline metric estimated on the
    production traffic of the period, e.g. "roc_auc 0.731 (estimated, labels pending)"."""
    for at in base.index[base["performance_basis"] == "estimated"]:
        model, version = base.at[at, "model"], base.at[at, "production_version"]
        found = live_estimate(store, model, version, variant="production", since=since,
                              until=until)  # fmt: skip
        metric = HEADLINE_METRIC.get(base.at[at, "task"], "accuracy")
        if metric in found["metrics"]:
            base.at[at, "performance_estimate"] = (
                f"{metric} {found['metrics'][metric]:.3f} (estimated, labels pending)"
            )


def _add_coverage(store: Store, base: pd.DataFrame, since, until) -> None:
    """Checks with a verdict per layer and the model's coverage state, for the production
    version's production traffic (lifecycle.coverage)."""
    from lifecycle import coverage

    # windows that ended in (since, until]: the same windows as window_start >= since
    frame = coverage.evaluation_coverage(store, list(base["model"]), since, until,
                                         variant="production")  # fmt: skip
    production = dict(zip(base["model"], base["production_version"], strict=True))
    frame = frame[frame["model_version"] == frame["model"].map(production)]
    base["evaluation"] = [
        "no traffic" if pd.notna(v) else "no production version" for v in base["production_version"]
    ]
    for row in frame.itertuples(index=False):
        at = base.index[base["model"] == row.model]
        base.loc[at, f"{row.layer}_checks"] = f"{row.verdicts}/{row.checks}" if row.checks else ""
        if row.state == "awaiting labels" and (base.loc[at, row.layer] == "not evaluated").all():
            base.loc[at, row.layer] = "awaiting labels"
    for model, rows in frame.groupby("model"):
        states = dict(zip(rows["layer"], rows["state"], strict=True))
        key = [states.get(layer, "not evaluated") for layer in coverage.KEY_LAYERS]
        if "not evaluated" in key:
            state = "not evaluated"
        elif "partly evaluated" in states.values():
            state = "partly evaluated"
        else:
            state = "evaluated"
        base.loc[base["model"] == model, "evaluation"] = state
