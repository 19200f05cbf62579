"""lifecycle.layers.estimated_windows: the stored estimated-performance results per window and
metric, read back as the pages draw them (estimate, band, reference, severity, or why not)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd

from lifecycle import estimation, layers, reference_models
from lifecycle.drift.engine import store_results
from lifecycle.drift.results_model import insufficient
from lifecycle.drift.windows import Window

DAY = datetime(2026, 1, 1, tzinfo=UTC)
CHECK = ["estimated_performance"]


def _window(day: int, version: str = "1.0", grain: str = "day") -> Window:
    start = DAY + timedelta(days=day)
    return Window("toy", version, "production", grain, start, start + timedelta(days=1))


def _estimator() -> estimation.Estimator:
    return estimation.Estimator(task="binary_classification", valid=True, reference_rows=500)


def _graded(metric: str, value: float, low: float, high: float, reference: float):
    e = estimation.Estimate(value, low, high)
    return reference_models._graded(metric, e, reference, [0.02, 0.05], _estimator(), 400)


def _store(toy_store):
    store_results(toy_store, _window(0), "spec", CHECK, 1,
                  [_graded("accuracy", 0.80, 0.77, 0.83, 0.81),
                   _graded("roc_auc", 0.70, 0.66, 0.74, 0.86)])  # fmt: skip
    reason = "the reference's scores carry no information about the label (AUC 0.51)"
    store_results(toy_store, _window(1), "spec", CHECK, 1,
                  [insufficient("estimated_performance", "accuracy", reason)])  # fmt: skip
    store_results(toy_store, _window(2, version="2.0"), "spec", CHECK, 1,
                  [_graded("accuracy", 0.9, 0.88, 0.92, 0.9)])  # fmt: skip
    store_results(toy_store, _window(0, grain="week"), "spec", CHECK, 1,
                  [_graded("accuracy", 0.5, 0.4, 0.6, 0.9)])  # fmt: skip
    return reason


def test_estimates_bands_and_grades_come_back_per_window_and_metric(toy_store):
    reason = _store(toy_store)
    frame = layers.estimated_windows(toy_store, "toy", grain="day")
    assert list(frame.columns) == layers.ESTIMATED_COLUMNS
    assert len(frame) == 4  # the week row is another grain
    first = frame[(frame["window_start"] == pd.Timestamp(DAY))].set_index("metric")
    assert first.loc["accuracy", ["estimate", "low", "high", "reference_value"]].tolist() == [
        0.80, 0.77, 0.83, 0.81]  # fmt: skip
    assert first.loc["accuracy", "severity"] == "none"  # the band reaches the reference
    # 0.86 - 0.74 = 0.12 short: beyond the critical tolerance
    assert first.loc["roc_auc", "severity"] == "significant"
    assert first.loc["accuracy", "predictions"] == 400
    assert "labels pending" in first.loc["accuracy", "basis"]
    assert (first["window_end"] == pd.Timestamp(DAY + timedelta(days=1))).all()
    missing = frame[frame["status"] != "ok"].iloc[0]
    assert missing["status"] == "insufficient_data" and missing["reason"] == reason
    assert math.isnan(missing["estimate"]) and math.isnan(missing["low"])


def test_filters_bind_version_period_and_grain(toy_store):
    _store(toy_store)
    v2 = layers.estimated_windows(toy_store, "toy", version="2.0")
    assert v2["model_version"].tolist() == ["2.0"]
    since = layers.estimated_windows(toy_store, "toy", since=DAY + timedelta(days=1),
                                     until=DAY + timedelta(days=2))  # fmt: skip
    assert since["window_start"].tolist() == [pd.Timestamp(DAY + timedelta(days=1))]
    week = layers.estimated_windows(toy_store, "toy", grain="week")
    assert week["estimate"].tolist() == [0.5]
    assert layers.estimated_windows(toy_store, "toy", variant="canary").empty
    empty = layers.estimated_windows(toy_store, "toy", reference="baseline")
    assert empty.empty and list(empty.columns) == layers.ESTIMATED_COLUMNS
