"""The app process's store, background workers and jobs: one of each per process, never cached.

They live here, in a module-level singleton behind a lock, and not in st.cache_resource, on
purpose: any browser connected to the app (signed in or not) can ask Streamlit to clear its
caches (the `clear_cache` websocket message, the "Clear caches" menu entry), and "Reload data"
clears the data caches. A cached Store would be reopened after such a clear, with a second
inbox drainer and request worker started beside the first ones (a thread leaked per clear, two
workers serving one queue, a running request answered "the app stopped"). Caches of data
(st.cache_data) stay clearable: they are keyed on the data version and hold no resources.

Long work that must not depend on a browser session (the first-start setup) runs as a named
Job in a thread of this process: started once, whatever number of sessions ask; its progress
(fraction, text, what is still to come) and error are read by every page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle import first_start, inbox, requests, watch
from lifecycle.store import Store, open_store

_LOCK = threading.RLock()
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    path: Path
    store: Store
    drainer: inbox.Drainer
    worker: requests.Worker
    watcher: watch.WatchLoop | None = None  # the landing folder, when one is configured

    def stop(self) -> None:
        self.drainer.stop()
        self.worker.stop()
        if self.watcher is not None:
            self.watcher.stop()
        self.store.close()


_current: Runtime | None = None


def store_for(path: str | Path) -> Store:
    """The process's store of `path`, opened with its inbox drainer, request worker and (if
    configured) landing-folder watcher on first use. Another path (tests switch LIFECYCLE_DB) stops and closes the previous one."""
    global _current
    resolved = Path(path).resolve()
    with _LOCK:
        if _current is not None and _current.path == resolved:
            return _current.store
        if _current is not None:
            _current.stop()
            _current = None
        store = open_store(path, wait_seconds=10)
        drainer = inbox.Drainer(store).start()
        # check, report, register and registry commands from other processes queue for this one
        worker = requests.Worker.start_for(store)
        # [watch] dir in lifecycle.toml or $LIFECYCLE_WATCH_DIR: the same scan as `watch`
        watcher = watch.start_for(store)
        _current = Runtime(resolved, store, drainer, worker, watcher)
        return store


def shutdown() -> None:
    """Stop jobs and workers and close the store (tests release the database file with this)."""
    global _current
    with _LOCK:
        jobs = list(_jobs.values())
        _jobs.clear()
        _setup_done.clear()
    for job in jobs:
        job.cancel()
    for job in jobs:  # outside the lock: a job may be opening the store
        job.wait(timeout=60)
    with _LOCK:
        if _current is not None:
            _current.stop()
            _current = None


# -- background jobs ----------------------------------------------------------------------------


class JobCancelled(Exception):
    """Raised inside a job's work by its next progress report once it was cancelled."""


@dataclass
class Job:
    """A named piece of work in a thread of this process, with progress any page can show."""

    name: str
    fraction: float = 0.0
    text: str = "starting"
    still: str = ""  # what is still to come after the current step
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    result: str | None = None
    error: str | None = None
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def report(self, fraction: float, text: str, still: str = "") -> None:
        """Progress from the work; raises JobCancelled once the job was cancelled."""
        if self._cancelled.is_set():
            raise JobCancelled(self.name)
        self.fraction, self.text, self.still = min(max(fraction, 0.0), 1.0), text, still

    def cancel(self) -> None:
        self._cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self, work: Callable[[Job], str | None]) -> None:
        try:
            self.result = work(self)
        except JobCancelled:
            self.error = "stopped before it finished (the app or its database closed)"
        except Exception as exc:  # shown on every page; the traceback goes to the log
            log.exception("background job %s failed", self.name)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished = time.monotonic()


_jobs: dict[str, Job] = {}


def job(name: str) -> Job | None:
    with _LOCK:
        return _jobs.get(name)


def start_job(name: str, work: Callable[[Job], str | None]) -> Job:
    """Run `work(job)` in a thread unless a job of this name is running; returns the job
    that runs (or ran) under the name. A finished job of the name is replaced."""
    with _LOCK:
        current = _jobs.get(name)
        if current is not None and current.running:
            return current
        new = Job(name)
        new._thread = threading.Thread(target=new._run, args=(work,), name=name, daemon=True)
        _jobs[name] = new
        new._thread.start()
        return new


def wait_jobs(prefix: str, timeout: float | None = None) -> None:
    """Wait for the jobs whose names start with `prefix` (tests; shutting down)."""
    with _LOCK:
        jobs = [j for name, j in _jobs.items() if name.startswith(prefix)]
    for j in jobs:
        j.wait(timeout)


# -- the first-start setup (lifecycle/first_start.py) ------------------------------------------

_setup_done: set[Path] = set()  # paths whose setup finished or was never needed


def setup_name(path: str | Path) -> str:
    return f"first-start setup of {Path(path).resolve()}"


def setup_job(path: str | Path, *, retry: bool = False) -> Job | None:
    """The first-start setup of `path`: started in the background on the first call of this
    process if the database is missing or its setup is pending (then resumed), else None.
    Later calls return the same job; a failed one starts again only with `retry`."""
    resolved = Path(path).resolve()
    name = setup_name(resolved)
    with _LOCK:
        current = _jobs.get(name)
        if current is not None and (current.running or current.error is None or not retry):
            return current
        if resolved in _setup_done:
            return None
        if not first_start.needed(resolved, store_for):
            _setup_done.add(resolved)
            return None
        return start_job(name, lambda job: _setup(resolved, job))


def setup_running(path: str | Path) -> bool:
    current = job(setup_name(path))
    return current is not None and current.running


def _setup(path: Path, job: Job) -> str:
    summary = first_start.run_setup(path, store_for, job.report)
    with _LOCK:
        _setup_done.add(path)
    _clear_data_caches()
    return summary


def _clear_data_caches() -> None:
    """Pages cache reads per data version; setup adds results without new logs."""
    import streamlit as st

    st.cache_data.clear()
