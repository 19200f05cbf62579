"""Concept drift from labels: performance against the reference, and a surrogate check.

- performance_drift: the window's metric (binary: ROC AUC of the score; multiclass:
  accuracy; regression: MAE) against the same metric on the reference, with a bootstrap
  confidence interval of the difference (both sides resampled). A drop whose 95% interval
  excludes zero is graded by its size.
- concept_drift: a simple model (logistic or ridge regression on the features) is fitted
  on the window's labelled rows, scored out-of-fold, and compared with the production
  model's own predictions on the same rows (paired bootstrap). A surrogate clearly better
  than production means the relation between features and target has moved away from
  what production learned.

Labelled rows reach Python only as a bounded, hash-ordered sample (`label_sample`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from lifecycle.drift.config import DriftConfig, FeatureInfo
from lifecycle.drift.results_model import CheckResult, clean, insufficient
from lifecycle.drift.severity import grade, response

METRIC = {
    "binary_classification": "roc_auc",
    "multiclass_classification": "accuracy",
    "regression": "mae",
}
FOLDS = 5
NEWTON_STEPS, NEWTON_TOL = 100, 1e-9  # fit_logistic: at most this many steps; stop below this


# -- metrics with bootstrap weights ------------------------------------------------------


class _Metric:
    """A task metric evaluated under resampling weights (w = how often each row is drawn)."""

    def __init__(self, name: str, y_true: np.ndarray, y_pred: np.ndarray):
        self.name = name
        if name == "roc_auc":
            order = np.argsort(y_pred, kind="mergesort")
            self.score = y_pred[order]
            self.positive = y_true[order] == 1
            # tie groups: rows with equal scores share a group id
            self.group = np.r_[0, np.cumsum(np.diff(self.score) != 0)]
            self.order = order
        else:
            self.loss = (
                (y_true == y_pred).astype(float) if name == "accuracy" else np.abs(y_true - y_pred)
            )

    def __call__(self, w: np.ndarray) -> float:
        if self.name != "roc_auc":
            return float(np.dot(w, self.loss) / w.sum())
        w = w[self.order]
        wp, wn = np.where(self.positive, w, 0.0), np.where(self.positive, 0.0, w)
        neg_in_group = np.bincount(self.group, weights=wn)
        neg_below = np.cumsum(neg_in_group) - neg_in_group
        # each positive beats the negatives below its score and ties half of its own group
        credit = neg_below[self.group] + 0.5 * neg_in_group[self.group]
        total = wp.sum() * wn.sum()
        return float(np.dot(wp, credit) / total) if total else float("nan")

    @property
    def higher_is_better(self) -> bool:
        return self.name != "mae"


def _weights(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.bincount(rng.integers(0, n, n), minlength=n).astype(float)


def _truth_and_prediction(frame: pd.DataFrame, task: str):
    if task == "binary_classification":
        return frame["actual_value"].to_numpy(float), frame["prediction"].to_numpy(float)
    if task == "multiclass_classification":
        return frame["actual_label"].astype(str).to_numpy(), frame["predicted_label"].astype(
            str
        ).to_numpy()
    return frame["actual_value"].to_numpy(float), frame["prediction"].to_numpy(float)


def _usable(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Rows with both a label and the prediction the metric needs."""
    if task == "multiclass_classification":
        return frame.dropna(subset=["actual_label", "predicted_label"])
    return frame.dropna(subset=["actual_value", "prediction"])


def _why_unusable(frame: pd.DataFrame, task: str, minimum: int, side: str) -> str | None:
    if len(frame) < minimum:
        return f"{len(frame)} labelled row(s) in the {side}; at least {minimum} needed"
    if task == "binary_classification" and frame["actual_value"].nunique() < 2:
        return f"the {side}'s labels hold a single class; ROC AUC needs both"
    return None


# -- performance drift -------------------------------------------------------------------


def performance_drift(
    ref: pd.DataFrame, cur: pd.DataFrame, task: str, config: DriftConfig, seed: int
) -> CheckResult:
    """The window's metric against the reference's, with a bootstrap CI of the change."""
    name = METRIC[task]
    ref, cur = _usable(ref, task), _usable(cur, task)
    reason = _why_unusable(cur, task, config.min_labels, "window") or _why_unusable(
        ref, task, config.min_labels, "reference"
    )
    if reason:
        return insufficient(
            "performance_drift",
            name,
            reason,
            n_reference=len(ref),
            n_current=len(cur),
            method=name,
        )
    m_ref = _Metric(name, *_truth_and_prediction(ref, task))
    m_cur = _Metric(name, *_truth_and_prediction(cur, task))
    value_ref, value_cur = m_ref(np.ones(len(ref))), m_cur(np.ones(len(cur)))
    rng = np.random.default_rng(seed)
    boot = np.array(
        [
            _change(m_ref(_weights(rng, len(ref))), m_cur(_weights(rng, len(cur))), name)
            for _ in range(config.bootstrap)
        ]
    )
    change = _change(value_ref, value_cur, name)
    return _graded(
        "performance_drift",
        name,
        change,
        boot,
        "error_increase" if name == "mae" else "metric_drop",
        config,
        statistic=value_cur,
        n_reference=len(ref),
        n_current=len(cur),
        details={"metric": name, "reference_value": value_ref, "window_value": value_cur},
    )


def _change(reference: float, current: float, name: str) -> float:
    """How much worse the current value is: AUC/accuracy drop, or MAE's relative increase."""
    if name == "mae":
        return (current - reference) / reference if reference > 0 else float("inf")
    return reference - current


def _graded(check, subject, change, boot, measure, config, **fields) -> CheckResult:
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    p = float((1 + np.sum(boot <= 0)) / (len(boot) + 1))
    thresholds = config.thresholds[measure]
    severity = grade(change, thresholds) if lo > 0 else "none"
    details = fields.pop("details")
    details.update(
        {
            "change": change,
            "change_measure": measure,
            "ci_low": lo,
            "ci_high": hi,
            "bootstrap": len(boot),
            "thresholds": thresholds,
        }
    )
    return CheckResult(
        check=check,
        subject=subject,
        method=measure,
        p_value=p,
        p_adjusted=p,
        effect_size=change,
        threshold=thresholds[0],
        severity=severity,
        response=response(severity),
        details=clean(details),
        **fields,
    )


# -- surrogate check -------------------------------------------------------------------


def surrogate_check(
    cur: pd.DataFrame,
    features: Sequence[FeatureInfo],
    task: str,
    config: DriftConfig,
    seed: int,
) -> CheckResult:
    """A simple model fitted on the window's labels vs production on the same rows."""
    name = METRIC[task]
    cur = _usable(cur, task)
    reason = _why_unusable(cur, task, config.min_labels, "window")
    if reason is None and task != "regression":
        smallest = _labels(cur, task).value_counts().min()
        if smallest < FOLDS:
            reason = f"a class has {smallest} labelled row(s); {FOLDS} needed for cross-validation"
    if reason is None and not features:
        reason = "the model has no features"
    if reason:
        return insufficient(
            "concept_drift", name, reason, n_current=len(cur), method="surrogate_gain"
        )
    y_true, y_prod = _truth_and_prediction(cur, task)
    y_sur = _surrogate_predictions(cur, features, task, seed)
    m_prod, m_sur = _Metric(name, y_true, y_prod), _Metric(name, y_true, y_sur)
    ones = np.ones(len(cur))
    gain = _change(m_sur(ones), m_prod(ones), name)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(config.bootstrap):
        w = _weights(rng, len(cur))  # paired: the same rows for both models
        boot.append(_change(m_sur(w), m_prod(w), name))
    return _graded(
        "concept_drift",
        name,
        gain,
        np.array(boot),
        "surrogate_gain",
        config,
        statistic=m_sur(ones),
        n_current=len(cur),
        details={
            "metric": name,
            "surrogate_value": m_sur(ones),
            "production_value": m_prod(ones),
            "surrogate": "logistic regression" if task != "regression" else "ridge regression",
            "folds": FOLDS,
        },
    )


def _labels(frame: pd.DataFrame, task: str) -> pd.Series:
    if task == "multiclass_classification":
        return frame["actual_label"].astype(str)
    return frame["actual_value"]


def _design_matrix(frame: pd.DataFrame, features) -> np.ndarray:
    """Standardised numeric columns (missing -> median) and one-hot categoricals.

    Encoded once for all rows: the encoding uses no labels, so doing it outside the
    cross-validation folds leaks nothing about the target, and is much faster.
    """
    parts = []
    for f in features:
        col = frame[f.name]
        if f.type == "numeric":
            x = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
            median = np.nanmedian(x) if np.isfinite(x).any() else 0.0
            x = np.where(np.isfinite(x), x, median)
            sd = x.std()
            parts.append(((x - x.mean()) / sd if sd > 0 else x * 0)[:, None])
        else:
            text = col.astype(object).where(col.notna(), "(missing)").astype(str)
            # pd.get_dummies' matrix (sorted categories) at a fifth of its cost
            categories, codes = np.unique(text.to_numpy(dtype=object), return_inverse=True)
            parts.append(np.eye(len(categories))[codes])
    return np.hstack(parts)


def _surrogate_predictions(frame, features, task, seed) -> np.ndarray:
    x = _design_matrix(frame, features)
    y = _labels(frame, task).to_numpy()
    if task == "regression":
        cv = KFold(FOLDS, shuffle=True, random_state=seed)
        return _out_of_fold(Ridge(alpha=1.0), x, y.astype(float), cv, "predict")
    cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    if task == "binary_classification":
        positive = y == np.max(y)  # predict_proba's second column: the larger label
        out = np.empty(len(y))
        for train, test in cv.split(x, y):
            out[test] = _logistic_scores(x[test], fit_logistic(x[train], positive[train]))
        return out
    model = LogisticRegression(max_iter=1000)
    return _out_of_fold(model, x, y, cv, "predict").astype(str)


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Coefficients (intercept last) of L2-penalised logistic regression, scikit-learn's
    LogisticRegression(C=c) objective: sum of log-losses + ||w||^2 / (2 c), the intercept
    unpenalised. Solved by Newton's method with step halving: on a few hundred rows and
    a few dozen columns it converges in about 8 steps of one small linear solve each, where
    lbfgs through scikit-learn spent ~10 ms a fit in per-iteration overhead. The objective
    is strictly convex, so both find the same optimum (lbfgs to its tolerance, 1e-4)."""
    xa = np.hstack([x, np.ones((len(x), 1))])
    target = np.asarray(y, dtype=float)
    ridge = np.full(xa.shape[1], 1.0 / c)
    ridge[-1] = 0.0

    def objective(theta):
        z = xa @ theta
        return np.sum(np.logaddexp(0.0, z) - target * z) + 0.5 * np.dot(ridge * theta, theta)

    theta = np.zeros(xa.shape[1])
    value = objective(theta)
    for _ in range(NEWTON_STEPS):
        p = expit(xa @ theta)
        gradient = xa.T @ (p - target) + ridge * theta
        hessian = (xa.T * (p * (1.0 - p))) @ xa + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):  # halve until the objective does not grow
            new_value = objective(theta - step)
            if new_value <= value:
                break
            step = step / 2
        theta, value = theta - step, new_value
        if np.max(np.abs(step)) < NEWTON_TOL:
            break
    return theta


def _logistic_scores(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return expit(x @ theta[:-1] + theta[-1])


def _out_of_fold(model, x: np.ndarray, y: np.ndarray, cv, method: str) -> np.ndarray:
    """Each row predicted by the model fitted on the other folds: the same fits and numbers
    as scikit-learn's cross_val_predict, without its per-call overhead (a fifth of the
    check's time on windows of a few hundred rows). Every training fold holds every class
    (the caller requires FOLDS rows of each), so predict_proba's columns always align."""
    out = None
    for train, test in cv.split(x, y):
        predicted = getattr(clone(model).fit(x[train], y[train]), method)(x[test])
        if out is None:
            out = np.empty((len(y), *predicted.shape[1:]), dtype=predicted.dtype)
        out[test] = predicted
    return out
