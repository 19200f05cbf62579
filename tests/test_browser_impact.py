"""Drift impact in a real browser: the drift page ranks the important feature first and
shows each feature's share of importance; Version detail draws the profile. Screenshots at
1280 and 1920 px go to test-artifacts/."""

from __future__ import annotations

import pytest

from tests.browser import CHROMIUM, running_app, screenshot, wait_until_idle
from tests.test_drift_impact import IMPORTANT, UNIMPORTANT, build, score

pytestmark = pytest.mark.browser


@pytest.fixture
def scoring_db(tmp_path):
    return build(tmp_path, lambda frame, rng: score(frame))


def _settle(page) -> None:
    wait_until_idle(page, timeout_ms=240_000)
    page.wait_for_timeout(1500)  # charts paint after the script run ends


def _row_label_top(page, feature: str) -> float:
    """Vertical position of the severity grid's row label of `feature` ("name (NN%)")."""
    label = page.locator("[data-testid=stVegaLiteChart] text", has_text=f"{feature} (")
    label.first.wait_for(timeout=30_000)
    assert label.count() == 1, feature
    return label.bounding_box()["y"]


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_impact_ranking_is_visible(scoring_db, width):
    from playwright.sync_api import sync_playwright

    with running_app(scoring_db) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.goto(f"{url}/drift?model=scoring&from=2026-03-02&to=2026-03-03")
            _settle(page)
            main = page.locator("[data-testid=stMainBlockContainer]")
            assert "Drifting features, by impact" in main.inner_text()
            ranking = page.locator(".st-key-impact_ranking-0")
            assert ranking.is_visible()
            # the grid lists the important feature above the one that moved twice as much
            assert _row_label_top(page, IMPORTANT) < _row_label_top(page, UNIMPORTANT)
            assert f"{IMPORTANT} in 2026-03-03" in main.inner_text()  # opened on it
            screenshot(page, f"impact-1-drift-ranking-{width}")

            # a click on the second ranked feature opens its finding, which says why its
            # response is investigate (the grid draws row 1 below a 35 px header)
            box = ranking.bounding_box()
            page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 + 17)
            page.wait_for_url(f"**feature={UNIMPORTANT}**", timeout=60_000)
            _settle(page)
            capped = page.get_by_text("Response capped at investigate")
            capped.scroll_into_view_if_needed()
            assert capped.is_visible()
            screenshot(page, f"impact-2-drift-capped-{width}")

            page.goto(f"{url}/version?model=scoring&version=1.0")
            _settle(page)
            page.get_by_role("tab", name="Drift baseline").click()
            page.wait_for_timeout(1500)
            chart = page.locator(".js-plotly-plot", has_text="share of importance per feature")
            chart.scroll_into_view_if_needed()
            assert chart.is_visible()
            screenshot(page, f"impact-3-version-importance-{width}")
        finally:
            browser.close()
