"""Deep links from an alert (or a report line) to the page view that shows its evidence.

The one place that knows the evidence pages' URLs and query parameters (pages/model_health.py
for infrastructure, performance and business; pages/drift.py for drift and data quality).
Links to a window carry the alert's grain (hour, day, week, month or chunk:N).
Links are relative to the app ("model_health?model=..."); `absolute` prefixes the app's base
URL (--app-url, else $LIFECYCLE_APP_URL, else http://localhost:8501) for notifications and
exported reports; `app_url_source` says which of the three it is, for the reader.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import pandas as pd

ENV_APP_URL = "LIFECYCLE_APP_URL"
DEFAULT_APP_URL = "http://localhost:8501"
# layer -> url path of the page that shows its evidence (st.Page's default: the file name)
PAGES = {
    "infrastructure": "model_health",
    "performance": "model_health",
    "business": "model_health",
    "drift": "drift",
    "data_quality": "drift",
}
CONTEXT_DAYS = {"hour": 2, "day": 13, "week": 55, "month": 181}  # period shown before the window
# with the alert's first window known: the period starts this long before it (the onset and
# what came just before), but spans at most MAX_SPAN_DAYS (the pages' limit per grain)
LEAD = {
    "hour": timedelta(days=1),
    "day": timedelta(days=3),
    "week": timedelta(weeks=2),
    "month": timedelta(days=62),
}
MAX_SPAN_DAYS = {"hour": 14, "day": 366, "week": 3 * 366, "month": 5 * 366}
CHUNK_PERIOD = "day"  # row-count chunks: the period around them is chosen as for days
# layer -> the model health tab that shows it (pages/model_health.py reads `tab`)
TABS = {"infrastructure": "Infrastructure", "performance": "Performance", "business": "Business"}
RULE_TABS = {"fairness": "Fairness & segments"}  # rules whose evidence has a tab of its own


def app_url(explicit: str | None = None) -> str:
    return app_url_source(explicit)[0]


def app_url_source(explicit: str | None = None) -> tuple[str, str]:
    """(base URL of absolute links, where it came from: "--app-url", "$LIFECYCLE_APP_URL"
    or "default")."""
    if explicit:
        return explicit.rstrip("/"), "--app-url"
    if os.environ.get(ENV_APP_URL):
        return os.environ[ENV_APP_URL].rstrip("/"), f"${ENV_APP_URL}"
    return DEFAULT_APP_URL, "default"


def app_url_note(explicit: str | None = None) -> tuple[str, str]:
    """(base URL of exported links, why that one), for a sentence telling their reader."""
    base, source = app_url_source(explicit)
    if source == "default":
        return base, (
            f"the default, which works only on the machine running the app; set "
            f"{ENV_APP_URL} (or --app-url) to the address your readers open"
        )
    return base, f"from {source}"


def evidence_link(
    model: str,
    version: str,
    layer: str,
    subject: str | None = None,
    window_start: datetime | pd.Timestamp | str | None = None,
    grain: str = "day",
    variant: str = "production",
    since: datetime | pd.Timestamp | None = None,
    tab: str | None = None,
) -> str:
    """Relative URL of the page view showing this evidence.

    The monitoring pages (ui/monitoring.py) read model, version, variant, grain and the
    period (from, to: UTC days) from the URL; the drift page also `feature` and `window`
    (its heatmap cell, "%Y-%m-%dT%H:%M"), model health `tab`. Given `since` (the alert's
    first window) the period runs from a little before it (LEAD) to the window, so the onset
    shows; otherwise it shows CONTEXT_DAYS before the window.
    """
    page = PAGES[layer]
    params = {"model": model, "version": version, "variant": variant, "grain": grain}
    if window_start is not None:
        day = _utc(window_start)
        period = grain if grain in CONTEXT_DAYS else CHUNK_PERIOD
        start = day - timedelta(days=CONTEXT_DAYS[period])
        if since is not None:
            start = _utc(since) - LEAD[period]
        start = max(start, day - timedelta(days=MAX_SPAN_DAYS[period] - 1))
        params["from"] = f"{start:%Y-%m-%d}"
        params["to"] = f"{day:%Y-%m-%d}"
        if page == "drift":
            params["window"] = f"{day:%Y-%m-%dT%H:%M}"
    if page == "drift" and subject:
        params["feature"] = subject
    if tab or layer in TABS:
        params["tab"] = tab or TABS[layer]
    return f"{page}?{urlencode(params)}"


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC") if ts.tzinfo else ts


def alert_link(alert: dict) -> str:
    """Relative evidence URL of an alert row (its latest failing window)."""
    return evidence_link(
        alert["model_name"],
        alert["model_version"],
        alert["layer"],
        alert["subject"],
        alert["last_seen"],
        alert.get("grain", "day"),
        alert.get("variant", "production"),
        since=alert["first_seen"],
        tab=RULE_TABS.get(alert.get("rule")),
    )


def absolute(link: str, base: str | None = None) -> str:
    return f"{app_url(base)}/{link}"


def page_target(link: str) -> tuple[str, dict[str, str]]:
    """("pages/<page>.py", query params) of a relative link, for st.page_link."""
    page, _, query = link.partition("?")
    return f"pages/{page}.py", dict(parse_qsl(query))
