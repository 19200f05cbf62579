"""What monitoring learns once per version from its reference set, and the checks using it.

- The performance estimator (lifecycle.estimation): each window gets `estimated_performance`
  results, one per metric, before any label arrives, graded against the version's realized
  performance on the same reference with the alert tolerances (`[alerts.performance]`).
- The feature-importance profile (lifecycle.importance), stored in `feature_importance` for
  pages and reports; each `data_drift` result gets the feature's importance and the
  finding's impact, and a feature the model hardly uses (share below `[drift]
  min_importance`) has its response capped at "investigate" (docs/drift.md).

Both are fitted from the reference table and kept per (model, version, reference digest)
for the life of the process, so a monitoring run fits each version once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from lifecycle import estimation, importance
from lifecycle.drift.results_model import CheckResult, insufficient
from lifecycle.drift.severity import RESPONSES, severity_rank
from lifecycle.drift.windows import spec_labelled_relation, spec_relation

CHECK = "estimated_performance"
_CACHE: dict[tuple, VersionModels] = {}
_CACHE_SIZE = 32


@dataclass
class VersionModels:
    task: str
    positive: str | None
    estimator: estimation.Estimator
    reference_metrics: dict[str, float]
    profile: importance.Profile


def version_models(cur, model: str, version: str, task, features) -> VersionModels:
    """The fitted estimator and importance profile of a version (`task`: layers.ModelTask;
    `features`: the version's FeatureInfo), from the cache or fitted now."""
    digest = cur.execute(
        "SELECT reference_sha256 FROM model_versions WHERE model_name = ? AND version = ?",
        [model, version],
    ).fetchone()
    key = (model, version, digest[0] if digest else None, task.task)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _fit(cur, model, version, task, features)
    return _CACHE[key]


def _fit(cur, model: str, version: str, task, features) -> VersionModels:
    names = [f.name for f in features]
    labelled = spec_labelled_relation(model, version, names).execute(cur).df()
    predicted = _predicted_positive(labelled, task)
    if task.task == "regression":
        categorical = [f.name for f in features if f.type == "categorical"]
        frame = labelled.assign(actual=labelled["actual_value"])
        estimator = estimation.fit_regressor(frame, names, categorical)
    elif task.binary:
        outcome = labelled["actual_value"]
        estimator = estimation.fit_classifier(task.task, labelled["prediction"], outcome)
    else:
        right = (labelled["predicted_label"] == labelled["actual_label"]).astype(float)
        estimator = estimation.fit_classifier(task.task, labelled["prediction"], right)
    profile = stored_profile(cur, model, version)
    if profile is None:
        everything = spec_relation(model, version, names).execute(cur).df()
        profile = importance.profile(everything, [(f.name, f.type) for f in features])
    return VersionModels(
        task=task.task,
        positive=task.positive,
        estimator=estimator,
        reference_metrics=_realized(labelled, task, predicted),
        profile=profile,
    )


def _predicted_positive(frame: pd.DataFrame, task) -> pd.Series | None:
    """Binary: the predicted label is the positive class (the logged label, else score >=
    0.5, as the performance layer reads it)."""
    if not task.binary:
        return None
    by_score = frame["prediction"] >= 0.5
    logged = frame["predicted_label"]
    return logged.eq(task.positive).where(logged.notna(), by_score).astype(bool)


def _realized(frame: pd.DataFrame, task, predicted) -> dict[str, float]:
    """The reference's own metrics, to grade an estimate against."""
    from sklearn import metrics

    if frame.empty:
        return {}
    if task.task == "regression":
        rows = frame.dropna(subset=["prediction", "actual_value"])
        error = rows["actual_value"] - rows["prediction"]
        return {"mae": float(error.abs().mean()), "rmse": math.sqrt(float((error**2).mean()))}
    if not task.binary:
        return {"accuracy": float((frame["predicted_label"] == frame["actual_label"]).mean())}
    actual = frame["actual_value"] == 1.0
    out = {
        "accuracy": metrics.accuracy_score(actual, predicted),
        "precision": metrics.precision_score(actual, predicted, zero_division=0),
        "recall": metrics.recall_score(actual, predicted, zero_division=0),
        "f1": metrics.f1_score(actual, predicted, zero_division=0),
    }
    scored = frame["prediction"].notna()
    if actual[scored].nunique() == 2:
        out["roc_auc"] = metrics.roc_auc_score(actual[scored], frame["prediction"][scored])
    return {k: float(v) for k, v in out.items()}


# -- estimated performance per window ---------------------------------------------------------


def estimated_performance(
    cur, table: str, models: VersionModels, task, tolerance: dict[str, list[float]]
) -> list[CheckResult]:
    """One `estimated_performance` result per metric for the window whose predictions are in
    temp table `table` (the monitoring run's current sample), or why there is none."""
    est = models.estimator
    if not est.valid:
        return [insufficient(CHECK, m, est.reason or "no estimate") for m in est.metrics()]
    # classifiers need the scores and predicted labels only; regressors the features too
    columns = "*" if task.task == "regression" else "prediction, predicted_label"
    frame = cur.execute(f"SELECT {columns} FROM {table} WHERE prediction IS NOT NULL").df()
    if len(frame) < estimation.MIN_WINDOW_ROWS:
        reason = (
            f"{len(frame)} scored prediction(s) in the window; {estimation.MIN_WINDOW_ROWS} "
            "are needed for an estimate"
        )
        return [insufficient(CHECK, m, reason, n_current=len(frame)) for m in est.metrics()]
    if task.task == "regression":
        estimates = estimation.estimate_regressor(est, frame)
    else:
        predicted = _predicted_positive(frame, task)
        estimates = estimation.estimate_classifier(est, frame["prediction"], predicted)
    return [
        _graded(
            metric, e, models.reference_metrics.get(metric), tolerance.get(metric), est, len(frame)
        )
        for metric, e in estimates.items()
    ]


def _graded(metric, e, reference, tolerance, est, rows) -> CheckResult:
    """Severity: the band misses the reference by more than the warning (moderate) or
    critical (significant) tolerance, as the realized-performance rule grades."""
    if math.isnan(e.value):
        return insufficient(
            CHECK,
            metric,
            "undefined in this window (e.g. nothing predicted positive)",
            n_current=rows,
        )
    lower_is_better = metric in estimation.REGRESSION_METRICS
    severity, shortfall = "none", None
    if reference is not None and tolerance:
        if lower_is_better:
            shortfall = e.low / reference - 1 if reference > 0 else None
        else:
            shortfall = reference - e.high
        if shortfall is not None:
            if shortfall > tolerance[1]:
                severity = "significant"
            elif shortfall > tolerance[0]:
                severity = "moderate"
    method = "DLE" if lower_is_better else "CBPE"
    return CheckResult(
        check=CHECK,
        subject=metric,
        method=method,
        statistic=e.value,
        effect_size=shortfall,
        threshold=tolerance[0] if tolerance else None,
        severity=severity,
        response=RESPONSES[severity] if severity != "none" else "no action",
        n_reference=est.reference_rows,
        n_current=rows,
        details={
            "estimate": e.value,
            "low": e.low,
            "high": e.high,
            "reference_value": reference,
            "tolerance": tolerance,
            "basis": "estimated from scores, labels pending"
            if method == "CBPE"
            else "estimated from features and prediction, labels pending",
        },
    )


# -- drift impact ------------------------------------------------------------------------------


def with_impact(
    results: list[CheckResult], profile: importance.Profile, thresholds: dict, min_share: float
) -> list[CheckResult]:
    """`data_drift` results with the feature's importance share and the finding's impact;
    the response of a feature below `min_share` capped at "investigate"."""
    if not profile.valid:
        return results
    out = []
    for r in results:
        if r.check != "data_drift" or r.subject not in profile.shares:
            out.append(r)
            continue
        share = profile.shares[r.subject]
        significant = thresholds.get(r.method or "", (0, 0, 0))[2]
        details = {
            **r.details,
            "importance": share,
            "impact": importance.impact(share, r.effect_size, significant),
        }
        response = r.response
        if share < min_share and severity_rank(r.severity or "none") > severity_rank("minor"):
            response = RESPONSES["minor"]
            details["response_capped"] = (
                f"the model gives this feature {share:.1%} of its importance "
                f"(< {min_share:.0%}): investigate rather than {r.response}"
            )
        out.append(replace(r, details=details, response=response))
    return out


def stored_profile(cur, model: str, version: str) -> importance.Profile | None:
    """The profile an earlier run stored (a version's reference never changes), or None."""
    rows = cur.execute(
        "SELECT feature, share, fidelity, method, reason FROM feature_importance "
        "WHERE model_name = ? AND model_version = ? ORDER BY feature",
        [model, version],
    ).fetchall()
    if not rows:
        return None
    fidelity, method, reason = rows[0][2], rows[0][3], rows[0][4]
    shares = {feature: share for feature, share, *_ in rows if feature is not None}
    return importance.Profile(
        bool(shares), shares=shares, fidelity=fidelity, reason=reason, method=method
    )


def store_profile(cur, model: str, version: str, profile: importance.Profile) -> None:
    """Keep the version's profile in `feature_importance` (replacing an earlier one)."""
    cur.execute(
        "DELETE FROM feature_importance WHERE model_name = ? AND model_version = ?",
        [model, version],
    )
    rows: list[list[Any]] = [
        [model, version, name, share, profile.fidelity, profile.method, None]
        for name, share in profile.shares.items()
    ] or [[model, version, None, None, profile.fidelity, profile.method, profile.reason]]
    cur.executemany("INSERT INTO feature_importance VALUES (?, ?, ?, ?, ?, ?, ?, now())", rows)
