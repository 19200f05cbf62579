"""First-start bench: the app's setup on a fresh path, timed per stage.

    python bench/first_start_bench.py [--days 90]

Runs lifecycle.first_start.run_setup as the app's background thread does, on
bench/out/first_start.duckdb (deleted first), and prints when each stage ended: the demo
built, pages current (the last 7 days monitored and the first alert check done: a usable
Overview), and the older history filled in. Figures for the README; tests never assert times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle import first_start
from lifecycle.store import Store

OUT = Path(__file__).resolve().parent / "out" / "first_start.duckdb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=first_start.DEMO_DAYS)
    args = parser.parse_args()
    OUT.parent.mkdir(exist_ok=True)
    OUT.unlink(missing_ok=True)
    stores: dict[Path, Store] = {}
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def report(fraction: float, text: str, still: str) -> None:
        if "first monitoring" in text and "built" not in marks:
            marks["built"] = time.perf_counter() - started
        if "older history" in text and "current" not in marks:
            marks["current"] = time.perf_counter() - started
        print(f"\r{time.perf_counter() - started:6.1f} s {fraction:4.0%} {text[:90]:<90}",
              end="", flush=True)  # fmt: skip

    def open_store(path: Path) -> Store:
        return stores.setdefault(path, Store(path))

    load = os.getloadavg()[0]
    first_start.run_setup(OUT, open_store, report, days=args.days)
    marks["complete"] = time.perf_counter() - started
    print(f"\nload average before {load:.1f}, after {os.getloadavg()[0]:.1f}")
    for name in ("built", "current", "complete"):
        print(f"{name:<10} {marks.get(name, float('nan')):7.1f} s")


if __name__ == "__main__":
    main()
