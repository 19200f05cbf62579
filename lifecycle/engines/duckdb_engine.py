"""The default engine: the database's views read every window in place (lifecycle.engines)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lifecycle.drift.windows import WindowInputs, list_windows


class DuckDBEngine:
    """Today's behaviour: the database's views read every window in place."""

    name = "duckdb"

    def unsupported(self, cur, model: str) -> str | None:
        return None

    def check_run(self, grain: str, reference: str) -> None:
        return None

    def windows(self, cur, model: str, grain: str, **filters) -> list[WindowInputs]:
        return list_windows(cur, model, grain, **filters)

    @contextlib.contextmanager
    def staged(self, cur, inputs: WindowInputs, cap: int | None, seed: int) -> Iterator[bool]:
        yield False

    def close(self) -> None:
        return None


DUCKDB = DuckDBEngine()
