"""Gather a model's rule evaluations from the stored monitor results and the layer summaries.

Drift, data quality and concept come from `monitor_results` (lifecycle.drift.results), on
every grain of the model's monitoring plan (lifecycle.monitoring_plan: [monitoring], else
[alerts] grain, else day); infrastructure, performance and business from lifecycle.layers
(per-window summaries computed in SQL), performance and business on the plan's calendar
grain. Only complete windows (ending by `as_of`) are evaluated; performance
counts only labels that had arrived by `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from lifecycle import catalog
from lifecycle.alerts import rules
from lifecycle.alerts.config import AlertConfig, alert_config
from lifecycle.alerts.rules import Evaluation
from lifecycle.drift import results as drift_results
from lifecycle.drift.windows import window_ends
from lifecycle.monitoring_plan import MonitoringPlan, monitoring_plan
from lifecycle.store import Store


@dataclass
class ModelEvaluations:
    model: str
    evaluations: list[Evaluation] = field(default_factory=list)
    configs: dict[tuple[str, str], AlertConfig] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # layers that could not be evaluated, why


def model_configs(store: Store, model: str) -> dict[str, AlertConfig]:
    """version -> its alert settings (raises AlertConfigError naming the version)."""
    with store.cursor() as cur:
        versions = catalog.version_names(cur, model)
        specs = {v: catalog.version_spec(cur, model, v) for v in versions}
    return {v: alert_config(spec, f"{model} {v}") for v, spec in specs.items()}


def _complete(frame: pd.DataFrame, grain: str, as_of: datetime) -> pd.DataFrame:
    if frame.empty:
        return frame
    ends = window_ends(frame["window_start"], grain)
    return frame[ends <= pd.Timestamp(as_of)].reset_index(drop=True)


def evaluate_model(
    store: Store, model: str, as_of: datetime, *, plan: MonitoringPlan | None = None
) -> ModelEvaluations:
    """Every rule on the model's complete windows by `as_of`; `plan` (default: the model's
    own, lifecycle.monitoring_plan) names the grains."""
    configs = model_configs(store, model)
    out = ModelEvaluations(model, configs={(model, v): c for v, c in configs.items()})
    newest = configs[max(configs, key=lambda v: _registered(store, model, v))]
    plan = plan or monitoring_plan(store, model)
    grain = plan.layer_grain

    for monitor_grain in plan.grains:
        monitored = drift_results(store, model, grain=monitor_grain, reference="spec")
        monitored = monitored[monitored["window_end"] <= pd.Timestamp(as_of)]
        out.evaluations += rules.monitor_evaluations(monitored, configs)
    try:
        from lifecycle import layers
    except ImportError:
        out.skipped.append("infrastructure, performance, business: lifecycle.layers is missing")
        return out
    steps = {
        "infrastructure": lambda: _infrastructure(layers, store, model, configs, as_of,
                                                  newest.section("infrastructure")["grain"]),
        "performance": lambda: _performance(layers, store, model, configs, as_of, grain),
        "business": lambda: _business(layers, store, model, configs, as_of, grain),
    }  # fmt: skip
    for layer, step in steps.items():
        # one layer's failure (a bad log, a bug) must not silence the others' alerts
        try:
            out.evaluations += step()
        except Exception as exc:
            out.skipped.append(f"{layer}: {type(exc).__name__}: {exc}")
    return out


def _infrastructure(layers, store, model, configs, as_of, grain) -> list[Evaluation]:
    infra = _complete(layers.infra_windows(store, model, grain=grain, until=as_of), grain, as_of)
    resources = _complete(
        layers.resource_windows(store, model, grain=grain, until=as_of), grain, as_of
    )
    serving = store.query_all(
        "SELECT model_version, variant FROM predictions WHERE model_name = ? AND list_contains("
        "(SELECT list(version) FROM model_versions WHERE model_name = ? AND state IN "
        "('production', 'canary', 'shadow')), model_version) GROUP BY ALL",
        [model, model],
    )
    until = dict.fromkeys(serving, as_of)
    return rules.infra_evaluations(
        model, infra, configs, grain, serving_until=until
    ) + rules.resource_evaluations(model, resources, configs, grain)


def _performance(layers, store, model, configs, as_of, grain) -> list[Evaluation]:
    perf, references, tasks = performance_inputs(layers, store, model, configs, [as_of], grain)
    return rules.performance_evaluations(model, perf, references, tasks, configs, grain)


def performance_inputs(layers, store, model, configs, steps, grain):
    """Pooled performance rows for each check time in `steps` (complete windows, labels
    arrived by the step), each version's reference metrics, and the task per version."""
    from lifecycle.pooled_performance import pooled_performance

    perf = pooled_performance(
        store,
        model,
        steps=list(steps),
        grain=grain,
        min_labels={v: c.section("performance")["min_labels"] for v, c in configs.items()},
        pool_days={v: c.section("performance")["pool_days"] for v, c in configs.items()},
    )
    references = {v: layers.reference_performance(store, model, v) for v in configs}
    with store.cursor() as cur:
        task = catalog.model_info(cur, model)["task"]
    return perf, references, dict.fromkeys(configs, task)


def kpi_directions(store, model, configs) -> dict[str, str]:
    """KPI name -> its direction, over the model's versions with alert settings."""
    kpis = {}
    with store.cursor() as cur:
        for v in configs:
            for kpi in catalog.version_spec(cur, model, v).get("kpis", []):
                kpis[kpi["name"]] = kpi.get("direction", "higher_is_better")
    return kpis


def _business(layers, store, model, configs, as_of, grain) -> list[Evaluation]:
    kpis = kpi_directions(store, model, configs)
    if not kpis:
        return []
    frame = _complete(layers.business_windows(store, model, grain=grain, until=as_of), grain, as_of)
    frame = frame[frame["model_version"].isin(list(configs))]
    return rules.business_evaluations(model, frame, kpis, configs, grain)


def _registered(store: Store, model: str, version: str):
    return store.query_all(
        "SELECT registered_at FROM model_versions WHERE model_name = ? AND version = ?",
        [model, version],
    )[0][0]
