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
from lifecycle.model_card import ModelCardError
from lifecycle.store import resolve_db_path

EXIT_REFUSED, EXIT_UNANSWERED, EXIT_CONFLICT = 2, 3, 4
# what a request may pass to registry.act (never `at`: the time of record is the server's)
ACTION_OPTIONS = ("reason", "expected_revision", "share", "override_gates", "confirm")


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
    if args.action == "retire":
        kwargs["confirm"] = args.confirm
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


def cmd_routes(args) -> int:
    return _run(args, {"action": "routes", "model": args.model, "json": args.json,
                       "publish": args.publish})  # fmt: skip


def _routes_text(store, params: dict) -> str:
    import json

    from lifecycle.registry import routes

    lines = []
    if params.get("publish"):
        outcome = registry.publish_routes(store)
        lines.append(
            f"published: file {outcome.get('file') or 'not configured'}, webhook "
            f"{outcome.get('webhook') or 'not configured'}"
            + "".join(f"; {p}" for p in outcome.get("problems", []))
        )
    state = routes.desired_state(store, params.get("model"))
    if params.get("json"):
        return json.dumps(state, indent=2, sort_keys=True)
    for name, m in state["models"].items():
        canary = f", canary {m['canary']} {m['canary_share']:.0%}" if m["canary"] else ""
        shadow = f", shadow {', '.join(m['shadow'])}" if m["shadow"] else ""
        lines.append(f"{name}: production {m['production'] or 'none'} "
                     f"{m['production_share']:.0%}{canary}{shadow}, standby "
                     f"{m['standby'] or 'none'}")  # fmt: skip
    lines.append(f"(as of audit {state['audit_id']})")
    return "\n".join(lines)


def cmd_card(args) -> int:
    """Print or export the version's model card, or write a new revision from --file."""
    from pathlib import Path

    from lifecycle.model_card import ModelCardError, load_card_file

    params = {"action": "card", "model": args.model, "version": args.version}
    if args.out:
        suffix = Path(args.out).suffix.lower()
        if suffix not in (".md", ".html", ".htm"):
            print(f"error: --out must end in .md or .html, not {args.out!r}", file=sys.stderr)
            return EXIT_REFUSED
        params["out"] = str(Path(args.out).resolve())
    if args.file:
        if not (args.reason or "").strip():
            print("error: writing a model card needs --reason (what changed)", file=sys.stderr)
            return EXIT_REFUSED
        try:
            card = load_card_file(args.file)
        except ModelCardError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        identity = _identity_params(args)
        if identity is None:
            return EXIT_REFUSED
        params |= {"action": "write_card", "card": card, "kwargs": {"reason": args.reason},
                   **identity}  # fmt: skip
    return _run(args, params)


def _card_request(store, params: dict, actor=None):
    """Serve `registry card`: write a revision (actor given), then show or export."""
    from pathlib import Path

    from lifecycle import model_card as cards
    from lifecycle.requests import Outcome

    lines = []
    if actor is not None:
        done = cards.write_card(store, actor, params["model"], params["version"], params["card"],
                                params["kwargs"]["reason"])  # fmt: skip
        lines.append(f"{params['model']} {params['version']}: model card revision "
                     f"{done['revision']} written (audit {done['audit_id']})")  # fmt: skip
    stored = cards.current_card(store, params["model"], params["version"])
    if stored is None:
        return Outcome(EXIT_REFUSED, stderr=f"refused: {params['model']} {params['version']} "
                       "has no model card; write one with --file card.toml --reason ...")  # fmt: skip
    description = store.query_one("SELECT description FROM models WHERE name = ?",
                                  [params["model"]])[0]  # fmt: skip
    if params.get("out"):
        out = Path(params["out"])
        render = cards.to_markdown if out.suffix.lower() == ".md" else cards.to_html
        text = render(stored, description=description)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        lines.append(f"wrote {out} (model card revision {stored.revision})")
    elif actor is None:
        lines.append(cards.to_markdown(stored, description=description).rstrip())
    return Outcome(0, stdout="\n".join(lines))


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
    if params["action"] == "card":
        return _card_request(store, params)
    if params["action"] == "routes":
        return Outcome(0, stdout=_routes_text(store, params))
    try:
        actor, how = request_identity(params)
    except (ConfigError, IdentityError, ValueError) as exc:
        return Outcome(EXIT_REFUSED, stderr=f"refused: {exc}")
    note = f"acting as {actor.name} ({how})"
    try:
        if params["action"] == "write_card":
            outcome = _card_request(store, params, actor)
            outcome.stderr = "\n".join(filter(None, [outcome.stderr, note]))
            return outcome
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
    except (PermissionDenied, registry.RegistryError, ModelCardError) as exc:
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
