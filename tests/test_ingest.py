"""Ingestion through the Python API: every bad batch is refused by name and changes no row."""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest

from lifecycle import ingest as ingest_mod
from lifecycle.ingest import IngestError, ingest
from tests.conftest import toy_predictions


def refused(store, kind: str, batch, *fragments: str, model: str = "toy", **kwargs) -> str:
    """Assert the batch is refused with every fragment in the message and no table changed."""
    before = store.row_counts()
    with pytest.raises(IngestError) as info:
        ingest(store, model, kind, batch, **kwargs)
    message = str(info.value)
    assert "refused, nothing written" in message
    for fragment in fragments:
        assert fragment in message, message
    assert store.row_counts() == before
    return message


@pytest.fixture
def logged(toy_store):
    """The toy store with 100 predictions p0..p99 logged."""
    ingest(toy_store, "toy", "predictions", toy_predictions())
    return toy_store


def features(ids, x=None, color=None) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "prediction_id": ids,
            "x": np.linspace(1, 9, n) if x is None else x,
            "color": ["red", "green", "blue", "red"][:n] * (n // 4) + ["red"] * (n % 4)
            if color is None
            else color,
        }
    )


# -- predictions --------------------------------------------------------------------------


def test_a_valid_batch_is_appended_with_its_batch_row(toy_store):
    report = ingest(toy_store, "toy", "predictions", toy_predictions(10))
    assert report.rows == 10 and report.batch_id == 1 and report.status == "ingested"
    counts = toy_store.row_counts()
    assert counts["predictions"] == 10 and counts["ingest_batches"] == 1
    row = toy_store.query_one(
        "SELECT model_name, kind, row_count, min_ts, max_ts FROM ingest_batches"
    )
    assert row[:3] == ("toy", "predictions", 10)
    assert str(row[3]) == "2026-01-01 00:00:00+00:00" and str(row[4]) == "2026-01-01 00:09:00+00:00"
    assert toy_store.data_version() == 1


def test_missing_required_columns_are_named(toy_store):
    batch = toy_predictions(5).drop(columns=["ts", "model_version"])
    refused(toy_store, "predictions", batch, "required column(s) missing: model_version, ts")


def test_a_value_that_does_not_coerce_names_the_column_and_first_rows(toy_store):
    batch = toy_predictions(10)
    batch["latency_ms"] = batch["latency_ms"].astype(str)
    batch.loc[[2, 6], "latency_ms"] = ["fast", "12 ms"]
    refused(
        toy_store,
        "predictions",
        batch,
        "column `latency_ms`: 2 value(s) are not numbers, first rows: row 3 ('fast'), "
        "row 7 ('12 ms')",
    )


def test_column_and_type_problems_are_reported_together(toy_store):
    """One refusal names every problem found before the typed checks: a fix-and-retry loop
    per problem is what a serving team should not have to do."""
    batch = toy_predictions(6).drop(columns=["model_version"])
    batch["latency_ms"] = batch["latency_ms"].astype(str)
    batch.loc[4, "latency_ms"] = "slow"
    batch["color_code"] = 1
    message = refused(toy_store, "predictions", batch,
                      "required column(s) missing: model_version",
                      "unexpected column(s): color_code",
                      "column `latency_ms`: 1 value(s) are not numbers, first rows: row 5 ('slow')")  # fmt: skip
    assert message.count("\n  - ") == 3


def test_a_value_that_is_not_a_timestamp_names_the_column_and_rows(toy_store):
    batch = toy_predictions(4)
    batch["ts"] = ["2026-01-01T00:00:00Z", "yesterday", "2026-01-01T00:02:00Z", "2026-13-45"]
    refused(
        toy_store,
        "predictions",
        batch,
        "column `ts`: 2 value(s) are not timestamps, first rows: row 2 ('yesterday'), "
        "row 4 ('2026-13-45')",
    )


@pytest.mark.parametrize(
    "naive",
    [
        pd.date_range("2026-01-01", periods=3, freq="min"),  # datetime64 without tz
        ["2026-01-01 00:00:00", "2026-01-01 00:01:00", "2026-01-01 00:02:00"],
        ["2026-01-01", "2026-01-02", "2026-01-03"],  # a bare date has no offset either
    ],
    ids=["datetime64", "strings", "dates"],
)
def test_naive_timestamps_are_taken_as_utc_and_the_report_says_so(toy_store, naive):
    batch = toy_predictions(3)
    batch["ts"] = naive
    report = ingest(toy_store, "toy", "predictions", batch)
    assert report.rows == 3
    assert "column `ts`: 3 timestamp(s) without a time zone taken as UTC" in report.summary()
    first = toy_store.query_one("SELECT min(ts) FROM predictions")[0]
    assert first.isoformat() == "2026-01-01T00:00:00+00:00"
    # --assume-utc says they are meant as UTC: same rows, no note
    quiet = ingest(toy_store, "toy", "predictions", batch.assign(prediction_id=["q0", "q1", "q2"]),
                   assume_utc=True)  # fmt: skip
    assert not any("time zone" in n for n in quiet.notes)


def test_duplicate_ids_inside_the_batch_are_named(toy_store):
    batch = toy_predictions(6)
    batch.loc[4, "prediction_id"] = "p1"
    batch.loc[5, "prediction_id"] = "p1"
    refused(toy_store, "predictions", batch, "duplicate prediction id(s) inside the batch: p1 (x3)")


def test_ids_already_stored_are_named(logged):
    batch = toy_predictions(3, prefix="new")
    batch.loc[1, "prediction_id"] = "p42"
    batch.loc[2, "prediction_id"] = "p7"
    refused(
        logged,
        "predictions",
        batch,
        "prediction id(s) already stored in predictions for toy: p42, p7",
    )


def test_an_unknown_model_is_refused(toy_store):
    refused(
        toy_store,
        "predictions",
        toy_predictions(3),
        "unknown model 'fraud' (known: toy)",
        model="fraud",
    )


def test_an_unknown_version_is_refused(toy_store):
    batch = toy_predictions(4)
    batch.loc[[1, 3], "model_version"] = "9.9"
    refused(
        toy_store,
        "predictions",
        batch,
        "column `model_version`: 2 row(s) with a version of toy not in (1.0), first rows: "
        "row 2 ('9.9'), row 4 ('9.9')",
    )


def test_an_unexpected_column_is_refused(toy_store):
    batch = toy_predictions(3).assign(weight=1.0)
    refused(toy_store, "predictions", batch, "unexpected column(s): weight")


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("prediction", 1.5, "a probability outside [0, 1]"),
        ("latency_ms", -3.0, "a negative latency"),
        ("variant", "beta", "a variant not in (production, shadow, canary)"),
        ("status", "fine", "a status not in (ok, error)"),
        ("predicted_label", "2", "a label not in (0, 1)"),
    ],
)
def test_values_outside_their_domain_are_refused(toy_store, column, value, fragment):
    batch = toy_predictions(3).assign(variant="production")
    batch[column] = batch[column].astype(object)
    batch.loc[2, column] = value
    refused(toy_store, "predictions", batch, f"column `{column}`: 1 row(s) with {fragment}")


def test_an_empty_batch_is_refused(toy_store):
    refused(toy_store, "predictions", toy_predictions(3).head(0), "the batch has no rows")


def test_a_batch_naming_another_model_is_refused(toy_store):
    batch = toy_predictions(2).assign(model_name=["toy", "churn"])
    refused(toy_store, "predictions", batch, "column `model_name`: 1 row(s) name another model")


def test_a_missing_file_is_refused(toy_store, tmp_path):
    refused(toy_store, "predictions", tmp_path / "nope.parquet", "no such file")


# -- features -----------------------------------------------------------------------------


def test_nan_and_inf_features_are_stored_as_missing_and_counted(logged):
    x = [1.0, math.nan, math.inf, -math.inf, 5.0]
    report = ingest(logged, "toy", "features", features([f"p{i}" for i in range(5)], x=x))
    # pandas's NaN is its missing marker and reaches DuckDB as NULL; +/-inf are counted as such
    assert report.nonfinite_values == {"x": 2}
    assert report.missing_values == {"x": 3}
    assert "x: 2 NaN/inf value(s) stored as missing" in report.summary()
    stored = logged.query_all('SELECT prediction_id, x FROM "features__toy" ORDER BY x NULLS LAST')
    assert stored[:2] == [("p0", 1.0), ("p4", 5.0)]
    assert [r[1] for r in stored[2:]] == [None, None, None]


def test_feature_columns_not_in_the_schema_are_refused(logged):
    batch = features(["p0", "p1"]).assign(weight=[1, 2], height=[3, 4])
    refused(
        logged,
        "features",
        batch,
        "column(s) not in the feature schema of toy: height, weight (schema: x, color)",
    )


def test_a_numeric_feature_that_does_not_coerce_is_refused(logged):
    batch = features(["p0", "p1", "p2"], x=["1.5", "abc", "3"])
    refused(
        logged,
        "features",
        batch,
        "feature `x` is numeric but 1 value(s) are not numbers, first rows: row 2 ('abc')",
    )


def test_a_missing_schema_column_is_stored_as_null_and_reported(logged):
    report = ingest(logged, "toy", "features", features(["p0", "p1"]).drop(columns=["color"]))
    assert report.missing_columns == ["color"]
    assert logged.query_all('SELECT count(*), count(color) FROM "features__toy"') == [(2, 0)]


def test_duplicate_feature_rows_are_refused(logged):
    refused(
        logged,
        "features",
        features(["p0", "p1", "p0"]),
        "duplicate prediction id(s) inside the batch: p0 (x2)",
    )
    ingest(logged, "toy", "features", features(["p0", "p1"]))
    refused(
        logged,
        "features",
        features(["p1", "p2"]),
        "prediction id(s) already stored in features__toy for toy: p1",
    )


def test_features_for_unknown_prediction_ids_are_refused_by_default(logged):
    refused(logged, "features", features(["p0", "ghost1", "ghost2"]),
            "2 row(s) refer to prediction ids that toy never logged, e.g. ghost1, ghost2",
            "--allow-unknown-ids")  # fmt: skip


def test_features_for_unknown_prediction_ids_are_stored_when_allowed(logged):
    report = ingest(
        logged, "toy", "features", features(["p0", "ghost1", "ghost2"]), allow_unknown_ids=True
    )
    assert report.unknown_prediction_ids == 2
    assert report.unknown_prediction_ids_sample == ["ghost1", "ghost2"]
    assert logged.row_counts()["features__toy"] == 3


def test_a_feature_batch_without_ids_is_refused(logged):
    batch = features(["p0"]).drop(columns=["prediction_id"])
    refused(logged, "features", batch, "required column missing: prediction_id")


# -- labels, business events, infrastructure metrics ------------------------------------------


def labels(ids, actual=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": ids,
            "actual": actual or ["1"] * len(ids),
            "labeled_at": pd.Timestamp("2026-01-03", tz="UTC"),
        }
    )


def test_labels_for_unknown_prediction_ids_are_refused_unless_allowed(logged):
    batch = labels(["p1", "zz9", "p2", "zz8"])
    refused(logged, "labels", batch, "2 row(s) refer to prediction ids that toy never logged, "
            "e.g. zz9, zz8", "ingest the predictions first", "--allow-unknown-ids")  # fmt: skip
    report = ingest(logged, "toy", "labels", batch, allow_unknown_ids=True)
    assert report.unknown_prediction_ids == 2
    assert report.unknown_prediction_ids_sample == ["zz9", "zz8"]
    assert "2 row(s) refer to prediction ids not (yet) logged for toy, e.g. zz9, zz8" in (
        report.summary()
    )
    rows = logged.query_all(
        "SELECT prediction_id, actual_value, actual_label FROM labels ORDER BY 1"
    )
    assert rows[0] == ("p1", 1.0, "1")


def test_bad_labels_are_refused(logged):
    refused(
        logged,
        "labels",
        labels(["p1", "p2"], actual=["1", "yes"]),
        "column `actual`: 1 row(s) with a label not in (0, 1), first rows: row 2 ('yes')",
    )
    refused(logged, "labels", labels(["p1", "p1"]), "inside the batch: p1 (x2)")
    ingest(logged, "toy", "labels", labels(["p1"]))
    refused(
        logged, "labels", labels(["p1"]), "prediction id(s) already stored in labels for toy: p1"
    )
    refused(
        logged,
        "labels",
        labels(["p3"]).drop(columns=["labeled_at"]),
        "required column(s) missing: labeled_at",
    )


def test_business_events_for_unknown_ids_are_reported_and_unknown_kpis_refused(logged):
    events = pd.DataFrame(
        {
            "ts": pd.Timestamp("2026-01-02T09:00:00Z"),
            "kpi": ["conversion", "conversion"],
            "value": [1.0, 0.0],
            "prediction_id": ["p3", "nobody"],
        }
    )
    report = ingest(logged, "toy", "business", events)
    assert report.unknown_prediction_ids == 1
    assert report.unknown_prediction_ids_sample == ["nobody"]
    refused(
        logged,
        "business",
        events.assign(kpi="revenue"),
        "column `kpi`: 2 row(s) with a KPI declared for toy not in (conversion)",
    )
    refused(
        logged,
        "business",
        events.assign(value=["1.0", "lots"]),
        "column `value`: 1 value(s) are not numbers, first rows: row 2 ('lots')",
    )


def test_infra_metrics_refuse_unknown_versions_and_repeats(logged):
    metrics = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"]),
            "model_version": "1.0",
            "metric": "cpu_util",
            "value": [0.4, 0.5],
        }
    )
    refused(logged, "infra", metrics.assign(model_version="2.0"), "a version of toy not in (1.0)")
    refused(
        logged,
        "infra",
        metrics.assign(ts=metrics["ts"].iloc[0]),
        "the batch has the same (version, variant, ts, metric) more than once",
    )
    ingest(logged, "toy", "infra", metrics)
    refused(logged, "infra", metrics, "metrics already stored for the same")


# -- all or nothing -----------------------------------------------------------------------


def test_an_interrupted_batch_changes_no_row(logged, monkeypatch):
    """The log rows are inserted, then the batch's report row fails: the insert is rolled back."""

    def fail(*args, **kwargs):
        raise RuntimeError("disk full while writing the batch row")

    monkeypatch.setattr(ingest_mod, "json", types.SimpleNamespace(dumps=fail))
    before = logged.row_counts()
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(logged, "toy", "predictions", toy_predictions(20, prefix="int"))
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(logged, "toy", "features", features(["p0", "p1"]))
    assert logged.row_counts() == before
    monkeypatch.undo()
    # nothing is left behind that blocks the same batch from loading afterwards
    assert ingest(logged, "toy", "predictions", toy_predictions(20, prefix="int")).rows == 20
    assert logged.row_counts()["predictions"] == before["predictions"] + 20
