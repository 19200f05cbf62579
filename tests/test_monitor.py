"""Monitoring end to end: logs ingested through the library, results computed, stored and read."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, cli
from lifecycle.drift import INSUFFICIENT, feature_distribution, results, window_counts
from lifecycle.drift.results_model import CHECKS
from lifecycle.ingest import ingest
from lifecycle.monitor import MonitorError, feature_drift_suite, monitor_model
from lifecycle.store import Store

SPEC = """
name = "shop"
task = "binary_classification"
owner = "owner@example.com"
risk_tier = "low"
version = "{version}"
reference = "reference.csv"

[drift]
min_labels = 50
bootstrap = 50
{drift}

[[features]]
name = "amount"
type = "numeric"
range = [0, 1000]

[[features]]
name = "age"
type = "numeric"

[[features]]
name = "channel"
type = "categorical"
values = ["web", "app", "store"]

[[rules]]
name = "adult"
sql = "age >= 18"
"""
DAY0 = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday
ROWS_PER_DAY = 600


def frame(rng, n: int, *, amount_shift: float = 0.0) -> pd.DataFrame:
    amount = rng.gamma(4.0, 25.0, n) + amount_shift
    age = rng.normal(40, 10, n).round()
    channel = rng.choice(["web", "app", "store"], n, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(amount - 100) / 40))
    actual = (rng.random(n) < score).astype(int)
    return pd.DataFrame(
        {"amount": amount, "age": age, "channel": channel, "prediction": score, "actual": actual}
    )


def register(store: Store, folder: Path, version: str = "1.0", drift: str = "") -> None:
    rng = np.random.default_rng(100)
    folder.mkdir(parents=True, exist_ok=True)
    ref = frame(rng, 2000)
    ref["predicted_label"] = (ref["prediction"] >= 0.5).astype(int)
    ref.to_csv(folder / "reference.csv", index=False)
    spec = folder / f"shop-{version}.toml"
    spec.write_text(textwrap.dedent(SPEC.format(version=version, drift=drift)), encoding="utf-8")
    catalog.register_from_file(store, spec)


def log_day(
    store: Store,
    day: int,
    *,
    n: int = ROWS_PER_DAY,
    shift: float = 0.0,
    labels: bool = True,
    seed: int | None = None,
    version: str = "1.0",
    variant: str = "production",
) -> pd.DataFrame:
    """Ingest one day of predictions, features and (optionally) labels."""
    rng = np.random.default_rng(day if seed is None else seed)
    data = frame(rng, n, amount_shift=shift)
    start = DAY0 + timedelta(days=day)
    ids = [f"{variant[0]}{day}-{i}" for i in range(n)]
    ts = pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * (86_000 / n), unit="s")
    ingest(
        store,
        "shop",
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": ids,
                "model_version": version,
                "variant": variant,
                "ts": ts,
                "prediction": data["prediction"],
                "predicted_label": (data["prediction"] >= 0.5).astype(int).astype(str),
            }
        ),
    )
    ingest(store, "shop", "features", data[["amount", "age", "channel"]].assign(prediction_id=ids))
    if labels:
        add_labels(store, ids, data["actual"], ts)
    return data


def add_labels(store: Store, ids, actual, ts) -> None:
    ingest(
        store,
        "shop",
        "labels",
        pd.DataFrame(
            {
                "prediction_id": ids,
                "actual": pd.Series(actual).astype(str).to_numpy(),
                "labeled_at": pd.DatetimeIndex(ts) + pd.Timedelta(days=2),
            }
        ),
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Three days of logs; day 2 has `amount` shifted by about 0.8 sd."""
    folder = tmp_path_factory.mktemp("shop")
    store = Store(folder / "shop.duckdb")
    register(store, folder / "spec")
    log_day(store, 0)
    log_day(store, 1)
    log_day(store, 2, shift=40.0)
    run = monitor_model(store, "shop")
    yield store, run
    store.close()


def test_every_window_gets_every_check(shop):
    store, run = shop
    assert run.windows == 3 and run.computed == 3 and run.label_computed == 3
    frame_ = results(store, "shop")
    assert sorted(frame_["window_start"].unique()) == [
        pd.Timestamp(DAY0 + timedelta(days=d)) for d in range(3)
    ]
    per_window = frame_.groupby("window_start")["check_name"].apply(set)
    # serving_state needs a registry deployment history, which "shop" (never promoted) lacks,
    # fairness a declared sensitive attribute, and source_read logs read from a lake
    absent = {"serving_state", "fairness", "source_read"}
    assert all(checks == set(CHECKS) - absent for checks in per_window)
    one = frame_[frame_["window_start"] == pd.Timestamp(DAY0)]
    assert set(one.loc[one.check_name == "data_drift", "subject"]) == {"amount", "age", "channel"}
    assert set(one.loc[one.check_name == "prediction_drift", "subject"]) == {
        "prediction",
        "predicted_label",
    }
    assert not one.duplicated(["check_name", "subject"]).any()
    # one shape: the same columns whatever the check, and a tier for each
    assert {"statistic", "p_value", "effect_size", "threshold", "severity", "n_current"} <= set(
        frame_.columns
    )
    assert set(frame_["tier"]) >= {"schema", "statistics", "business_rules", "univariate"}


def test_drifted_feature_flagged_only_where_it_moved(shop):
    store, _ = shop
    drift = results(store, "shop", check="data_drift")
    flagged = drift[drift["severity"].isin(["minor", "moderate", "significant"])]
    assert set(zip(flagged["window_start"], flagged["subject"], strict=True)) == {
        (pd.Timestamp(DAY0 + timedelta(days=2)), "amount")
    }
    row = flagged.iloc[0]
    assert row["response"] in ("investigate", "enhanced monitoring", "retrain")
    assert row["p_adjusted"] < 0.05 and row["effect_size"] >= row["threshold"]


def test_rerun_over_same_data_leaves_results_identical(shop):
    store, _ = shop
    before = store.query_df("SELECT * FROM monitor_results ORDER BY ALL")
    run = monitor_model(store, "shop")
    assert run.computed == 0 and run.label_computed == 0 and run.skipped == 3
    after = store.query_df("SELECT * FROM monitor_results ORDER BY ALL")
    pd.testing.assert_frame_equal(before, after)


def test_forced_recompute_gives_the_same_numbers(shop):
    store, _ = shop
    cols = "* EXCLUDE (computed_at)"
    before = store.query_df(f"SELECT {cols} FROM monitor_results ORDER BY ALL")
    run = monitor_model(store, "shop", force=True)
    assert run.computed == 3
    after = store.query_df(f"SELECT {cols} FROM monitor_results ORDER BY ALL")
    pd.testing.assert_frame_equal(before, after)


def test_windows_in_parallel_give_the_same_numbers_in_any_order(shop, monkeypatch):
    store, _ = shop
    cols = "* EXCLUDE (computed_at)"
    before = store.query_df(f"SELECT {cols} FROM monitor_results ORDER BY ALL")
    from lifecycle.drift import offload

    sent, call = [], offload.call
    monkeypatch.setattr(
        offload, "call", lambda fn, *a: sent.append(offload.active()) or call(fn, *a)
    )
    seen = []
    run = monitor_model(store, "shop", force=True, workers=3, newest=True,
                        progress=lambda done, total, w, did: seen.append((done, w.start)))  # fmt: skip
    assert (run.computed, run.label_computed, run.skipped) == (3, 3, 0)
    assert [d for d, _ in seen] == [1, 2, 3]
    assert [s for _, s in seen] == sorted((s for _, s in seen), reverse=True)  # newest first
    after = store.query_df(f"SELECT {cols} FROM monitor_results ORDER BY ALL")
    pd.testing.assert_frame_equal(before, after)
    assert sum(run.findings.values()) > 0  # the shifted day's findings are counted
    # the classifiers and label checks of every window ran in the worker processes
    assert len(sent) >= 9 and all(sent)


def test_a_failing_window_in_parallel_keeps_the_others(shop, monkeypatch):
    store, _ = shop
    from lifecycle import monitor

    original = monitor._Runner.data_checks

    def fail_on_day_two(self, ctx, inputs):
        if inputs.window.start.day == DAY0.day + 2:
            raise ValueError("boom")
        return original(self, ctx, inputs)

    monkeypatch.setattr(monitor._Runner, "data_checks", fail_on_day_two)
    store.query_all("DELETE FROM monitor_results WHERE model_name = 'shop'")
    with pytest.raises(MonitorError, match="boom"):
        monitor_model(store, "shop", workers=2)
    monkeypatch.undo()
    kept = store.query_all("SELECT DISTINCT day(window_start) FROM monitor_results ORDER BY 1")
    assert [d for (d,) in kept] == [DAY0.day, DAY0.day + 1]  # the windows before it
    run = monitor_model(store, "shop")  # a retry computes only what is missing
    assert (run.computed, run.skipped) == (1, 2)


def test_a_worker_process_that_dies_stops_the_run_with_a_clear_error(shop, monkeypatch):
    store, _ = shop
    from lifecycle.drift import offload

    call = offload.call

    def die_in_the_worker(fn, *args):
        return call(os._exit, 1) if offload.active() else fn(*args)

    monkeypatch.setattr(offload, "call", die_in_the_worker)
    with pytest.raises(MonitorError, match="a worker process died or could not start"):
        monitor_model(store, "shop", force=True, workers=2)
    monkeypatch.undo()
    run = monitor_model(store, "shop", force=True, workers=2)  # new workers, same results
    assert run.computed == 3


def test_new_day_recomputes_only_its_window(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    register(store, tmp_path / "spec", drift="multivariate = false")
    log_day(store, 0)
    log_day(store, 1)
    monitor_model(store, "shop")
    stamps = store.query_df(
        "SELECT window_start, check_name, subject, computed_at FROM monitor_results"
    )
    log_day(store, 2)
    run = monitor_model(store, "shop")
    assert (run.windows, run.computed, run.label_computed, run.skipped) == (3, 1, 1, 2)
    again = store.query_df(
        "SELECT window_start, check_name, subject, computed_at FROM monitor_results"
    )
    old = again.merge(stamps, on=["window_start", "check_name", "subject"], suffixes=("", "_0"))
    assert len(old) == len(stamps)
    assert (old["computed_at"] == old["computed_at_0"]).all()
    # late labels for day 0: only that window's label checks run again
    ids = [f"p0-late-{i}" for i in range(3)]
    ingest(
        store,
        "shop",
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": ids,
                "model_version": "1.0",
                "ts": [pd.Timestamp(DAY0 + timedelta(hours=23))] * 3,
                "prediction": 0.5,
            }
        ),
    )
    run = monitor_model(store, "shop")
    assert (run.computed, run.label_computed) == (1, 1)  # new rows in day 0 change both
    add_labels(store, ids, [1, 0, 1], [pd.Timestamp(DAY0 + timedelta(hours=23))] * 3)
    run = monitor_model(store, "shop")
    assert (run.computed, run.label_computed) == (0, 1)
    store.close()


def test_small_and_featureless_windows_are_insufficient_not_errors(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    register(store, tmp_path / "spec", drift="multivariate_min_rows = 50")
    log_day(store, 0, n=1, labels=False)  # one row
    # predictions without any feature rows
    ingest(
        store,
        "shop",
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": ["lonely"],
                "model_version": "1.0",
                "ts": [pd.Timestamp(DAY0 + timedelta(days=1, hours=1))],
                "prediction": [0.3],
            }
        ),
    )
    monitor_model(store, "shop")
    frame_ = results(store, "shop")
    for check in ("data_drift", "multivariate_drift", "performance_drift", "concept_drift"):
        rows = frame_[frame_["check_name"] == check]
        assert len(rows) and (rows["status"] == INSUFFICIENT).all(), check
        assert rows["severity"].isna().all(), check
        assert all(d.get("reason") for d in rows["details"]), check
    store.close()


def test_previous_and_baseline_references(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    register(store, tmp_path / "spec", drift="multivariate = false\nconcept = false")
    for day in range(3):
        log_day(store, day, shift=60.0 if day == 2 else 0.0, labels=False)
    prev = monitor_model(store, "shop", reference="previous")
    base = monitor_model(store, "shop", reference="baseline")
    assert prev.computed == base.computed == 3
    drift = results(store, "shop", check="data_drift", reference="previous", subject="amount")
    first, second, third = drift.sort_values("window_start").itertuples()
    assert first.status == INSUFFICIENT  # no previous window
    assert second.severity == "none" and third.severity != "none"
    # the default baseline (first 7 days) contains day 2 itself, yet day 2 still stands out
    drift = results(store, "shop", check="data_drift", reference="baseline", subject="amount")
    assert drift.sort_values("window_start")["severity"].iloc[-1] != "none"
    store.close()


def test_other_grains_and_variants(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    register(store, tmp_path / "spec", drift="multivariate = false\nconcept = false")
    log_day(store, 0, labels=False)
    log_day(store, 0, labels=False, variant="shadow", seed=9)
    run = monitor_model(store, "shop", grain="week")
    assert run.windows == 2  # one week, two variants
    run = monitor_model(store, "shop", grain="hour", variant="shadow")
    assert run.windows == 24
    counts = window_counts(store, "shop", grain="hour", variant="shadow")
    assert len(counts) == 24 and counts["rows"].sum() == ROWS_PER_DAY
    weekly = results(store, "shop", grain="week", check="data_drift")
    assert set(weekly["variant"]) == {"production", "shadow"}
    store.close()


def test_feature_distribution_for_overlays(shop):
    store, _ = shop
    day2 = DAY0 + timedelta(days=2)
    hist = feature_distribution(store, "shop", "1.0", "production", "day", day2, "amount")
    assert hist.attrs["kind"] == "numeric"
    assert hist.attrs["n_current"] == ROWS_PER_DAY and hist.attrs["n_reference"] == 2000
    assert hist["reference_share"].sum() == pytest.approx(1)
    assert hist["current_cdf"].iloc[-1] == pytest.approx(1)
    assert (hist["bin_left"] < hist["bin_right"]).all()
    # the shifted window's mean sits to the right of the reference's
    mids = (hist["bin_left"] + hist["bin_right"]) / 2
    assert (mids * hist["current_share"]).sum() > (mids * hist["reference_share"]).sum() + 20
    bars = feature_distribution(store, "shop", "1.0", "production", "day", day2, "channel")
    assert set(bars["category"]) == {"web", "app", "store"}
    assert bars["current_share"].sum() == pytest.approx(1)
    labels = feature_distribution(
        store, "shop", "1.0", "production", "day", day2, "predicted_label"
    )
    assert labels.attrs["kind"] == "categorical"
    with pytest.raises(KeyError, match="no feature 'nope'"):
        feature_distribution(store, "shop", "1.0", "production", "day", day2, "nope")


def test_results_filters(shop):
    store, _ = shop
    day1 = pd.Timestamp(DAY0 + timedelta(days=1))
    some = results(store, "shop", check=["schema", "business_rule"], since=day1)
    assert set(some["check_name"]) == {"schema", "business_rule"}
    assert (some["window_start"] >= day1).all()
    assert set(results(store, "shop", layer="concept")["check_name"]) == {
        "performance_drift",
        "concept_drift",
    }
    assert results(store, "shop", version="9.9").empty
    with pytest.raises(ValueError, match="unknown check"):
        results(store, "shop", check="nonsense")


def test_feature_drift_suite_matches_stored_results(shop):
    store, _ = shop
    day2 = DAY0 + timedelta(days=2)
    suite = {r.subject: r for r in feature_drift_suite(store, "shop", day2)}
    stored = results(store, "shop", check="data_drift", since=day2)
    for row in stored.itertuples():
        assert suite[row.subject].p_value == pytest.approx(row.p_value, rel=1e-12)
        assert suite[row.subject].effect_size == pytest.approx(row.effect_size, rel=1e-12)


def test_cli_monitor(tmp_path, capsys):
    db = tmp_path / "cli.duckdb"
    store = Store(db)
    register(store, tmp_path / "spec", drift="multivariate = false\nconcept = false")
    log_day(store, 0, labels=False)
    store.close()
    assert cli.main(["monitor", "--db", str(db), "--model", "shop"]) == 0
    out = capsys.readouterr()
    assert "shop: 1 day window(s) vs spec reference; computed 1" in out.out
    assert "monitor shop day: window 1/1 (1 computed, 0 unchanged" in out.err
    assert cli.main(["monitor", "--db", str(db), "--json"]) == 0
    assert '"computed": 0' in capsys.readouterr().out
    assert cli.main(["monitor", "--db", str(db), "--model", "ghost"]) == 2
    assert "unknown model 'ghost'" in capsys.readouterr().err


def test_as_of_keeps_complete_windows_and_bad_settings_name_the_window(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    register(store, tmp_path / "spec", drift="multivariate = false\nconcept = false")
    log_day(store, 0, labels=False)
    log_day(store, 1, labels=False)
    run = monitor_model(store, "shop", as_of=DAY0 + timedelta(days=1, hours=12))
    assert run.windows == 1  # day 1 is not complete yet
    overlay = feature_distribution(
        store,
        "shop",
        "1.0",
        "production",
        "day",
        DAY0 + timedelta(days=1),
        "channel",
        reference="previous",
    )
    assert overlay.attrs["n_reference"] == overlay.attrs["n_current"] == ROWS_PER_DAY
    register(store, tmp_path / "spec2", version="2.0", drift="fdr = 0.05")
    # Registration refuses a bad [drift] table; a version stored before that check existed
    # can still hold one, and monitoring must then name the window that failed.
    with store.cursor() as cur:
        cur.execute(
            'UPDATE model_versions SET spec = json_merge_patch(spec, \'{"drift": {"fdr": 5}}\') '
            "WHERE model_name = 'shop' AND version = '2.0'"
        )
    log_day(store, 2, labels=False, version="2.0")
    with pytest.raises(MonitorError, match=r"(?s)shop 2\.0 production day window 2026-02-04.*fdr"):
        monitor_model(store, "shop")
    assert results(store, "shop", version="1.0", since=DAY0 + timedelta(days=1)).shape[0] > 0
    store.close()


def test_features_named_like_log_columns(tmp_path):
    """Features called `ts` and `status` do not collide with the window's own columns."""
    rng = np.random.default_rng(3)
    pd.DataFrame(
        {"ts": rng.normal(size=300), "status": rng.choice(["a", "b"], 300), "prediction": 0.5}
    ).assign(actual=rng.integers(0, 2, 300)).to_csv(tmp_path / "reference.csv", index=False)
    spec = tmp_path / "odd.toml"
    spec.write_text(
        textwrap.dedent(
            """
            name = "odd"
            task = "binary_classification"
            owner = "o@example.com"
            risk_tier = "low"
            version = "1"
            reference = "reference.csv"
            [drift]
            multivariate = false
            [[features]]
            name = "ts"
            type = "numeric"
            [[features]]
            name = "status"
            type = "categorical"
            [[rules]]
            name = "positive_ts"
            sql = "ts > -10"
            """
        ),
        encoding="utf-8",
    )
    store = Store(tmp_path / "o.duckdb")
    catalog.register_from_file(store, spec)
    ids = [f"o{i}" for i in range(200)]
    ingest(
        store,
        "odd",
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": ids,
                "model_version": "1",
                "ts": pd.Timestamp(DAY0),
                "prediction": 0.5,
            }
        ),
    )
    ingest(
        store,
        "odd",
        "features",
        pd.DataFrame(
            {"prediction_id": ids, "ts": rng.normal(3, 1, 200), "status": rng.choice(["a"], 200)}
        ),
    )
    monitor_model(store, "odd")
    drift = results(store, "odd", check="data_drift").set_index("subject")
    assert drift.loc["ts", "severity"] == "significant"
    assert drift.loc["status", "n_current"] == 200
    store.close()
