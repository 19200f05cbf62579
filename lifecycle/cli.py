"""`python -m lifecycle ...`: command-line entry points.

Each command contributes a parser through an `add_parser(subparsers)` function; a parser sets
`func(args) -> int`. Parsers import only light modules and commands import their heavy
dependencies when they run, so `--help` answers in a fraction of a second (lifecycle.commands).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from pathlib import Path

from lifecycle.names import KINDS

# "module:function" adding further sub-commands (function(subparsers)), in help order.
EXTENSIONS: tuple[str, ...] = (
    "lifecycle.commands:add_demo_parser",
    "lifecycle.commands:add_monitor_parser",
    "lifecycle.alerts.check:add_parser",
    "lifecycle.commands:add_report_parser",
    "lifecycle.commands:add_results_parser",
    "lifecycle.commands:add_registry_parser",
    "lifecycle.commands:add_token_parser",
    "lifecycle.commands:add_watch_parser",
    "lifecycle.mlflow_import:add_parser",
)


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)",
    )


# Commands defined here; serving systems call `ingest` often, so running one of these skips
# building the extensions' parsers.
CORE_COMMANDS = ("register", "ingest")


def build_parser(extensions: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle",
        description="Model-health and governance console: data, monitoring and registry tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reg = sub.add_parser("register", help="register a model version from a TOML spec")
    _db_arg(reg)
    reg.add_argument("spec", help="path of the model spec (TOML)")
    reg.add_argument(
        "--actor",
        help="who registers it (needs the deployer or admin role); with API tokens configured "
        "the token in $LIFECYCLE_TOKEN decides and --actor may only repeat its owner; in "
        "development mode (no token configured) default: the development user",
    )
    reg.add_argument(
        "--config",
        help="identity config when the command runs itself (default: $LIFECYCLE_CONFIG, else "
        "lifecycle.toml); queued for the app, the app's own config decides",
    )
    reg.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="if the app holds the database, seconds to wait for it to register (default 60)",
    )
    reg.set_defaults(func=cmd_register)

    ing = sub.add_parser("ingest", help="validate and append a batch of logs (Parquet or CSV)")
    _db_arg(ing)
    ing.add_argument("--model", required=True, help="registered model name")
    ing.add_argument("--kind", required=True, choices=KINDS, help="which log the file holds")
    ing.add_argument(
        "file",
        help="Parquet (.parquet) or CSV (.csv) file; or a directory or a quoted glob (such as "
        "'logs/**/*.parquet'): all its Parquet or CSV files as ONE batch (one format, same "
        "columns; folder names such as date=2026-11-30/ are not read as columns)",
    )
    ing.add_argument(
        "--assume-utc",
        action="store_true",
        help="timestamps without a time zone are read as UTC either way; this says they are "
        "meant as UTC, so the report does not point them out",
    )
    ing.add_argument(
        "--allow-unknown-ids",
        action="store_true",
        help="store features or labels whose prediction ids the model has not logged (yet); "
        "by default such a batch is refused, so one wrong file cannot half-load a model",
    )
    ing.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="if the app holds the database, seconds to wait for it to load the queued "
        "batch (default 60; 0 = queue and return)",
    )
    ing.set_defaults(func=cmd_ingest)

    for target in EXTENSIONS if extensions else ():
        module_name, function_name = target.split(":")
        getattr(importlib.import_module(module_name), function_name)(sub)
    return parser


def cmd_register(args) -> int:
    from lifecycle.identity import ConfigError, IdentityError, caller_token, load_identity_config
    from lifecycle.store import resolve_db_path

    token = caller_token()
    try:  # a quick answer here; the process that acts checks again with its own config
        load_identity_config(args.config).caller(args.actor, token)
    except (ConfigError, IdentityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = Path(args.spec).resolve()  # the app's process may be the one that reads it
    params = {"kind": "register", "error_exit": 3, "spec": str(spec), "actor": args.actor,
              "token": token, "config": args.config}  # fmt: skip
    return run_registration(resolve_db_path(args.db), params, args.wait)


def run_registration(db_path: Path, params: dict, wait: float) -> int:
    """Run a registering request here or through the app (lifecycle.requests); a database
    file this refused request would have created is removed again."""
    from lifecycle import requests

    created = _would_create(db_path)
    code = 2
    try:
        code = requests.run(db_path, params, wait=wait)
    finally:
        if code != 0:
            _remove_created(created)
    return code


def _would_create(db_path: Path) -> list[Path]:
    """The database file, its WAL and the folders opening it would create (deepest last)."""
    if db_path.exists():
        return []
    created = [db_path, db_path.with_name(db_path.name + ".wal")]
    folder = db_path.parent.absolute()
    folders = []
    while not folder.exists():
        folders.append(folder)
        folder = folder.parent
    return created + folders


def _remove_created(paths: list[Path]) -> None:
    """Take back what a refused command created: files, then folders left empty."""
    for path in paths:
        # a folder something else wrote into meanwhile stays
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink(missing_ok=True)


def serve_register(store, params: dict):
    """Register a version from a spec file (here, or in the app's process that holds the DB),
    as the verified caller, who needs the `register` permission."""
    from lifecycle import catalog
    from lifecycle.identity import ConfigError, IdentityError, PermissionDenied, request_identity
    from lifecycle.requests import Outcome
    from lifecycle.spec import SpecError

    try:
        actor, how = request_identity(params)
    except (ConfigError, IdentityError, ValueError) as exc:
        return Outcome(2, stderr=f"refused: {exc}")
    note = f"acting as {actor.name} ({how})"
    try:
        result = catalog.register_from_file(store, params["spec"], actor=actor)
    except PermissionDenied as exc:
        return Outcome(2, stderr=f"refused: {exc}\n{note}")
    except SpecError as exc:
        return Outcome(2, stderr=f"error: {exc}\n{note}")
    return Outcome(
        0,
        stdout=f"registered {result['model']} {result['version']} "
        f"with {result['reference_rows']} reference rows (state: registered)",
        stderr=note,
    )


def cmd_ingest(args) -> int:
    from lifecycle import inbox
    from lifecycle.ingest import IngestError, ingest
    from lifecycle.staging import batch_files
    from lifecycle.store import DatabaseLocked, open_store, resolve_db_path

    db_path = resolve_db_path(args.db)
    if not db_path.exists():
        print(
            f"error: database {db_path} does not exist; register a model first "
            "(python -m lifecycle register --db PATH SPEC.toml)",
            file=sys.stderr,
        )
        return 2
    try:
        files = batch_files(args.file)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(db_path, wait_seconds=1.0)
    except DatabaseLocked:
        return _ingest_via_inbox(args, db_path, files)
    with store:
        try:
            inbox.drain(store)  # earlier queued batches go first
        except inbox.ManifestError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        try:
            report = ingest(
                store,
                args.model,
                args.kind,
                files,
                assume_utc=args.assume_utc,
                allow_unknown_ids=args.allow_unknown_ids,
            )
        except (IngestError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(report.summary())
    return 0


def _ingest_via_inbox(args, db_path, files) -> int:
    from lifecycle import inbox

    try:
        ticket = inbox.submit(
            db_path,
            args.model,
            args.kind,
            files,
            assume_utc=args.assume_utc,
            allow_unknown_ids=args.allow_unknown_ids,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"database {db_path} is held by another process (the app?): batch queued as "
        f"{ticket} in {inbox.inbox_dir(db_path) / inbox.PENDING}",
        file=sys.stderr,
    )
    if args.wait <= 0:
        return 0
    result = inbox.wait(db_path, ticket, args.wait)
    if result.state == inbox.DONE:
        print(result.message)
        return 0
    if result.state == inbox.REJECTED:
        print(f"error: {result.message}", file=sys.stderr)
        return 2
    print(
        f"still queued after {args.wait:.0f}s; it is loaded when the database holder drains "
        "the inbox (the app does every few seconds, or the next ingest)",
        file=sys.stderr,
    )
    return 3


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    core = bool(argv) and argv[0] in CORE_COMMANDS
    parser = build_parser(extensions=not core)
    args = parser.parse_args(argv)
    from lifecycle.store import StoreError

    try:
        return int(args.func(args) or 0)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def print_json(data) -> None:
    from lifecycle import jsonout

    print(jsonout.dumps(data))
