"""Automatic rollback, opt-in per model: `[rollout] auto_rollback = true` in the spec.

At each scheduled check, after the alerts are brought up to date: a canary version whose
canary traffic, or a production version whose production traffic, has an unresolved
(open or acknowledged; a snoozed alert was silenced by a person) critical infrastructure or
performance alert seen in at least `[rollout] rollback_after` windows is rolled back: the
canary leaves the traffic, or production returns to the standby. The actor is the named
system actor `system:auto-rollback`; the rollback's own audit row says why, and an
`auto_rollback` audit row lists the alert ids and the rollback's audit ids. The check
notifies the alerts' destinations (event "rolled_back"), the alerts inbox lists recent
automatic rollbacks and the weekly review shows them among the week's decisions.

High-risk models may use it only when the governance config allows it
(`[governance] auto_rollback_high_risk = true` in lifecycle.toml); otherwise a spec asking
for it is refused at registration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from lifecycle import catalog
from lifecycle.audit import append_audit
from lifecycle.identity import Actor
from lifecycle.store import Store

ACTOR = Actor("system:auto-rollback", frozenset({"deployer"}))
LAYERS = ("infrastructure", "performance")


@dataclass
class Rollback:
    model: str
    version: str
    variant: str  # canary or production
    alert_ids: list[int]
    reason: str
    audit_ids: list[int] = field(default_factory=list)
    error: str | None = None  # why it could not roll back (e.g. no standby)

    def to_dict(self) -> dict:
        return vars(self).copy()


def high_risk_allowed(path: str | os.PathLike | None = None) -> bool:
    """`[governance] auto_rollback_high_risk` of the config file (default false)."""
    from lifecycle.identity import ConfigError, config_table

    try:
        table, _ = config_table("governance", path)
    except ConfigError:
        return False  # an unreadable config grants nothing
    return table.get("auto_rollback_high_risk") is True


def registration_problem(spec: dict, risk_tier: str) -> str | None:
    """Why a spec's auto_rollback may not be registered (None when it may)."""
    wanted = (spec.get("rollout") or {}).get("auto_rollback") is True
    if wanted and risk_tier == "high" and not high_risk_allowed():
        return (
            "`rollout.auto_rollback` is refused for a high-risk model unless the governance "
            "config allows it ([governance] auto_rollback_high_risk = true in lifecycle.toml)"
        )
    return None


def due(store: Store, models: list[str] | None = None) -> list[Rollback]:
    """The rollbacks the policy calls for now (nothing is changed)."""
    from lifecycle.live_comparison import rollout_settings

    rows = store.query_all(
        "SELECT d.model_name, d.production_version, d.canary_version, d.previous_version "
        "FROM deployments d WHERE ? IS NULL OR list_contains(?, d.model_name) "
        "ORDER BY d.model_name",
        [models, models],
    )
    out = []
    for model, production, canary, standby in rows:
        for version, variant in ((canary, "canary"), (production, "production")):
            if version is None:
                continue
            with store.cursor() as cur:
                settings = rollout_settings(catalog.version_spec(cur, model, version))
            if not settings["auto_rollback"]:
                continue
            held = _held_alerts(store, model, version, variant, settings["rollback_after"])
            if not held:
                continue
            ids = [a[0] for a in held]
            what = "; ".join(f"#{a} {rule} {subject} ({n} windows)" for a, rule, subject, n in held)
            reason = (f"automatic rollback ([rollout] auto_rollback): critical alert(s) held "
                      f"for {settings['rollback_after']}+ windows: {what}")  # fmt: skip
            rollback = Rollback(model, version, variant, ids, reason)
            if variant == "production" and standby is None:
                rollback.error = "no standby to return to"
            out.append(rollback)
            break  # a canary rolled back first; production is judged at the next check
    return out


def _held_alerts(store, model, version, variant, windows) -> list[tuple]:
    return store.query_all(
        "SELECT alert_id, rule, subject, count FROM alerts WHERE model_name = ? "
        "AND model_version = ? AND variant = ? AND severity = 'critical' "
        "AND state IN ('open', 'acknowledged') AND list_contains(?, layer) AND count >= ? "
        "ORDER BY alert_id",
        [model, version, variant, list(LAYERS), windows],
    )


def apply(store: Store, models: list[str] | None = None, *, now: datetime | None = None
          ) -> list[Rollback]:  # fmt: skip
    """Carry out the due rollbacks as the system actor, each audited with its alerts."""
    from lifecycle import registry

    done = []
    for rollback in due(store, models):
        if rollback.error is None:
            try:
                result = registry.rollback(store, ACTOR, rollback.model, rollback.version,
                                           reason=rollback.reason, at=now)  # fmt: skip
                rollback.audit_ids = list(result.audit_ids)
            except (registry.RegistryError, registry.Conflict) as exc:
                rollback.error = str(exc)
        with store.transaction() as cur:
            append_audit(
                cur,
                actor=ACTOR.name,
                action="auto_rollback" if rollback.error is None else "auto_rollback_failed",
                model_name=rollback.model,
                version=rollback.version,
                reason=rollback.reason + (f"; not done: {rollback.error}" if rollback.error
                                          else ""),
                evidence={"alert_ids": rollback.alert_ids, "variant": rollback.variant,
                          "rollback_audit_ids": rollback.audit_ids},
            )  # fmt: skip
        done.append(rollback)
    return done


def recent(store: Store, since: datetime) -> list[dict]:
    """Automatic rollbacks (and failed attempts) recorded since `since`, newest first."""
    frame = store.query_df(
        "SELECT audit_id, ts, action, model_name, version, reason, evidence FROM audit_log "
        "WHERE action IN ('auto_rollback', 'auto_rollback_failed') AND ts >= ? "
        "ORDER BY ts DESC, audit_id DESC",
        [since],
    )
    return frame.to_dict("records")
