"""Versioned schema migrations, applied in order on open.

A migration is a module `mNNN_<name>.py` in this package with `NAME` and `STATEMENTS`.
Once committed it is never edited: a schema change is a new module with the next number.
The number is the schema version; `schema_version` in the database records which ran.
Modules are discovered by name, so features developed side by side each add their own
file without editing a shared list; a number may stay unused (reserved by work that did
not land), and migrations run in number order.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

_MODULE = re.compile(r"^m(\d{3})_\w+$")


def _discover() -> list[tuple[int, str, list[str]]]:
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
    migrations = []
    for number in sorted(found):
        module = importlib.import_module(f"{__name__}.{found[number]}")
        migrations.append((number, module.NAME, list(module.STATEMENTS)))
    return migrations


# (schema version, name, statements), in version order
MIGRATIONS: list[tuple[int, str, list[str]]] = _discover()
LATEST = MIGRATIONS[-1][0]
