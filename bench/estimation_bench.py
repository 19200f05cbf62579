"""Estimation bench: what estimated performance adds to monitoring, at 1k and 100k rows a window.

    python bench/estimation_bench.py [--rows 1000] [--days 10] [--task binary|regression]

A model with the small-window bench's 10 features (7 numeric, 3 categorical) and a 5,000-row
reference is registered, `days` daily windows of `rows` predictions with their feature rows
are ingested, and `monitor_model` runs over them with every default check. The per-window
time of the estimate (`reference_models.estimated_performance`) and the one-off fit per
version (`reference_models.version_models`: calibrators or loss models, and the importance
profile) are timed by wrapping those functions, and compared with the whole run's time.
Figures for bench/README.md; tests never assert times. Uses a temporary database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_windows_bench import CATEGORICAL, NUMERIC, features

from lifecycle import catalog, monitor, reference_models
from lifecycle.ingest import ingest
from lifecycle.store import Store

START = datetime(2026, 1, 1, tzinfo=UTC)
TIMES: dict[str, list[float]] = {"estimate": [], "fit": []}


def timed(name: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[name].append(time.perf_counter() - t0)

    return wrapper


def outcome(frame: pd.DataFrame, rng, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, actual) from a fixed relation to the features."""
    z = (
        (np.log(frame["income"]) - 10.5) / 0.6
        - 3 * (frame["debt_ratio"] - 0.3)
        + 0.5 * (frame["employment_type"] == "salaried")
    ).to_numpy()
    if task == "regression":
        return 100 + 10 * z, 100 + 10 * z + rng.normal(0, 3 + 2 * np.abs(z), len(z))
    p = 1 / (1 + np.exp(-z))
    return p, (rng.uniform(size=len(p)) < p).astype(float)


def spec_text(task: str) -> str:
    head = [
        'name = "bench_estimate"',
        f'task = "{"regression" if task == "regression" else "binary_classification"}"',
        'owner = "bench@example.com"',
        'risk_tier = "low"',
        'version = "1.0"',
        'reference = "reference.parquet"',
    ]
    if task != "regression":
        head += ['classes = ["0", "1"]', 'positive_class = "1"']
    feats = [f'[[features]]\nname = "{n}"\ntype = "numeric"' for n in NUMERIC]
    feats += [f'[[features]]\nname = "{n}"\ntype = "categorical"' for n in CATEGORICAL]
    return "\n".join(head) + "\n\n" + "\n\n".join(feats) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--task", choices=("binary", "regression"), default="binary")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    reference_models.estimated_performance = timed(
        "estimate", reference_models.estimated_performance
    )
    reference_models.version_models = timed("fit", reference_models.version_models)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        ref = features(rng, 5000)
        ref["prediction"], ref["actual"] = outcome(ref, rng, args.task)
        ref.to_parquet(folder / "reference.parquet")
        (folder / "spec.toml").write_text(spec_text(args.task), encoding="utf-8")
        with Store(folder / "bench.duckdb") as store:
            catalog.register_from_file(store, folder / "spec.toml")
            for day in range(args.days):
                frame = features(rng, args.rows)
                prediction, _ = outcome(frame, rng, args.task)
                ids = [f"d{day}-{i}" for i in range(args.rows)]
                ts = pd.Timestamp(START + timedelta(days=day)) + pd.to_timedelta(
                    np.linspace(0, 86_000, args.rows), unit="s"
                )
                ingest(store, "bench_estimate", "predictions",
                       pd.DataFrame({"prediction_id": ids, "model_version": "1.0", "ts": ts,
                                     "prediction": prediction}))  # fmt: skip
                ingest(store, "bench_estimate", "features", frame.assign(prediction_id=ids))
            t0 = time.perf_counter()
            run = monitor.monitor_model(store, "bench_estimate", grain="day")
            total = time.perf_counter() - t0
            # a later run in a new process: the stored importance profile is reused, the
            # calibrators (or loss models) are fitted again
            reference_models._CACHE.clear()
            TIMES["fit"], fit_first = [], sum(TIMES["fit"])
            monitor.monitor_model(store, "bench_estimate", grain="day", force=True)
            fit_again = sum(TIMES["fit"])
    estimate, fit = sum(TIMES["estimate"]) / 2, fit_first
    windows = max(run.computed, 1)
    print(
        f"{args.task}, {args.days} windows of {args.rows:,} rows, load {os.getloadavg()[0]:.1f}: "
        f"monitoring {total:.1f} s ({total / windows:.2f} s a window); estimate "
        f"{estimate / windows * 1000:.0f} ms a window ({estimate / total:.1%} of the run); "
        f"fit once per version {fit:.1f} s ({fit / total:.1%}); together "
        f"{(estimate + fit) / total:.1%}; a later process refits in {fit_again:.2f} s"
    )


if __name__ == "__main__":
    main()
