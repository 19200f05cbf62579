"""Scale bench on a prediction lake (bench/lake_gen.py): logs read in place, never copied.

    python bench/lake_bench.py --lake bench/out/lake10m --predictions 10000000
    python bench/lake_bench.py --lake bench/out/lake10m --phases pages     # one phase again

Phases (each recorded into bench/out/lake_bench-<lake name>.json as it finishes, so phases
can be run separately and the table printed with --table):
  gen       generate the lake (skipped when it exists): time, rows/s, disk size
  register  the three specs into a fresh database: time, database file size
  monitor   the first full monitoring run (DuckDB engine, `python -m lifecycle monitor`):
            wall, CPU, peak RSS; the database's stored rows before/after (no log copied)
  append    one new day (`lake_gen.py --append-day`), then the incremental monitoring run
  pages     every page's cold (first run in a fresh app process) and warm server time, and
            each app process's peak RSS (Streamlit's AppTest, as bench/page_bench.py); "app
            start" is the fresh process's first run, which renders the Overview cold

Every heavy step runs in its own process under /usr/bin/time -v (one at a time), and the
load average is noted before and after each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MODELS = ("lake_churn", "lake_fraud", "lake_eta")
PHASES = ("gen", "register", "monitor", "append", "pages")
PROGRESS = ROOT / "bench/out/lake_bench.progress"  # stderr of the step running now


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def timed(cmd: list[str], **kwargs) -> dict:
    """Run `cmd` under /usr/bin/time -v: wall, user+sys CPU, peak RSS, output."""
    before = loadavg()
    began = time.perf_counter()
    # stderr (the command's progress lines, then time's report) goes to a file one can tail
    with open(PROGRESS, "w+") as progress:
        child = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE,
                                 stderr=progress, text=True, cwd=ROOT, **kwargs)  # fmt: skip
        tree = TreeMemory(child.pid)
        tree.start()
        out, _ = child.communicate()
        tree.stop = True
        tree.join()
        done = subprocess.CompletedProcess(cmd, child.returncode, out)
        progress.seek(0)
        err = progress.read()
    wall = time.perf_counter() - began

    def field(label: str) -> float:
        found = re.findall(rf"{re.escape(label)}: ([\d.]+)", err)
        return float(found[-1]) if found else float("nan")

    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{err[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(field("User time (seconds)") + field("System time (seconds)"), 2),
        "peak_rss_mb": round(field("Maximum resident set size (kbytes)") / 1024),
        # the command with its worker processes (time -v reports the largest one only)
        "peak_tree_rss_mb": round(tree.peak / 2**20),
        "load_before": before,
        "load_after": loadavg(),
        "stdout": done.stdout,
        "stderr_tail": err.split("\tCommand being timed")[0][-2000:],
    }


class TreeMemory(threading.Thread):
    """Samples, every 0.5 s, the summed RSS of a process and its descendants (/proc)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, sum(_rss(p) for p in _descendants(self.pid)))
            time.sleep(0.5)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():  # /proc/self, /proc/meminfo, ...
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def db_rows(db: Path) -> dict[str, int]:
    """Stored rows per table, read in a child process (the bench holds no database)."""
    code = (
        "import json,sys; from lifecycle.store import Store; s = Store(sys.argv[1]); "
        "print(json.dumps(s.row_counts())); s.close()"
    )
    out = subprocess.run([PYTHON, "-c", code, str(db)], capture_output=True, text=True,
                         cwd=ROOT, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def log_rows(rows: dict[str, int]) -> dict[str, int]:
    """The stored log tables among `rows` (what a copy of the lake would fill)."""
    logs = ("predictions", "labels", "business_events")
    return {k: v for k, v in rows.items() if k in logs or k.startswith("features__")}


def db_size(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# -- phases -------------------------------------------------------------------------------


def phase_gen(args) -> dict:
    if (args.lake / "lake_gen.json").exists():
        return {"skipped": "lake exists", **json.loads((args.lake / "lake_gen.json").read_text())}
    cmd = [PYTHON, "bench/lake_gen.py", "--out", str(args.lake),
           "--predictions", str(args.predictions), "--format", args.format]  # fmt: skip
    run = timed(cmd)
    figures = json.loads(run.pop("stdout").strip().splitlines()[-1])
    return {**run, **figures}


def phase_register(args) -> dict:
    for path in (args.db, args.db.with_name(args.db.name + ".wal")):
        path.unlink(missing_ok=True)
    runs = {}
    for model in MODELS:
        spec = args.lake / "specs" / f"{model}.toml"
        run = timed([PYTHON, "-m", "lifecycle", "register", "--db", str(args.db), str(spec)])
        runs[model] = {k: run[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    rows = db_rows(args.db)
    return {"per_spec": runs, "db_bytes": db_size(args.db), "log_rows": log_rows(rows)}


def _monitor(args) -> dict:
    before = log_rows(db_rows(args.db))
    since = ["--since", args.since] if args.since else []
    workers = ["--workers", str(args.workers)] if args.workers else []
    run = timed([PYTHON, "-m", "lifecycle", "monitor", "--db", str(args.db), "--json", *since,
                 *workers])  # fmt: skip
    summaries = json.loads(run.pop("stdout"))
    after = log_rows(db_rows(args.db))
    runs = summaries if isinstance(summaries, list) else summaries.get("runs", [summaries])
    keys = ("windows", "computed", "label_computed", "skipped", "seconds", "findings")
    windows = {r["model"]: {k: r.get(k) for k in keys} for r in runs}
    return {**run, "since": args.since, "windows": windows, "log_rows_before": before,
            "log_rows_after": after, "db_bytes": db_size(args.db)}  # fmt: skip


def phase_monitor(args) -> dict:
    return _monitor(args)


def phase_append(args) -> dict:
    gen = timed([PYTHON, "bench/lake_gen.py", "--out", str(args.lake), "--append-day"])
    figures = json.loads(gen.pop("stdout").strip().splitlines()[-1])
    return {"append": {**gen, **figures}, "monitor": _monitor(args)}


PAGE_CHILD = r"""
import json, os, resource, sys, time
from streamlit.testing.v1 import AppTest
page, params, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
began = time.perf_counter()
at = AppTest.from_file("app.py", default_timeout=900)
at.run()
app_first = time.perf_counter() - began
at.switch_page(page)
for key, value in params.items():
    at.query_params[key] = value
began = time.perf_counter()
at.run()
cold = time.perf_counter() - began
problems = [e.value for e in at.exception] + [e.value for e in at.error]
warm = []
for _ in range(runs):
    began = time.perf_counter()
    at.run()
    warm.append(time.perf_counter() - began)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"app_first_s": app_first, "cold_s": cold, "warm_s": warm,
                  "problems": [str(p)[:300] for p in problems], "peak_rss_mb": rss}))
sys.stdout.flush()
os._exit(0)
"""


def views(end: str, week: str) -> list[tuple[str, str, dict[str, str]]]:
    cell_day = end + "T00:00"
    return [
        ("Overview", "pages/overview.py", {}),
        *[(f"Model health: {m}", "pages/model_health.py", {"model": m}) for m in MODELS],
        *[(f"Drift: {m}", "pages/drift.py", {"model": m}) for m in MODELS],
        ("Drift: lake_churn, a chosen cell", "pages/drift.py",
         {"model": "lake_churn", "feature": "account_age_days", "window": cell_day}),
        ("Alerts inbox", "pages/alerts.py", {}),
        ("Weekly review", "pages/weekly_review.py", {"week": week}),
        ("Registry", "pages/registry.py", {}),
        ("Version detail: lake_fraud 1.0", "pages/version.py",
         {"model": "lake_fraud", "version": "1.0"}),
        ("Audit log", "pages/audit.py", {}),
    ]  # fmt: skip


def phase_pages(args) -> dict:
    manifest = json.loads((args.lake / "lake_gen.json").read_text())
    import datetime as dt

    start = dt.date.fromisoformat(manifest["end"]) - dt.timedelta(days=manifest["days"] - 1)
    last = start + dt.timedelta(days=manifest["days_written"] - 1)
    monday = last - dt.timedelta(days=last.weekday() + 7)  # the last complete ISO week
    week = f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}"
    copy = args.db.with_name("lake_pages.duckdb")
    copy.with_name(copy.name + ".wal").unlink(missing_ok=True)
    shutil.copyfile(args.db, copy)
    env = {**os.environ, "LIFECYCLE_DB": str(copy)}
    out = {}
    for name, page, params in views(str(last - dt.timedelta(days=3)), week):
        done = subprocess.run(
            [PYTHON, "-c", PAGE_CHILD, page, json.dumps(params), str(args.runs)],
            capture_output=True, text=True, cwd=ROOT, env=env,
        )  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            out[name] = {"error": done.stderr[-1500:]}
            print(f"{name}: failed\n{done.stderr[-1500:]}", file=sys.stderr)
            continue
        result = json.loads(lines[-1])
        result["warm_median_s"] = statistics.median(result["warm_s"])
        out[name] = result
        print(f"{name:<36} app start {result['app_first_s']:5.2f}s  cold {result['cold_s']:6.2f}s  warm median "
              f"{result['warm_median_s']:5.2f}s  worst {max(result['warm_s']):5.2f}s  "
              f"rss {result['peak_rss_mb']} MB {result['problems'] or ''}", file=sys.stderr,
              flush=True)  # fmt: skip
    return {"pages": out, "load_after": loadavg()}


RUNNERS = {"gen": phase_gen, "register": phase_register, "monitor": phase_monitor,
           "append": phase_append, "pages": phase_pages}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, default=ROOT / "bench/out/lake10m")
    parser.add_argument("--predictions", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("parquet", "delta"), default="parquet")
    parser.add_argument("--db", type=Path, help="default: bench/out/<lake name>.duckdb")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated")
    parser.add_argument("--tag", help="names the database and results file of this run")
    parser.add_argument("--since", help="monitor only windows from this date on (both runs)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs per page (default 3)")
    parser.add_argument("--workers", type=int, help="monitor's --workers (default: its own)")
    args = parser.parse_args()
    args.lake = args.lake.resolve()
    name = args.lake.name + (f"-{args.tag}" if args.tag else "")
    args.db = (args.db or ROOT / "bench/out" / f"{name}.duckdb").resolve()
    results_path = ROOT / "bench/out" / f"lake_bench-{name}.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    for phase in args.phases.split(","):
        print(f"== {phase} (load {loadavg()})", file=sys.stderr, flush=True)
        results[phase] = {**RUNNERS[phase](args), "finished": time.strftime("%H:%M:%S")}
        results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        shown = {k: v for k, v in results[phase].items() if k not in ("pages", "stderr_tail")}
        print(json.dumps(shown, default=str)[:1500], file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
