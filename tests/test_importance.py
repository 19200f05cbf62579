"""Feature-importance profiles (lifecycle.importance) and drift impact on synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from lifecycle import importance
from lifecycle.drift.severity import EFFECT_THRESHOLDS

FEATURES = [("income", "numeric"), ("noise", "numeric"), ("region", "categorical")]


def reference(rng, n: int = 3000) -> pd.DataFrame:
    """The model leans on income, a little on region, not at all on noise."""
    frame = pd.DataFrame(
        {
            "income": rng.normal(0, 1, n),
            "noise": rng.normal(0, 1, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    logit = 2.5 * frame["income"] + 0.4 * (frame["region"] == "south")
    frame["prediction"] = 1 / (1 + np.exp(-logit))
    return frame


@pytest.mark.parametrize("seed", range(3))
def test_the_profile_finds_what_the_model_uses(seed):
    got = importance.profile(reference(np.random.default_rng(seed)), FEATURES)
    assert got.valid and got.fidelity > 0.9
    assert sum(got.shares.values()) == pytest.approx(1.0)
    assert got.shares["income"] > 0.8
    assert got.shares["region"] > got.shares["noise"]
    assert got.shares["noise"] < 0.02


@pytest.mark.parametrize("seed", range(5))
def test_an_important_shift_outranks_an_unimportant_one_twice_as_large(seed):
    """income shifted by 0.3 sd and noise by 0.6 sd: noise has the larger effect, income the
    larger impact."""
    rng = np.random.default_rng(seed)
    ref = reference(rng)
    shares = importance.profile(ref, FEATURES).shares
    current = reference(rng, 1000)
    current["income"] += 0.3
    current["noise"] += 0.6
    significant = EFFECT_THRESHOLDS["wasserstein"][2]
    effect = {
        f: wasserstein_distance(ref[f], current[f]) / ref[f].std() for f in ("income", "noise")
    }
    assert effect["noise"] > effect["income"]
    impact = {f: importance.impact(shares[f], effect[f], significant) for f in effect}
    assert impact["income"] > 10 * impact["noise"]


def test_a_profile_without_basis_says_why():
    rng = np.random.default_rng(0)
    few = importance.profile(reference(rng, 150), FEATURES)
    assert not few.valid and "150 rows" in few.reason
    unrelated = reference(rng)
    unrelated["prediction"] = rng.uniform(size=len(unrelated))  # not a function of the inputs
    got = importance.profile(unrelated, FEATURES)
    assert not got.valid and "R²" in got.reason and got.fidelity < importance.MIN_FIDELITY


def test_impact_needs_an_effect_and_a_share():
    assert importance.impact(0.5, 0.3, 0.3) == pytest.approx(0.5)
    assert importance.impact(None, 0.3, 0.3) is None
    assert importance.impact(0.5, float("nan"), 0.3) is None
