"""Versioned schema migrations, applied in order on open.

A migration is a module `mNNN_<name>.py` in this package with `NAME` and `STATEMENTS`.
Once committed it is never edited: a schema change is a new module with the next number.
The number is the schema version; `schema_version` in the database records which ran.
Modules are discovered by name, so features developed side by side each add their own
file without editing a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

_MODULE = re.compile(r"^m(\d{3})_\w+$")


def _discover() -> list[tuple[str, list[str]]]:
    found: dict[int, str] = {}
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE.match(info.name)
        if match:
            number = int(match.group(1))
            if number in found:
                raise RuntimeError(
                    f"two migrations numbered {number}: {found[number]}, {info.name}"
                )
            found[number] = info.name
    numbers = sorted(found)
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migration numbers must run 1..N without gaps, found {numbers}")
    modules = [importlib.import_module(f"{__name__}.{found[n]}") for n in numbers]
    return [(m.NAME, list(m.STATEMENTS)) for m in modules]


MIGRATIONS: list[tuple[str, list[str]]] = _discover()
