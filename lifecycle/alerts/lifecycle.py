"""The alert lifecycle: open, repeat, acknowledge, snooze, escalate, resolve.

One unresolved alert per (model, version, rule, subject, grain): a failing window of a key with an
unresolved alert raises its `count` and moves `last_seen` instead of opening another. An
alert resolves by itself once `resolve_after` evaluated windows after its last failing one
are all healthy; a critical alert nobody acknowledged within `escalate_after_hours` of
opening is escalated once. People acknowledge (with a comment), snooze until a time, or
resolve (with a reason), if their role holds `manage_alerts`.

Every change of an alert is one transaction that also writes its audit row. Manual changes
are a compare-and-swap on the alert's `revision`: of two reviewers acting at once, one wins
and the other gets AlertConflict ("someone changed this alert; reload").
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from lifecycle.alerts.config import DEFAULTS, AlertConfig
from lifecycle.alerts.rules import CRITICAL, FAILING, OK, SEVERITY_ORDER, Evaluation, response_for
from lifecycle.audit import append_audit
from lifecycle.identity import Actor, require
from lifecycle.store import Store

OPEN, ACKNOWLEDGED, SNOOZED, RESOLVED = "open", "acknowledged", "snoozed", "resolved"
STATES = (OPEN, ACKNOWLEDGED, SNOOZED, RESOLVED)
ACTIVE = (OPEN, ACKNOWLEDGED)  # what the check's exit code counts (snoozed is silenced)
UNRESOLVED = (OPEN, ACKNOWLEDGED, SNOOZED)
SYSTEM = "system:alerts"
EVAL_COLUMNS = (
    "model_name", "model_version", "variant", "layer", "rule", "subject", "grain",
    "window_start", "window_end", "outcome", "value", "threshold", "summary", "evidence",
    "evaluated_at",
)  # fmt: skip
EVAL_KEY = ("model_name", "model_version", "variant", "rule", "subject", "grain", "window_start")


class AlertError(ValueError):
    """A request the alert's state does not allow (named), e.g. acknowledging a resolved one."""


class AlertConflict(RuntimeError):
    """Someone changed the alert between reading and writing it; reload and try again."""


@dataclass
class LifecycleResult:
    """What one application of evaluations changed; events feed the notifications."""

    evaluated: int = 0  # evaluations stored as new or changed
    opened: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    raised: list[int] = field(default_factory=list)  # severity went warning -> critical
    resolved: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    unsnoozed: list[int] = field(default_factory=list)

    def events(self) -> list[tuple[int, str]]:
        """(alert_id, event) worth a notification: new, raised to critical, escalated."""
        return (
            [(a, "opened") for a in self.opened]
            + [(a, "raised") for a in self.raised if a not in self.opened]
            + [(a, "escalated") for a in self.escalated]
        )

    def merge(self, other: LifecycleResult) -> None:
        for name in vars(self):
            if name == "evaluated":
                self.evaluated += other.evaluated
            else:
                getattr(self, name).extend(getattr(other, name))


def _utc(value: datetime | None) -> datetime:
    value = value or datetime.now(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# -- evaluations in, alerts out -----------------------------------------------------------------


def store_evaluations(
    store: Store, evaluations: list[Evaluation], now: datetime
) -> list[Evaluation]:
    """Upsert evaluations; return those that are new or whose outcome or value changed."""
    if not evaluations:
        return []
    frame = pd.DataFrame(
        [
            (
                e.model,
                e.version,
                e.variant,
                e.layer,
                e.rule,
                e.subject,
                e.grain,
                e.window_start,
                e.window_end,
                e.outcome,
                e.value,
                e.threshold,
                e.summary,
                json.dumps(e.evidence, default=_json_default, sort_keys=True),
                now,
            )
            for e in evaluations
        ],
        columns=list(EVAL_COLUMNS),
    )
    for column in ("window_start", "window_end", "evaluated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    join = " AND ".join(f"n.{k} = o.{k}" for k in EVAL_KEY)
    with store.transaction() as cur:
        cur.register("_alert_eval_frame", frame)
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _alert_eval_new AS SELECT * FROM _alert_eval_frame"
        )
        cur.unregister("_alert_eval_frame")
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _alert_eval_changed AS SELECT n.* FROM "
            f"_alert_eval_new n LEFT JOIN alert_evaluations o ON {join} "
            "WHERE o.outcome IS NULL OR o.outcome <> n.outcome "
            "OR (o.value IS NULL) <> (n.value IS NULL) "
            # float sums differ in the last bits between runs (parallel aggregation order):
            # not a change worth a repeat
            "OR abs(o.value - n.value) > 1e-9 * greatest(abs(o.value), abs(n.value), 1e-12)"
        )
        keys = cur.execute(f"SELECT {', '.join(EVAL_KEY)} FROM _alert_eval_changed").fetchall()
        if keys:
            cur.execute(f"DELETE FROM alert_evaluations o USING _alert_eval_changed n WHERE {join}")
            cur.execute("INSERT INTO alert_evaluations SELECT * FROM _alert_eval_changed")
        cur.execute("DROP TABLE _alert_eval_changed")
        cur.execute("DROP TABLE _alert_eval_new")
    by_key = {_eval_key(e): e for e in evaluations}
    found = [by_key[(*k[:6], pd.Timestamp(k[6]))] for k in keys]
    return sorted(found, key=lambda e: (e.window_start, e.key))


def _eval_key(e: Evaluation) -> tuple:
    return (e.model, e.version, e.variant, e.rule, e.subject, e.grain, pd.Timestamp(e.window_start))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def apply_evaluations(
    store: Store,
    evaluations: list[Evaluation],
    configs: dict[tuple[str, str], AlertConfig],
    *,
    now: datetime | None = None,
    models: list[str] | None = None,
) -> LifecycleResult:
    """Store evaluations and move the alerts they concern; then resolve, unsnooze, escalate.

    `configs` maps (model, version) to its alert settings. `now` is the check's time (the
    as-of time of a replay); escalation and snooze expiry are measured against it. The
    maintenance covers `models` (default: those of the evaluations), so a check with no
    new evaluation still escalates and ends snoozes.
    """
    now = _utc(now)
    result = LifecycleResult()
    changed = store_evaluations(store, evaluations, now)
    result.evaluated = len(changed)
    failing: dict[tuple, list[Evaluation]] = defaultdict(list)
    for e in changed:
        if e.failing:
            failing[e.key].append(e)
    for key, items in failing.items():
        config = configs.get(key[:2])
        resolve_after = config["resolve_after"] if config else DEFAULTS["resolve_after"]
        _record_failures(store, key, items, now, result, resolve_after)
    models = sorted(set(models or ()) | {e.model for e in evaluations})
    result.merge(maintain(store, configs, now=now, models=models))
    return result


def _record_failures(
    store: Store, key, items: list[Evaluation], now, result, resolve_after
) -> None:
    """Add a key's new failing windows to its alert episodes, in window order.

    A failing window joins the unresolved alert unless `resolve_after` healthy evaluated
    windows separate it from that alert's last failing one: then the alert resolves and
    the window opens a new alert (episode). So a one-shot check over months of history
    yields the same episodes as checks run on schedule. Insufficient windows count
    neither way. One transaction per key.
    """
    items = sorted(items, key=lambda e: e.window_start)
    model, version, rule, subject, grain = key
    with store.transaction() as cur:
        rows = cur.execute(
            "SELECT alert_id, severity, worst_severity, state, count, last_seen FROM alerts "
            "WHERE model_name = ? AND model_version = ? AND rule = ? AND subject = ? "
            "AND grain = ? AND state <> 'resolved'",
            [model, version, rule, subject, grain],
        ).fetchall()
        alert = rows[0] if rows else None
        since = items[0].window_start if alert is None else min(alert[5], items[0].window_start)
        history = cur.execute(
            "SELECT window_start, variant, outcome FROM alert_evaluations WHERE model_name = ? "
            "AND model_version = ? AND rule = ? AND subject = ? AND grain = ? "
            "AND window_start >= ? AND outcome <> 'insufficient' ORDER BY window_start, variant",
            [model, version, rule, subject, items[0].grain, since],
        ).fetchall()
        episodes = _episodes(items, history, alert, resolve_after)
        for i, (alert_id, members, healthy_after) in enumerate(episodes):
            if alert_id is None:
                alert_id = _open_alert(cur, members, now)
                result.opened.append(alert_id)
            elif members:
                raised = _extend_alert(cur, alert, members, now)
                (result.raised if raised else result.repeated).append(alert_id)
            if i < len(episodes) - 1:  # a later episode followed: this one had healed
                _auto_resolve(cur, alert_id, healthy_after, now)
                result.resolved.append(alert_id)


def _episodes(items, history, alert, resolve_after) -> list[tuple[int | None, list, int]]:
    """Split new failing items into episodes: [(existing alert id or None, items, healthy
    windows that followed the episode before the next one)]."""
    by_window = {(pd.Timestamp(e.window_start), e.variant): e for e in items}
    last_seen = pd.Timestamp(alert[5]) if alert is not None else None
    episodes: list[list] = [[alert[0], [], 0]] if alert is not None else []
    healthy = 0
    for window_start, variant, outcome in history:
        if outcome not in FAILING:
            healthy += 1
            continue
        item = by_window.get((pd.Timestamp(window_start), variant))
        if item is not None:
            late = last_seen is not None and pd.Timestamp(window_start) <= last_seen
            if episodes and (late or healthy < resolve_after):
                episodes[-1][1].append(item)
            else:
                if episodes:
                    episodes[-1][2] = healthy
                episodes.append([None, [item], 0])
        healthy = 0
    return [(a, members, h) for a, members, h in episodes]


def _extend_alert(cur, alert, items: list[Evaluation], now) -> bool:
    """Repeat an unresolved alert with more failing windows; True if its worst severity rose."""
    alert_id, severity, worst, state, count, last_seen = alert
    worst = worst or severity
    latest = items[-1]
    new_worst = max([worst, *(e.outcome for e in items)], key=SEVERITY_ORDER.__getitem__)
    is_latest = pd.Timestamp(latest.window_start) >= pd.Timestamp(last_seen)
    current = latest.outcome if is_latest else severity
    newest = max(pd.Timestamp(last_seen), pd.Timestamp(latest.window_start))
    cur.execute(
        "UPDATE alerts SET count = count + ?, last_seen = ?, "
        "first_seen = least(first_seen, ?), severity = ?, worst_severity = ?, "
        "last_window_end = CASE WHEN ? THEN ? ELSE last_window_end END, "
        "value = CASE WHEN ? THEN ? ELSE value END, "
        "summary = CASE WHEN ? THEN ? ELSE summary END, "
        "evidence = CASE WHEN ? THEN ? ELSE evidence END, "
        "response = ?, updated_at = ?, revision = revision + 1 WHERE alert_id = ?",
        [
            len(items), newest.to_pydatetime(), items[0].window_start, current, new_worst,
            is_latest, latest.window_end, is_latest, latest.value, is_latest,
            latest.summary, is_latest, _evidence_json(latest),
            response_for(latest.layer, new_worst, latest.evidence), now, alert_id,
        ],
    )  # fmt: skip
    raised = SEVERITY_ORDER[new_worst] > SEVERITY_ORDER[worst]
    append_audit(
        cur,
        actor=SYSTEM,
        action="alert_severity_raised" if raised else "alert_repeated",
        model_name=latest.model,
        version=latest.version,
        from_state=worst if raised else state,
        to_state=new_worst if raised else state,
        reason=f"{len(items)} more failing window(s); latest ({current}): {latest.summary}",
        evidence=_audit_evidence(alert_id, latest, count=count + len(items), severity=current,
                                 worst_severity=new_worst),
    )  # fmt: skip
    return raised


def _auto_resolve(cur, alert_id: int, healthy: int, now) -> None:
    """Resolve inside the caller's transaction: `healthy` evaluated windows followed it."""
    state = cur.execute("SELECT state FROM alerts WHERE alert_id = ?", [alert_id]).fetchall()[0][0]
    resolution = f"auto-resolved after {healthy} healthy window(s)"
    cur.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ?, "
        "updated_at = ?, revision = revision + 1 WHERE alert_id = ?",
        [now, SYSTEM, resolution, now, alert_id],
    )
    row = cur.execute(
        "SELECT model_name, model_version, rule, subject, severity FROM alerts WHERE alert_id = ?",
        [alert_id],
    ).fetchall()[0]
    append_audit(
        cur, actor=SYSTEM, action="alert_resolved", model_name=row[0], version=row[1],
        from_state=state, to_state=RESOLVED,
        reason=f"auto: {healthy} healthy window(s) since the last failing one",
        evidence={"alert_id": int(alert_id), "rule": row[2], "subject": row[3],
                  "severity": row[4], "resolved_by": SYSTEM},
    )  # fmt: skip


def _open_alert(cur, items: list[Evaluation], now: datetime) -> int:
    first, latest = items[0], items[-1]
    worst = max((e.outcome for e in items), key=SEVERITY_ORDER.__getitem__)
    alert_id = cur.execute("SELECT nextval('alert_seq')").fetchall()[0][0]
    cur.execute(
        "INSERT INTO alerts (alert_id, model_name, model_version, variant, layer, rule, "
        "subject, grain, severity, worst_severity, state, first_seen, last_seen, "
        "last_window_end, count, value, threshold, summary, evidence, response, opened_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            alert_id, latest.model, latest.version, latest.variant, latest.layer, latest.rule,
            latest.subject, latest.grain, latest.outcome, worst, first.window_start,
            latest.window_start, latest.window_end, len(items), latest.value, latest.threshold,
            latest.summary, _evidence_json(latest), response_for(latest.layer, worst, latest.evidence), now, now,
        ],
    )  # fmt: skip
    append_audit(
        cur,
        actor=SYSTEM,
        action="alert_opened",
        model_name=latest.model,
        version=latest.version,
        from_state=None,
        to_state=OPEN,
        reason=f"{worst}: {latest.summary}",
        evidence=_audit_evidence(alert_id, latest, count=len(items)),
    )
    return int(alert_id)


def _evidence_json(e: Evaluation) -> str:
    return json.dumps(e.evidence, default=_json_default, sort_keys=True)


def _audit_evidence(alert_id: int, e: Evaluation, **extra) -> dict:
    return {
        "alert_id": int(alert_id),
        "layer": e.layer,
        "rule": e.rule,
        "subject": e.subject,
        "variant": e.variant,
        "window_start": e.window_start.isoformat(),
        "outcome": e.outcome,
        "value": e.value,
        **extra,
    }


def maintain(
    store: Store,
    configs: dict[tuple[str, str], AlertConfig],
    *,
    now: datetime | None = None,
    models: Iterable[str] | None = None,
) -> LifecycleResult:
    """Time- and history-driven changes: auto-resolve, snooze expiry, escalation."""
    now = _utc(now)
    result = LifecycleResult()
    where, params = "", []
    if models is not None:
        where, params = "AND list_contains(?, a.model_name)", [list(models)]
    rows = store.query_all(
        "SELECT a.alert_id, a.model_name, a.model_version, a.state, a.severity, a.opened_at, "
        "a.snoozed_until, a.escalation_level, a.acknowledged_at, a.revision, "
        "count(e.outcome) FILTER (WHERE e.outcome = 'ok') AS healthy, "
        "count(e.outcome) FILTER (WHERE e.outcome IN ('warning', 'critical')) AS failing "
        "FROM alerts a LEFT JOIN alert_evaluations e ON e.model_name = a.model_name "
        "AND e.model_version = a.model_version AND e.rule = a.rule AND e.subject = a.subject "
        "AND e.grain = a.grain AND e.window_start > a.last_seen "
        f"WHERE a.state <> 'resolved' {where} GROUP BY ALL ORDER BY a.alert_id",
        params,
    )
    for (alert_id, model, version, state, severity, opened_at, snoozed_until, level, acked,
         revision, healthy, failing) in rows:  # fmt: skip
        config = configs.get((model, version))
        if config is None:
            continue
        if healthy >= config["resolve_after"] and not failing:
            _transition(
                store, alert_id, revision, SYSTEM, RESOLVED, "alert_resolved",
                f"auto: {healthy} healthy window(s) since the last failing one",
                {"resolved_at": now, "resolved_by": SYSTEM,
                 "resolution": f"auto-resolved after {healthy} healthy window(s)"}, now,
            )  # fmt: skip
            result.resolved.append(alert_id)
            continue
        if state == SNOOZED and _utc(snoozed_until) <= now:
            back = ACKNOWLEDGED if acked is not None else OPEN
            _transition(
                store, alert_id, revision, SYSTEM, back, "alert_unsnoozed",
                f"snooze ended at {_utc(snoozed_until):%Y-%m-%d %H:%M} UTC",
                {}, now,
            )  # fmt: skip
            result.unsnoozed.append(alert_id)
            revision += 1
            state = back
        # the escalation clock starts when the alert opened, or when its snooze ended
        since = max(_utc(opened_at), _utc(snoozed_until) if snoozed_until else _utc(opened_at))
        waited = now - since
        due = timedelta(hours=config["escalate_after_hours"])
        if state == OPEN and severity == CRITICAL and level == 0 and waited >= due:
            _transition(
                store, alert_id, revision, SYSTEM, OPEN, "alert_escalated",
                f"critical and unacknowledged for {waited.total_seconds() / 3600:.1f} h "
                f"(limit {config['escalate_after_hours']:g} h)",
                {"escalated_at": now, "escalation_level": 1}, now,
            )  # fmt: skip
            result.escalated.append(alert_id)
    return result


def _transition(store, alert_id, revision, actor, to_state, action, reason, sets, now) -> None:
    """Set the state (and `sets`) if the revision is unchanged; audit it; one transaction."""
    assignments = ", ".join(f"{column} = ?" for column in sets)
    try:
        with store.transaction() as cur:
            rows = cur.execute(
                "SELECT state, model_name, model_version, rule, subject, severity FROM alerts "
                "WHERE alert_id = ? AND revision = ?",
                [alert_id, revision],
            ).fetchall()
            if not rows:
                raise AlertConflict(
                    f"alert {alert_id} was changed by someone else since it was read; reload"
                )
            from_state, model, version, rule, subject, severity = rows[0]
            cur.execute(
                f"UPDATE alerts SET state = ?, {assignments}{', ' if sets else ''}"
                "updated_at = ?, revision = revision + 1 WHERE alert_id = ? AND revision = ?",
                [to_state, *sets.values(), now, alert_id, revision],
            )
            append_audit(
                cur,
                actor=actor,
                action=action,
                model_name=model,
                version=version,
                from_state=from_state,
                to_state=to_state,
                reason=reason,
                evidence={"alert_id": int(alert_id), "rule": rule, "subject": subject,
                          "severity": severity, **dict(sets.items())},
            )  # fmt: skip
    except duckdb.TransactionException as exc:
        raise AlertConflict(
            f"alert {alert_id} was changed by someone else at the same time; reload ({exc})"
        ) from exc


# -- people's actions ------------------------------------------------------------------------------


def get_alert(store: Store, alert_id: int) -> dict[str, Any]:
    frame = store.query_df("SELECT * FROM alerts WHERE alert_id = ?", [alert_id])
    if frame.empty:
        raise KeyError(f"no alert with id {alert_id}")
    row = frame.iloc[0].to_dict()
    row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else {}
    return row


def _checked(store: Store, actor: Actor, alert_id: int, revision: int | None):
    require(actor, "manage_alerts")
    alert = get_alert(store, alert_id)
    if revision is not None and int(alert["revision"]) != int(revision):
        raise AlertConflict(
            f"alert {alert_id} changed since you loaded it (it is now {alert['state']}); reload"
        )
    if alert["state"] == RESOLVED:
        raise AlertError(f"alert {alert_id} is already resolved ({alert['resolution']})")
    return alert


def acknowledge(
    store: Store,
    actor: Actor,
    alert_id: int,
    comment: str,
    *,
    revision: int | None = None,
    now: datetime | None = None,
) -> dict:
    """Acknowledge an open or snoozed alert with a comment (stops its escalation)."""
    if not comment or not comment.strip():
        raise AlertError("acknowledging an alert needs a comment (what you are doing about it)")
    alert = _checked(store, actor, alert_id, revision)
    if alert["state"] == ACKNOWLEDGED:
        raise AlertError(f"alert {alert_id} was already acknowledged by {alert['acknowledged_by']}")
    now = _utc(now)
    _transition(
        store, alert_id, alert["revision"], actor.name, ACKNOWLEDGED, "alert_acknowledged",
        comment.strip(), {"acknowledged_by": actor.name, "acknowledged_at": now,
                          "ack_comment": comment.strip(), "snoozed_until": None}, now,
    )  # fmt: skip
    return get_alert(store, alert_id)


def snooze(
    store: Store,
    actor: Actor,
    alert_id: int,
    until: datetime,
    comment: str = "",
    *,
    revision: int | None = None,
    now: datetime | None = None,
) -> dict:
    """Silence an unresolved alert until `until` (it keeps counting repeats meanwhile)."""
    now = _utc(now)
    until = _utc(until)
    if until <= now:
        raise AlertError(f"snooze until {until:%Y-%m-%d %H:%M} UTC is not in the future")
    alert = _checked(store, actor, alert_id, revision)
    _transition(
        store, alert_id, alert["revision"], actor.name, SNOOZED, "alert_snoozed",
        comment.strip() or f"snoozed until {until:%Y-%m-%d %H:%M} UTC",
        {"snoozed_until": until, "snoozed_by": actor.name}, now,
    )  # fmt: skip
    return get_alert(store, alert_id)


def resolve(
    store: Store,
    actor: Actor,
    alert_id: int,
    reason: str,
    *,
    revision: int | None = None,
    now: datetime | None = None,
) -> dict:
    """Resolve an alert by hand, saying why; a later failing window opens a new alert."""
    if not reason or not reason.strip():
        raise AlertError("resolving an alert by hand needs a reason")
    alert = _checked(store, actor, alert_id, revision)
    now = _utc(now)
    _transition(
        store, alert_id, alert["revision"], actor.name, RESOLVED, "alert_resolved",
        reason.strip(), {"resolved_at": now, "resolved_by": actor.name,
                         "resolution": reason.strip()}, now,
    )  # fmt: skip
    return get_alert(store, alert_id)


# -- reading -----------------------------------------------------------------------------------------


def list_alerts(
    store: Store,
    *,
    model: str | None = None,
    layer: str | list[str] | None = None,
    severity: str | list[str] | None = None,
    state: str | list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Alerts, newest problem first; list filters accept one value or several.

    `since`/`until` keep alerts whose failing span [first_seen, last_seen] overlaps them.
    """
    where, params = ["TRUE"], []
    for column, value in (("model_name", model), ("layer", layer), ("severity", severity),
                          ("state", state)):  # fmt: skip
        if value:
            where.append(f"list_contains(?, {column})")
            params.append([value] if isinstance(value, str) else list(value))
    if since is not None:
        where.append("last_seen >= ?")
        params.append(since)
    if until is not None:
        where.append("first_seen < ?")
        params.append(until)
    frame = store.query_df(
        f"SELECT * FROM alerts WHERE {' AND '.join(where)} "
        "ORDER BY CASE state WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 "
        "WHEN 'snoozed' THEN 2 ELSE 3 END, CASE severity WHEN 'critical' THEN 0 ELSE 1 END, "
        "last_seen DESC, alert_id",
        params,
    )
    frame["evidence"] = [json.loads(e) if e else {} for e in frame["evidence"]]
    return frame


def alert_history(store: Store, alert_id: int) -> pd.DataFrame:
    """The alert's audit rows, oldest first."""
    return store.query_df(
        "SELECT audit_id, ts, actor, action, from_state, to_state, reason FROM audit_log "
        "WHERE starts_with(action, 'alert_') AND try_cast(evidence->>'alert_id' AS BIGINT) = ? "
        "ORDER BY audit_id",
        [alert_id],
    )


def alert_windows(store: Store, alert: dict) -> pd.DataFrame:
    """The evaluations behind an alert (same key), newest first: its evidence trail."""
    return store.query_df(
        "SELECT variant, window_start, window_end, outcome, value, threshold, summary "
        "FROM alert_evaluations WHERE model_name = ? AND model_version = ? AND rule = ? "
        "AND subject = ? AND grain = ? AND window_start >= ? ORDER BY window_start DESC",
        [alert["model_name"], alert["model_version"], alert["rule"], alert["subject"],
         alert["grain"], alert["first_seen"]],
    )  # fmt: skip


def active_counts(store: Store, models: list[str] | None = None) -> dict[str, int]:
    """Active (open or acknowledged) alerts by severity."""
    where, params = "", []
    if models:
        where, params = "AND list_contains(?, model_name)", [models]
    rows = store.query_all(
        f"SELECT severity, count(*) FROM alerts WHERE state IN ('open', 'acknowledged') {where} "
        "GROUP BY 1",
        params,
    )
    counts = {"warning": 0, "critical": 0}
    counts.update({s: int(n) for s, n in rows})
    return counts


__all__ = [
    "ACKNOWLEDGED",
    "ACTIVE",
    "FAILING",
    "OK",
    "OPEN",
    "RESOLVED",
    "SNOOZED",
    "STATES",
    "UNRESOLVED",
    "AlertConflict",
    "AlertError",
    "LifecycleResult",
    "acknowledge",
    "active_counts",
    "alert_history",
    "alert_windows",
    "apply_evaluations",
    "get_alert",
    "list_alerts",
    "maintain",
    "resolve",
    "snooze",
    "store_evaluations",
]  # fmt: skip


def alerts_revision(store) -> int:
    """A number that grows with every alert change: a cache key for alert reads."""
    return int(store.query_one("SELECT coalesce(sum(revision) + count(*), 0) FROM alerts")[0])


def last_check_run(store) -> dict | None:
    """The newest recorded `check` run (time, exit code, counts), or None."""
    row = store.query_df("SELECT * FROM check_runs ORDER BY run_id DESC LIMIT 1")
    return None if row.empty else row.iloc[0].to_dict()


def severity_text(alert) -> str:
    """ "critical", or "warning (worst critical)" when the episode was worse than its latest
    window: the alert's current severity with its worst, as the inbox and check show it."""
    current = alert["severity"]
    worst = alert.get("worst_severity") or current
    return current if worst == current else f"{current} (worst {worst})"
