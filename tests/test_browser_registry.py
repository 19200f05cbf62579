"""Registry in a real browser: an OIDC login against a local mock identity provider (approval
as a reviewer, promotion as a deployer, a viewer sees no action), and the full walk-through
register (CLI) -> approve x2 -> shadow -> canary steps -> production -> rollback -> retire
with a screenshot per step and the audit page listing every step."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lifecycle import registry
from lifecycle.identity import Actor, PermissionDenied
from lifecycle.store import Store
from tests.browser import CHROMIUM, ROOT, free_port, running_app, screenshot, wait_until_idle
from tests.conftest import TOY_MODEL_CARD, write_toy_spec
from tests.test_registry import NO_LIVE_EVIDENCE, register_version

pytestmark = pytest.mark.browser

ROLES = """
[identity]
mode = "{mode}"
dev_user = "victor@example.com"

[identity.roles]
"rita@example.com" = ["reviewer"]
"sam@example.com" = ["reviewer"]
"dana@example.com" = ["deployer"]
"victor@example.com" = ["viewer"]
"alice@example.com" = ["deployer"]
"""
DEPLOYER = Actor("dana@example.com", frozenset({"deployer"}))


def toy_db(folder: Path, *, risk: str) -> Path:
    """`credit` 1.0 in production (registered by alice, approved, switched in)."""
    path = folder / "registry.duckdb"
    with Store(path) as store:
        register_version(store, folder, "1.0", name="credit", risk=risk, seed="same")
        registry.request_approval(store, DEPLOYER, "credit", "1.0")
        for reviewer in ("rita@example.com", "sam@example.com")[: 2 if risk == "high" else 1]:
            registry.approve(store, Actor(reviewer, frozenset({"reviewer"})), "credit", "1.0")
        registry.promote(store, DEPLOYER, "credit", "1.0")
        registry.switch(store, DEPLOYER, "credit", "1.0", reason="first release")
    return path


def cli(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *map(str, argv)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def open_version(page, url: str, version: str) -> None:
    page.goto(f"{url}/version?model=credit&version={version}")
    wait_until_idle(page)
    page.get_by_role("heading", name=f"credit {version}").wait_for()


def act(page, action: str, reason: str, dialog_shot: str | None = None) -> str:
    """Click an action, give the reason in its dialog, confirm; return the success text."""
    page.locator(f".st-key-action_{action} button:not([disabled])").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.locator(".st-key-action_reason textarea").fill(reason)
    if dialog_shot:
        screenshot(page, dialog_shot)
    dialog.locator(".st-key-action_confirm button").click()
    wait_until_idle(page)
    alert = page.locator("[data-testid=stAlertContentSuccess]", has_text="recorded by").first
    alert.wait_for(timeout=90_000)  # under CI's load (two workers, each an app and Chromium)
    text = alert.inner_text()
    wait_until_idle(page)  # the review pack below renders after the message
    page.get_by_role("tab", name="History").wait_for()
    return text


def action_buttons(page) -> list[str]:
    return page.locator("[class*='st-key-action_']").evaluate_all(
        "els => els.map(e => [...e.classList].find(c => c.startsWith('st-key-action_')))"
    )


# -- OIDC ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def mock_identity_provider():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/.well-known/openid-configuration", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("oidc_provider_mock did not start") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def secrets_file(folder: Path, provider: str) -> Path:
    """[auth] for the mock provider; Streamlit fills {port} with the port it serves on."""
    path = folder / "secrets.toml"
    path.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{os.urandom(16).hex()}"\n'
        'client_id = "lifecycle-console"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    return path


def sign_in(browser, url: str, email: str):
    """A fresh browser context that logs in through the mock provider's form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    wait_until_idle(page)
    page.locator(".st-key-identity_login button").click()
    page.locator("input[name=sub]").fill(email)
    page.locator("input[name=sub]").press("Enter")
    page.wait_for_url(f"{url}/**")
    wait_until_idle(page)
    page.get_by_text(f"Signed in as {email}").wait_for(timeout=30_000)
    return context, page


def test_oidc_login_reviewer_approves_deployer_promotes_viewer_sees_nothing(tmp_path):
    from playwright.sync_api import sync_playwright

    db = toy_db(tmp_path, risk="low")
    with Store(db) as store:
        register_version(store, tmp_path, "2.0", name="credit", risk="low", seed="same")
        registry.request_approval(store, DEPLOYER, "credit", "2.0")
    config = tmp_path / "lifecycle.toml"
    config.write_text(ROLES.format(mode="oidc"))
    with mock_identity_provider() as provider:
        env = {
            "LIFECYCLE_CONFIG": str(config),
            "STREAMLIT_SECRETS_FILES": str(secrets_file(tmp_path, provider)),
        }
        with running_app(db, env) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            try:
                context, page = sign_in(browser, url, "rita@example.com")
                open_version(page, url, "2.0")
                assert action_buttons(page) == ["st-key-action_approve", "st-key-action_reject"]
                assert "approved" in act(page, "approve", "metrics and fairness fine")
                screenshot(page, "registry-oidc-reviewer-approved")
                context.close()

                context, page = sign_in(browser, url, "dana@example.com")
                open_version(page, url, "2.0")
                assert "now in shadow" in act(page, "promote", "start shadow evaluation")
                screenshot(page, "registry-oidc-deployer-promoted")
                context.close()

                context, page = sign_in(browser, url, "victor@example.com")
                open_version(page, url, "2.0")
                page.get_by_text("No action is open to you").wait_for()
                assert action_buttons(page) == []
                screenshot(page, "registry-oidc-viewer")
                context.close()
            finally:
                browser.close()
    with Store(db) as store:
        history = registry.lifecycle_history(store, "credit", "2.0")
        assert list(history["actor"].iloc[-2:]) == ["rita@example.com", "dana@example.com"]
        assert registry.version_status(store, "credit", "2.0")["state"] == "shadow"
        viewer = Actor("victor@example.com", frozenset({"viewer"}))
        with pytest.raises(PermissionDenied):
            registry.promote(store, viewer, "credit", "2.0")


# -- the walk-through ----------------------------------------------------------------------------


def pick_identity(page, email: str) -> None:
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").click()
    page.get_by_role("option", name=email).click()
    page.locator("[data-testid=stSidebar]").get_by_text(f"acting as {email}").wait_for()
    page.get_by_text(f"Actions for {email}").wait_for()  # the page ran for the new identity
    wait_until_idle(page)


def test_walk_through_register_to_retire_with_screenshots(tmp_path):
    from playwright.sync_api import sync_playwright

    db = toy_db(tmp_path, risk="high")
    spec = write_toy_spec(tmp_path / "new", version="2.0", seed=2)
    spec.write_text(
        spec.read_text().replace('name = "toy"', 'name = "credit"')
        .replace('risk_tier = "low"', 'risk_tier = "high"') + TOY_MODEL_CARD + NO_LIVE_EVIDENCE
    )  # fmt: skip
    # the reference data of 1.0, so the metric gate compares like with like
    (tmp_path / "new" / "reference.csv").write_bytes(
        (tmp_path / "credit-1.0" / "reference.csv").read_bytes()
    )
    config = tmp_path / "lifecycle.toml"
    config.write_text(ROLES.format(mode="dev"))
    steps = [
        ("dana@example.com", "request_approval", "ready for review", "sent for review"),
        ("rita@example.com", "approve", "metrics match 1.0", "approval 1 of 2"),
        ("sam@example.com", "approve", "fairness checked", "approved"),
        ("dana@example.com", "promote", "shadow first", "now in shadow"),
        *[
            ("dana@example.com", "promote", f"canary step {share}", f"canary at {share}")
            for share in ("1%", "5%", "25%", "50%")
        ],
        ("dana@example.com", "promote", "canary healthy", "in production"),
        ("dana@example.com", "rollback", "conversion dropped", "rolled back"),
        ("dana@example.com", "retire", "superseded", "retired"),
    ]
    with running_app(db, {"LIFECYCLE_CONFIG": str(config)}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/registry")  # a deep link as the server's first request
            wait_until_idle(page)
            page.get_by_text("Development identity").first.wait_for()
            # a pipeline registers 2.0 while the app holds the database: the command queues
            # its request and the app's process runs it (lifecycle/requests.py)
            done = cli("register", "--db", db, spec, "--actor", "alice@example.com")
            assert done.returncode == 0, done.stderr
            assert "held by another process" in done.stderr, done.stderr
            page.reload()
            wait_until_idle(page)
            page.get_by_text("credit 2.0: review pack and actions").wait_for()
            page.wait_for_function(
                "() => document.querySelector('[data-testid=stDataFrame]')"
                "?.textContent.includes('registered')"
            )
            screenshot(page, "walk-00-registered-by-cli")
            open_version(page, url, "2.0")
            for number, (who, action, reason, expected) in enumerate(steps, start=1):
                pick_identity(page, who)
                name = f"walk-{number:02d}-{action}-{who.split('@')[0]}"
                text = act(page, action, reason, dialog_shot=f"{name}-dialog")
                assert expected in text, text
                screenshot(page, name)
            page.goto(f"{url}/audit")
            wait_until_idle(page)
            # 1.0's six rows and 2.0's registration, one row per step, and the two steps that
            # also moved 1.0 (to standby on promotion, back to production on rollback)
            page.get_by_text(f"{7 + len(steps) + 2} entries").wait_for(timeout=30_000)
            screenshot(page, "walk-99-audit-log")
        except Exception:
            screenshot(page, "walk-failed")
            raise
        finally:
            browser.close()
    with Store(db) as store:
        history = registry.lifecycle_history(store, "credit", "2.0")
        assert list(history["action"]) == ["register"] + [s[1] for s in steps]
        assert list(history["reason"].iloc[1:]) == [s[2] for s in steps]
        assert registry.serving_versions(store, "credit")["production"] == "1.0"
        assert registry.version_status(store, "credit", "2.0")["state"] == "retired"


# -- a dismissed dialog stays dismissed (issue 18) -----------------------------------------------


def two_canaries(folder: Path) -> Path:
    """delivery_time and credit_risk: 1.0 in production, 1.2 a 1% canary, same revisions."""
    path = folder / "canaries.duckdb"
    reviewer = Actor("rita@example.com", frozenset({"reviewer"}))
    with Store(path) as store:
        for model in ("delivery_time", "credit_risk"):
            for version in ("1.0", "1.2"):
                register_version(store, folder, version, name=model, seed="same")
                registry.request_approval(store, DEPLOYER, model, version)
                registry.approve(store, reviewer, model, version)
            registry.promote(store, DEPLOYER, model, "1.0")
            registry.switch(store, DEPLOYER, model, "1.0", reason="first release")
            registry.promote(store, DEPLOYER, model, "1.2")  # shadow
            registry.promote(store, DEPLOYER, model, "1.2")  # canary 1%
    return path


def registry_snapshot(path: Path, model: str) -> tuple:
    with Store(path) as store:
        status = registry.version_status(store, model, "1.2")
        audit = store.query_one("SELECT count(*) FROM audit_log WHERE model_name = ?", [model])
        return status["state"], status["revision"], status["deployment"], audit[0]


def test_dismissed_dialog_does_not_come_back_for_another_model(tmp_path):
    from playwright.sync_api import sync_playwright

    db = two_canaries(tmp_path)
    before = registry_snapshot(db, "credit_risk")
    config = tmp_path / "lifecycle.toml"
    config.write_text(ROLES.format(mode="dev").replace('"victor@', '"dana@', 1))
    with running_app(db, {"LIFECYCLE_CONFIG": str(config)}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/version?model=delivery_time&version=1.2")
            wait_until_idle(page)
            page.get_by_role("heading", name="delivery_time 1.2").wait_for()
            button = page.locator(".st-key-action_promote button")
            assert button.inner_text() == "Raise canary to 5%"
            button.click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Raise canary to 5%: delivery_time 1.2").wait_for()
            dialog.get_by_role("button", name="Close").click()  # the X
            dialog.wait_for(state="detached")
            wait_until_idle(page)
            page.locator(".st-key-version_pick_model").click()
            page.get_by_role("option", name="credit_risk").click()
            page.get_by_role("heading", name="credit_risk 1.2").wait_for()
            wait_until_idle(page)
            page.get_by_role("tab", name="History").wait_for()
            page.wait_for_timeout(1500)  # a dialog would open with the run that just ended
            assert page.get_by_role("dialog").count() == 0
            screenshot(page, "dialog-dismissed-then-other-model")

            # Escape dismisses it too, and it stays dismissed on the next run
            page.locator(".st-key-action_promote button").click()
            page.get_by_role("dialog").get_by_text("credit_risk 1.2").wait_for()
            page.keyboard.press("Escape")
            page.get_by_role("dialog").wait_for(state="detached")
            page.wait_for_timeout(1000)  # the dismissal's own run
            wait_until_idle(page)
            page.locator(".st-key-reload_data button").click()
            wait_until_idle(page)
            page.wait_for_timeout(1500)
            assert page.get_by_role("dialog").count() == 0
        except Exception:
            screenshot(page, "dialog-dismissed-failed")
            raise
        finally:
            browser.close()
    assert registry_snapshot(db, "credit_risk") == before
