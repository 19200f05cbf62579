"""The one shape every monitoring result has, whatever the check."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK = "ok"
INSUFFICIENT = "insufficient_data"

# check name -> (layer, tier). Layers: drift (data and predictions), concept (labels),
# quality (the three data-quality tiers: schema, statistics, business rules), performance
# (estimated before labels).
CHECKS: dict[str, tuple[str, str]] = {
    "data_drift": ("drift", "univariate"),
    "prediction_drift": ("drift", "prediction"),
    "multivariate_drift": ("drift", "multivariate"),
    "performance_drift": ("concept", "performance"),
    "concept_drift": ("concept", "surrogate"),
    "estimated_performance": ("performance", "estimated"),  # lifecycle.reference_models
    "schema": ("quality", "schema"),
    "missing_rate": ("quality", "statistics"),
    "out_of_range": ("quality", "statistics"),
    "outliers": ("quality", "statistics"),
    "new_categories": ("quality", "statistics"),
    "business_rule": ("quality", "business_rules"),
    "serving_state": ("quality", "serving"),  # lifecycle.serving_state
    "source_read": ("quality", "source"),  # lifecycle.lake_quality
    "fairness": ("performance", "fairness"),  # lifecycle.fairness
}
LABEL_CHECKS = ("performance_drift", "concept_drift")
DATA_CHECKS = tuple(c for c in CHECKS if c not in LABEL_CHECKS)


@dataclass
class CheckResult:
    """One row of monitor_results, before the window and model columns are added."""

    check: str
    subject: str
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect_size: float | None = None
    threshold: float | None = None
    severity: str | None = None
    response: str | None = None
    n_reference: int | None = None
    n_current: int | None = None
    status: str = OK
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def layer(self) -> str:
        return CHECKS[self.check][0]

    @property
    def flagged(self) -> bool:
        return self.severity not in (None, "none")


def insufficient(
    check: str,
    subject: str,
    reason: str,
    *,
    n_reference: int | None = None,
    n_current: int | None = None,
    method: str | None = None,
    details: dict | None = None,
) -> CheckResult:
    """A defined result for too little data: no statistic, no severity, the reason why."""
    return CheckResult(
        check=check,
        subject=subject,
        method=method,
        n_reference=n_reference,
        n_current=n_current,
        status=INSUFFICIENT,
        details={"reason": reason, **(details or {})},
    )


def clean(value: Any) -> Any:
    """JSON-safe, deterministic form: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def number(value: Any) -> float | None:
    """A finite float or None (for the numeric result columns)."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None
