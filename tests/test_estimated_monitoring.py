"""Estimated performance through monitoring and alerts (issue 12's known-truth cases):
a covariate shift the estimate follows before labels arrive (and an alert saying so), and a
pure concept shift the estimate cannot see but the concept-drift check catches once labels
arrive."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.alerts.check import run_check
from lifecycle.ingest import ingest
from lifecycle.layers import performance_windows
from lifecycle.monitor import monitor_model
from lifecycle.store import Store

DAY0 = datetime(2026, 5, 1, tzinfo=UTC)
ROWS = 1000

SPEC = """
name = "loans"
task = "binary_classification"
owner = "alice@example.com"
risk_tier = "low"
version = "1.0"
reference = "reference.parquet"
classes = ["0", "1"]
positive_class = "1"

[[features]]
name = "income"
type = "numeric"

[[features]]
name = "tenure"
type = "numeric"

[drift]
multivariate = false
"""


def world(rng, n: int, income_spread: float = 1.0, concept: float = 1.0) -> pd.DataFrame:
    """The label's probability is sigmoid(concept * (3 income + tenure)); the score is the
    model's (too confident) reading of the relation it learnt (concept 1). A narrower
    income spread puts more rows near the decision boundary: harder cases."""
    income = rng.normal(0, income_spread, n)
    tenure = rng.normal(0, 1, n)
    logit = 3 * income + tenure
    return pd.DataFrame(
        {
            "income": income,
            "tenure": tenure,
            "prediction": 1 / (1 + np.exp(-1.5 * logit)),
            "actual": (rng.uniform(size=n) < 1 / (1 + np.exp(-concept * logit))).astype(float),
        }
    )


@pytest.fixture
def loans(tmp_path) -> Store:
    rng = np.random.default_rng(12)
    world(rng, 4000).to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC), encoding="utf-8")
    store = Store(tmp_path / "loans.duckdb")
    catalog.register_from_file(store, tmp_path / "spec.toml")
    yield store
    store.close()


def serve(store: Store, day: int, frame: pd.DataFrame, *, labels: bool) -> None:
    ts = pd.Timestamp(DAY0 + timedelta(days=day)) + pd.to_timedelta(
        np.linspace(0, 86_000, len(frame)), unit="s"
    )
    ids = [f"d{day}-{i}" for i in range(len(frame))]
    ingest(store, "loans", "predictions",
           pd.DataFrame({"prediction_id": ids, "model_version": "1.0", "ts": ts,
                         "prediction": frame["prediction"]}))  # fmt: skip
    ingest(store, "loans", "features", frame[["income", "tenure"]].assign(prediction_id=ids))
    if labels:
        ingest(store, "loans", "labels",
               pd.DataFrame({"prediction_id": ids, "actual": frame["actual"],
                             "labeled_at": ts + pd.Timedelta(hours=2)}))  # fmt: skip


def estimates(store: Store, metric: str) -> pd.DataFrame:
    frame = store.query_df(
        "SELECT window_start, statistic, details FROM monitor_results "
        "WHERE check_name = 'estimated_performance' AND subject = ? AND status = 'ok' "
        "ORDER BY window_start",
        [metric],
    )
    details = [json.loads(d) for d in frame["details"]]
    frame["low"] = [d["low"] for d in details]
    frame["high"] = [d["high"] for d in details]
    return frame.set_index("window_start")


def test_a_covariate_shift_is_estimated_before_labels_and_alerts_as_estimated(loans):
    """Incomes move towards the decision boundary (harder cases) on days 6-11, whose labels
    have not arrived: the estimate follows the realized accuracy (checked when the labels do
    arrive) and the check raises an estimated-performance alert that says so."""
    rng = np.random.default_rng(5)
    frames = {}
    for day in range(12):
        shifted = day >= 6
        frames[day] = world(rng, ROWS, income_spread=0.25 if shifted else 1.0)
        serve(loans, day, frames[day], labels=not shifted)
    monitor_model(loans, "loans", grain="day")
    accuracy = estimates(loans, "accuracy")
    assert len(accuracy) == 12
    before, after = accuracy["statistic"].iloc[:6], accuracy["statistic"].iloc[6:]
    assert after.max() < before.min() - 0.05  # the estimate sees the harder traffic

    report = run_check(loans, as_of=DAY0 + timedelta(days=12))
    alerts = loans.query_df(
        "SELECT rule, subject, severity, summary FROM alerts WHERE rule = 'estimated_performance'"
    )
    assert not alerts.empty, report
    assert "accuracy" in set(alerts["subject"])
    assert alerts["summary"].str.contains("estimated, labels pending").all()
    assert set(alerts["severity"]) <= {"warning", "critical"}

    # the labels arrive: realized accuracy falls inside the estimate's band on most days
    for day in range(6, 12):
        frame, ids = frames[day], [f"d{day}-{i}" for i in range(ROWS)]
        ingest(loans, "loans", "labels",
               pd.DataFrame({"prediction_id": ids, "actual": frame["actual"],
                             "labeled_at": pd.Timestamp(DAY0 + timedelta(days=13))}))  # fmt: skip
    realized = performance_windows(loans, "loans", grain="day").set_index("window_start")
    inside = [
        accuracy.loc[w, "low"] <= realized.loc[w, "accuracy"] <= accuracy.loc[w, "high"]
        for w in accuracy.index
    ]
    assert sum(inside) >= 10, list(zip(accuracy["statistic"], realized["accuracy"], strict=True))


def test_a_concept_shift_leaves_the_estimate_flat_and_the_concept_check_fires(loans):
    """From day 6 the label's relation to the inputs weakens (inputs unchanged): the estimate
    stays where it was, realized accuracy falls, and once the labels are in, the
    concept-drift check flags the shifted days."""
    rng = np.random.default_rng(8)
    for day in range(10):
        serve(loans, day, world(rng, ROWS, concept=1.0 if day < 6 else -0.5), labels=True)
    monitor_model(loans, "loans", grain="day")
    accuracy = estimates(loans, "accuracy")["statistic"]
    assert accuracy.max() - accuracy.min() < 0.03
    realized = performance_windows(loans, "loans", grain="day")["accuracy"]
    assert realized.iloc[6:].max() < accuracy.iloc[6:].min() - 0.2
    concept = loans.query_df(
        "SELECT window_start, severity FROM monitor_results WHERE check_name = 'concept_drift' "
        "ORDER BY window_start"
    )
    flagged = concept["severity"].isin(["moderate", "significant"])
    assert flagged.iloc[6:].all() and not flagged.iloc[:6].any(), concept


def test_an_uninformative_reference_gives_reasons_not_numbers(tmp_path):
    rng = np.random.default_rng(1)
    ref = world(rng, 4000)
    ref["prediction"] = rng.uniform(size=len(ref))  # scores that say nothing
    ref.to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC), encoding="utf-8")
    with Store(tmp_path / "x.duckdb") as store:
        catalog.register_from_file(store, tmp_path / "spec.toml")
        serve(store, 0, world(rng, 300), labels=False)
        monitor_model(store, "loans", grain="day")
        rows = store.query_df(
            "SELECT subject, status, statistic, details FROM monitor_results "
            "WHERE check_name = 'estimated_performance'"
        )
    assert set(rows["subject"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert (rows["status"] == "insufficient_data").all() and rows["statistic"].isna().all()
    assert all("too little information" in json.loads(d)["reason"] for d in rows["details"])
