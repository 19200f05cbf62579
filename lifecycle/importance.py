"""Which inputs a version relies on: a feature-importance profile from its reference set.

A proxy model (gradient boosting) is trained to reproduce the version's own predictions
(its scores, or its values for a regressor) from the features on the reference, and each
feature's importance is the permutation importance on held-out reference rows: how much the
proxy's R² drops when that feature's values are shuffled, as a share of all features'
drops. It measures what the model uses, without needing the model itself or labels.

The proxy's fidelity (held-out R² against the version's predictions) says how far to trust
the profile: below MIN_FIDELITY the profile is reported as not valid, with the reason, and
drift keeps its plain severity protocol.

A drift finding's impact is importance x effect, the effect measured against its method's
"significant" threshold so numeric and categorical features compare (1.0 = a significant
shift of the model's only input). lifecycle.drift uses it to rank drifting features and to
cap the response for features the model hardly uses (docs/drift.md, "Drift impact").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lifecycle.estimation import category_codes, design_matrix

MIN_ROWS = 200  # reference rows with a prediction needed to train and test the proxy
MAX_ROWS = 4000  # a larger reference is sampled: the profile is stable well before that
MIN_FIDELITY = 0.5  # held-out R² of the proxy below which the profile is not trusted
REPEATS = 3
METHOD = "permutation importance of a gradient-boosting proxy of the version's predictions"


@dataclass
class Profile:
    valid: bool
    shares: dict[str, float] = field(default_factory=dict)  # feature -> share of importance
    fidelity: float | None = None
    rows: int = 0
    reason: str | None = None
    method: str = METHOD


def profile(reference: pd.DataFrame, features: list[tuple[str, str]]) -> Profile:
    """Importance shares of `features` ((name, 'numeric'|'categorical') pairs) for the
    version whose reference rows (feature columns and `prediction`) are given."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    rows = reference.dropna(subset=["prediction"])
    if len(rows) > MAX_ROWS:
        rows = rows.sample(MAX_ROWS, random_state=0)
    if len(rows) < MIN_ROWS:
        return Profile(
            False,
            rows=len(rows),
            reason=f"the reference has {len(rows)} rows with a prediction; {MIN_ROWS} are needed",
        )
    names = [name for name, _ in features]
    categories = {
        name: category_codes(rows[name]) for name, kind in features if kind == "categorical"
    }
    x = design_matrix(rows, names, categories, with_prediction=False)
    y = rows["prediction"].to_numpy(dtype=float)
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    proxy = HistGradientBoostingRegressor(
        max_iter=60,
        learning_rate=0.2,
        max_leaf_nodes=15,
        categorical_features=[c in categories for c in x.columns],
        random_state=0,
    ).fit(x_fit, y_fit)
    fidelity = float(proxy.score(x_test, y_test))
    if fidelity < MIN_FIDELITY:
        return Profile(
            False,
            fidelity=fidelity,
            rows=len(rows),
            reason=f"a proxy reproduces the version's predictions from its features with R² "
            f"{fidelity:.2f} only (< {MIN_FIDELITY}); importance would not be trustworthy",
        )
    drops = permutation_importance(
        proxy, x_test, y_test, n_repeats=REPEATS, random_state=0
    ).importances_mean
    drops = np.clip(drops, 0.0, None)
    total = float(drops.sum())
    shares = {
        name: (float(d) / total if total > 0 else 1.0 / len(names))
        for name, d in zip(names, drops, strict=True)
    }
    return Profile(True, shares=shares, fidelity=fidelity, rows=len(rows))


def impact(share: float | None, effect: float | None, significant: float) -> float | None:
    """Importance x effect in units of the method's significant threshold."""
    if share is None or effect is None or not np.isfinite(effect) or significant <= 0:
        return None
    return float(share * effect / significant)
