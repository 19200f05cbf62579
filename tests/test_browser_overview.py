"""A real browser opens the running app and sees the three demo models on Overview."""

from __future__ import annotations

import pytest

from tests.browser import CHROMIUM, running_app, screenshot, wait_until_idle

pytestmark = pytest.mark.browser


def test_overview_in_chromium(demo_copy):
    from playwright.sync_api import sync_playwright

    with running_app(demo_copy) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            wait_until_idle(page)
            page.get_by_text("Overview").first.wait_for()
            grid = page.locator("[data-testid=stDataFrame]")
            grid.wait_for()
            page.wait_for_timeout(1000)  # the grid paints its cells after the script ends
            text = page.locator("[data-testid=stMainBlockContainer]").inner_text()
            for model in ("credit_risk", "churn", "delivery_time"):
                assert model in text or model in grid.inner_text()
            assert page.locator(".js-plotly-plot").count() == 1
            shot = screenshot(page, "overview")
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
