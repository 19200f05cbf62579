"""Small-window bench: daily monitoring of a low-traffic model (300 days x ~165 predictions).

    python bench/small_windows_bench.py [--days 300] [--rows 165] [--seed 0]

A credit-scoring-like binary classifier with 10 features (7 numeric, 3 categorical with 4, 6
and 18 categories) is registered from a spec with a 2,000-row reference, then `days` days of
traffic (Poisson, `rows` predictions a day on average) with their feature rows and labels
(arriving 5-40 days later, 10% never) are ingested through the library's validating path.
The bench then runs `monitor_model` over every daily window (every check the spec enables by
default: feature and prediction drift, multivariate, data quality, performance and concept
drift) and prints the time per window and in total, then runs it again with nothing changed.
Figures for bench/README.md; tests never assert times. Uses bench/out/small_windows.duckdb,
rebuilt on every run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle import catalog
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.spec import parse_spec
from lifecycle.store import Store

OUT = Path(__file__).resolve().parent / "out" / "small_windows.duckdb"
MODEL = "small_credit"
START = datetime(2026, 1, 1, tzinfo=UTC)
REFERENCE_ROWS = 2000
NUMERIC = {  # name -> (generator, spec range)
    "age": (lambda r, n: r.normal(42, 12, n).clip(18, 90).round(), (18, 90)),
    "income": (lambda r, n: r.lognormal(10.5, 0.6, n).round(-1), (0, 1e7)),
    "debt_ratio": (lambda r, n: r.beta(2, 5, n), (0, 1)),
    "credit_lines": (lambda r, n: r.poisson(4, n).astype(float), (0, 100)),
    "months_employed": (lambda r, n: r.exponential(60, n).round(), (0, 800)),
    "loan_amount": (lambda r, n: r.lognormal(9, 0.8, n).round(-1), (0, 1e7)),
    "utilization": (lambda r, n: r.uniform(0, 1, n), (0, 1)),
}
CATEGORICAL = {
    "employment_type": ["salaried", "self_employed", "unemployed", "retired"],
    "purpose": ["car", "home", "education", "business", "medical", "other"],
    "region": [f"r{i:02d}" for i in range(18)],
}


def features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({name: make(rng, n) for name, (make, _) in NUMERIC.items()})
    for name, values in CATEGORICAL.items():
        weights = np.linspace(2, 1, len(values))
        frame[name] = rng.choice(values, n, p=weights / weights.sum())
    frame.loc[rng.random(n) < 0.02, "months_employed"] = np.nan  # a few missing values
    return frame


def score(x: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Probability of default from a fixed logistic formula, and the drawn outcome."""
    z = (
        -1.5
        + 2.5 * x["debt_ratio"]
        + 1.2 * x["utilization"]
        - 0.02 * (x["age"] - 42)
        + 0.3 * (x["employment_type"] == "unemployed")
    )
    p = 1 / (1 + np.exp(-z.to_numpy(dtype=float)))
    return p, (rng.random(len(p)) < p).astype(int)


def spec_text(reference: Path) -> str:
    lines = [
        f'name = "{MODEL}"',
        'task = "binary_classification"',
        'owner = "bench@example.com"',
        'risk_tier = "low"',
        'description = "Low-traffic credit scoring model (small-window bench)"',
        'version = "1.0"',
        f'reference = "{reference}"',
        'classes = ["0", "1"]',
        'positive_class = "1"',
        "",
        "[training]",
        'data_fingerprint = "sha256:bench"',
        "validation_metrics = { roc_auc = 0.7 }",
    ]
    for name, (_, (low, high)) in NUMERIC.items():
        lines += ["", "[[features]]", f'name = "{name}"', 'type = "numeric"']
        lines.append(f"range = [{low}, {high}]")
    for name, values in CATEGORICAL.items():
        lines += ["", "[[features]]", f'name = "{name}"', 'type = "categorical"']
        lines.append("values = [" + ", ".join(f'"{v}"' for v in values) + "]")
    return "\n".join(lines) + "\n"


def build(store: Store, days: int, rows: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        ref = features(rng, REFERENCE_ROWS)
        p, y = score(ref, rng)
        ref = ref.assign(prediction=p, predicted_label=(p >= 0.5).astype(int).astype(str),
                         actual=y.astype(str))  # fmt: skip
        path = Path(folder) / "reference.parquet"
        ref.to_parquet(path, index=False)
        catalog.register(store, parse_spec(spec_text(path), source="small-window bench"))

    per_day = rng.poisson(rows, days)
    n = int(per_day.sum())
    day = np.repeat(np.arange(days), per_day)
    ts = pd.Timestamp(START) + pd.to_timedelta(day * 86400 + rng.uniform(0, 86400, n), "s")
    x = features(rng, n)
    p, y = score(x, rng)
    ids = [f"s{i:07d}" for i in range(n)]
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "model_version": "1.0",
            "ts": ts,
            "prediction": p,
            "predicted_label": (p >= 0.5).astype(int).astype(str),
            "latency_ms": rng.gamma(2.0, 10.0, n),
            "status": "ok",
        }
    )
    end = pd.Timestamp(START + timedelta(days=days))
    labeled_at = ts + pd.to_timedelta(rng.uniform(5, 40, n), "D")
    arrives = (rng.random(n) >= 0.1) & (labeled_at < end)
    labels = pd.DataFrame(
        {"prediction_id": np.array(ids)[arrives], "actual": y[arrives].astype(str),
         "labeled_at": labeled_at[arrives]}
    )  # fmt: skip
    ingest(store, MODEL, "predictions", predictions, source_name="bench predictions")
    ingest(store, MODEL, "features", x.assign(prediction_id=ids), source_name="bench features")
    if len(labels):  # none arrive in runs shorter than the label delay
        ingest(store, MODEL, "labels", labels, source_name="bench labels")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--rows", type=int, default=165, help="mean predictions a day")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    OUT.parent.mkdir(exist_ok=True)
    OUT.unlink(missing_ok=True)
    with Store(OUT) as store:
        t = time.perf_counter()
        n = build(store, args.days, args.rows, args.seed)
        print(f"build: {n:,} predictions over {args.days} days, {time.perf_counter() - t:.1f} s")
        as_of = START + timedelta(days=args.days)
        load = os.getloadavg()[0]
        t, cpu = time.perf_counter(), time.process_time()
        run = monitor_model(store, MODEL, as_of=as_of)
        total, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(
            f"monitor: {run.windows} day windows (data checks {run.computed}, label checks "
            f"{run.label_computed}) in {total:.1f} s = {total / max(run.windows, 1):.3f} s a "
            f"window (CPU {cpu:.1f} s; 1-minute load average {load:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after)"
        )
        t = time.perf_counter()
        again = monitor_model(store, MODEL, as_of=as_of)
        print(f"monitor again: {again.skipped} unchanged in {time.perf_counter() - t:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
