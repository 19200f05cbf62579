"""A small database whose free text is hostile Markdown: shared by the escaping tests."""

from __future__ import annotations

from pathlib import Path

from lifecycle import catalog
from lifecycle.ingest import ingest
from lifecycle.store import Store
from tests.conftest import toy_predictions, write_toy_spec

HOST = "evil.test"
LINK = f"[1.1](http://{HOST}/phish)"
IMAGE = f"![p](http://{HOST}/x.png)"
HOSTILE = {
    "version": LINK,
    "owner": IMAGE,  # also the registrant (register's actor defaults to the owner)
    "description": f"{IMAGE} <img src=http://{HOST}/y.png> www.{HOST} :red[x]",
    "kpi_description": f"{IMAGE} [kpi](http://{HOST}/k)",
    "segment": f"[seg](http://{HOST}/s)",
}


def hostile_database(folder: Path) -> Path:
    """Model `toy` with a hostile version, owner, descriptions and segment; 500 predictions."""
    spec = write_toy_spec(folder / "spec", version="1.0")
    text = spec.read_text()
    for old, new in (
        ('version = "1.0"', f'version = "{HOSTILE["version"]}"'),
        ('owner = "alice@example.com"', f'owner = "{HOSTILE["owner"]}"'),
        ('description = "A small model for tests"', f'description = "{HOSTILE["description"]}"'),
        (
            'name = "conversion"',
            f'name = "conversion"\ndescription = "{HOSTILE["kpi_description"]}"',
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    spec.write_text(text)
    path = folder / "hostile.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        batch = toy_predictions(500, version=HOSTILE["version"], start="2026-01-01")
        batch["segment"] = HOSTILE["segment"]
        ingest(store, "toy", "predictions", batch)
    return path
