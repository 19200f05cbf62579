"""Engines: what reads a model's logs for monitoring, below one boundary that both share.

An engine answers two questions only: which windows exist, with the counts that fingerprint
their inputs (`windows`), and which raw log rows one window holds (`staged`). Everything
from the typed rows up (typing, unreadable-value detection, sampling, statistics, quality,
fairness, storing) is lifecycle.monitor's, the same for every engine.

- `duckdb` (the default) reads the logs where they are through the database's views
  (stored rows and lakes alike); for a lake model it lists windows from the manifest and
  stages each window's raw lake rows once (lifecycle.engines.duckdb_engine).
- `spark` (lifecycle.engines.spark_engine, optional: pyspark and Java 17) lists windows with
  one Spark aggregate over a model's lake tables and, per window, collects only that
  window's raw lake rows (a bounded sample when the window holds more than the version's
  `[drift] sample_rows`) into TEMP tables of the runner's DuckDB cursor. TEMP views named
  `predictions`, `labels`, `features__<model>` and `lake__<model>__<kind>` over them shadow
  the database's on that cursor only (lifecycle.lake.view_sql with `raw_rows`), so the
  checks read the window exactly as they read it from the lake. docs/engines.md.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from lifecycle.drift.windows import WindowInputs

ENGINES = ("duckdb", "spark")


class EngineError(ValueError):
    """An engine that cannot run as asked; the message says why and what to do."""


class Engine(Protocol):
    name: str

    def unsupported(self, cur, model: str) -> str | None:
        """Why this engine does not read `model`'s logs (None: it does)."""

    def check_run(self, grain: str, reference: str) -> None:
        """Raise EngineError for a grain or reference this engine cannot compute."""

    def prepare(self, store, cur, model: str, grain: str) -> None:
        """Work before listing `model`'s windows (the DuckDB engine reads a lake's new files
        into its manifest)."""

    def windows(self, cur, model: str, grain: str, **filters) -> list[WindowInputs]:
        """lifecycle.drift.windows.list_windows, computed by this engine."""

    def staged(
        self, cur, inputs: WindowInputs, cap: int | None, seed: int, since=None
    ) -> contextlib.AbstractContextManager[bool]:
        """Make the window's rows (from `since` when the checks also read earlier traffic)
        readable on `cur` under the usual names while the context lasts; yields True when
        the rows are already a sample of at most about `cap` predictions (the checks must not
        sample them again)."""

    def close(self) -> None: ...


def make_engine(name: str, spark_master: str | None = None) -> Engine:
    """The engine called `name` (`spark` starts a Spark session: close() stops it)."""
    from lifecycle.engines.duckdb_engine import DUCKDB

    if name == "duckdb":
        if spark_master:
            raise EngineError("--spark-master needs --engine spark")
        return DUCKDB
    if name == "spark":
        from lifecycle.engines.spark_engine import SparkEngine

        return SparkEngine(spark_master or "local[2]")
    raise EngineError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")
