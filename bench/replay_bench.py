"""`check --replay` against a loop of `check --as-of`, on the same history.

    python bench/replay_bench.py [--days 28] [--rows 2000] [--every day]

Builds a toy model's history (bench/out/replay_history.duckdb): --days days of --rows
predictions a day with features and labels (an unseen category on a few days, missing values
on others), monitored once. Then, on two copies: a loop of run_check(as_of=step) for every
step (what a cron job does; monitoring finds nothing new), and one run_replay over the same
steps. Prints both wall times, the ratio, and whether the alert outcomes agree.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lifecycle import catalog  # noqa: E402
from lifecycle.alerts.check import run_check  # noqa: E402
from lifecycle.alerts.lifecycle import list_alerts  # noqa: E402
from lifecycle.alerts.replay import run_replay, schedule  # noqa: E402
from lifecycle.ingest import ingest  # noqa: E402
from lifecycle.monitor import monitor_model  # noqa: E402
from lifecycle.store import Store  # noqa: E402
from tests import test_check as tc  # noqa: E402
from tests.conftest import write_toy_spec  # noqa: E402

OUT = ROOT / "bench" / "out"


def build(path: Path, days: int, rows: int) -> None:
    tc.ROWS = rows
    spec = write_toy_spec(OUT / "replay_spec", rows=3000)
    spec.write_text(spec.read_text() + tc.FAST_DRIFT, encoding="utf-8")
    path.unlink(missing_ok=True)
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        rng = np.random.default_rng(0)
        for day in range(days):
            trouble = {}
            if day % 9 == 4:
                trouble = {"missing_x": 0.5}
            elif day % 13 == 7:
                trouble = {"new_color": 0.015}
            tc.serve_day(store, day, **trouble)
            ids = [f"d{day}-{i}" for i in range(rows)]
            labelled = pd.DataFrame({"prediction_id": ids, "actual": rng.choice(["0", "1"], rows),
                                     "labeled_at": pd.Timestamp(tc.end_of(day))})  # fmt: skip
            ingest(store, "toy", "labels", labelled)
        monitor_model(store, "toy", as_of=tc.end_of(days - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--every", choices=("day", "week"), default="day")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    history = OUT / "replay_history.duckdb"
    started = time.perf_counter()
    build(history, args.days, args.rows)
    print(f"history: {args.days} days x {args.rows} rows, monitored, "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    steps = schedule(tc.end_of(0), tc.end_of(args.days - 1), args.every)
    loop_db, replay_db = OUT / "replay_loop.duckdb", OUT / "replay_once.duckdb"
    for target in (loop_db, replay_db):
        shutil.copyfile(history, target)

    with Store(loop_db) as store:
        started = time.perf_counter()
        for step in steps:
            run_check(store, as_of=step)
        loop_seconds = time.perf_counter() - started
        looped = list_alerts(store)
    with Store(replay_db) as store:
        started = time.perf_counter()
        run_replay(store, start=steps[0], end=steps[-1], every=args.every)
        replay_seconds = time.perf_counter() - started
        replayed = list_alerts(store)

    columns = ["alert_id", "rule", "subject", "severity", "worst_severity", "state",
               "first_seen", "last_seen", "count"]  # fmt: skip
    same = looped[columns].to_dict("records") == replayed[columns].to_dict("records")
    print(f"{len(steps)} steps every {args.every}")
    print(f"loop of check --as-of: {loop_seconds:.1f} s ({loop_seconds / len(steps):.2f} s a step)")
    print(f"check --replay:        {replay_seconds:.1f} s")
    print(f"speed-up:              {loop_seconds / replay_seconds:.1f}x")
    print(f"alerts: {len(replayed)} ({(replayed.state == 'resolved').sum()} resolved); "
          f"same outcomes as the loop: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
