"""The app's first-start setup: build the demo database, monitor every model once, check once.

When the app starts on a path with no database it builds the demo there (lifecycle.demo,
built in a side file and moved into place), then computes every model's declared windows
(lifecycle.monitor.monitor_declared) and runs the first alert check, so that every page has
drift and data-quality history and alerts. The app runs this in a background thread of its
process (ui/runtime.py), never in a browser session.

Its progress is durable. The build records a `first_start_setup` audit row in state
`pending` inside the database before the file is moved into place (so it is part of the
atomic build); the first check is followed by a row in state `complete`. A process that
opens a database whose latest such row is `pending` resumes the setup: monitoring skips
windows that are already stored, so a resume repeats at most the check. A database built
any other way (`python -m lifecycle demo`, your own) has no such row and is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifecycle import catalog, demo, portfolio
from lifecycle.audit import append_audit
from lifecycle.store import Store

ACTION = "first_start_setup"
ACTOR = "lifecycle app (first start)"
DEMO_DAYS_ENV = "LIFECYCLE_DEMO_DAYS"  # a smaller first-start demo, for tests
DEMO_DAYS = 90

# Share of the progress bar per phase, from measured times (README: first start).
BUILD_SHARE, RECENT_SHARE, CHECK_SHARE = 0.25, 0.2, 0.05
RECENT_DAYS = 7  # monitored before the first check: what Overview and the alerts read
HISTORY_STILL = (
    f"Overview and alerts are current (the last {RECENT_DAYS} days are monitored and checked); "
    "older windows appear in the history charts as they are computed."
)

# report(fraction of the whole setup, what runs now, what is still to come)
Report = Callable[[float, str, str], None]


class SetupError(Exception):
    """The first-start setup cannot run as configured."""


def demo_days() -> int:
    """Days of traffic in the first-start demo: $LIFECYCLE_DEMO_DAYS, else 90."""
    text = os.environ.get(DEMO_DAYS_ENV, "").strip()
    if not text:
        return DEMO_DAYS
    try:
        days = int(text)
    except ValueError:
        raise SetupError(f"{DEMO_DAYS_ENV}={text!r} is not a whole number of days") from None
    if days < 7:
        raise SetupError(f"{DEMO_DAYS_ENV}={days}: the demo needs at least 7 days")
    return days


def mark_pending(store: Store) -> None:
    """Record, in one transaction, that monitoring and the first check are still to run."""
    with store.transaction() as cur:
        append_audit(
            cur, actor=ACTOR, action=ACTION, to_state="pending",
            reason="demo database built; first monitoring and alert check still to run",
        )  # fmt: skip


def mark_complete(store: Store, summary: str) -> None:
    with store.transaction() as cur:
        append_audit(cur, actor=ACTOR, action=ACTION, from_state="checked",
                     to_state="complete", reason=summary)  # fmt: skip


def mark_checked(store: Store, summary: str) -> None:
    """Record that the recent windows are monitored and the first check ran (pages are
    current); a resumed setup then only fills in older history."""
    with store.transaction() as cur:
        append_audit(cur, actor=ACTOR, action=ACTION, from_state="pending",
                     to_state="checked", reason=summary)  # fmt: skip


def setup_state(store: Store) -> str | None:
    """The latest first-start state: pending, checked, complete (None: no setup)."""
    row = store.query_one(
        "SELECT to_state FROM audit_log WHERE action = ? ORDER BY audit_id DESC LIMIT 1",
        [ACTION],
    )
    return row[0] if row else None


def is_pending(store: Store) -> bool:
    """Whether this database's first-start setup began and has not finished."""
    return setup_state(store) in ("pending", "checked")


def needed(path: Path, open_store: Callable[[Path], Store]) -> bool:
    """Whether setup has work at `path`: no database yet, or one whose setup is pending."""
    return not path.exists() or is_pending(open_store(path))


def run_setup(
    path: Path, open_store: Callable[[Path], Store], report: Report, *, days: int | None = None
) -> str:
    """Build (if `path` does not exist), monitor and check; returns a one-line summary.

    Pages are usable early: the last RECENT_DAYS of every model are monitored first and the
    first alert check runs on them (Overview, alerts and the weekly review are then
    current); older windows are filled in afterwards, newest first.
    `open_store(path)` gives the store to work on (the app passes its process's store).
    `report` may raise to stop the setup between two steps or windows; what finished stays.
    """
    build = not path.exists()
    if build:
        planned = [m.name for m in demo.demo_models()]
        steps = len(planned) + 3

        def building(fraction: float, message: str) -> None:
            report(BUILD_SHARE * fraction, f"Step 1 of {steps}: building the demo database - "
                   f"{message}", _still(planned))  # fmt: skip

        built = demo.build_demo(path, days=days or demo_days(), progress=building,
                                finish=mark_pending)  # fmt: skip
        done = [f"demo built in {built.seconds:.0f} s"]
    else:
        done = []
    store = open_store(path)
    from lifecycle.drift import offload
    from lifecycle.monitor import default_workers

    with offload.kept_pool(default_workers()):  # worker processes started once
        return _monitor_and_check(store, build, report, done)


def _monitor_and_check(store: Store, build: bool, report: Report, done: list[str]) -> str:
    with store.cursor() as cur:
        models = catalog.model_names(cur)
    steps = len(models) + (3 if build else 2)
    base = BUILD_SHARE if build else 0.0
    end = logs_end(store)
    if setup_state(store) == "checked":  # resumed after the first check: history only
        done.append(f"{len(models)} model(s) monitored")
        return _history(store, models, report, steps, base + RECENT_SHARE + CHECK_SHARE, done)
    for index, model in enumerate(models):

        def overall(fraction: float, index=index) -> float:
            return base + RECENT_SHARE * (index + fraction) / len(models)

        step = f"Step {steps - len(models) - 1 + index} of {steps}"
        _monitor(store, model, f"{step}: first monitoring of {model} (last {RECENT_DAYS} days)",
                 _still(models[index + 1 :]), report, overall, end)  # fmt: skip
    base += RECENT_SHARE
    report(base, f"Step {steps - 1} of {steps}: first alert check", "Still to compute: "
           "older history.")  # fmt: skip
    from lifecycle.alerts.check import run_check  # pandas, scipy: loaded when needed
    from lifecycle.alerts.routing import NO_ROUTING

    # as of the end of the logs: a check at the wall clock would read the hours since the
    # demo's last prediction as an outage of every model (throughput drops); the demo's
    # alerts are not sent to the configured destinations
    checked = run_check(store, monitor=False, as_of=end, routing=NO_ROUTING)
    done.append(f"{len(models)} model(s) monitored")
    done.append(f"first {checked.text().splitlines()[0]}")
    mark_checked(store, "; ".join(done))
    return _history(store, models, report, steps, base + CHECK_SHARE, done)


def _history(store, models: list[str], report: Report, steps: int, base: float, done) -> str:
    """The last step: every window not stored yet, newest first; then the setup is complete."""
    for index, model in enumerate(models):

        def history(fraction: float, index=index) -> float:
            return base + (1.0 - base) * (index + fraction) / len(models)

        _monitor(store, model, f"Step {steps} of {steps}: older history of {model}",
                 HISTORY_STILL, report, history, None)  # fmt: skip
    summary = "; ".join(done)
    mark_complete(store, summary)
    report(1.0, "Setup complete", "")
    return summary


def recent_start(end: datetime | None, grain: str) -> datetime | None:
    """Where the first, quick pass of `grain` windows starts: the window holding the moment
    RECENT_DAYS before the end of the logs (None: every window)."""
    if end is None:
        return None
    moment = end - timedelta(days=RECENT_DAYS)
    if grain == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day  # day windows; row-count chunks starting since that day


def logs_end(store: Store) -> datetime | None:
    """The hour after the newest logged prediction (None: no predictions; the check then
    runs as of now)."""
    newest = portfolio.last_prediction_at(store)
    if newest is None:
        return None
    newest = newest.astimezone(UTC)
    return newest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _monitor(store, model: str, what: str, still: str, report: Report, overall, end) -> None:
    """Monitoring of one model, grain by grain (its declared windows): from `end`'s recent
    windows only, or (end None) every window not stored yet, newest first."""
    from lifecycle.monitor import default_workers, monitor_declared
    from lifecycle.monitoring_plan import monitoring_plan

    grains = monitoring_plan(store, model).grains
    for g, grain in enumerate(grains):
        label = f"{what} - {grain} windows"
        report(overall(g / len(grains)), label, still)

        def show(done, count, window, computed, g=g, label=label):
            report(overall((g + done / count) / len(grains)), f"{label}, {done} of {count}", still)

        since = recent_start(end, grain) if end is not None else None
        monitor_declared(store, model, grain=grain, progress=show, since=since,
                         newest=end is None, workers=default_workers())  # fmt: skip


def _still(models: list[str]) -> str:
    """What is still to compute after the current step."""
    first = f"first monitoring of {', '.join(models)}; " if models else ""
    return f"Still to compute: {first}the first alert check; then older history."
