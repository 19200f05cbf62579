"""Alert settings: documented defaults, overridable per model version in its spec's [alerts] table.

Every problem in an [alerts] table is collected and raised at once (AlertConfigError), each
named with its key, so a spec author fixes them in one go. See docs/alerts.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

SEVERITY_LEVELS = ("minor", "moderate", "significant")
GRAINS = ("hour", "day", "week")
PERCENTILES = ("p50", "p95", "p99")

# The defaults, in the same shape as the spec's [alerts] table.
DEFAULTS: dict[str, Any] = {
    "resolve_after": 3,  # healthy windows in a row that resolve an alert automatically
    "escalate_after_hours": 4.0,  # a critical alert left unacknowledged this long is escalated
    "grain": "day",  # windows of the drift, data-quality, performance and business rules
    "disabled": [],  # rule names switched off for this model, e.g. ["outliers"]
    "infrastructure": {
        "grain": "hour",
        "latency_percentile": "p95",
        "latency_ratio": [2.0, 4.0],  # x the baseline: median of the previous baseline_days
        "latency_ms": [],  # absolute [warning, critical] in ms; replaces the ratio when set
        "baseline_days": 7,
        "min_requests": 20,
        "error_rate": [0.02, 0.05],
        "min_errors": 5,  # fewer failed requests in a window never alert (small-count noise)
        "throughput_drop": [0.5, 0.8],  # share below the same hour of day's baseline
        "throughput_min_baseline": 100,  # requests the baseline must expect for a verdict
        "resources": {"cpu_util": [85.0, 95.0]},  # metric -> [warning, critical] of the mean
    },
    "performance": {
        "metrics": "auto",  # auto: AUTO_METRICS of the task, or a list of metric names
        "min_labels": 1000,  # labelled rows a verdict needs; windows pool until they hold it
        "pool_days": 28,  # the longest span of consecutive windows pooled, in days
        # [warning, critical] margin by which the 95% interval must miss the reference:
        # absolute points (higher-is-better metrics) or relative increase (error metrics)
        "tolerance": {
            "accuracy": [0.005, 0.03],
            "roc_auc": [0.02, 0.05],
            "f1": [0.02, 0.06],
            "precision": [0.02, 0.06],
            "recall": [0.02, 0.06],
            "mae": [0.10, 0.25],
            "rmse": [0.10, 0.25],
        },
        "concept": {"warning": "moderate", "critical": "significant"},
        # estimated performance (labels pending): severity of the band's shortfall beyond the
        # tolerances above -> alert level
        "estimate": {"warning": "moderate", "critical": "significant"},
        # disparate impact over the sensitive attributes (lifecycle.fairness): moderate when
        # the lowest group's ratio is provably under 0.8, significant under 0.6
        "fairness": {"warning": "moderate", "critical": "significant"},
    },
    "business": {
        "baseline_days": 14,  # the version's first days of KPI events are its baseline
        "drop": [0.15, 0.30],  # relative move against the KPI's direction
        "min_events": 200,
    },
    "drift": {"warning": "moderate", "critical": "significant"},
    "data_quality": {"warning": "moderate", "critical": "significant"},
}

HIGHER_IS_BETTER = ("roc_auc", "accuracy", "precision", "recall", "f1")
LOWER_IS_BETTER = ("mae", "rmse")
AUTO_METRICS = {  # metrics = "auto": what each task alerts on
    "binary_classification": ["roc_auc", "accuracy", "f1"],
    "multiclass_classification": ["accuracy", "f1"],
    "regression": ["mae", "rmse"],
}
RENAMED = {  # keys of earlier releases -> what replaced them (named in the error)
    "alerts.performance.metric": '`alerts.performance.metrics` (a list, or "auto")',
    "alerts.performance.drop": "`alerts.performance.tolerance` (per metric)",
    "alerts.performance.increase": "`alerts.performance.tolerance` (per metric)",
}


class AlertConfigError(ValueError):
    """An [alerts] table that cannot be used; `problems` names every bad key."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"[alerts] settings of {where} are not valid:\n{listing}")


@dataclass(frozen=True)
class AlertConfig:
    """Validated settings of one model version (defaults merged with its spec)."""

    settings: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

    def section(self, name: str) -> dict[str, Any]:
        return self.settings[name]

    def enabled(self, rule: str) -> bool:
        return rule not in self.settings["disabled"]


def alert_config(spec: dict[str, Any] | None, where: str = "spec") -> AlertConfig:
    """Defaults overridden by `spec["alerts"]`; raises AlertConfigError naming every problem."""
    raw = (spec or {}).get("alerts") or {}
    merged = copy.deepcopy(DEFAULTS)
    problems: list[str] = []
    _merge(merged, raw, DEFAULTS, "alerts", problems)
    if isinstance(raw, dict):
        _validate(merged, problems)
    if problems:
        raise AlertConfigError(where, problems)
    return AlertConfig(merged)


def _merge(target: dict, raw: Any, defaults: dict, path: str, problems: list[str]) -> None:
    if not isinstance(raw, dict):
        problems.append(f"`{path}` must be a table")
        return
    for key, value in raw.items():
        where = f"{path}.{key}"
        if where in RENAMED:
            problems.append(f"`{where}` was replaced by {RENAMED[where]}")
        elif key not in defaults:
            problems.append(f"unknown key `{where}` (known: {', '.join(sorted(defaults))})")
        elif key == "resources":
            if not isinstance(value, dict):
                problems.append(f"`{where}` must be a table of metric = [warning, critical]")
            else:
                target[key] = dict(value)  # replaces the default metrics
        elif isinstance(defaults[key], dict):
            _merge(target[key], value, defaults[key], where, problems)
        else:
            target[key] = value


def _validate(s: dict, problems: list[str]) -> None:
    _int(s, "resolve_after", "alerts", problems, minimum=1)
    _number(s, "escalate_after_hours", "alerts", problems, minimum=0)
    _choice(s, "grain", GRAINS, "alerts", problems)
    if not isinstance(s["disabled"], list) or not all(isinstance(r, str) for r in s["disabled"]):
        problems.append("`alerts.disabled` must be a list of rule names")
    infra = s["infrastructure"]
    p = "alerts.infrastructure"
    _choice(infra, "grain", GRAINS, p, problems)
    _choice(infra, "latency_percentile", PERCENTILES, p, problems)
    _pair(infra, "latency_ratio", p, problems)
    if infra["latency_ms"] != []:
        _pair(infra, "latency_ms", p, problems)
    _pair(infra, "error_rate", p, problems)
    _pair(infra, "throughput_drop", p, problems)
    for key in ("baseline_days", "min_requests", "min_errors", "throughput_min_baseline"):
        _int(infra, key, p, problems, minimum=0)
    for metric in list(infra["resources"]):
        _pair(infra["resources"], metric, f"{p}.resources", problems)
    perf = s["performance"]
    p = "alerts.performance"
    known = HIGHER_IS_BETTER + LOWER_IS_BETTER
    metrics = perf["metrics"]
    if metrics != "auto" and (
        not isinstance(metrics, list) or not metrics or not set(metrics) <= set(known)
    ):
        problems.append(
            f'`{p}.metrics` is {metrics!r}; expected "auto" or a list of {", ".join(known)}'
        )
    _int(perf, "min_labels", p, problems, minimum=1)
    _int(perf, "pool_days", p, problems, minimum=1)
    for metric in list(perf["tolerance"]):
        _pair(perf["tolerance"], metric, f"{p}.tolerance", problems)
    _levels(perf["concept"], f"{p}.concept", problems)
    _levels(perf["estimate"], f"{p}.estimate", problems)
    biz = s["business"]
    p = "alerts.business"
    _int(biz, "baseline_days", p, problems, minimum=1)
    _int(biz, "min_events", p, problems, minimum=1)
    _pair(biz, "drop", p, problems)
    _levels(s["drift"], "alerts.drift", problems)
    _levels(s["data_quality"], "alerts.data_quality", problems)


def _int(d, key, path, problems, minimum=0) -> None:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        problems.append(f"`{path}.{key}` must be an integer >= {minimum}, got {v!r}")


def _number(d, key, path, problems, minimum=0.0) -> None:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or v < minimum:
        problems.append(f"`{path}.{key}` must be a number >= {minimum}, got {v!r}")


def _choice(d, key, allowed, path, problems) -> None:
    if d[key] not in allowed:
        problems.append(f"`{path}.{key}` is {d[key]!r}; expected one of {', '.join(allowed)}")


def _pair(d, key, path, problems) -> None:
    v = d[key]
    ok = (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        and 0 <= v[0] <= v[1]
    )
    if not ok:
        problems.append(
            f"`{path}.{key}` must be [warning, critical] with 0 <= warning <= critical, got {v!r}"
        )
    else:
        d[key] = [float(x) for x in v]


def _levels(d, path, problems) -> None:
    for key in ("warning", "critical"):
        if d.get(key) not in SEVERITY_LEVELS:
            problems.append(
                f"`{path}.{key}` is {d.get(key)!r}; expected one of {', '.join(SEVERITY_LEVELS)}"
            )
    levels = (d.get("warning"), d.get("critical"))
    if all(v in SEVERITY_LEVELS for v in levels) and SEVERITY_LEVELS.index(
        levels[0]
    ) > SEVERITY_LEVELS.index(levels[1]):
        problems.append(f"`{path}`: warning must not be above critical")


def model_configs(store, model: str) -> dict[str, AlertConfig]:
    """version -> its alert settings (raises AlertConfigError naming the version)."""
    from lifecycle import catalog

    with store.cursor() as cur:
        versions = catalog.version_names(cur, model)
        specs = {v: catalog.version_spec(cur, model, v) for v in versions}
    return {v: alert_config(spec, f"{model} {v}") for v, spec in specs.items()}


def infra_limits(store, model: str, version: str) -> dict[str, list[float] | None]:
    """The absolute infrastructure alert thresholds of a version, [warning, critical], for
    drawing on its charts: `error_rate` (a share), `latency_ms` (None when latency alerts are
    relative to a baseline, the default). A disabled rule or unreadable settings give None."""
    from lifecycle import catalog

    with store.cursor() as cur:
        spec = catalog.version_spec(cur, model, version)
    try:
        config = alert_config(spec)
    except AlertConfigError:
        return {"error_rate": None, "latency_ms": None}
    infra = config.section("infrastructure")
    return {
        "error_rate": list(infra["error_rate"]) if config.enabled("error_rate") else None,
        "latency_ms": (list(infra["latency_ms"]) or None) if config.enabled("latency") else None,
    }


def performance_metrics(config: AlertConfig, task: str) -> list[str]:
    """The metrics the performance rule watches for a version of this task."""
    metrics = config.section("performance")["metrics"]
    return list(AUTO_METRICS.get(task, ["accuracy", "f1"]) if metrics == "auto" else metrics)
