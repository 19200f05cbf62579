"""Labelled prediction streams of a binary classifier with a known accuracy, for the
performance-alert tests and bench/perf_alert_bench.py.

The classifier predicts label 1 for a share `prevalence` of rows; the actual label agrees
with the prediction with probability `accuracy` (so accuracy is exactly that in
expectation), and the score is uniform on the predicted label's half of [0, 1]. Each
seed is one registered version of model `acc`, so many seeds share one store and one query.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from lifecycle import catalog
from lifecycle.ingest import ingest
from lifecycle.store import Store

DAY0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
REFERENCE_ACCURACY = 0.944
SPEC = """
name = "acc"
task = "binary_classification"
owner = "alice@example.com"
risk_tier = "low"
description = "Accuracy stream for performance-alert tests"
version = "{version}"
reference = "reference.csv"
classes = ["0", "1"]
positive_class = "1"

[[features]]
name = "x"
type = "numeric"
"""


def rows(rng, n: int, accuracy: float, prevalence: float = 0.3) -> pd.DataFrame:
    predicted = rng.random(n) < prevalence
    correct = rng.random(n) < accuracy
    actual = np.where(correct, predicted, ~predicted)
    score = np.where(predicted, 0.5 + 0.5 * rng.random(n), 0.5 * rng.random(n))
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "prediction": score,
            "predicted_label": np.where(predicted, "1", "0"),
            "actual": np.where(actual, "1", "0"),
        }
    )


def register_versions(store: Store, folder: Path, versions: list[str], seed: int = 0) -> None:
    """Register each version with one shared 20,000-row reference at REFERENCE_ACCURACY."""
    folder.mkdir(parents=True, exist_ok=True)
    reference = rows(np.random.default_rng(seed), 20_000, REFERENCE_ACCURACY)
    reference.to_csv(folder / "reference.csv", index=False)
    for version in versions:
        path = folder / f"acc-{version}.toml"
        path.write_text(textwrap.dedent(SPEC.format(version=version)), encoding="utf-8")
        catalog.register_from_file(store, path)


def serve(
    store: Store,
    versions: list[str],
    days: int,
    *,
    per_day: int = 165,
    accuracy=REFERENCE_ACCURACY,
    label_delay: timedelta = timedelta(hours=1),
    seed: int = 0,
) -> None:
    """`days` days of traffic for each version (one seed each), labelled after
    `label_delay`; `accuracy` is a number or a function day -> accuracy."""
    predictions, labels = [], []
    for k, version in enumerate(versions):
        rng = np.random.default_rng([seed, k])
        for day in range(days):
            n = int(rng.poisson(per_day))
            acc = accuracy(day) if callable(accuracy) else accuracy
            frame = rows(rng, n, acc)
            ts = pd.Timestamp(DAY0 + timedelta(days=day)) + pd.to_timedelta(
                np.sort(rng.uniform(0, 86_000, n)), unit="s"
            )
            ids = [f"{version}-{day}-{i}" for i in range(n)]
            predictions.append(
                pd.DataFrame({"prediction_id": ids, "model_version": version, "ts": ts,
                              "prediction": frame.prediction,
                              "predicted_label": frame.predicted_label, "status": "ok"})
            )  # fmt: skip
            labels.append(pd.DataFrame({"prediction_id": ids, "actual": frame.actual,
                                        "labeled_at": ts + label_delay}))  # fmt: skip
    ingest(store, "acc", "predictions", pd.concat(predictions, ignore_index=True))
    ingest(store, "acc", "labels", pd.concat(labels, ignore_index=True))
