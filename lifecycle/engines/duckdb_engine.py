"""The default engine: DuckDB reads every window where it is (lifecycle.engines).

Stored logs are read through the database's views. A lake model's windows are listed from
its manifest (only new or changed files are read: lifecycle.lake_manifest), and each
computed window's raw lake rows are staged once, so its checks read a day of the lake, not
all of it (lifecycle.lake.stage_window).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from lifecycle import catalog, lake, lake_manifest
from lifecycle.drift.windows import WindowInputs, list_windows


class DuckDBEngine:
    name = "duckdb"

    def unsupported(self, cur, model: str) -> str | None:
        return None

    def check_run(self, grain: str, reference: str) -> None:
        return None

    def prepare(self, store, cur, model: str, grain: str) -> None:
        """Read a lake model's new files into its manifest (one transaction)."""
        if lake_manifest.applies(cur, model, grain):
            lake_manifest.refresh(store, model)

    def windows(self, cur, model: str, grain: str, **filters) -> list[WindowInputs]:
        if lake_manifest.applies(cur, model, grain):
            return lake_manifest.windows(cur, model, grain, **filters)
        return list_windows(cur, model, grain, **filters)

    @contextlib.contextmanager
    def staged(
        self, cur, inputs: WindowInputs, cap: int | None, seed: int, since: datetime | None = None
    ) -> Iterator[bool]:
        w = inputs.window
        made = []
        if lake.external_kinds(cur, w.model):
            task = catalog.model_info(cur, w.model)["task"]
            features = catalog.logged_features(cur, w.model)
            start = min(since or w.start, w.start)
            made = lake.stage_window(cur, w.model, start, w.end, task, features)
        try:
            yield False  # the whole window: the checks sample it themselves
        finally:
            lake.unstage(cur, made)

    def close(self) -> None:
        return None


DUCKDB = DuckDBEngine()
