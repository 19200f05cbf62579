"""Severity grades, the response each calls for, and the default thresholds behind them.

Drift effect sizes share one yardstick: the default minor / moderate / significant
thresholds of every distance are its value for a normal feature whose mean shifted by
0.05 / 0.15 / 0.30 reference standard deviations (see docs/drift.md for the derivation and
the sampling noise at each sample size). A 0.1-sd shift is therefore at least "minor" with a
wide margin (normalised Wasserstein ~0.1 against a threshold of 0.05), while the noise of an
unchanged column stays far below 0.05 from a few thousand rows on; below that the
significance test (Benjamini-Hochberg) keeps false alarms in check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SEVERITIES = ("none", "minor", "moderate", "significant")
RANK = {s: i for i, s in enumerate(SEVERITIES)}

# What each severity calls for. Drift and concept results follow the design's ladder; a
# data-quality problem is fixed at its source rather than by retraining on bad data.
RESPONSES = {
    "none": "no action",
    "minor": "investigate",
    "moderate": "enhanced monitoring",
    "significant": "retrain",
}
QUALITY_RESPONSES = {
    "none": "no action",
    "minor": "investigate",
    "moderate": "enhanced monitoring",
    "significant": "fix the data feed",
}

# Effect-size thresholds (minor, moderate, significant); larger = more drift.
EFFECT_THRESHOLDS: dict[str, tuple[float, float, float]] = {
    # numeric: Wasserstein distance / reference std, i.e. "shifted by this many sd"
    "wasserstein": (0.05, 0.15, 0.30),
    # numeric: KS statistic (largest ECDF gap)
    "ks": (0.02, 0.06, 0.12),
    # numeric (reference deciles) or categorical: Jensen-Shannon distance, base 2
    "jensenshannon": (0.02, 0.06, 0.12),
    # numeric (reference deciles) or categorical: population stability index
    "psi": (0.0025, 0.02, 0.08),
    # multivariate: cross-validated ROC AUC of the reference-vs-current domain classifier
    "domain_auc": (0.55, 0.60, 0.70),
    # concept: drop of the window's metric below the reference (absolute, e.g. AUC points)
    "metric_drop": (0.02, 0.05, 0.10),
    # concept: relative increase of an error metric (MAE) over the reference
    "error_increase": (0.05, 0.10, 0.25),
    # concept: surrogate (trained on recent labels) better than production by this much
    "surrogate_gain": (0.02, 0.05, 0.10),
}

# Data quality: share of the window's rows affected (missing-rate increase, values out of
# the spec's range, far outliers beyond the reference's own rate, rule violations).
QUALITY_THRESHOLDS: dict[str, tuple[float, float, float]] = {
    "missing_rate": (0.01, 0.05, 0.20),
    "out_of_range": (0.001, 0.01, 0.05),
    "outliers": (0.005, 0.02, 0.10),
    "new_categories": (0.001, 0.01, 0.05),
    "business_rule": (0.001, 0.01, 0.05),
    "schema": (0.001, 0.05, 0.20),
}


def grade(effect: float | None, thresholds: tuple[float, float, float]) -> str:
    """Severity of an effect size against (minor, moderate, significant) thresholds."""
    if effect is None or (isinstance(effect, float) and math.isnan(effect)):
        return "none"
    minor, moderate, significant = thresholds
    if effect >= significant:
        return "significant"
    if effect >= moderate:
        return "moderate"
    if effect >= minor:
        return "minor"
    return "none"


def response(severity: str | None, *, quality: bool = False) -> str | None:
    """The response a severity calls for; None for results without a verdict."""
    if severity is None:
        return None
    return (QUALITY_RESPONSES if quality else RESPONSES)[severity]


def severity_rank(severity: str | None) -> int:
    """0..3 for none..significant; -1 for no verdict (insufficient data)."""
    return RANK.get(severity, -1) if severity is not None else -1


def worst(severities: Iterable[str | None]) -> str | None:
    """The most severe grade among `severities` (None if none has a verdict)."""
    best: str | None = None
    for s in severities:
        if severity_rank(s) > severity_rank(best):
            best = s
    return best
