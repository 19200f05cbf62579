"""Webhook notifications with an outbox: a broken webhook never loses an alert.

Each new, raised or escalated alert is first written to `alert_notifications` as
`pending` (with the exact JSON it will post), then posted. A delivery retries a few times
with exponential backoff; if every attempt fails it stays `pending` with its error and is
retried by the next check that notifies the same URL. The JSON has Slack's `text` field
(Slack and Mattermost incoming webhooks show it as the message) plus structured fields for
any other receiver.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lifecycle.alerts.lifecycle import severity_text
from lifecycle.alerts.links import absolute, alert_link
from lifecycle.audit import append_audit
from lifecycle.store import Store

PENDING, DELIVERED = "pending", "delivered"
EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
EVENT_WORDS = {"opened": "New", "raised": "Raised to critical", "escalated": "ESCALATED"}


@dataclass
class DeliveryReport:
    url: str
    delivered: list[int] = field(default_factory=list)  # notification ids
    failed: dict[int, str] = field(default_factory=dict)  # notification id -> last error

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "delivered": self.delivered, "failed": self.failed}


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


def queue(
    store: Store,
    events: list[tuple[int, str]],
    url: str,
    *,
    app_url: str | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Write one pending notification per (alert_id, event); return their ids."""
    from lifecycle.alerts.lifecycle import get_alert  # lifecycle imports nothing from here

    now = now or datetime.now(UTC)
    ids = []
    for alert_id, event in events:
        body = payload(get_alert(store, alert_id), event, app_url)
        with store.transaction() as cur:
            nid = cur.execute(
                "INSERT INTO alert_notifications (notification_id, alert_id, event, url, payload, "
                "state, attempts, created_at) VALUES (nextval('alert_notification_seq'), ?, ?, "
                "?, ?, 'pending', 0, ?) RETURNING notification_id",
                [alert_id, event, url, json.dumps(body), now],
            ).fetchall()[0][0]
        ids.append(int(nid))
    return ids


def post_json(url: str, body: dict, timeout: float) -> None:
    """POST JSON; raise on a network error or a non-2xx answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "not 2xx", response.headers, None)


def deliver_pending(
    store: Store,
    url: str,
    *,
    attempts: int = 3,
    backoff: float = 0.5,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    post: Callable[[str, dict, float], None] = post_json,
) -> DeliveryReport:
    """Post every pending notification for `url`, oldest first, `attempts` tries each.

    Waits backoff, 2*backoff, ... between tries. The outcome of each notification is one
    transaction (its row plus an audit row); a failure keeps it pending for the next check.
    """
    report = DeliveryReport(url)
    rows = store.query_all(
        "SELECT n.notification_id, n.alert_id, n.event, n.payload, a.model_name, "
        "a.model_version FROM alert_notifications n JOIN alerts a USING (alert_id) "
        "WHERE n.state = 'pending' AND n.url = ? ORDER BY n.notification_id",
        [url],
    )
    for nid, alert_id, event, body, model, version in rows:
        error = None
        tries = 0
        for attempt in range(attempts):
            tries += 1
            try:
                post(url, json.loads(body), timeout)
                error = None
                break
            except (OSError, urllib.error.URLError, ValueError) as exc:
                error = _describe(exc)
                if attempt + 1 < attempts:
                    sleep(backoff * 2**attempt)
        _record(store, nid, alert_id, event, model, version, url, tries, error)
        if error is None:
            report.delivered.append(int(nid))
        else:
            report.failed[int(nid)] = error
    return report


def _describe(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the webhook: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _record(store, nid, alert_id, event, model, version, url, tries, error) -> None:
    now = datetime.now(UTC)
    with store.transaction() as cur:
        cur.execute(
            "UPDATE alert_notifications SET attempts = attempts + ?, last_attempt_at = ?, "
            "last_error = ?, state = ?, delivered_at = ? WHERE notification_id = ?",
            [tries, now, error, PENDING if error else DELIVERED, None if error else now, nid],
        )
        append_audit(
            cur,
            actor="system:notify",
            action="alert_notify_failed" if error else "alert_notified",
            model_name=model,
            version=version,
            reason=(f"{event} to {url}: " + (error or "delivered")),
            evidence={"alert_id": int(alert_id), "notification_id": int(nid), "tries": tries},
        )


def pending_notifications(store: Store, url: str | None = None) -> pd.DataFrame:
    return store.query_df(
        "SELECT notification_id, alert_id, event, url, attempts, last_error, created_at "
        "FROM alert_notifications WHERE state = 'pending' AND (? IS NULL OR url = ?) "
        "ORDER BY notification_id",
        [url, url],
    )
