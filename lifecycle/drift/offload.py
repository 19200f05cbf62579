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

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
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
    """Processes started fresh ("spawn": forking a process that runs DuckDB threads is
    unsafe), each limited to one BLAS/OpenMP thread like the run's own threads. Like any
    spawned worker, each imports the main module again: a script that starts a parallel
    run needs the usual `if __name__ == "__main__":` guard."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)


def _start_worker() -> None:
    """A worker's set-up: the statistics modules loaded once, one thread each."""
    from threadpoolctl import threadpool_limits

    from lifecycle.drift import concept, multivariate, stats  # noqa: F401 - loaded once

    threadpool_limits(limits=1)
