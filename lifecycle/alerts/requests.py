"""Running `check` (and `report`) while the app holds the database: a request queue the app's
process serves.

DuckDB lets one process open the file, and the app holds it for its whole life. So `check`
in another process (cron, Airflow) that finds the file locked writes its parameters as a
request file into `<db>.inbox/checks/pending/` and waits; the app's process runs the check
on its own Store (a background thread started with the app, `Worker`) and writes the report
to `checks/done/<ticket>.json`, which the waiting command prints and turns into its exit
code. Files are written under a temporary name and renamed, so no reader sees half a file.
A request is served once: it is moved to `checks/running/` before the check starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, ClassVar

from lifecycle.inbox import inbox_dir
from lifecycle.store import Store

PENDING, RUNNING, DONE = "pending", "running", "done"


def checks_dir(db_path: str | os.PathLike) -> Path:
    return inbox_dir(db_path) / "checks"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.rename(path)


def submit(db_path: str | os.PathLike, params: dict[str, Any]) -> str:
    """Queue a check request; return its ticket."""
    ticket = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}"
    _write_json(checks_dir(db_path) / PENDING / f"{ticket}.json", {"ticket": ticket, **params})
    return ticket


def result(db_path: str | os.PathLike, ticket: str) -> dict[str, Any] | None:
    path = checks_dir(db_path) / DONE / f"{ticket}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def serve(store: Store) -> list[str]:
    """Run every pending check request on `store`, oldest first; return their tickets."""
    from lifecycle.alerts.check import EXIT_ERROR, run_params

    root = checks_dir(store.path)
    served = []
    for path in sorted((root / PENDING).glob("*.json")):
        running = root / RUNNING / path.name
        running.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.rename(running)  # claim it: a second server finds it gone
        except FileNotFoundError:
            continue
        params = json.loads(running.read_text(encoding="utf-8"))
        try:
            if params.get("kind") == "report":
                outcome = {"exit_code": 0, "report": {}, "text": write_report(store, params)}
            else:
                report = run_params(store, params)
                outcome = {"exit_code": report.exit_code, "report": report.to_dict(),
                           "text": report.text()}  # fmt: skip
        except Exception as exc:  # the waiting command must hear about any failure
            outcome = {
                "exit_code": EXIT_ERROR,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
            }
        _write_json(root / DONE / path.name, {**params, **outcome})
        running.unlink(missing_ok=True)
        served.append(params["ticket"])
    return served


def write_report(store: Store, params: dict[str, Any]) -> str:
    """Write the weekly review file a `report` request asks for; return what was written."""
    from lifecycle.alerts import report

    out = Path(params["out"])
    review = report.weekly_review(
        store, params["week"], models=params.get("models"), app_url=params.get("app_url")
    )
    text = report.render(review, out.suffix.lower())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return (
        f"wrote {out} ({len(text):,} characters): {len(review.models)} model(s), week {review.week}"
    )


def check_via_app(db_path: Path, params: dict[str, Any], wait: float, *, as_json: bool) -> int:
    """Queue the check for the process holding the database and print its outcome."""
    from lifecycle.alerts.check import EXIT_ERROR, print_report

    ticket = submit(db_path, params)
    print(
        f"database {db_path} is held by another process (the app?): "
        f"{params.get('kind', 'check')} queued as {ticket} "
        f"in {checks_dir(db_path) / PENDING}; waiting up to {wait:.0f}s",
        file=sys.stderr,
    )
    deadline = time.monotonic() + wait
    while (outcome := result(db_path, ticket)) is None:
        if time.monotonic() >= deadline:
            print(
                f"error: no answer after {wait:.0f}s; the request stays queued and runs when "
                "the app picks it up (is the app running this version?)",
                file=sys.stderr,
            )
            return EXIT_ERROR
        time.sleep(0.5)
    if "error" in outcome:
        print(f"error: the check failed in the app: {outcome['error']}", file=sys.stderr)
        return EXIT_ERROR
    print_report(outcome["report"], outcome["text"], as_json=as_json)
    return int(outcome["exit_code"])


class Worker:
    """Background thread of the app: serves check requests every `interval` seconds."""

    _started: ClassVar[dict[str, Worker]] = {}
    _lock = threading.Lock()

    def __init__(self, store: Store, interval: float = 2.0):
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="check-requests", daemon=True)
        self.last_error: str | None = None

    @classmethod
    def start_for(cls, store: Store, interval: float = 2.0) -> Worker:
        """Start one worker per database file in this process (idempotent)."""
        key = str(Path(store.path).resolve())
        with cls._lock:
            worker = cls._started.get(key)
            if worker is None or not worker._thread.is_alive() or worker.store is not store:
                if worker is not None:
                    worker.stop()
                worker = cls(store, interval)
                worker._thread.start()
                cls._started[key] = worker
            return worker

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                serve(self.store)
                self.last_error = None
            except Exception as exc:  # keep serving; the inbox page shows the last error
                self.last_error = f"{type(exc).__name__}: {exc}"
