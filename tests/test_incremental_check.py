"""Incremental checks: a check evaluates only what changed since the model's last check, and
a schedule of incremental checks leaves exactly the evaluations and alerts that checks
evaluating everything leave, through late labels, late predictions, silent hours and
settings changes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.alerts import incremental
from lifecycle.alerts.check import run_check
from lifecycle.alerts.replay import run_replay
from lifecycle.ingest import ingest
from lifecycle.store import Store
from tests.conftest import write_toy_spec
from tests.test_check import DAY0, FAST_DRIFT, ROWS, end_of, serve_day

TROUBLE = {2: {"missing_x": 0.5}, 4: {"new_color": 0.015}}
DAYS = 7


def _late_labels(store, day: int, rng, *, delay_days: float) -> None:
    ids = [f"d{day}-{i}" for i in range(0, ROWS, 2)]
    ingest(store, "toy", "labels", pd.DataFrame({
        "prediction_id": ids, "actual": rng.choice(["0", "1"], len(ids)),
        "labeled_at": pd.Timestamp(end_of(day)) + pd.Timedelta(days=delay_days)}))  # fmt: skip


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("incremental")
    spec = write_toy_spec(folder / "spec", rows=3000)
    # the toy serves about 83 requests an hour: a baseline of 50 gets throughput verdicts
    extra = "\n[alerts.infrastructure]\nthroughput_min_baseline = 50\nbaseline_days = 3\n"
    spec.write_text(spec.read_text() + FAST_DRIFT + extra, encoding="utf-8")
    path = folder / "empty.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        with store.transaction() as cur:  # stands in for the registry's promotion: serving
            cur.execute("UPDATE model_versions SET state = 'production'")
    return path


def _schedule(path, *, full: bool) -> None:
    """Days of traffic arriving between checks every 6 hours: labels 1.5 days late, one day's
    labels a week late (ingested in one late batch), a late batch of predictions for an old
    day, and a silent half day (a throughput drop)."""
    rng = np.random.default_rng(3)
    with Store(path) as store:
        for day in range(DAYS):
            serve_day(store, day, labels=False, **TROUBLE.get(day, {}))
            if day != 1:
                _late_labels(store, day, rng, delay_days=1.5)
            if day == 5:  # day 1's labels, late; and stray predictions logged for day 3
                _late_labels(store, 1, rng, delay_days=4.2)
                _stray_predictions(store, day=3)
            for hours in (6, 12, 18, 24):
                run_check(store, as_of=end_of(day) - timedelta(days=1) + timedelta(hours=hours),
                          full=full)  # fmt: skip
        # the traffic stops: two more days of checks over silent hours
        for hours in range(6, 49, 6):
            run_check(store, as_of=end_of(DAYS - 1) + timedelta(hours=hours), full=full)


def _stray_predictions(store, day: int) -> None:
    ts = pd.Timestamp(DAY0 + timedelta(days=day, hours=13))
    ids = [f"late{day}-{i}" for i in range(40)]
    ingest(store, "toy", "predictions", pd.DataFrame({
        "prediction_id": ids, "model_version": "1.0", "ts": [ts] * 40, "prediction": 0.5,
        "predicted_label": "1", "latency_ms": 900.0, "status": "error"}))  # fmt: skip


def _state(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with Store(path) as store:
        evaluations = store.query_df(
            "SELECT * EXCLUDE (evaluated_at) FROM alert_evaluations ORDER BY ALL"
        )
        alerts = store.query_df(
            "SELECT layer, rule, subject, grain, variant, severity, worst_severity, state, "
            "first_seen, last_seen, count, summary FROM alerts ORDER BY ALL"
        )
    return evaluations, alerts


@pytest.mark.slow
def test_incremental_checks_leave_what_full_checks_leave(registered, tmp_path):
    paths = {}
    for mode in ("incremental", "full"):
        paths[mode] = tmp_path / f"{mode}.duckdb"
        shutil.copyfile(registered, paths[mode])
        _schedule(paths[mode], full=mode == "full")
    incremental_evals, incremental_alerts = _state(paths["incremental"])
    full_evals, full_alerts = _state(paths["full"])
    # the schedule exercises every layer and both outcomes
    assert {"infrastructure", "data_quality", "drift", "performance"} <= set(full_evals.layer)
    assert {"warning", "critical"} <= set(full_alerts.severity)
    assert ("throughput_drop", "throughput") in set(
        zip(full_alerts.rule, full_alerts.subject, strict=True)
    )
    pd.testing.assert_frame_equal(incremental_evals, full_evals)
    pd.testing.assert_frame_equal(incremental_alerts, full_alerts)


@pytest.fixture
def two_days(registered, tmp_path):
    path = tmp_path / "two.duckdb"
    shutil.copyfile(registered, path)
    with Store(path) as store:
        serve_day(store, 0)
        serve_day(store, 1)
    return path


def test_a_check_with_nothing_new_evaluates_and_monitors_nothing(two_days):
    with Store(two_days) as store:
        first = run_check(store, as_of=end_of(1))
        assert first.evaluation["toy"].startswith("full evaluation (no earlier check")
        assert first.evaluated > 0
        # day 1's last labels arrive within the hour: evaluated, but nothing to monitor
        arrived = run_check(store, as_of=end_of(1) + timedelta(hours=2))
        assert arrived.monitor == []
        assert "data changed from 2026-03-03" in arrived.evaluation["toy"]
        again = run_check(store, as_of=end_of(1) + timedelta(hours=2, minutes=20))
        assert again.monitor == [] and again.evaluated == 0
        assert again.evaluation["toy"] == "incremental: windows completed since 2026-03-04 02:00"
        # a new day is evaluated from its own windows on
        serve_day(store, 2, missing_x=0.5)
        later = run_check(store, as_of=end_of(2))
        assert later.monitor[0]["computed"] == 1
        assert "data changed from 2026-03-04" in later.evaluation["toy"]
        assert later.exit_code == 2


def test_changed_settings_a_replay_or_an_earlier_time_evaluate_everything(two_days, tmp_path):
    with Store(two_days) as store:
        run_check(store, as_of=end_of(1))
        earlier = run_check(store, as_of=end_of(0))
        assert earlier.evaluation["toy"].startswith("full evaluation (check time before")
        run_check(store, as_of=end_of(1))
        assert run_check(store, as_of=end_of(1), full=True).evaluation["toy"] == (
            "full evaluation (asked for)"
        )
        run_replay(store, start=end_of(0), end=end_of(1), every="day")
        assert incremental.previous_state(store, "toy") is None
        assert run_check(store, as_of=end_of(1)).evaluation["toy"].startswith("full evaluation")
        spec = write_toy_spec(tmp_path / "spec2", version="1.1", rows=3000)
        catalog.register_from_file(store, spec)
        changed = run_check(store, as_of=end_of(1))
        assert changed.evaluation["toy"] == (
            "full evaluation (settings, registry states or code changed)"
        )


def test_an_idle_check_does_not_load_the_drift_engine(two_days):
    with Store(two_days) as store:
        run_check(store, as_of=end_of(1) + timedelta(hours=2))  # day 1's labels all in
    code = (
        "import sys; from datetime import datetime, UTC\n"
        "from lifecycle.store import Store\n"
        "from lifecycle.alerts.check import run_check\n"
        f"store = Store({str(two_days)!r})\n"
        "report = run_check(store, as_of=datetime(2026, 3, 4, 2, 30, tzinfo=UTC))\n"
        "print(report.evaluated, sorted(m for m in ('scipy', 'sklearn', 'lifecycle.monitor',"
        " 'lifecycle.drift.engine') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "[]"]


def test_window_floor_follows_the_calendar():
    when = pd.Timestamp("2026-03-05 13:45", tz="UTC").to_pydatetime()  # a Thursday
    assert incremental.window_floor(when, "hour") == pd.Timestamp("2026-03-05 13:00", tz="UTC")
    assert incremental.window_floor(when, "day") == pd.Timestamp("2026-03-05", tz="UTC")
    assert incremental.window_floor(when, "week") == pd.Timestamp("2026-03-02", tz="UTC")
    assert incremental.window_floor(when, "month") == pd.Timestamp("2026-03-01", tz="UTC")
