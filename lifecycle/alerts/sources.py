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
from datetime import datetime, timedelta

import pandas as pd

from lifecycle import catalog, lake_manifest
from lifecycle.alerts import rules
from lifecycle.alerts.config import AlertConfig, model_configs
from lifecycle.alerts.incremental import Changes, window_floor
from lifecycle.alerts.rules import Evaluation
from lifecycle.drift import results as drift_results
from lifecycle.drift.windows import window_ends
from lifecycle.monitoring_plan import MonitoringPlan, monitoring_plan
from lifecycle.store import Store

# how far back an infrastructure baseline's unit reaches (a month at most 31 days)
GRAIN_SPAN = {"week": timedelta(weeks=1), "month": timedelta(days=31)}


@dataclass
class ModelEvaluations:
    model: str
    evaluations: list[Evaluation] = field(default_factory=list)
    configs: dict[tuple[str, str], AlertConfig] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # layers that could not be evaluated, why


def _complete(frame: pd.DataFrame, grain: str, as_of: datetime) -> pd.DataFrame:
    if frame.empty:
        return frame
    ends = window_ends(frame["window_start"], grain)
    return frame[ends <= pd.Timestamp(as_of)].reset_index(drop=True)


def evaluate_model(
    store: Store,
    model: str,
    as_of: datetime,
    *,
    plan: MonitoringPlan | None = None,
    changes: Changes | None = None,
) -> ModelEvaluations:
    """Every rule on the model's complete windows by `as_of`; `plan` (default: the model's
    own, lifecycle.monitoring_plan) names the grains. With `changes` (not full), only the
    windows whose evaluation can differ since the last check (lifecycle.alerts.incremental)."""
    configs = model_configs(store, model)
    out = ModelEvaluations(model, configs={(model, v): c for v, c in configs.items()})
    newest = configs[max(configs, key=lambda v: _registered(store, model, v))]
    plan = plan or monitoring_plan(store, model)
    grain = plan.layer_grain
    changes = None if changes is None or changes.full else changes

    for monitor_grain in plan.grains:
        monitored = drift_results(store, model, grain=monitor_grain, reference="spec",
                                  **_changed_results(changes))  # fmt: skip
        monitored = monitored[monitored["window_end"] <= pd.Timestamp(as_of)]
        out.evaluations += rules.monitor_evaluations(monitored, configs)
    try:
        from lifecycle import layers
    except ImportError:
        out.skipped.append("infrastructure, performance, business: lifecycle.layers is missing")
        return out
    infra_grain = newest.section("infrastructure")["grain"]
    steps = {
        "infrastructure": (infra_grain, lambda bound: _infrastructure(
            layers, store, model, configs, as_of, infra_grain, bound)),
        "performance": (grain, lambda bound: _performance(
            layers, store, model, configs, as_of, grain, bound)),
        "business": (grain, lambda bound: _business(
            layers, store, model, configs, as_of, grain, bound)),
    }  # fmt: skip
    for layer, (layer_grain, step) in steps.items():
        if changes is not None and changes.grain_unchanged(layer_grain):
            continue  # no new data, no newly complete window: the stored evaluations stand
        bound = None if changes is None else changes.bound(layer_grain)
        # one layer's failure (a bad log, a bug) must not silence the others' alerts
        try:
            out.evaluations += step(bound)
        except Exception as exc:
            out.skipped.append(f"{layer}: {type(exc).__name__}: {exc}")
    return out


def _changed_results(changes: Changes | None) -> dict:
    if changes is None:
        return {}
    return {"changed": (changes.results_since, changes.previous_as_of)}


def _infrastructure(layers, store, model, configs, as_of, grain, bound=None) -> list[Evaluation]:
    """Infrastructure rules; from `bound` on (None: all windows), reading the baselines'
    lookback before it."""
    lower = None if bound is None else baseline_start(bound, grain, configs)
    infra = _complete(layers.infra_windows(store, model, grain=grain, since=lower, until=as_of),
                      grain, as_of)  # fmt: skip
    resources = _complete(
        layers.resource_windows(store, model, grain=grain, since=bound, until=as_of), grain, as_of
    )
    serving = store.query_all(
        "SELECT model_version, variant FROM predictions WHERE model_name = ? AND list_contains("
        "(SELECT list(version) FROM model_versions WHERE model_name = ? AND state IN "
        "('production', 'canary', 'shadow')), model_version) GROUP BY ALL",
        [model, model],
    )
    until = dict.fromkeys(serving, as_of)
    first = None if lower is None else _first_windows(layers, store, model, grain, lower)
    found = rules.infra_evaluations(
        model, infra, configs, grain, serving_until=until, fill_from=first
    )
    return _from(found, bound) + rules.resource_evaluations(model, resources, configs, grain)


def baseline_start(bound: datetime, grain: str, configs) -> datetime:
    """Where the infrastructure baselines of windows from `bound` on begin: `baseline_days`
    back (throughput compares the same hour on earlier days, or earlier windows)."""
    days = max(c.section("infrastructure")["baseline_days"] for c in configs.values())
    step = timedelta(days=1) if grain in ("hour", "day") else GRAIN_SPAN[grain]
    return window_floor(bound - days * step, grain)


def _first_windows(layers, store, model, grain, lower) -> dict[tuple[str, str], datetime]:
    """Where silent windows are filled from, per (version, variant), when reading from
    `lower`: `lower` itself for a version serving before it, so the windows read are the
    same as with the whole history."""
    with lake_manifest.edges(store, model):  # a lake's oldest files only
        rows = store.query_all(
            "SELECT model_version, variant, min(ts) FROM predictions WHERE model_name = ? "
            "GROUP BY ALL",
            [model],
        )
    return {(v, var): max(window_floor(first, grain), lower) for v, var, first in rows}


def _from(evaluations: list[Evaluation], bound: datetime | None) -> list[Evaluation]:
    if bound is None:
        return evaluations
    stamp = pd.Timestamp(bound)
    return [e for e in evaluations if pd.Timestamp(e.window_start) >= stamp]


def _performance(layers, store, model, configs, as_of, grain, bound=None) -> list[Evaluation]:
    perf, references, tasks = performance_inputs(layers, store, model, configs, [as_of], grain,
                                                 since=bound)  # fmt: skip
    return rules.performance_evaluations(model, perf, references, tasks, configs, grain)


def performance_inputs(layers, store, model, configs, steps, grain, since=None):
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
        since=since,
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


def _business(layers, store, model, configs, as_of, grain, bound=None) -> list[Evaluation]:
    """KPI rules. A KPI's baseline is its first `baseline_days`: all of a (version, variant,
    KPI)'s windows are kept when `bound` falls inside its baseline, else those from `bound`."""
    kpis = kpi_directions(store, model, configs)
    if not kpis:
        return []
    frame = _complete(layers.business_windows(store, model, grain=grain, until=as_of), grain, as_of)
    frame = frame[frame["model_version"].isin(list(configs))]
    found = rules.business_evaluations(model, frame, kpis, configs, grain)
    if bound is None:
        return found
    first: dict[tuple, pd.Timestamp] = {}
    for e in found:
        key = (e.version, e.variant, e.subject)
        first[key] = min(first.get(key, pd.Timestamp(e.window_start)), pd.Timestamp(e.window_start))
    stamp = pd.Timestamp(bound)
    return [
        e
        for e in found
        if pd.Timestamp(e.window_start) >= stamp
        or stamp
        < first[(e.version, e.variant, e.subject)]
        + timedelta(days=configs[e.version].section("business")["baseline_days"])
    ]


def _registered(store: Store, model: str, version: str):
    return store.query_all(
        "SELECT registered_at FROM model_versions WHERE model_name = ? AND version = ?",
        [model, version],
    )[0][0]
