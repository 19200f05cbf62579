"""Store: migrations (upgrade, refusal of newer schemas), DB path resolution, UTC, threads."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from lifecycle import store as store_mod
from lifecycle.audit import append_audit
from lifecycle.ingest import ingest
from lifecycle.migrations import LATEST, MIGRATIONS
from lifecycle.store import (
    DEFAULT_DB,
    SchemaTooNew,
    Store,
    StoreError,
    migrate,
    resolve_db_path,
)
from tests.conftest import toy_predictions

FIRST = MIGRATIONS[0][0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _old_database(path: Path) -> None:
    """A file at the first schema version only, with one model row, written by raw DuckDB."""
    con = duckdb.connect(str(path))
    migrate(con, upto=FIRST)
    con.execute(
        "INSERT INTO models VALUES ('legacy', 'regression', 'bob@example.com', 'low', 'old', "
        "TIMESTAMPTZ '2025-06-01 08:00:00+00')"
    )
    con.close()


# -- migrations ---------------------------------------------------------------------------


def test_migrations_are_numbered_in_order_and_all_recorded(store):
    numbers = [n for n, _, _ in MIGRATIONS]
    assert numbers == sorted(set(numbers)) and numbers[-1] == LATEST
    recorded = [r[0] for r in store.query_all("SELECT version FROM schema_version ORDER BY 1")]
    assert recorded == numbers
    assert store.schema_version() == LATEST


def test_old_schema_is_upgraded_on_open_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    _old_database(path)
    con = duckdb.connect(str(path))
    assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == FIRST
    assert not con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'deployments'"
    ).fetchall()[0][0]
    con.close()

    with Store(path) as s:
        assert s.schema_version() == LATEST
        assert s.table_exists("deployments")  # from a later migration
        assert s.query_all("SELECT name, task, owner FROM models") == [
            ("legacy", "regression", "bob@example.com")
        ]
        applied = [r[0] for r in s.query_all("SELECT version FROM schema_version ORDER BY 1")]
    assert applied == [n for n, _, _ in MIGRATIONS]
    # opening again applies nothing new and keeps the row
    with Store(path) as s:
        assert s.row_counts()["models"] == 1
        assert s.row_counts()["schema_version"] == len(MIGRATIONS)


def test_old_schema_opened_read_only_is_refused_not_migrated(tmp_path):
    path = tmp_path / "old.duckdb"
    _old_database(path)
    before = _sha256(path)
    with pytest.raises(StoreError, match="needs migrating"):
        Store(path, read_only=True)
    assert _sha256(path) == before


def test_newer_schema_is_refused_and_the_file_left_untouched(tmp_path):
    path = tmp_path / "future.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?, 'from the future', now())", [LATEST + 5])
    con.execute("CHECKPOINT")
    con.close()
    before = _sha256(path)

    with pytest.raises(SchemaTooNew) as info:
        Store(path)
    message = str(info.value)
    assert f"schema version {LATEST + 5}" in message
    assert f"up to {LATEST}" in message and "upgrade the software" in message
    assert _sha256(path) == before
    # the refusal released the file: a raw connection opens it and sees the same rows
    con = duckdb.connect(str(path))
    assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == LATEST + 5
    con.close()


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    _old_database(path)
    broken = (
        LATEST + 1,
        "broken",
        ["CREATE TABLE half_done (x INTEGER)", "INSERT INTO no_such_table VALUES (1)"],
    )
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(store_mod, "LATEST", LATEST + 1)
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        Store(path)
    monkeypatch.undo()
    with Store(path) as s:  # the real migrations committed one by one; the broken one left nothing
        assert s.schema_version() == LATEST
        assert not s.table_exists("half_done")
        assert s.row_counts()["models"] == 1


# -- database path --------------------------------------------------------------------------


def test_db_path_prefers_the_option_then_the_environment_then_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("LIFECYCLE_DB", raising=False)
    assert resolve_db_path(None) == DEFAULT_DB == Path("data/lifecycle.duckdb")
    assert resolve_db_path("") == DEFAULT_DB
    monkeypatch.setenv("LIFECYCLE_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path(None) == tmp_path / "env.duckdb"
    assert resolve_db_path(tmp_path / "cli.duckdb") == tmp_path / "cli.duckdb"
    assert resolve_db_path(str(tmp_path / "cli.duckdb")) == tmp_path / "cli.duckdb"


# -- timestamps ---------------------------------------------------------------------------


def test_timestamps_with_an_offset_are_stored_as_the_same_instant_in_utc(toy_store):
    frame = toy_predictions(2, prefix="tz")
    frame["ts"] = pd.to_datetime(["2026-03-01T12:00:00+02:00", "2026-03-01T12:30:00+02:00"])
    ingest(toy_store, "toy", "predictions", frame)
    csv_like = toy_predictions(1, prefix="tzcsv")
    csv_like["ts"] = "2026-03-01T23:15:00-05:00"  # strings, as a CSV brings them
    ingest(toy_store, "toy", "predictions", csv_like)

    rows = toy_store.query_all(
        "SELECT prediction_id, ts, strftime(ts, '%Y-%m-%d %H:%M') FROM predictions "
        "ORDER BY prediction_id"
    )
    assert [r[1] for r in rows] == [
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 4, 15, tzinfo=UTC),
    ]
    assert [r[1].utcoffset().total_seconds() for r in rows] == [0, 0, 0]
    # SQL sees UTC wall-clock time too (days are bucketed by it)
    assert [r[2] for r in rows] == ["2026-03-01 10:00", "2026-03-01 10:30", "2026-03-02 04:15"]
    batch = toy_store.query_all("SELECT min_ts, max_ts FROM ingest_batches ORDER BY batch_id")
    assert batch[0] == (
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
    )


def test_naive_timestamps_with_assume_utc_are_read_as_utc(toy_store):
    frame = toy_predictions(1, prefix="naive")
    frame["ts"] = pd.Timestamp("2026-03-01 12:00:00")
    ingest(toy_store, "toy", "predictions", frame, assume_utc=True)
    assert toy_store.query_one("SELECT ts FROM predictions") == (
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )


# -- threads --------------------------------------------------------------------------------


def test_sixteen_threads_read_and_write_through_cursors_without_errors(toy_store):
    threads, rounds, batch_rows = 16, 4, 5
    snapshots: list[tuple[int, int]] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for r in range(rounds):
            if t % 2 == 0:
                frame = toy_predictions(batch_rows, prefix=f"t{t}r{r}-")
                ingest(toy_store, "toy", "predictions", frame)
            else:
                with toy_store.transaction() as cur:
                    append_audit(cur, actor=f"thread{t}", action="test", reason=str(r))
            with toy_store.cursor() as cur:
                snapshots.append(
                    cur.execute(
                        "SELECT (SELECT count(*) FROM predictions), "
                        "(SELECT coalesce(sum(row_count), 0) FROM ingest_batches)"
                    ).fetchall()[0]
                )
            mine = toy_store.query_df(
                "SELECT count(*) AS n FROM predictions WHERE prediction_id LIKE ?", [f"t{t}r%"]
            )
            assert mine["n"].item() == (batch_rows * (r + 1) if t % 2 == 0 else 0)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, t) for t in range(threads)]:
            future.result()  # re-raises any thread's error

    writers = threads // 2
    counts = toy_store.row_counts()
    assert counts["predictions"] == writers * rounds * batch_rows
    assert counts["ingest_batches"] == writers * rounds
    assert counts["audit_log"] == 1 + (threads - writers) * rounds  # + the registration
    ids = toy_store.query_all("SELECT count(DISTINCT prediction_id), count(*) FROM predictions")
    assert ids[0][0] == ids[0][1]
    # every reader saw whole batches only: log rows always matched the committed batch rows
    assert len(snapshots) == threads * rounds
    assert all(logged == batched and logged % batch_rows == 0 for logged, batched in snapshots)


def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 200)
    before = _sha256(path)
    with pytest.raises(StoreError, match=r"cannot open database .*notes\.duckdb"):
        Store(path)
    assert _sha256(path) == before


EXIT_WITH_OPEN_STORE = """
import sys, threading, time
from lifecycle.store import Store
store = Store(sys.argv[1])
store.query_one("SELECT count(*) FROM model_versions")
# a daemon thread running Python code, as in a Streamlit server: its frame keeps the globals
# (and the store) alive while the interpreter finalizes
threading.Thread(target=lambda: time.sleep(60), daemon=True).start()
"""


def test_a_store_left_open_at_exit_is_closed_without_leak_reports(tmp_path):
    """DuckDB's bindings (nanobind) print ~44 "leaked" lines when a connection object is still
    alive at interpreter exit while daemon threads run (every stop of the app did)."""
    import subprocess
    import sys

    from tests.browser import ROOT

    done = subprocess.run(
        [sys.executable, "-c", EXIT_WITH_OPEN_STORE, str(tmp_path / "open.duckdb")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "nanobind" not in done.stderr + done.stdout


def test_a_closed_store_says_so(tmp_path):
    store = Store(tmp_path / "closed.duckdb")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="was closed"):
        store.query_one("SELECT 1")


def test_duckdb_memory_is_capped_and_a_bad_cap_is_named(tmp_path, monkeypatch):
    with Store(tmp_path / "a.duckdb") as s:
        assert s.query_one("SELECT current_setting('memory_limit')")[0] == "953.6 MiB"  # 1GB
    monkeypatch.setenv("LIFECYCLE_DUCKDB_MEMORY", "800MB")
    with Store(tmp_path / "a.duckdb") as s:
        assert s.query_one("SELECT current_setting('memory_limit')")[0] == "762.9 MiB"
    monkeypatch.setenv("LIFECYCLE_DUCKDB_MEMORY", "lots")
    with pytest.raises(StoreError, match="LIFECYCLE_DUCKDB_MEMORY='lots'"):
        Store(tmp_path / "a.duckdb")
