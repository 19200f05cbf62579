"""`python -m lifecycle registry ...`: drive the state machine from pipelines, audited.

The actor is named with --actor (an e-mail); its roles come from the identity configuration
(lifecycle.toml or $LIFECYCLE_CONFIG, see docs/governance.md), exactly as in the app.
Exit codes: 0 done, 2 refused (permission, state, rule, gate or input; nothing changed),
3 the app holding the database did not answer within --wait (the request is withdrawn if it
had not started) or failed, 4 conflict (someone changed it at the same moment; nothing changed).

While the app holds the database, each command runs in the app's process through the request
queue (lifecycle.requests), with the same checks, output and exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys

from lifecycle import registry
from lifecycle.identity import Actor, ConfigError, PermissionDenied, load_identity_config
from lifecycle.store import resolve_db_path

EXIT_REFUSED, EXIT_UNANSWERED, EXIT_CONFLICT = 2, 3, 4
ACTION_COMMANDS = {
    "request-approval": "request_approval",
    "approve": "approve",
    "reject": "reject",
    "promote": "promote",
    "switch": "switch",
    "rollback": "rollback",
    "retire": "retire",
}
HELP = {
    "request_approval": "send a registered (or rejected / rolled back) version for review",
    "approve": "approve a version pending approval (not your own; high risk needs 2 reviewers)",
    "reject": "reject a version pending approval (needs --reason)",
    "promote": "next step: approved -> shadow -> canary steps -> production (gated)",
    "switch": "blue-green switch of a shadow or canary version to production (gated)",
    "rollback": "roll back a canary, or production to the standby version (needs --reason)",
    "retire": "retire a version that does not serve",
}


def add_parser(subparsers) -> None:
    reg = subparsers.add_parser("registry", help="list versions and approve, promote, roll back")
    sub = reg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="versions with their states and approvals")
    _common(listing)
    listing.add_argument("--model", help="only this model")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    history = sub.add_parser("history", help="a model's audit trail")
    _common(history)
    history.add_argument("model")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=cmd_history)
    for command, action in ACTION_COMMANDS.items():
        p = sub.add_parser(command, help=HELP[action])
        _common(p)
        p.add_argument("model")
        p.add_argument("version")
        p.add_argument("--actor", required=True, help="who acts (e-mail in the role mapping)")
        p.add_argument("--reason", help="why (required for reject and rollback)")
        p.add_argument(
            "--expected-revision",
            type=int,
            help="fail with a conflict unless the version is still at this revision",
        )
        if action == "promote":
            p.add_argument("--share", type=float, help="canary traffic share for this step")
        if action in ("promote", "switch"):
            p.add_argument(
                "--override-gates",
                action="store_true",
                help="admin only, with --reason: take production despite a failing gate",
            )
        p.add_argument("--config", help="identity config (default: $LIFECYCLE_CONFIG, else "
                       "lifecycle.toml)")  # fmt: skip
        p.set_defaults(func=cmd_action, action=action)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="if the app holds the database, seconds to wait for it to run this (default 60)",
    )


def cmd_list(args) -> int:
    params = {"action": "list", "model": args.model, "json": args.json}
    return _run(args, params)


def cmd_history(args) -> int:
    return _run(args, {"action": "history", "model": args.model, "json": args.json})


def cmd_action(args) -> int:
    try:
        actor = load_identity_config(args.config).actor(args.actor)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    kwargs = {"reason": args.reason, "expected_revision": args.expected_revision}
    if args.action == "promote":
        kwargs["share"] = args.share
    if args.action in ("promote", "switch"):
        kwargs["override_gates"] = args.override_gates
    params = {"action": args.action, "model": args.model, "version": args.version,
              "actor": actor.name, "roles": sorted(actor.roles), "kwargs": kwargs}  # fmt: skip
    return _run(args, params)


def _run(args, params: dict) -> int:
    """Here, or through the app's process when it holds the database (lifecycle.requests)."""
    from lifecycle import requests

    db_path = resolve_db_path(args.db)
    if not db_path.exists():
        print(f"error: no database at {db_path}", file=sys.stderr)
        return EXIT_REFUSED
    request = {"kind": "registry", "error_exit": EXIT_UNANSWERED, **params}
    return requests.run(db_path, request, wait=args.wait)


def serve_request(store, params: dict):
    """One registry request; refusals and conflicts come back as exit codes, not exceptions."""
    from lifecycle.requests import Outcome

    if params["action"] == "list":
        return Outcome(0, stdout=_list_text(store, params["model"], params["json"]))
    if params["action"] == "history":
        return Outcome(0, stdout=_history_text(store, params["model"], params["json"]))
    actor = Actor(params["actor"], frozenset(params["roles"]))
    try:
        result = registry.act(
            store, actor, params["action"], params["model"], params["version"], **params["kwargs"]
        )
    except registry.Conflict as exc:
        return Outcome(EXIT_CONFLICT, stderr=f"conflict: {exc}")
    except (PermissionDenied, registry.RegistryError) as exc:
        return Outcome(EXIT_REFUSED, stderr=f"refused: {exc}")
    return Outcome(
        0,
        stdout=f"{result.message} ({result.from_state} -> {result.to_state}, revision "
        f"{result.revision}, audit {', '.join(map(str, result.audit_ids))})",
        data={"revision": result.revision, "audit_ids": list(result.audit_ids)},
    )


def _list_text(store, model: str | None, as_json: bool) -> str:
    frame = registry.registry_table(store, model)
    if as_json:
        return json.dumps(frame.to_dict("records"), indent=2, default=str)
    if frame.empty:
        return "no versions registered"
    columns = ["model", "version", "state", "risk_tier", "approvals", "quorum", "canary_share",
               "registered_by", "revision"]  # fmt: skip
    return frame[columns].to_string(index=False)


def _history_text(store, model: str, as_json: bool) -> str:
    frame = registry.lifecycle_history(store, model)
    if as_json:
        return json.dumps(frame.to_dict("records"), indent=2, default=str)
    columns = ["ts", "actor", "action", "version", "from_state", "to_state", "reason"]
    return frame[columns].to_string(index=False) if len(frame) else "no history"
