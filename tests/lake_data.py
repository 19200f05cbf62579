"""A toy model's logs written as a lake (Parquet or Delta, partitioned by date), with the
names and types serving systems write, and the spec that declares it; shared by the lake
and engine tests."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import write_toy_spec

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
SOURCES = """
[sources.predictions]
format = "{fmt}"
path = "../lake/predictions"
[sources.predictions.columns]
prediction_id = "request_id"
ts = "event_time"
prediction = "score"
[sources.features]
format = "{fmt}"
path = "../lake/predictions"
[sources.features.columns]
prediction_id = "request_id"
x = "X value"
[sources.labels]
format = "{fmt}"
path = "../lake/labels"
[sources.labels.columns]
prediction_id = "request_id"
actual = "label"
labeled_at = "label_time"
"""


def day_logs(day: int, rows: int = 300, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(request log with features, labels) of one day, like the toy reference; `shift`
    moves x up (drift)."""
    rng = np.random.default_rng(1000 + day)
    start = pd.Timestamp(DAY0 + timedelta(days=day))
    ts = start + pd.to_timedelta(np.sort(rng.uniform(0, 86_000, rows)), unit="s")
    score = rng.uniform(0, 1, rows)
    requests = pd.DataFrame(
        {
            "request_id": [f"d{day}-{i}" for i in range(rows)],
            "event_time": ts,  # tz-aware: what Spark and pyarrow write
            "model_version": "1.0",
            "score": score,
            "predicted_label": np.where(score >= 0.5, "1", "0"),
            "latency_ms": rng.gamma(2.0, 10.0, rows).astype("float32"),
            "status": "ok",
            "X value": np.clip(rng.uniform(0, 10, rows) + shift, 0, 10),
            "color": rng.choice(["red", "green", "blue"], rows),
        }
    )
    labels = pd.DataFrame(
        {
            "request_id": requests["request_id"],
            "label": rng.integers(0, 2, rows),
            "label_time": ts + pd.Timedelta(hours=1),
        }
    )
    return requests, labels


def write_day(root: Path, day: int, fmt: str = "parquet", **kwargs) -> None:
    """Append one day's partition to the lake under `root/lake`."""
    requests, labels = day_logs(day, **kwargs)
    date = f"{DAY0 + timedelta(days=day):%Y-%m-%d}"
    for name, frame in (("predictions", requests), ("labels", labels)):
        write_frame(root / "lake" / name, frame, date, fmt)


def write_frame(folder: Path, frame: pd.DataFrame, date: str, fmt: str) -> None:
    if fmt == "delta":
        from deltalake import write_deltalake

        write_deltalake(str(folder), frame.assign(date=date), partition_by=["date"], mode="append")
        return
    part = folder / f"date={date}"
    part.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(part / f"part-{len(list(part.iterdir())):05d}.parquet", index=False)


def lake_spec(root: Path, fmt: str = "parquet", version: str = "1.0") -> Path:
    """The toy spec (reference beside it) declaring the lake under `root/lake`."""
    spec = write_toy_spec(root / "spec", version)
    spec.write_text(spec.read_text() + textwrap.dedent(SOURCES.format(fmt=fmt)))
    return spec


def as_ingested(requests: pd.DataFrame, labels: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same rows in ingest's column names (for a twin database)."""
    preds = requests.rename(
        columns={"request_id": "prediction_id", "event_time": "ts", "score": "prediction"}
    )[["prediction_id", "ts", "model_version", "prediction", "predicted_label", "latency_ms",
       "status"]]  # fmt: skip
    feats = requests.rename(columns={"request_id": "prediction_id", "X value": "x"})[
        ["prediction_id", "x", "color"]
    ]
    labs = labels.rename(
        columns={"request_id": "prediction_id", "label": "actual", "label_time": "labeled_at"}
    )
    return {"predictions": preds, "features": feats, "labels": labs}
