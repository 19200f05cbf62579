"""Command bench: wall time of `python -m lifecycle --help` (and each command's --help) and of
an idle `check` (nothing new to compute) on the monitored demo.

    python bench/command_bench.py [--runs 5] [--db bench/out/demo_bench.duckdb]
                                  [--as-of 2026-11-17] [--root PATH]

Each figure is a fresh interpreter (`python -m lifecycle ...` in a subprocess), as a
scheduler runs it. The idle check works on a copy of --db (a demo that `monitor` has
computed, e.g. by bench/demo_bench.py): one check brings its alerts up to date (not timed),
then --runs more checks with the same --as-of find nothing new; then one check an hour later
(the hourly windows that completed) and one a day later, no new logs. --root runs the commands from
another checkout (to time an earlier commit the same way). Prints medians and the range.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELPS = ["", "demo", "monitor", "check", "report", "registry", "registry approve", "ingest"]


def timed(argv: list[str], root: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", *argv], cwd=root, capture_output=True, text=True
    )
    return time.perf_counter() - started, done


def line(label: str, times: list[float]) -> str:
    return (
        f"{label:<34} median {statistics.median(times):6.2f} s   "
        f"range {min(times):.2f}-{max(times):.2f} s ({len(times)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", default=str(ROOT / "bench" / "out" / "demo_bench.duckdb"))
    parser.add_argument("--as-of", default="2026-11-17")
    parser.add_argument("--root", default=str(ROOT), help="checkout to run the commands from")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    for command in HELPS:
        argv = [*command.split(), "--help"]
        times = []
        for _ in range(args.runs):
            seconds, done = timed(argv, root)
            if done.returncode != 0:
                sys.exit(f"{' '.join(argv)} failed: {done.stderr}")
            times.append(seconds)
        print(line(" ".join(["lifecycle", *argv]), times))

    db = Path(args.db)
    if not db.exists():
        print(f"no database at {db}: run bench/demo_bench.py first to time the idle check")
        return
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / db.name
        shutil.copyfile(db, copy)
        argv = ["check", "--db", str(copy), "--as-of", args.as_of]
        seconds, done = timed(argv, root)
        print(f"first check (brings alerts up to date): {seconds:.2f} s, exit {done.returncode}")
        times = []
        for _ in range(args.runs):
            seconds, done = timed(argv, root)
            if done.returncode not in (0, 1, 2):
                sys.exit(f"check failed: {done.stderr}")
            times.append(seconds)
        print(done.stdout.splitlines()[1].strip())  # "0 new or changed rule evaluation(s); ..."
        print(line("lifecycle check (idle)", times))
        # the next scheduled checks: an hour later (hourly windows completed), a day later
        start = datetime.fromisoformat(args.as_of)
        for label, later in (
            ("an hour later", timedelta(hours=1)),
            ("a day later", timedelta(days=1)),
        ):
            as_of = (start + later).isoformat()
            seconds, done = timed(["check", "--db", str(copy), "--as-of", as_of], root)
            if done.returncode not in (0, 1, 2):
                sys.exit(f"check failed: {done.stderr}")
            print(f"lifecycle check, {label} ({as_of}): {seconds:.2f} s; "
                  f"{done.stdout.splitlines()[1].strip()}")  # fmt: skip


if __name__ == "__main__":
    main()
