"""A landing folder that ingests itself: `python -m lifecycle watch --db PATH DIR`, or the app.

Layout (README "Landing folder"): `DIR/<model>/<kind>/**/<file>.parquet|.pq|.csv`, kind one
of predictions, features, labels, business, infra; any sub-folders (`date=2026-11-30/`)
below the kind are allowed and are only folders, never columns. Each file is one batch,
loaded through the same validation and all-or-nothing append as `ingest`, then moved to
`DIR/done/<same relative path>` or `DIR/rejected/<same relative path>` with
`<file>.report.json` beside it (the ingest report, or the refusal's problems).

Never twice: the file's sha256 (streamed) is recorded in `loaded_files` in the batch's own
transaction, so a watcher killed between the commit and the move finds the hash on restart
and moves the file to done/ as "duplicate, skipped"; so does a copy of a loaded file.

Files still being written are left alone: names starting with '.' or '_' or ending .tmp or
.crc, and files whose size or modification time changed since the previous scan or that are
younger than the settle time. State lives in the folders and the database only, so a
restart simply scans again.

When another process holds the database (the app), the command hands each file to the
app through the inbox (lifecycle/inbox.py) with its hash, and moves it once the app reports
the outcome. The app can run the same scan itself: `[watch] dir` in lifecycle.toml or
$LIFECYCLE_WATCH_DIR (ui/runtime.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle import inbox
from lifecycle.identity import ConfigError, config_path, config_table
from lifecycle.ingest import AlreadyLoaded, IngestError, ingest
from lifecycle.names import KINDS
from lifecycle.staging import DATA_SUFFIXES, is_ignored
from lifecycle.store import DatabaseLocked, Store, open_store

DONE, REJECTED = "done", "rejected"
LOADED, DUPLICATE, QUEUED = "loaded", "duplicate", "queued"
WATCH_ENV = "LIFECYCLE_WATCH_DIR"
SETTLE_SECONDS = 2.0
INTERVAL_SECONDS = 5.0
REPORT_SUFFIX = ".report.json"
log = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    rel: Path  # path relative to the landing folder
    state: str  # loaded | duplicate | rejected | queued | error (left in place)
    message: str
    moved_to: Path | None = None

    def line(self) -> str:
        where = f" -> {self.moved_to.parts[0]}/" if self.moved_to else ""
        return f"{self.rel}: {self.message}{where}"


@dataclass
class _Queued:
    ticket: str
    sha256: str
    model: str
    kind: str


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def layout_of(rel: Path) -> tuple[str, str] | str:
    """(model, kind) of a file's path relative to the landing folder, or what is wrong."""
    if len(rel.parts) < 3 or rel.parts[1] not in KINDS:
        return (
            f"not in the landing layout DIR/<model>/<kind>/[folders/]<file> with kind one of "
            f"{', '.join(KINDS)}; move it to such a folder"
        )
    return rel.parts[0], rel.parts[1]


class Watcher:
    """Scans one landing folder; `scan(store)` loads what settled (the app and the command
    both run it). Remembers only the previous scan's sizes and times, and files it queued
    for another process, so a restart loses nothing (the folders and the database hold the
    state)."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        emit: Callable[[str], None] | None = None,
    ):
        self.root = Path(root)
        self.settle_seconds = settle_seconds
        self.emit = emit or log.info
        self._seen: dict[Path, tuple[int, int]] = {}
        self._queued: dict[Path, _Queued] = {}
        self._noted: set[Path] = set()
        self.unsettled: list[Path] = []  # seen by the last scan but still being written

    # -- finding files --------------------------------------------------------------------

    def candidates(self) -> list[Path]:
        """Data files in the landing folder, except done/, rejected/ and ignored names."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"landing folder {self.root} does not exist")
        found = []
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            dirs[:] = sorted(
                d
                for d in dirs
                if not is_ignored(d) and not (here == self.root and d in (DONE, REJECTED))
            )
            for name in sorted(files):
                path = here / name
                if is_ignored(name):
                    continue
                if path.suffix.lower() in DATA_SUFFIXES:
                    found.append(path)
                elif path not in self._noted:
                    self._noted.add(path)
                    self.emit(f"{self._rel(path)}: left alone (not .parquet, .pq or .csv)")
        return sorted(found, key=self._order)

    def _order(self, path: Path) -> tuple:
        """Predictions first (of every model), then features, labels, business, infra, each
        in path order (date=... folders sort by date): labels landing with their predictions
        are loaded after them."""
        parts = self._rel(path).parts
        kind = parts[1] if len(parts) >= 3 else None
        return (KINDS.index(kind) if kind in KINDS else len(KINDS), parts)

    def ready(self) -> list[Path]:
        """Files unchanged in size and time since the previous call and older than the settle
        time; the first call only takes note (a file must be seen twice)."""
        now = time.time()
        current, ready, unsettled = {}, [], []
        for path in self.candidates():
            try:
                st = path.stat()
            except FileNotFoundError:  # moved or deleted meanwhile
                continue
            current[path] = (st.st_size, st.st_mtime_ns)
            settled = now - st.st_mtime >= self.settle_seconds
            if self._seen.get(path) == current[path] and settled:
                ready.append(path)
            else:
                unsettled.append(path)
        self._seen = current
        self.unsettled = unsettled
        self._queued = {p: q for p, q in self._queued.items() if p in current}
        return ready

    def _rel(self, path: Path) -> Path:
        return path.relative_to(self.root)

    # -- loading ----------------------------------------------------------------------------

    def scan(self, store: Store, files: list[Path] | None = None) -> list[FileOutcome]:
        """Load every settled file (or `files`) into `store`, one batch each, and move it;
        outcomes of files queued earlier for another process are collected first."""
        outcomes = self.collect(store.path)
        for path in self.ready() if files is None else files:
            if path not in self._queued:
                outcomes.append(self._load(store, path))
        return outcomes

    def _load(self, store: Store, path: Path) -> FileOutcome:
        rel = self._rel(path)
        where = layout_of(rel)
        if isinstance(where, str):
            return self._finish(path, REJECTED, where, {"error": where})
        model, kind = where
        try:
            sha = file_sha256(path)
            report = ingest(
                store, model, kind, path, content_sha256=sha, source_name=str(path.resolve())
            )
        except AlreadyLoaded as exc:
            return self._finish(path, DUPLICATE, str(exc), _duplicate(exc), sha)
        except (IngestError, ValueError, FileNotFoundError) as exc:
            problems = getattr(exc, "problems", [str(exc)])
            return self._finish(
                path, REJECTED, f"refused: {'; '.join(problems)}", {"error": str(exc)}, sha
            )
        except Exception as exc:  # unreadable for now (permissions, disk, a write conflict)
            log.exception("landing file %s not loaded", path)
            return FileOutcome(rel, "error", f"left in place, retried next scan: {exc}")
        detail = {
            "batch_id": report.batch_id,
            "summary": report.summary(),
            "report": report.to_dict(),
        }
        message = f"loaded {report.rows} {kind} row(s) for {model} as batch {report.batch_id}"
        return self._finish(path, LOADED, message, detail, sha)

    def submit(self, db_path: Path, files: list[Path]) -> list[FileOutcome]:
        """Hand settled files to the process holding the database, through its inbox."""
        outcomes = []
        for path in files:
            if path in self._queued:
                continue
            rel = self._rel(path)
            where = layout_of(rel)
            if isinstance(where, str):
                outcomes.append(self._finish(path, REJECTED, where, {"error": where}))
                continue
            model, kind = where
            sha = file_sha256(path)
            try:
                ticket = inbox.submit(
                    db_path, model, kind, path, source_name=str(path.resolve()), sha256=sha
                )
            except (ValueError, FileNotFoundError) as exc:
                refusal = {"error": str(exc)}
                outcomes.append(self._finish(path, REJECTED, f"refused: {exc}", refusal, sha))
                continue
            self._queued[path] = _Queued(ticket, sha, model, kind)
            outcomes.append(FileOutcome(rel, QUEUED, f"database held: queued as {ticket}"))
        return outcomes

    def collect(self, db_path: Path) -> list[FileOutcome]:
        """Move the queued files whose outcome the database holder has written."""
        outcomes = []
        for path, queued in list(self._queued.items()):
            result = inbox.outcome(db_path, queued.ticket)
            if result.state == inbox.PENDING:
                continue
            del self._queued[path]
            kept = ("ticket", "summary", "report", "error", "duplicate_of", "submitted_by")
            detail = {k: v for k, v in result.detail.items() if k in kept}
            if result.state == inbox.REJECTED:
                state, message = REJECTED, f"refused: {result.message}"
            elif "duplicate_of" in detail:
                state, message = DUPLICATE, result.message
            else:
                state = LOADED
                report = detail.get("report", {})
                detail["batch_id"] = report.get("batch_id")
                message = (
                    f"loaded {report.get('rows', '?')} {queued.kind} row(s) for {queued.model} "
                    f"as batch {report.get('batch_id', '?')} (by the process holding the database)"
                )
            outcomes.append(self._finish(path, state, message, detail, queued.sha256))
        return outcomes

    @property
    def queued(self) -> int:
        return len(self._queued)

    # -- moving ----------------------------------------------------------------------------

    def _finish(
        self, path: Path, state: str, message: str, detail: dict, sha: str | None = None
    ) -> FileOutcome:
        """Move the file to done/ or rejected/ (same relative path) with its report."""
        rel = self._rel(path)
        folder = REJECTED if state == REJECTED else DONE
        target = _free_name(self.root / folder / rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        report = {
            **detail,
            "state": state,
            "file": str(rel),
            "sha256": sha,
            "message": message,
            "processed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # the report first: a crash before the move leaves the file to be found again (as a
        # duplicate if it was loaded), and its report is then written again at the same name
        _write_atomic(_report_path(target), json.dumps(report, indent=2, default=str))
        path.rename(target)
        self._seen.pop(path, None)
        return FileOutcome(rel, state, message, target.relative_to(self.root))


def _duplicate(exc: AlreadyLoaded) -> dict:
    return {"summary": str(exc), "duplicate_of": exc.batch_id, "first_source": exc.first_source}


def _report_path(target: Path) -> Path:
    return target.with_name(target.name + REPORT_SUFFIX)


def _free_name(target: Path) -> Path:
    """`target`, or `name~2.ext`, `name~3.ext`... when a file of that name was moved there
    before (the same name landing twice): no file in done/ or rejected/ is overwritten (a
    report without its file, left by a crash before the move, is)."""
    candidate, n = target, 1
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}~{n}{target.suffix}")
    return candidate


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.rename(path)


# -- the app's setting ------------------------------------------------------------------------


@dataclass
class WatchConfig:
    dir: Path
    interval: float = INTERVAL_SECONDS
    settle: float = SETTLE_SECONDS
    source: str = field(default=f"${WATCH_ENV}")


def load_watch_config(path: str | os.PathLike | None = None) -> WatchConfig | None:
    """The app's landing folder: $LIFECYCLE_WATCH_DIR, else `[watch] dir` of the config file
    (lifecycle.toml or $LIFECYCLE_CONFIG); None when neither is set."""
    target = config_path(path)
    table, _ = config_table("watch", target)
    env = os.environ.get(WATCH_ENV)
    folder = env or table.get("dir")
    if not folder:
        return None
    problems = []
    if not isinstance(folder, str):
        problems.append("watch.dir must be a string (a folder path)")
    numbers = {}
    for key, default in (("interval", INTERVAL_SECONDS), ("settle", SETTLE_SECONDS)):
        value = numbers[key] = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problems.append(f"watch.{key} must be a number of seconds >= 0, not {value!r}")
    if problems:
        raise ConfigError(f"config {target}: " + "; ".join(problems))
    source = f"${WATCH_ENV}" if env else f"[watch] dir in {target}"
    return WatchConfig(Path(folder), float(numbers["interval"]), float(numbers["settle"]), source)


class WatchLoop(inbox.Periodic):
    """The app's landing-folder watcher: `Watcher.scan` on its store every few seconds."""

    thread_name = "landing-watcher"

    def __init__(self, store: Store, config: WatchConfig):
        super().__init__(store, interval=config.interval)
        self.watcher = Watcher(config.dir, settle_seconds=config.settle, emit=log.info)

    def tick(self) -> None:
        try:
            outcomes = self.watcher.scan(self.store)
        except Exception as exc:  # e.g. the folder is missing: kept in last_error, retried
            log.warning("landing folder %s not scanned: %s", self.watcher.root, exc)
            raise
        for outcome in outcomes:
            log.info("landing folder %s: %s", self.watcher.root, outcome.line())


def start_for(store: Store) -> WatchLoop | None:
    """Start the app's watcher if a landing folder is configured (a bad setting is logged
    and the app runs without one)."""
    try:
        config = load_watch_config()
    except ConfigError as exc:
        log.error("landing folder not watched: %s", exc)
        return None
    if config is None:
        return None
    log.info("watching landing folder %s (%s)", config.dir, config.source)
    return WatchLoop(store, config).start()


# -- the command ------------------------------------------------------------------------------


def cmd_watch(args) -> int:
    from lifecycle.store import resolve_db_path

    db_path = resolve_db_path(args.db)
    root = Path(args.dir)
    for problem, ok in (
        (f"database {db_path} does not exist; register a model first", db_path.exists()),
        (f"landing folder {root} does not exist or is not a folder", root.is_dir()),
    ):
        if not ok:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    watcher = Watcher(root, settle_seconds=args.settle, emit=_print_line)
    counts = dict.fromkeys((LOADED, DUPLICATE, REJECTED, "error"), 0)
    with _stop_on_sigterm():
        try:
            if args.once:
                _run_once(watcher, db_path, args, counts)
            else:
                _print_line(
                    f"watching {root} for {db_path} every {args.interval:g}s (Ctrl-C stops)"
                )
                while True:
                    try:
                        _tally(_tick(watcher, db_path), counts)
                    except Exception as exc:  # e.g. the database briefly unusable: go on
                        _print_line(f"error: {type(exc).__name__}: {exc}; retrying")
                    time.sleep(args.interval)
        except KeyboardInterrupt:
            _print_line("stopped")
    left = len(watcher.unsettled) + watcher.queued
    _print_line(
        f"{counts[LOADED]} loaded, {counts[DUPLICATE]} duplicate(s) skipped, "
        f"{counts[REJECTED]} rejected, {counts['error']} error(s), {left} left in {root}"
    )
    if counts[REJECTED] or counts["error"]:
        return 2
    return 3 if watcher.queued else 0


def _run_once(watcher: Watcher, db_path: Path, args, counts: dict) -> None:
    """Take note of the files, wait for them to settle if needed, load, and wait for what
    was queued for another process (up to --wait)."""
    watcher.ready()
    if any(time.time() - p.stat().st_mtime < args.settle for p in watcher.candidates()):
        time.sleep(args.settle + 0.1)
    _tally(_tick(watcher, db_path), counts)
    for path in watcher.unsettled:
        _print_line(f"{watcher._rel(path)}: still being written, left for the next run")
    deadline = time.monotonic() + args.wait
    while watcher.queued and time.monotonic() < deadline:
        time.sleep(0.5)
        _tally(watcher.collect(db_path), counts)
    if watcher.queued:
        _print_line(
            f"{watcher.queued} file(s) still queued after {args.wait:g}s; they stay in the "
            "landing folder, and the next run loads them once (their hashes are checked)"
        )


def _tick(watcher: Watcher, db_path: Path) -> list[FileOutcome]:
    """One scan: open the database only when a file is ready (so the app can start in
    between), drain its inbox first as `ingest` does; hand the files to the holder if it
    is held."""
    ready = watcher.ready()
    if not ready and not watcher.queued:
        return []
    try:
        store = open_store(db_path, wait_seconds=1.0)
    except DatabaseLocked:
        outcomes = watcher.collect(db_path) + watcher.submit(db_path, ready)
    else:
        with store:
            with contextlib.suppress(inbox.ManifestError):
                inbox.drain(store)  # batches queued earlier go first
            outcomes = watcher.scan(store, ready)
    return outcomes


def _tally(outcomes: list[FileOutcome], counts: dict) -> None:
    """Print one line per file and count the outcomes."""
    for outcome in outcomes:
        _print_line(outcome.line())
        if outcome.state in counts:
            counts[outcome.state] += 1


def _print_line(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(f"{stamp}Z {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_on_sigterm():
    """SIGTERM (systemd, docker stop) stops like Ctrl-C: between files, or by rolling back the
    batch being loaded; either way the next run resumes."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
