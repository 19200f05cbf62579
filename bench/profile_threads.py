"""cProfile across threads, for what runs outside the main thread (AppTest runs a page's
script in a thread; `monitor` computes windows in worker threads).

    python bench/profile_threads.py page OUT.prof pages/model_health.py '{"model": "lake_churn"}' cold|warm
    python bench/profile_threads.py monitor OUT.prof --db DB --model lake_churn --since 2026-11-26 --force

`page` profiles one run of the page (its first after the app's first script run, or a warm
one) on $LIFECYCLE_DB; `monitor` profiles a `python -m lifecycle monitor` with those
arguments. Read the result with pstats (sort by cumulative time, filter on 'lifecycle').
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROFILES: list[cProfile.Profile] = []
ACTIVE = {"on": True}
_run = threading.Thread.run


def _profiled_run(self):
    if not ACTIVE["on"]:
        return _run(self)
    profile = cProfile.Profile()
    PROFILES.append(profile)
    profile.enable()
    try:
        return _run(self)
    finally:
        profile.disable()


def _page(page: str, params: str, which: str) -> None:
    from streamlit.testing.v1 import AppTest

    ACTIVE["on"] = False
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    at.run()
    at.switch_page(page)
    for key, value in json.loads(params).items():
        at.query_params[key] = value
    if which == "warm":
        at.run()
    ACTIVE["on"] = True
    began = time.perf_counter()
    at.run()
    print(f"{which} run: {time.perf_counter() - began:.2f}s")
    ACTIVE["on"] = False


def _monitor(args: list[str]) -> None:
    from lifecycle import cli

    main = cProfile.Profile()
    PROFILES.append(main)
    main.enable()
    with contextlib.suppress(SystemExit):  # the command's exit code
        cli.main(["monitor", *args])
    main.disable()


def main() -> None:
    what, out = sys.argv[1], sys.argv[2]
    threading.Thread.run = _profiled_run
    if what == "page":
        _page(*sys.argv[3:6])
    else:
        _monitor(sys.argv[3:])
    stats = pstats.Stats(PROFILES[0])
    for profile in PROFILES[1:]:
        with contextlib.suppress(TypeError):  # a thread that never ran its target
            stats.add(profile)
    stats.dump_stats(out)
    sys.stdout.flush()
    os._exit(0)  # skip DuckDB's teardown noise


if __name__ == "__main__":
    main()
