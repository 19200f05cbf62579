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


def perf_frame(values: dict, labelled, span_windows=7):
    """Pooled-performance rows (lifecycle.pooled_performance) of consecutive daily windows."""
    n = len(labelled)
    starts = [T0 + timedelta(days=d) for d in range(n)]
    return pd.DataFrame(
        {
            "step": T0 + timedelta(days=n),
            "window_start": starts,
            "model_version": "1.0",
            "variant": "production",
            "span_start": [s - timedelta(days=span_windows - 1) for s in starts],
            "span_windows": span_windows,
            "predictions": 2000,
            "labelled": labelled,
            **values,
        }
    )


def test_performance_alerts_when_the_interval_misses_the_reference_by_the_tolerance():
    # accuracy 0.944 at reference; tolerance [0.005, 0.03] on the interval's upper bound
    frame = perf_frame(
        {"accuracy": [0.940, 0.915, 0.915, 0.85, 0.90],
         "accuracy_low": [0.925, 0.898, 0.885, 0.83, 0.80],
         "accuracy_high": [0.953, 0.930, 0.942, 0.87, 0.95]},
        [1150, 1150, 1150, 1150, 600],
    )  # fmt: skip
    evals = rules.performance_evaluations(
        "m", frame, {"1.0": {"accuracy": 0.944}}, {"1.0": "multiclass_classification"},
        configs(performance={"metrics": ["accuracy"]}), "day",
    )  # fmt: skip
    # the third window's drop is as large, but its interval (fewer effective labels) still
    # reaches within the tolerance of the reference: not shown to be worse
    assert [e.outcome for e in evals] == ["ok", "warning", "ok", "critical", "insufficient"]
    assert evals[1].value == pytest.approx(0.029) and evals[1].subject == "accuracy"
    assert evals[1].summary.startswith(
        "accuracy 0.915 over 2026-02-25..03-03 (7 days, 1,150 labels)"
    )
    assert "upper bound 0.930 is 0.014 below reference 0.944 (tolerance 0.005)" in evals[1].summary
    assert evals[1].evidence["span_start"].startswith("2026-02-25")
    assert "insufficient (need 1,000 labels within 28 days)" in evals[4].summary


def test_performance_watches_every_metric_of_the_task_by_default():
    values = {m: [0.9] for m in ("roc_auc", "accuracy", "f1", "precision", "recall")}
    values |= {f"{m}_{b}": [0.9] for m in values for b in ("low", "high")}
    frame = perf_frame(values, [2000], span_windows=1)
    refs = {"1.0": dict.fromkeys(values, 0.9)}
    binary = rules.performance_evaluations(
        "m", frame, refs, {"1.0": "binary_classification"}, configs(), "day"
    )
    assert [e.subject for e in binary] == ["roc_auc", "accuracy", "f1"]
    assert binary[0].summary.startswith("roc_auc 0.900 over 2026-03-02 (1 day, 2,000 labels)")
    multi = rules.performance_evaluations(
        "m", frame, refs, {"1.0": "multiclass_classification"}, configs(), "day"
    )
    assert [e.subject for e in multi] == ["accuracy", "f1"]


def test_performance_increase_of_an_error_metric():
    frame = perf_frame(
        {"mae": [3.4, 3.9, 7.0], "mae_low": [3.2, 3.7, 6.5], "mae_high": [3.6, 4.1, 7.5]},
        [1200, 1200, 1200],
    )
    evals = rules.performance_evaluations(
        "m", frame, {"1.0": {"mae": 3.0}}, {"1.0": "regression"},
        configs(performance={"metrics": ["mae"]}), "day",
    )  # fmt: skip
    # lower bounds 3.2, 3.7, 6.5 against 3.0 x (1 + [0.10, 0.25])
    assert [e.outcome for e in evals] == ["ok", "warning", "critical"]
    assert evals[2].value == pytest.approx(7.0 / 3.0 - 1)
    assert evals[2].layer == "performance"
    assert "lower bound 6.5 is 116.7% above reference 3" in evals[2].summary


def test_performance_settings_are_checked_and_old_keys_named():
    with pytest.raises(AlertConfigError) as err:
        alert_config({"alerts": {"performance": {
            "metric": "roc_auc", "metrics": ["accuracy", "auc"], "pool_days": 0,
            "tolerance": {"accuracy": [0.1, 0.01]}}}})  # fmt: skip
    text = str(err.value)
    assert "`alerts.performance.metric` was replaced by `alerts.performance.metrics`" in text
    for fragment in ("alerts.performance.metrics", "alerts.performance.pool_days",
                     "alerts.performance.tolerance.accuracy"):  # fmt: skip
        assert fragment in text


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
