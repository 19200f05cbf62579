"""Multivariate drift: can a classifier tell reference rows from current ones?

A gradient-boosted domain classifier is trained on a bounded, deterministic sample of each
side (hash-ordered rows from SQL). Its cross-validated ROC AUC is the effect size: 0.5 means
the two samples are indistinguishable. The p-value is the one-sided Mann-Whitney test of the
out-of-fold scores (current above reference). Severity grades the AUC beyond its chance
level at the two sample sizes (lifecycle.drift.noise). When the verdict flags drift, permutation
importance on a held-out fold names the features that drive it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from lifecycle.drift import noise
from lifecycle.drift.config import DriftConfig, FeatureInfo
from lifecycle.drift.results_model import CheckResult, clean, insufficient
from lifecycle.drift.severity import grade, response

FOLDS = 3
MAX_CATEGORIES = 250  # HistGradientBoosting handles at most 255 bins per feature
TOP_DRIVERS = 5


def encode(frames: Sequence[pd.DataFrame], features: Sequence[FeatureInfo]) -> list[np.ndarray]:
    """Numeric columns as floats (NaN kept), categoricals as shared integer codes."""
    out = [np.empty((len(f), len(features))) for f in frames]
    for j, feat in enumerate(features):
        if feat.type == "numeric":
            for arr, frame in zip(out, frames, strict=True):
                arr[:, j] = pd.to_numeric(frame[feat.name], errors="coerce").to_numpy(float)
            continue
        values = pd.concat([f[feat.name] for f in frames]).dropna().astype(str)
        counts = values.value_counts()
        keep = sorted(counts.index[:MAX_CATEGORIES], key=lambda k: (-counts[k], k))
        codes = {k: i for i, k in enumerate(keep)}
        other = float(len(keep))
        for arr, frame in zip(out, frames, strict=True):
            col = frame[feat.name]
            arr[:, j] = [np.nan if pd.isna(v) else codes.get(str(v), other) for v in col.tolist()]
    return out


def too_few_rows(
    n_ref: int, n_cur: int, features: Sequence[FeatureInfo], config: DriftConfig
) -> CheckResult | None:
    """The insufficient-data result when the samples (of these sizes) cannot be compared;
    callers can ask before fetching them."""
    need = config.multivariate_min_rows
    if not features:
        return insufficient("multivariate_drift", "all_features", "the model has no features")
    if n_ref < need or n_cur < need:
        return insufficient(
            "multivariate_drift",
            "all_features",
            f"{n_ref} reference and {n_cur} current rows sampled; at least {need} per side needed",
            n_reference=n_ref,
            n_current=n_cur,
            method="domain_auc",
        )
    return None


def domain_classifier(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    features: Sequence[FeatureInfo],
    config: DriftConfig,
    seed: int,
) -> CheckResult:
    """Cross-validated AUC of reference-vs-current, its p-value, severity and drivers."""
    n_ref, n_cur = len(ref), len(cur)
    too_few = too_few_rows(n_ref, n_cur, features, config)
    if too_few is not None:
        return too_few
    x_ref, x_cur = encode([ref, cur], features)
    x = np.vstack([x_ref, x_cur])
    y = np.r_[np.zeros(n_ref), np.ones(n_cur)]
    categorical = np.array([f.type == "categorical" for f in features])
    oof, held_out = _out_of_fold(x, y, categorical, seed)
    auc = float(roc_auc_score(y, oof))
    p = float(stats.mannwhitneyu(oof[y == 1], oof[y == 0], alternative="greater").pvalue)
    thresholds = config.thresholds["domain_auc"]
    chance = noise.auc_chance_level(n_ref, n_cur, config.noise_quantile)
    graded = noise.beyond_chance(auc, chance, "domain_auc")
    severity = grade(graded, thresholds) if p < config.fdr else "none"
    drivers = _drivers(held_out, features, seed) if severity != "none" else []
    return CheckResult(
        check="multivariate_drift",
        subject="all_features",
        method="domain_auc",
        statistic=auc,
        p_value=p,
        p_adjusted=p,
        effect_size=auc,
        threshold=thresholds[0],
        severity=severity,
        response=response(severity),
        n_reference=n_ref,
        n_current=n_cur,
        details=clean(
            {
                "classifier": "HistGradientBoostingClassifier",
                "folds": FOLDS,
                "roc_auc": auc,
                "drivers": drivers,
                "thresholds": thresholds,
                "chance_level": chance,
                "chance_quantile": config.noise_quantile,
                "graded_effect": graded,
                "detectable_effect": noise.detectable(thresholds[0], chance, "domain_auc"),
            }
        ),
    )


def _model(categorical: np.ndarray, seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=30,
        max_leaf_nodes=15,
        learning_rate=0.1,
        categorical_features=categorical if categorical.any() else None,
        early_stopping=False,
        random_state=seed,
    )


def _out_of_fold(x, y, categorical, seed):
    oof = np.zeros(len(y))
    held_out = None
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for i, (train, test) in enumerate(folds.split(x, y)):
        model = _model(categorical, seed).fit(x[train], y[train])
        oof[test] = model.predict_proba(x[test])[:, 1]
        if i == 0:
            held_out = (model, x[test], y[test])
    return oof, held_out


def _drivers(held_out, features, seed) -> list[dict]:
    """Features whose permutation lowers the held-out AUC most (importance = AUC drop)."""
    model, x_test, y_test = held_out
    result = permutation_importance(
        model, x_test, y_test, scoring="roc_auc", n_repeats=3, random_state=seed
    )
    order = np.argsort(-result.importances_mean, kind="stable")
    return [
        {"feature": features[i].name, "importance": float(result.importances_mean[i])}
        for i in order[:TOP_DRIVERS]
        if result.importances_mean[i] > 0
    ]
