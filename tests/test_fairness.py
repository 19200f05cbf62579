"""Fairness over time: per window and group positive rates, disparate impact and equal
opportunity (checked against pandas), graded on what the window proves (no alarms on fair
streams at small sizes, a real bias flagged), alerted, and computed on the demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, fairness
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts.check import run_check
from lifecycle.alerts.routing import NO_ROUTING
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.store import Store
from tests.conftest import write_toy_spec

T0 = datetime(2026, 6, 1, tzinfo=UTC)
COLORS = ["red", "green", "blue"]


def register(store, folder):
    spec = write_toy_spec(folder, rows=600)
    spec.write_text(spec.read_text().replace(
        'description = "A small model for tests"',
        'description = "A small model for tests"\nsensitive_attributes = ["color"]'))  # fmt: skip
    catalog.register_from_file(store, spec)


def serve(store, day, rows, rates, seed):
    """A day of traffic whose positive rate per colour is `rates[colour]`, labelled."""
    rng = np.random.default_rng(seed)
    color = rng.choice(COLORS, rows)
    positive = rng.random(rows) < np.array([rates[c] for c in color])
    ts = pd.Timestamp(T0 + timedelta(days=day)) + pd.to_timedelta(
        np.sort(rng.uniform(0, 86_000, rows)), unit="s")  # fmt: skip
    ids = [f"d{day}-{seed}-{i}" for i in range(rows)]
    ingest(store, "toy", "predictions", pd.DataFrame({
        "prediction_id": ids, "model_version": "1.0", "ts": ts,
        "prediction": np.where(positive, 0.8, 0.2), "predicted_label": np.where(positive, "1", "0"),
        "latency_ms": 10.0, "status": "ok"}))  # fmt: skip
    ingest(store, "toy", "features", pd.DataFrame(
        {"prediction_id": ids, "x": rng.uniform(0, 10, rows), "color": color}))  # fmt: skip
    actual = np.where(rng.random(rows) < 0.8, positive, ~positive)
    ingest(store, "toy", "labels", pd.DataFrame({
        "prediction_id": ids, "actual": np.where(actual, "1", "0"),
        "labeled_at": ts + pd.Timedelta(hours=1)}))  # fmt: skip
    return pd.DataFrame({"color": color, "positive": positive, "actual": actual,
                         "day": day})  # fmt: skip


def fairness_rows(store):
    return store.query_df(
        "SELECT window_start, subject, severity, effect_size, statistic, status, details "
        "FROM monitor_results WHERE check_name = 'fairness' ORDER BY window_start"
    )


def test_ratios_per_window_match_pandas_and_a_real_bias_alerts(store, tmp_path):
    register(store, tmp_path / "s")
    fair = {"red": 0.4, "green": 0.4, "blue": 0.4}
    biased = {"red": 0.5, "green": 0.45, "blue": 0.15}
    served = pd.concat([serve(store, 0, 3000, fair, 1), serve(store, 1, 3000, biased, 2)])
    monitor_model(store, "toy", grain="day")
    rows = fairness_rows(store)
    assert list(rows["severity"]) == ["none", "significant"]
    day1 = served[served.day == 1]
    rates = day1.groupby("color")["positive"].mean()
    details = json.loads(rows["details"].iloc[1])
    assert rows["effect_size"].iloc[1] == pytest.approx(rates.min() / rates.max())
    assert (details["lowest"], details["highest"]) == ("blue", rates.idxmax())
    tpr = day1[day1.actual].groupby("color")["positive"].mean()
    assert details["equal_opportunity_difference"] == pytest.approx(tpr.min() - tpr.max())
    over_time = fairness.fairness_over_time(store, "toy", grain="day")
    blue = over_time[(over_time.grp == "blue")].sort_values("window_start")
    assert blue["positive_rate"].tolist() == pytest.approx(
        served[served.color == "blue"].groupby("day")["positive"].mean().tolist()
    )
    assert blue["disparate_impact"].iloc[1] == pytest.approx(rates["blue"] / rates.max())
    run_check(store, as_of=T0 + timedelta(days=2), monitor=False, routing=NO_ROUTING)
    alerts = lc.list_alerts(store, model="toy")
    (alert,) = alerts[alerts["rule"] == "fairness"].itertuples()
    assert (alert.severity, alert.subject, alert.layer) == ("critical", "color", "performance")


@pytest.mark.parametrize("rows", [165, 1250])
def test_fair_streams_do_not_alarm_at_small_sizes(store, tmp_path, rows):
    """20 days of a fair model at 165 and 1,250 rows a day (an 18% positive rate): no
    moderate-or-higher fairness finding."""
    register(store, tmp_path / "s")
    for day in range(20):
        serve(store, day, rows, {"red": 0.18, "green": 0.18, "blue": 0.18}, 100 + day)
    monitor_model(store, "toy", grain="day")
    graded = fairness_rows(store)
    graded = graded[graded.status == "ok"]
    assert len(graded) >= 15
    assert (graded["severity"] == "none").all()


def test_fairness_over_time_on_the_demo(demo_monitored):
    with Store(demo_monitored, read_only=True) as store:
        frame = fairness.fairness_over_time(store, "credit_risk", grain="week")
        stored = store.query_df(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'ok') AS ok "
            "FROM monitor_results WHERE model_name = 'credit_risk' AND check_name = 'fairness'"
        )
        segments = fairness.segments_over_time(store, "churn", grain="week")
        from lifecycle import registry, review

        production = registry.serving_versions(store, "credit_risk")["production"]
        trend = review.review_pack(store, "credit_risk", production, with_gates=False)[
            "fairness_trend"
        ]
    assert trend and {t["attribute"] for t in trend} == {"age_band"}
    assert all(0 < t["disparate_impact"] <= 1 for t in trend)
    assert set(frame["attribute"]) == {"age_band"} and frame["window_start"].nunique() >= 2
    shown = frame.dropna(subset=["disparate_impact"])
    assert shown["disparate_impact"].between(0, 1).all()
    assert (shown.groupby("window_start")["disparate_impact"].max() == 1).all()
    assert stored["ok"].iloc[0] > 0
    assert {"segment", "predictions", "positive_rate", "accuracy"} <= set(segments.columns)


def simulated_groups(rng, rows, rates):
    k = len(rates)
    sizes = rng.multinomial(rows, [1 / k] * k)
    return pd.DataFrame({
        "grp": [f"g{i}" for i in range(k)], "predictions": sizes,
        "positives": [rng.binomial(n, r) for n, r in zip(sizes, rates, strict=True)]})  # fmt: skip


@pytest.mark.parametrize("groups", [3, 6])
def test_grading_false_alarms_and_detection_over_many_seeds(groups):
    """Fair streams at 100-10,000 rows a window, 200 seeds each: moderate-or-higher in at
    most 1% of windows (measured: none); a group at half the others' rate is flagged in
    >= 90% of windows once each group has about 800 rows (measured: 98-99%; at about 400 rows
    a group 58-68%, the price of a bound that holds for groups picked after the fact)."""
    rng = np.random.default_rng(0)
    for rows in (100, 165, 500, 1250, 10_000):
        flags = 0
        for _ in range(200):
            verdict = fairness._verdict(simulated_groups(rng, rows, [0.2] * groups))
            flags += verdict is not None and verdict["upper"] < fairness.FOUR_FIFTHS
        assert flags <= 2, (rows, flags)
    for rows in (830 * groups, 10_000):
        detected = sum(
            fairness._verdict(simulated_groups(rng, rows, [0.3] * (groups - 1) + [0.15]))["upper"]
            < fairness.FOUR_FIFTHS
            for _ in range(100)
        )
        assert detected >= 90, (rows, detected)


def test_model_health_draws_fairness_and_segments_over_time(store, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.browser import ROOT
    from tests.test_pages_monitoring import values

    register(store, tmp_path / "s")
    for day in range(3):
        serve(store, day, 900, {"red": 0.5, "green": 0.45, "blue": 0.15}, 10 + day)
    path = store.path
    store.close()
    monkeypatch.setenv("LIFECYCLE_DB", str(path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in {"model": "toy", "version": "1.0", "tab": "Fairness & segments",
                       "from": "2026-06-01", "to": "2026-06-03"}.items():  # fmt: skip
        at.query_params[key] = value
    at.switch_page("pages/model_health.py").run()
    assert not at.exception
    assert any("lowest disparate impact 0.3" in w.value for w in at.warning)
    specs = {c.key: c.proto.spec for c in at.get("plotly_chart") if c.key}
    di = json.loads(specs["fairness_di"])
    assert di["data"][0]["name"] == "color" and len(values(di["data"][0]["y"])) == 3
    assert (values(di["data"][0]["y"]) < 0.5).all()  # blue at about a third of red's rate
    rates = json.loads(specs["fairness_rates_color"])
    assert {t["name"] for t in rates["data"]} == set(COLORS)
    assert "segment_quality" in specs and "segment_rate" in specs
