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
half-written batch. The inbox is private to its OS user (directories 0700, files 0600). A
manifest may only name a data file inside `pending/` (a plain file name, no path, no link):
one naming anything else is rejected and that file is never moved or deleted. A manifest that
cannot be read or used is moved to `rejected/` with its reason; it never stops the others.
When API tokens are configured (lifecycle.identity), a queued batch carries its submitter's
token ($LIFECYCLE_TOKEN) and the draining process loads it only if the token verifies.
A batch from a landing folder (lifecycle.watch) carries its file's sha256, recorded with the
batch; one whose hash was loaded before is marked done as a duplicate, not loaded again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from lifecycle.identity import ConfigError, caller_token, load_identity_config
from lifecycle.ingest import AlreadyLoaded, IngestError, ingest
from lifecycle.staging import DATA_SUFFIXES, file_scan, files_name
from lifecycle.store import Store

PENDING, DONE, REJECTED = "pending", "done", "rejected"
INBOX_SUFFIX = ".inbox"
_TICKET = re.compile(r"^[0-9T.]+-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DATA_FILE = re.compile(r"^[0-9T.]+-[0-9a-f]{12}\.(parquet|csv)$")


def inbox_dir(db_path: str | os.PathLike) -> Path:
    p = Path(db_path)
    return p.parent / f"{p.name}{INBOX_SUFFIX}"


def private_dir(path: Path) -> Path:
    """Create `path` (inside an inbox) readable by this OS user only: it and every folder up
    to the inbox itself are 0700, whatever the umask or an earlier version left."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for folder in (path, *path.parents):
        os.chmod(folder, 0o700)
        if folder.name.endswith(INBOX_SUFFIX):
            break
    return path


def private_file(path: Path) -> Path:
    os.chmod(path, 0o600)
    return path


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
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    assume_utc: bool = False,
    allow_unknown_ids: bool = False,
    source_name: str | None = None,
    sha256: str | None = None,
) -> str:
    """Drop a batch into the inbox; return its ticket. One file is copied as it is; several
    (a directory or glob: one format, same columns) are written as one Parquet file, streamed
    by DuckDB. `sha256`, a landed file's hash, is recorded with the batch (lifecycle.watch)."""
    root = inbox_dir(db_path)
    pending = private_dir(root / PENDING)
    ticket = new_ticket()
    if isinstance(source, pd.DataFrame):
        suffix, name = ".parquet", "DataFrame"
        tmp = pending / f".{ticket}{suffix}.tmp"
        private_file(Path(tmp).touch() or tmp)
        source.to_parquet(tmp, index=False)
    else:
        files = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        one_csv = len(files) == 1 and Path(files[0]).suffix.lower() == ".csv"
        suffix = ".csv" if one_csv else ".parquet"
        name = files_name(files)
        tmp = pending / f".{ticket}{suffix}.tmp"
        _copy_batch(files, tmp)
    tmp.rename(pending / f"{ticket}{suffix}")
    manifest = {
        "ticket": ticket,
        "model": model,
        "kind": kind,
        "assume_utc": assume_utc,
        "allow_unknown_ids": allow_unknown_ids,
        "file": f"{ticket}{suffix}",
        "source": source_name or name,
        "sha256": sha256,
        "submitted_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "token": caller_token(),
    }
    write_json(pending / f"{ticket}.json", manifest)
    return ticket


def _copy_batch(files: list, target: Path) -> None:
    """Copy one data file to `target`, or write several as one Parquet file after the checks
    a batch of files gets (one format, same columns: lifecycle.staging.file_scan)."""
    if len(files) == 1:
        src = Path(files[0])
        if not src.exists():
            raise FileNotFoundError(f"no such file: {src}")
        if src.suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(
                f"{src}: unsupported file type {src.suffix.lower()!r}; use .parquet or .csv"
            )
        private_file(Path(target).touch() or target)
        shutil.copyfile(src, target)
        return
    with duckdb.connect() as con:
        scan, params = file_scan(con, files)
        private_file(Path(target).touch() or target)
        try:
            con.sql(f"SELECT * FROM {scan}", params=params).write_parquet(str(target))
        except duckdb.Error as exc:
            target.unlink(missing_ok=True)
            raise ValueError(f"cannot read {files_name(files)}: {exc}") from exc


def new_ticket() -> str:
    """A unique name that sorts in submission order (queues are served by name): whole
    seconds alone left batches submitted within one second in random order, e.g. labels
    before their predictions."""
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
    return f"{stamp}.{now % 1_000_000_000:09d}-{uuid.uuid4().hex[:12]}"


def write_json(path: Path, data: dict) -> None:
    """Write JSON (owner-only, 0600) under a temporary name, then rename: no reader sees
    half a file. A request's `token` is written only into pending requests, which the acting
    process deletes once it has read them."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(json.dumps(data, indent=2, default=str))
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


class ManifestError(ValueError):
    """A manifest that cannot be used; it goes to rejected/ with this reason."""


def drain(store: Store) -> list[Outcome]:
    """Load every pending batch, oldest first; return what happened to each. A manifest that
    fails in any way is rejected with its reason and the next one is loaded."""
    root = inbox_dir(store.path)
    pending = root / PENDING
    if not pending.is_dir():
        return []
    try:
        config = load_identity_config()
    except ConfigError as exc:  # cannot tell who sent what: leave the batches queued
        raise ManifestError(f"inbox not drained: {exc}") from exc
    results = []
    with _drain_lock:
        for manifest_path in sorted(pending.glob("*.json")):
            try:
                results.append(_drain_one(store, root, manifest_path, config))
            except Exception as exc:  # one bad batch never stops the others
                reason = exc if isinstance(exc, ManifestError) else f"{type(exc).__name__}: {exc}"
                results.append(_reject_manifest(root, manifest_path, str(reason)))
    return results


def _read_manifest(pending: Path, manifest_path: Path) -> tuple[dict, Path]:
    """The manifest and the data file it names, which must be a plain file in `pending/`."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"manifest {manifest_path.name} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError(f"manifest {manifest_path.name} is not a JSON object")
    expected = {"ticket": str, "model": str, "kind": str, "file": str, "assume_utc": bool}
    wrong = [k for k, kind in expected.items() if not isinstance(manifest.get(k), kind)]
    if not isinstance(manifest.get("allow_unknown_ids", False), bool):
        wrong.append("allow_unknown_ids")  # optional: manifests written before it lack it
    sha = manifest.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256.match(sha)):
        wrong.append("sha256")  # optional: only landed files (lifecycle.watch) carry one
    if wrong:
        raise ManifestError(f"manifest {manifest_path.name} lacks or mistypes: {', '.join(wrong)}")
    if manifest["ticket"] != manifest_path.stem or not _TICKET.match(manifest_path.stem):
        raise ManifestError(f"manifest {manifest_path.name} names ticket {manifest['ticket']!r}")
    name = manifest["file"]
    if not _DATA_FILE.match(name) or not name.startswith(manifest_path.stem + "."):
        raise ManifestError(
            f"manifest {manifest_path.name} names data file {name!r}; only its own batch "
            "file inside the inbox may be named (no path), so nothing was loaded or moved"
        )
    data_path = pending / name
    if data_path.is_symlink() or not data_path.is_file():
        raise ManifestError(f"data file {name} of manifest {manifest_path.name} is missing "
                            "or not a regular file")  # fmt: skip
    return manifest, data_path


def _drain_one(store: Store, root: Path, manifest_path: Path, config) -> Outcome:
    manifest, data_path = _read_manifest(root / PENDING, manifest_path)
    ticket = manifest["ticket"]
    submitter = None
    if not config.development:
        submitter = config.principal_of(manifest.get("token"))
        if submitter is None:
            raise ManifestError(
                f"batch {ticket} carries no valid API token (tokens are configured in "
                f"{config.source}; set $LIFECYCLE_TOKEN before `ingest`)"
            )
    source_name = f"inbox:{ticket} ({manifest.get('source', '?')})"
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
                allow_unknown_ids=manifest.get("allow_unknown_ids", False),
                source_name=source_name,
                content_sha256=manifest.get("sha256"),
            )
            state, detail = DONE, {"summary": report.summary(), "report": report.to_dict()}
        except AlreadyLoaded as exc:
            state, detail = DONE, {"summary": str(exc), "duplicate_of": exc.batch_id}
        except (IngestError, ValueError) as exc:
            state, detail = REJECTED, {"error": str(exc)}
    if submitter:
        detail["submitted_by"] = submitter
    target = private_dir(root / state)
    if state == DONE:
        data_path.unlink(missing_ok=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            data_path.rename(target / data_path.name)
    write_json(target / f"{ticket}.json", {**_public(manifest), **detail, "state": state})
    manifest_path.unlink(missing_ok=True)
    return Outcome(ticket, state, detail)


def _public(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "token"}


def _reject_manifest(root: Path, manifest_path: Path, reason: str) -> Outcome:
    """Move a manifest that could not be used to rejected/ with its reason. Only the
    manifest moves: a file it names is left where it is."""
    target = private_dir(root / REJECTED)
    raw: object = None
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    kept = _public(raw) if isinstance(raw, dict) else {"content": repr(raw)[:500]}
    detail = {"error": reason}
    write_json(target / manifest_path.name, {**kept, **detail, "state": REJECTED})
    manifest_path.unlink(missing_ok=True)
    for own in manifest_path.parent.glob(f"{manifest_path.stem}.*"):  # its batch file, if any
        if own.suffix in (".parquet", ".csv"):
            with contextlib.suppress(OSError):
                own.rename(target / own.name)
    return Outcome(manifest_path.stem, REJECTED, detail)


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
