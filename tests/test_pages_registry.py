"""Registry, version detail and audit pages through AppTest: identity (development and OIDC
via at.user), only allowed actions offered, confirmation dialogs with reasons, conflicts and
gates explained, audit filters and CSV."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from lifecycle import registry
from lifecycle.store import Store
from tests.browser import ROOT
from tests.test_registry import DANA, RITA, register_version, to_production_first
from ui.identity import DEV_KEY

APP = str(ROOT / "app.py")
CONFIG = """
[identity]
mode = "{mode}"
dev_user = "rita@example.com"

[identity.roles]
"rita@example.com" = ["reviewer"]
"sam@example.com" = ["reviewer"]
"dana@example.com" = ["deployer"]
"victor@example.com" = ["viewer"]
"alex@example.com" = ["admin"]
"""


@pytest.fixture
def db(tmp_path, monkeypatch):
    """toy 1.0 in production, 2.0 pending approval; development identity config."""
    path = tmp_path / "pages.duckdb"
    with Store(path) as store:
        for version in ("1.0", "2.0"):
            register_version(store, tmp_path, version, auc=0.8, seed="same")
        to_production_first(store, "1.0")
        registry.request_approval(store, DANA, "toy", "2.0")
    config = tmp_path / "lifecycle.toml"
    config.write_text(CONFIG.format(mode="dev"))
    monkeypatch.setenv("LIFECYCLE_DB", str(path))
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    return path


def app(page: str, *, who: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if who:
        at.session_state[DEV_KEY] = who
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page)
    return at.run()


def version_page_as_dana(db_path, tmp_path, monkeypatch, model: str, version: str) -> AppTest:
    """Version detail of `model` `version` in development mode as dana (deployer)."""
    config = tmp_path / "lifecycle.toml"
    config.write_text(CONFIG.format(mode="dev").replace('dev_user = "rita@', 'dev_user = "dana@'))
    monkeypatch.setenv("LIFECYCLE_DB", str(db_path))
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"], at.query_params["version"] = model, version
    at.switch_page("pages/version.py").run()
    assert not at.exception
    return at


def action_keys(at) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith("action_")]


def store_state(db, version="2.0") -> str:
    with Store(db) as store:
        return registry.version_status(store, "toy", version)["state"]


def close_app_store():
    """The app's cached store holds the file; release it before the test opens it."""
    from ui import runtime

    runtime.shutdown()


def test_development_identity_banner_and_picker(db):
    # the sidebar is checked on the first page (AppTest drops the entrypoint's sidebar
    # elements from its tree after switch_page)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    banner = " ".join(w.value for w in at.sidebar.warning)
    assert "Development identity" in banner and "rita@example.com" in banner
    picker = at.sidebar.selectbox(key=DEV_KEY)
    assert picker.value == "rita@example.com"
    assert set(picker.options) >= {"dana@example.com (deployer)", "victor@example.com (viewer)"}


def test_registry_page_lists_versions_and_states(db):
    at = app("pages/registry.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert dict(zip(table["version"], table["state"], strict=True)) == {
        "1.0": "production", "2.0": "pending_approval",
    }  # fmt: skip
    assert list(table["approvals"]) == ["1 of 1", "0 of 1"]
    assert at.metric[0].value == "1.0"  # production


def test_reviewer_approves_through_the_dialog_with_a_reason(db):
    at = app("pages/version.py", model="toy", version="2.0")
    assert action_keys(at) == ["action_approve", "action_reject"]
    at.button(key="action_approve").click().run()
    assert at.text_area(key="action_reason").label.startswith("Reason")
    at.text_area(key="action_reason").input("review pack checked")
    at.button(key="action_confirm").click().run()
    assert not at.exception
    assert any("approved" in s.value for s in at.success)
    close_app_store()
    with Store(db) as store:
        last = registry.lifecycle_history(store, "toy", "2.0").iloc[-1]
        assert (last.actor, last.action, last.reason) == (
            "rita@example.com", "approve", "review pack checked",
        )  # fmt: skip


def test_reject_without_a_reason_is_refused_in_the_dialog(db):
    at = app("pages/version.py", model="toy", version="2.0")
    at.button(key="action_reject").click().run()
    at.button(key="action_confirm").click().run()
    assert any("give a reason" in e.value for e in at.error)
    close_app_store()
    assert store_state(db) == "pending_approval"


def test_viewer_sees_no_action_buttons(db):
    at = app("pages/version.py", who="victor@example.com", model="toy", version="2.0")
    assert action_keys(at) == []
    assert any("No action is open to you" in c.value for c in at.caption)


def test_deployer_sees_only_deployer_actions(db):
    at = app("pages/version.py", who="dana@example.com", model="toy", version="1.0")
    assert action_keys(at) == ["action_rollback"]  # offered, but blocked, with the reason
    assert at.button(key="action_rollback").disabled
    assert any("no previous production version" in c.value for c in at.caption)
    at = app("pages/version.py", who="dana@example.com", model="toy", version="2.0")
    assert action_keys(at) == ["action_retire"]


def test_change_behind_the_page_gives_a_clear_conflict(db):
    at = app("pages/version.py", model="toy", version="2.0")
    at.button(key="action_approve").click().run()
    at.text_area(key="action_reason").input("looks fine")
    # someone else rejects it while the dialog is open
    store = _app_store()
    registry.reject(store, registry_actor("sam@example.com"), "toy", "2.0", reason="fairness")
    at.button(key="action_confirm").click().run()
    assert any("changed since you loaded it" in e.value for e in at.error)
    close_app_store()
    assert store_state(db) == "rejected"


def _app_store() -> Store:
    from ui import common

    return common.get_store()


def registry_actor(name):
    from lifecycle.identity import Actor

    return Actor(name, frozenset({"reviewer"}))


def test_failing_gate_disables_the_button_and_says_why(db):
    store = Store(db)
    try:
        registry.approve(store, RITA, "toy", "2.0")
        for _ in range(5):
            registry.promote(store, DANA, "toy", "2.0")  # shadow, canary 1% .. 50%
        store.query_all(
            "INSERT INTO monitor_results (model_name, model_version, variant, grain, "
            "window_start, window_end, reference_kind, check_name, subject, layer, severity, "
            "status, input_version, computed_at) VALUES ('toy', '2.0', 'canary', 'day', "
            "now(), now(), 'reference', 'data_drift', 'x', 'drift', 'significant', 'ok', 1, "
            "now())"
        )
    finally:
        store.close()
    at = app("pages/version.py", who="dana@example.com", model="toy", version="2.0")
    promote = at.button(key="action_promote")
    assert promote.label == "Promote to production" and promote.disabled
    assert any("Blocked: monitoring: 1 significant finding" in c.value for c in at.caption)
    assert not at.button(key="action_rollback").disabled
    assert "override_promote" not in [b.key for b in at.button]  # only admins override

    at = app("pages/version.py", who="alex@example.com", model="toy", version="2.0")
    at.button(key="override_promote").click().run()
    at.button(key="action_confirm").click().run()
    assert any("give a reason" in e.value for e in at.error)
    at.text_area(key="action_reason").input("finding is a known logging artefact")
    at.button(key="action_confirm").click().run()
    assert any("in production" in s.value for s in at.success)
    close_app_store()
    with Store(db) as store:
        last = registry.lifecycle_history(store, "toy", "2.0").iloc[-1]
        evidence = json.loads(last.evidence)
        assert (last.actor, last.to_state) == ("alex@example.com", "production")
        assert evidence["gates"][-1]["name"] == "override"


def test_registry_page_recommends_rolling_back_a_breaching_canary(db):
    import pandas as pd

    from lifecycle.ingest import ingest

    with Store(db) as store:
        now = pd.Timestamp.now(tz="UTC").floor("s")
        registry.approve(store, RITA, "toy", "2.0")
        registry.promote(store, DANA, "toy", "2.0", at=now - pd.Timedelta(hours=2))
        registry.promote(store, DANA, "toy", "2.0", at=now - pd.Timedelta(hours=1))  # 1%
        rows = []
        for version, variant, status in (("1.0", "production", "ok"), ("2.0", "canary", "error")):
            for i in range(40):
                rows.append({"prediction_id": f"{variant}-{i}", "model_version": version,
                             "variant": variant, "ts": now - pd.Timedelta(seconds=i),
                             "prediction": 0.5, "predicted_label": "1", "latency_ms": 10.0,
                             "status": status if i % 2 else "ok"})  # fmt: skip
        ingest(store, "toy", "predictions", pd.DataFrame(rows))
    at = app("pages/registry.py")
    assert any("Rollback of canary 2.0 recommended" in e.value for e in at.error)
    assert any("error rate 50.0%" in e.value for e in at.error)


def test_oidc_user_from_st_user_gets_roles_by_email(db, tmp_path, monkeypatch):
    config = tmp_path / "oidc.toml"
    config.write_text(CONFIG.format(mode="oidc"))
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    at.user = {"is_logged_in": True, "email": "dana@example.com", "name": "Dana"}
    at.query_params["model"], at.query_params["version"] = "toy", "2.0"
    at.run()
    assert not at.exception
    signed_in = " ".join(c.value for c in at.sidebar.caption)
    assert "Signed in as **dana@example.com** (deployer)" in signed_in
    assert not at.sidebar.warning  # no development banner under OIDC
    at.switch_page("pages/version.py").run()
    assert action_keys(at) == ["action_retire"]
    at = AppTest.from_file(APP, default_timeout=60)
    at.user = {"is_logged_in": False}
    at.run()
    assert at.sidebar.button(key="identity_login").label == "Log in"
    at.switch_page("pages/version.py").run()
    assert action_keys(at) == []


def test_audit_page_filters_and_downloads_csv(db):
    at = app("pages/audit.py")
    assert not at.exception
    assert any("entries" in m.value for m in at.markdown)
    at.multiselect(key="audit_actions").select("approve").run()
    frame = at.dataframe[0].value
    assert set(frame["action"]) == {"approve"} and len(frame) == 1
    at.multiselect(key="audit_actions").unselect("approve").select("register").run()
    assert len(at.dataframe[0].value) == 2
    assert at.get("download_button")


# -- the demo: something to review in each risk tier, a canary mid-rollout ----------------------


@pytest.fixture
def demo_app(demo_copy, monkeypatch):
    """The demo database with the built-in development identities (no lifecycle.toml)."""
    monkeypatch.setenv("LIFECYCLE_DB", str(demo_copy))
    monkeypatch.delenv("LIFECYCLE_CONFIG", raising=False)
    return demo_copy


def test_demo_registry_shows_a_review_waiting_in_each_risk_tier(demo_app):
    at = app("pages/registry.py")  # as developer@localhost, admin
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert (
        "**credit_risk 1.3** · high risk: committee review (2 distinct reviewers) · "
        "approvals 1 of 2 (rita.reviewer@example.com)" in text
    )
    assert "**delivery_time 1.3** · low risk: peer review (one reviewer) · approvals 0 of 1" in text
    captions = " ".join(c.value for c in at.caption)
    assert (  # delivery_time 1.3: not its registrant, who is the current identity
        "May approve now: alex.admin@example.com, rita.reviewer@example.com, "
        "sam.reviewer@example.com. May not (four-eyes): developer@localhost (registered it and "
        "requested the review); devi.owner@example.com (owns it)." in captions
    )
    assert any("may approve credit_risk 1.3" in s.value for s in at.success)
    refusal = " ".join(w.value for w in at.warning)
    assert "You (developer@localhost) cannot approve delivery_time 1.3" in refusal
    assert "four-eyes" in refusal
    metrics = {m.label: m.value for m in at.metric if m.value != "none"}
    assert metrics["Canary"] == "2.1 at 5%"  # churn's, the demo's only canary
    assert any("Canary 2.1: no breach" in s.value for s in at.success)


def test_demo_reviewer_who_already_approved_is_told_why_not_again(demo_app):
    at = app("pages/registry.py", who="rita.reviewer@example.com")
    refusal = " ".join(w.value for w in at.warning)
    assert "cannot approve credit_risk 1.3" in refusal and "already approved" in refusal
    assert any("may approve delivery_time 1.3" in s.value for s in at.success)


def test_demo_version_detail_blocks_approving_your_own_version(demo_app):
    at = app("pages/version.py", model="delivery_time", version="1.3")
    assert not at.exception
    header = at.markdown[0].value
    assert "`pending_approval`" in header and "peer review (one reviewer)" in header
    assert at.button(key="action_approve").disabled
    blocked = " ".join(c.value for c in at.caption)
    assert "developer@localhost registered delivery_time 1.3 and may not approve it" in blocked


# -- dialogs bound to what they were opened for (issue 18) --------------------------------------


def audit_rows(db) -> int:
    close_app_store()
    with Store(db) as store:
        return store.query_one("SELECT count(*) FROM audit_log")[0]


@pytest.fixture
def two_models(db, tmp_path):
    """zeta 2.0 pending approval beside toy 2.0: same state, same revision."""
    close_app_store()
    with Store(db) as store:
        register_version(store, tmp_path, "2.0", name="zeta", auc=0.8, seed="same")
        registry.request_approval(store, DANA, "zeta", "2.0")
        toy, zeta = (registry.version_status(store, m, "2.0")["revision"] for m in ("toy", "zeta"))
        assert toy == zeta  # the revision check alone cannot tell the two dialogs apart
    return db


def test_switching_the_model_closes_the_dialog_and_it_never_reopens_for_the_other(two_models):
    before = audit_rows(two_models)
    at = app("pages/version.py", model="toy", version="2.0")
    at.button(key="action_approve").click().run()
    assert at.button(key="action_confirm")  # the dialog is open for toy 2.0
    at.selectbox(key="version_pick_model").set_value("zeta").run()
    assert not at.exception
    assert "action_confirm" not in [b.key for b in at.button]  # no dialog for zeta 2.0
    assert at.title[0].value == "zeta 2.0"
    at.selectbox(key="version_pick_model").set_value("toy").run()
    assert "action_confirm" not in [b.key for b in at.button]  # forgotten, not hidden
    assert audit_rows(two_models) == before
    assert store_state(two_models) == "pending_approval"


def test_a_followed_link_to_another_version_closes_the_dialog(db):
    at = app("pages/version.py", model="toy", version="2.0")
    at.button(key="action_approve").click().run()
    at.query_params["version"] = "1.0"
    at.run()
    assert at.title[0].value == "toy 1.0"
    assert "action_confirm" not in [b.key for b in at.button]


def test_cancel_stays_after_a_missing_reason_and_closes_the_dialog(db):
    at = app("pages/version.py", model="toy", version="2.0")
    at.button(key="action_reject").click().run()
    at.button(key="action_confirm").click().run()
    assert any("give a reason" in e.value for e in at.error)
    at.button(key="action_cancel").click().run()
    assert "action_confirm" not in [b.key for b in at.button]
    at.run()  # and it does not come back on the next run
    assert "action_confirm" not in [b.key for b in at.button]
    close_app_store()
    assert store_state(db) == "pending_approval"


def test_confirm_refuses_a_dialog_opened_for_another_selection_or_deployment():
    from ui.pending import PendingAction, refusal

    status = {"model": "delivery_time", "version": "1.2", "state": "canary", "revision": 5,
              "deployment": {"revision": 7, "production": "1.1", "canary": "1.2"}}  # fmt: skip
    pending = PendingAction.opened_on(status, "promote", "Raise canary to 5%", needs_reason=False)
    assert refusal(pending, "delivery_time", "1.2", status) is None
    why = refusal(pending, "credit_risk", "1.2", {**status, "model": "credit_risk"})
    assert why.startswith("This dialog was for delivery_time 1.2 (Raise canary to 5%)")
    assert why.endswith("nothing was done.") and "changed since" not in why
    moved = {**status, "deployment": {"revision": 8, "production": "1.2", "canary": None}}
    why = refusal(pending, "delivery_time", "1.2", moved)
    assert "deployment of delivery_time changed" in why and "production now 1.2" in why


def test_retiring_the_standby_asks_for_explicit_confirmation(tmp_path, monkeypatch):
    """1.0 is the standby once 2.0 took production: the registry says what retiring it
    affects, and the dialog refuses until the consequence is ticked."""
    path = tmp_path / "standby.duckdb"
    with Store(path) as store:
        for version in ("1.0", "2.0"):
            register_version(store, tmp_path, version, auc=0.8, seed="same")
        to_production_first(store, "1.0")
        to_production_first(store, "2.0")
    config = tmp_path / "lifecycle.toml"
    config.write_text(CONFIG.format(mode="dev").replace('dev_user = "rita@', 'dev_user = "dana@'))
    monkeypatch.setenv("LIFECYCLE_DB", str(path))
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    at = app("pages/registry.py")
    table = at.dataframe[0].value.set_index("version")
    assert table.loc["1.0", "retiring"].startswith("CONFIRM: no rollback target remains")
    at = app("pages/version.py", model="toy", version="1.0")
    at.button(key="action_retire").click().run()
    assert any("no rollback target remains" in w.value for w in at.warning)
    at.text_area(key="action_reason").input("2.0 is trusted")
    at.button(key="action_confirm").click().run()
    assert any("Tick the box" in e.value for e in at.error)
    at.checkbox(key="retire_confirm").check().run()
    at.button(key="action_confirm").click().run()
    assert not at.exception
    assert any("retired" in s.value for s in at.success)
    close_app_store()
    assert store_state(path, "1.0") == "retired"
