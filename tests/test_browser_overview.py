"""A real browser opens the running app and sees the three demo models on Overview."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.browser import CHROMIUM, ROOT, running_app, screenshot, wait_until_idle

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
            # the grid draws on a canvas and mirrors its cells into an accessible table
            for model in ("credit_risk", "churn", "delivery_time"):
                page.wait_for_function(
                    "m => document.querySelector('[data-testid=stDataFrame]')"
                    "?.textContent.includes(m)",
                    arg=model,
                    timeout=30_000,
                )
            # the chart is drawn after the table: wait for it rather than race it
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
            assert page.locator(".js-plotly-plot").count() == 1
            shot = screenshot(page, "overview")
            assert shot.stat().st_size > 10_000

            # A serving process logs a batch while the app holds the database ...
            before = _served_last_7_days(page)
            batch = demo_copy.parent / "live.csv"
            _live_batch(40).to_csv(batch, index=False)
            done = subprocess.run(
                [sys.executable, "-m", "lifecycle", "ingest", "--db", str(demo_copy),
                 "--model", "churn", "--kind", "predictions", str(batch), "--wait", "60"],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "queued" in done.stderr  # it went through the app's inbox
            # ... and a refresh shows the new rows.
            page.reload()
            wait_until_idle(page)
            assert _served_last_7_days(page) == before + 40
        finally:
            browser.close()


def _served_last_7_days(page) -> int:
    metric = page.locator("[data-testid=stMetric]", has_text="Requests served, last 7 days")
    value = metric.locator("[data-testid=stMetricValue]").inner_text()
    return int(re.sub(r"[^0-9]", "", value))


def _live_batch(n: int) -> pd.DataFrame:
    ts = pd.Timestamp("2026-11-15 12:00", tz="UTC")  # inside the last 7 days of the demo
    return pd.DataFrame(
        {
            "prediction_id": [f"live-{i}" for i in range(n)],
            "model_version": "2.0",
            "ts": [ts.isoformat()] * n,
            "prediction": 0.3,
            "predicted_label": "0",
            "latency_ms": 21.5,
        }
    )


def test_deep_link_as_first_request_uses_the_app_navigation(demo_copy):
    """Streamlit's legacy pages/ mode must not run a deep-linked page on its own."""
    from playwright.sync_api import sync_playwright

    with running_app(demo_copy) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(url + "/alerts")  # the first request this server sees
            wait_until_idle(page)
            nav = page.locator("[data-testid=stSidebarNav]")
            nav.get_by_text("Monitoring").wait_for()
            assert nav.get_by_text("Overview").count() == 1
            assert nav.get_by_text("app", exact=True).count() == 0  # no file-name entries
            # app.py's sidebar ran (it may still be drawing after the guard's rerun)
            page.get_by_text("Demo data.").wait_for(timeout=60_000)
            assert page.get_by_text("Demo data.").count() == 1
        finally:
            browser.close()
