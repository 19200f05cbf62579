"""Issue 18, defect 3: a first start interrupted by the browser or a restart still finishes.

The app starts on an empty path with a small demo (LIFECYCLE_DEMO_DAYS=7). The tab that
triggered the setup is closed during the build, another visitor watches it reach the first
monitoring, the app is stopped there and started again: the setup resumes in the app's
process and every page ends up with evaluated layers and a first check.
"""

from __future__ import annotations

import pytest

from lifecycle import first_start
from lifecycle.store import Store
from tests.browser import CHROMIUM, running_app, screenshot, wait_until_idle

pytestmark = pytest.mark.browser

SMALL_DEMO = {first_start.DEMO_DAYS_ENV: "7"}
SETUP_MINUTES = 10  # generous: the 2 cores are shared with other test runs


def test_first_start_survives_a_closed_tab_and_a_restart(tmp_path):
    from playwright.sync_api import sync_playwright

    path = tmp_path / "lifecycle.duckdb"
    wait_ms = SETUP_MINUTES * 60_000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            with running_app(path, SMALL_DEMO) as url:
                first = browser.new_page(viewport={"width": 1280, "height": 900})
                first.goto(url)
                banner = first.locator(".st-key-setup_banner")
                banner.get_by_text("building the demo database").wait_for(timeout=60_000)
                nav = first.locator("[data-testid=stSidebarNav]")
                nav.get_by_text("Overview").wait_for()
                assert nav.get_by_text("app", exact=True).count() == 0  # no raw file names
                assert first.get_by_text("closing or reloading this tab").count() == 1
                screenshot(first, "first-start-building-1280")
                first.close()  # the session that started the setup goes away mid-build

                watcher = browser.new_page(viewport={"width": 1920, "height": 1000})
                watcher.goto(url + "/alerts")
                watcher.locator(".st-key-setup_banner").get_by_text(
                    "Step 2 of 6: first monitoring of"
                ).wait_for(timeout=wait_ms)
                # the page shows what is stored meanwhile, and says the setup runs the check
                watcher.get_by_text("the first-start setup runs the first one").wait_for(
                    timeout=60_000
                )
                screenshot(watcher, "first-start-monitoring-1920")
                watcher.close()
            # the app stopped during the first monitoring; the next start resumes it
            with Store(path) as store:
                assert first_start.is_pending(store)
                assert store.query_one("SELECT count(*) FROM check_runs")[0] == 0

            with running_app(path, SMALL_DEMO) as url:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                # Overview's layers get verdicts once the first check ran
                page.wait_for_function(
                    "() => /(ok|warning|critical) · \\d+\\/\\d+/.test("
                    "document.querySelector('.st-key-portfolio')?.textContent ?? '')",
                    timeout=wait_ms,
                    polling=2000,
                )
                wait_until_idle(page)
                assert page.locator(".st-key-setup_banner").count() == 0
                screenshot(page, "first-start-done-1280")
                page.goto(url + "/alerts")
                wait_until_idle(page)
                page.get_by_text("Last check 20").first.wait_for(timeout=60_000)
                assert page.get_by_text("Last check: never").count() == 0
        finally:
            browser.close()

    with Store(path) as store:
        models, results = store.query_one(
            "SELECT count(DISTINCT model_name), count(*) FROM monitor_results"
        )
        assert models == 3 and results > 0
        assert store.query_one("SELECT count(*) FROM check_runs")[0] == 1
        states = store.query_all(
            "SELECT to_state FROM audit_log WHERE action = ? ORDER BY audit_id",
            [first_start.ACTION],
        )
        assert [s for (s,) in states] == ["pending", "checked", "complete"]
