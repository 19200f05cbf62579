"""The four layers' per-window summaries against numpy / scikit-learn on the same rows."""

from __future__ import annotations

import math
import textwrap
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from lifecycle import catalog, layers
from lifecycle.ingest import ingest
from lifecycle.store import Store
from tests.conftest import write_toy_spec

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def _toy_logs(rng, n: int = 3000, days: int = 3) -> dict[str, pd.DataFrame]:
    """Predictions over `days` days for toy 1.0 (production) and shadow rows, tied scores."""
    ts = DAY0 + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, n)), unit="s").floor("us")
    # rounded scores: many ties, so AUC's tie handling is exercised
    y = rng.integers(0, 2, n)
    score = np.clip(np.round(0.3 * y + rng.uniform(0, 0.7, n), 1), 0, 1)
    error = rng.random(n) < 0.05
    variant = np.where(rng.random(n) < 0.25, "shadow", "production")
    predicted = np.where(score >= 0.5, "1", "0")
    predictions = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "model_version": "1.0",
            "ts": ts,
            "variant": variant,
            "prediction": np.where(error, np.nan, score),
            "predicted_label": np.where(error, None, predicted),
            "latency_ms": rng.gamma(2.0, 10.0, n).round(1),
            "status": np.where(error, "error", "ok"),
        }
    )
    delay = pd.to_timedelta(rng.uniform(0, 4 * 86400, n), unit="s")
    labelled = rng.random(n) < 0.7
    labels = pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"][labelled],
            "actual": y[labelled].astype(str),
            "labeled_at": (ts + delay)[labelled],
        }
    )
    business = pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"][~error][::3],
            "ts": (ts + pd.Timedelta(hours=5))[~error][::3],
            "kpi": "conversion",
            "value": rng.integers(0, 2, int(np.ceil((~error).sum() / 3))).astype(float),
        }
    )
    infra_ts = DAY0 + pd.to_timedelta(np.arange(0, days * 86400, 900), unit="s")
    infra = pd.DataFrame(
        {
            "ts": np.tile(infra_ts, 2),
            "model_version": "1.0",
            "variant": "production",
            "metric": np.repeat(["cpu_util", "memory_mb"], len(infra_ts)),
            "value": rng.uniform(10, 90, 2 * len(infra_ts)),
        }
    )
    frame = predictions.assign(actual=np.where(labelled, y.astype(str), None), delay=delay)
    return {
        "predictions": predictions,
        "labels": labels,
        "business": business,
        "infra": infra,
        "truth": frame.assign(labeled_at=ts + delay, labelled=labelled),
    }


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    store = Store(folder / "layers.duckdb")
    catalog.register_from_file(store, write_toy_spec(folder / "spec"))
    logs = _toy_logs(np.random.default_rng(7))
    for kind in ("predictions", "labels", "business", "infra"):
        ingest(store, "toy", kind, logs[kind])
    yield store, logs["truth"], logs
    store.close()


def _day(ts) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.floor("D")


def test_infra_windows_match_numpy(toy):
    store, truth, _ = toy
    frame = layers.infra_windows(store, "toy")
    assert list(frame.columns[:4]) == ["window_start", "window_end", "model_version", "variant"]
    assert len(frame) == 6  # 3 days x 2 variants
    truth = truth.assign(day=_day(truth["ts"]))
    for row in frame.itertuples():
        part = truth[(truth["day"] == row.window_start) & (truth["variant"] == row.variant)]
        assert row.requests == len(part)
        assert row.errors == int((part["status"] == "error").sum())
        assert row.error_rate == pytest.approx(row.errors / len(part))
        for q in (50, 95, 99):
            expected = np.percentile(part["latency_ms"], q)
            assert getattr(row, f"latency_p{q}") == pytest.approx(expected, rel=1e-12)
        assert row.throughput_per_min == pytest.approx(len(part) / 1440)
        assert row.window_end - row.window_start == timedelta(days=1)


def test_infra_filters_and_hour_grain(toy):
    store, truth, _ = toy
    since, until = DAY0 + timedelta(hours=3), DAY0 + timedelta(hours=9)
    frame = layers.infra_windows(
        store, "toy", grain="hour", since=since, until=until, variant="production"
    )
    assert len(frame) == 6
    assert set(frame["variant"]) == {"production"}
    expected = ((truth["ts"] >= since) & (truth["ts"] < until)) & (truth["variant"] == "production")
    assert frame["requests"].sum() == expected.sum()
    assert frame["throughput_per_min"].iloc[0] == pytest.approx(frame["requests"].iloc[0] / 60)
    week = layers.infra_windows(store, "toy", grain="week")
    assert set(week["window_start"]) == {pd.Timestamp(DAY0)}
    month = layers.infra_windows(store, "toy", grain="month")
    assert (month["window_end"] == month["window_start"] + pd.DateOffset(months=1)).all()
    minutes = (month["window_end"] - month["window_start"]).dt.total_seconds() / 60
    assert month["throughput_per_min"].iloc[0] == pytest.approx(
        month["requests"].iloc[0] / minutes.iloc[0]
    )
    with pytest.raises(ValueError, match="grain"):
        layers.infra_windows(store, "toy", grain="fortnight")
    with pytest.raises(ValueError, match="calendar grain"):
        layers.infra_windows(store, "toy", grain="chunk:100")


def test_resource_windows(toy):
    store, _, logs = toy
    frame = layers.resource_windows(store, "toy")
    infra = logs["infra"].assign(day=_day(logs["infra"]["ts"]))
    expected = infra.groupby(["day", "metric"])["value"].agg(["mean", "max", "size"])
    assert len(frame) == len(expected)
    for row in frame.itertuples():
        exp = expected.loc[(row.window_start, row.metric)]
        assert row.value_mean == pytest.approx(exp["mean"], rel=1e-12)
        assert row.value_max == exp["max"]
        assert row.samples == exp["size"]


def _expected_classification(part: pd.DataFrame) -> dict[str, float]:
    y = part["actual"].astype(int)
    pred = part["predicted_label"].astype(int)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, part["prediction"]),
    }


@pytest.mark.parametrize("as_of_hours", [None, 30, 60])
def test_performance_windows_match_sklearn(toy, as_of_hours):
    store, truth, _ = toy
    as_of = None if as_of_hours is None else DAY0 + timedelta(hours=as_of_hours)
    frame = layers.performance_windows(store, "toy", as_of=as_of)
    served = truth[truth["status"] == "ok"].assign(day=_day(truth["ts"]))
    known = served["labelled"]
    if as_of is not None:
        known &= served["labeled_at"] <= as_of
    checked = 0
    for row in frame.itertuples():
        part = served[(served["day"] == row.window_start) & (served["variant"] == row.variant)]
        labelled = part[known.loc[part.index]]
        assert row.predictions == len(part)
        assert row.labelled == len(labelled)
        assert row.coverage == pytest.approx(len(labelled) / len(part))
        if len(labelled) < layers.MIN_LABELS:
            assert math.isnan(row.accuracy) and math.isnan(row.roc_auc)
            continue
        for name, value in _expected_classification(labelled).items():
            assert getattr(row, name) == pytest.approx(value, abs=1e-12), name
        assert row.accuracy_low < row.accuracy < row.accuracy_high
        assert row.roc_auc_low < row.roc_auc < row.roc_auc_high
        checked += 1
    assert checked >= (1 if as_of_hours == 30 else 4)
    if as_of_hours == 30:  # labels of the last day had not arrived yet
        last = frame[frame["window_start"] == frame["window_start"].max()]
        assert (last["labelled"] == 0).all() and last["accuracy"].isna().all()


def test_auc_sql_matches_sklearn_on_heavy_ties(tmp_path):
    """Random scores with only 5 distinct values, one window of 500 labelled rows."""
    store = Store(tmp_path / "ties.duckdb")
    catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
    rng = np.random.default_rng(3)
    n = 500
    score = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], n)
    y = (rng.random(n) < score).astype(int)
    ids = [f"t{i}" for i in range(n)]
    ts = DAY0 + pd.to_timedelta(np.arange(n), unit="s")
    ingest(
        store,
        "toy",
        "predictions",
        pd.DataFrame({"prediction_id": ids, "model_version": "1.0", "ts": ts, "prediction": score}),
    )
    ingest(
        store,
        "toy",
        "labels",
        pd.DataFrame({"prediction_id": ids, "actual": y.astype(str), "labeled_at": ts}),
    )
    row = layers.performance_windows(store, "toy").iloc[0]
    assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    # no predicted_label logged: score >= 0.5 is the positive class
    pred = (score >= 0.5).astype(int)
    assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert row["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    store.close()


def test_wilson_and_hanley_mcneil():
    # Wilson: textbook value for 8 of 10 successes (z = 1.96): 0.4902 .. 0.9433
    low, high = layers.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert layers.wilson_interval(0, 20)[0] == 0.0
    assert all(math.isnan(v) for v in layers.wilson_interval(0, 0))
    # Hanley & McNeil 1982 by hand: AUC 0.8, 50 + 50: Q1 = 2/3, Q2 = 0.64 / 0.9,
    # var = (0.16 + 49 (Q1 - 0.64) + 49 (Q2 - 0.64)) / 2500 -> SE 0.04450
    low, high = layers.auc_interval(0.8, 50, 50)
    assert (high - low) / (2 * layers.Z95) == pytest.approx(0.04450, abs=1e-5)


def test_reference_performance_matches_sklearn(toy, tmp_path):
    store, _, _ = toy
    ref = pd.read_csv(write_toy_spec(tmp_path / "again").parent / "reference.csv")
    got = layers.reference_performance(store, "toy", "1.0")
    y = ref["actual"].astype(int)
    pred = ref["predicted_label"].astype(int)
    assert got["labelled"] == len(ref)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, ref["prediction"]), abs=1e-12)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    with pytest.raises(layers.LayerError, match="no version"):
        layers.reference_performance(store, "toy", "9.9")
    with pytest.raises(layers.LayerError, match="unknown model"):
        layers.performance_windows(store, "nope")


def test_confusion_and_calibration(toy):
    store, truth, _ = toy
    served = truth[(truth["status"] == "ok") & truth["labelled"]]
    cm = layers.confusion_matrix(store, "toy", variant="production")
    part = served[served["variant"] == "production"]
    expected = skm.confusion_matrix(part["actual"], part["predicted_label"], labels=["0", "1"])
    got = cm.pivot(index="actual", columns="predicted", values="count").loc[["0", "1"], ["0", "1"]]
    assert (got.to_numpy() == expected).all()
    cal = layers.calibration_bins(store, "toy", bins=10)
    assert cal["labelled"].sum() == len(served)
    top = served[served["prediction"] >= 0.9]
    last = cal[np.isclose(cal["bin_left"], 0.9)].iloc[0]
    assert last["labelled"] == len(top)
    assert last["observed_rate"] == pytest.approx((top["actual"] == "1").mean())
    assert (cal["observed_low"] <= cal["observed_rate"]).all()
    assert layers.residual_histogram(store, "toy").empty


def test_business_windows(toy):
    store, truth, logs = toy
    frame = layers.business_windows(store, "toy")
    events = logs["business"].merge(truth[["prediction_id", "variant", "prediction"]])
    events = events.assign(day=_day(events["ts"]))
    expected = events.groupby(["day", "variant"]).agg(
        events=("value", "size"),
        value_mean=("value", "mean"),
        mean_prediction=("prediction", "mean"),
    )
    assert len(frame) == len(expected)
    for row in frame.itertuples():
        exp = expected.loc[(row.window_start, row.variant)]
        assert row.kpi == "conversion" and row.model_version == "1.0"
        assert row.events == exp["events"]
        assert row.value_mean == pytest.approx(exp["value_mean"], rel=1e-12)
        assert row.mean_prediction == pytest.approx(exp["mean_prediction"], rel=1e-12)
    only = layers.business_windows(store, "toy", variant="shadow")
    assert set(only["variant"]) == {"shadow"}


def test_freshness_and_empty_model(toy, tmp_path):
    store, truth, _ = toy
    fresh = layers.freshness(store, "toy")
    assert pd.Timestamp(fresh["last_prediction"]) == truth["ts"].max()
    assert fresh["last_received"] is not None
    empty = Store(tmp_path / "empty.duckdb")
    catalog.register_from_file(empty, write_toy_spec(tmp_path / "spec2"))
    assert layers.infra_windows(empty, "toy").empty
    perf = layers.performance_windows(empty, "toy")
    assert perf.empty and "roc_auc" in perf.columns
    assert layers.business_windows(empty, "toy").empty
    assert layers.quality_summary(empty, "toy").empty
    assert layers.freshness(empty, "toy")["last_prediction"] is None
    empty.close()


REGRESSION_SPEC = """
name = "eta"
task = "regression"
owner = "owner@example.com"
risk_tier = "low"
version = "1"
reference = "reference.csv"

[[features]]
name = "distance"
type = "numeric"
"""


def test_regression_metrics_match_sklearn(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "eta"
    folder.mkdir()
    ref_y = rng.gamma(5, 5, 400)
    pd.DataFrame(
        {"distance": rng.uniform(0, 10, 400), "prediction": ref_y + rng.normal(0, 3, 400)}
    ).assign(actual=ref_y).to_csv(folder / "reference.csv", index=False)
    (folder / "eta.toml").write_text(textwrap.dedent(REGRESSION_SPEC), encoding="utf-8")
    store = Store(tmp_path / "eta.duckdb")
    catalog.register_from_file(store, folder / "eta.toml")
    n = 900
    ts = DAY0 + pd.to_timedelta(rng.uniform(0, 2 * 86400, n), unit="s")
    y = rng.gamma(5, 5, n)
    pred = y + rng.normal(1.0, 4.0, n)
    ids = [f"e{i}" for i in range(n)]
    ingest(
        store,
        "eta",
        "predictions",
        pd.DataFrame({"prediction_id": ids, "model_version": "1", "ts": ts, "prediction": pred}),
    )
    ingest(
        store, "eta", "labels", pd.DataFrame({"prediction_id": ids, "actual": y, "labeled_at": ts})
    )
    frame = layers.performance_windows(store, "eta")
    days = pd.Series(ts).dt.floor("D")
    for row in frame.itertuples():
        mask = (days == row.window_start).to_numpy()
        assert row.mae == pytest.approx(skm.mean_absolute_error(y[mask], pred[mask]), rel=1e-12)
        assert row.rmse == pytest.approx(
            skm.root_mean_squared_error(y[mask], pred[mask]), rel=1e-12
        )
        assert row.bias == pytest.approx(np.mean(pred[mask] - y[mask]), rel=1e-9)
        assert row.mae_low < row.mae < row.mae_high
    ref = layers.reference_performance(store, "eta", "1")
    ref_pred = pd.read_csv(folder / "reference.csv")["prediction"]
    assert ref["mae"] == pytest.approx(skm.mean_absolute_error(ref_y, ref_pred), rel=1e-12)
    hist = layers.residual_histogram(store, "eta", bins=20)
    assert hist["count"].sum() == n
    assert hist.attrs["mean"] == pytest.approx(np.mean(pred - y), rel=1e-9)
    assert layers.confusion_matrix(store, "eta").empty
    assert layers.calibration_bins(store, "eta").empty
    assert layers.portfolio_health(store).iloc[0]["business"] == "no KPI"
    store.close()


MULTICLASS_SPEC = """
name = "triage"
task = "multiclass_classification"
classes = ["low", "mid", "high"]
owner = "owner@example.com"
risk_tier = "low"
version = "1"
reference = "reference.csv"

[[features]]
name = "x"
type = "numeric"
"""


def test_multiclass_macro_metrics_match_sklearn(tmp_path):
    rng = np.random.default_rng(9)
    folder = tmp_path / "triage"
    folder.mkdir()
    classes = np.array(["low", "mid", "high"])
    pd.DataFrame(
        {
            "x": rng.uniform(0, 1, 200),
            "prediction": 0.0,
            "predicted_label": rng.choice(classes, 200),
            "actual": rng.choice(classes, 200),
        }
    ).to_csv(folder / "reference.csv", index=False)
    (folder / "t.toml").write_text(textwrap.dedent(MULTICLASS_SPEC), encoding="utf-8")
    store = Store(tmp_path / "t.duckdb")
    catalog.register_from_file(store, folder / "t.toml")
    n = 400
    y = rng.choice(classes, n)
    # "high" is never predicted: its precision is 0 as in scikit-learn's zero_division
    pred = np.where(rng.random(n) < 0.6, y, rng.choice(classes[:2], n))
    pred = np.where(pred == "high", "mid", pred)
    ids = [f"m{i}" for i in range(n)]
    ts = DAY0 + pd.to_timedelta(np.arange(n), unit="min")
    ingest(
        store,
        "triage",
        "predictions",
        pd.DataFrame(
            {"prediction_id": ids, "model_version": "1", "ts": ts, "predicted_label": pred}
        ),
    )
    ingest(
        store,
        "triage",
        "labels",
        pd.DataFrame({"prediction_id": ids, "actual": y, "labeled_at": ts}),
    )
    row = layers.performance_windows(store, "triage").iloc[0]
    assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    for name, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        expected = fn(y, pred, average="macro", zero_division=0)
        assert row[name] == pytest.approx(expected, abs=1e-12), name
    assert math.isnan(row["roc_auc"])
    store.close()


def test_portfolio_health_reads_alert_outcomes(toy, tmp_path):
    store, _, _ = toy
    frame = layers.portfolio_health(store)
    assert list(frame["model"]) == ["toy"]
    assert (frame[list(layers.PORTFOLIO_LAYERS)] == "not evaluated").all(axis=None)
    with store.transaction() as cur:
        cur.execute("UPDATE model_versions SET state = 'production' WHERE model_name = 'toy'")
        rows = [
            ("production", "infrastructure", "latency", "ok", 0),
            ("production", "infrastructure", "error_rate", "warning", 1),
            ("production", "drift", "data_drift", "insufficient", 0),
            ("production", "business", "kpi_drop", "critical", 5),  # before the period
            ("shadow", "performance", "performance_metric", "critical", 1),  # not served
        ]
        for variant, layer, rule, outcome, day in rows:
            start = DAY0 + timedelta(days=day)
            cur.execute(
                "INSERT INTO alert_evaluations VALUES ('toy', '1.0', ?, ?, ?, 's', 'day', ?, ?, "
                "?, NULL, NULL, '', NULL, now())",
                [variant, layer, rule, start, start + timedelta(days=1), outcome],
            )
        cur.execute("UPDATE model_versions SET state = 'registered' WHERE model_name = 'toy'")
    # no production version: nothing is attributed
    assert (layers.portfolio_health(store)[list(layers.PORTFOLIO_LAYERS)]
            == "not evaluated").all(axis=None)  # fmt: skip
    with store.transaction() as cur:
        cur.execute("UPDATE model_versions SET state = 'production' WHERE model_name = 'toy'")
    try:
        row = layers.portfolio_health(store, until=DAY0 + timedelta(days=3)).iloc[0]
        assert row["infrastructure"] == "warning"  # worst of ok and warning
        assert row["drift"] == "not evaluated"  # its only evaluation had no verdict
        assert row["drift_checks"] == "0/1" and row["infrastructure_checks"] == "2/2"
        assert row["evaluation"] == "not evaluated"
        assert row["business"] == "not evaluated"  # its only window is outside the period
        assert row["performance"] == "not evaluated"  # shadow traffic does not count
        assert row["production_version"] == "1.0"
        assert layers.portfolio_health(store).iloc[0]["business"] == "critical"
    finally:
        with store.transaction() as cur:
            cur.execute("DELETE FROM alert_evaluations")
            cur.execute("UPDATE model_versions SET state = 'registered' WHERE model_name = 'toy'")


def test_portfolio_marks_performance_resting_on_estimates(toy):
    """A performance verdict from estimates alone (labels pending) is marked estimated; one
    that a realized evaluation matches or exceeds is not."""
    store, _, _ = toy

    def evaluate(rule: str, outcome: str, day: int) -> None:
        start = DAY0 + timedelta(days=day)
        with store.transaction() as cur:
            cur.execute(
                "INSERT INTO alert_evaluations VALUES ('toy', '1.0', 'production', "
                "'performance', ?, 'accuracy', 'day', ?, ?, ?, NULL, NULL, '', NULL, now())",
                [rule, start, start + timedelta(days=1), outcome],
            )

    with store.transaction() as cur:
        cur.execute("UPDATE model_versions SET state = 'production' WHERE model_name = 'toy'")
    try:
        evaluate("performance_metric", "insufficient", 0)
        evaluate("estimated_performance", "warning", 1)
        _store_estimate(store, DAY0 + timedelta(days=1), 0.712)
        row = layers.portfolio_health(store).iloc[0]
        assert (row["performance"], row["performance_basis"]) == ("warning", "estimated")
        assert row["performance_estimate"] == "roc_auc 0.712 (estimated, labels pending)"
        evaluate("performance_metric", "warning", 2)  # labels arrived and agree
        row = layers.portfolio_health(store).iloc[0]
        assert (row["performance"], row["performance_basis"]) == ("warning", "")
    finally:
        with store.transaction() as cur:
            cur.execute("DELETE FROM alert_evaluations")
            cur.execute("DELETE FROM monitor_results WHERE check_name = 'estimated_performance'")
            cur.execute("UPDATE model_versions SET state = 'registered' WHERE model_name = 'toy'")


def _store_estimate(store, start, value: float) -> None:
    from lifecycle import estimation, reference_models
    from lifecycle.drift.engine import store_results
    from lifecycle.drift.windows import Window

    est = estimation.Estimator(task="binary_classification", valid=True, reference_rows=500)
    e = estimation.Estimate(value, value - 0.02, value + 0.02)
    result = reference_models._graded("roc_auc", e, 0.8, [0.02, 0.05], est, 400)
    window = Window("toy", "1.0", "production", "day", start, start + timedelta(days=1))
    store_results(store, window, "spec", ["estimated_performance"], 1, [result])


def test_model_context_and_unmonitored_windows(toy):
    store, truth, _ = toy
    ctx = layers.model_context(store, "toy")
    assert ctx["task"] == "binary_classification" and ctx["positive_class"] == "1"
    assert ctx["variants"] == {"1.0": ["production", "shadow"]}
    assert set(ctx["kpis"]) == {"conversion"} and ctx["features"] == {
        "x": "numeric", "color": "categorical"}  # fmt: skip
    assert pd.Timestamp(ctx["last_ts"]) == truth["ts"].max()
    assert layers.unmonitored_windows(store, "toy") == 6  # 3 days x 2 variants, none stored
    assert layers.unmonitored_windows(store, "toy", variant="shadow",
                                      since=DAY0 + timedelta(days=1)) == 2  # fmt: skip
    assert layers.results_version(store, "toy")[0] == 0
    from lifecycle.monitor import monitor_model

    monitor_model(store, "toy", variant="shadow", since=DAY0 + timedelta(days=2))
    assert layers.unmonitored_windows(store, "toy", variant="shadow",
                                      since=DAY0 + timedelta(days=1)) == 1  # fmt: skip
    assert layers.results_version(store, "toy")[0] > 0
    quality = layers.quality_summary(store, "toy", variant="shadow")
    assert set(quality["tier"]) == {"schema", "statistics", "business_rules"}
    # no feature rows were logged: rates without a verdict, never a made-up 0
    measured = quality["rate"].notna()
    assert quality.loc[measured, "rate"].between(0, 1).all()
    assert quality.loc[~measured, "severity"].isna().all()


def test_drift_cells_order_and_worst_cell():
    days = pd.date_range("2026-03-02", periods=3, tz="UTC")
    stored = pd.DataFrame(
        {
            "check_name": ["data_drift"] * 6 + ["prediction_drift", "multivariate_drift"],
            "subject": ["a", "a", "a", "b", "b", "b", "prediction", "all_features"],
            "window_start": [*days, *days, days[0], days[0]],
            "severity": [
                "none",
                "moderate",
                "moderate",
                "moderate",
                None,
                "none",
                "significant",
                "minor",
            ],
            "status": ["ok"] * 4 + ["insufficient_data"] + ["ok"] * 3,
            "effect_size": [0.0] * 8,
        }
    )
    cells = layers.drift_cells(stored.iloc[::-1])
    assert list(dict.fromkeys(cells["row"])) == ["b", "a", "prediction · prediction",
                                                 "multivariate · all_features"]  # fmt: skip
    # moderate in two windows beats moderate in one; the latest of them is chosen
    assert layers.worst_cell(cells) == ("a", days[2])
    assert layers.worst_cell(cells, "concept_drift") is None
    assert layers.findings_elsewhere(cells) == []
    # no feature flagged: the investigation opens on the drifting prediction
    calm = cells.assign(severity=cells["severity"].where(cells["check_name"] != "data_drift",
                                                         "none"))  # fmt: skip
    assert layers.worst_cell(calm) == ("prediction", days[0])
    assert layers.findings_elsewhere(calm) == []
    # only the multivariate row flagged: the page points to its section
    quiet = calm.assign(severity=calm["severity"].where(calm["check_name"] != "prediction_drift",
                                                        "none"))  # fmt: skip
    assert layers.worst_cell(quiet)[0] in ("a", "b")
    assert layers.findings_elsewhere(quiet) == ["multivariate · all_features"]


def test_label_delay_quantiles(toy):
    store, truth, _ = toy
    served = truth[(truth["status"] == "ok")]
    delay = layers.label_delay(store, "toy", variant="production")
    part = served[served["variant"] == "production"]
    hours = (part["labeled_at"] - part["ts"])[part["labelled"]].dt.total_seconds() / 3600
    assert delay["predictions"] == len(part) and delay["labelled"] == len(hours)
    assert delay["p50_hours"] == pytest.approx(np.quantile(hours, 0.5), rel=1e-9)
    assert delay["p90_hours"] == pytest.approx(np.quantile(hours, 0.9), rel=1e-9)


def test_quality_summary_carries_offending_rows(tmp_path):
    """A business-rule violation reaches the quality summary with its evidence rows."""
    from lifecycle.monitor import monitor_model

    store = Store(tmp_path / "rules.duckdb")
    catalog.register_from_file(store, write_toy_spec(tmp_path / "spec", rows=300))
    rng = np.random.default_rng(4)
    n = 300
    ids = [f"q{i}" for i in range(n)]
    ts = DAY0 + pd.to_timedelta(np.arange(n), unit="min")
    ingest(store, "toy", "predictions",
           pd.DataFrame({"prediction_id": ids, "model_version": "1.0", "ts": ts,
                         "prediction": rng.uniform(0, 1, n)}))  # fmt: skip
    x = rng.uniform(0, 10, n)
    x[:12] = -1.0  # breaks the spec's rule x_not_negative (x >= 0) and its range
    ingest(store, "toy", "features",
           pd.DataFrame({"prediction_id": ids, "x": x,
                         "color": rng.choice(["red", "green", "blue"], n)}))  # fmt: skip
    monitor_model(store, "toy")
    quality = layers.quality_summary(store, "toy")
    rule = quality[(quality["check_name"] == "business_rule")].iloc[0]
    assert rule["tier"] == "business_rules" and rule["subject"] == "x_not_negative"
    assert rule["rate"] == pytest.approx(12 / n)
    assert rule["severity"] in ("moderate", "significant")
    assert 0 < len(rule["examples"]) <= 5
    assert all(example["x"] == -1.0 for example in rule["examples"])
    store.close()
