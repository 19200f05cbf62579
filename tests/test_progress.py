"""Progress output: a rewritten line on a terminal, a bounded number of whole lines in a log."""

from __future__ import annotations

import io
import subprocess
import sys

from lifecycle import catalog
from lifecycle.progress import Reporter, elapsed_text
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import write_toy_spec
from tests.test_check import FAST_DRIFT, serve_day


class Clock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_log_gets_a_line_per_tenth_not_per_step():
    out = io.StringIO()
    reporter = Reporter(out, tty=False, clock=Clock(0.01))
    for done in range(1, 301):
        reporter.step("monitor m day", done, 300, f"window {done}/300")
    reporter.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 11  # the first step, then each 10%
    assert lines[0].startswith("monitor m day: window 1/300 [")
    assert lines[-1].startswith("monitor m day: window 300/300 [")


def test_log_gets_a_line_every_30_seconds_in_a_slow_run():
    out = io.StringIO()
    reporter = Reporter(out, tty=False, clock=Clock(10.0))  # 10 s per step, 1,000 steps
    for done in range(1, 1001):
        reporter.step("t", done, 1000, f"{done}")
    lines = out.getvalue().splitlines()
    assert 300 <= len(lines) <= 345  # one per 30 s (plus the tenths), not one per step
    assert lines[1].startswith("t: 4 [")  # three steps (30 s) after the first
    assert lines[-1].startswith("t: 1000 [")


def test_tasks_are_counted_separately():
    out = io.StringIO()
    reporter = Reporter(out, tty=False, clock=Clock(0.01))
    for task in ("monitor a day", "monitor a chunk:500", "monitor b day"):
        for done in range(1, 4):
            reporter.step(task, done, 3, f"{done}/3")
    assert len(out.getvalue().splitlines()) == 9  # three steps of three short tasks each


def test_terminal_rewrites_one_line():
    out = io.StringIO()
    reporter = Reporter(out, tty=True)
    for done in range(1, 51):
        reporter.step("t", done, 50, f"window {done}/50")
    assert out.getvalue().count("\r") == 50 and "\n" not in out.getvalue()
    reporter.close()
    assert out.getvalue().endswith("window 50/50\n")


def test_messages_are_logged_when_they_change():
    out = io.StringIO()
    reporter = Reporter(out, tty=False, clock=Clock(1.0))
    for text in ("training", "training", "serving", "serving", "done"):
        reporter.message(text)
    assert [line.split(" [")[0] for line in out.getvalue().splitlines()] == [
        "training", "serving", "done"
    ]  # fmt: skip


def test_elapsed_text():
    assert [elapsed_text(s) for s in (0, 59.9, 61, 3600 + 120)] == ["0s", "59s", "1m01s", "1h02m"]


def test_monitor_in_a_log_writes_lines_not_carriage_returns(tmp_path):
    """`monitor` with stderr to a file (a cron log): 48 hourly windows give a line at each
    tenth, with counts and elapsed time, then the summary."""
    spec = write_toy_spec(tmp_path / "spec", rows=500)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    db = tmp_path / "toy.duckdb"
    with Store(db) as store:
        catalog.register_from_file(store, spec)
        for day in range(2):
            serve_day(store, day, rows=240, labels=False)
    run = subprocess.run(
        [sys.executable, "-m", "lifecycle", "monitor", "--db", str(db), "--grain", "hour"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr
    lines = run.stderr.splitlines()
    assert 2 <= len(lines) <= 12, run.stderr
    assert all(line.startswith("monitor toy hour: window ") for line in lines)
    assert lines[-1].startswith("monitor toy hour: window 48/48 (48 computed, 0 unchanged;")
    assert all(line.endswith("s]") for line in lines)
    assert "48 hour window(s)" in run.stdout
