"""Parsers of the commands whose modules are slow to import: `demo` (scikit-learn), `monitor`
(the drift engine: pandas, scipy), `report` (pandas, plotly), `results` (pandas) and
`registry` (its package loads the gates and the layers' metrics).

`python -m lifecycle --help` builds every command's parser, so parsers import only the standard
library and `lifecycle.names`; the module that runs a command is imported when it runs
(`run_in`). `check`, whose module is light, keeps its parser beside it.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from datetime import UTC, datetime

from lifecycle.names import GRAINS, REFERENCE_KINDS, check_grain


def run_in(target: str) -> Callable[[argparse.Namespace], int]:
    """`func` for a parser: "module:function", imported on the first call."""
    module_name, function_name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module_name), function_name)(args)

    run.__qualname__ = run.__name__ = function_name
    return run


def utc_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _grain(text: str) -> str:
    try:
        return check_grain(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_demo_parser(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="build a demo database with known incidents")
    demo.add_argument("--db", help="DuckDB file to create (default: $LIFECYCLE_DB, else data/...)")
    demo.add_argument("--days", type=int, default=90, help="days of traffic (default 90)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument(
        "--end",
        help="end of the data, YYYY-MM-DD (UTC midnight; default: today), so a build can be pinned",
    )
    demo.set_defaults(func=run_in("lifecycle.demo:cmd_demo"))


def add_monitor_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "monitor",
        help="compute drift, concept-drift and data-quality results for new windows",
        description="Compute and store monitoring results for every window whose logs "
        "changed since the last run (unchanged windows are skipped).",
    )
    p.add_argument("--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)")
    p.add_argument("--model", help="one model (default: every registered model)")
    p.add_argument(
        "--grain",
        type=_grain,
        help=f"window size: {', '.join(GRAINS)} or chunk:N (N consecutive predictions); "
        "default: the model's declared windows ([monitoring] in its spec, else day)",
    )
    p.add_argument(
        "--reference",
        choices=REFERENCE_KINDS,
        default="spec",
        help="compare with the version's reference data (spec), its fixed baseline window, "
        "or the previous window (default spec)",
    )
    p.add_argument("--version", help="only this model version")
    p.add_argument("--variant", choices=("production", "shadow", "canary"))
    p.add_argument("--since", type=utc_time, help="first window start (UTC), e.g. 2026-01-01")
    p.add_argument("--until", type=utc_time, help="windows starting before this time (UTC)")
    p.add_argument("--as-of", type=utc_time, help="only windows complete by this time (UTC)")
    p.add_argument("--force", action="store_true", help="recompute unchanged windows too")
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="windows computed at once: N threads for the queries and N worker processes for "
        "the statistics (default: 2 on a machine with 2+ cores, or "
        "$LIFECYCLE_MONITOR_WORKERS; 1 runs everything in this process; results do not "
        "depend on it)",
    )
    p.add_argument("--json", action="store_true", help="print the run summaries as JSON")
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="what lists and reads the windows: duckdb (default) or spark, for models whose "
        "predictions are a lake (needs pyspark and Java 17; docs/engines.md)",
    )
    p.add_argument(
        "--spark-master",
        help="Spark master URL for --engine spark (default local[2]), e.g. spark://host:7077",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=1800.0,
        help="if the app holds the database, seconds to wait for it to run this (default 1800)",
    )
    p.set_defaults(func=run_in("lifecycle.monitor:cmd_monitor"))


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(
            f"--workers takes a whole number from 1 to 64, got {text!r}"
        )
    return value


def add_report_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="weekly model-health review as Markdown or self-contained HTML",
        description="Write the weekly review of one ISO week. The format follows --out's "
        "suffix: .md (Markdown) or .html (one self-contained file with its charts).",
    )
    p.add_argument("--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)")
    p.add_argument("--week", required=True, help="ISO week, e.g. 2026-W46")
    p.add_argument("--out", required=True, help="output file, .md or .html")
    p.add_argument("--model", action="append", help="only this model (repeatable)")
    p.add_argument(
        "--app-url",
        help="base URL of the app for the report's evidence links (default: "
        "$LIFECYCLE_APP_URL, else http://localhost:8501); the report names the one it used",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=300.0,
        help="if the app holds the database, seconds to wait for it to write the report",
    )
    p.set_defaults(func=run_in("lifecycle.alerts.report:cmd_report"))


RESULT_LAYERS = ("infrastructure", "performance", "business", "quality", "drift")


def add_results_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "results",
        help="per-window results of one model: performance, drift, quality, KPIs, infrastructure",
        description="Print the per-window figures the monitoring pages draw, read from the "
        "database (nothing is computed; drift and quality results are stored by `monitor`). "
        "Without --layer, every layer in turn (table and json only).",
    )
    p.add_argument("--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument("--version", help="only this model version (default: every version)")
    p.add_argument("--variant", choices=("production", "shadow", "canary"))
    p.add_argument(
        "--grain",
        type=_grain,
        help=f"window size: {', '.join(GRAINS)}, or chunk:N for drift and quality; default: "
        "the model's declared windows ([monitoring] in its spec, else day)",
    )
    p.add_argument(
        "--layer",
        choices=RESULT_LAYERS,
        help="one layer (default: all; csv needs one)",
    )
    p.add_argument("--feature", help="only this feature (drift and quality layers)")
    p.add_argument(
        "--reference",
        choices=REFERENCE_KINDS,
        default="spec",
        help="drift and quality results against this reference (default spec)",
    )
    p.add_argument(
        "--from", dest="since", metavar="DATE", help="first day or time (UTC), e.g. 2026-03-01"
    )
    p.add_argument(
        "--to", dest="until", metavar="DATE", help="last day (included) or end time (excluded), UTC"
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--wait",
        type=float,
        default=120.0,
        help="if the app holds the database, seconds to wait for it to answer (default 120)",
    )
    p.set_defaults(func=run_in("lifecycle.results_cli:cmd_results"))


# -- registry: "<registry command>" -> state-machine action ---------------------------------

REGISTRY_ACTIONS = {
    "request-approval": "request_approval",
    "approve": "approve",
    "reject": "reject",
    "promote": "promote",
    "switch": "switch",
    "rollback": "rollback",
    "retire": "retire",
}
REGISTRY_HELP = {
    "request_approval": "send a registered (or rejected / rolled back) version for review",
    "approve": "approve a version pending approval (not your own; high risk needs 2 reviewers)",
    "reject": "reject a version pending approval (needs --reason)",
    "promote": "next step: approved -> shadow -> canary steps -> production (gated)",
    "switch": "blue-green switch of a shadow or canary version to production (gated)",
    "rollback": "roll back a canary, or production to the standby version (needs --reason)",
    "retire": "retire a version that does not serve",
}


def add_registry_parser(subparsers) -> None:
    reg = subparsers.add_parser("registry", help="list versions and approve, promote, roll back")
    sub = reg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="versions with their states and approvals")
    _registry_common(listing)
    listing.add_argument("--model", help="only this model")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=run_in("lifecycle.registry.cli:cmd_list"))
    history = sub.add_parser("history", help="a model's audit trail")
    _registry_common(history)
    history.add_argument("model")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=run_in("lifecycle.registry.cli:cmd_history"))
    for command, action in REGISTRY_ACTIONS.items():
        p = sub.add_parser(command, help=REGISTRY_HELP[action])
        _registry_common(p)
        p.add_argument("model")
        p.add_argument("version")
        _identity_args(p)
        p.add_argument("--reason", help="why (required for reject and rollback)")
        p.add_argument(
            "--expected-revision",
            type=int,
            help="fail with a conflict unless the version is still at this revision",
        )
        if action == "promote":
            p.add_argument("--share", type=float, help="canary traffic share for this step")
        if action == "retire":
            p.add_argument(
                "--confirm",
                action="store_true",
                help="retire the standby (no rollback target remains) or a version in shadow",
            )
        if action in ("promote", "switch"):
            p.add_argument(
                "--override-gates",
                action="store_true",
                help="admin only, with --reason: take production despite a failing gate",
            )
        p.set_defaults(func=run_in("lifecycle.registry.cli:cmd_action"), action=action)
    tier = sub.add_parser(
        "set-risk-tier",
        help="admin: change a model's risk tier (audited; pending reviews keep their quorum)",
    )
    _registry_common(tier)
    tier.add_argument("model")
    tier.add_argument("tier", choices=("low", "high"))
    _identity_args(tier)
    tier.add_argument("--reason", required=True, help="why the tier changes")
    tier.set_defaults(func=run_in("lifecycle.registry.cli:cmd_set_risk_tier"))
    routes = sub.add_parser(
        "routes",
        help="the desired serving state routers follow (production, canary share, shadows, "
        "standby), as JSON; --publish writes/sends it where [routes] says",
    )
    _registry_common(routes)
    routes.add_argument("--model", help="only this model")
    routes.add_argument("--json", action="store_true", help="print JSON (the contract)")
    routes.add_argument("--publish", action="store_true", help="write the routes file and "
                        "post the signed webhook now (as after every change)")  # fmt: skip
    routes.set_defaults(func=run_in("lifecycle.registry.cli:cmd_routes"))
    card = sub.add_parser(
        "card",
        help="a version's model card: print or export it, or write a new revision (--file)",
    )
    _registry_common(card)
    card.add_argument("model")
    card.add_argument("version")
    card.add_argument("--file", help="TOML with a [model_card] table: write it as a new revision")
    card.add_argument("--reason", help="what changed (required with --file)")
    card.add_argument("--out", help="export the current card to FILE (.md or .html)")
    _identity_args(card)
    card.set_defaults(func=run_in("lifecycle.registry.cli:cmd_card"))


def _identity_args(parser: argparse.ArgumentParser) -> None:
    """--actor and --config of a command that acts as someone (lifecycle.identity)."""
    parser.add_argument(
        "--actor",
        help="who acts (e-mail in the role mapping); with API tokens configured the token in "
        "$LIFECYCLE_TOKEN decides and --actor must name the same person or be left out",
    )
    parser.add_argument(
        "--config",
        help="identity config when the command runs itself (default: $LIFECYCLE_CONFIG, else "
        "lifecycle.toml); queued for the app, the app's own config decides",
    )


def _registry_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="if the app holds the database, seconds to wait for it to run this (default 60)",
    )


# -- API tokens ---------------------------------------------------------------------------------


def add_token_parser(subparsers) -> None:
    token = subparsers.add_parser(
        "token", help="make an API token for a person or pipeline ($LIFECYCLE_TOKEN)"
    )
    sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    new = sub.add_parser(
        "new",
        help="print a new token and the hash line to add to [identity.tokens]",
        description="Print a fresh random token (give it to its owner, e.g. as a CI secret "
        "named LIFECYCLE_TOKEN) and the line that goes into the identity config. Only the "
        "hash is stored; the token is shown once.",
    )
    new.add_argument("email", help="whose token: the e-mail its roles are mapped to")
    new.set_defaults(func=run_in("lifecycle.commands:cmd_token_new"))


def cmd_token_new(args) -> int:
    from lifecycle.identity import hash_token, new_token

    token = new_token()
    email = args.email.strip().lower()
    print(f"token for {email} (shown once; store it as the secret LIFECYCLE_TOKEN):")
    print(f"  {token}")
    print("add to [identity.tokens] in the identity config (lifecycle.toml):")
    print(f'  "{email}" = ["{hash_token(token)}"]')
    return 0


def add_watch_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "watch",
        help="load new Parquet/CSV files dropped into a landing folder, each file once",
        description="Watch DIR/<model>/<kind>/**/*.parquet|*.csv (kind: predictions, features, "
        "labels, business, infra; any sub-folders such as date=2026-11-30/). Each settled file "
        "is validated and appended as one batch, all-or-nothing, then moved to DIR/done/ or "
        "DIR/rejected/ (same relative path) with FILE.report.json beside it. A file whose "
        "content (sha256) was loaded before is moved to done/ as a duplicate. Exit codes of "
        "--once: 0 all loaded, 2 a file was rejected or could not be read, 3 files still "
        "queued for the process holding the database.",
    )
    p.add_argument("--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)")
    p.add_argument("dir", help="the landing folder")
    p.add_argument("--once", action="store_true", help="load what is there, then exit")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between scans (default 5)")
    p.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="a file is loaded once its size and time are unchanged between two scans and it "
        "is at least this many seconds old (default 2)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="with --once, if another process (the app) holds the database: seconds to wait "
        "for it to load the queued files (default 60)",
    )
    p.set_defaults(func=run_in("lifecycle.watch:cmd_watch"))
