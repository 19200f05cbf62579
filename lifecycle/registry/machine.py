"""The model-version state machine, enforced here (pages only offer what is allowed).

registered -> pending_approval -> approved | rejected -> shadow -> canary (steps) -> production
-> standby (when replaced) -> retired; rollback from canary or production (to the standby).

Every action is ONE transaction: check the actor's permission, read the version row and the
model's deployment pointer row, check the state and the revision the caller read
(compare-and-swap), write the state changes with one audit row per version whose state
changed, or nothing at all. A concurrent writer makes the later one fail with Conflict, either
because its expected revision is stale or because DuckDB's optimistic concurrency control
refuses its update of the same row; both leave the database unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from lifecycle import model_card
from lifecycle.audit import append_audit
from lifecycle.identity import Actor, require
from lifecycle.store import Store

REGISTERED, PENDING, APPROVED, REJECTED = "registered", "pending_approval", "approved", "rejected"
SHADOW, CANARY, PRODUCTION, STANDBY = "shadow", "canary", "production", "standby"
ROLLED_BACK, RETIRED = "rolled_back", "retired"
STATES = (
    REGISTERED, PENDING, APPROVED, REJECTED, SHADOW, CANARY, PRODUCTION, STANDBY, ROLLED_BACK,
    RETIRED,
)  # fmt: skip
SERVING = (CANARY, PRODUCTION)  # answer real requests

ACTIONS = ("request_approval", "approve", "reject", "promote", "switch", "rollback", "retire")
# action -> the states it may start from
SOURCES: dict[str, tuple[str, ...]] = {
    "request_approval": (REGISTERED, REJECTED, ROLLED_BACK),
    "approve": (PENDING,),
    "reject": (PENDING,),
    "promote": (APPROVED, SHADOW, CANARY),
    "switch": (SHADOW, CANARY),
    "rollback": (CANARY, PRODUCTION),
    "retire": (REGISTERED, PENDING, APPROVED, REJECTED, SHADOW, STANDBY, ROLLED_BACK),
}
PERMISSION = {action: ("promote" if action == "switch" else action) for action in ACTIONS}
REASON_REQUIRED = ("reject", "rollback")
QUORUM = {"low": 1, "high": 2}
DEFAULT_CANARY_STEPS = (0.01, 0.05, 0.25, 0.5)


class RegistryError(ValueError):
    """The action is not allowed here (state, rule or input named); nothing was changed."""


class Conflict(RuntimeError):
    """Someone changed this model or version since it was loaded; nothing was changed."""


class GateBlocked(RegistryError):
    """A promotion gate failed; `gates` holds every gate with its evidence."""

    def __init__(self, message: str, gates: list):
        super().__init__(message)
        self.gates = gates


@dataclass
class Transition:
    """The outcome of one successful action."""

    model: str
    version: str
    action: str
    from_state: str
    to_state: str
    revision: int
    audit_ids: list[int]
    canary_share: float | None = None
    message: str = ""


@dataclass
class _Change:
    version: str
    from_state: str
    to_state: str
    action: str
    reason: str | None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Plan:
    """What an action writes, computed from the rows it read."""

    changes: list[_Change]
    deployment: dict[str, Any] | None = None  # new values of the pointer row, if it changes
    approval: tuple[str, str | None] | None = None  # (decision, reason) of the actor
    rollouts: list[tuple[str, str, float]] = field(default_factory=list)  # version, variant, share
    new_round: bool = False
    message: str = ""


# -- reads -------------------------------------------------------------------------------------


def _version_row(cur, model: str, version: str) -> dict[str, Any]:
    rows = cur.execute(
        "SELECT v.state, v.revision, v.registered_by, coalesce(v.review_round, 0), m.risk_tier, "
        "v.review_requested_by, v.review_quorum, json_extract_string(v.spec, '$.owner') "
        "FROM model_versions v JOIN models m ON m.name = v.model_name "
        "WHERE v.model_name = ? AND v.version = ?",
        [model, version],
    ).fetchall()
    if not rows:
        known = [
            r[0]
            for r in cur.execute(
                "SELECT version FROM model_versions WHERE model_name = ? ORDER BY registered_at",
                [model],
            ).fetchall()
        ]
        if not known:
            raise RegistryError(f"unknown model {model!r}")
        raise RegistryError(f"{model} has no version {version!r} (versions: {', '.join(known)})")
    state, revision, registered_by, review_round, risk, requested_by, review_quorum, owner = rows[0]
    approvers = [
        r[0]
        for r in cur.execute(
            "SELECT reviewer FROM approvals WHERE model_name = ? AND version = ? "
            "AND decision = 'approve' AND review_round = ? ORDER BY decided_at",
            [model, version, review_round],
        ).fetchall()
    ]
    return {
        "model": model,
        "version": version,
        "state": state,
        "revision": int(revision),
        "registered_by": registered_by,
        "review_round": int(review_round),
        "risk_tier": risk,
        "owner": owner,
        "requested_by": requested_by,
        # a review keeps the quorum it was requested with; a new request takes the tier's
        "quorum": review_quorum if state == PENDING and review_quorum else QUORUM.get(risk, 2),
        "approvers": approvers,
        **_card_fields(cur, model, version, state, risk),
    }


def _card_fields(cur, model: str, version: str, state: str, risk: str) -> dict[str, Any]:
    """Before review and approval: the governance policy's verdict on the version's model
    card (lifecycle.model_card) and the revision a reviewer sees."""
    if state not in (*SOURCES["request_approval"], *SOURCES["approve"]):
        return {"card_problem": None, "card_revision": None}
    stored = model_card.latest(cur, model, version)
    return {
        "card_problem": model_card.card_problem(cur, model, version, risk),
        "card_revision": stored.revision if stored else None,
    }


def _deployment_row(cur, model: str) -> dict[str, Any]:
    rows = cur.execute(
        "SELECT production_version, previous_version, canary_version, canary_share, revision "
        "FROM deployments WHERE model_name = ?",
        [model],
    ).fetchall()
    if not rows:
        return {
            "production": None,
            "standby": None,
            "canary": None,
            "canary_share": None,
            "revision": None,
        }
    production, standby, canary, share, revision = rows[0]
    return {
        "production": production,
        "standby": standby,
        "canary": canary,
        "canary_share": share,
        "revision": int(revision),
    }


def version_status(store: Store, model: str, version: str) -> dict[str, Any]:
    """State, revision (for compare-and-swap), registrant, risk tier, quorum and the
    approvers counted in the current review round."""
    with store.cursor() as cur:
        row = _version_row(cur, model, version)
        row["deployment"] = _deployment_row(cur, model)
    return row


def serving_versions(store: Store, model: str) -> dict[str, Any]:
    """Which versions serve: production, canary with its traffic share, shadows, standby;
    plus every version's state and the pointer row's revision."""
    with store.cursor() as cur:
        dep = _deployment_row(cur, model)
        states = dict(
            cur.execute(
                "SELECT version, state FROM model_versions WHERE model_name = ? "
                "ORDER BY registered_at",
                [model],
            ).fetchall()
        )
    return {
        "model": model,
        "production": dep["production"],
        "canary": dep["canary"],
        "canary_share": dep["canary_share"],
        "shadow": [v for v, s in states.items() if s == SHADOW],
        "standby": dep["standby"],
        "states": states,
        "revision": dep["revision"],
    }


def lifecycle_history(store: Store, model: str, version: str | None = None) -> pd.DataFrame:
    """The model's audit rows (registration, reviews, promotions, ...) oldest first."""
    return store.query_df(
        "SELECT audit_id, ts, actor, action, version, from_state, to_state, reason, evidence "
        "FROM audit_log WHERE model_name = ? AND (? IS NULL OR version = ?) "
        "ORDER BY ts, audit_id",
        [model, version, version],
    )


def audit_entries(
    store: Store,
    *,
    models: list[str] | None = None,
    actors: list[str] | None = None,
    actions: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> pd.DataFrame:
    """Audit rows matching every given filter (None: no filter), newest first."""
    return store.query_df(
        """
        SELECT audit_id, ts, actor, action, model_name AS model, version, from_state, to_state,
               reason, evidence
        FROM audit_log
        WHERE (? IS NULL OR list_contains(?, model_name))
          AND (? IS NULL OR list_contains(?, actor))
          AND (? IS NULL OR list_contains(?, action))
          AND (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?)
        ORDER BY ts DESC, audit_id DESC LIMIT ?
        """,
        [models, models, actors, actors, actions, actions, since, since, until, until, limit],
    )


def audit_facets(store: Store) -> dict[str, list[str]]:
    """The models, actors and actions that occur in the audit log (for filter pickers)."""
    out = {}
    for key, column in (("models", "model_name"), ("actors", "actor"), ("actions", "action")):
        out[key] = [
            r[0]
            for r in store.query_all(
                f"SELECT DISTINCT {column} FROM audit_log WHERE {column} IS NOT NULL ORDER BY 1"
            )
        ]
    return out


def registry_table(store: Store, model: str | None = None) -> pd.DataFrame:
    """Every version with its state, risk tier, registrant, approvals in the current round
    and the quorum it needs, and its canary share when in canary."""
    return store.query_df(
        """
        SELECT v.model_name AS model, v.version, v.state, m.risk_tier, m.owner,
               v.registered_by, v.registered_at, v.state_changed_at, v.revision,
               (SELECT count(DISTINCT a.reviewer) FROM approvals a
                 WHERE a.model_name = v.model_name AND a.version = v.version
                   AND a.decision = 'approve'
                   AND a.review_round = coalesce(v.review_round, 0)) AS approvals,
               CASE WHEN v.state = 'pending_approval' AND v.review_quorum IS NOT NULL
                    THEN v.review_quorum WHEN m.risk_tier = 'low' THEN 1 ELSE 2 END AS quorum,
               CASE WHEN d.canary_version = v.version THEN d.canary_share END AS canary_share
        FROM model_versions v JOIN models m ON m.name = v.model_name
        LEFT JOIN deployments d ON d.model_name = v.model_name
        WHERE ? IS NULL OR v.model_name = ?
        ORDER BY v.model_name, v.registered_at
        """,
        [model, model],
    )


# -- planning: what each action changes, given what it read -------------------------------------


def next_canary_share(current: float | None, steps=DEFAULT_CANARY_STEPS) -> float | None:
    """The next traffic share after `current` (None: the first step); None means production."""
    if current is None:
        return steps[0]
    later = [s for s in steps if s > current + 1e-12]
    return later[0] if later else None


def _plan_request(actor, row, dep, reason, **_) -> _Plan:
    if row.get("card_problem"):
        raise RegistryError(row["card_problem"])
    change = _Change(row["version"], row["state"], PENDING, "request_approval", reason)
    quorum = QUORUM.get(row["risk_tier"], 2)
    change.evidence = {"review_round": row["review_round"] + 1, "quorum": quorum,
                       "model_card_revision": row.get("card_revision")}  # fmt: skip
    return _Plan([change], new_round=True, message="sent for review")


def _same_person(a: str, b: str | None) -> bool:
    return b is not None and a.strip().lower() == b.strip().lower()


def _plan_approve(actor, row, dep, reason, **_) -> _Plan:
    if row.get("card_problem"):
        raise RegistryError(row["card_problem"])
    for role, who in (
        ("registered", row["registered_by"]),
        ("requested the review of", row["requested_by"]),
        ("owns", row["owner"]),
    ):
        if _same_person(actor.name, who):
            raise RegistryError(
                f"{actor.name} {role} {row['model']} {row['version']} and may not approve it "
                "(four-eyes rule: a reviewer never approves a version they registered, own or "
                "sent for review)"
            )
    if any(_same_person(actor.name, a) for a in row["approvers"]):
        raise RegistryError(
            f"{actor.name} already approved {row['model']} {row['version']} in this review; "
            f"a {row['risk_tier']}-risk model needs {row['quorum']} distinct reviewers"
        )
    count = len(row["approvers"]) + 1
    done = count >= row["quorum"]
    change = _Change(row["version"], row["state"], APPROVED if done else PENDING, "approve", reason)
    change.evidence = {
        "approvals": count,
        "quorum": row["quorum"],
        "approvers": [*row["approvers"], actor.name],
        "review_round": row["review_round"],
        "model_card_revision": row.get("card_revision"),
    }
    message = "approved" if done else f"approval {count} of {row['quorum']} recorded"
    return _Plan([change], approval=("approve", reason), message=message)


def _plan_reject(actor, row, dep, reason, **_) -> _Plan:
    change = _Change(row["version"], row["state"], REJECTED, "reject", reason)
    change.evidence = {"review_round": row["review_round"]}
    return _Plan([change], approval=("reject", reason), message="rejected")


def _plan_promote(actor, row, dep, reason, *, share=None, gates=None, **_) -> _Plan:
    version, state = row["version"], row["state"]
    if state == APPROVED:
        if share is not None:
            raise RegistryError("a share applies to canary steps, not to the move into shadow")
        return _Plan(
            [_Change(version, state, SHADOW, "promote", reason)],
            deployment={},  # bumps the pointer's revision: serving set changed
            rollouts=[(version, SHADOW, 0.0)],
            message="now in shadow (receives copies of requests, answers none)",
        )
    if state == SHADOW:
        if dep["production"] is None:
            raise RegistryError(
                f"{row['model']} has no production version to split traffic with; use the "
                "blue-green switch for a first release"
            )
        if dep["canary"] is not None:
            raise RegistryError(
                f"{row['model']} {dep['canary']} is already in canary; finish or roll it back first"
            )
        target = _checked_share(share, None)
        return _Plan(
            [_Change(version, state, CANARY, "promote", reason, {"canary_share": target})],
            deployment={"canary_version": version, "canary_share": target},
            rollouts=[(version, CANARY, target)],
            message=f"canary at {target:.0%} of traffic",
        )
    current = dep["canary_share"]
    target = _checked_share(share, current)
    if target is not None:
        return _Plan(
            [_Change(version, state, CANARY, "promote", reason, {"canary_share": target})],
            deployment={"canary_share": target},
            rollouts=[(version, CANARY, target)],
            message=f"canary at {target:.0%} of traffic",
        )
    return _to_production(row, dep, reason, "promote", gates)


def _checked_share(share, current) -> float | None:
    if share is None:
        return next_canary_share(current)
    share = float(share)
    if not 0 < share < 1:
        raise RegistryError(f"canary share {share} must be above 0 and below 1")
    if current is not None and share <= current:
        raise RegistryError(f"canary share {share:.0%} must be above the current {current:.0%}")
    return share


def _plan_switch(actor, row, dep, reason, *, gates=None, **_) -> _Plan:
    return _to_production(row, dep, reason, "switch", gates)


def _to_production(row, dep, reason, action, gates) -> _Plan:
    version = row["version"]
    evidence = {"gates": gates or []}
    changes = [_Change(version, row["state"], PRODUCTION, action, reason, evidence)]
    rollouts = [(version, PRODUCTION, 1.0)]
    old, standby = dep["production"], dep["standby"]
    if old is not None:
        changes.append(
            _Change(old, PRODUCTION, STANDBY, action, f"replaced by {version}", {"by": version})
        )
        rollouts.append((old, STANDBY, 0.0))
    if standby is not None and standby not in (old, version):
        # one standby slot: the older standby is retired, on the record
        changes.append(
            _Change(standby, STANDBY, RETIRED, "retire", f"standby replaced by {old}", {})
        )
    if dep["canary"] is not None and dep["canary"] != version:
        raise RegistryError(
            f"{row['model']} {dep['canary']} is in canary; finish or roll it back first"
        )
    deployment = {
        "production_version": version,
        "previous_version": old,
        "canary_version": None,
        "canary_share": None,
    }
    kind = "blue-green switch" if action == "switch" else "promotion"
    return _Plan(changes, deployment, rollouts=rollouts, message=f"in production ({kind})")


def _plan_rollback(actor, row, dep, reason, **_) -> _Plan:
    version = row["version"]
    if row["state"] == CANARY:
        change = _Change(version, CANARY, ROLLED_BACK, "rollback", reason)
        change.evidence = {"canary_share": dep["canary_share"], "production": dep["production"]}
        return _Plan(
            [change],
            {"canary_version": None, "canary_share": None},
            rollouts=[(version, CANARY, 0.0)],
            message=f"canary rolled back; {dep['production']} serves all traffic",
        )
    standby = dep["standby"]
    if standby is None:
        raise RegistryError(
            f"{row['model']} has no previous production version on standby to roll back to"
        )
    if dep["canary"] is not None:
        raise RegistryError(
            f"{row['model']} {dep['canary']} is in canary; roll the canary back first"
        )
    changes = [
        _Change(version, PRODUCTION, ROLLED_BACK, "rollback", reason, {"restored": standby}),
        _Change(standby, STANDBY, PRODUCTION, "rollback", reason, {"replaces": version}),
    ]
    return _Plan(
        changes,
        {"production_version": standby, "previous_version": None},
        rollouts=[(standby, PRODUCTION, 1.0), (version, PRODUCTION, 0.0)],
        message=f"rolled back: {standby} serves production again",
    )


def retirement_consequences(row: dict, dep: dict) -> tuple[list[str], bool]:
    """What retiring the version would affect, in words, and whether it touches traffic or
    the rollback target (then the caller must confirm it explicitly)."""
    version, state = row["version"], row["state"]
    out, serious = [], False
    if dep["standby"] == version:
        out.append(f"no rollback target remains: {version} is the standby, the only version "
                   f"`rollback` can restore if production {dep['production']} fails")  # fmt: skip
        serious = True
    if state == SHADOW:
        out.append("its shadow predictions stop, and with them the live comparison and the "
                   "evidence for promoting it")  # fmt: skip
        serious = True
    if state == PENDING:
        out.append(f"its review closes with {len(row['approvers'])} of {row['quorum']} "
                   "approval(s)")  # fmt: skip
    if state == APPROVED:
        out.append("its approval lapses")
    out.append("retirement is final: it never serves again; its history and results stay "
               "readable")  # fmt: skip
    return out, serious


def _plan_retire(actor, row, dep, reason, *, confirm: bool = False, **_) -> _Plan:
    version = row["version"]
    consequences, serious = retirement_consequences(row, dep)
    if serious and not confirm:
        raise RegistryError(
            f"retiring {row['model']} {version} needs explicit confirmation: "
            + "; ".join(consequences[:-1])
            + " (confirm=True; the CLI's --confirm; the page's checkbox)"
        )
    deployment = {"previous_version": None} if dep["standby"] == version else None
    if row["state"] == SHADOW:
        deployment = {}
    return _Plan(
        [_Change(version, row["state"], RETIRED, "retire", reason)],
        deployment,
        rollouts=[(version, row["state"], 0.0)] if row["state"] == SHADOW else [],
        message="retired",
    )


PLANNERS: dict[str, Callable[..., _Plan]] = {
    "request_approval": _plan_request,
    "approve": _plan_approve,
    "reject": _plan_reject,
    "promote": _plan_promote,
    "switch": _plan_switch,
    "rollback": _plan_rollback,
    "retire": _plan_retire,
}


def _explain_source(action: str, row: dict) -> str:
    state = row["state"]
    allowed = ", ".join(SOURCES[action])
    if action == "retire" and state in SERVING:
        hint = (
            "; retiring production needs a replacement promoted first"
            if state == PRODUCTION
            else "; roll the canary back first"
        )
    elif state == RETIRED:
        hint = "; a retired version never serves again"
    else:
        hint = ""
    return (
        f"cannot {action.replace('_', ' ')} {row['model']} {row['version']}: it is {state}, "
        f"and {action.replace('_', ' ')} applies to {allowed}{hint}"
    )


# -- the one place that writes ------------------------------------------------------------------


def perform(
    store: Store,
    actor: Actor,
    action: str,
    model: str,
    version: str,
    *,
    expected_revision: int | None = None,
    reason: str | None = None,
    share: float | None = None,
    gates: list | None = None,
    at: datetime | None = None,
    expected_pointer: tuple[int | None] | None = None,
    confirm: bool = False,
) -> Transition:
    """Apply one action as one transaction with its audit rows; see the module docstring.
    `confirm` acknowledges a retirement's serious consequences (retirement_consequences).

    `expected_revision` is the version's revision the caller showed to the user (pages pass
    it; None means "whatever it is now", still safe against concurrent writers). `at` records
    the change at a past instant instead of now (backfilling history, e.g. the demo).
    `expected_pointer` = (revision,) of the model's deployment pointer that promotion gates
    were evaluated against: if production changed since, the gates judged the wrong
    incumbent and nothing is written."""
    if action not in PLANNERS:
        raise RegistryError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    require(actor, PERMISSION[action])
    reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
    if action in REASON_REQUIRED and reason is None:
        raise RegistryError(f"a {action} needs a reason")
    when = at or datetime.now(UTC)
    try:
        with store.transaction() as cur:
            row = _version_row(cur, model, version)
            if expected_revision is not None and row["revision"] != expected_revision:
                raise Conflict(_changed_message(row, expected_revision))
            if row["state"] not in SOURCES[action]:
                raise RegistryError(_explain_source(action, row))
            dep = _deployment_row(cur, model)
            if expected_pointer is not None and dep["revision"] != expected_pointer[0]:
                raise Conflict(
                    f"production of {model} changed while the promotion gates were evaluated "
                    f"(now {dep['production'] or 'none'}); the gates compared {version} with "
                    "the previous production version, so nothing was changed: reload and "
                    "decide again"
                )
            plan = PLANNERS[action](
                actor, row, dep, reason, share=share, gates=gates, confirm=confirm
            )
            audit_ids = _apply(cur, actor, model, row, dep, plan, when)
    except duckdb.TransactionException as exc:
        raise Conflict(
            f"{model} {version} was changed by someone else at the same moment; nothing was "
            f"changed by this {action.replace('_', ' ')}: reload and try again ({exc})"
        ) from exc
    except duckdb.ConstraintException as exc:  # two first writers of the pointer row
        raise Conflict(
            f"{model} was changed by someone else at the same moment; reload and try again"
        ) from exc
    first = plan.changes[0]
    share_now = (plan.deployment or {}).get("canary_share", dep["canary_share"])
    return Transition(
        model,
        version,
        action,
        first.from_state,
        first.to_state,
        row["revision"] + 1,
        audit_ids,
        share_now if first.to_state == CANARY else None,
        f"{model} {version}: {plan.message}",
    )


def _changed_message(row: dict, expected: int) -> str:
    return (
        f"{row['model']} {row['version']} changed since you loaded it (now {row['state']}, "
        f"revision {row['revision']}, you had revision {expected}); nothing was changed: "
        "reload and decide again"
    )


def _apply(cur, actor: Actor, model: str, row: dict, dep: dict, plan: _Plan, when) -> list[int]:
    audit_ids = []
    for change in plan.changes:
        _move_version(cur, model, change, when, row if change.version == row["version"] else None)
        if change.version == row["version"] and plan.new_round:
            cur.execute(
                "UPDATE model_versions SET review_round = coalesce(review_round, 0) + 1, "
                "review_requested_by = ?, review_quorum = ? WHERE model_name = ? AND version = ?",
                [actor.name, change.evidence["quorum"], model, change.version],
            )
        audit_id = append_audit(
            cur,
            actor=actor.name,
            action=change.action,
            model_name=model,
            version=change.version,
            from_state=change.from_state,
            to_state=change.to_state,
            reason=change.reason,
            evidence={**change.evidence, "roles": sorted(actor.roles)},
        )
        cur.execute("UPDATE audit_log SET ts = ? WHERE audit_id = ?", [when, audit_id])
        audit_ids.append(audit_id)
    if plan.approval:
        decision, reason = plan.approval
        cur.execute(
            "INSERT INTO approvals (model_name, version, reviewer, decision, reason, decided_at, "
            "review_round) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [model, row["version"], actor.name, decision, reason, when, row["review_round"]],
        )
    if plan.deployment is not None:
        _move_pointer(cur, model, dep, plan.deployment, when)
    for version, variant, share in plan.rollouts:
        cur.execute(
            "INSERT INTO rollouts VALUES (?, ?, ?, ?, ?, ?)",
            [model, version, variant, share, when, actor.name],
        )
    return audit_ids


def _move_version(cur, model: str, change: _Change, when, read: dict | None) -> None:
    """Compare-and-swap of one version's state: the row must still be in the state read."""
    params = [change.to_state, when, model, change.version, change.from_state]
    check = ""
    if read is not None:
        check = " AND revision = ?"
        params.append(read["revision"])
    updated = cur.execute(
        "UPDATE model_versions SET state = ?, state_changed_at = ?, revision = revision + 1 "
        f"WHERE model_name = ? AND version = ? AND state = ?{check} RETURNING version",
        params,
    ).fetchall()
    if len(updated) != 1:
        raise Conflict(
            f"{model} {change.version} is no longer {change.from_state}; someone changed it "
            "at the same moment. Nothing was changed: reload and try again"
        )


def _move_pointer(cur, model: str, dep: dict, values: dict, when) -> None:
    """Compare-and-swap of the model's deployment pointer row on its revision."""
    if dep["revision"] is None:
        cur.execute(
            "INSERT INTO deployments (model_name, revision, updated_at) VALUES (?, 0, ?)",
            [model, when],
        )
        dep = {**dep, "revision": 0}
    sets = "".join(f"{column} = ?, " for column in values)
    updated = cur.execute(
        f"UPDATE deployments SET {sets}revision = revision + 1, updated_at = ? "
        "WHERE model_name = ? AND revision = ? RETURNING revision",
        [*values.values(), when, model, dep["revision"]],
    ).fetchall()
    if len(updated) != 1:
        raise Conflict(
            f"the deployment of {model} changed at the same moment; nothing was changed: "
            "reload and try again"
        )


def evidence_of(value: Any) -> dict:
    """An audit row's evidence as a dict (stored as JSON text)."""
    if isinstance(value, dict):
        return value
    return json.loads(value) if value else {}


# -- risk tier: its own audited admin action ------------------------------------------------------


@dataclass
class TierChange:
    model: str
    from_tier: str
    to_tier: str
    audit_id: int
    message: str


def set_risk_tier(
    store: Store, actor: Actor, model: str, tier: str, *, reason: str | None
) -> TierChange:
    """Change a model's risk tier (admin, with a reason), audited. Registering a version
    never lowers it; reviews already pending keep the quorum they were requested with."""
    require(actor, "set_risk_tier")
    if tier not in QUORUM:
        raise RegistryError(f"risk tier {tier!r} is unknown; tiers are {', '.join(QUORUM)}")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RegistryError("changing a risk tier needs a reason")
    try:
        with store.transaction() as cur:
            rows = cur.execute("SELECT risk_tier FROM models WHERE name = ?", [model]).fetchall()
            if not rows:
                raise RegistryError(f"unknown model {model!r}")
            old = rows[0][0]
            if old == tier:
                raise RegistryError(f"{model} is already {tier} risk; nothing was changed")
            cur.execute("UPDATE models SET risk_tier = ? WHERE name = ?", [tier, model])
            audit_id = append_audit(
                cur,
                actor=actor.name,
                action="set_risk_tier",
                model_name=model,
                version=None,
                from_state=None,
                to_state=None,
                reason=reason,
                evidence={"from": old, "to": tier, "roles": sorted(actor.roles)},
            )
    except duckdb.TransactionException as exc:
        raise Conflict(f"{model} was changed by someone else at the same moment ({exc})") from exc
    return TierChange(
        model, old, tier, audit_id,
        f"{model}: risk tier {old} -> {tier} (audit {audit_id}); reviews already pending keep "
        "their quorum",
    )  # fmt: skip
