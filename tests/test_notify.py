"""Webhook delivery against a local HTTP server on 127.0.0.1: payload, retry with backoff,
failure kept and retried by the next check, unreachable hosts, and the check's --notify."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts import notify
from lifecycle.alerts.config import alert_config
from lifecycle.alerts.rules import Evaluation

T0 = datetime(2026, 3, 2, tzinfo=UTC)


class Hook:
    """A webhook receiver that fails its first `fail` requests with HTTP 500."""

    def __init__(self, fail: int = 0):
        self.fail = fail
        self.received: list[dict] = []
        self.calls = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls += 1
                if hook.calls <= hook.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def open_alert(store, subject="debt_ratio", outcome="critical") -> int:
    e = Evaluation(
        model="credit", version="1.1", variant="production", layer="drift", rule="data_drift",
        subject=subject, grain="day", window_start=T0, window_end=T0 + timedelta(days=1),
        outcome=outcome, value=0.4, threshold=0.05, summary=f"{subject}: wasserstein 0.4",
    )  # fmt: skip
    config = {("credit", "1.1"): alert_config(None)}
    result = lc.apply_evaluations(store, [e], config, now=T0 + timedelta(days=1))
    return result.opened[0]


def test_payload_is_slack_text_plus_structured_fields(store):
    alert_id = open_alert(store)
    with Hook() as hook:
        notify.queue(store, [(alert_id, "opened")], hook.url, app_url="http://console:8501")
        report = notify.deliver_pending(store, hook.url, sleep=lambda s: None)
    assert len(report.delivered) == 1 and not report.failed
    (body,) = hook.received
    assert body["text"].startswith(":red_circle: New critical alert #")
    assert "credit 1.1 (production) drift / data_drift / debt_ratio" in body["text"]
    assert "Response: retrain." in body["text"]
    assert body["link"].startswith("http://console:8501/drift?model=credit&version=1.1")
    assert "feature=debt_ratio" in body["link"] and body["link"] in body["text"]
    # the period shows the onset: from three days before the alert's first window
    assert "from=2026-02-27&to=2026-03-02&window=2026-03-02T00%3A00" in body["link"]
    assert body["inbox"] == f"http://console:8501/alerts?alert={alert_id}"
    assert {k: body[k] for k in ("alert_id", "model", "severity", "event", "count")} == {
        "alert_id": alert_id, "model": "credit", "severity": "critical", "event": "opened",
        "count": 1,
    }  # fmt: skip
    assert notify.pending_notifications(store).empty
    actions = [r[0] for r in store.query_all("SELECT action FROM audit_log ORDER BY audit_id")]
    assert actions[-1] == "alert_notified"


def test_retries_with_backoff_then_delivers(store):
    alert_id = open_alert(store)
    waits = []
    with Hook(fail=2) as hook:
        notify.queue(store, [(alert_id, "opened")], hook.url)
        report = notify.deliver_pending(store, hook.url, attempts=3, backoff=0.5,
                                        sleep=waits.append)  # fmt: skip
    assert waits == [0.5, 1.0]
    assert hook.calls == 3 and len(hook.received) == 1 and len(report.delivered) == 1
    attempts = store.query_all("SELECT attempts, state FROM alert_notifications")
    assert attempts == [(3, "delivered")]


def test_failed_delivery_is_kept_and_retried_by_the_next_run(store):
    alert_id = open_alert(store)
    with Hook(fail=100) as hook:
        notify.queue(store, [(alert_id, "opened")], hook.url)
        report = notify.deliver_pending(store, hook.url, attempts=2, sleep=lambda s: None)
        assert list(report.failed.values()) == ["--notify: HTTP 500 Internal Server Error"]
        pending = notify.pending_notifications(store, hook.url)
        assert len(pending) == 1 and pending.attempts[0] == 2
        assert lc.get_alert(store, alert_id)["state"] == "open"  # the alert is untouched
        hook.fail = 0  # the webhook recovers
        report = notify.deliver_pending(store, hook.url, sleep=lambda s: None)
    assert len(report.delivered) == 1 and hook.received[0]["alert_id"] == alert_id
    assert notify.pending_notifications(store).empty
    actions = [r[0] for r in store.query_all(
        "SELECT action FROM audit_log WHERE action LIKE 'alert_notif%' ORDER BY audit_id")]  # fmt: skip
    assert actions == ["alert_notify_failed", "alert_notified"]


def test_unreachable_webhook_is_reported(store):
    alert_id = open_alert(store)
    with Hook() as hook:
        url = hook.url
    # the server is closed now: nothing listens on that port
    notify.queue(store, [(alert_id, "opened")], url)
    report = notify.deliver_pending(store, url, attempts=2, sleep=lambda s: None, timeout=2)
    (error,) = report.failed.values()
    assert error.startswith("--notify: cannot reach the webhook")
    assert len(notify.pending_notifications(store, url)) == 1


@pytest.mark.parametrize("event", ["raised", "escalated"])
def test_event_words(store, event):
    alert_id = open_alert(store)
    body = notify.payload(lc.get_alert(store, alert_id), event)
    assert body["event"] == event
    assert ("Raised to critical" if event == "raised" else "ESCALATED") in body["text"]


def test_check_notifies_new_and_escalated_alerts_once(tmp_path):
    """run_check with a webhook: new alerts posted; a repeat check posts nothing new;
    an escalation after the limit is posted."""
    from lifecycle import catalog
    from lifecycle.alerts.check import run_check
    from lifecycle.store import Store
    from tests.conftest import write_toy_spec
    from tests.test_check import FAST_DRIFT, end_of, serve_day

    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    with Store(tmp_path / "n.duckdb") as store, Hook() as hook:
        catalog.register_from_file(store, spec)
        serve_day(store, 0, missing_x=0.5)
        first = run_check(store, as_of=end_of(0), notify_url=hook.url, backoff=0)
        assert first.exit_code == 2 and len(first.notifications["delivered"]) >= 1
        posted = {b["alert_id"] for b in hook.received}
        assert set(first.opened) == posted
        again = run_check(store, as_of=end_of(0) + timedelta(hours=1), notify_url=hook.url)
        assert again.notifications["delivered"] == []
        later = run_check(store, as_of=end_of(0) + timedelta(hours=5), notify_url=hook.url)
        escalated = [b for b in hook.received if b["event"] == "escalated"]
        assert later.escalated and {b["alert_id"] for b in escalated} == set(later.escalated)


def test_evidence_links_show_the_onset_and_open_the_layer_tab():
    from lifecycle.alerts.links import evidence_link

    first, last = pd.Timestamp("2026-10-27", tz="UTC"), pd.Timestamp("2026-11-15", tz="UTC")
    drift = evidence_link("credit", "1.1", "drift", "employment_type", last, since=first)
    assert "from=2026-10-24&to=2026-11-15" in drift and "tab=" not in drift
    mae = evidence_link("delivery", "1.1", "performance", "mae", last, since=first)
    assert mae.startswith("model_health?") and "tab=Performance" in mae
    # no first window known: the fortnight before the window
    assert "from=2026-11-02&to=2026-11-15" in evidence_link("c", "1", "business", None, last)
    # hourly windows: at most the 14 days the pages show at that grain
    hourly = evidence_link("c", "1", "infrastructure", None, last, "hour", since=first)
    assert "from=2026-11-02&to=2026-11-15" in hourly
