"""Replay scheduled checks over history in one run: `check --replay --from T1 --to T2
--every day|week`.

The logs are read once: monitoring runs once up to T2 (or stored windows are reused with
--no-monitor), the layer summaries are queried once, and performance is pooled for every
step in one query (a label counts at a step only if it had arrived by then). Then the
check time steps through the schedule: at each step the rules' evaluations of the windows
complete by then feed the alert lifecycle with `now = step` (auto-resolve, snooze expiry,
escalation at that time), exactly as a cron job running `check --as-of step` would have,
so alert episodes and their first_seen match what people would have seen.

Evaluations of drift, quality, concept and infrastructure windows do not depend on the
check time once the window is complete, so each is fed at the first step that completes
it; performance (late labels) and business (the baseline of a version's first days) are
evaluated again at every step and only changes reach the lifecycle. Webhooks are posted
only with `notify_url` (--notify).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from lifecycle import catalog
from lifecycle.alerts import check, incremental, notify, rules
from lifecycle.alerts.config import AlertConfigError
from lifecycle.alerts.lifecycle import LifecycleResult, active_counts, apply_evaluations
from lifecycle.alerts.retraining import RetrainingConfigError, recommendations
from lifecycle.alerts.rules import Evaluation
from lifecycle.alerts.sources import (
    _complete,
    _registered,
    kpi_directions,
    model_configs,
    performance_inputs,
)
from lifecycle.drift import results as drift_results
from lifecycle.monitoring_plan import MonitoringConfigError, MonitoringPlan, monitoring_plan
from lifecycle.store import Store

EVERY = {"day": timedelta(days=1), "week": timedelta(weeks=1)}
MAX_STEPS = 2000


@dataclass
class ReplayReport(check.CheckReport):
    start: datetime | None = None
    every: str = "day"
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["start"] = self.start.isoformat() if self.start else None
        return data

    def text(self) -> str:
        lines = [
            f"replay {self.start:%Y-%m-%d %H:%M} .. {self.as_of:%Y-%m-%d %H:%M} UTC every "
            f"{self.every}: {len(self.steps)} step(s)"
        ]
        lines += [f"  {step_line(s)}" for s in self.steps]
        return "\n".join([*lines, super().text()])


def step_line(s: dict[str, Any]) -> str:
    active = s["active"]
    return (
        f"{s['as_of'][:16].replace('T', ' ')}: {s['evaluated']} evaluation(s); opened "
        f"{len(s['opened'])}, raised {len(s['raised'])}, resolved {len(s['resolved'])}, "
        f"escalated {len(s['escalated'])}; active {active['critical']} critical, "
        f"{active['warning']} warning"
    )


def schedule(start: datetime, end: datetime, every: str) -> list[datetime]:
    """start, start + every, ... up to end (inclusive)."""
    if every not in EVERY:
        raise check.CheckError(f"--every must be one of {', '.join(EVERY)}, got {every!r}")
    if end < start:
        raise check.CheckError(f"--to {end:%Y-%m-%d %H:%M} is before --from {start:%Y-%m-%d %H:%M}")
    count = int((end - start) / EVERY[every]) + 1
    if count > MAX_STEPS:
        raise check.CheckError(f"{count} steps is too many for one replay (at most {MAX_STEPS})")
    return [start + i * EVERY[every] for i in range(count)]


def run_replay(
    store: Store,
    models: list[str] | None = None,
    *,
    start: datetime,
    end: datetime,
    every: str = "day",
    notify_url: str | None = None,
    app_url: str | None = None,
    monitor: bool = True,
) -> ReplayReport:
    """Replay the scheduled checks start, start + every, ..., end (see the module docstring)."""
    with check._CHECK_LOCK:
        return _run_replay(store, models, start, end, every, notify_url, app_url, monitor)


def _run_replay(store, models, start, end, every, notify_url, app_url, monitor):
    started, started_at = time.perf_counter(), datetime.now(UTC)
    start, end = check._utc(start), check._utc(end)
    steps = schedule(start, end, every)
    with store.cursor() as cur:
        known = catalog.model_names(cur)
    names = models or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise check.CheckError(f"unknown model(s) {unknown} (known: {', '.join(known) or 'none'})")
    report = ReplayReport(as_of=end, models=list(names), start=start, every=every)
    plans = []
    for model in names:
        try:
            windows = monitoring_plan(store, model)
        except MonitoringConfigError as exc:
            raise check.CheckError(str(exc)) from exc
        if monitor:
            from lifecycle.monitor import monitor_model  # heavy imports only when used

            for grain in windows.grains:
                report.monitor.append(monitor_model(store, model, grain=grain, as_of=end).to_dict())
        try:
            plans.append(_ModelPlan.gather(store, model, steps, windows))
        except (AlertConfigError, RetrainingConfigError) as exc:
            raise check.CheckError(str(exc)) from exc
        report.skipped += [f"{model}: {s}" for s in plans[-1].skipped]
    total, events = LifecycleResult(), []
    previous = None
    for step in steps:
        result = LifecycleResult()
        for plan in plans:
            found = plan.evaluations(previous, step)
            result.merge(apply_evaluations(store, found, plan.configs, now=step))
        total.merge(result)
        events += [(alert_id, event, step) for alert_id, event in result.events()]
        report.steps.append(_step_summary(store, names, step, result))
        previous = step
    # the evaluations stored are as of the replay's steps: the next check starts afresh
    incremental.forget(store, list(names))
    report.evaluated = total.evaluated
    for name in ("opened", "raised", "repeated", "resolved", "escalated"):
        setattr(report, name, sorted(set(getattr(total, name))))
    if notify_url:  # only when asked (never the config's routes): history must not page anyone
        for alert_id, event, step in events:
            notify.queue(store, [(alert_id, event)], notify_url, app_url=app_url, now=step)
        report.notifications = notify.deliver_pending(store, notify_url).to_dict()
    report.active = active_counts(store, list(names))
    report.active_alerts = check._active_alerts(store, names)
    try:
        recs = recommendations(store, list(names), end)
    except RetrainingConfigError as exc:
        raise check.CheckError(str(exc)) from exc
    report.retraining = [{**r.to_dict(), "text": r.text()} for r in recs]
    report.seconds = round(time.perf_counter() - started, 2)
    check._record_run(store, report, started_at)
    return report


def _step_summary(store, names, step, result: LifecycleResult) -> dict[str, Any]:
    return {
        "as_of": step.isoformat(),
        "evaluated": result.evaluated,
        **{k: sorted(set(getattr(result, k))) for k in ("opened", "raised", "resolved",
                                                         "escalated")},
        "active": active_counts(store, list(names)),
    }  # fmt: skip


@dataclass
class _ModelPlan:
    """One model's summaries, read once; evaluations per step from them."""

    model: str
    configs: dict
    fixed: list[Evaluation]  # do not change once their window is complete
    performance: pd.DataFrame
    perf_inputs: tuple
    business: pd.DataFrame
    kpis: dict
    grain: str
    skipped: list[str]
    fixed_ends: list[pd.Timestamp] = field(default_factory=list)

    @classmethod
    def gather(
        cls, store: Store, model: str, steps: list[datetime], windows: MonitoringPlan
    ) -> _ModelPlan:
        from lifecycle import layers

        end = steps[-1]
        configs = model_configs(store, model)
        newest = configs[max(configs, key=lambda v: _registered(store, model, v))]
        grain = windows.layer_grain  # as the check: the declared windows (monitoring_plan)
        infra_grain = newest.section("infrastructure")["grain"]
        fixed = []
        for monitor_grain in windows.grains:
            monitored = drift_results(store, model, grain=monitor_grain, reference="spec")
            monitored = monitored[monitored["window_end"] <= pd.Timestamp(end)]
            fixed += rules.monitor_evaluations(monitored, configs)
        skipped: list[str] = []
        try:
            fixed += _infrastructure(layers, store, model, configs, end, infra_grain)
        except Exception as exc:  # as in the check: one layer's failure spares the others
            skipped.append(f"infrastructure: {type(exc).__name__}: {exc}")
        perf, references, tasks = pd.DataFrame(), {}, {}
        try:
            perf, references, tasks = performance_inputs(layers, store, model, configs, steps,
                                                         grain)  # fmt: skip
            perf = _mark_changes(perf)
        except Exception as exc:
            skipped.append(f"performance: {type(exc).__name__}: {exc}")
        business, kpis = pd.DataFrame(), {}
        try:
            business, kpis = _business_frame(layers, store, model, configs, end, grain)
        except Exception as exc:
            skipped.append(f"business: {type(exc).__name__}: {exc}")
        fixed.sort(key=lambda e: pd.Timestamp(e.window_end))
        ends = [pd.Timestamp(e.window_end) for e in fixed]
        return cls(model, {(model, v): c for v, c in configs.items()}, fixed, perf,
                   (references, tasks, configs), business, kpis, grain, skipped, ends)  # fmt: skip

    def evaluations(self, previous: datetime | None, step: datetime) -> list[Evaluation]:
        """What a check at `step` would evaluate, less what earlier steps already fed
        unchanged (the lifecycle only acts on new or changed evaluations anyway)."""
        stamp = pd.Timestamp(step)
        out = self._fixed_by_step(previous, step)
        references, tasks, configs = self.perf_inputs
        if not self.performance.empty:
            frame = _changed_rows(self.performance, previous, stamp)
            out += rules.performance_evaluations(self.model, frame, references, tasks, configs,
                                                 self.grain)  # fmt: skip
        if self.kpis and not self.business.empty:
            frame = _complete(self.business, self.grain, step)
            out += rules.business_evaluations(self.model, frame, self.kpis, configs, self.grain)
        return out

    def _fixed_by_step(self, previous, step) -> list[Evaluation]:
        """Fixed evaluations whose window ended in (previous, step]; `fixed` is sorted by
        window end (gather)."""
        ends = self.fixed_ends
        low = 0 if previous is None else bisect_right(ends, pd.Timestamp(previous))
        return self.fixed[low : bisect_right(ends, pd.Timestamp(step))]


def _changed_rows(perf: pd.DataFrame, previous, stamp) -> pd.DataFrame:
    """This step's pooled rows that are new or differ from the previous step's."""
    now = perf[perf["step"] == stamp]
    return now if previous is None else now[now["_changed"]]


def _mark_changes(perf: pd.DataFrame) -> pd.DataFrame:
    """Flag each (step, window) row that is new or differs from the window's row at the
    previous step (steps are consecutive, and a window stays once it is complete)."""
    if perf.empty:
        return perf
    keys = ["window_start", "model_version", "variant"]
    perf = perf.sort_values([*keys, "step"], kind="stable").reset_index(drop=True)
    values = perf.columns.difference([*keys, "step"])
    before = perf.groupby(keys, sort=False)[list(values)].shift(1)
    same = ((perf[values] == before) | (perf[values].isna() & before.isna())).all(axis=1)
    first = perf.groupby(keys, sort=False).cumcount() == 0
    return perf.assign(_changed=(first | ~same).to_numpy())


def _infrastructure(layers, store, model, configs, end, grain) -> list[Evaluation]:
    """Infrastructure evaluations of every window complete by `end`: baselines look only
    backwards, so a window's evaluation is the same at every later step."""
    from lifecycle.alerts.sources import _infrastructure as infra

    return infra(layers, store, model, configs, end, grain)


def _business_frame(layers, store, model, configs, end, grain):
    kpis = kpi_directions(store, model, configs)
    if not kpis:
        return pd.DataFrame(), {}
    frame = layers.business_windows(store, model, grain=grain, until=end)
    frame = frame[frame["model_version"].isin(list(configs))]
    return frame, kpis


__all__ = ["EVERY", "ReplayReport", "run_replay", "schedule"]
