"""The canary-vs-production panel in a real browser: a canary that is worse on live traffic,
the verdicts and the chart on Version detail's Live vs production tab, and the rollback
triggered from it (dialog, reason, confirmation). Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lifecycle import registry
from lifecycle.store import Store
from tests.browser import CHROMIUM, running_app, screenshot, wait_until_idle
from tests.test_live_comparison import T0, serve
from tests.test_pages_registry import CONFIG
from tests.test_registry import DANA, approve_fully, register_version, to_production_first

pytestmark = pytest.mark.browser


@pytest.fixture
def canary_db(tmp_path):
    path = tmp_path / "live.duckdb"
    with Store(path) as store:
        register_version(store, tmp_path, "1.0", seed="same")
        register_version(store, tmp_path, "2.0", seed="same")
        to_production_first(store, "1.0")
        approve_fully(store, "2.0")
        registry.promote(store, DANA, "toy", "2.0", at=T0 - timedelta(days=1))  # shadow
        registry.promote(store, DANA, "toy", "2.0", share=0.5, at=T0)  # canary 50%
        for day in range(5):
            serve(store, day, "1.0", "production", 500, accuracy=0.8, conversion=0.30,
                  latency=40, seed=day)  # fmt: skip
            serve(store, day, "2.0", "canary", 500, accuracy=0.66, conversion=0.31,
                  latency=42, seed=50 + day)  # fmt: skip
    config = tmp_path / "lifecycle.toml"
    config.write_text(CONFIG.format(mode="dev").replace('dev_user = "rita@', 'dev_user = "dana@'))
    return path, config


def test_canary_panel_and_rollback_from_it(canary_db):
    from playwright.sync_api import sync_playwright

    path, config = canary_db
    with running_app(path, {"LIFECYCLE_CONFIG": str(config)}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{url}/version?model=toy&version=2.0")
            wait_until_idle(page, timeout_ms=240_000)
            page.get_by_role("tab", name="Live vs production").click()
            main = page.locator("[data-testid=stMainBlockContainer]")
            verdict = page.get_by_text("accuracy: 6", exact=False).first
            verdict.wait_for(timeout=60_000)
            text = main.inner_text()
            assert "always-valid 95%" in text and "worse" in text
            chart = page.locator(".js-plotly-plot", has_text="accuracy: 2.0 - 1.0")
            chart.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            assert chart.is_visible()
            screenshot(page, "live-1-canary-vs-production")

            page.get_by_role("button", name="Roll back the canary").click()
            dialog = page.get_by_role("dialog")
            dialog.wait_for(timeout=60_000)
            dialog.get_by_label("Reason (recorded in the audit log) - required").fill(
                "accuracy 14 points below production on live traffic"
            )
            screenshot(page, "live-2-rollback-dialog")
            dialog.get_by_role("button", name="Confirm").click()
            page.get_by_text("rolled back", exact=False).first.wait_for(timeout=90_000)
            wait_until_idle(page, timeout_ms=120_000)
            screenshot(page, "live-3-rolled-back")
        finally:
            browser.close()
    with Store(path) as store:
        status = registry.version_status(store, "toy", "2.0")
        assert status["state"] == "rolled_back" and status["deployment"]["canary"] is None
        reason = store.query_one(
            "SELECT reason FROM audit_log WHERE action = 'rollback' ORDER BY audit_id DESC"
        )[0]
        assert reason == "accuracy 14 points below production on live traffic"
