"""Live ingestion: a landing folder for batches that arrive while another process holds the DB.

DuckDB lets one process hold a database file, and a second process cannot even open it
read-only. So a writer that finds the file locked (the app is running) does not wait: it
converts its batch to Parquet and drops it, with a small JSON manifest, into
`<db>.inbox/pending/`. Whoever holds the database drains that folder: the app's background
drainer every few seconds, or the next `ingest` that gets the file itself. Draining runs the
very same validation and all-or-nothing append as a direct ingest, then moves the manifest to
`done/` (with the report) or `rejected/` (with the problems), which is where the submitting
process reads the outcome. A ticket already recorded in `ingest_batches` is never loaded
twice, even if the drainer crashed between its commit and moving the manifest.

Files are written under a temporary name and renamed into place, so a reader never sees a
half-written batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lifecycle.ingest import IngestError, ingest
from lifecycle.store import Store

PENDING, DONE, REJECTED = "pending", "done", "rejected"


def inbox_dir(db_path: str | os.PathLike) -> Path:
    p = Path(db_path)
    return p.parent / f"{p.name}.inbox"


@dataclass
class Outcome:
    ticket: str
    state: str  # pending | done | rejected
    detail: dict

    @property
    def message(self) -> str:
        if self.state == DONE:
            return self.detail.get("summary", "ingested")
        if self.state == REJECTED:
            return self.detail.get("error", "refused")
        return "still pending"


def submit(
    db_path: str | os.PathLike,
    model: str,
    kind: str,
    source: pd.DataFrame | str | os.PathLike,
    *,
    assume_utc: bool = False,
) -> str:
    """Drop a batch into the inbox; return its ticket. The file is copied as it is."""
    root = inbox_dir(db_path)
    pending = root / PENDING
    pending.mkdir(parents=True, exist_ok=True)
    ticket = new_ticket()
    if isinstance(source, pd.DataFrame):
        suffix, name = ".parquet", "DataFrame"
        tmp = pending / f".{ticket}{suffix}.tmp"
        source.to_parquet(tmp, index=False)
    else:
        src = Path(source)
        if not src.exists():
            raise FileNotFoundError(f"no such file: {src}")
        suffix, name = src.suffix.lower(), str(src.resolve())
        tmp = pending / f".{ticket}{suffix}.tmp"
        shutil.copyfile(src, tmp)
    tmp.rename(pending / f"{ticket}{suffix}")
    manifest = {
        "ticket": ticket,
        "model": model,
        "kind": kind,
        "assume_utc": assume_utc,
        "file": f"{ticket}{suffix}",
        "source": name,
        "submitted_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    write_json(pending / f"{ticket}.json", manifest)
    return ticket


def new_ticket() -> str:
    """A unique name that sorts in submission order (queues are served by name): whole
    seconds alone left batches submitted within one second in random order, e.g. labels
    before their predictions."""
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
    return f"{stamp}.{now % 1_000_000_000:09d}-{uuid.uuid4().hex[:12]}"


def write_json(path: Path, data: dict) -> None:
    """Write JSON under a temporary name, then rename: no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.rename(path)


def outcome(db_path: str | os.PathLike, ticket: str) -> Outcome:
    root = inbox_dir(db_path)
    for state in (DONE, REJECTED):
        path = root / state / f"{ticket}.json"
        if path.exists():
            return Outcome(ticket, state, json.loads(path.read_text(encoding="utf-8")))
    return Outcome(ticket, PENDING, {})


def wait(db_path: str | os.PathLike, ticket: str, timeout: float) -> Outcome:
    deadline = time.monotonic() + timeout
    while True:
        result = outcome(db_path, ticket)
        if result.state != PENDING or time.monotonic() >= deadline:
            return result
        time.sleep(0.2)


_drain_lock = threading.Lock()


def drain(store: Store) -> list[Outcome]:
    """Load every pending batch, oldest first; return what happened to each."""
    root = inbox_dir(store.path)
    pending = root / PENDING
    if not pending.is_dir():
        return []
    results = []
    with _drain_lock:
        for manifest_path in sorted(pending.glob("*.json")):
            results.append(_drain_one(store, root, manifest_path))
    return results


def _drain_one(store: Store, root: Path, manifest_path: Path) -> Outcome:
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    ticket = manifest["ticket"]
    data_path = manifest_path.parent / manifest["file"]
    source_name = f"inbox:{ticket} ({manifest['source']})"
    already = store.query_all("SELECT batch_id FROM ingest_batches WHERE source = ?", [source_name])
    if already:
        state, detail = DONE, {"summary": f"already ingested as batch {already[0][0]}"}
    else:
        try:
            report = ingest(
                store,
                manifest["model"],
                manifest["kind"],
                data_path,
                assume_utc=manifest["assume_utc"],
                source_name=source_name,
            )
            state, detail = DONE, {"summary": report.summary(), "report": report.to_dict()}
        except (IngestError, ValueError) as exc:
            state, detail = REJECTED, {"error": str(exc)}
    target = root / state
    target.mkdir(exist_ok=True)
    if state == DONE:
        data_path.unlink(missing_ok=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            data_path.rename(target / data_path.name)
    write_json(target / f"{ticket}.json", {**manifest, **detail, "state": state})
    manifest_path.unlink(missing_ok=True)
    return Outcome(ticket, state, detail)


class Periodic:
    """A daemon thread that calls `tick()` every `interval` seconds until stopped; a failing
    tick is kept in `last_error` and retried on the next round."""

    thread_name = "periodic"

    def __init__(self, store: Store, interval: float = 2.0):
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self.last_error: str | None = None

    def tick(self) -> None:
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):  # never started
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
                self.last_error = None
            except Exception as exc:  # keep going; the next round retries
                self.last_error = f"{type(exc).__name__}: {exc}"


class Drainer(Periodic):
    """Drains the inbox of a store every `interval` seconds (the app runs one)."""

    thread_name = "inbox-drainer"

    def tick(self) -> None:
        drain(self.store)
