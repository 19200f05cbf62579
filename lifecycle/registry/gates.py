"""Promotion gates (before a version takes production) and the canary rollback recommendation.

Gates, each with its evidence, judging the candidate beside production on the same traffic:
- evidence: the candidate ran beside a production version with at least `[rollout]
  min_live_rows` shadow or canary requests and `min_windows` monitored windows of that
  traffic; otherwise "not enough evidence (n=..., needs ...)". A first release (no production
  version) has no live traffic to show and passes with that said;
- monitoring: significant drift / data-quality / concept findings in the candidate's latest
  stored window of each check, set beside production's findings of the same check, subject
  and window: only what is worse for the candidate blocks (input drift that production sees
  too is shown, not held against the candidate);
- alerts: no unresolved critical alert on the version (when the alerts table exists);
- metrics: the task's headline metric no worse than production's beyond a tolerance, on the
  same requests (shadow predictions paired with production by request_id, label of either),
  or on each version's labelled live requests of the canary period, when at least MIN_LABELS
  labelled rows exist; else, labels pending, on each version's performance estimated from
  its live traffic (lifecycle.layers.live_estimate); else on each version's validation data,
  each basis named as such;
- live: no measure of the live comparison (lifecycle.live_comparison: accuracy or absolute
  error, KPIs, latency, error rate) significantly worse by its always-valid interval.

Computed in DuckDB SQL; only one row per check reaches Python.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from lifecycle import catalog, layers, live_comparison
from lifecycle.monitoring_plan import MonitoringConfigError, monitoring_plan
from lifecycle.store import Store, feature_column, feature_table, quote_ident

# headline metric per task: (name, higher is better)
HEADLINE = {
    "binary_classification": ("roc_auc", True),
    "multiclass_classification": ("accuracy", True),
    "regression": ("mae", False),
}
ABSOLUTE_TOLERANCE = 0.01  # roc_auc / accuracy points the candidate may lose
RELATIVE_TOLERANCE = 0.05  # share by which the candidate's MAE may exceed production's


@dataclass
class Gate:
    name: str
    passed: bool
    detail: str
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_findings(store: Store, model: str, version: str) -> list[dict[str, Any]]:
    """Significant findings in the latest stored window of each check of the version."""
    frame = store.query_df(
        """
        SELECT check_name, subject, variant, grain, window_start, window_end, severity,
               effect_size, response
        FROM (
            SELECT *, row_number() OVER (
                PARTITION BY check_name, subject, variant, grain, reference_kind
                ORDER BY window_start DESC) AS latest
            FROM monitor_results WHERE model_name = ? AND model_version = ?
        )
        WHERE latest = 1 AND severity = 'significant'
        ORDER BY check_name, subject
        """,
        [model, version],
    )
    return frame.to_dict("records")


def open_critical_alerts(store: Store, model: str, version: str) -> list[dict[str, Any]] | None:
    """Unresolved critical alerts on the version; None when alerts are not installed."""
    if not store.table_exists("alerts"):
        return None
    return store.query_df(
        "SELECT alert_id, rule, subject, state, summary FROM alerts WHERE model_name = ? "
        "AND model_version = ? AND severity = 'critical' AND state <> 'resolved' "
        "ORDER BY alert_id",
        [model, version],
    ).to_dict("records")


def paired_relation(
    model: str, candidate: str, champion: str, task, group: str | None = None
) -> tuple[str, list]:
    """Both versions' answers to the same requests (candidate in shadow), with the request's
    label (from either prediction), in the shape layers' metric SQL expects: the side is
    in `model_version` ('candidate' / 'champion'), the group in `variant`: 'paired', or
    the request's segment (group='segment'), or a feature's value (group=feature name)."""
    pred_c, c_params = layers.predicted_label_sql("c", task)
    pred_p, p_params = layers.predicted_label_sql("p", task)
    if group is None:
        group_sql, join = "'paired'", ""
    elif group == "segment":
        group_sql, join = "coalesce(p.segment, '(none)')", ""
    else:
        group_sql = (
            f"coalesce(CAST(f.{quote_ident(feature_column(group))} AS VARCHAR), '(missing)')"
        )
        join = (
            f"LEFT JOIN {quote_ident(feature_table(model))} f ON f.prediction_id = p.prediction_id"
        )
    sql = f"""
        WITH pairs AS (
            SELECT {group_sql} AS grp, c.prediction AS c_score, {pred_c} AS c_label,
                   p.prediction AS p_score, {pred_p} AS p_label,
                   coalesce(lp.actual_value, lc.actual_value) AS actual_value,
                   coalesce(lp.actual_label, lc.actual_label) AS actual_label
            FROM predictions c
            JOIN predictions p ON p.request_id = c.request_id AND p.model_name = c.model_name
                 AND p.variant = 'production' AND p.model_version = ? AND p.status = 'ok'
            LEFT JOIN labels lc ON lc.prediction_id = c.prediction_id AND lc.model_name = ?
            LEFT JOIN labels lp ON lp.prediction_id = p.prediction_id AND lp.model_name = ?
            {join}
            WHERE c.model_name = ? AND c.model_version = ? AND c.variant = 'shadow'
              AND c.status = 'ok'
              AND (lp.prediction_id IS NOT NULL OR lc.prediction_id IS NOT NULL)
        )
        SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00' AS window_start,
               'candidate' AS model_version, grp AS variant, c_score AS score,
               c_label AS predicted_label, actual_value, actual_label, true AS has_label
        FROM pairs
        UNION ALL
        SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00', 'champion', grp, p_score, p_label,
               actual_value, actual_label, true
        FROM pairs
    """
    return sql, [*c_params, *p_params, champion, model, model, model, candidate]


def canary_relation(model: str, candidate: str, champion: str, task, since) -> tuple[str, list]:
    """Labelled requests of the canary period: the candidate's canary traffic and the
    champion's production traffic, in the shape layers' metric SQL expects."""
    pred, params = layers.predicted_label_sql("p", task)
    sql = f"""
        SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00' AS window_start,
               CASE WHEN p.model_version = ? AND p.variant = 'canary' THEN 'candidate'
                    ELSE 'champion' END AS model_version,
               'live' AS variant, p.prediction AS score, {pred} AS predicted_label,
               l.actual_value, l.actual_label, true AS has_label
        FROM predictions p
        JOIN labels l ON l.prediction_id = p.prediction_id AND l.model_name = p.model_name
        WHERE p.model_name = ? AND p.status = 'ok'
          AND p.ts >= coalesce(?, TIMESTAMPTZ '1970-01-01 00:00:00+00')
          AND ((p.model_version = ? AND p.variant = 'canary')
               OR (p.model_version = ? AND p.variant = 'production'))
    """
    return sql, [candidate, *params, model, since, candidate, champion]


def compare_metrics(store: Store, model: str, candidate: str, champion: str) -> dict[str, Any]:
    """Candidate vs champion on labelled live requests when there are enough (the same
    requests in shadow, the canary period's requests in canary), else estimated on live
    traffic, else on their validation data. Keys: basis, rows, metrics {candidate, champion,
    difference (candidate - champion)} per metric."""
    task = layers.model_task(store, model)
    sources = [(paired_relation(model, candidate, champion, task),
                "same requests (shadow vs production), labelled live traffic")]  # fmt: skip
    if _state(store, model, candidate) == "canary":  # its canary period first, then its shadow run
        since = live_comparison.stint_start(store, model, candidate, "canary")
        sources.insert(0, (canary_relation(model, candidate, champion, task, since),
                           "labelled live traffic of the canary period (canary vs production "
                           "requests)"))  # fmt: skip
    rows = 0
    for (relation, params), basis in sources:
        frame = layers.metrics_frame(store, task, relation, params)
        sides = {r["model_version"]: r for r in frame.to_dict("records")}
        found = int(sides.get("candidate", {}).get("labelled", 0))
        rows = max(rows, found)
        if found >= layers.MIN_LABELS and "champion" in sides:
            metrics = {
                name: {"candidate": sides["candidate"].get(name),
                       "champion": sides["champion"][name]}
                for name in _metric_names(task.task)
            }  # fmt: skip
            return {"basis": basis, "rows": found, "live": True,
                    "metrics": _with_differences(metrics)}  # fmt: skip
    estimated = _estimated_comparison(store, model, candidate, champion, rows)
    if estimated is not None:
        return estimated
    cand = layers.reference_performance(store, model, candidate)
    champ = layers.reference_performance(store, model, champion)
    metrics = {
        name: {"candidate": cand.get(name), "champion": champ.get(name)}
        for name in _metric_names(task.task)
    }
    return {
        "basis": "validation data of each version, not live traffic (too few labelled live "
        "requests, no estimate on live traffic)",
        "live": False,
        "rows": int(min(cand.get("labelled") or 0, champ.get("labelled") or 0)),
        "paired_rows": rows,
        "metrics": _with_differences(metrics),
    }


def _estimated_comparison(
    store: Store, model: str, candidate: str, champion: str, paired_rows: int
) -> dict[str, Any] | None:
    """Labels pending: each version's performance estimated on its live traffic over the
    candidate's monitored windows (lifecycle.layers.live_estimate), the production version
    on its production traffic; None when either has no estimate."""
    cand = layers.live_estimate(store, model, candidate)
    if not cand["metrics"]:
        return None
    span = store.query_one(
        "SELECT min(window_start), max(window_end) FROM monitor_results WHERE model_name = ? "
        "AND model_version = ? AND check_name = 'estimated_performance' AND status = 'ok'",
        [model, candidate],
    )
    champ = layers.live_estimate(store, model, champion, variant="production",
                                 since=span[0], until=span[1])  # fmt: skip
    if not champ["metrics"]:
        return None
    metrics = {
        name: {"candidate": cand["metrics"].get(name), "champion": champ["metrics"].get(name)}
        for name in cand["metrics"]
    }
    return {
        "basis": f"estimated on live traffic, labels pending: candidate from "
        f"{cand['predictions']:,} predictions, production from {champ['predictions']:,} "
        f"(too few labelled shadow pairs: {paired_rows})",
        "rows": paired_rows,
        "predictions": {"candidate": cand["predictions"], "champion": champ["predictions"]},
        "estimated": True,
        "live": True,
        "metrics": _with_differences(metrics),
    }


def _state(store: Store, model: str, version: str) -> str | None:
    row = store.query_all(
        "SELECT state FROM model_versions WHERE model_name = ? AND version = ?", [model, version]
    )
    return row[0][0] if row else None


def _with_differences(metrics: dict[str, dict]) -> dict[str, dict]:
    def diff(pair: dict):
        cand, champ = _number(pair["candidate"]), _number(pair["champion"])
        return None if cand is None or champ is None else cand - champ

    return {name: {**pair, "difference": diff(pair)} for name, pair in metrics.items()}


def _metric_names(task: str) -> list[str]:
    return list(
        layers.REGRESSION_METRICS if task == "regression" else layers.CLASSIFICATION_METRICS
    )


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def metric_gate(store: Store, model: str, version: str, champion: str | None) -> Gate:
    if champion is None or champion == version:
        return Gate("metrics", True, "no production version to compare with", {})
    task = layers.model_task(store, model)
    name, higher = HEADLINE[task.task]
    comparison = compare_metrics(store, model, version, champion)
    cand = _number(comparison["metrics"][name]["candidate"])
    champ = _number(comparison["metrics"][name]["champion"])
    evidence = {**comparison, "metric": name}
    if cand is None or champ is None:
        return Gate("metrics", False, f"no {name} for both versions: too few labels and "
                    "no estimate on live traffic", evidence)  # fmt: skip
    if higher:
        limit = champ - ABSOLUTE_TOLERANCE
        passed = cand >= limit
        rule = f"{name} {cand:.4f} vs production {champ:.4f} (may lose {ABSOLUTE_TOLERANCE})"
    else:
        limit = champ * (1 + RELATIVE_TOLERANCE)
        passed = cand <= limit
        rule = (
            f"{name} {cand:.4f} vs production {champ:.4f} (may exceed by {RELATIVE_TOLERANCE:.0%})"
        )
    evidence.update(candidate=cand, champion=champ, limit=limit)
    verdict = "no worse than production" if passed else "worse than production"
    return Gate("metrics", passed, f"{verdict}: {rule}; {comparison['basis']}", evidence)


def promotion_gates(store: Store, model: str, version: str, champion: str | None) -> list[Gate]:
    """Every gate for `version` taking production from `champion` (None: first release)."""
    if champion == version:
        champion = None
    settings = _rollout_settings(store, model, version)
    gates = [
        evidence_gate(store, model, version, champion, settings),
        monitoring_gate(store, model, version, champion),
    ]
    alerts = open_critical_alerts(store, model, version)
    if alerts is not None:
        gates.append(
            Gate(
                "alerts",
                not alerts,
                "no unresolved critical alert"
                if not alerts
                else f"{len(alerts)} unresolved critical alert(s): "
                + _first([f"#{a['alert_id']} {a['rule']} {a['subject']}" for a in alerts]),
                {"alerts": alerts},
            )
        )
    gates.append(metric_gate(store, model, version, champion))
    gates.append(live_gate(store, model, version, champion))
    return gates


def _rollout_settings(store: Store, model: str, version: str) -> dict[str, Any]:
    with store.cursor() as cur:
        spec = catalog.version_spec(cur, model, version)
    return live_comparison.rollout_settings(spec)


def live_traffic(store: Store, model: str, version: str) -> dict[str, int]:
    """The version's shadow and canary requests, and its monitored windows of them (on the
    model's layer grain)."""
    try:
        grain = monitoring_plan(store, model).layer_grain or "day"
    except MonitoringConfigError:
        grain = "day"
    rows, windows = store.query_one(
        "SELECT (SELECT count(*) FROM predictions WHERE model_name = ? AND model_version = ? "
        "AND variant IN ('shadow', 'canary')), "
        "(SELECT count(DISTINCT window_start) FROM monitor_results WHERE model_name = ? "
        "AND model_version = ? AND variant IN ('shadow', 'canary') AND grain = ? "
        "AND status = 'ok')",
        [model, version, model, version, grain],
    )
    return {"rows": int(rows), "windows": int(windows), "grain": grain}


def evidence_gate(store, model, version, champion, settings) -> Gate:
    """Enough live traffic beside production, and monitored, before production."""
    need_rows, need_windows = settings["min_live_rows"], settings["min_windows"]
    if champion is None:
        return Gate("evidence", True, "first release: no production version to run beside, "
                    "so no live evidence is asked for", {})  # fmt: skip
    seen = live_traffic(store, model, version)
    evidence = {**seen, "min_live_rows": need_rows, "min_windows": need_windows}
    short = []
    if seen["rows"] < need_rows:
        short.append(f"n={seen['rows']:,} shadow/canary requests, needs {need_rows:,}")
    if seen["windows"] < need_windows:
        short.append(f"{seen['windows']} monitored {seen['grain']} window(s) of that traffic, "
                     f"needs {need_windows}")  # fmt: skip
    if short:
        return Gate("evidence", False, "not enough evidence (" + "; ".join(short) + "): run it "
                    "in shadow or canary and monitor it first ([rollout] min_live_rows, "
                    "min_windows)", evidence)  # fmt: skip
    return Gate("evidence", True, f"{seen['rows']:,} shadow/canary requests over "
                f"{seen['windows']} monitored {seen['grain']} windows", evidence)  # fmt: skip


def side_by_side_findings(store, model, version, champion) -> list[dict[str, Any]]:
    """The candidate's significant findings in the latest window of each check, each with
    production's severity for the same check, subject, grain and window (None: production
    has no result there)."""
    return store.query_df(
        """
        WITH latest AS (
            SELECT *, row_number() OVER (
                PARTITION BY check_name, subject, variant, grain, reference_kind
                ORDER BY window_start DESC) AS rn
            FROM monitor_results WHERE model_name = ? AND model_version = ?
        )
        SELECT c.check_name, c.subject, c.variant, c.grain, c.window_start, c.window_end,
               c.severity, c.effect_size, c.response,
               arg_max(p.severity, CASE p.severity WHEN 'significant' THEN 3
                   WHEN 'moderate' THEN 2 WHEN 'minor' THEN 1 ELSE 0 END) AS production_severity,
               max(p.effect_size) AS production_effect
        FROM latest c
        LEFT JOIN monitor_results p ON p.model_name = ? AND p.model_version = ?
             AND p.variant = 'production' AND p.check_name = c.check_name
             AND p.subject = c.subject AND p.grain = c.grain AND p.window_start = c.window_start
        WHERE c.rn = 1 AND c.severity = 'significant'
        GROUP BY ALL ORDER BY c.check_name, c.subject
        """,
        [model, version, model, champion],
    ).to_dict("records")


def monitoring_gate(store, model, version, champion) -> Gate:
    """Significant findings of the candidate that production does not share block."""
    if champion is None:
        findings = open_findings(store, model, version)
        shared: list[dict] = []
        own = findings
    else:
        findings = side_by_side_findings(store, model, version, champion)
        shared = [f for f in findings if f["production_severity"] == "significant"]
        own = [f for f in findings if f["production_severity"] != "significant"]
    names = [f"{f['check_name']} {f['subject']}" for f in own]
    detail = (f"{len(own)} significant finding(s) " + ("production does not share: "
              if champion else ": ") + _first(names)) if own else (
        "no significant finding in the latest monitored windows" if not shared
        else "no finding worse than production's")  # fmt: skip
    if shared:
        detail += (f"; {len(shared)} shared with production in the same window (not held "
                   "against the candidate): " + _first(
                       [f"{f['check_name']} {f['subject']}" for f in shared]))  # fmt: skip
    return Gate("monitoring", not own, detail, {"findings": own, "shared_with_production": shared})


def live_gate(store, model, version, champion) -> Gate:
    """No measure of the live comparison significantly worse for the candidate."""
    if champion is None:
        return Gate("live", True, "first release: nothing to compare with on live traffic", {})
    result = live_comparison.live_comparison(store, model, version)
    evidence = {"comparisons": [c.text() for c in result.comparisons], "mode": result.mode}
    if result.mode is None:
        return Gate("live", True, "not in shadow or canary: " + "; ".join(result.notes),
                    evidence)  # fmt: skip
    worse = result.worse
    if worse:
        return Gate("live", False, "significantly worse on live traffic: "
                    + "; ".join(c.text() for c in worse), evidence)  # fmt: skip
    undecided = [c.name for c in result.comparisons if c.verdict != live_comparison.WORSE]
    return Gate("live", True, "no measure significantly worse on live traffic (always-valid "
                f"95% intervals): {', '.join(undecided)}", evidence)  # fmt: skip


# -- canary -----------------------------------------------------------------------------------

LATENCY_RATIO = 1.5  # canary p95 latency above this multiple of production's
ERROR_MARGIN = 0.01  # canary error rate above production's by more than this


def canary_recommendation(store: Store, model: str) -> dict[str, Any] | None:
    """For a running canary: whether to roll it back, with the breaches found (errors, p95
    latency against production over the canary period, failing gates). None without one."""
    dep = store.query_all(
        "SELECT production_version, canary_version FROM deployments WHERE model_name = ?",
        [model],
    )
    if not dep or dep[0][1] is None:
        return None
    production, canary = dep[0]
    since = store.query_one(
        "SELECT min(started_at) FROM rollouts WHERE model_name = ? AND version = ? "
        "AND variant = 'canary' AND started_at >= coalesce((SELECT max(started_at) "
        "FROM rollouts WHERE model_name = ? AND version = ? AND variant <> 'canary'), "
        "TIMESTAMPTZ '1970-01-01 00:00:00+00')",
        [model, canary, model, canary],
    )[0]
    served = store.query_df(
        """
        SELECT model_version AS version, count(*) AS requests,
               avg((status = 'error')::INT) AS error_rate,
               quantile_cont(latency_ms, 0.95) AS p95_latency_ms
        FROM predictions
        WHERE model_name = ? AND ((model_version = ? AND variant = 'canary')
              OR (model_version = ? AND variant = 'production'))
          AND (? IS NULL OR ts >= ?)
        GROUP BY 1
        """,
        [model, canary, production, since, since],
    ).set_index("version")
    breaches = []
    if canary in served.index and production in served.index:
        c, p = served.loc[canary], served.loc[production]
        if c.error_rate > p.error_rate + ERROR_MARGIN:
            breaches.append(
                f"error rate {c.error_rate:.1%} vs production {p.error_rate:.1%} "
                f"(allowed +{ERROR_MARGIN:.0%})"
            )
        if p.p95_latency_ms and c.p95_latency_ms > LATENCY_RATIO * p.p95_latency_ms:
            breaches.append(
                f"p95 latency {c.p95_latency_ms:.0f} ms vs production {p.p95_latency_ms:.0f} ms "
                f"(allowed x{LATENCY_RATIO})"
            )
    gates = promotion_gates(store, model, canary, production)
    # too little evidence to promote yet is no reason to roll back
    breaches += [f"{g.name}: {g.detail}" for g in gates if not g.passed and g.name != "evidence"]
    return {
        "model": model,
        "canary": canary,
        "production": production,
        "rollback": bool(breaches),
        "breaches": breaches,
        "served": served.reset_index().to_dict("records"),
        "since": since,
    }


def _first(items: list[str], shown: int = 5) -> str:
    """The first `shown` items, and how many more there are (a count and a shorter list
    side by side read as a contradiction)."""
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")
