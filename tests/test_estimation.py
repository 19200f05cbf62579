"""Estimated performance (lifecycle.estimation) against realized performance on synthetic data
with a known truth, over many seeds and windows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from lifecycle import estimation

WINDOWS, ROWS = 20, 1000


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def binary_world(rng, n: int, x1_mean: float = 0.0, concept: float = 1.0):
    """Two features; the label's true probability is sigmoid(concept * (4 x1 + 1.5 x2 - 0.5))
    (concept 1: the relation the model learnt); the model's score is a miscalibrated version
    of it (too confident)."""
    x1 = rng.normal(x1_mean, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    logit = 4 * x1 + 1.5 * x2 - 0.5
    y = rng.uniform(size=n) < sigmoid(concept * logit)
    score = sigmoid(1.6 * logit)
    return score, y


def realized(score, y) -> dict[str, float]:
    pred = score >= 0.5
    return {
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred),
        "f1": f1_score(y, pred),
        "roc_auc": roc_auc_score(y, score),
    }


def fitted_binary(rng) -> estimation.Estimator:
    score, y = binary_world(rng, 5000)
    est = estimation.fit_classifier("binary_classification", score, y)
    assert est.valid, est.reason
    return est


SEEDS = range(5)


def test_covariate_shift_estimates_follow_realized_accuracy_and_auc():
    """x1's mean moves 0 -> 1.2 over 20 windows of 1,000 rows (the label's relation to the
    inputs unchanged), for 5 seeds: estimated accuracy and ROC AUC within 0.02 of realized
    in >= 90% of the windows, and every metric's realized value inside its 95% band in
    >= 88% (the band leaves out part of the calibrator's bias at the extremes)."""
    close = {"accuracy": 0, "roc_auc": 0}
    inside = dict.fromkeys(estimation.CLASSIFIER_METRICS, 0)
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        est = fitted_binary(rng)
        for w in range(WINDOWS):
            score, y = binary_world(rng, ROWS, x1_mean=1.2 * w / (WINDOWS - 1))
            estimates = estimation.estimate_classifier(est, score, score >= 0.5)
            truth = realized(score, y)
            for metric in close:
                close[metric] += abs(estimates[metric].value - truth[metric]) <= 0.02
            for metric, e in estimates.items():
                inside[metric] += e.low <= truth[metric] <= e.high
    windows = len(SEEDS) * WINDOWS
    assert min(close.values()) >= 0.9 * windows, close
    assert min(inside.values()) >= 0.88 * windows, inside


def test_the_shift_moves_the_estimate_the_way_it_moves_the_truth():
    rng = np.random.default_rng(7)
    est = fitted_binary(rng)
    first, last = (
        estimation.estimate_classifier(est, s, s >= 0.5)
        for s, _ in (binary_world(rng, 20_000), binary_world(rng, 20_000, x1_mean=1.5))
    )
    score, y = binary_world(rng, 20_000, x1_mean=1.5)
    truth = realized(score, y)
    assert last["recall"].value > first["recall"].value + 0.05  # more positives, easier ones
    assert last["recall"].value == pytest.approx(truth["recall"], abs=0.02)


def test_a_concept_shift_leaves_the_estimate_flat_while_realized_falls():
    """The estimate reads only the scores: when the label's relation changes and the inputs
    do not, it stays where it was (the concept-drift check is what catches this)."""
    rng = np.random.default_rng(3)
    est = fitted_binary(rng)
    score, _ = binary_world(rng, 5000)
    shifted_score, shifted_y = binary_world(rng, 5000, concept=0.3)
    before = estimation.estimate_classifier(est, score, score >= 0.5)["accuracy"]
    after = estimation.estimate_classifier(est, shifted_score, shifted_score >= 0.5)["accuracy"]
    assert abs(after.value - before.value) < 0.02
    assert realized(shifted_score, shifted_y)["accuracy"] < after.low - 0.05


def brute_force_auc(s, p) -> float:
    """Sum over ordered pairs i != j of p_i (1 - p_j) [s_i > s_j] (+ half on ties)."""
    num = den = 0.0
    for i in range(len(s)):
        for j in range(len(s)):
            if i == j:
                continue
            w = p[i] * (1 - p[j])
            den += w
            num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


@pytest.mark.parametrize("seed", range(4))
def test_expected_auc_equals_the_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    s = rng.choice([0.1, 0.2, 0.35, 0.5, 0.8, 0.9], 60)  # many ties
    p = rng.uniform(0, 1, 60)
    got = estimation._expected_auc(s, p, len(s))
    assert got.value == pytest.approx(brute_force_auc(s, p), rel=1e-12)
    # with 0/1 "probabilities" it is the ordinary ROC AUC of those labels
    y = rng.uniform(size=60) < 0.4
    got = estimation._expected_auc(s, y.astype(float), len(s))
    assert got.value == pytest.approx(roc_auc_score(y, s), rel=1e-12)


def test_multiclass_accuracy_from_the_predicted_class_confidence():
    """A three-class model logs the probability of its predicted class; calibrated, it
    estimates accuracy under a shift in the class mix."""
    rng = np.random.default_rng(1)

    def world(n, mix):
        easy = rng.choice(3, n, p=mix) == 2  # class 2 is predicted with more confidence
        confidence = np.where(easy, rng.beta(9, 2, n), rng.beta(4, 3, n))
        right = rng.uniform(size=n) < 0.8 * confidence + 0.1  # over-confident
        return confidence, right

    conf, right = world(5000, [0.5, 0.3, 0.2])
    est = estimation.fit_classifier("multiclass_classification", conf, right)
    assert est.valid and est.metrics() == ("accuracy",)
    hits = 0
    for _ in range(WINDOWS):
        conf, right = world(ROWS, [0.1, 0.2, 0.7])  # more of the easy class: accuracy rises
        got = estimation.estimate_classifier(est, conf)
        assert set(got) == {"accuracy"}
        hits += abs(got["accuracy"].value - right.mean()) <= 0.03
    assert hits >= 0.9 * WINDOWS
    assert (
        got["accuracy"].value
        > estimation.estimate_classifier(est, world(ROWS, [0.5, 0.3, 0.2])[0])["accuracy"].high
    )


@pytest.mark.parametrize(
    ("scores", "outcome", "reason"),
    [
        (np.full(100, 0.5), np.arange(100) % 2, "100 labelled rows with a score; 200"),
        (np.linspace(0, 1, 400), np.r_[np.zeros(390), np.ones(10)], "10 positive"),
        (np.full(400, np.nan), np.arange(400) % 2, "no scores"),
        (np.random.default_rng(0).uniform(size=400), np.arange(400) % 2, "too little inform"),
    ],
    ids=["too-few-rows", "one-class", "no-scores", "uninformative"],
)
def test_a_reference_that_cannot_support_an_estimate_says_why(scores, outcome, reason):
    est = estimation.fit_classifier("binary_classification", scores, outcome)
    assert not est.valid and reason in est.reason


def regression_world(rng, n: int, shift: float = 0.0):
    """The model predicts the mean exactly; the noise grows with |x2|, whose mean shifts."""
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(shift, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    noise_sd = 0.5 + np.abs(x2) + (colour == "red") * 0.5
    prediction = 3 * x1
    actual = prediction + rng.normal(0, 1, n) * noise_sd
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "prediction": prediction})
    return frame, actual


@pytest.mark.slow
def test_regression_mae_and_rmse_follow_a_covariate_shift():
    """x2 (which drives the error's size) moves by 1 sd over 20 windows of 1,000 rows, for
    3 seeds: estimated MAE within 10% of realized in >= 90% of windows, RMSE within 20%,
    realized MAE inside the band in >= 80% (the loss models' level error on a 5,000-row
    reference is only partly in the band)."""
    close = inside = windows = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        frame, actual = regression_world(rng, 5000)
        reference = frame.assign(actual=actual)
        est = estimation.fit_regressor(reference, ["x1", "x2", "colour"], ["colour"])
        assert est.valid, est.reason
        for w in range(WINDOWS):
            window, truth = regression_world(rng, ROWS, shift=w / (WINDOWS - 1))
            got = estimation.estimate_regressor(est, window)
            error = truth - window["prediction"]
            mae, rmse = float(np.abs(error).mean()), math.sqrt(float((error**2).mean()))
            close += abs(got["mae"].value - mae) <= 0.1 * mae
            inside += got["mae"].low <= mae <= got["mae"].high
            assert got["rmse"].value == pytest.approx(rmse, rel=0.2)
            windows += 1
    assert close >= 0.9 * windows
    assert inside >= 0.8 * windows


def test_regression_needs_enough_reference_rows():
    rng = np.random.default_rng(0)
    frame, actual = regression_world(rng, 150)
    est = estimation.fit_regressor(frame.assign(actual=actual), ["x1", "x2", "colour"], ["colour"])
    assert not est.valid and "150 rows" in est.reason


def test_the_calibration_is_scikit_learns_isotonic_fit():
    """Estimates interpolate the isotonic fit's knots (no per-call checks): the same numbers
    as IsotonicRegression.predict, inside and beyond the reference's scores."""
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(4)
    score, y = binary_world(rng, 3000)
    est = estimation.fit_classifier("binary_classification", score, y)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
    probe = np.r_[-0.5, 0.0, rng.uniform(size=2000), 1.0, 1.5]
    assert np.allclose(
        estimation.calibrate(est.calibration, probe), fitted.predict(probe), rtol=0, atol=1e-12
    )
