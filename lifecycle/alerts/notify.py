"""Alert notifications with an outbox: a broken destination never loses an alert.

Each new, raised or escalated alert is first written to `alert_notifications` as `pending`,
one row per destination the routing chose (lifecycle.alerts.routing) or for the ad-hoc
`check --notify URL` webhook, with the generic JSON of `payload`; then sent in the
destination's kind (lifecycle.alerts.channels). A delivery retries a few times with
exponential backoff; if every attempt fails it stays `pending` with its error and is retried
by the next check. The outbox stores destination names and URLs cut to scheme and host,
never a token or password: secrets are read from the environment when sending.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lifecycle.alerts import channels
from lifecycle.alerts.lifecycle import severity_text
from lifecycle.alerts.links import absolute, alert_link
from lifecycle.alerts.routing import ADHOC, Destination, RoutingConfig, Secrets, adhoc
from lifecycle.audit import append_audit
from lifecycle.store import Store

PENDING, DELIVERED = "pending", "delivered"
EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
EVENT_WORDS = channels.EVENT_WORDS


@dataclass
class DeliveryReport:
    delivered: list[int] = field(default_factory=list)  # notification ids
    failed: dict[int, str] = field(default_factory=dict)  # notification id -> last error
    # destination name -> kind, target (redacted), delivered and failed counts
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    unrouted: list[str] = field(default_factory=list)  # events no destination was found for
    orphaned: dict[str, int] = field(default_factory=dict)  # pending for unknown destinations

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def count(self, destination: Destination, target: str, outcome: str) -> None:
        entry = self.destinations.setdefault(
            destination.name,
            {"kind": destination.kind, "target": target, "delivered": 0, "failed": 0},
        )
        entry[outcome] += 1


def payload(alert: dict, event: str, app_url: str | None = None) -> dict[str, Any]:
    """The JSON posted for one alert event."""
    link = absolute(alert_link(alert), app_url)
    inbox = absolute(f"alerts?alert={int(alert['alert_id'])}", app_url)
    first, last = (pd.Timestamp(alert[k]).isoformat() for k in ("first_seen", "last_seen"))
    head = (
        f"{EMOJI.get(alert['severity'], '')} {EVENT_WORDS.get(event, event)} "
        f"{severity_text(alert)} alert #{alert['alert_id']}: {alert['model_name']} "
        f"{alert['model_version']} ({alert['variant']}) {alert['layer']} / {alert['rule']} / "
        f"{alert['subject']}"
    ).strip()
    text = (
        f"{head}\n{alert['summary']}\nSeen in {alert['count']} window(s) since {first}. "
        f"Response: {alert['response']}.\nEvidence: <{link}|open in the console> · "
        f"<{inbox}|acknowledge in the inbox>"
    )
    return {
        "text": text,
        "event": event,
        "alert_id": int(alert["alert_id"]),
        "model": alert["model_name"],
        "version": alert["model_version"],
        "variant": alert["variant"],
        "layer": alert["layer"],
        "rule": alert["rule"],
        "subject": alert["subject"],
        "severity": alert["severity"],
        "worst_severity": alert.get("worst_severity") or alert["severity"],
        "state": alert["state"],
        "count": int(alert["count"]),
        "first_seen": first,
        "last_seen": last,
        "summary": alert["summary"],
        "response": alert["response"],
        "escalation_level": int(alert["escalation_level"]),
        "link": link,
        "inbox": inbox,
    }


def digest(url: str) -> str:
    """What identifies an ad-hoc webhook URL in the outbox without storing it."""
    return "sha256:" + hashlib.sha256(url.encode("utf-8")).hexdigest()


def _as_destination(target: str | Destination) -> Destination:
    return adhoc(target) if isinstance(target, str) else target


def queue(
    store: Store,
    events: list[tuple[int, str]],
    target: str | Destination,
    *,
    app_url: str | None = None,
    now: datetime | None = None,
    route: str | None = None,
) -> list[int]:
    """Write one pending notification per (alert_id, event) for one destination (a URL is
    the ad-hoc `--notify` webhook); return their ids."""
    from lifecycle.alerts.lifecycle import get_alert  # lifecycle imports nothing from here

    destination = _as_destination(target)
    ids = []
    for alert_id, event in events:
        body = payload(get_alert(store, alert_id), event, app_url)
        with store.transaction() as cur:
            ids.append(_insert(cur, alert_id, event, body, destination, route or ADHOC, now))
    return ids


def queue_routed(
    store: Store,
    events: list[tuple[int, str]],
    routing: RoutingConfig,
    *,
    app_url: str | None = None,
    now: datetime | None = None,
) -> tuple[list[int], list[str]]:
    """Queue each event for the destinations its route chooses; (ids, events without any)."""
    from lifecycle.alerts.lifecycle import get_alert

    ids, unrouted = [], []
    for alert_id, event in events:
        alert = get_alert(store, alert_id)
        targets, why = routing.targets(_facts(store, alert), event)
        if not targets:
            unrouted.append(f"{event} alert #{alert_id} ({alert['model_name']}): {why}")
            continue
        body = payload(alert, event, app_url)
        with store.transaction() as cur:  # all destinations of one event, or none
            for t in targets:
                destination = routing.destinations[t.destination]
                ids.append(_insert(cur, alert_id, event, body, destination, t.route, now))
    return ids, unrouted


def _facts(store: Store, alert: dict) -> dict[str, str]:
    """What routes match on: the alert's model, layer, severity and rule, the model's owner."""
    owner = store.query_one("SELECT owner FROM models WHERE name = ?", [alert["model_name"]])
    return {
        "model": alert["model_name"],
        "owner": owner[0] if owner else "",
        "layer": alert["layer"],
        "severity": alert["severity"],
        "rule": alert["rule"],
    }


def _insert(cur, alert_id, event, body, destination: Destination, route, now) -> int:
    row = cur.execute(
        "INSERT INTO alert_notifications (notification_id, alert_id, event, destination, kind, "
        "target, target_digest, route, payload, state, attempts, created_at) VALUES "
        "(nextval('alert_notification_seq'), ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?) "
        "RETURNING notification_id",
        [alert_id, event, destination.name, destination.kind, destination.target,
         digest(destination.url) if destination.url else None, route, json.dumps(body),
         now or datetime.now(UTC)],
    ).fetchall()  # fmt: skip
    return int(row[0][0])


def _pending_rows(store: Store, destination: Destination) -> list[tuple]:
    key = digest(destination.url) if destination.url else None
    return store.query_all(
        "SELECT n.notification_id, n.alert_id, n.event, n.payload, a.model_name, "
        "a.model_version FROM alert_notifications n JOIN alerts a USING (alert_id) "
        "WHERE n.state = 'pending' AND n.destination = ? "
        "AND n.target_digest IS NOT DISTINCT FROM ? ORDER BY n.notification_id",
        [destination.name, key],
    )


def deliver_pending(
    store: Store,
    targets: str | Destination | Iterable[Destination],
    *,
    secrets: Secrets | None = None,
    attempts: int = 3,
    backoff: float = 0.5,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    send: Callable[[Destination, dict, Secrets], None] = channels.send,
    report: DeliveryReport | None = None,
) -> DeliveryReport:
    """Send every pending notification of these destinations (a URL: the ad-hoc webhook),
    oldest first, `attempts` tries each with waits of backoff, 2*backoff, ...

    The outcome of each notification is one transaction (its row plus an audit row); a
    failure keeps it pending for the next check. Once a destination has failed a
    notification, its later ones wait for the next check instead of failing slowly too.
    A missing secret fails at once (retrying cannot help).
    """
    report = report or DeliveryReport()
    secrets = secrets or Secrets()
    if isinstance(targets, str | Destination):
        targets = [_as_destination(targets)]
    for destination in targets:
        if timeout is not None:
            destination = replace(destination, timeout=timeout)
        broken, shown = None, destination.describe(secrets)
        for nid, alert_id, event, body, model, version in _pending_rows(store, destination):
            if broken is not None:
                report.failed[int(nid)] = f"{destination.name}: not attempted ({broken})"
                report.count(destination, shown, "failed")
                continue
            tries, error = _attempt(destination, json.loads(body), secrets, attempts, backoff,
                                    sleep, send)  # fmt: skip
            _record(store, nid, alert_id, event, model, version, destination, shown, tries,
                    error)  # fmt: skip
            if error is None:
                report.delivered.append(int(nid))
                report.count(destination, shown, "delivered")
            else:
                report.failed[int(nid)] = f"{destination.name}: {error}"
                report.count(destination, shown, "failed")
                broken = error
    return report


def _attempt(destination, body, secrets, attempts, backoff, sleep, send):
    """(tries, None or the last error)."""
    error = None
    for attempt in range(attempts):
        try:
            send(destination, body, secrets)
            return attempt + 1, None
        except channels.DeliveryError as exc:
            error = str(exc)
            if not exc.retry:
                return attempt + 1, error
        if attempt + 1 < attempts:
            sleep(backoff * 2**attempt)
    return attempts, error


def _record(store, nid, alert_id, event, model, version, destination, shown, tries, error):
    now = datetime.now(UTC)
    with store.transaction() as cur:
        cur.execute(
            "UPDATE alert_notifications SET attempts = attempts + ?, last_attempt_at = ?, "
            "last_error = ?, state = ?, delivered_at = ?, kind = ?, target = ? "
            "WHERE notification_id = ?",
            [tries, now, error, PENDING if error else DELIVERED, None if error else now,
             destination.kind, shown, nid],
        )  # fmt: skip
        append_audit(
            cur,
            actor="system:notify",
            action="alert_notify_failed" if error else "alert_notified",
            model_name=model,
            version=version,
            reason=(
                f"{event} to {destination.name} ({destination.kind}, {shown}): "
                + (error or "delivered")
            ),
            evidence={"alert_id": int(alert_id), "notification_id": int(nid), "tries": tries,
                      "destination": destination.name},
        )  # fmt: skip


def notify_check(
    store: Store,
    events: list[tuple[int, str]],
    routing: RoutingConfig,
    adhoc_url: str | None,
    *,
    app_url: str | None = None,
    now: datetime | None = None,
    attempts: int = 3,
    backoff: float = 0.5,
    secrets: Secrets | None = None,
) -> DeliveryReport | None:
    """What a check does with its events: queue them for the routed destinations and the
    ad-hoc webhook, then send everything pending for those. None when nothing is set up."""
    if routing.empty and not adhoc_url:
        return None
    report = DeliveryReport()
    destinations = list(routing.destinations.values())
    if not routing.empty:
        report.unrouted = queue_routed(store, events, routing, app_url=app_url, now=now)[1]
        report.orphaned = _orphaned(store, set(routing.destinations))
    if adhoc_url:
        queue(store, events, adhoc_url, app_url=app_url, now=now)
        destinations.append(adhoc(adhoc_url))
    return deliver_pending(store, destinations, secrets=secrets, attempts=attempts,
                           backoff=backoff, report=report)  # fmt: skip


def _orphaned(store: Store, configured: set[str]) -> dict[str, int]:
    """Pending notifications for destinations the configuration no longer names."""
    rows = store.query_all(
        "SELECT destination, count(*) FROM alert_notifications WHERE state = 'pending' "
        "AND destination <> ? AND NOT list_contains(?, destination) GROUP BY ALL ORDER BY 1",
        [ADHOC, sorted(configured)],
    )
    return {name: int(n) for name, n in rows}


def pending_notifications(store: Store, url: str | None = None) -> pd.DataFrame:
    """Pending notifications (of one ad-hoc webhook URL when given)."""
    key = digest(url) if url else None
    return store.query_df(
        "SELECT notification_id, alert_id, event, destination, kind, target, attempts, "
        "last_error, created_at FROM alert_notifications WHERE state = 'pending' "
        "AND (? IS NULL OR target_digest = ?) ORDER BY notification_id",
        [key, key],
    )


def delivery_log(store: Store, limit: int = 200) -> pd.DataFrame:
    """The newest notifications, one row per alert event and destination: where it went
    (name, kind, redacted target), which route chose it, attempts, state, last error."""
    return store.query_df(
        "SELECT n.notification_id, n.alert_id, a.model_name AS model, n.event, n.destination, "
        "n.kind, n.target, n.route, n.state, n.attempts, n.last_error, n.created_at, "
        "n.last_attempt_at, n.delivered_at FROM alert_notifications n "
        "LEFT JOIN alerts a USING (alert_id) ORDER BY n.notification_id DESC LIMIT ?",
        [limit],
    )
