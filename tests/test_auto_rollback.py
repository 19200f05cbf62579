"""Automatic rollback: opt-in per model, fires once when a critical infrastructure or
performance alert holds for N windows, acts as a named system actor, audits the alert ids,
notifies, and is refused for high-risk models unless the governance config allows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle import catalog, registry
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts.check import run_check
from lifecycle.alerts.config import alert_config
from lifecycle.alerts.routing import NO_ROUTING
from lifecycle.alerts.rules import Evaluation
from lifecycle.identity import Actor
from lifecycle.registry import auto_rollback
from lifecycle.spec import SpecError
from tests.conftest import write_toy_spec
from tests.test_registry import approve_fully, register_version, to_production_first
from tests.test_routes import Receiver

T0 = datetime(2026, 4, 6, tzinfo=UTC)
H = timedelta(hours=1)
POLICY = (
    "\n[rollout]\nmin_live_rows = 0\nmin_windows = 0\nauto_rollback = true\nrollback_after = 3\n"
)


def register(store, folder, version, policy=POLICY):
    spec = write_toy_spec(folder / version, version=version)
    spec.write_text(spec.read_text() + policy)
    catalog.register_from_file(store, spec)


def failing(version, variant, k, layer, rule) -> Evaluation:
    return Evaluation(
        model="toy", version=version, variant=variant, layer=layer, rule=rule,
        subject="requests", grain="hour", window_start=T0 + k * H, window_end=T0 + (k + 1) * H,
        outcome="critical", value=0.2, threshold=0.05, summary=f"error rate 20% (window {k})",
    )  # fmt: skip


def critical_windows(store, version, variant, hours, layer="infrastructure", rule="error_rate"):
    """`hours` failing hourly windows of one alert key, as the check would apply them."""
    evals = [failing(version, variant, k, layer, rule) for k in range(hours)]
    configs = {("toy", version): alert_config(None)}
    lc.apply_evaluations(store, evals, configs, now=T0 + hours * H)
    return int(lc.list_alerts(store, model="toy").alert_id.iloc[0])


@pytest.fixture
def canary(store, tmp_path):
    register(store, tmp_path, "1.0")
    register(store, tmp_path, "2.0")
    to_production_first(store, "1.0")
    approve_fully(store, "2.0")
    registry.promote(store, registry_actor(), "toy", "2.0")  # shadow
    registry.promote(store, registry_actor(), "toy", "2.0")  # canary 1%
    return store


def registry_actor():
    return Actor("dana@example.com", frozenset({"deployer"}))


def audit(store, action):
    return store.query_all(
        "SELECT actor, reason, evidence FROM audit_log WHERE action = ? ORDER BY audit_id",
        [action],
    )


def test_a_held_critical_alert_rolls_the_canary_back_once_and_audits_it(canary):
    store = canary
    alert_id = critical_windows(store, "2.0", "canary", 2)
    assert auto_rollback.apply(store) == []  # 2 windows: below rollback_after = 3
    critical_windows(store, "2.0", "canary", 3)
    (done,) = auto_rollback.apply(store)
    assert (done.model, done.version, done.variant, done.error) == ("toy", "2.0", "canary", None)
    assert done.alert_ids == [alert_id]
    status = registry.version_status(store, "toy", "2.0")
    assert status["state"] == "rolled_back" and status["deployment"]["canary"] is None
    ((actor, reason, _),) = audit(store, "rollback")
    assert actor == "system:auto-rollback" and f"#{alert_id} error_rate" in reason
    ((actor, _, evidence),) = audit(store, "auto_rollback")
    evidence = json.loads(evidence)
    assert evidence["alert_ids"] == [alert_id] and evidence["rollback_audit_ids"]
    assert auto_rollback.apply(store) == []  # fires once
    assert auto_rollback.recent(store, T0 - timedelta(days=1000))[0]["action"] == "auto_rollback"


def test_production_returns_to_the_standby(store, tmp_path):
    register(store, tmp_path, "1.0")
    register(store, tmp_path, "2.0")
    to_production_first(store, "1.0")
    to_production_first(store, "2.0")  # 1.0 on standby
    critical_windows(store, "2.0", "production", 4, layer="performance", rule="performance")
    (done,) = auto_rollback.apply(store)
    assert done.variant == "production" and done.error is None
    assert registry.serving_versions(store, "toy")["production"] == "1.0"


def test_off_by_default(store, tmp_path):
    register_version(store, tmp_path, "1.0", seed="same")  # no [rollout] auto_rollback
    register_version(store, tmp_path, "2.0", seed="same")
    to_production_first(store, "1.0")
    to_production_first(store, "2.0")
    critical_windows(store, "2.0", "production", 5)
    assert auto_rollback.due(store) == []


def test_a_critical_drift_alert_is_no_reason_to_roll_back(canary):
    critical_windows(canary, "2.0", "canary", 5, layer="drift", rule="data_drift")
    assert auto_rollback.due(canary) == []


def test_snoozed_alert_does_not_roll_back(canary):
    store = canary
    alert_id = critical_windows(store, "2.0", "canary", 4)
    lc.snooze(store, Actor("rita@example.com", frozenset({"reviewer"})), alert_id,
              datetime.now(UTC) + timedelta(days=1), "known: load test")  # fmt: skip
    assert auto_rollback.due(store) == []


def test_the_check_rolls_back_and_notifies(canary):
    store = canary
    alert_id = critical_windows(store, "2.0", "canary", 3)
    receiver = Receiver()
    try:
        report = run_check(store, as_of=T0 + 4 * H, notify_url=receiver.url, monitor=False,
                           routing=NO_ROUTING, backoff=0)  # fmt: skip
    finally:
        receiver.close()
    (rollback,) = report.rollbacks
    assert rollback["version"] == "2.0" and rollback["error"] is None
    assert "ROLLED BACK toy 2.0 (canary)" in report.text()
    bodies = [json.loads(body) for body, _ in receiver.received]
    assert any(b["event"] == "rolled_back" and b["alert_id"] == alert_id for b in bodies)


def test_high_risk_models_need_the_governance_config(store, tmp_path, monkeypatch):
    spec = write_toy_spec(tmp_path / "h", card=True)
    spec.write_text(spec.read_text().replace('risk_tier = "low"', 'risk_tier = "high"')
                    + POLICY)  # fmt: skip
    with pytest.raises(SpecError, match=r"auto_rollback_high_risk = true"):
        catalog.register_from_file(store, spec)
    config = tmp_path / "lifecycle.toml"
    config.write_text("[governance]\nauto_rollback_high_risk = true\n")
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    catalog.register_from_file(store, spec)


def test_the_inbox_shows_the_automatic_rollback(canary, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.browser import ROOT

    store = canary
    critical_windows(store, "2.0", "canary", 3)
    auto_rollback.apply(store, now=datetime.now(UTC))
    path = store.path
    store.close()
    monkeypatch.setenv("LIFECYCLE_DB", str(path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/alerts.py").run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "**Automatic rollback** of toy 2.0" in shown and "error_rate" in shown
