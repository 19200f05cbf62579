"""Fairness and segments over time: per window and group, what the model decides and how well.

For binary classifiers with declared sensitive attributes (the spec's `sensitive_attribute`
and `sensitive_attributes`, each a feature), per window and group of each attribute:
predictions, the positive rate (the share predicted positive), and where labels exist the
true positive rate (recall among actual positives). Per window and attribute:
- disparate impact: each group's positive rate over the highest group's; the 80% rule (the
  "four-fifths rule" of US employment guidelines) holds when every ratio is >= 0.8;
- equal opportunity difference: each group's true positive rate minus the highest group's
  (0 is parity).

Monitoring stores one `fairness` result per window and attribute, graded on what the window
proves rather than on the point ratio: the upper confidence bound of the lowest group's ratio
(groups of at least MIN_GROUP predictions) must fall below 0.8 for moderate, below 0.6 for
significant, so a 165-row day does not alarm on noise (the bound: the lowest group's upper Wilson bound over the highest's lower one, each at
95% split over both sides and Bonferroni-corrected for the pairs of groups, since the two
groups are picked after seeing the data). Alert rule `fairness` (performance layer) turns those grades into warnings and
critical alerts. `segments_over_time` gives the same per-window view of the logged `segment`
column for any task (predictions, mean score or positive rate, accuracy or MAE on labels).
All of it is DuckDB SQL with one row per window and group reaching Python.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import pandas as pd

from lifecycle import catalog, lake_manifest, layers
from lifecycle.drift.results_model import CheckResult
from lifecycle.drift.windows import Window, bucket_sql, utc_time
from lifecycle.store import Store, feature_column, feature_table, quote_ident

FOUR_FIFTHS = 0.8
SIGNIFICANT_RATIO = 0.6
MIN_GROUP = 30  # predictions a group needs to take part in a verdict


def attributes(spec: dict) -> list[str]:
    """The spec's sensitive attributes, the single one first."""
    names = [spec.get("sensitive_attribute"), *(spec.get("sensitive_attributes") or [])]
    return list(dict.fromkeys(n for n in names if n))


def _group_sql(model: str, attribute: str) -> str:
    return f"coalesce(CAST(f.{quote_ident(feature_column(attribute))} AS VARCHAR), '(missing)')"


def group_rates(
    store_or_cur, model: str, task, attribute: str, *, version: str | None, variant: str,
    start, end, grain: str | None,
) -> pd.DataFrame:  # fmt: skip
    """Per window (None: one window [start, end)) and group: predictions, positives,
    labelled, actual positives, true positives."""
    pred, params = layers.predicted_label_sql("p", task)
    window = bucket_sql(grain, "p.ts") if grain else "CAST(? AS TIMESTAMPTZ)"
    window_params = [] if grain else [utc_time(start)]
    sql = f"""
        SELECT {window} AS window_start, {_group_sql(model, attribute)} AS grp,
               count(*) AS predictions,
               count(*) FILTER (WHERE ({pred}) = ?) AS positives,
               count(l.prediction_id) AS labelled,
               count(*) FILTER (WHERE l.actual_label = ?) AS actual_positives,
               count(*) FILTER (WHERE l.actual_label = ? AND ({pred}) = ?) AS true_positives
        FROM predictions p
        JOIN {quote_ident(feature_table(model))} f ON f.prediction_id = p.prediction_id
        LEFT JOIN labels l ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name
             AND l.labeled_at >= ?
        WHERE p.model_name = ? AND (? IS NULL OR p.model_version = ?) AND p.variant = ?
          AND p.status = 'ok' AND p.ts >= ? AND p.ts < ?
        GROUP BY ALL ORDER BY 1, 2
    """
    args = [*window_params, *params, task.positive, task.positive, task.positive, *params,
            task.positive, utc_time(start) - layers.LABEL_CLOCK_SLACK, model, version, version,
            variant, utc_time(start), utc_time(end)]  # fmt: skip
    runner = store_or_cur.query_df if isinstance(store_or_cur, Store) else None
    if runner is not None:
        return runner(sql, args)
    return store_or_cur.execute(sql, args).df()


def with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Add positive_rate, tpr, disparate_impact and eo_difference (per window)."""
    if frame.empty:
        return frame.assign(positive_rate=[], tpr=[], disparate_impact=[], eo_difference=[])
    out = frame.copy()
    out["positive_rate"] = out["positives"] / out["predictions"]
    out["tpr"] = (out["true_positives"] / out["actual_positives"]).where(
        out["actual_positives"] >= MIN_GROUP
    )
    eligible = out["positive_rate"].where(out["predictions"] >= MIN_GROUP)
    top = eligible.groupby(out["window_start"]).transform("max")
    out["disparate_impact"] = (eligible / top).where(top > 0)
    out["eo_difference"] = out["tpr"] - out["tpr"].groupby(out["window_start"]).transform("max")
    return out


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (good at small counts)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _verdict(groups: pd.DataFrame) -> dict[str, Any] | None:
    """The lowest group's positive rate over the highest's, with an upper confidence bound
    that holds although the two groups were picked after seeing the data: the lowest rate's
    upper Wilson bound over the highest's lower one, each at 95% shared by both sides and
    Bonferroni-corrected over the k(k-1)/2 pairs of the k eligible groups."""
    usable = groups[(groups["predictions"] >= MIN_GROUP) & (groups["positives"] > 0)]
    if len(usable) < 2:
        return None
    rates = usable["positives"] / usable["predictions"]
    top, low = usable.loc[rates.idxmax()], usable.loc[rates.idxmin()]
    pairs = len(usable) * (len(usable) - 1) / 2
    z = float(NormalDist().inv_cdf(1 - 0.05 / (2 * pairs)))
    upper = _wilson(int(low.positives), int(low.predictions), z)[1] / _wilson(
        int(top.positives), int(top.predictions), z)[0]  # fmt: skip
    ratio = (low.positives / low.predictions) / (top.positives / top.predictions)
    return {"ratio": float(ratio), "upper": float(min(upper, 1.0)), "lowest": str(low.grp),
            "highest": str(top.grp),
            "rates": {str(g): float(r) for g, r in zip(usable.grp, rates, strict=True)}}  # fmt: skip


def fairness_checks(cur, window: Window, spec: dict, task) -> list[CheckResult]:
    """One `fairness` result per sensitive attribute for the window (binary models)."""
    if task.task != "binary_classification" or task.positive is None:
        return []
    out = []
    for attribute in attributes(spec):
        groups = group_rates(cur, window.model, task, attribute, version=window.version,
                             variant=window.variant, start=window.start, end=window.end,
                             grain=None)  # fmt: skip
        verdict = _verdict(groups)
        rows = int(groups["predictions"].sum()) if not groups.empty else 0
        if verdict is None:
            out.append(CheckResult(
                check="fairness", subject=attribute, status="insufficient", n_current=rows,
                details={"reason": f"fewer than two groups with {MIN_GROUP}+ predictions and a "
                                   "positive prediction"},
            ))  # fmt: skip
            continue
        severity = ("significant" if verdict["upper"] < SIGNIFICANT_RATIO
                    else "moderate" if verdict["upper"] < FOUR_FIFTHS else "none")  # fmt: skip
        labelled = with_ratios(groups)
        eod = labelled["eo_difference"].min()
        out.append(CheckResult(
            check="fairness", subject=attribute, method="disparate impact (positive rate "
            "ratio), Bonferroni-Wilson upper bound", statistic=verdict["upper"],
            effect_size=verdict["ratio"], threshold=FOUR_FIFTHS, severity=severity,
            response={"moderate": "review the model's decisions for the group with the owner",
                      "significant": "stop and review: retrain or roll back"}.get(severity),
            n_current=rows,
            details={**verdict, "equal_opportunity_difference":
                     None if pd.isna(eod) else float(eod),
                     "summary": f"{attribute}: lowest positive rate {verdict['lowest']} is "
                     f"{verdict['ratio']:.2f} of {verdict['highest']}'s (upper bound "
                     f"{verdict['upper']:.2f}; the 80% rule needs >= 0.8)"},
        ))  # fmt: skip
    return out


def fairness_over_time(
    store: Store, model: str, *, grain: str = "day", start=None, end=None,
    version: str | None = None, variant: str = "production",
) -> pd.DataFrame:  # fmt: skip
    """Per window, attribute and group: counts, positive rate, TPR, disparate impact and
    equal opportunity difference. Empty for non-binary models or without attributes."""
    task = layers.model_task(store, model)
    with store.cursor() as cur:
        spec = catalog.version_spec(cur, model, version) if version else _newest_spec(cur, model)
    if task.task != "binary_classification" or task.positive is None or not attributes(spec):
        return pd.DataFrame()
    start, end = _span(store, model, start, end)
    frames = []
    for attribute in attributes(spec):
        with lake_manifest.period(store, model, start, end):
            rates = group_rates(store, model, task, attribute, version=version,
                                variant=variant, start=start, end=end, grain=grain)  # fmt: skip
        frames.append(with_ratios(rates).assign(attribute=attribute))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def segments_over_time(
    store: Store, model: str, *, grain: str = "day", start=None, end=None,
    version: str | None = None, variant: str = "production",
) -> pd.DataFrame:  # fmt: skip
    """Per window and logged segment: predictions, mean score, positive rate (classifiers),
    labelled rows and accuracy (classifiers) or MAE (regression)."""
    task = layers.model_task(store, model)
    start, end = _span(store, model, start, end)
    pred, params = layers.predicted_label_sql("p", task)
    classifier = task.task != "regression"
    quality = (f"avg(CASE WHEN l.prediction_id IS NOT NULL THEN CAST(({pred}) = l.actual_label "
               "AS DOUBLE) END)" if classifier
               else "avg(abs(p.prediction - l.actual_value))")  # fmt: skip
    positive = f"avg(CAST(({pred}) = ? AS DOUBLE))" if task.positive else "NULL"
    sql = f"""
        SELECT {bucket_sql(grain, "p.ts")} AS window_start,
               coalesce(p.segment, '(none)') AS segment, count(*) AS predictions,
               avg(p.prediction) AS mean_score, {positive} AS positive_rate,
               count(l.prediction_id) AS labelled, {quality} AS {"accuracy" if classifier else "mae"}
        FROM predictions p
        LEFT JOIN labels l ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name
             AND l.labeled_at >= ?
        WHERE p.model_name = ? AND (? IS NULL OR p.model_version = ?) AND p.variant = ?
          AND p.status = 'ok' AND p.ts >= ? AND p.ts < ?
        GROUP BY ALL ORDER BY 1, 2
    """
    args = [*([*params, task.positive] if task.positive else []),
            *(params if classifier else []), utc_time(start) - layers.LABEL_CLOCK_SLACK, model,
            version, version, variant, utc_time(start), utc_time(end)]  # fmt: skip
    with lake_manifest.period(store, model, start, end):
        return store.query_df(sql, args)


def _newest_spec(cur, model: str) -> dict:
    version = cur.execute(
        "SELECT version FROM model_versions WHERE model_name = ? "
        "ORDER BY (state = 'production') DESC, registered_at DESC LIMIT 1",
        [model],
    ).fetchall()[0][0]
    return catalog.version_spec(cur, model, version)


def _span(store: Store, model: str, start, end):
    if start is not None and end is not None:
        return start, end
    with lake_manifest.edges(store, model):
        first, last = store.query_one(
            "SELECT min(ts), max(ts) FROM predictions WHERE model_name = ?", [model]
        )
    return (start or first or pd.Timestamp(0, tz="UTC")), (
        end
        or (last + pd.Timedelta(microseconds=1) if last is not None else pd.Timestamp.now("UTC"))
    )
