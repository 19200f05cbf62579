"""DuckDB connection handling, schema migrations and transactions.

One `Store` per database file and process. It owns a single DuckDB database instance;
every operation runs on its own cursor (`con.cursor()`), never on a shared one, because
one DuckDB connection used from several threads fails under load (see STACK-NOTES).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from lifecycle.migrations import LATEST, MIGRATIONS

DEFAULT_DB = Path("data") / "lifecycle.duckdb"
ENV_DB = "LIFECYCLE_DB"
ENV_MEMORY, DEFAULT_MEMORY = "LIFECYCLE_DUCKDB_MEMORY", "1GB"
IDENT = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class StoreError(Exception):
    """A problem with the database file itself (lock, schema version, path)."""


class DatabaseLocked(StoreError):
    """Another process holds the database file for writing."""


class SchemaTooNew(StoreError):
    """The file was written by a newer release of this software."""


def resolve_db_path(cli_value: str | os.PathLike | None = None) -> Path:
    """`--db` if given, else $LIFECYCLE_DB, else data/lifecycle.duckdb."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    return DEFAULT_DB


def quote_ident(name: str) -> str:
    """A SQL identifier: the one way names reach SQL text (values are bound, never quoted)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


_PARAM_IDS = itertools.count()


@dataclass(frozen=True)
class Sql:
    """A SQL fragment and the values it binds as named parameters (`$p12`).

    Parameter names are unique per process, so fragments can be nested in one query
    and their params merged: `Sql(f"... FROM ({a.text}) JOIN ({b.text})", a.params | b.params)`.
    """

    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def execute(self, cur, prefix: str = "", suffix: str = "", extra: dict | None = None):
        """Run `prefix + text + suffix` with the fragment's params (and `extra`)."""
        return cur.execute(prefix + self.text + suffix, {**self.params, **(extra or {})})


def bind(params: dict[str, Any], value: Any) -> str:
    """Add `value` to `params` under a fresh name and return its placeholder (`$p12`)."""
    name = f"p{next(_PARAM_IDS)}"
    params[name] = value
    return "$" + name


def feature_table(model_name: str) -> str:
    """Name of the wide, per-model feature log table."""
    check_identifier(model_name, "model name")
    return f"features__{model_name}"


def reference_table(model_name: str) -> str:
    """Name of the per-model table holding each version's reference (validation) data."""
    check_identifier(model_name, "model name")
    return f"reference__{model_name}"


def feature_column(name: str) -> str:
    """The column a feature is stored under, a pure function of its name (no lookup table).

    Lower-case identifiers are stored as they are (every database before names were freed);
    a name that differs from one only in case is stored lower-cased (`MedInc` -> `medinc`,
    the column DuckDB would resolve anyway, so a spec cannot declare both); any other name
    gets a readable slug plus 8 hex digits of its SHA-256 (`Loan amount (EUR)` ->
    `loan_amount_eur_1f0c…`), so distinct names never share a column. Logs, pages and
    reports use the feature's own name; only SQL against the stored tables sees this one.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid feature name {name!r}")
    if IDENT.match(name):
        return name
    if IDENT.match(name.lower()):
        return name.lower()
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:38]
    if not slug or not slug[0].isalpha():
        slug = f"f_{slug}".rstrip("_")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{slug}_{digest}"


def stored_feature(name: str, alias: str = "") -> str:
    """SQL selecting feature `name` from its stored column, named as the user names it."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}{quote_ident(feature_column(name))} AS {quote_ident(name)}"


def check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not IDENT.match(name):
        raise ValueError(
            f"{what} {name!r} is not valid: use lower-case letters, digits and '_', "
            "starting with a letter, at most 48 characters"
        )
    return name


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


# Stores not yet closed, closed at interpreter exit (see _close_open_stores).
_OPEN: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    """Close, and let go of, every store still open when the interpreter exits.

    A DuckDB connection object still alive while Python finalizes with daemon threads running
    (the Streamlit server has several) is reported by DuckDB's nanobind bindings as a
    reference leak: about 44 "nanobind: leaked ..." lines on every stop of the app. The
    connection holds nothing that needs saving by then (every write is committed), so the
    lines were noise, but they hid real warnings; closing the store first silences them."""
    for store in list(_OPEN):
        store.close()


class Store:
    """A DuckDB database with this project's schema, safe to share between threads."""

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if is_lock_error(exc):
                raise DatabaseLocked(
                    f"database {self.path} is held by another process: {exc}"
                ) from exc
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        self._con.execute("SET TimeZone = 'UTC'")
        self._limit_memory()
        self._write_lock = threading.RLock()
        self._lake_values: dict[str, Any] = {}  # the variable the lake views read (lifecycle.lake)
        self._lake_stamp = 0  # changes with the lakes' files
        self._lake_read = 0.0  # time.monotonic() of the last refresh_lake
        self._lake_states: dict[str, dict] = {}  # per source: path -> (size, mtime_ns)
        self._narrowed = threading.local()  # this thread's narrower lake files (narrow_lake)
        try:
            self._migrate()
            self._renew_lake_views()
            self.refresh_lake()
        except Exception:
            self._con.close()
            raise
        _OPEN.add(self)

    def _limit_memory(self) -> None:
        """Cap DuckDB's memory ($LIFECYCLE_DUCKDB_MEMORY, default 1GB): past it, joins and
        sorts spill to disk instead of growing with the lake. DuckDB fills what it may: a
        first manifest read of a 100M lake's model peaked at 1.84 GB under a 1.5GB cap and
        1.30 GB under 1GB, as fast (a 10M lake: 1.5 GB unbounded, 1.2 GB under 1GB)."""
        limit = os.environ.get(ENV_MEMORY, "").strip() or DEFAULT_MEMORY
        try:
            self._con.execute("SET memory_limit = ?", [limit])
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError(f"${ENV_MEMORY}={limit!r} is not a memory size DuckDB reads "
                             f"(e.g. 1.5GB, 800MB): {exc}") from exc  # fmt: skip

    # -- connection handling -------------------------------------------------

    @contextlib.contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for one operation; closed afterwards."""
        if self._con is None:
            raise StoreError(f"database {self.path} was closed")
        cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            values = getattr(self._narrowed, "values", None) or self._lake_values
            if values:  # what the lake views read (lifecycle.lake.bind)
                cur.execute("SET VARIABLE lake = $v", {"v": values})
            yield cur
        finally:
            cur.close()

    def _renew_lake_views(self) -> None:
        """Rebuild lake views written by an earlier release (one transaction); a read-only
        store leaves them, and its lake models read nothing until opened read-write once."""
        from lifecycle import lake

        with self.cursor() as cur:
            if self.read_only or not lake.stale_views(cur):
                return
        with self.transaction() as cur:
            lake.rebuild_all(cur)

    def refresh_lake(self, max_age: float | None = None) -> None:
        """Re-read where external sources' files are (a Delta table's current version, a
        dataset that got its first file); cursors opened afterwards see it. With `max_age`
        (seconds), only if the last refresh is older (pages call it on every run)."""
        from lifecycle import lake  # the lake module builds on this one

        now = time.monotonic()
        if max_age is not None and now - self._lake_read < max_age:
            return
        with self.cursor() as cur:
            found = lake.bindings(cur, self.path)
        self._lake_stamp = sum(parts["stamp"] for parts in found.values())
        self._lake_states = {name: parts["states"] for name, parts in found.items()}
        self._lake_values = lake.variable_value(found)
        self._lake_read = now

    @property
    def lake_values(self) -> dict[str, Any]:
        """What cursors bind for the lake views now: per source its files, time zone and
        classes (lifecycle.lake.bindings)."""
        return self._lake_values

    def lake_file_states(self, variable: str) -> dict[str, tuple[int, int]] | None:
        """path -> (size, mtime_ns) of a lake source's files as of the last refresh_lake
        (None for a source it does not know)."""
        return self._lake_states.get(variable)

    @contextlib.contextmanager
    def narrow_lake(self, values: dict[str, Any]) -> Iterator[None]:
        """Within the block, cursors this thread opens bind `values` instead: the same
        sources with fewer files (lifecycle.lake_manifest.period). Other threads are not
        affected."""
        before = getattr(self._narrowed, "values", None)
        self._narrowed.values = values
        try:
            yield
        finally:
            self._narrowed.values = before

    def write_lock(self) -> threading.RLock:
        """Serialises this process's writers that validate before they write (ingestion)."""
        return self._write_lock

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One explicit transaction: commit on success, roll back on any exception."""
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                # a failed statement may have ended the transaction already: the error to
                # report is the original one, never "TransactionContext Error: no transaction"
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def query_df(self, sql: str, params: list | tuple | dict | None = None):
        """Run a read query and return a pandas DataFrame."""
        with self.cursor() as cur:
            return cur.execute(sql, params or []).df()

    def query_all(self, sql: str, params: list | tuple | dict | None = None) -> list[tuple]:
        with self.cursor() as cur:
            return cur.execute(sql, params or []).fetchall()

    def query_one(self, sql: str, params: list | tuple | dict | None = None):
        with self.cursor() as cur:
            return cur.execute(sql, params or []).fetchone()

    def table_exists(self, name: str) -> bool:
        row = self.query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        )
        return bool(row and row[0])

    def table_columns(self, name: str) -> dict[str, str]:
        rows = self.query_all(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [name],
        )
        return dict(rows)

    def row_counts(self) -> dict[str, int]:
        """Rows stored per base table: used by tests and the CLI to show nothing changed.

        The stored logs behind the `predictions`, `labels` and `business_events` views are
        counted under those names (rows read in place from a lake are not in the file)."""
        names = [
            r[0]
            for r in self.query_all(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' ORDER BY table_name"
            )
        ]
        with self.cursor() as cur:
            return {
                n.removeprefix("logged_"): cur.execute(
                    f"SELECT count(*) FROM {quote_ident(n)}"
                ).fetchone()[0]
                for n in names
            }

    def data_version(self) -> int:
        """A number that changes whenever logs are appended (ingested batches; a lake's
        files as of the last refresh_lake): the cache key of pages."""
        row = self.query_one("SELECT coalesce(max(batch_id), 0) FROM ingest_batches")
        return int(row[0]) + self._lake_stamp

    def close(self) -> None:
        """Close the connection and drop it (idempotent): a closed store holds no DuckDB
        object, so none is left for interpreter shutdown (see _close_open_stores)."""
        con, self._con = self._con, None
        _OPEN.discard(self)
        if con is not None:
            with contextlib.suppress(Exception):
                con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema migrations ---------------------------------------------------

    def schema_version(self) -> int:
        with self.cursor() as cur:
            exists = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
            ).fetchone()[0]
            if not exists:
                return 0
            return int(cur.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)

    def _pending_migrations(self) -> list[int]:
        with self.cursor() as cur:
            if not cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
            ).fetchone()[0]:
                return [number for number, _, _ in MIGRATIONS]
            applied = {r[0] for r in cur.execute("SELECT version FROM schema_version").fetchall()}
        return [number for number, _, _ in MIGRATIONS if number not in applied]

    def _migrate(self) -> None:
        current = self.schema_version()
        latest = LATEST
        if current > latest:
            raise SchemaTooNew(
                f"database {self.path} has schema version {current}, but this release knows "
                f"versions up to {latest}; upgrade the software (or open a copy with the "
                "release that wrote it) instead of letting an older release touch it"
            )
        if not self._pending_migrations():
            return
        if self.read_only:
            raise StoreError(
                f"database {self.path} has schema version {current} and needs migrating to "
                f"{latest}; open it once read-write"
            )
        migrate(self._con, upto=latest)


def migrate(con: duckdb.DuckDBPyConnection, upto: int) -> None:
    """Apply the migrations not yet recorded (up to `upto`), each in one transaction with its row."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    for number, name, statements in MIGRATIONS:
        if number in applied or number > upto:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now())",
                [number, name],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def open_store(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = 0.0,
) -> Store:
    """Open (and migrate) the store, retrying for `wait_seconds` if another process holds it."""
    db_path = resolve_db_path(path)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return Store(db_path, read_only=read_only)
        except DatabaseLocked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
