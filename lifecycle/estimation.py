"""Performance estimated before labels arrive: CBPE for classifiers, DLE for regressors.

Both learn, once per version and from its reference (validation) set, how right the model
is given what it predicted, and apply that to a window's predictions:

- **Classifiers (CBPE, confidence-based performance estimation).** The reference's scores
  are calibrated with isotonic regression (score -> probability that the label is positive,
  monotone by construction). For a window, each prediction's calibrated probability p is the
  expected share of a positive label, so the expected confusion counts are sums of p and
  1 - p over predicted positives and negatives; accuracy, precision, recall and F1 follow,
  and ROC AUC is the AUC of the scores with every row counted as a positive with weight p
  and as a negative with weight 1 - p. Multiclass models log the probability of the
  predicted class; its calibration gives the chance that a prediction is right, hence
  accuracy (per-class recall or AUC would need every class's probability).
- **Regressors (DLE, direct loss estimation).** Two gradient-boosting models fitted on the
  reference predict each row's absolute and squared error from its features and
  prediction; their window means estimate MAE and MSE (RMSE = its square root).

The band beside each estimate is where the realized metric of a window of this size falls
95% of the time if the estimate is right: labels drawn independently with the calibrated
probabilities (normal approximation of the confusion counts, delta method for the ratios,
Hanley-McNeil for AUC); for regressors, errors with the predicted mean and a normal shape.
It does not cover the calibrator's own error, which is why a reference needs enough rows.

The assumption behind every estimate: the relation between inputs and the label is what
it was on the reference (covariate shift only). A concept shift breaks it silently; the
concept-drift check tests it once labels arrive. Where the reference cannot support an
estimate (too few labelled rows or rows of a class, scores that carry no information,
no scores logged, an unsupported task) the result says why instead of giving a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.layers import Z95, auc_interval

MIN_REFERENCE_LABELS = 200  # labelled reference rows a calibrator is fitted on
MIN_CLASS_ROWS = 50  # rows of each outcome (positive / negative, right / wrong)
MIN_REFERENCE_AUC = 0.55  # below: the scores say too little about the label to calibrate
MAX_CATEGORIES = 254
CALIBRATION_RESAMPLES = 20  # bootstrap calibrators behind the calibration part of the band
SPREAD_ROWS = 5_000
MIN_WINDOW_ROWS = 30  # fewer predictions in a window: no estimate (as realized metrics)
CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


@dataclass
class Estimator:
    """What a version's reference supports: `reason` says why not when `valid` is False."""

    task: str
    valid: bool
    reason: str | None = None
    reference_rows: int = 0
    calibration: Any = None  # isotonic calibration as (score knots, probability knots)
    resampled: tuple = ()  # the same fitted on bootstrap resamples of the reference
    loss_models: tuple = ()  # (absolute-error model, squared-error model) for regressors
    level_se: tuple = ()  # standard error of each loss model's level, from the reference
    features: list[str] = field(default_factory=list)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> value -> code

    def metrics(self) -> tuple[str, ...]:
        if self.task == "regression":
            return REGRESSION_METRICS
        return CLASSIFIER_METRICS if self.task == "binary_classification" else ("accuracy",)


def invalid(task: str, reason: str, rows: int = 0) -> Estimator:
    return Estimator(task=task, valid=False, reason=reason, reference_rows=rows)


# -- classifiers -------------------------------------------------------------------------------


def fit_classifier(task: str, scores, outcome) -> Estimator:
    """Calibrate `scores` against `outcome` on the reference. Binary: score = probability of
    the positive class, outcome = the label is positive; multiclass: score = probability of
    the predicted class, outcome = the prediction was right. Rows without a label or a
    score are left out."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    s = np.asarray(scores, dtype=float)
    y = np.asarray(outcome, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    what = "positive and negative" if task == "binary_classification" else "right and wrong"
    if not len(s) and len(keep):
        return invalid(task, "the reference has no scores (`prediction`) to calibrate")
    if len(s) < MIN_REFERENCE_LABELS:
        return invalid(
            task,
            f"the reference has {len(s)} labelled rows with a score; "
            f"{MIN_REFERENCE_LABELS} are needed to calibrate",
            len(s),
        )
    ones = int(y.sum())
    if min(ones, len(y) - ones) < MIN_CLASS_ROWS:
        return invalid(
            task,
            f"the reference has {ones} {what.split(' and ')[0]} and {len(y) - ones} "
            f"{what.split(' and ')[1]} rows; {MIN_CLASS_ROWS} of each are needed",
            len(s),
        )
    auc = roc_auc_score(y, s)
    if auc < MIN_REFERENCE_AUC:
        return invalid(
            task,
            f"the scores carry too little information about the outcome on the reference "
            f"(ROC AUC {auc:.3f} < {MIN_REFERENCE_AUC}); calibrated they would be a constant",
            len(s),
        )

    def isotonic(rows):
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            s[rows], y[rows]
        )
        # its predict is linear interpolation between these knots, constant beyond them:
        # np.interp on the knots gives the same numbers without scikit-learn's per-call checks
        return fitted.X_thresholds_, fitted.y_thresholds_

    rng = np.random.default_rng(0)
    resampled = tuple(
        isotonic(rng.integers(0, len(s), len(s))) for _ in range(CALIBRATION_RESAMPLES)
    )
    return Estimator(
        task=task,
        valid=True,
        reference_rows=len(s),
        calibration=isotonic(slice(None)),
        resampled=resampled,
    )


def estimate_classifier(est: Estimator, scores, predicted_positive=None) -> dict[str, Estimate]:
    """Estimated metrics of one window. Binary: `scores` are positive-class probabilities,
    `predicted_positive` the predicted labels (True = positive); multiclass: the predicted
    class's probabilities (accuracy only). Rows without a score are left out."""
    s = np.asarray(scores, dtype=float)
    keep = np.isfinite(s)
    s = s[keep]
    if est.task == "binary_classification":
        predicted = np.asarray(predicted_positive, dtype=bool)[keep]
    else:
        predicted = np.ones(len(s), dtype=bool)  # the outcome is "right": accuracy = precision
    point = _point_estimates(est.task, calibrate(est.calibration, s), predicted, s)
    # the calibrator's own uncertainty: the spread of the estimate over calibrators fitted on
    # resamples of the reference (on at most SPREAD_ROWS rows of the window: it hardly
    # depends on the window's size), added to the sampling band in quadrature
    step = max(1, len(s) // SPREAD_ROWS)
    few_s, few_pred = s[::step], predicted[::step]
    spread = [
        _point_estimates(est.task, calibrate(c, few_s), few_pred, few_s, bands=False)
        for c in est.resampled
    ]
    return {m: _widen(e, np.std([r[m].value for r in spread])) for m, e in point.items()}


def calibrate(knots: tuple[np.ndarray, np.ndarray], scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of `scores` (the isotonic fit's interpolation)."""
    return np.interp(scores, *knots)


def _point_estimates(task, p, predicted, s, bands: bool = True) -> dict[str, Estimate]:
    if task != "binary_classification":
        return {"accuracy": _share(p)}
    return _binary_estimates(p, predicted, s, bands)


def _widen(e: Estimate, sd: float) -> Estimate:
    if math.isnan(e.value) or not math.isfinite(sd):
        return e
    half = math.hypot(max(e.value - e.low, e.high - e.value), Z95 * sd)
    return Estimate(e.value, max(0.0, e.value - half), min(1.0, e.value + half))


def _share(p: np.ndarray) -> Estimate:
    """Mean of Bernoulli(p) outcomes: value and its 95% band."""
    n = len(p)
    value = float(p.mean())
    half = Z95 * math.sqrt(float((p * (1 - p)).sum())) / n
    return Estimate(value, max(0.0, value - half), min(1.0, value + half))


def _binary_estimates(p: np.ndarray, predicted: np.ndarray, s: np.ndarray, bands=True) -> dict:
    n = len(p)
    correct = np.where(predicted, p, 1 - p)
    out = {"accuracy": _share(correct)}
    pos, neg = p[predicted], p[~predicted]
    tp, fn = pos.sum(), neg.sum()  # expected positives among predicted positives / negatives
    v_tp, v_fn = (pos * (1 - pos)).sum(), (neg * (1 - neg)).sum()
    n1 = len(pos)
    out["precision"] = _ratio_band(tp / n1 if n1 else math.nan, v_tp / n1**2 if n1 else 0.0)
    # recall = TP / (TP + FN) and F1 = 2 TP / (TP + n1 + FN), TP and FN independent
    actual = tp + fn
    recall = tp / actual if actual else math.nan
    var_recall = (fn**2 * v_tp + tp**2 * v_fn) / actual**4 if actual else 0.0
    out["recall"] = _ratio_band(recall, var_recall)
    d = tp + n1 + fn
    f1 = 2 * tp / d if d else math.nan
    var_f1 = 4 * ((n1 + fn) ** 2 * v_tp + tp**2 * v_fn) / d**4 if d else 0.0
    out["f1"] = _ratio_band(f1, var_f1)
    out["roc_auc"] = _expected_auc(s, p, n, bands)
    return out


def _ratio_band(value: float, variance: float) -> Estimate:
    if math.isnan(value):
        return Estimate(math.nan, math.nan, math.nan)
    half = Z95 * math.sqrt(max(variance, 0.0))
    return Estimate(float(value), max(0.0, value - half), min(1.0, value + half))


def _expected_auc(s: np.ndarray, p: np.ndarray, n: int, band: bool = True) -> Estimate:
    """AUC of the scores with each row a positive of weight p and a negative of weight
    1 - p, leaving out each row's pairing with itself; band by Hanley-McNeil at the
    expected class counts."""
    order = np.argsort(s, kind="stable")
    s, p = s[order], p[order]
    q = 1 - p
    # per distinct score: positive weight, negative weight, negative weight strictly below
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(p, starts)
    neg = np.add.reduceat(q, starts)
    below = np.cumsum(neg) - neg
    self_pairs = float((p * q).sum())
    pairs = float(pos.sum() * neg.sum()) - self_pairs
    if pairs <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    # a row tied with itself counts 0.5 in `pos * neg`; take its own pairing out again
    auc = (float((pos * (below + 0.5 * neg)).sum()) - 0.5 * self_pairs) / pairs
    n_pos, n_neg = float(p.sum()), float(n - p.sum())
    low, high = auc_interval(auc, n_pos, n_neg) if band else (math.nan, math.nan)
    return Estimate(auc, low, high)


# -- regressors --------------------------------------------------------------------------------


def fit_regressor(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> Estimator:
    """Loss models on the reference: `frame` has the feature columns, `prediction` and
    `actual`; rows without both are left out."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    task = "regression"
    rows = frame.dropna(subset=["prediction", "actual"])
    if len(rows) < MIN_REFERENCE_LABELS:
        return invalid(
            task,
            f"the reference has {len(rows)} rows with a prediction and an actual value; "
            f"{MIN_REFERENCE_LABELS} are needed to learn its errors",
            len(rows),
        )
    error = (rows["actual"] - rows["prediction"]).to_numpy(dtype=float)
    categories = {name: category_codes(rows[name]) for name in categorical}
    x = design_matrix(rows, features, categories)
    models = tuple(
        HistGradientBoostingRegressor(
            max_iter=100,
            learning_rate=0.05,
            max_depth=3,
            min_samples_leaf=max(50, len(rows) // 50),
            categorical_features=[c in categories for c in x.columns],
            random_state=0,
        ).fit(x, target)
        for target in (np.abs(error), error**2)
    )
    # how well the reference pins each model's level: the residuals' standard error
    level_se = tuple(
        float(np.std(target - model.predict(x)) / math.sqrt(len(rows)))
        for model, target in zip(models, (np.abs(error), error**2), strict=True)
    )
    return Estimator(
        task=task,
        valid=True,
        reference_rows=len(rows),
        loss_models=models,
        level_se=level_se,
        features=list(features),
        categories=categories,
    )


def estimate_regressor(est: Estimator, frame: pd.DataFrame) -> dict[str, Estimate]:
    """Estimated MAE and RMSE of one window (`frame`: feature columns and `prediction`)."""
    rows = frame.dropna(subset=["prediction"])
    x = design_matrix(rows, est.features, est.categories)
    absolute = np.clip(est.loss_models[0].predict(x), 0.0, None)
    squared = np.clip(est.loss_models[1].predict(x), 0.0, None)
    n = len(rows)
    mae = float(absolute.mean())
    # sampling: Var |e| = E e^2 - (E|e|)^2 per row, Var e^2 = 2 (E e^2)^2 for a normal
    # error; plus the uncertainty of each loss model's level on the reference
    var_mae = float(np.clip(squared - absolute**2, 0, None).sum()) / n**2
    half = Z95 * math.sqrt(var_mae + est.level_se[0] ** 2)
    mse = float(squared.mean())
    half_mse = Z95 * math.sqrt(float((2 * squared**2).sum()) / n**2 + est.level_se[1] ** 2)
    return {
        "mae": Estimate(mae, max(0.0, mae - half), mae + half),
        "rmse": Estimate(
            math.sqrt(mse), math.sqrt(max(0.0, mse - half_mse)), math.sqrt(mse + half_mse)
        ),
    }


def category_codes(values: pd.Series) -> dict[str, int]:
    """Codes of a categorical feature's most frequent reference values (the boosting
    models take at most 254 categories; rarer and unseen values read as missing)."""
    top = values.dropna().astype(str).value_counts().index[:MAX_CATEGORIES]
    return {value: code for code, value in enumerate(sorted(top))}


def design_matrix(
    frame: pd.DataFrame, features: list[str], categories: dict, with_prediction: bool = True
) -> pd.DataFrame:
    """Features (and the prediction) as gradient-boosting models read them: numbers as
    floats, categories as their reference codes (`category_codes`)."""
    x = pd.DataFrame(index=frame.index)
    for name in features:
        if name in categories:
            x[name] = frame[name].astype(str).map(categories[name]).astype(float)
        else:
            x[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    if with_prediction:
        x["prediction"] = frame["prediction"].astype(float)
    return x
