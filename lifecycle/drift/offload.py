"""Worker processes for the pure, CPU-bound statistics of a parallel monitoring run.

A parallel run (lifecycle.monitor, `--workers N`) computes windows in N threads, each with
its own DuckDB cursor: DuckDB lets one process hold the database file, so the windows'
queries stay in this process. The statistics between the queries are Python and hold the
GIL, so on their own the threads mostly wait on each other. The heaviest of those steps
are pure functions of small inputs (the exact KS p-value of a gap and two sample sizes,
the domain classifier and the label checks of a few thousand sampled rows), and a thread
sends them to a pool of N worker processes and waits (releasing the GIL) while the other
threads go on: threads orchestrate, processes compute.

Results are the same with or without the pool: every step sent is a pure function of its
arguments (seeds included). Without a pool on the calling thread, `call` runs the function
in place, which is what a run with one worker does.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import context, popen_spawn_posix, spawn, util
from multiprocessing.context import reduction, set_spawning_popen
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()


def call(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in the calling thread's worker pool if it has one, else here."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return fn(*args)
    return pool.submit(fn, *args).result()


def active() -> bool:
    """Whether the calling thread sends work to a pool."""
    return getattr(_local, "pool", None) is not None


@contextmanager
def using(pool: ProcessPoolExecutor | None) -> Iterator[None]:
    """Send this thread's `call`s to `pool` (None: run them in place) until the block ends."""
    before = getattr(_local, "pool", None)
    _local.pool = pool
    try:
        yield
    finally:
        _local.pool = before


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """`workers` worker processes: the ones kept by an enclosing `kept_pool` on this
    thread, else started now and shut down when the block ends."""
    kept = getattr(_local, "kept", None)
    if kept is not None and kept[0] == workers:
        yield kept[1]
        return
    pool = _start_pool(workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def kept_pool(workers: int) -> Iterator[None]:
    """Keep one pool of `workers` processes for every parallel run this thread starts in
    the block (a job that monitors several models and grains starts its workers once;
    each start loads scikit-learn, about a second). Nothing starts until a run sends work."""
    before = getattr(_local, "kept", None)
    pool = _LazyPool(workers)
    _local.kept = (workers, pool)
    try:
        yield
    finally:
        _local.kept = before
        pool.shutdown()


class _LazyPool:
    """A process pool started by its first `submit` (from any of a run's threads)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            if self._pool is None:
                self._pool = _start_pool(self.workers)
            pool = self._pool
        try:
            return pool.submit(fn, *args)
        except BrokenProcessPool:  # a worker died in an earlier run: start new ones
            with self._lock:
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = _start_pool(self.workers)
                pool = self._pool
            return pool.submit(fn, *args)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """Processes started fresh (spawned: forking a process that runs DuckDB threads is
    unsafe), each limited to one BLAS/OpenMP thread like the run's own threads, and without
    this process's main module (see _WorkerPopen)."""
    return ProcessPoolExecutor(workers, mp_context=_CONTEXT, initializer=_start_worker)


class _WorkerPopen(popen_spawn_posix.Popen):
    """multiprocessing's spawn, except that the child does not run this process's main
    module again. A spawned child normally re-imports `__main__` (as `__mp_main__`) so that
    functions defined there can be unpickled; ours are all in lifecycle modules. In the app
    `__main__` is Streamlit's module of the running page, app.py: a child running it would
    start the app again (its first-start build deleted the parent's half-built database in
    a test), and a script without `if __name__ == "__main__":` would run twice.

    The body is CPython 3.11's popen_spawn_posix.Popen._launch with the two main-module
    entries left out of the preparation data (tests/test_offload.py checks it)."""

    def _launch(self, process_obj):
        from multiprocessing import resource_tracker

        tracker_fd = resource_tracker.getfd()
        self._fds.append(tracker_fd)
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        fp = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, fp)
            reduction.dump(process_obj, fp)
        finally:
            set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w])
            self.pid = util.spawnv_passfds(spawn.get_executable(), cmd, self._fds)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as f:
                f.write(fp.getbuffer())
        finally:
            to_close = [fd for fd in (parent_r, parent_w) if fd is not None]
            self.finalizer = util.Finalize(self, util.close_fds, to_close)
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)


class _WorkerProcess(context.SpawnProcess):
    _start_method = "spawn"

    @staticmethod
    def _Popen(process_obj):
        return _WorkerPopen(process_obj)


class _WorkerContext(context.SpawnContext):
    Process = _WorkerProcess


_CONTEXT = _WorkerContext()


def _start_worker() -> None:
    """A worker's set-up: the statistics modules loaded once, one thread each."""
    from threadpoolctl import threadpool_limits

    from lifecycle.drift import concept, multivariate, stats  # noqa: F401 - loaded once

    threadpool_limits(limits=1)
