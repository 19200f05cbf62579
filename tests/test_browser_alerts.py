"""In Chromium: the alerts inbox, a scheduled check queued to the running app, following an
alert to its evidence, acknowledging it, and exporting the weekly review, whose HTML then
opens on its own with its chart rendered."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from lifecycle import catalog
from lifecycle.alerts import report
from lifecycle.alerts.check import run_check
from lifecycle.store import Store
from tests.browser import ARTIFACTS, CHROMIUM, ROOT, running_app, screenshot, wait_until_idle
from tests.conftest import write_toy_spec
from tests.test_check import FAST_DRIFT, end_of, serve_day

pytestmark = pytest.mark.browser


@pytest.fixture
def alerts_db(tmp_path):
    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    path = tmp_path / "browser.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        serve_day(store, 0)
        serve_day(store, 1, new_color=0.015)
        run_check(store, as_of=end_of(1))
        serve_day(store, 2, missing_x=0.5)  # left for the check run while the app holds the DB
    return path


def test_inbox_evidence_acknowledge_and_export(alerts_db):
    from playwright.sync_api import sync_playwright

    with running_app(alerts_db) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(f"{url}/alerts")  # the app opens (and from now on holds) the database
            wait_until_idle(page)
            page.get_by_text("Warning (active)").wait_for()

            # cron's check while the app holds the file: queued to the app, exit code returned
            done = subprocess.run(
                [sys.executable, "-m", "lifecycle", "check", "--db", str(alerts_db),
                 "--as-of", end_of(2).isoformat(), "--wait", "120"],
                cwd=ROOT, capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert done.returncode == 2, done.stderr
            assert "check queued" in done.stderr and "CRITICAL" in done.stdout
            page.reload()
            wait_until_idle(page)
            page.get_by_text("Critical (active)").wait_for()
            # the critical alert comes first, with its evidence summary and response
            page.get_by_role(
                "heading", name=re.compile(r"#\d+: x: missing_rate_increase")
            ).wait_for()
            page.get_by_text("fix the data feed").first.wait_for()
            screenshot(page, "alerts-inbox")

            # follow the critical alert's link to the drift page, on the alerted feature
            page.get_by_text("Open the evidence").click()
            page.wait_for_url("**/drift?**feature=x**", timeout=30_000)
            wait_until_idle(page)
            page.get_by_role("heading", name="Drift investigation").wait_for()
            assert "window=2026-03-04" in page.url
            assert page.locator("[data-testid=stException]").count() == 0
            page.locator("[data-testid=stPlotlyChart]").first.wait_for()
            screenshot(page, "alerts-evidence")

            # back to the inbox: acknowledge with a comment
            page.go_back()
            wait_until_idle(page)
            page.locator(".st-key-ack_comment input").fill("feed owner paged")
            page.locator(".st-key-ack_comment input").press("Enter")
            wait_until_idle(page)
            page.locator(".st-key-ack button").click()
            page.get_by_text("acknowledge recorded").wait_for(timeout=30_000)
            wait_until_idle(page)
            state = page.locator("[data-testid=stMetric]", has_text="State")
            assert state.locator("[data-testid=stMetricValue]").inner_text() == "acknowledged"
            screenshot(page, "alerts-acknowledged")

            # weekly review: export the HTML
            week = report.week_of(end_of(2))
            page.goto(f"{url}/weekly_review?week={week}")
            wait_until_idle(page)
            page.get_by_text("What changed since last week").first.wait_for()
            with page.expect_download() as download:
                page.locator(".st-key-export_html button").click()
            ARTIFACTS.mkdir(exist_ok=True)
            exported = ARTIFACTS / f"weekly-review-{week}.html"
            download.value.save_as(exported)

            # the exported file on its own (no server, no network): its chart renders
            offline = browser.new_page(viewport={"width": 1200, "height": 1000})
            offline.route("http*://**", lambda route: route.abort())
            offline.goto(exported.as_uri())
            offline.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
            assert offline.locator(".js-plotly-plot").count() == 1
            assert offline.get_by_text("acknowledged").count() >= 1
            shot = screenshot(offline, "weekly-review-export")
            assert shot.stat().st_size > 20_000
        finally:
            browser.close()
    with Store(alerts_db) as store:
        acked = store.query_all("SELECT count(*) FROM alerts WHERE state = 'acknowledged'")
        assert acked[0][0] == 1
    shutil.rmtree(alerts_db.parent / "browser.duckdb.inbox", ignore_errors=True)
