"""Demo pipeline bench: build the demo, monitor every daily window, run the first check.

    python bench/demo_bench.py [--days 90]

Prints wall time and peak resident memory of each stage (figures for the README; tests never
assert times). Uses bench/out/demo_bench.duckdb, rebuilt on every run.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle.alerts.check import run_check
from lifecycle.demo import build_demo
from lifecycle.monitor import monitor_all
from lifecycle.store import Store

OUT = Path(__file__).resolve().parent / "out" / "demo_bench.duckdb"
END = datetime(2026, 11, 16, tzinfo=UTC)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str, started: float) -> None:
    print(f"{name:<28} {time.perf_counter() - started:7.1f} s   peak so far {peak_mb():6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    OUT.parent.mkdir(exist_ok=True)
    OUT.unlink(missing_ok=True)
    t = time.perf_counter()
    summary = build_demo(OUT, days=args.days, end=END)
    stage(f"demo ({summary.predictions:,} predictions)", t)
    with Store(OUT) as store:
        t = time.perf_counter()
        runs = monitor_all(store)
        windows = sum(r.windows for r in runs)
        stage(f"monitor ({windows} day windows)", t)
        t = time.perf_counter()
        again = monitor_all(store)
        stage(f"monitor again ({sum(r.skipped for r in again)} unchanged)", t)
        t = time.perf_counter()
        report = run_check(store, as_of=END, monitor=False)
        stage(f"first check (exit {report.exit_code})", t)


if __name__ == "__main__":
    main()
