"""`python -m lifecycle registry ...`: drive the state machine from pipelines, audited.

The actor is named with --actor (an e-mail); its roles come from the identity configuration
(lifecycle.toml or $LIFECYCLE_CONFIG, see docs/governance.md), exactly as in the app.
Exit codes: 0 done, 2 refused (permission, state, rule, gate or input; nothing changed),
4 conflict (someone changed it at the same moment; nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys

from lifecycle import registry
from lifecycle.identity import ConfigError, PermissionDenied, load_identity_config
from lifecycle.store import open_store

EXIT_REFUSED, EXIT_CONFLICT = 2, 4
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


def cmd_list(args) -> int:
    with open_store(args.db, wait_seconds=10) as store:
        frame = registry.registry_table(store, args.model)
    if args.json:
        print(json.dumps(frame.to_dict("records"), indent=2, default=str))
        return 0
    if frame.empty:
        print("no versions registered")
        return 0
    columns = ["model", "version", "state", "risk_tier", "approvals", "quorum", "canary_share",
               "registered_by", "revision"]  # fmt: skip
    print(frame[columns].to_string(index=False))
    return 0


def cmd_history(args) -> int:
    with open_store(args.db, wait_seconds=10) as store:
        frame = registry.lifecycle_history(store, args.model)
    if args.json:
        print(json.dumps(frame.to_dict("records"), indent=2, default=str))
        return 0
    columns = ["ts", "actor", "action", "version", "from_state", "to_state", "reason"]
    print(frame[columns].to_string(index=False) if len(frame) else "no history")
    return 0


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
    with open_store(args.db, wait_seconds=10) as store:
        try:
            result = registry.act(store, actor, args.action, args.model, args.version, **kwargs)
        except registry.Conflict as exc:
            print(f"conflict: {exc}", file=sys.stderr)
            return EXIT_CONFLICT
        except (PermissionDenied, registry.RegistryError) as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    print(
        f"{result.message} ({result.from_state} -> {result.to_state}, revision "
        f"{result.revision}, audit {', '.join(map(str, result.audit_ids))})"
    )
    return 0
