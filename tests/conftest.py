"""Shared fixtures: a fresh store on disk and a small registered binary classifier."""

from __future__ import annotations

import textwrap
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.store import Store

TOY_SPEC = """
name = "toy"
task = "binary_classification"
owner = "alice@example.com"
risk_tier = "low"
description = "A small model for tests"
version = "{version}"
reference = "reference.csv"

[training]
data_fingerprint = "sha256:toy"
parameters = {{ max_depth = 3 }}
validation_metrics = {{ roc_auc = 0.8 }}

[[features]]
name = "x"
type = "numeric"
range = [0, 10]

[[features]]
name = "color"
type = "categorical"
values = ["red", "green", "blue"]

[[kpis]]
name = "conversion"

[[rules]]
name = "x_not_negative"
sql = "x >= 0"
"""


TOY_MODEL_CARD = """
[model_card]
intended_use = "Scores toy requests for the test suite."
limitations = "Trained on uniform noise; never use it for decisions."
training_data = "200 synthetic rows, seed 0."
evaluation = "ROC AUC on the reference set."
ethical_considerations = "None: no people are scored."
owners = ["alice@example.com"]
"""


def write_toy_spec(
    folder: Path, version: str = "1.0", rows: int = 200, seed: int = 0, *, card: bool = False
) -> Path:
    """Write a toy spec and its reference CSV into `folder`; return the spec path. `card`
    adds a complete model card (high-risk versions need one before review)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "x": rng.uniform(0, 10, rows),
            "color": rng.choice(["red", "green", "blue"], rows),
            "prediction": rng.uniform(0, 1, rows),
            "predicted_label": rng.choice(["0", "1"], rows),
            "actual": rng.integers(0, 2, rows),
        }
    ).to_csv(folder / "reference.csv", index=False)
    path = folder / f"toy-{version}.toml"
    text = textwrap.dedent(TOY_SPEC.format(version=version)) + (TOY_MODEL_CARD if card else "")
    path.write_text(text, encoding="utf-8")
    return path


def toy_predictions(n: int = 100, start: str = "2026-01-01", prefix: str = "p", version="1.0"):
    rng = np.random.default_rng(1)
    ts = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    score = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "prediction_id": [f"{prefix}{i}" for i in range(n)],
            "model_version": version,
            "ts": ts,
            "prediction": score,
            "predicted_label": np.where(score >= 0.5, "1", "0"),
            "latency_ms": rng.gamma(2.0, 10.0, n),
            "status": "ok",
            "segment": rng.choice(["web", "app"], n),
        }
    )


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "test.duckdb")
    yield s
    s.close()


@pytest.fixture
def toy_store(store, tmp_path):
    """A store with model `toy` version 1.0 registered."""
    catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
    return store


@pytest.fixture
def toy_db_file(toy_store):
    """Path of a database with `toy` 1.0 registered, closed so other processes can open it."""
    toy_store.close()
    return toy_store.path


# -- the demo database, built once per test session --------------------------------------------

DEMO_END = "2026-11-16"  # pinned so incident dates are the same on every run
DEMO_DAYS = 90


def _build_once(path: Path, build) -> Path:
    """Create `path` with `build(partial_path)` once, even when pytest-xdist workers ask at
    the same time: one builds under a lock file, the others wait for the finished file."""
    import os
    import time

    lock = path.with_suffix(".lock")
    while not path.exists():
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            time.sleep(0.5)
            continue
        try:
            if not path.exists():
                partial = path.with_suffix(".partial")
                partial.unlink(missing_ok=True)
                build(partial)
                partial.rename(path)
        finally:
            os.close(fd)
            lock.unlink()
    return path


def _session_folder(tmp_path_factory) -> Path:
    import os

    base = tmp_path_factory.getbasetemp()
    # xdist workers have their own base folders inside the session's: share the parent
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """Path of the shared demo database. Read it only (open Store(path, read_only=True)) or
    use `demo_copy` to change it."""
    from datetime import datetime

    from lifecycle.demo import build_demo

    end = datetime.fromisoformat(DEMO_END).replace(tzinfo=UTC)
    return _build_once(
        _session_folder(tmp_path_factory) / "demo.duckdb",
        lambda partial: build_demo(partial, days=DEMO_DAYS, seed=0, end=end),
    )


@pytest.fixture(scope="session")
def demo_monitored(demo_db, tmp_path_factory) -> Path:
    """The shared demo database with its daily monitoring results computed (read only)."""
    import shutil

    from lifecycle.monitor import monitor_all

    def build(partial: Path) -> None:
        shutil.copyfile(demo_db, partial)
        with Store(partial) as store:
            monitor_all(store)

    return _build_once(_session_folder(tmp_path_factory) / "demo_monitored.duckdb", build)


@pytest.fixture
def demo_copy(demo_db, tmp_path) -> Path:
    """A private, writable copy of the demo database."""
    import shutil

    target = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_db, target)
    return target


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    """Streamlit caches outlive an AppTest; clear them so tests never see each other's data."""
    import sys

    if "streamlit" in sys.modules:
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()
    if "ui.runtime" in sys.modules:
        sys.modules["ui.runtime"].shutdown()  # the app's store outlives caches by design
    yield


@pytest.fixture
def app_on(monkeypatch):
    """Start the whole app (app.py) in AppTest on the database at a path; a new session
    each call."""
    from streamlit.testing.v1 import AppTest

    def start(db_path):
        monkeypatch.setenv("LIFECYCLE_DB", str(db_path))
        at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"),
                               default_timeout=240)  # fmt: skip
        at.run()
        assert not at.exception, at.exception
        return at

    return start
