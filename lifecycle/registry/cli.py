"""`python -m lifecycle registry ...`: drive the state machine from pipelines, audited.

The caller is identified by its API token ($LIFECYCLE_TOKEN, checked against the hashes in
the identity configuration by the process that acts); only in development mode (no token
configured) is --actor believed. Roles come from the acting process's identity configuration
(lifecycle.toml or $LIFECYCLE_CONFIG, see docs/governance.md), exactly as in the app.
Exit codes: 0 done, 2 refused (permission, state, rule, gate or input; nothing changed),
3 the app holding the database did not answer within --wait (the request is withdrawn if it
had not started) or failed, 4 conflict (someone changed it at the same moment; nothing changed).

While the app holds the database, each command runs in the app's process through the request
queue (lifecycle.requests), with the same checks, output and exit codes. The parser is in
lifecycle.commands.
"""

from __future__ import annotations

import sys

from lifecycle import jsonout, registry
from lifecycle.identity import (
    ConfigError,
    IdentityError,
    PermissionDenied,
    caller_token,
    load_identity_config,
    request_identity,
)
from lifecycle.store import resolve_db_path

EXIT_REFUSED, EXIT_UNANSWERED, EXIT_CONFLICT = 2, 3, 4
# what a request may pass to registry.act (never `at`: the time of record is the server's)
ACTION_OPTIONS = ("reason", "expected_revision", "share", "override_gates")


def cmd_list(args) -> int:
    params = {"action": "list", "model": args.model, "json": args.json}
    return _run(args, params)


def cmd_history(args) -> int:
    return _run(args, {"action": "history", "model": args.model, "json": args.json})


def _identity_params(args) -> dict | None:
    """Who the caller says it is, checked here first for a quick answer; the process that
    acts checks again against its own configuration. None (after printing why) if refused."""
    token = caller_token()
    try:
        load_identity_config(args.config).caller(args.actor, token)
    except (ConfigError, IdentityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return {"actor": args.actor, "token": token, "config": args.config}


def cmd_action(args) -> int:
    identity = _identity_params(args)
    if identity is None:
        return EXIT_REFUSED
    kwargs = {"reason": args.reason, "expected_revision": args.expected_revision}
    if args.action == "promote":
        kwargs["share"] = args.share
    if args.action in ("promote", "switch"):
        kwargs["override_gates"] = args.override_gates
    params = {"action": args.action, "model": args.model, "version": args.version,
              "kwargs": kwargs, **identity}  # fmt: skip
    return _run(args, params)


def cmd_set_risk_tier(args) -> int:
    identity = _identity_params(args)
    if identity is None:
        return EXIT_REFUSED
    params = {"action": "set_risk_tier", "model": args.model, "tier": args.tier,
              "kwargs": {"reason": args.reason}, **identity}  # fmt: skip
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
    try:
        actor, how = request_identity(params)
    except (ConfigError, IdentityError, ValueError) as exc:
        return Outcome(EXIT_REFUSED, stderr=f"refused: {exc}")
    note = f"acting as {actor.name} ({how})"
    try:
        if params["action"] == "set_risk_tier":
            change = registry.set_risk_tier(
                store, actor, params["model"], params["tier"], reason=params["kwargs"]["reason"]
            )
            return Outcome(0, stdout=change.message, stderr=note)
        kwargs = {k: v for k, v in params["kwargs"].items() if k in ACTION_OPTIONS}
        result = registry.act(
            store, actor, params["action"], params["model"], params["version"], **kwargs
        )
    except registry.Conflict as exc:
        return Outcome(EXIT_CONFLICT, stderr=f"conflict: {exc}\n{note}")
    except (PermissionDenied, registry.RegistryError) as exc:
        return Outcome(EXIT_REFUSED, stderr=f"refused: {exc}\n{note}")
    return Outcome(
        0,
        stderr=note,
        stdout=f"{result.message} ({result.from_state} -> {result.to_state}, revision "
        f"{result.revision}, audit {', '.join(map(str, result.audit_ids))})",
        data={"revision": result.revision, "audit_ids": list(result.audit_ids)},
    )


def _list_text(store, model: str | None, as_json: bool) -> str:
    frame = registry.registry_table(store, model)
    if as_json:
        return jsonout.dumps(frame.to_dict("records"))
    if frame.empty:
        return "no versions registered"
    columns = ["model", "version", "state", "risk_tier", "approvals", "quorum", "canary_share",
               "registered_by", "revision"]  # fmt: skip
    return frame[columns].to_string(index=False)


def _history_text(store, model: str, as_json: bool) -> str:
    frame = registry.lifecycle_history(store, model)
    if as_json:
        return jsonout.dumps(frame.to_dict("records"))
    columns = ["ts", "actor", "action", "version", "from_state", "to_state", "reason"]
    return frame[columns].to_string(index=False) if len(frame) else "no history"
