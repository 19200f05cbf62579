"""Model registry: the version state machine, approvals, promotion gates, rollouts, audit.

Public API (see docs/governance.md):
- actions: request_approval, approve, reject, promote, switch, rollback, retire, or act(action)
  -> Transition; set_risk_tier (admin, audited) -> TierChange; errors: PermissionDenied, RegistryError (GateBlocked), Conflict;
- reads: version_status, serving_versions, lifecycle_history, registry_table,
  available_actions (what a page may offer an actor, with why a blocked one is blocked),
  review_queue and review_kind (the versions awaiting review: who must approve, who may not),
  promotion_gates, canary_recommendation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from lifecycle.identity import Actor, require
from lifecycle.registry.gates import Gate, canary_recommendation, promotion_gates
from lifecycle.registry.machine import (
    ACTIONS,
    APPROVED,
    CANARY,
    DEFAULT_CANARY_STEPS,
    PENDING,
    PERMISSION,
    PLANNERS,
    PRODUCTION,
    QUORUM,
    REASON_REQUIRED,
    REGISTERED,
    REJECTED,
    RETIRED,
    ROLLED_BACK,
    SERVING,
    SHADOW,
    SOURCES,
    STANDBY,
    STATES,
    Conflict,
    GateBlocked,
    RegistryError,
    TierChange,
    Transition,
    _deployment_row,
    _version_row,
    audit_entries,
    audit_facets,
    lifecycle_history,
    next_canary_share,
    perform,
    registry_table,
    retirement_consequences,
    serving_versions,
    set_risk_tier,
    version_status,
)
from lifecycle.store import Store

__all__ = [
    "ACTIONS", "APPROVED", "CANARY", "DEFAULT_CANARY_STEPS", "PENDING", "PRODUCTION", "QUORUM",
    "REASON_REQUIRED", "REGISTERED", "REJECTED", "RETIRED", "ROLLED_BACK", "SERVING", "SHADOW",
    "SOURCES", "STANDBY", "STATES", "ActionOption", "Conflict", "Gate", "GateBlocked",
    "RegistryError", "TierChange", "Transition", "act", "approve", "audit_entries", "audit_facets", "available_actions",
    "canary_recommendation", "lifecycle_history", "next_canary_share", "promote",
    "promotion_gates", "publish_routes", "registry_table", "reject", "request_approval", "retire", "retirement_consequences", "retirement_impact", "review_kind", "review_queue",
    "rollback",
    "serving_versions", "set_risk_tier", "switch", "version_status",
]  # fmt: skip


def _goes_to_production(action: str, status: dict, share: float | None) -> bool:
    if action == "switch":
        return True
    if action != "promote" or status["state"] != CANARY or share is not None:
        return False
    return next_canary_share(status["deployment"]["canary_share"]) is None


def act(
    store: Store,
    actor: Actor,
    action: str,
    model: str,
    version: str,
    *,
    reason: str | None = None,
    expected_revision: int | None = None,
    share: float | None = None,
    at: datetime | None = None,
    override_gates: bool = False,
    confirm: bool = False,
) -> Transition:
    """Apply `action` to a version. A move into production first evaluates the promotion
    gates and raises GateBlocked (changing nothing) if one fails, unless an admin overrides
    them with a reason; the gates' evidence (and the override) go into the audit row."""
    if action in PERMISSION:
        require(actor, PERMISSION[action])  # before anything is read
    if override_gates:
        require(actor, "override_gates")
        if not (reason or "").strip():
            raise RegistryError("overriding a failing gate needs a reason")
    gates, pointer_revision = None, None
    if action in ("promote", "switch"):
        status = version_status(store, model, version)
        stale = expected_revision is not None and status["revision"] != expected_revision
        valid = status["state"] in SOURCES[action]  # else perform() names the state
        if (
            not stale and valid and _goes_to_production(action, status, share)
        ):  # stale: perform() says so
            champion = status["deployment"]["production"]
            results = promotion_gates(store, model, version, champion)
            failed = [g for g in results if not g.passed]
            if failed and not override_gates:
                raise GateBlocked(
                    f"{model} {version} may not take production: "
                    + "; ".join(f"{g.name}: {g.detail}" for g in failed),
                    results,
                )
            gates = [{"name": g.name, "passed": g.passed, "detail": g.detail} for g in results]
            if failed:
                detail = f"failing gates overridden by {actor.name} (admin)"
                gates.append({"name": "override", "passed": True, "detail": detail})
            # the gates were evaluated on this revision of the version and against the
            # production version of this revision of the pointer: promote only if both
            # are still current when the transaction writes (perform checks inside it)
            expected_revision = status["revision"]
            pointer_revision = status["deployment"]["revision"]
    result = perform(
        store,
        actor,
        action,
        model,
        version,
        expected_revision=expected_revision,
        reason=reason,
        share=share,
        gates=gates,
        at=at,
        expected_pointer=(pointer_revision,) if gates is not None else None,
        confirm=confirm,
    )
    if action in ROUTING_ACTIONS:
        publish_routes(store)
    return result


ROUTING_ACTIONS = ("promote", "switch", "rollback", "retire")  # what can change serving


def publish_routes(store: Store) -> dict:
    """Publish the desired serving state (lifecycle.registry.routes) after a change; a
    broken [routes] table is recorded in the audit log, never undoes the change."""
    from lifecycle.audit import append_audit
    from lifecycle.registry import routes

    try:
        return routes.publish(store)
    except routes.RoutesConfigError as exc:
        with store.transaction() as cur:
            append_audit(cur, actor="system:routes", action="routes_publish_failed",
                         reason=str(exc))  # fmt: skip
        return {"problems": [str(exc)]}


def retirement_impact(store: Store, model: str, version: str) -> dict:
    """What retiring the version would affect (`consequences`, in words), whether the caller
    must confirm it (`needs_confirmation`: the standby, or a version receiving traffic), and
    whether it may be retired at all in its state (`allowed`)."""
    with store.cursor() as cur:
        row, dep = _version_row(cur, model, version), _deployment_row(cur, model)
    if row["state"] not in SOURCES["retire"]:
        return {"allowed": False, "needs_confirmation": False,
                "consequences": [f"{row['state']}: cannot be retired in this state"]}  # fmt: skip
    consequences, serious = retirement_consequences(row, dep)
    return {"allowed": True, "needs_confirmation": serious, "consequences": consequences}


def request_approval(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "request_approval", model, version, **kw)


def approve(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "approve", model, version, **kw)


def reject(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "reject", model, version, **kw)


def promote(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "promote", model, version, **kw)


def switch(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "switch", model, version, **kw)


def rollback(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "rollback", model, version, **kw)


def retire(store, actor, model, version, **kw) -> Transition:
    return act(store, actor, "retire", model, version, **kw)


# -- what a page may offer ----------------------------------------------------------------------


@dataclass
class ActionOption:
    action: str
    label: str
    allowed: bool
    why: str | None  # why it is blocked (rule or failing gate)
    needs_reason: bool
    gates: list[Gate] | None = None


def _label(action: str, status: dict) -> str:
    state, dep = status["state"], status["deployment"]
    if action == "promote":
        if state == APPROVED:
            return "Start shadow"
        nxt = next_canary_share(dep["canary_share"] if state == CANARY else None)
        if state == SHADOW:
            return f"Start canary at {nxt:.0%}"
        return f"Raise canary to {nxt:.0%}" if nxt is not None else "Promote to production"
    return {
        "request_approval": "Request approval",
        "approve": "Approve",
        "reject": "Reject",
        "switch": "Blue-green switch to production",
        "rollback": "Roll back",
        "retire": "Retire",
    }[action]


def available_actions(
    store: Store, actor: Actor | None, model: str, version: str, *, with_gates: bool = True
) -> list[ActionOption]:
    """Actions the actor's roles hold that the version's state allows, each with whether the
    rules (four-eyes, quorum, pointer) and, for a move into production, the gates let it
    through now; the library checks all of it again when the action is taken."""
    if actor is None:
        return []
    status = version_status(store, model, version)
    options = []
    for action in ACTIONS:
        if not actor.can(PERMISSION[action]) or status["state"] not in SOURCES[action]:
            continue
        why, gates = None, None
        try:
            with store.cursor() as cur:
                row, dep = _version_row(cur, model, version), _deployment_row(cur, model)
            # a retirement's consequences are confirmed in the dialog, not a reason to refuse
            PLANNERS[action](actor, row, dep, "dry run", confirm=True)
        except RegistryError as exc:
            why = str(exc)
        if why is None and with_gates and _goes_to_production(action, status, None):
            gates = promotion_gates(store, model, version, status["deployment"]["production"])
            failed = [g for g in gates if not g.passed]
            if failed:
                why = "; ".join(f"{g.name}: {g.detail}" for g in failed)
        options.append(
            ActionOption(
                action,
                _label(action, status),
                why is None,
                why,
                action in REASON_REQUIRED,
                gates,
            )
        )
    return options


# -- the review queue ---------------------------------------------------------------------------


def review_kind(quorum: int) -> str:
    """Who must approve, in words: a peer review (one reviewer) or a committee of
    `quorum` distinct reviewers."""
    if quorum <= 1:
        return "peer review (one reviewer)"
    return f"committee review ({quorum} distinct reviewers)"


def _may_approve(actor: Actor, row: dict, dep: dict) -> str | None:
    """None if `actor` may approve the pending version now, else why not."""
    if not actor.can(PERMISSION["approve"]):
        return f"{actor.name} has no role that approves (reviewer or admin)"
    try:
        PLANNERS["approve"](actor, row, dep, "dry run")
    except RegistryError as exc:
        return str(exc)
    return None


def review_queue(
    store: Store, actor: Actor | None = None, people: Iterable[Actor] = (), model: str | None = None
) -> list[dict]:
    """Every version pending approval (of `model`, or all), oldest request first: its risk
    tier, quorum and review_kind, the approvals so far, who requested it and when, who may not
    approve it (four-eyes: registrant, requester, owner), which of `people` may approve it
    now, and whether `actor` may (`actor_may_approve`, `actor_why_not`)."""
    pending = store.query_df(
        "SELECT v.model_name, v.version, max(a.ts) AS requested_at FROM model_versions v "
        "LEFT JOIN audit_log a ON a.model_name = v.model_name AND a.version = v.version "
        "AND a.action = 'request_approval' WHERE v.state = ? AND (? IS NULL OR v.model_name = ?) "
        "GROUP BY ALL ORDER BY requested_at, v.model_name, v.version",
        [PENDING, model, model],
    )
    queue = []
    for name, version, requested_at in pending.itertuples(index=False):
        with store.cursor() as cur:
            row, dep = _version_row(cur, name, version), _deployment_row(cur, name)
        excluded: dict[str, list[str]] = {}
        for who, why in (
            (row["registered_by"], "registered it"),
            (row["requested_by"], "requested the review"),
            (row["owner"], "owns it"),
        ):
            if who:
                excluded.setdefault(who.lower(), []).append(why)
        why_not = None if actor is None else _may_approve(actor, row, dep)
        queue.append(
            {
                "model": name,
                "version": version,
                "risk_tier": row["risk_tier"],
                "quorum": row["quorum"],
                "review_kind": review_kind(row["quorum"]),
                "approvers": row["approvers"],
                "requested_by": row["requested_by"],
                "requested_at": requested_at,
                "may_not_approve": {who: " and ".join(why) for who, why in excluded.items()},
                "eligible": [p.name for p in people if _may_approve(p, row, dep) is None],
                "actor": None if actor is None else actor.name,
                "actor_may_approve": actor is not None and why_not is None,
                "actor_why_not": why_not,
            }
        )
    return queue


def registry_revision(store) -> int:
    """A number that grows with every registry change: a cache key for registry reads."""
    row = store.query_one("SELECT coalesce(sum(revision), 0) + count(*) FROM model_versions")
    return int(row[0])
