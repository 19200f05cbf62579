"""Strict JSON for command output: what any JSON parser accepts.

`json.dumps` writes NaN and Infinity (not JSON) and needs `default=str` for time stamps,
which then come out in whatever form `str` gives. Here missing and non-finite numbers become
null, time stamps ISO 8601 in UTC, numpy scalars plain numbers; `allow_nan=False` makes any
slip an error instead of an invalid document. Standard library only (pandas and numpy values
are recognised by duck typing, so this module stays light to import).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any


def plain(value: Any) -> Any:
    """`value` with every nested part made JSON-safe (see the module docstring)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, datetime):  # pandas.Timestamp too; NaT fails isoformat's contract
        if value != value:  # NaT
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays
        return plain(value.tolist())
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    return str(value)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text of `value`."""
    return json.dumps(plain(value), indent=indent, allow_nan=False)
