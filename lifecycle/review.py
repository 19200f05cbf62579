"""The review pack: everything a reviewer needs to approve or promote a version.

- immutable metadata (training-data fingerprint, parameters, validation metrics, feature
  schema, owner, risk tier, registrant, reference data hash);
- metrics beside the production version's on the same requests (shadow pairs), else (labels
  pending) on each version's performance estimated from its live traffic, else on each
  version's validation data; per-segment metrics; the version's own validation metrics
  (`reference_metrics`) and, labels pending, its estimate on live traffic (`live_estimate`:
  "estimated from N predictions, labels pending");
- fairness: the rate of predicting the positive class per value of the spec's
  sensitive_attribute, and the disparate impact ratio (group rate / highest group rate)
  against the 80% rule;
- shadow comparison: agreement rate of the predicted labels and the distribution of score
  differences (candidate - production) on the same requests;
- drift baseline: the reference data each feature is compared with, and the latest stored
  drift verdicts of the version;
- the model card (lifecycle.model_card): its newest revision, and whether the risk tier
  needs one before review;
- live comparison against production for a shadow or canary version
  (lifecycle.live_comparison: always-valid intervals per measure);
- the promotion gates and, for a running canary, the rollback recommendation.

All of it is computed in DuckDB SQL; Python receives one row per group or quantile.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from lifecycle import catalog, layers, live_comparison, model_card
from lifecycle import fairness as fairness_mod
from lifecycle.registry import gates as gates_mod
from lifecycle.registry.machine import serving_versions, version_status
from lifecycle.store import Store, feature_column, feature_table, quote_ident, reference_table

FOUR_FIFTHS = 0.8
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 30


def metadata(store: Store, model: str, version: str) -> dict[str, Any]:
    """The version's immutable metadata and its model's owner and risk tier."""
    with store.cursor() as cur:
        rows = cur.execute(
            "SELECT v.registered_by, v.registered_at, v.training_fingerprint, v.parameters, "
            "v.validation_metrics, v.reference_rows, v.reference_sha256, v.spec, m.owner, "
            "m.risk_tier, m.task, m.description FROM model_versions v "
            "JOIN models m ON m.name = v.model_name WHERE v.model_name = ? AND v.version = ?",
            [model, version],
        ).fetchall()
    if not rows:
        raise KeyError(f"unknown version {model} {version}")
    (by, at, fingerprint, params, metrics, ref_rows, ref_sha, spec, owner, risk, task, desc) = rows[
        0
    ]
    spec = json.loads(spec)
    return {
        "model": model,
        "version": version,
        "task": task,
        "description": desc,
        "owner": owner,
        "risk_tier": risk,
        "registered_by": by,
        "registered_at": at,
        "training_fingerprint": fingerprint,
        "parameters": json.loads(params) if params else {},
        "validation_metrics": json.loads(metrics) if metrics else {},
        "reference_rows": int(ref_rows),
        "reference_sha256": ref_sha,
        "features": spec.get("features", []),
        "sensitive_attribute": spec.get("sensitive_attribute"),
        "positive_class": spec.get("positive_class"),
    }


def champion_of(store: Store, model: str, version: str) -> str | None:
    """The production version the candidate is compared with (None if it is production)."""
    production = serving_versions(store, model)["production"]
    return None if production == version else production


# -- metrics -----------------------------------------------------------------------------------


def _reference_grouped(model: str, version: str, task, group: str) -> tuple[str, list]:
    """The version's validation rows in the metric SQL's shape, grouped by segment/feature."""
    column = "segment" if group == "segment" else quote_ident(feature_column(group))
    label_sql, label_params = layers.predicted_label_sql("r", task)
    sql = f"""
        SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00' AS window_start,
               'candidate' AS model_version,
               coalesce(CAST(r.{column} AS VARCHAR), '(none)') AS variant,
               r.prediction AS score, {label_sql} AS predicted_label,
               r.actual_value, r.actual_label,
               (r.actual_value IS NOT NULL OR r.actual_label IS NOT NULL) AS has_label
        FROM {quote_ident(reference_table(model))} r WHERE r.model_version = ?
    """
    return sql, [*label_params, version]


def _tidy(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    names = layers.REGRESSION_METRICS if task == "regression" else layers.CLASSIFICATION_METRICS
    if frame.empty:
        return pd.DataFrame(columns=["group", "side", "labelled", *names])
    out = frame.rename(columns={"variant": "group", "model_version": "side"})
    return (
        out[["group", "side", "labelled", *names]]
        .sort_values(["group", "side"])
        .reset_index(drop=True)
    )


def segment_metrics(store: Store, model: str, version: str, champion: str | None) -> dict:
    """Metrics per segment: both versions on the same labelled shadow requests when there
    are any, else the candidate on its validation data. Keys: basis, frame."""
    task = layers.model_task(store, model)
    if champion is not None:
        relation, params = gates_mod.paired_relation(model, version, champion, task, "segment")
        frame = layers.metrics_frame(store, task, relation, params)
        if not frame.empty and frame["labelled"].sum() > 0:
            return {
                "basis": "same requests (shadow vs production)",
                "frame": _tidy(frame, task.task),
            }
    relation, params = _reference_grouped(model, version, task, "segment")
    frame = layers.metrics_frame(store, task, relation, params)
    return {"basis": "validation data of the version", "frame": _tidy(frame, task.task)}


# -- fairness ----------------------------------------------------------------------------------


def fairness(store: Store, model: str, version: str, champion: str | None) -> dict[str, Any]:
    """Positive-prediction rate per group of the sensitive attribute and the disparate impact
    ratio (rate / highest rate); the 80% rule holds when every ratio is >= 0.8.

    Rows: the candidate's shadow predictions (both versions on the same requests) when it has
    any, else its validation data. Keys: attribute, basis, frame (group, side, rows,
    positive_rate, disparate_impact), by side: min_ratio and passes."""
    meta = metadata(store, model, version)
    attribute, positive = meta["sensitive_attribute"], meta["positive_class"]
    if attribute is None:
        return {"attribute": None, "note": "the spec names no sensitive_attribute"}
    if meta["task"] != "binary_classification" or positive is None:
        return {"attribute": attribute, "note": "disparate impact applies to binary classifiers"}
    column = quote_ident(feature_column(attribute))
    shadow_rows = store.query_one(
        "SELECT count(*) FROM predictions WHERE model_name = ? AND model_version = ? "
        "AND variant = 'shadow' AND status = 'ok'",
        [model, version],
    )[0]
    task = layers.model_task(store, model)
    if shadow_rows:
        basis = "shadow requests (both versions on the same requests)"
        features = quote_ident(feature_table(model))
        c_label, c_params = layers.predicted_label_sql("c", task)
        p_label, p_params = layers.predicted_label_sql("p", task)
        sql = f"""
            WITH rows_ AS (
                SELECT coalesce(CAST(coalesce(fc.{column}, fp.{column}) AS VARCHAR), '(missing)')
                       AS grp,
                       {c_label} = ? AS c_pos,
                       {p_label} = ? AS p_pos
                FROM predictions c
                LEFT JOIN predictions p ON p.request_id = c.request_id
                     AND p.model_name = c.model_name AND p.variant = 'production'
                     AND p.model_version = ? AND p.status = 'ok'
                LEFT JOIN {features} fc ON fc.prediction_id = c.prediction_id
                LEFT JOIN {features} fp ON fp.prediction_id = p.prediction_id
                WHERE c.model_name = ? AND c.model_version = ? AND c.variant = 'shadow'
                  AND c.status = 'ok' AND (? IS NULL OR p.prediction_id IS NOT NULL)
            )
            SELECT 'candidate' AS side, grp, c_pos AS positive FROM rows_
            UNION ALL
            SELECT 'champion', grp, p_pos FROM rows_
        """
        params = [*c_params, positive, *p_params, positive, champion, model, version, champion]
    else:
        basis = "validation data of the version"
        r_label, r_params = layers.predicted_label_sql("r", task)
        sql = f"""
            SELECT 'candidate' AS side,
                   coalesce(CAST(r.{column} AS VARCHAR), '(missing)') AS grp,
                   {r_label} = ? AS positive
            FROM {quote_ident(reference_table(model))} r WHERE r.model_version = ?
        """
        params = [*r_params, positive, version]
    frame = store.query_df(
        f"""
        WITH labelled AS ({sql}),
        rates AS (
            SELECT side, grp AS "group", count(*) AS rows,
                   avg(positive::INT) AS positive_rate
            FROM labelled WHERE positive IS NOT NULL GROUP BY ALL
        )
        SELECT *, positive_rate / nullif(max(positive_rate) OVER (PARTITION BY side), 0)
                  AS disparate_impact
        FROM rates ORDER BY side, "group"
        """,
        params,
    )
    summary = {}
    for side, part in frame.groupby("side"):
        ratio = part["disparate_impact"].min()
        summary[side] = {
            "min_ratio": None if pd.isna(ratio) else float(ratio),
            "passes": bool(pd.isna(ratio) or ratio >= FOUR_FIFTHS),
        }
    return {
        "attribute": attribute,
        "outcome": f"predicted {positive}",
        "basis": basis,
        "frame": frame,
        "summary": summary,
    }


# -- shadow comparison -------------------------------------------------------------------------


def shadow_comparison(store: Store, model: str, version: str, champion: str | None) -> dict:
    """Candidate (shadow) vs production on the same requests: pairs, label agreement rate,
    score difference (candidate - production) mean, sd, quantiles and a histogram."""
    if champion is None:
        return {"pairs": 0, "note": "no production version to compare with"}
    task = layers.model_task(store, model)
    (c_label, c_params), (p_label, p_params) = (
        layers.predicted_label_sql(alias, task) for alias in ("c", "p")
    )
    pairs = f"""
        SELECT c.prediction - p.prediction AS diff, {c_label} AS c_label, {p_label} AS p_label
        FROM predictions c
        JOIN predictions p ON p.request_id = c.request_id AND p.model_name = c.model_name
             AND p.variant = 'production' AND p.model_version = ? AND p.status = 'ok'
        WHERE c.model_name = ? AND c.model_version = ? AND c.variant = 'shadow'
          AND c.status = 'ok'
    """
    params = [*c_params, *p_params, champion, model, version]
    quantiles = list(QUANTILES)
    row = store.query_df(
        f"""
        WITH pairs AS ({pairs})
        SELECT count(*) AS pairs,
               avg((c_label = p_label)::INT) AS agreement,
               avg(diff) AS mean_diff, stddev_samp(diff) AS sd_diff,
               avg(abs(diff)) AS mean_abs_diff,
               quantile_cont(diff, {quantiles}) AS quantiles,
               min(diff) AS min_diff, max(diff) AS max_diff
        FROM pairs WHERE diff IS NOT NULL
        """,
        params,
    ).iloc[0]
    n = int(row["pairs"])
    if n == 0:
        return {"pairs": 0, "note": "no shadow predictions paired with production"}
    low, high = float(row["min_diff"]), float(row["max_diff"])
    width = (high - low) / HISTOGRAM_BINS if high > low else 1.0
    histogram = store.query_df(
        f"""
        WITH pairs AS ({pairs})
        SELECT least(floor((diff - ?) / ?), {HISTOGRAM_BINS - 1})::INT AS bin, count(*) AS pairs
        FROM pairs WHERE diff IS NOT NULL GROUP BY 1 ORDER BY 1
        """,
        [*params, low, width],
    )
    histogram["low"] = low + histogram["bin"] * width
    histogram["high"] = histogram["low"] + width
    agreement = row["agreement"]
    return {
        "pairs": n,
        "agreement": None if task.task == "regression" or pd.isna(agreement) else float(agreement),
        "mean_diff": float(row["mean_diff"]),
        "sd_diff": None if pd.isna(row["sd_diff"]) else float(row["sd_diff"]),
        "mean_abs_diff": float(row["mean_abs_diff"]),
        "quantiles": dict(zip(QUANTILES, map(float, row["quantiles"]), strict=True)),
        "histogram": histogram[["low", "high", "pairs"]],
    }


# -- drift baseline ----------------------------------------------------------------------------


def drift_baseline(store: Store, model: str, version: str) -> dict[str, Any]:
    """The reference data drift is measured against (per feature: numeric summary or the
    categories' shares) and the latest stored drift verdict per feature of the version."""
    meta = metadata(store, model, version)
    table = quote_ident(reference_table(model))
    numeric, categorical = [], []
    with store.cursor() as cur:
        for feature in meta["features"]:
            col = quote_ident(feature_column(feature["name"]))
            if feature["type"] == "numeric":
                r = cur.execute(
                    f"SELECT count({col}), count(*) - count({col}), avg({col}), "
                    f"stddev_samp({col}), quantile_cont({col}, [0.05, 0.5, 0.95]) "
                    f"FROM {table} WHERE model_version = ?",
                    [version],
                ).fetchall()[0]
                q = r[4] or [None] * 3
                numeric.append(
                    {
                        "feature": feature["name"],
                        "rows": r[0],
                        "nulls": r[1],
                        "mean": r[2],
                        "sd": r[3],
                        "p5": q[0],
                        "median": q[1],
                        "p95": q[2],
                    }
                )
            else:
                for value, share in cur.execute(
                    f"SELECT coalesce(CAST({col} AS VARCHAR), '(missing)') AS value, "
                    "count(*) / sum(count(*)) OVER () AS share "
                    f"FROM {table} WHERE model_version = ? GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
                    [version],
                ).fetchall():
                    categorical.append({"feature": feature["name"], "value": value, "share": share})
    latest = store.query_df(
        """
        SELECT subject AS feature, variant, grain, window_start, method, effect_size,
               threshold, severity, response
        FROM (SELECT *, row_number() OVER (PARTITION BY subject, variant, grain
                                           ORDER BY window_start DESC) AS k
              FROM monitor_results
              WHERE model_name = ? AND model_version = ? AND check_name = 'data_drift')
        WHERE k = 1 ORDER BY feature, variant, grain
        """,
        [model, version],
    )
    return {
        "reference_rows": meta["reference_rows"],
        "reference_sha256": meta["reference_sha256"],
        "numeric": pd.DataFrame(numeric),
        "categorical": pd.DataFrame(categorical),
        "latest_drift": latest,
    }


# -- the pack ----------------------------------------------------------------------------------


def review_pack(store: Store, model: str, version: str, *, with_gates: bool = True) -> dict:
    """Everything above for one version, plus its status, gates and canary recommendation."""
    status = version_status(store, model, version)
    champion = champion_of(store, model, version)
    pack: dict[str, Any] = {
        "status": status,
        "metadata": metadata(store, model, version),
        "champion": champion,
        "comparison": (
            gates_mod.compare_metrics(store, model, version, champion) if champion else None
        ),
        # the version's reference (validation) set, named as such beside any live figure
        "reference_metrics": _clean(layers.reference_performance(store, model, version)),
        "reference_basis": "validation data (the version's reference set)",
        # labels pending on its live traffic: what its predictions say meanwhile
        "live_estimate": layers.live_estimate(store, model, version),
        "segments": segment_metrics(store, model, version, champion),
        "fairness": fairness(store, model, version, champion),
        "shadow": shadow_comparison(store, model, version, champion),
        "baseline": drift_baseline(store, model, version),
        **_model_card(store, model, version),
        "live": _live(store, model, version, status["state"]),
        "fairness_trend": fairness_trend(store, model, version, status["state"]),
    }
    if with_gates:
        pack["gates"] = gates_mod.promotion_gates(store, model, version, champion)
    if status["deployment"]["canary"] == version:
        pack["canary"] = gates_mod.canary_recommendation(store, model)
    return pack


def fairness_trend(store: Store, model: str, version: str, state: str) -> list[dict]:
    """The version's live traffic, weekly: per sensitive attribute the lowest disparate
    impact and equal opportunity difference (lifecycle.fairness), newest weeks last."""
    variant = state if state in ("shadow", "canary") else "production"
    frame = fairness_mod.fairness_over_time(store, model, grain="week", version=version,
                                            variant=variant)  # fmt: skip
    if frame.empty:
        return []
    weekly = frame.groupby(["window_start", "attribute"], as_index=False).agg(
        predictions=("predictions", "sum"),
        disparate_impact=("disparate_impact", "min"),
        eo_difference=("eo_difference", "min"),
    )
    weekly["window_start"] = weekly["window_start"].astype(str)
    return [_clean(r) for r in weekly.tail(12).to_dict("records")]


def _live(store: Store, model: str, version: str, state: str) -> dict[str, Any] | None:
    """A shadow or canary version against production on live traffic (None otherwise)."""
    if state not in ("shadow", "canary"):
        return None
    try:
        return live_comparison.live_comparison(store, model, version).to_dict()
    except live_comparison.RolloutConfigError as exc:
        return {"error": str(exc), "comparisons": [], "notes": []}


def _model_card(store: Store, model: str, version: str) -> dict[str, Any]:
    """The version's newest card revision and whether its risk tier needs one."""
    stored = model_card.current_card(store, model, version)
    tier = store.query_one("SELECT risk_tier FROM models WHERE name = ?", [model])[0]
    return {
        "model_card": stored.to_dict() if stored else None,
        "model_card_required": tier in model_card.required_tiers(),
    }


def _clean(metrics: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def version_options(store: Store) -> dict[str, list[str]]:
    """model -> its versions (registration order), for pickers."""
    with store.cursor() as cur:
        return {m: catalog.version_names(cur, m) for m in catalog.model_names(cur)}
