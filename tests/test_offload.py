"""Worker processes for a parallel run's statistics (lifecycle.drift.offload)."""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import pytest
from scipy import stats as sps

from lifecycle.drift import offload, stats


def _fail(text: str) -> None:
    raise ValueError(text)


@pytest.fixture(scope="module")
def pool():
    with offload.process_pool(2) as workers:
        yield workers


def test_without_a_pool_calls_run_here():
    assert not offload.active()
    assert offload.call(os.getpid) == os.getpid()


def test_a_thread_using_a_pool_runs_its_calls_in_a_worker_process(pool):
    with offload.using(pool):
        assert offload.active()
        assert offload.call(os.getpid) != os.getpid()
        assert offload.call(math.comb, 10, 3) == 120
        with pytest.raises(ValueError, match="bad input"):  # the worker's error, here
            offload.call(_fail, "bad input")
    assert not offload.active()


def test_the_pool_belongs_to_the_thread_that_uses_it(pool):
    other = []
    with offload.using(pool):
        thread = threading.Thread(target=lambda: other.append(offload.call(os.getpid)))
        thread.start()
        thread.join()
    assert other == [os.getpid()]  # another thread was not told to use the pool


def test_exact_ks_in_a_worker_equals_scipy(pool):
    """A gap on 2,000 x 1,500 values: the exact p-value is sent to a worker (n1 x n2 is
    over stats.OFFLOAD_KS_CELLS) and equals ks_2samp on samples with that gap."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.1, 1, 1500)
    expected = sps.ks_2samp(a, b, method="exact")
    assert stats.OFFLOAD_KS_CELLS <= 2000 * 1500
    with offload.using(pool):
        d, p, method = stats.ks_test(expected.statistic, 2000, 1500)
    assert method == "exact"
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_workers_never_run_the_main_module_again(tmp_path, monkeypatch):
    """In the app `__main__` is Streamlit's module of app.py: a spawned child that re-ran it
    would start the app (and its first-start build) a second time. Plain spawn does re-run
    it (the premise, checked first); the workers do not."""
    import multiprocessing
    import sys
    import types
    from concurrent.futures import ProcessPoolExecutor

    marker = tmp_path / "ran"
    script = tmp_path / "app_like.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as plain:
        assert plain.submit(math.comb, 4, 2).result() == 6
    assert marker.read_text() == "ran\n"  # plain spawn ran the "app" in its child
    marker.unlink()

    with offload.process_pool(2) as pool, offload.using(pool):
        assert offload.call(math.comb, 4, 2) == 6
        assert offload.call(os.getpid) != os.getpid()
    assert not marker.exists()
