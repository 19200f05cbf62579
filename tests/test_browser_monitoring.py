"""The investigation path in a real browser: Overview -> model health -> drift -> overlay,
and a deep link opened directly. Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from tests.browser import CHROMIUM, running_app, screenshot, wait_until_idle

pytestmark = pytest.mark.browser

D = pd.Timestamp("2026-11-16", tz="UTC")


def day(offset: int) -> str:
    return f"{D + pd.Timedelta(days=offset):%Y-%m-%d}"


def _settle(page) -> None:
    wait_until_idle(page, timeout_ms=240_000)
    page.wait_for_timeout(1500)  # plotly paints after the script run ends


def _main_text(page) -> str:
    return page.locator("[data-testid=stMainBlockContainer]").inner_text()


@pytest.fixture
def monitored_copy(demo_monitored, tmp_path):
    """A writable demo with its declared (daily) monitoring results, as after the first start:
    the pages show stored results and compute nothing themselves."""
    target = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_monitored, target)
    return target


def test_investigation_path_and_deep_link(monitored_copy):
    from playwright.sync_api import sync_playwright

    with running_app(monitored_copy) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            _settle(page)
            assert "credit_risk" in _main_text(page)
            screenshot(page, "monitoring-1-overview")

            # follow the model with findings from the portfolio to its health page
            page.get_by_role("link", name="credit_risk health").click()
            _settle(page)
            assert "/model_health" in page.url and "model=credit_risk" in page.url
            assert "Model health" in _main_text(page)
            # charts are drawn by the browser after the script ends: wait for the sixth
            page.locator(".js-plotly-plot").nth(5).wait_for(state="attached", timeout=30_000)
            screenshot(page, "monitoring-2-model-health")
            page.get_by_role("tab", name="Performance").click()
            page.wait_for_timeout(1500)
            screenshot(page, "monitoring-3-model-health-performance")
            page.get_by_role("tab", name="Data quality").click()
            page.wait_for_timeout(1500)
            screenshot(page, "monitoring-4-model-health-quality")

            # on to the drift investigation: it opens on the worst cell and its overlay
            page.get_by_text("Investigate drift of credit_risk").click()
            _settle(page)
            assert "/drift" in page.url and "model=credit_risk" in page.url
            feature = next(f for f in ("debt_ratio", "employment_type")
                           if f"feature={f}" in page.url)  # fmt: skip
            overlay = page.locator(".js-plotly-plot", has_text=f"{feature}: reference")
            overlay.first.scroll_into_view_if_needed()
            assert overlay.count() == 1
            screenshot(page, "monitoring-5-drift-worst-cell")

            # click another cell of the severity grid: income on D-3 (an SVG rect per cell,
            # named by its encodings)
            cell = page.locator(
                f'[data-testid=stVegaLiteChart] .mark-rect path[aria-label*="{day(-3)};"]'
                '[aria-label*="feature (share of importance) / check: income ("]'
            )
            labels = page.locator("[data-testid=stVegaLiteChart] .mark-rect path")
            assert cell.count() == 1, labels.first.get_attribute("aria-label")
            cell.click()
            page.wait_for_url(f"**feature=income**window={day(-3)}T00%3A00**", timeout=60_000)
            _settle(page)
            overlay = page.locator(".js-plotly-plot", has_text="income: reference")
            overlay.first.scroll_into_view_if_needed()
            assert overlay.count() == 1
            assert f"income in {day(-3)}" in _main_text(page)
            screenshot(page, "monitoring-5b-drift-clicked-cell")

            # choose the drifting debt_ratio on its onset day through the URL of the cell
            page.goto(
                f"{url}/drift?model=credit_risk&feature=debt_ratio&window={day(-35)}T00:00"
                f"&from={day(-37)}&to={day(-34)}"
            )
            _settle(page)
            overlay = page.locator(".js-plotly-plot", has_text="debt_ratio: reference")
            overlay.first.scroll_into_view_if_needed()
            assert overlay.count() == 1
            screenshot(page, "monitoring-6-drift-debt-ratio-onset")

            # a deep link from an alert: the unseen employment category on D-19
            link = (
                f"{url}/drift?model=credit_risk&version=1.1&feature=employment_type"
                f"&window={day(-19)}T00:00&from={day(-19)}&to={day(-19)}"
            )
            page.goto(link)
            _settle(page)
            overlay = page.locator(".js-plotly-plot", has_text="employment_type: reference")
            overlay.first.scroll_into_view_if_needed()
            assert overlay.count() == 1
            assert "gig_worker" in _main_text(page)
            screenshot(page, "monitoring-7-drift-deep-link")
        finally:
            browser.close()


def _selection(page) -> dict:
    query = parse_qs(urlparse(page.url).query)
    return {k: query[k][0] for k in ("model", "version", "variant", "grain") if k in query}


def test_sidebar_round_trip_keeps_the_selection(monitored_copy):
    from playwright.sync_api import sync_playwright

    want = {"model": "churn", "version": "2.0", "variant": "production", "grain": "day"}
    with running_app(monitored_copy) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        nav = page.locator("[data-testid=stSidebarNav]")
        try:
            page.goto(f"{url}/model_health?model=churn&version=2.0&variant=production"
                      f"&grain=day&from={day(-6)}&to={day(-4)}")  # fmt: skip
            _settle(page)
            assert _selection(page) == want
            nav.get_by_role("link", name="Drift investigation").click()
            page.wait_for_url("**/drift?**", timeout=60_000)
            _settle(page)
            assert _selection(page) == want
            assert f"from={day(-6)}" in page.url and f"to={day(-4)}" in page.url
            assert "churn" in _main_text(page) and "2.0 · production traffic" in _main_text(page)
            screenshot(page, "monitoring-8-drift-from-the-sidebar")
            nav.get_by_role("link", name="Model health").click()
            page.wait_for_url("**/model_health?**", timeout=60_000)
            _settle(page)
            assert _selection(page) == want
            assert "churn** 2.0" not in _main_text(page)  # rendered, not raw Markdown
            assert "2.0 (production)" in _main_text(page)
            screenshot(page, "monitoring-9-model-health-back-from-the-sidebar")
        except Exception:
            screenshot(page, "monitoring-round-trip-failed")
            raise
        finally:
            browser.close()


def _performance_tab(page, url: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{url}/model_health?model=credit_risk&from={day(-17)}&to={day(-12)}")
    _settle(page)
    page.get_by_role("tab", name="Performance").click()
    page.wait_for_timeout(2000)


def test_estimated_band_is_drawn_beside_realized_performance(monitored_copy):
    """credit_risk on Oct 30 - Nov 4: labels on the first three days only. The ROC AUC chart
    draws the estimate's band (a filled area) and both series are named in its legend, at
    1280 and 1920 px."""
    from playwright.sync_api import sync_playwright

    with running_app(monitored_copy) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page()
            for width in (1280, 1920):
                _performance_tab(page, url, width)
                chart = page.locator(".js-plotly-plot", has_text="ROC AUC per day").first
                chart.scroll_into_view_if_needed()
                text = chart.inner_text()
                assert "estimated (labels pending)" in text and "realized (labelled)" in text
                # the band: a filled polygon in the scatter layer, with an area on screen
                box = chart.locator("g.scatterlayer path.js-fill").first.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 5
                assert "No estimate" not in text
                coverage = page.locator(".js-plotly-plot", has_text="Labels per day").first
                assert coverage.count() == 1
                screenshot(page, f"monitoring-estimated-performance-{width}")
        finally:
            browser.close()
