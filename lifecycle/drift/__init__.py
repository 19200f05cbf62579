"""Drift and data-quality engine: statistics, windows, suites, verdicts and stored results.

Public read API (for pages and alerts; see docs/drift.md):
    results(store, model, version=None, variant=None, grain="day", check=None, since=None,
            until=None, *, reference=None, layer=None, subject=None) -> DataFrame
    window_counts(store, model, grain="day", version=None, variant=None) -> DataFrame
    feature_distribution(store, model, version, variant, grain, window_start, feature,
                         *, reference="spec", bins=30) -> DataFrame
Severity vocabulary: SEVERITIES, RESPONSES, QUALITY_RESPONSES, severity_rank, worst.
Computing results: lifecycle.monitor.monitor_model / monitor_all.
"""

from lifecycle.drift.results import feature_distribution, results, window_counts
from lifecycle.drift.results_model import CHECKS, INSUFFICIENT, OK
from lifecycle.drift.severity import (
    QUALITY_RESPONSES,
    RESPONSES,
    SEVERITIES,
    severity_rank,
    worst,
)

__all__ = [
    "CHECKS",
    "INSUFFICIENT",
    "OK",
    "QUALITY_RESPONSES",
    "RESPONSES",
    "SEVERITIES",
    "feature_distribution",
    "results",
    "severity_rank",
    "window_counts",
    "worst",
]
