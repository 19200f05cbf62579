"""The first-start setup: runs in the background of the app's process, once, and resumes.

The end-to-end run on a real (small) demo is in tests/test_app.py and, in Chromium with the
tab closed and the app restarted mid-setup, in tests/test_browser_first_start.py.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from lifecycle import catalog, first_start
from lifecycle.ingest import ingest
from lifecycle.store import Store
from tests.conftest import toy_predictions, write_toy_spec
from ui import runtime


def _toy_database(path, tmp_path, *, pending: bool) -> None:
    """A database with the toy model's logs and no monitoring results, closed."""
    with Store(path) as store:
        catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
        ingest(store, "toy", "predictions", toy_predictions(3000))
        if pending:
            first_start.mark_pending(store)


def _counts(store: Store) -> tuple[int, int]:
    row = store.query_one(
        "SELECT (SELECT count(*) FROM monitor_results), (SELECT count(*) FROM check_runs)"
    )
    return int(row[0]), int(row[1])


def test_a_pending_setup_resumes_with_monitoring_and_the_first_check(tmp_path):
    path = tmp_path / "db.duckdb"
    _toy_database(path, tmp_path, pending=True)
    job = runtime.setup_job(path)
    assert job is not None
    assert job.wait(timeout=120) and job.error is None, job.error
    store = runtime.store_for(path)
    results, checks = _counts(store)
    assert results > 0 and checks == 1
    assert not first_start.is_pending(store)
    assert "1 model(s) monitored" in job.result
    # the first check is as of the end of the logs, not the wall clock: hours after the
    # demo's last prediction are not read as an outage
    newest, as_of = store.query_one(
        "SELECT (SELECT max(ts) FROM predictions), (SELECT as_of FROM check_runs)"
    )
    assert as_of == first_start.logs_end(store)
    assert timedelta(0) < as_of - newest <= timedelta(hours=1)
    # done: neither this process nor a restarted one runs it again
    assert runtime.setup_job(path) is job
    runtime.shutdown()
    assert runtime.setup_job(path) is None
    assert _counts(runtime.store_for(path)) == (results, 1)


def test_a_database_without_a_pending_setup_is_left_alone(tmp_path):
    path = tmp_path / "db.duckdb"
    _toy_database(path, tmp_path, pending=False)  # e.g. built by `python -m lifecycle demo`
    assert runtime.setup_job(path) is None
    assert _counts(runtime.store_for(path)) == (0, 0)


def test_a_setup_interrupted_mid_monitoring_finishes_on_the_next_start(tmp_path, monkeypatch):
    path = tmp_path / "db.duckdb"
    _toy_database(path, tmp_path, pending=True)
    real_report = runtime.Job.report

    def stop_after_first_window(job, fraction, text, still=""):
        real_report(job, fraction, text, still)
        if ", 1 of " in text:
            job.cancel()  # as a shutdown would: the next report stops the work

    monkeypatch.setattr(runtime.Job, "report", stop_after_first_window)
    first = runtime.setup_job(path)
    assert first.wait(timeout=60) and first.error and "stopped" in first.error
    store = runtime.store_for(path)
    partial, checks = _counts(store)
    assert partial > 0 and checks == 0 and first_start.is_pending(store)
    monkeypatch.setattr(runtime.Job, "report", real_report)
    runtime.shutdown()  # a restart of the app
    resumed = runtime.setup_job(path)
    assert resumed is not None and resumed is not first
    assert resumed.wait(timeout=120) and resumed.error is None, resumed.error
    results, checks = _counts(runtime.store_for(path))
    assert results > partial and checks == 1


def test_a_build_stopped_midway_leaves_no_database_behind(tmp_path, monkeypatch):
    """Pages wait for the file: a half-built demo must never appear at the path."""
    monkeypatch.setenv(first_start.DEMO_DAYS_ENV, "7")
    path = tmp_path / "db.duckdb"
    real_report = runtime.Job.report

    def stop_while_serving(job, fraction, text, still=""):
        real_report(job, fraction, text, still)
        if "serving" in text:  # the side file exists by now
            assert path.with_name(path.name + ".building").exists()
            job.cancel()

    monkeypatch.setattr(runtime.Job, "report", stop_while_serving)
    job = runtime.setup_job(path)
    assert job.wait(timeout=300) and "stopped" in job.error
    assert sorted(p.name for p in tmp_path.iterdir()) == []


class _BlockedSetup:
    """Stands in for first_start.run_setup: reports progress, then waits to be released."""

    def __init__(self, creates_database=None):
        self.calls = 0
        self.release = threading.Event()
        self.creates_database = creates_database

    def __call__(self, path, open_store, report, **kwargs):
        self.calls += 1
        report(0.4, "step 2 of 5: first monitoring of churn - day windows, 12 of 30",
               "Still to compute: first monitoring of delivery_time; the first alert check.")  # fmt: skip
        assert self.release.wait(timeout=60)
        if self.creates_database:
            self.creates_database(path)
        return "done"


def test_sessions_arriving_together_start_one_setup(tmp_path, monkeypatch):
    fake = _BlockedSetup()
    monkeypatch.setattr(first_start, "run_setup", fake)
    path = tmp_path / "missing.duckdb"
    seen, barrier = [], threading.Barrier(8)

    def session():
        barrier.wait()
        seen.append(runtime.setup_job(path))

    threads = [threading.Thread(target=session) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(job) for job in seen}) == 1 and seen[0].running
    fake.release.set()
    assert seen[0].wait(timeout=10) and seen[0].result == "done"
    assert runtime.setup_job(path) is seen[0]  # a finished setup is not started again
    assert fake.calls == 1


def test_pages_show_setup_progress_and_wait_for_the_database(app_on, tmp_path, monkeypatch):
    def create(path):
        _toy_database(path, tmp_path, pending=False)

    fake = _BlockedSetup(creates_database=create)
    monkeypatch.setattr(first_start, "run_setup", fake)
    path = tmp_path / "fresh" / "db.duckdb"
    at = app_on(path)
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "Setting up the app (first start)" in text
    assert "closing or reloading this tab does not stop it" in text
    assert "Still to compute: first monitoring of delivery_time" in text
    bar = at.get("progress")[0].proto
    assert bar.value == 40 and "first monitoring of churn" in bar.text
    assert not at.title  # no page opened the database the build is about to move into place
    assert not path.exists()

    fake.release.set()
    assert runtime.job(runtime.setup_name(path)).wait(timeout=10)
    at = app_on(path)  # a new session (AppTest's second run would skip app.py)
    assert at.title[0].value == "Overview"
    assert "Setting up the app" not in " ".join(m.value for m in at.markdown)
    assert fake.calls == 1


def test_a_failed_setup_is_shown_with_a_retry(app_on, tmp_path, monkeypatch):
    def broken(path, open_store, report, **kwargs):
        raise first_start.SetupError("LIFECYCLE_DEMO_DAYS='x' is not a whole number of days")

    monkeypatch.setattr(first_start, "run_setup", broken)
    path = tmp_path / "db.duckdb"
    at = app_on(path)
    runtime.job(runtime.setup_name(path)).wait(timeout=10)
    at = app_on(path)
    assert "First-start setup failed" in at.error[0].value
    assert "not a whole number of days" in at.error[0].value
    assert not at.title  # still no database to show

    monkeypatch.setattr(first_start, "run_setup", _BlockedSetup())
    at.button(key="retry_setup").click().run()
    retried = runtime.job(runtime.setup_name(path))
    assert retried.running and retried.error is None
    retried_setup = first_start.run_setup
    retried_setup.release.set()
    assert retried.wait(timeout=10) and retried.result == "done"


def test_demo_days_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(first_start.DEMO_DAYS_ENV, raising=False)
    assert first_start.demo_days() == 90
    monkeypatch.setenv(first_start.DEMO_DAYS_ENV, "14")
    assert first_start.demo_days() == 14
    for bad in ("x", "3"):
        monkeypatch.setenv(first_start.DEMO_DAYS_ENV, bad)
        with pytest.raises(first_start.SetupError, match=first_start.DEMO_DAYS_ENV):
            first_start.demo_days()


def test_a_database_held_by_another_process_is_named_not_a_traceback(app_on, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "db.duckdb"
    _toy_database(path, tmp_path, pending=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(120)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        at = app_on(path)
        assert "held by another process" in at.error[0].value
        assert runtime.job(runtime.setup_name(path)) is None
    finally:
        holder.kill()
        holder.wait()
