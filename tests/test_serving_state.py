"""Traffic that contradicts the registry (a retired version answering, canary traffic for a
version not in canary) is a data-quality finding of its window and raises an alert; traffic
that matches the registry's history is not flagged; models never promoted get no result."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from lifecycle import layers, registry
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts.check import run_check
from lifecycle.alerts.routing import NO_ROUTING
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from tests.test_registry import DANA, RITA, register_version

T0 = datetime(2026, 5, 4, tzinfo=UTC)
DAY = timedelta(days=1)


def serve(store, day, version, variant, rows=300, seed=0):
    rng = np.random.default_rng(seed + day)
    ts = pd.Timestamp(T0 + day * DAY) + pd.to_timedelta(np.sort(rng.uniform(0, 86_000, rows)),
                                                        unit="s")  # fmt: skip
    ids = [f"{variant}-{version}-{day}-{i}" for i in range(rows)]
    score = rng.uniform(0, 1, rows)
    ingest(store, "toy", "predictions", pd.DataFrame({
        "prediction_id": ids, "model_version": version, "ts": ts, "variant": variant,
        "prediction": score, "predicted_label": np.where(score >= 0.5, "1", "0"),
        "latency_ms": 20.0, "status": "ok"}))  # fmt: skip
    ingest(store, "toy", "features", pd.DataFrame({
        "prediction_id": ids, "x": rng.uniform(0, 10, rows),
        "color": rng.choice(["red", "green", "blue"], rows)}))  # fmt: skip


def history(store):
    """1.0 in production from T0 - 8 days; 2.0 approved, in shadow from day 2 (12:00)."""
    for version in ("1.0", "2.0"):
        registry.request_approval(store, DANA, "toy", version, at=T0 - 10 * DAY)
        registry.approve(store, RITA, "toy", version, at=T0 - 10 * DAY)
    registry.promote(store, DANA, "toy", "1.0", at=T0 - 9 * DAY)
    registry.switch(store, DANA, "toy", "1.0", reason="first release", at=T0 - 8 * DAY)
    registry.promote(store, DANA, "toy", "2.0", at=T0 + 2.5 * DAY)


def results(store):
    return store.query_df(
        "SELECT model_version, variant, window_start, severity, statistic, details "
        "FROM monitor_results WHERE check_name = 'serving_state' ORDER BY 1, 2, 3"
    )


def test_traffic_the_registry_does_not_allow_is_flagged_per_window(store, tmp_path):
    for version in ("1.0", "2.0"):
        register_version(store, tmp_path, version, seed="same")
    history(store)
    for day in range(4):
        serve(store, day, "1.0", "production", seed=1)
    serve(store, 0, "2.0", "canary", rows=50, seed=2)  # 2.0 was never in canary
    serve(store, 1, "2.0", "shadow", rows=200, seed=3)  # a day before its shadow began
    serve(store, 3, "2.0", "shadow", rows=200, seed=4)  # in shadow: fine
    monitor_model(store, "toy", grain="day")
    frame = results(store)
    by_key = {(r.model_version, r.variant, r.window_start.day): r for r in frame.itertuples()}
    production = [r for (v, *_), r in by_key.items() if v == "1.0"]
    assert len(production) == 4 and all(r.severity == "none" for r in production)
    canary = by_key[("2.0", "canary", 4)]
    assert (canary.severity, canary.statistic) == ("significant", 50.0)
    details = json.loads(canary.details)
    assert details["states_in_window"] == ["approved"]
    assert "50 of 50 canary request(s) came while 2.0 was not in canary" in details["summary"]
    assert by_key[("2.0", "shadow", 5)].severity == "significant"
    assert by_key[("2.0", "shadow", 7)].severity == "none"
    # the Data quality table shows the share of requests, not the count
    quality = layers.quality_summary(store, "toy", version="2.0", variant="canary")
    row = quality[quality["check_name"] == "serving_state"].iloc[0]
    assert row["rate"] == 1.0 and row["n_current"] == 50
    # the check turns the findings into data-quality alerts
    report = run_check(store, as_of=T0 + 5 * DAY, monitor=False, routing=NO_ROUTING)
    alerts = lc.list_alerts(store, model="toy")
    serving = alerts[alerts["rule"] == "serving_state"]
    assert set(serving["variant"]) == {"canary", "shadow"}
    assert set(serving["severity"]) == {"critical"} and report.exit_code == 2


def test_the_shadow_day_it_began_counts_only_rows_before_the_change(store, tmp_path):
    for version in ("1.0", "2.0"):
        register_version(store, tmp_path, version, seed="same")
    history(store)
    serve(store, 2, "2.0", "shadow", rows=400, seed=5)  # shadow began at 12:00 that day
    monitor_model(store, "toy", grain="day")
    (row,) = results(store).itertuples()
    ts = store.query_df(
        "SELECT ts FROM predictions WHERE model_version = '2.0' AND variant = 'shadow'"
    )["ts"]
    # rows more than the 15-minute tolerance before the change are mismatches
    expected = int((ts < pd.Timestamp(T0 + 2.5 * DAY - timedelta(minutes=15))).sum())
    assert 0 < expected < 400 and row.statistic == expected


def test_models_never_promoted_get_no_serving_state_result(store, tmp_path):
    register_version(store, tmp_path, "1.0", seed="same")
    serve(store, 0, "1.0", "production")
    monitor_model(store, "toy", grain="day")
    assert results(store).empty


def test_historical_logs_loaded_after_the_first_promotion_are_not_judged(store, tmp_path):
    """Onboarding: a model registered and switched to production today, then its past
    months of logs loaded. They predate its governance: no finding, no alert."""
    from tests.test_registry import to_production_first

    register_version(store, tmp_path, "1.0", seed="same")
    to_production_first(store, "1.0")  # now, after every logged prediction
    serve(store, 0, "1.0", "production")
    monitor_model(store, "toy", grain="day")
    assert results(store).empty
