"""Commands that run while another process (the app) holds the database: a request queue.

DuckDB lets one process open the file, and the app holds it for its whole life. A command
such as `register`, `monitor`, `check`, `report` or `registry approve` runs through `run()`:
it opens the file if it can and runs the request's handler right there; if another process
holds the file, it writes the request as JSON into `<db>.inbox/requests/pending/` and waits
while the holder's background thread (`Worker`, started with the app's store) runs the very
same handler on its own store and writes the outcome to `requests/done/<ticket>.json`. Either
way the command prints the same output and exits with the same code.

Files are written under a temporary name and renamed, so no reader sees half a file. A
request is served once: the server claims it by moving it to `running/`. A command that stops
waiting (answer, timeout, Ctrl-C, SIGTERM) withdraws its request if it was not claimed yet,
and every request expires when its command's wait does (so even a SIGKILLed command's
request is never acted on late). The waiting command deletes the outcome it read; a new
serving process answers requests a dead one had claimed and sweeps unread outcomes after a
day. One request runs at a time: a long `monitor` or `check` delays the rest, whose requests
then expire cleanly rather than run late.

Who may do what is decided by the process that acts, never by the request: a request carries
the caller's API token ($LIFECYCLE_TOKEN) and the acting process verifies it against its own
identity configuration and takes the roles from there (lifecycle.identity; in development
mode, no token configured, the named actor is believed and answers say so). The queue is
created private to its OS user (0700 folders, 0600 files); a pending request holds the
token until the acting process claims it, and no outcome file keeps it. The app still reads
the spec files and writes the report files that requests name (as its OS user).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lifecycle.identity import TOKEN_ENV, ConfigError, caller_token, load_identity_config
from lifecycle.inbox import Periodic, inbox_dir, new_ticket, private_dir, write_json
from lifecycle.store import DatabaseLocked, Store, open_store

PENDING, RUNNING, DONE = "pending", "running", "done"

# request kind -> "module:function(store, params) -> Outcome"; imported when first served
HANDLERS: dict[str, str] = {
    "check": "lifecycle.alerts.check:serve_request",
    "monitor": "lifecycle.monitor:serve_request",
    "report": "lifecycle.alerts.report:serve_request",
    "results": "lifecycle.results_cli:serve_request",
    "register": "lifecycle.cli:serve_register",
    "import_mlflow": "lifecycle.mlflow_import:serve_request",
    "registry": "lifecycle.registry.cli:serve_request",
}


@dataclass
class Outcome:
    """What a command prints and exits with, wherever it ran."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def emit(self) -> int:
        if self.stdout:
            print(self.stdout)
        if self.stderr:
            print(self.stderr, file=sys.stderr)
        return self.exit_code

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(int(data["exit_code"]), data.get("stdout", ""), data.get("stderr", ""),
                   data.get("data") or {})  # fmt: skip


def requests_dir(db_path: str | os.PathLike) -> Path:
    return inbox_dir(db_path) / "requests"


def _handler(kind: str):
    if kind not in HANDLERS:
        raise ValueError(f"unknown request kind {kind!r}; known: {', '.join(HANDLERS)}")
    module, function = HANDLERS[kind].split(":")
    return getattr(importlib.import_module(module), function)


def execute(store: Store, params: dict[str, Any]) -> Outcome:
    """Run one request on `store`. Refusals come back as the handler's Outcome; anything
    unexpected becomes the request's `error_exit` with the error named, here and in the app
    alike."""
    try:
        return _handler(params["kind"])(store, params)
    except Exception as exc:
        return Outcome(
            int(params.get("error_exit", 2)),
            stderr=f"error: {params.get('kind', 'request')} failed: {type(exc).__name__}: {exc}",
            data={"traceback": traceback.format_exc(limit=5)},
        )


def run(
    db_path: str | os.PathLike, params: dict[str, Any], *, wait: float, open_wait: float = 0.5
) -> int:
    """Run a request here if the database can be opened, else through its holder; print the
    outcome and return its exit code. `params` needs `kind`, and `error_exit`: the exit code
    for a failure or no answer within `wait` seconds. A handler sees `here=True` when it
    runs in the calling process (it may then print progress)."""
    try:
        store = open_store(db_path, wait_seconds=open_wait)
    except DatabaseLocked:
        return via_holder(db_path, params, wait).emit()
    with store:
        return execute(store, {**params, "here": True}).emit()


def submit(db_path: str | os.PathLike, params: dict[str, Any], wait: float) -> str:
    """Queue a request that expires `wait` seconds from now; return its ticket."""
    ticket = new_ticket()
    request = {
        "token": caller_token(),
        **params,
        "ticket": ticket,
        "expires_at": time.time() + wait,
    }
    request.pop("here", None)
    write_json(requests_dir(db_path) / PENDING / f"{ticket}.json", request)
    return ticket


def result(db_path: str | os.PathLike, ticket: str, *, consume: bool = False) -> dict | None:
    """The outcome of a served request, or None; `consume` deletes it once read."""
    path = requests_dir(db_path) / DONE / f"{ticket}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if consume:
        path.unlink(missing_ok=True)
    return data


def withdraw(db_path: str | os.PathLike, ticket: str) -> bool:
    """Take back a request nobody has claimed; False if the holder already runs (or ran) it."""
    try:
        (requests_dir(db_path) / PENDING / f"{ticket}.json").unlink()
    except FileNotFoundError:
        return False
    return True


def via_holder(db_path: str | os.PathLike, params: dict[str, Any], wait: float) -> Outcome:
    """Queue the request for the process holding the database and wait for its outcome.

    However the wait ends (answer, timeout, Ctrl-C, SIGTERM), a request not yet claimed is
    withdrawn; a SIGKILLed command's request expires with its wait instead (see serve)."""
    with _terminate_as_interrupt():  # before the request exists, or a SIGTERM could orphan it
        ticket = submit(db_path, params, wait)
        try:
            print(
                f"database {db_path} is held by another process (the app?): {params['kind']} "
                f"queued as {ticket} in {requests_dir(db_path) / PENDING}; waiting up to "
                f"{wait:.0f}s",
                file=sys.stderr,
            )
            return _wait_for(db_path, ticket, params, wait)
        finally:
            withdraw(db_path, ticket)


def _wait_for(db_path: str | os.PathLike, ticket: str, params: dict, wait: float) -> Outcome:
    deadline = time.monotonic() + wait
    while (outcome := result(db_path, ticket, consume=True)) is None:
        if time.monotonic() >= deadline:
            return _timed_out(db_path, ticket, params, wait)
        time.sleep(0.25)
        if (local := _run_if_released(db_path, ticket, params)) is not None:
            return local
    return Outcome.from_dict(outcome)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a scheduler's timeout) unwinds like Ctrl-C, so the request is withdrawn."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_if_released(db_path: str | os.PathLike, ticket: str, params: dict) -> Outcome | None:
    """The holder may have been a short-lived command, not the app: once the file is free,
    take the request back and run it here."""
    try:
        store = open_store(db_path)
    except DatabaseLocked:
        return None
    with store:
        if not withdraw(db_path, ticket):
            return None  # claimed before we got the file: its outcome is on its way
        return execute(store, {**params, "here": True})


CLAIMED_GRACE = 10.0  # seconds to wait for a claimed request's outcome after the deadline


def _timed_out(db_path: str | os.PathLike, ticket: str, params: dict, wait: float) -> Outcome:
    if withdraw(db_path, ticket):
        return Outcome(
            int(params["error_exit"]),
            stderr=f"error: no answer after {wait:.0f}s; request {ticket} withdrawn, nothing "
            "was done (is the app that holds the database running this version?)",
        )
    # the app claimed it: it may be finishing right now
    deadline = time.monotonic() + CLAIMED_GRACE
    while time.monotonic() < deadline:
        if (outcome := result(db_path, ticket, consume=True)) is not None:
            return Outcome.from_dict(outcome)
        time.sleep(0.25)
    done = requests_dir(db_path) / DONE / f"{ticket}.json"
    return Outcome(
        int(params["error_exit"]),
        stderr=f"error: no answer after {wait:.0f}s; the app is still running request "
        f"{ticket}; its outcome will be in {done}",
    )


def serve(store: Store) -> list[str]:
    """Run every pending request on `store`, oldest first; return their tickets. A request
    whose caller stopped waiting (expired) is answered without running."""
    root = requests_dir(store.path)
    served = []
    for path in sorted((root / PENDING).glob("*.json")):
        running = private_dir(root / RUNNING) / path.name
        try:
            path.rename(running)  # claim it: a second server, or a withdrawal, finds it gone
        except FileNotFoundError:
            continue
        _answer(root, running, _serve_one(store, running))
        served.append(path.stem)
    return served


def _serve_one(store: Store, running: Path) -> tuple[dict, Outcome]:
    try:
        params = json.loads(running.read_text(encoding="utf-8"))
        if not isinstance(params, dict) or "kind" not in params:
            raise ValueError("not a request object with a `kind`")
    except (OSError, ValueError) as exc:
        return {}, Outcome(2, stderr=f"error: unreadable request {running.name}: {exc}")
    if time.time() > float(params.get("expires_at", float("inf"))):
        return params, Outcome(
            int(params.get("error_exit", 2)),
            stderr="error: the request expired before the app reached it (its command had "
            "stopped waiting); nothing was done",
        )
    params.pop("here", None)  # only the calling process runs a request "here"
    refused = _unverified(params)
    if refused is not None:
        return params, refused
    return params, execute(store, params)


def _unverified(params: dict) -> Outcome | None:
    """With API tokens configured, a queued request of any kind runs only if its token
    verifies (registry and register requests then also need the roles for their action)."""
    try:
        config = load_identity_config()
    except ConfigError as exc:
        return Outcome(2, stderr=f"refused: the app cannot verify requests: {exc}")
    if config.development or config.principal_of(params.get("token")) is not None:
        return None
    return Outcome(
        2,
        stderr=f"refused: the request carries no valid API token (tokens are configured in "
        f"{config.source}; set ${TOKEN_ENV}); nothing was done",
    )


def _answer(root: Path, running: Path, answer: tuple[dict, Outcome]) -> None:
    params, outcome = answer
    params = {k: v for k, v in params.items() if k != "token"}  # outcomes never keep it
    write_json(root / DONE / running.name, {**params, **asdict(outcome)})
    running.unlink(missing_ok=True)


DONE_KEPT_SECONDS = 24 * 3600  # outcomes nobody came to read are swept after a day


def recover(store: Store) -> list[str]:
    """At the start of a serving process: answer requests a dead server had claimed (each
    action is one transaction, so it happened or not; the answer says to check), and sweep
    old unread outcomes. Returns the tickets answered."""
    root = requests_dir(store.path)
    answered = []
    for running in sorted((root / RUNNING).glob("*.json")):
        params: Any = {}
        with contextlib.suppress(OSError, ValueError):
            params = json.loads(running.read_text(encoding="utf-8"))
        params = params if isinstance(params, dict) else {}
        _answer(root, running, (params, Outcome(
            int(params.get("error_exit", 2)),
            stderr="error: the app stopped while running this request; it either finished "
            "or changed nothing (one transaction): check the audit log or the results",
        )))  # fmt: skip
        answered.append(running.stem)
    cutoff = time.time() - DONE_KEPT_SECONDS
    for done in (root / DONE).glob("*.json"):
        with contextlib.suppress(OSError):
            if done.stat().st_mtime < cutoff:
                done.unlink()
    return answered


class Worker(Periodic):
    """Background thread of the app: serves requests every `interval` seconds."""

    thread_name = "requests"
    _started: ClassVar[dict[str, Worker]] = {}
    _lock = threading.Lock()

    @classmethod
    def start_for(cls, store: Store, interval: float = 1.0) -> Worker:
        """Start one worker per database file in this process (idempotent)."""
        key = str(Path(store.path).resolve())
        with cls._lock:
            worker = cls._started.get(key)
            if worker is None or not worker._thread.is_alive() or worker.store is not store:
                if worker is not None:
                    worker.stop()
                recover(store)  # this process is now the one that serves the queue
                worker = cls(store, interval).start()
                cls._started[key] = worker
            return worker

    def tick(self) -> None:
        serve(self.store)
