"""Alert rules: per-window summaries in, one Evaluation per (rule, subject, window) out.

Pure functions over small frames (the per-window summaries that lifecycle.layers and the
drift read API return); nothing here touches the database, so every rule is tested on
hand-made sequences of windows. Each evaluation's outcome is `ok`, `warning`, `critical`
or `insufficient` (too little data for a verdict: never an alert, never a healthy window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from lifecycle.alerts.config import (
    HIGHER_IS_BETTER,
    SEVERITY_LEVELS,
    AlertConfig,
    performance_metrics,
)
from lifecycle.drift.windows import GRAIN_STEP
from lifecycle.drift_impact import number as _num

OK, WARNING, CRITICAL, INSUFFICIENT = "ok", "warning", "critical", "insufficient"
FAILING = (WARNING, CRITICAL)
SEVERITY_ORDER = {OK: 0, WARNING: 1, CRITICAL: 2}
LAYERS = ("infrastructure", "performance", "business", "data_quality", "drift")
# window start -> next start per calendar grain (a month is a calendar offset, not a timedelta)
GRAIN_DELTA = GRAIN_STEP

# rule -> (layer, what it watches)
RULES: dict[str, tuple[str, str]] = {
    "latency": ("infrastructure", "latency percentile above its baseline (or an absolute limit)"),
    "error_rate": ("infrastructure", "share of requests with status error"),
    "throughput_drop": ("infrastructure", "requests below the same hour's baseline"),
    "resource": ("infrastructure", "mean of a resource metric (cpu_util, ...) above a limit"),
    "performance_metric": ("performance", "metric on labelled rows worse than the reference"),
    "concept_drift": ("performance", "a surrogate fitted on recent labels beats the model"),
    "estimated_performance": (
        "performance",
        "metric estimated from the predictions (labels pending) worse than the reference",
    ),
    "kpi_drop": ("business", "KPI moved against its direction relative to the baseline"),
    "missing_rate": ("data_quality", "missing values above the reference's share"),
    "out_of_range": ("data_quality", "values outside the spec's range"),
    "outliers": ("data_quality", "far-out values beyond the reference's fences"),
    "new_categories": ("data_quality", "categories outside the spec's values"),
    "business_rule": ("data_quality", "rows violating a spec rule"),
    "schema": ("data_quality", "columns missing from batches, or unexpected columns"),
    "serving_state": ("data_quality", "traffic the registry's serving state does not allow"),
    "source_read": ("data_quality", "lake rows whose values do not parse, or duplicate ids"),
    "fairness": ("performance", "a group's positive rate below 80% of the highest group's"),
    "data_drift": ("drift", "a feature's distribution moved (drift severity)"),
    "prediction_drift": ("drift", "the prediction distribution moved"),
    "multivariate_drift": ("drift", "the joint feature distribution moved"),
}

# What each severity calls for, per layer (shown with every alert and in the inbox).
RESPONSES: dict[str, dict[str, str]] = {
    "infrastructure": {
        WARNING: "investigate the serving service (load, dependencies, recent deploys)",
        CRITICAL: "page on-call: scale out or roll back the serving version",
    },
    "performance": {
        WARNING: "enhanced monitoring: compare with the shadow version, check label quality",
        CRITICAL: "retrain, or roll back to the previous production version",
    },
    "business": {
        WARNING: "investigate with the business owner (campaign, season, pricing?)",
        CRITICAL: "escalate to the model owner; consider rolling back",
    },
    "data_quality": {
        WARNING: "investigate the data feed",
        CRITICAL: "fix the data feed (do not retrain on bad data)",
    },
    "drift": {
        WARNING: "enhanced monitoring",
        CRITICAL: "retrain",
    },
}

MONITOR_RULES = {  # monitor_results check -> alert rule (the same name) with its settings key
    "data_drift": "drift",
    "prediction_drift": "drift",
    "multivariate_drift": "drift",
    "concept_drift": "performance",
    "estimated_performance": "performance",
    "missing_rate": "data_quality",
    "out_of_range": "data_quality",
    "outliers": "data_quality",
    "new_categories": "data_quality",
    "business_rule": "data_quality",
    "schema": "data_quality",
    "serving_state": "data_quality",
    "source_read": "data_quality",
    "fairness": "performance",
}
PERFORMANCE_LEVELS = {
    "concept_drift": "concept",
    "estimated_performance": "estimate",
    "fairness": "fairness",
}
EVIDENCE_KEYS = (  # monitor details worth carrying into an alert (small values only)
    "unseen",
    "shares",
    "examples",
    "drivers",
    "interval",
    "reference_metric",
    "current_metric",
    "estimate",
    "low",
    "high",
    "basis",
    "reference_value",
    "importance",
    "impact",
    "response_capped",
    "missing_current",
    "missing_reference",
    "reason",
)


@dataclass
class Evaluation:
    """One rule on one window: the unit the alert lifecycle consumes."""

    model: str
    version: str
    variant: str
    layer: str
    rule: str
    subject: str
    grain: str
    window_start: datetime
    window_end: datetime
    outcome: str
    value: float | None
    threshold: float | None
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """The de-duplication key of the alert this evaluation feeds (one alert per grain:
        a model monitored on days and weeks has a daily and a weekly alert)."""
        return (self.model, self.version, self.rule, self.subject, self.grain)

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING


def grade(value: float | None, limits: list[float], higher_is_worse: bool = True) -> str:
    """ok / warning / critical of `value` against [warning, critical] limits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return INSUFFICIENT
    warning, critical = limits
    if not higher_is_worse:
        value, warning, critical = -value, -warning, -critical
    if value >= critical:
        return CRITICAL
    if value >= warning:
        return WARNING
    return OK


def response_for(layer: str, severity: str, evidence: dict | None = None) -> str:
    """The alert's response; drift in a feature the model hardly uses (its monitor result's
    response capped, docs/drift.md "Drift impact") calls for investigating, as the result says."""
    if evidence and evidence.get("response_capped"):
        return "investigate (a feature the model hardly uses)"
    return RESPONSES[layer].get(severity, "no action")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


# -- drift, data quality and concept: from stored monitor results -----------------------------


def monitor_evaluations(results: pd.DataFrame, configs: dict[str, AlertConfig]) -> list[Evaluation]:
    """Map stored monitor results (lifecycle.drift.results rows) to evaluations.

    A result's drift or quality severity becomes warning / critical at the levels set in
    [alerts.drift], [alerts.data_quality] and [alerts.performance.concept].
    """
    out = []
    for row in results.itertuples(index=False):
        rule = row.check_name
        if rule not in MONITOR_RULES:
            continue
        config = configs[row.model_version]
        if not config.enabled(rule):
            continue
        if rule == "estimated_performance" and row.status != "ok":
            continue  # no estimate is no evidence either way; realized performance decides
        section = MONITOR_RULES[rule]
        levels = (
            config.section("performance")[PERFORMANCE_LEVELS[rule]]
            if section == "performance"
            else config.section(section)
        )
        layer = RULES[rule][0]
        out.append(_monitor_evaluation(row, rule, layer, levels))
    return out


def _monitor_evaluation(row, rule: str, layer: str, levels: dict) -> Evaluation:
    effect = _num(row.effect_size)
    details = row.details if isinstance(row.details, dict) else {}
    if row.status != "ok" or row.severity is None:
        outcome = INSUFFICIENT
        summary = f"{row.subject}: insufficient data ({details.get('reason', row.status)})"
    elif rule == "estimated_performance":
        outcome = _level_outcome(row.severity, levels)
        summary = _estimate_summary(row.subject, details)
    elif details.get("response_capped"):  # drift in a feature the model hardly uses
        outcome = min(_level_outcome(row.severity, levels), WARNING, key=SEVERITY_ORDER.get)
        summary = (
            f"{row.subject}: {row.method} {_fmt(effect)} ({row.severity}; "
            f"{_pct(_num(details.get('importance')))} of the model's importance: investigate)"
        )
    else:
        outcome = _level_outcome(row.severity, levels)
        summary = (
            f"{row.subject}: {row.method or row.check_name} {_fmt(effect)} "
            f"({row.severity}"
            + (
                f", adjusted p {_fmt(_num(row.p_adjusted), 2)}"
                if row.p_adjusted is not None
                else ""
            )
            + ")"
        )
    evidence = {
        "check": row.check_name,
        "method": row.method,
        "severity": row.severity,
        "effect_size": effect,
        "p_value": _num(row.p_value),
        "p_adjusted": _num(row.p_adjusted),
        "n_current": None if pd.isna(row.n_current) else int(row.n_current),
        "n_reference": None if pd.isna(row.n_reference) else int(row.n_reference),
        "reference": row.reference_kind,
        **{k: details[k] for k in EVIDENCE_KEYS if k in details},
    }
    return Evaluation(
        model=row.model_name,
        version=row.model_version,
        variant=row.variant,
        layer=layer,
        rule=rule,
        subject=row.subject,
        grain=row.grain,
        window_start=row.window_start.to_pydatetime(),
        window_end=row.window_end.to_pydatetime(),
        outcome=outcome,
        value=effect,
        threshold=_num(row.threshold),
        summary=summary,
        evidence=evidence,
    )


def _estimate_summary(metric: str, details: dict) -> str:
    """e.g. "accuracy estimated 0.812 (0.79-0.83) vs 0.861 on the reference (estimated,
    labels pending)"."""
    ref = details.get("reference_value")
    vs = f" vs {_fmt(_num(ref))} on the reference" if ref is not None else ""
    band = f"{_fmt(_num(details.get('low')))}-{_fmt(_num(details.get('high')))}"
    return (
        f"{metric} estimated {_fmt(_num(details.get('estimate')))} ({band}){vs} "
        "(estimated, labels pending)"
    )


def _level_outcome(severity: str, levels: dict) -> str:
    if severity not in SEVERITY_LEVELS:
        return OK
    rank = SEVERITY_LEVELS.index(severity)
    if rank >= SEVERITY_LEVELS.index(levels["critical"]):
        return CRITICAL
    if rank >= SEVERITY_LEVELS.index(levels["warning"]):
        return WARNING
    return OK


# -- infrastructure: from lifecycle.layers.infra_windows / resource_windows --------------------


def infra_evaluations(
    model: str,
    windows: pd.DataFrame,
    configs: dict[str, AlertConfig],
    grain: str,
    serving_until: dict[tuple[str, str], datetime] | None = None,
    fill_from: dict[tuple[str, str], datetime] | None = None,
) -> list[Evaluation]:
    """Latency, error-rate and throughput rules on infra_windows rows of one model.

    Baselines come from the same version and variant's earlier windows only: latency
    from the median of the previous `baseline_days`, throughput from the median of the
    same hour of day on the previous `baseline_days` days. Windows without a single
    request are filled in (0 requests) between a version's first window and its last one,
    or `serving_until[(version, variant)]` for one still serving, so an outage is a
    throughput drop rather than silence. `fill_from` (incremental checks, which read only
    recent windows) starts the filling earlier, where the version served before them.
    """
    windows = _silent_serving(windows, serving_until or {}, fill_from or {})
    if windows.empty:
        return []
    out = []
    for (version, variant), frame in windows.groupby(["model_version", "variant"], sort=True):
        config = configs[version]
        infra = config.section("infrastructure")
        until = (serving_until or {}).get((version, variant))
        start = (fill_from or {}).get((version, variant))
        frame = _fill_silent_windows(frame.sort_values("window_start"), grain, until, start)
        frame = _with_baselines(frame, infra, grain)
        for row in frame.itertuples(index=False):
            common = (model, version, variant, grain, row.window_start, GRAIN_DELTA[grain])
            if config.enabled("latency"):
                out.append(_latency(row, infra, *common))
            if config.enabled("error_rate"):
                out.append(_error_rate(row, infra, *common))
            if config.enabled("throughput_drop"):
                out.append(_throughput(row, infra, *common))
    return out


def _silent_serving(windows: pd.DataFrame, serving_until: dict, fill_from: dict) -> pd.DataFrame:
    """A serving version that served before `fill_from` but not one request since gets one
    empty window there, so it is filled (silent) as with the whole history read."""
    present = (
        set()
        if windows.empty
        else set(windows[["model_version", "variant"]].itertuples(index=False, name=None))
    )
    silent = [k for k in fill_from if k in serving_until and k not in present]
    if not silent:
        return windows
    rows = pd.DataFrame(
        [{"window_start": pd.Timestamp(fill_from[k]), "model_version": k[0], "variant": k[1],
          "requests": 0, "errors": 0} for k in silent]
    )  # fmt: skip
    return rows if windows.empty else pd.concat([windows, rows], ignore_index=True)


def _fill_silent_windows(frame: pd.DataFrame, grain: str, until, start=None) -> pd.DataFrame:
    step = GRAIN_DELTA[grain]
    starts = pd.to_datetime(frame["window_start"], utc=True)
    first, last = starts.min(), starts.max()
    if start is not None:
        first = min(first, pd.Timestamp(start))
    if until is not None:
        last = max(last, pd.Timestamp(until) - step)
    full = pd.date_range(first, last, freq=step)
    if len(full) == len(frame):
        return frame.reset_index(drop=True)
    filled = frame.assign(window_start=starts).set_index("window_start").reindex(full)
    filled.index.name = "window_start"
    filled[["requests", "errors"]] = filled[["requests", "errors"]].fillna(0)
    for column in ("model_version", "variant"):
        filled[column] = frame[column].iloc[0]
    return filled.reset_index()


def _with_baselines(frame: pd.DataFrame, infra: dict, grain: str) -> pd.DataFrame:
    frame = frame.copy()
    column = f"latency_{infra['latency_percentile']}"
    days = infra["baseline_days"]
    indexed = frame.set_index("window_start")[column].astype(float)
    frame["latency_baseline"] = (
        indexed.rolling(f"{days}D", closed="left", min_periods=max(3, days)).median().to_numpy()
    )
    hour = frame["window_start"].dt.hour if grain == "hour" else 0
    frame["throughput_baseline"] = (
        frame.assign(_hour=hour)
        .groupby("_hour")["requests"]
        .transform(lambda s: s.shift(1).rolling(days, min_periods=3).median())
    )
    frame["latency_column"] = column
    return frame


def _evaluation(model, version, variant, grain, start, delta, **fields) -> Evaluation:
    start = pd.Timestamp(start).to_pydatetime()
    return Evaluation(model, version, variant, grain=grain, window_start=start,
                      window_end=start + delta, **fields)  # fmt: skip


def _latency(row, infra, *common) -> Evaluation:
    column = row.latency_column
    value = _num(getattr(row, column))
    requests = int(row.requests)
    absolute = bool(infra["latency_ms"])
    baseline = _num(row.latency_baseline)
    limits = infra["latency_ms"] if absolute else infra["latency_ratio"]
    measured = value if absolute else (value / baseline if value and baseline else None)
    if requests < infra["min_requests"] or measured is None:
        outcome = INSUFFICIENT
        why = "too few requests" if requests < infra["min_requests"] else "no baseline yet"
        summary = f"{column} {_fmt(value)} ms over {requests} requests: {why}"
    else:
        outcome = grade(measured, limits)
        summary = (
            f"{column} {value:.0f} ms"
            + ("" if absolute else f" = {measured:.1f}x the baseline {baseline:.0f} ms")
            + f" over {requests} requests"
        )
    return _evaluation(
        *common[:3], common[3], common[4], common[5],
        layer="infrastructure", rule="latency", subject=column, outcome=outcome,
        value=measured, threshold=limits[0], summary=summary,
        evidence={"latency_ms": value, "baseline_ms": baseline, "requests": requests,
                  "limits": limits, "absolute": absolute,
                  **_too_few(outcome, requests, infra["min_requests"], "requests")},
    )  # fmt: skip


def _error_rate(row, infra, *common) -> Evaluation:
    requests, errors = int(row.requests), int(row.errors)
    rate = errors / requests if requests else None
    if requests < infra["min_requests"]:
        outcome = INSUFFICIENT
    elif errors < infra["min_errors"]:
        outcome = OK
    else:
        outcome = grade(rate, infra["error_rate"])
    summary = f"{errors} of {requests} requests failed ({_pct(rate)})"
    return _evaluation(
        *common, layer="infrastructure", rule="error_rate", subject="error_rate",
        outcome=outcome, value=rate, threshold=infra["error_rate"][0], summary=summary,
        evidence={"requests": requests, "errors": errors, "limits": infra["error_rate"],
                  **_too_few(outcome, requests, infra["min_requests"], "requests")},
    )  # fmt: skip


def _throughput(row, infra, *common) -> Evaluation:
    requests = int(row.requests)
    baseline = _num(row.throughput_baseline)
    if baseline is None or baseline < infra["throughput_min_baseline"]:
        outcome, drop = INSUFFICIENT, None
        summary = f"{requests} requests (no baseline of at least "
        summary += f"{infra['throughput_min_baseline']} requests for this hour)"
    else:
        drop = max(0.0, 1.0 - requests / baseline)
        outcome = grade(drop, infra["throughput_drop"])
        summary = f"{requests} requests, {_pct(drop)} below the baseline {baseline:.0f}"
    return _evaluation(
        *common, layer="infrastructure", rule="throughput_drop", subject="throughput",
        outcome=outcome, value=drop, threshold=infra["throughput_drop"][0], summary=summary,
        evidence={"requests": requests, "baseline": baseline, "limits": infra["throughput_drop"],
                  **({"reason": f"this hour's baseline is {_fmt(baseline)} requests; at least "
                      f"{infra['throughput_min_baseline']} needed for a verdict"}
                     if outcome == INSUFFICIENT else {})},
    )  # fmt: skip


def resource_evaluations(
    model: str, windows: pd.DataFrame, configs: dict[str, AlertConfig], grain: str
) -> list[Evaluation]:
    """Mean of each configured resource metric per window against [warning, critical]."""
    out = []
    for row in windows.itertuples(index=False):
        config = configs[row.model_version]
        limits = config.section("infrastructure")["resources"].get(row.metric)
        if limits is None or not config.enabled("resource"):
            continue
        value = _num(row.value_mean)
        out.append(
            _evaluation(
                model,
                row.model_version,
                row.variant,
                grain,
                row.window_start,
                GRAIN_DELTA[grain],
                layer="infrastructure",
                rule="resource",
                subject=row.metric,
                outcome=grade(value, limits),
                value=value,
                threshold=limits[0],
                summary=f"{row.metric} mean {_fmt(value)} (max {_fmt(_num(row.value_max))})",
                evidence={"mean": value, "max": _num(row.value_max), "limits": limits},
            )
        )
    return out


def _too_few(outcome: str, size: int, needed: int, what: str) -> dict[str, str]:
    """Evidence `reason` of a window too small for a verdict, with its size and the minimum
    (lifecycle.coverage reads it)."""
    if outcome != INSUFFICIENT or size >= needed:
        return {}
    return {"reason": f"only {size} {what} in the window; at least {needed} needed"}


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


# -- performance: from lifecycle.pooled_performance ----------------------------------------------


def performance_evaluations(
    model: str,
    windows: pd.DataFrame,
    references: dict[str, dict],
    tasks: dict[str, str],
    configs: dict[str, AlertConfig],
    grain: str,
) -> list[Evaluation]:
    """Each watched metric of a window's pooled span against the version's reference value.

    `windows` are lifecycle.pooled_performance rows (one check time): the window's metric
    over the shortest span of windows ending with it that holds `min_labels` labels. A
    drop alerts when the metric's 95% interval misses the reference by more than the
    metric's tolerance: for higher-is-better metrics the interval's upper bound is below
    reference - tolerance; for error metrics (MAE, RMSE) its lower bound is above
    reference x (1 + tolerance). A span without `min_labels` labels within `pool_days`
    is insufficient.
    """
    out = []
    for row in windows.itertuples(index=False):
        config = configs[row.model_version]
        if not config.enabled("performance_metric"):
            continue
        perf = config.section("performance")
        reference = references.get(row.model_version) or {}
        n_ref = _num(reference.get("labelled"))
        for metric in performance_metrics(config, tasks[row.model_version]):
            e = _performance(row, metric, _num(reference.get(metric)), n_ref, perf, grain)
            out.append(_evaluation(
                model, row.model_version, row.variant, grain, row.window_start,
                GRAIN_DELTA[grain], layer="performance", rule="performance_metric", **e,
            ))  # fmt: skip
    return out


def _performance(row, metric, reference, n_ref, perf: dict, grain: str) -> dict:
    value = _num(getattr(row, metric, None))
    low, high = (_num(getattr(row, f"{metric}_{b}", None)) for b in ("low", "high"))
    labelled = int(row.labelled or 0)
    if None not in (value, low, high) and labelled and n_ref:
        # the reference value is an estimate too (a validation set of a few thousand rows
        # scatters by about as much as a week of labels): widen the interval to the
        # difference's, taking the reference's spread per row as the window's
        widen = math.sqrt(1 + labelled / n_ref)
        low, high = value - (value - low) * widen, value + (high - value) * widen
    span = span_text(row.span_start, row.window_start, int(row.span_windows), labelled, grain)
    limits = perf["tolerance"][metric]
    evidence = {
        "metric": metric, "value": value, "value_low": low, "value_high": high,
        "reference": reference, "labelled": labelled, "predictions": int(row.predictions or 0),
        "span_start": pd.Timestamp(row.span_start).isoformat(),
        "span_windows": int(row.span_windows), "min_labels": perf["min_labels"],
        "pool_days": perf["pool_days"], "tolerance": limits,
    }  # fmt: skip
    common = {"subject": metric, "threshold": limits[0], "evidence": evidence}
    if labelled < perf["min_labels"] or value is None or reference is None or None in (low, high):
        why = "no reference value" if reference is None else (
            f"need {perf['min_labels']:,} labels within {perf['pool_days']} days"
        )  # fmt: skip
        summary = f"{metric} {_fmt(value)} over {span}: insufficient ({why})"
        return {**common, "outcome": INSUFFICIENT, "value": None, "summary": summary}
    interval = f"95% interval {low:.3f}-{high:.3f}"
    if metric in HIGHER_IS_BETTER:
        change, margin = reference - value, reference - high
        missed = f"upper bound {high:.3f} is {margin:.3f} below reference {reference:.3f}"
    else:
        change = (value - reference) / reference if reference else None
        margin = (low - reference) / reference if reference else 0.0
        missed = f"lower bound {low:.3g} is {_pct(margin)} above reference {reference:.3g}"
    outcome = CRITICAL if margin > limits[1] else WARNING if margin > limits[0] else OK
    evidence["margin"] = margin
    summary = f"{metric} {value:.3f} over {span}; {interval}"
    if outcome in FAILING:
        tolerance = limits[1] if outcome == CRITICAL else limits[0]
        shown = f"{tolerance:g}" if metric in HIGHER_IS_BETTER else _pct(tolerance)
        summary += f": {missed} (tolerance {shown})"
    else:
        summary += f", reference {reference:.3f}"
    return {**common, "outcome": outcome, "value": change, "summary": summary}


def span_text(start, end_window_start, windows: int, labelled: int, grain: str) -> str:
    """E.g. "2026-03-02..03-08 (7 days, 1,150 labels)"."""
    start, last = pd.Timestamp(start), pd.Timestamp(end_window_start)
    unit = {"hour": "hour", "day": "day", "week": "week"}.get(grain, grain)
    fmt = "%Y-%m-%d %H:00" if grain == "hour" else "%Y-%m-%d"
    if start == last:
        period = start.strftime(fmt)
    else:
        same_year = start.year == last.year
        tail = ("%m-%d %H:00" if grain == "hour" else "%m-%d") if same_year else fmt
        period = f"{start.strftime(fmt)}..{last.strftime(tail)}"
    return f"{period} ({windows} {unit}{'s' if windows != 1 else ''}, {labelled:,} labels)"


# -- business: from lifecycle.layers.business_windows --------------------------------------------


def business_evaluations(
    model: str,
    windows: pd.DataFrame,
    directions: dict[str, str],
    configs: dict[str, AlertConfig],
    grain: str,
) -> list[Evaluation]:
    """Each KPI's window mean against the version's baseline (its first `baseline_days`).

    The change is relative and signed so that a move against the KPI's direction is
    positive; windows with fewer than `min_events` events are insufficient.
    """
    out = []
    if windows.empty:
        return out
    for (version, variant, kpi), frame in windows.groupby(
        ["model_version", "variant", "kpi"], sort=True
    ):
        config = configs[version]
        if not config.enabled("kpi_drop"):
            continue
        biz = config.section("business")
        frame = frame.sort_values("window_start")
        first = frame["window_start"].min()
        span = frame["window_start"] < first + timedelta(days=biz["baseline_days"])
        base_events = frame.loc[span, "events"].sum()
        baseline = (
            float((frame.loc[span, "value_mean"] * frame.loc[span, "events"]).sum() / base_events)
            if base_events
            else None
        )
        sign = -1.0 if directions.get(kpi, "higher_is_better") == "higher_is_better" else 1.0
        for row in frame.itertuples(index=False):
            value, events = _num(row.value_mean), int(row.events)
            if events < biz["min_events"] or baseline in (None, 0.0) or value is None:
                outcome, change = INSUFFICIENT, None
                summary = f"{kpi} {_fmt(value)} over {events} events: insufficient"
            else:
                change = sign * (value - baseline) / abs(baseline)
                outcome = grade(change, biz["drop"])
                summary = (
                    f"{kpi} {value:.3g} vs baseline {baseline:.3g} "
                    f"({_pct(abs(value - baseline) / abs(baseline))} "
                    f"{'lower' if value < baseline else 'higher'}) over {events} events"
                )
            out.append(
                _evaluation(
                    model,
                    version,
                    variant,
                    grain,
                    row.window_start,
                    GRAIN_DELTA[grain],
                    layer="business",
                    rule="kpi_drop",
                    subject=kpi,
                    outcome=outcome,
                    value=change,
                    threshold=biz["drop"][0],
                    summary=summary,
                    evidence={
                        "value": value,
                        "baseline": baseline,
                        "events": events,
                        "mean_prediction": _num(getattr(row, "mean_prediction", None)),
                        "baseline_days": biz["baseline_days"],
                        "limits": biz["drop"],
                        **_too_few(outcome, events, biz["min_events"], "events"),
                    },
                )
            )
    return out
