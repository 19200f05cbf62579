"""Sending one notification to one destination: the body each kind expects, and the transport.

- webhook: the generic JSON of notify.payload, POSTed as it is.
- slack: a Slack incoming-webhook message: `text` (the fallback shown in notifications) and
  `blocks` (header, summary, fields, links), POSTed as JSON.
- email: a plain-text message over SMTP, STARTTLS and login when configured.

Every failure raises DeliveryError with a message that names no secret.
"""

from __future__ import annotations

import email.policy
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

from lifecycle.alerts.routing import Destination, SecretMissing, Secrets, scrub

EVENT_WORDS = {"opened": "New", "raised": "Raised to critical", "escalated": "ESCALATED",
               "rolled_back": "AUTOMATIC ROLLBACK for"}  # fmt: skip
HEADER_LIMIT, TEXT_LIMIT = 150, 2900  # Slack: header text 150, section text 3000 characters


class DeliveryError(RuntimeError):
    """One attempt failed; the message is safe to store and show. `retry` is False when
    trying again at once cannot help (a missing secret)."""

    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def send(destination: Destination, body: dict[str, Any], secrets: Secrets) -> None:
    """Deliver one notification (the generic payload) in the destination's kind."""
    try:
        if destination.kind == "email":
            _send_email(destination, body, secrets)
            return
        url = destination.webhook_url(secrets)
    except SecretMissing as exc:
        raise DeliveryError(str(exc), retry=False) from exc
    message = slack_message(body) if destination.kind == "slack" else body
    try:
        post_json(url, message, destination.timeout)
    except (OSError, ValueError) as exc:
        raise DeliveryError(scrub(_describe(exc), [url])) from exc


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


def _describe(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the webhook: {exc.reason}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}"
    return f"{type(exc).__name__}: {exc}"


# -- Slack ---------------------------------------------------------------------------------------


def _esc(text: Any) -> str:
    """Slack mrkdwn escaping of free text (names, summaries): &, < and > only."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def headline(body: dict[str, Any]) -> str:
    return (
        f"{EVENT_WORDS.get(body['event'], body['event'])} {_severity(body)} alert "
        f"#{body['alert_id']}: {body['model']} {body['version']} {body['layer']} / "
        f"{body['rule']} / {body['subject']}"
    )


def _severity(body: dict[str, Any]) -> str:
    worst = body.get("worst_severity") or body["severity"]
    return body["severity"] if worst == body["severity"] else f"{body['severity']} (worst {worst})"


def slack_message(body: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` as the notification fallback, `blocks` shown."""
    head = headline(body)
    summary = f"{_esc(body['summary'])}\n*Response:* {_esc(body['response'])}"
    fields = [
        ("Model", f"{body['model']} {body['version']} ({body['variant']})"),
        ("Layer / rule", f"{body['layer']} / {body['rule']}"),
        ("Subject", body["subject"]),
        ("Severity", _severity(body)),
        ("Seen", f"{body['count']} window(s) since {body['first_seen']}"),
        ("State", body["state"]),
    ]
    links = f"<{body['link']}|Open the evidence> · <{body['inbox']}|Acknowledge in the inbox>"
    return {
        "text": head,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head[:HEADER_LIMIT]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": summary[:TEXT_LIMIT]}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v)}"} for k, v in fields],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": links}]},
        ],
    }


# -- e-mail --------------------------------------------------------------------------------------


def email_message(destination: Destination, body: dict[str, Any]) -> EmailMessage:
    # unfolded headers (up to RFC 5322's 998 characters): Python's folding of a long subject
    # can start with a line break, which readers show as a leading blank
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["Subject"] = " ".join(f"[{body['severity']}] {headline(body)}".split())
    message["From"] = destination.sender
    message["To"] = ", ".join(destination.recipients)
    message.set_content(
        f"{headline(body)}\n\n{body['summary']}\n\nResponse: {body['response']}\n"
        f"Seen in {body['count']} window(s) from {body['first_seen']} to {body['last_seen']}.\n"
        f"State: {body['state']}\n\nOpen the evidence: {body['link']}\n"
        f"Acknowledge in the inbox: {body['inbox']}\n"
    )
    return message


def _send_email(destination: Destination, body: dict[str, Any], secrets: Secrets) -> None:
    password = destination.password(secrets)  # SecretMissing before any connection
    try:
        with smtplib.SMTP(destination.host, destination.port, timeout=destination.timeout) as smtp:
            if destination.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if destination.user:
                smtp.login(destination.user, password or "")
            smtp.send_message(email_message(destination, body))
    except (OSError, ValueError, smtplib.SMTPException) as exc:
        raise DeliveryError(scrub(_describe(exc), [password])) from exc
