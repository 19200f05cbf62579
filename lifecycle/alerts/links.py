"""Deep links from an alert (or a report line) to the page view that shows its evidence.

The one place that knows the evidence pages' URLs and query parameters (pages/model_health.py
for infrastructure, performance and business; pages/drift.py for drift and data quality).
Links are relative to the app ("model_health?model=..."); `absolute` prefixes the app's base
URL (--app-url, else $LIFECYCLE_APP_URL, else http://localhost:8501) for notifications.
"""

from __future__ import annotations

import os
from datetime import datetime
from urllib.parse import urlencode

import pandas as pd

ENV_APP_URL = "LIFECYCLE_APP_URL"
DEFAULT_APP_URL = "http://localhost:8501"
# layer -> (page url path, the layer's tab/section on that page)
PAGES = {
    "infrastructure": ("model_health", "infrastructure"),
    "performance": ("model_health", "performance"),
    "business": ("model_health", "business"),
    "drift": ("drift", None),
    "data_quality": ("drift", None),
}
FEATURE_RULES = ("data_drift", "missing_rate", "out_of_range", "outliers", "new_categories")


def app_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get(ENV_APP_URL) or DEFAULT_APP_URL).rstrip("/")


def evidence_link(
    model: str,
    version: str,
    layer: str,
    rule: str,
    subject: str,
    window_start: datetime | pd.Timestamp | str | None,
    grain: str = "day",
) -> str:
    """Relative URL of the page view showing this evidence."""
    page, section = PAGES[layer]
    params = {"model": model, "version": version}
    if section:
        params["layer"] = section
    if layer in ("drift", "data_quality"):
        if rule in FEATURE_RULES or rule == "schema":
            params["feature"] = subject
        params["check"] = rule
    if window_start is not None:
        ts = pd.Timestamp(window_start)
        params["window"] = (
            ts.strftime("%Y-%m-%d") if grain != "hour" else ts.strftime("%Y-%m-%dT%H:%M")
        )
        params["grain"] = grain
    return f"{page}?{urlencode(params)}"


def alert_link(alert: dict) -> str:
    """Relative evidence URL of an alert row (its latest failing window)."""
    return evidence_link(
        alert["model_name"],
        alert["model_version"],
        alert["layer"],
        alert["rule"],
        alert["subject"],
        alert["last_seen"],
        alert.get("grain", "day"),
    )


def absolute(link: str, base: str | None = None) -> str:
    return f"{app_url(base)}/{link}"
