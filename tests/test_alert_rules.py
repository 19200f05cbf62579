"""Alert rules on hand-made sequences of windows, and the [alerts] settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle.alerts import rules
from lifecycle.alerts.config import DEFAULTS, AlertConfigError, alert_config

T0 = pd.Timestamp(datetime(2026, 3, 2, tzinfo=UTC))


def configs(**alerts):
    return {"1.0": alert_config({"alerts": alerts})}


# -- settings -------------------------------------------------------------------------------------


def test_defaults_and_overrides():
    config = alert_config(None)
    assert config["resolve_after"] == DEFAULTS["resolve_after"] == 3
    assert config.section("infrastructure")["error_rate"] == [0.02, 0.05]
    config = alert_config(
        {"alerts": {"resolve_after": 5, "infrastructure": {"error_rate": [0.01, 0.1]},
                    "disabled": ["outliers"]}}
    )  # fmt: skip
    assert config["resolve_after"] == 5
    assert config.section("infrastructure")["error_rate"] == [0.01, 0.1]
    assert config.section("infrastructure")["latency_ratio"] == [2.0, 4.0]  # untouched default
    assert not config.enabled("outliers") and config.enabled("missing_rate")
    assert DEFAULTS["infrastructure"]["error_rate"] == [0.02, 0.05]  # defaults not mutated


def test_infra_limits_drawn_on_the_charts_follow_the_spec(toy_store, tmp_path):
    """Model health draws the version's own absolute thresholds, none for a disabled rule
    or for latency alerts relative to a baseline."""
    from lifecycle import catalog
    from lifecycle.alerts.config import infra_limits
    from tests.conftest import write_toy_spec

    assert infra_limits(toy_store, "toy", "1.0") == {"error_rate": [0.02, 0.05],
                                                     "latency_ms": None}  # fmt: skip
    spec = write_toy_spec(tmp_path / "v2", version="2.0")
    spec.write_text(spec.read_text() + '\n[alerts]\ndisabled = ["error_rate"]\n'
                    "[alerts.infrastructure]\nlatency_ms = [200, 500]\n")  # fmt: skip
    catalog.register_from_file(toy_store, spec)
    assert infra_limits(toy_store, "toy", "2.0") == {"error_rate": None,
                                                     "latency_ms": [200, 500]}  # fmt: skip


def test_every_bad_setting_is_named():
    with pytest.raises(AlertConfigError) as err:
        alert_config(
            {"alerts": {"bogus": 1, "resolve_after": 0, "drift": {"warning": "huge"},
                        "business": {"drop": [0.5, 0.1]}, "grain": "month"}}
        )  # fmt: skip
    text = str(err.value)
    for fragment in ("alerts.bogus", "alerts.resolve_after", "alerts.drift.warning",
                     "alerts.business.drop", "alerts.grain"):  # fmt: skip
        assert fragment in text
    assert len(err.value.problems) == 5


def test_grade():
    assert rules.grade(0.01, [0.02, 0.05]) == "ok"
    assert rules.grade(0.02, [0.02, 0.05]) == "warning"
    assert rules.grade(0.07, [0.02, 0.05]) == "critical"
    assert rules.grade(None, [0.02, 0.05]) == "insufficient"
    assert rules.grade(float("nan"), [0.02, 0.05]) == "insufficient"


# -- infrastructure -------------------------------------------------------------------------------


def infra_frame(hours: int, requests=200, errors=0, p95=50.0, variant="production"):
    starts = [T0 + timedelta(hours=h) for h in range(hours)]
    frame = pd.DataFrame(
        {
            "window_start": starts,
            "model_version": "1.0",
            "variant": variant,
            "requests": requests,
            "errors": errors,
            "latency_p50": 20.0,
            "latency_p95": p95,
            "latency_p99": 90.0,
        }
    )
    frame["error_rate"] = frame.errors / frame.requests
    return frame


def by_rule(evals, rule):
    return [e for e in evals if e.rule == rule]


def test_latency_against_the_trailing_baseline():
    frame = infra_frame(24 * 8)
    frame.loc[24 * 7 + 10, "latency_p95"] = 150.0  # 3x: warning
    frame.loc[24 * 7 + 11, "latency_p95"] = 400.0  # 8x: critical
    evals = by_rule(rules.infra_evaluations("m", frame, configs(), "hour"), "latency")
    outcomes = [e.outcome for e in evals]
    # the first days have no 7-day baseline yet
    assert outcomes[0] == "insufficient"
    assert outcomes[24 * 7 + 10 : 24 * 7 + 12] == ["warning", "critical"]
    assert outcomes.count("warning") == 1 and outcomes.count("critical") == 1
    spike = evals[24 * 7 + 11]
    assert spike.value == pytest.approx(8.0) and spike.evidence["baseline_ms"] == 50.0
    assert spike.window_end - spike.window_start == timedelta(hours=1)
    assert spike.layer == "infrastructure" and spike.subject == "latency_p95"


def test_latency_absolute_limits_need_no_baseline():
    frame = infra_frame(3, p95=250.0)
    config = configs(infrastructure={"latency_ms": [200, 500], "latency_percentile": "p95"})
    evals = by_rule(rules.infra_evaluations("m", frame, config, "hour"), "latency")
    assert [e.outcome for e in evals] == ["warning"] * 3


def test_error_rate_needs_enough_errors_and_requests():
    frame = infra_frame(4, requests=200)
    frame["errors"] = [1, 5, 12, 3]  # 0.5%, 2.5%, 6%, 1.5%
    frame.loc[3, "requests"] = 10  # too few requests for a verdict
    evals = by_rule(rules.infra_evaluations("m", frame, configs(), "hour"), "error_rate")
    assert [e.outcome for e in evals] == ["ok", "warning", "critical", "insufficient"]
    assert evals[2].value == pytest.approx(12 / 200)
    # a high rate from a handful of errors is not an alert (small-count noise)
    frame = infra_frame(1, requests=40)
    frame["errors"] = [2]
    assert (
        by_rule(rules.infra_evaluations("m", frame, configs(), "hour"), "error_rate")[0].outcome
        == "ok"
    )


def test_throughput_drop_against_the_same_hour_on_previous_days():
    hours = 24 * 5
    frame = infra_frame(hours)
    hour = frame.window_start.dt.hour
    frame["requests"] = np.where(hour < 6, 30, 300)  # quiet nights are not a drop
    frame.loc[hours - 12, "requests"] = 100  # 67% below the 300 baseline: warning
    frame.loc[hours - 11, "requests"] = 20  # 93% below: critical
    evals = by_rule(rules.infra_evaluations("m", frame, configs(), "hour"), "throughput_drop")
    failing = [(e.window_start, e.outcome) for e in evals if e.failing]
    assert failing == [
        (frame.window_start[hours - 12].to_pydatetime(), "warning"),
        (frame.window_start[hours - 11].to_pydatetime(), "critical"),
    ]
    night = [e for e in evals if e.window_start.hour < 6]
    assert {e.outcome for e in night} == {"insufficient"}  # baseline below 100 requests


def test_an_outage_without_any_request_is_a_throughput_drop():
    hours = 24 * 5
    frame = infra_frame(hours, requests=300)
    silent = frame.window_start.iloc[-6]
    frame = frame[frame.window_start != silent]  # no request at all in that hour
    until = frame.window_start.iloc[-1] + timedelta(hours=4)  # still serving, then silent
    evals = by_rule(
        rules.infra_evaluations("m", frame, configs(), "hour", {("1.0", "production"): until}),
        "throughput_drop",
    )
    critical = [e.window_start for e in evals if e.outcome == "critical"]
    assert critical[0] == silent.to_pydatetime()
    assert len(critical) == 1 + 3  # the gap and the 3 silent hours after the last window
    assert evals[-1].window_end == until.to_pydatetime()
    latency = by_rule(rules.infra_evaluations("m", frame, configs(), "hour"), "latency")
    gap = next(e for e in latency if e.window_start == silent.to_pydatetime())
    assert gap.outcome == "insufficient"


def test_resource_rule_and_disabling_a_rule():
    frame = pd.DataFrame(
        {
            "window_start": [T0, T0 + timedelta(hours=1)],
            "model_version": "1.0",
            "variant": "production",
            "metric": ["cpu_util", "memory_mb"],
            "value_mean": [96.0, 5000.0],
            "value_max": [99.0, 5100.0],
        }
    )
    evals = rules.resource_evaluations("m", frame, configs(), "hour")
    assert [(e.subject, e.outcome) for e in evals] == [("cpu_util", "critical")]
    assert rules.resource_evaluations("m", frame, configs(disabled=["resource"]), "hour") == []


# -- performance and business ---------------------------------------------------------------------


def perf_frame(values: dict, labelled):
    n = len(next(iter(values.values())))
    return pd.DataFrame(
        {
            "window_start": [T0 + timedelta(days=d) for d in range(n)],
            "model_version": "1.0",
            "variant": "production",
            "predictions": 1000,
            "labelled": labelled,
            "coverage": np.asarray(labelled) / 1000,
            **values,
        }
    )


def test_performance_drop_of_a_higher_is_better_metric():
    frame = perf_frame({"roc_auc": [0.80, 0.76, 0.70, 0.60]}, [500, 500, 500, 50])
    evals = rules.performance_evaluations(
        "m", frame, {"1.0": {"roc_auc": 0.82}}, {"1.0": "binary_classification"}, configs(), "day"
    )
    assert [e.outcome for e in evals] == ["ok", "warning", "critical", "insufficient"]
    assert evals[2].value == pytest.approx(0.12) and evals[2].subject == "roc_auc"
    assert "50 labelled" in evals[3].summary


def test_performance_drop_inside_its_interval_is_not_an_alert():
    frame = perf_frame({"roc_auc": [0.74, 0.74]}, [250, 5000])
    frame["roc_auc_low"] = [0.66, 0.73]
    frame["roc_auc_high"] = [0.83, 0.75]  # few labels: the interval still reaches 0.82
    evals = rules.performance_evaluations(
        "m", frame, {"1.0": {"roc_auc": 0.82}}, {"1.0": "binary_classification"}, configs(), "day"
    )
    assert [e.outcome for e in evals] == ["ok", "warning"]
    assert "not significant" in evals[0].summary


def test_performance_increase_of_an_error_metric():
    frame = perf_frame({"mae": [3.3, 3.9, 7.0]}, [900, 900, 900])
    evals = rules.performance_evaluations(
        "m", frame, {"1.0": {"mae": 3.3}}, {"1.0": "regression"}, configs(), "day"
    )
    assert [e.outcome for e in evals] == ["ok", "warning", "critical"]
    assert evals[2].value == pytest.approx(7.0 / 3.3 - 1)
    assert evals[2].layer == "performance"


def test_kpi_drop_against_the_versions_first_days():
    days = 30
    value = np.r_[np.full(20, 0.30), 0.26, np.full(days - 21, 0.15)]
    frame = pd.DataFrame(
        {
            "window_start": [T0 + timedelta(days=d) for d in range(days)],
            "model_version": "1.0",
            "variant": "production",
            "kpi": "conversion",
            "events": 400,
            "value_mean": value,
            "mean_prediction": 0.6,
        }
    )
    frame.loc[days - 1, "events"] = 50
    evals = rules.business_evaluations(
        "m", frame, {"conversion": "higher_is_better"}, configs(), "day"
    )
    outcomes = [e.outcome for e in evals]
    assert outcomes[:20] == ["ok"] * 20
    assert outcomes[20] == "ok"  # 13% lower: below the 15% warning
    assert outcomes[21:-1] == ["critical"] * (days - 22)
    assert outcomes[-1] == "insufficient"
    assert evals[25].evidence["baseline"] == pytest.approx(0.30)
    # for a lower-is-better KPI the same move is an improvement
    evals = rules.business_evaluations(
        "m", frame, {"conversion": "lower_is_better"}, configs(), "day"
    )
    assert {e.outcome for e in evals} <= {"ok", "insufficient"}


# -- drift, quality and concept results -------------------------------------------------------------


def monitor_frame(rows):
    base = {
        "model_name": "m", "model_version": "1.0", "variant": "production", "grain": "day",
        "window_start": T0, "window_end": T0 + timedelta(days=1), "reference_kind": "spec",
        "method": "wasserstein", "statistic": 0.1, "p_value": 1e-9, "p_adjusted": 1e-8,
        "threshold": 0.05, "n_reference": 4000, "n_current": 5000, "status": "ok",
        "details": {}, "response": None,
    }  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows])


def test_monitor_results_map_to_layers_and_levels():
    frame = monitor_frame(
        [
            {"check_name": "data_drift", "subject": "a", "severity": "minor", "effect_size": 0.06},
            {"check_name": "data_drift", "subject": "b", "severity": "moderate",
             "effect_size": 0.2},
            {"check_name": "new_categories", "subject": "c", "severity": "significant",
             "effect_size": 0.08, "details": {"unseen": {"gig": 0.08}, "big": list(range(9))}},
            {"check_name": "concept_drift", "subject": "surrogate", "severity": "moderate",
             "effect_size": 0.06},
            {"check_name": "performance_drift", "subject": "mae", "severity": "significant",
             "effect_size": 0.5},
            {"check_name": "missing_rate", "subject": "d", "severity": None, "status":
             "insufficient_data", "effect_size": None, "details": {"reason": "too few rows"}},
        ]
    )  # fmt: skip
    evals = rules.monitor_evaluations(frame, {"1.0": alert_config(None)})
    got = [(e.rule, e.layer, e.subject, e.outcome) for e in evals]
    assert got == [
        ("data_drift", "drift", "a", "ok"),
        ("data_drift", "drift", "b", "warning"),
        ("new_categories", "data_quality", "c", "critical"),
        ("concept_drift", "performance", "surrogate", "warning"),
        ("missing_rate", "data_quality", "d", "insufficient"),
    ]  # performance_drift is covered by the performance_metric rule
    assert evals[2].evidence["unseen"] == {"gig": 0.08} and "big" not in evals[2].evidence
    assert "too few rows" in evals[4].summary
    # stricter levels: minor drift is already a warning
    strict = {"1.0": alert_config({"alerts": {"drift": {"warning": "minor"}}})}
    assert rules.monitor_evaluations(frame, strict)[0].outcome == "warning"
