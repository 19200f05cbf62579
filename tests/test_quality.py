"""Data-quality tiers (schema, statistics, business rules) over logs ingested through the library."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.drift import INSUFFICIENT, results
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.store import Store

FEATURES = """
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
"""
SPEC = """
name = "loans"
task = "regression"
owner = "owner@example.com"
risk_tier = "low"
version = "{version}"
reference = "reference.csv"

[drift]
multivariate = false
concept = false
{features}
{extra}
[[rules]]
name = "adult"
sql = "age >= 18"

[[rules]]
name = "big_amounts_in_store"
sql = "amount < 900 OR channel = 'store'"
"""
COUPON = """
[[features]]
name = "coupon"
type = "numeric"
"""
DAY0 = datetime(2026, 3, 2, tzinfo=UTC)


def clean(rng, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.uniform(10, 800, n),
            "age": 18 + rng.gamma(4, 5, n).round(),
            "channel": rng.choice(["web", "app", "store"], n),
        }
    )


@pytest.fixture(scope="module")
def loans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loans")
    rng = np.random.default_rng(1)
    ref = clean(rng, 1500).assign(prediction=1.0, actual=1.0)
    ref.to_csv(folder / "reference.csv", index=False)
    store = Store(folder / "q.duckdb")
    for version, extra in (("1", ""), ("2", COUPON)):
        spec = folder / f"loans-{version}.toml"
        text = SPEC.format(version=version, features=FEATURES, extra=extra)
        spec.write_text(textwrap.dedent(text), encoding="utf-8")
        if version == "2":
            ref.assign(coupon=0.0).to_csv(folder / "reference.csv", index=False)
        catalog.register_from_file(store, spec)
    _day(store, rng, 0, clean(rng, 600))
    bad = clean(rng, 600)
    bad.loc[300:311, "amount"] = (
        5000.0  # out of range, far outliers, and big amounts outside stores
    )
    bad.loc[300:311, "channel"] = "web"
    bad.loc[350:379, "channel"] = "kiosk"  # a category the spec does not know (30 rows)
    bad.loc[200:219, "age"] = 15.0  # under age: rule violations
    bad.loc[400:459, "age"] = np.nan  # missing values: not rule violations
    bad["coupon"] = np.where(np.arange(600) < 50, 5.0, np.nan)  # a column v1 does not have
    # the first half of the day arrives from a feed without the `channel` column
    _day(store, rng, 1, bad, split_without="channel")
    run = monitor_model(store, "loans")
    yield store, run
    store.close()


def _day(store, rng, day: int, features: pd.DataFrame, split_without: str | None = None):
    n = len(features)
    ids = [f"d{day}-{i}" for i in range(n)]
    ts = pd.Timestamp(DAY0 + timedelta(days=day)) + pd.to_timedelta(np.arange(n) * 100, "s")
    ingest(
        store,
        "loans",
        "predictions",
        pd.DataFrame({"prediction_id": ids, "model_version": "1", "ts": ts, "prediction": 1.0}),
    )
    rows = features.assign(prediction_id=ids)
    if split_without:
        half = n // 2
        first = rows.iloc[:half].drop(columns=[split_without])
        report = ingest(store, "loans", "features", first)
        assert report.missing_columns == [split_without]
        ingest(store, "loans", "features", rows.iloc[half:])
    else:
        ingest(store, "loans", "features", rows)


def _row(store, check: str, subject: str, day: int = 1):
    frame = results(store, "loans", check=check, subject=subject)
    frame = frame[frame["window_start"] == pd.Timestamp(DAY0 + timedelta(days=day))]
    assert len(frame) == 1, (check, subject)
    return frame.iloc[0]


def test_clean_day_has_no_findings(loans):
    store, _ = loans
    quality = results(store, "loans", layer="quality", until=DAY0 + timedelta(days=1))
    assert len(quality) > 0
    assert (quality["severity"] == "none").all(), quality[quality["severity"] != "none"]


def test_schema_missing_column_from_ingest_report(loans):
    store, _ = loans
    row = _row(store, "schema", "channel")
    assert row["statistic"] == pytest.approx(0.5)
    assert row["severity"] == "significant" and row["response"] == "fix the data feed"
    assert row["details"]["rows_without_column"] == 300
    assert _row(store, "schema", "amount")["severity"] == "none"


def test_schema_unexpected_column(loans):
    store, _ = loans
    row = _row(store, "schema", "coupon")
    assert row["method"] == "unexpected_column"
    assert row["details"]["rows_with_values"] == 50
    assert row["statistic"] == pytest.approx(50 / 600)


def test_missing_rate_against_reference(loans):
    store, _ = loans
    channel = _row(store, "missing_rate", "channel")
    assert channel["statistic"] == pytest.approx(0.5) and channel["severity"] == "significant"
    age = _row(store, "missing_rate", "age")
    assert age["statistic"] == pytest.approx(60 / 600)
    assert age["details"]["reference_rate"] == 0
    assert age["severity"] == "moderate" and age["p_value"] < 1e-6


def test_values_outside_the_spec_range(loans):
    store, _ = loans
    row = _row(store, "out_of_range", "amount")
    assert row["details"]["violations"] == 12
    assert row["statistic"] == pytest.approx(12 / 600) and row["severity"] == "moderate"
    examples = row["details"]["examples"]
    assert len(examples) == 5 and all(e["amount"] == 5000.0 for e in examples)


def test_far_outliers_against_the_reference(loans):
    store, _ = loans
    row = _row(store, "outliers", "amount")
    assert row["details"]["outliers"] == 12
    assert row["severity"] != "none"
    assert _row(store, "outliers", "age")["severity"] == "none"


def test_new_categories_named_with_share(loans):
    store, _ = loans
    row = _row(store, "new_categories", "channel")
    present = 300  # the half with the column
    assert row["statistic"] == pytest.approx(30 / present)
    assert row["details"]["categories"] == {"kiosk": pytest.approx(30 / present)}
    assert row["severity"] == "significant"


def test_business_rules_evaluated_in_sql(loans):
    store, _ = loans
    adult = _row(store, "business_rule", "adult")
    assert adult["details"]["violations"] == 20
    assert adult["details"]["not_evaluable"] == 60  # missing ages are not violations
    assert adult["statistic"] == pytest.approx(20 / 600)
    assert all(e["age"] == 15.0 for e in adult["details"]["examples"])
    assert set(adult["details"]["examples"][0]) == {"prediction_id", "age"}
    big = _row(store, "business_rule", "big_amounts_in_store")
    assert big["details"]["violations"] == 12
    assert set(big["details"]["examples"][0]) == {"prediction_id", "amount", "channel"}


def test_all_missing_column(tmp_path):
    rng = np.random.default_rng(2)
    ref = clean(rng, 300).assign(prediction=1.0, actual=1.0)
    ref.to_csv(tmp_path / "reference.csv", index=False)
    spec = tmp_path / "loans.toml"
    spec.write_text(textwrap.dedent(SPEC.format(version="1", features=FEATURES, extra="")))
    store = Store(tmp_path / "q.duckdb")
    catalog.register_from_file(store, spec)
    _day(store, rng, 0, clean(rng, 200).assign(age=np.nan))
    monitor_model(store, "loans")
    assert _row(store, "missing_rate", "age", day=0)["severity"] == "significant"
    assert _row(store, "data_drift", "age", day=0)["status"] == INSUFFICIENT
    assert _row(store, "outliers", "age", day=0)["status"] == INSUFFICIENT
    store.close()
