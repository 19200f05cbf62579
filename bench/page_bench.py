"""Server time of every page on the monitored demo database, with a warm cache.

    python bench/demo_bench.py     # once: builds and monitors bench/out/demo_bench.duckdb
    python bench/page_bench.py [--runs 5]

Each page runs in Streamlit's AppTest (the page's script as the server runs it, without a
browser): once to warm the caches (the first run also computes any monitoring result the
view lacks), then `--runs` more times; the table gives the median and the worst warm run.
Pages run on a copy of the benchmark database, since they may store monitoring results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

MODELS = ("credit_risk", "churn", "delivery_time")
# the demo's pinned end is 2026-11-16: pages open on their default period (the last 30 days)
VIEWS: list[tuple[str, str, dict[str, str]]] = [
    ("Overview", "pages/overview.py", {}),
    *[(f"Model health: {m}", "pages/model_health.py", {"model": m}) for m in MODELS],
    *[(f"Drift: {m}", "pages/drift.py", {"model": m}) for m in MODELS],
    ("Drift: credit_risk, a chosen cell", "pages/drift.py",
     {"model": "credit_risk", "feature": "income", "window": "2026-11-10T00:00"}),
    ("Alerts inbox", "pages/alerts.py", {}),
    ("Weekly review", "pages/weekly_review.py", {"week": "2026-W46"}),
    ("Registry", "pages/registry.py", {}),
    ("Version detail: churn 2.1", "pages/version.py", {"model": "churn", "version": "2.1"}),
    ("Audit log", "pages/audit.py", {}),
]  # fmt: skip


def time_view(page: str, params: dict[str, str], runs: int) -> tuple[float, list[float]]:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page(page)
    for key, value in params.items():
        at.query_params[key] = value
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    if at.exception or at.error:  # an error page is fast, and not what is measured
        problems = [e.value for e in at.exception] + [e.value for e in at.error]
        raise SystemExit(f"{page} {params}: {problems}")
    warm = []
    for _ in range(runs):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    return first, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=str(ROOT / "bench/out/demo_bench.duckdb"))
    parser.add_argument("--runs", type=int, default=5, help="warm runs per page (default 5)")
    args = parser.parse_args()
    source = Path(args.db)
    if not source.exists():
        raise SystemExit(f"no database at {source}; run python bench/demo_bench.py first")
    copy = source.with_name("page_bench.duckdb")
    # a write-ahead log left by an earlier run over the copy no longer matches it
    copy.with_name(copy.name + ".wal").unlink(missing_ok=True)
    shutil.copyfile(source, copy)
    os.environ["LIFECYCLE_DB"] = str(copy)
    os.chdir(ROOT)
    print(f"{'page':<42} {'first run':>10} {'warm median':>12} {'warm worst':>11}")
    medians = []
    for name, page, params in VIEWS:
        first, warm = time_view(page, params, args.runs)
        medians.append(statistics.median(warm))
        print(f"{name:<42} {first:>9.2f}s {medians[-1]:>11.2f}s {max(warm):>10.2f}s", flush=True)
    print(f"median of the pages' warm medians: {statistics.median(medians):.2f}s")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # skip interpreter teardown: DuckDB's bindings print "nanobind: leaked ..." noise there
    os._exit(code)
