"""Verdicts mean the same at every traffic volume: false alarms and detection over many seeds.

The real engine (drift, prediction drift, data-quality rates) runs on synthetic windows whose
truth is known (lifecycle.drift.calibration): 20 seeds x 20 stable windows at each size, and
20 seeds x 5 shifted windows at the sizes where a shift must still be caught. The figures
these tests pin are in docs/drift.md ("Noise-aware severity").
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from lifecycle.drift import noise
from lifecycle.drift.calibration import CAT3, CAT18, SIZES, TARGET_JS, shifted_mix, stream_trials

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("n", SIZES)
def test_stable_streams_raise_at_most_one_moderate_flag_per_thousand_tests(n):
    tally = stream_trials(sizes=[n], seeds=range(20), windows=20)[n]
    # 5 features, score and predicted label, and the missing-rate, outlier and
    # new-category rates: at least 10 verdicts a window
    assert tally.tests() >= 20 * 20 * 10
    assert tally.at_least("moderate") <= tally.tests() / 1000, tally.flagged("moderate")
    # chance alone rarely even reaches "minor" (the 0.99 chance level plus significance)
    assert tally.rate("minor") <= 0.01, tally.flagged("minor")


@pytest.mark.parametrize("n", [500, 1_250, 10_000])
def test_shifts_that_matter_are_caught_from_500_rows(n):
    """0.3 sd on a numeric feature, a mix change of JS 0.1 on a 3- and an 18-category one."""
    tally = stream_trials(sizes=[n], seeds=range(20), windows=5, shifted=True)[n]
    num, cat3, cat18 = (("data_drift", f) for f in ("num", "cat3", "cat18"))
    assert tally.tests(num) == tally.tests(cat3) == tally.tests(cat18) == 100
    assert tally.rate("minor", num) == 1.0
    assert tally.rate("moderate", num) >= (0.6 if n == 500 else 0.95)
    assert tally.rate("minor", cat3) >= 0.95
    # 18 categories at 500 rows sit at the limit of any test at a 1% false-alarm rate
    # (chi-square power about 78%); from 1,250 rows the change is caught every time
    assert tally.rate("minor", cat18) >= (0.5 if n == 500 else 0.95)


def test_shifted_mix_has_the_target_distance():
    for p in (CAT3, CAT18):
        assert jensenshannon(p, shifted_mix(p), base=2) == pytest.approx(TARGET_JS, abs=1e-6)


def test_chance_level_matches_direct_resampling():
    """The multinomial simulation equals resampling the reference with scipy's distances."""
    from scipy.stats import ks_2samp, wasserstein_distance

    rng = np.random.default_rng(7)
    ref = rng.lognormal(0, 0.6, 4000)
    points = np.quantile(ref, noise.atom_quantile_points(), method="inverted_cdf")
    atoms = noise.numeric_atoms(points)
    for n in (120, 700, 5000):
        draws = [(rng.choice(ref, 4000), rng.choice(ref, n)) for _ in range(400)]
        w = np.quantile([wasserstein_distance(a, b) for a, b in draws], 0.99) / ref.std()
        ks = np.quantile([ks_2samp(a, b).statistic for a, b in draws], 0.99)
        sim_w = noise.chance_level(atoms, "wasserstein", 4000, n, scale=ref.std())
        sim_ks = noise.chance_level(atoms, "ks", 4000, n)
        # within sampling error of a 99th percentile, never much below it (conservative)
        assert 0.9 * w <= sim_w <= 1.3 * w
        assert 0.9 * ks <= sim_ks <= 1.3 * ks


def test_beyond_chance_rules():
    assert noise.beyond_chance(0.30, 0.10, "wasserstein") == pytest.approx(0.20)
    assert noise.beyond_chance(0.05, 0.10, "ks") == 0.0
    assert noise.beyond_chance(0.13, 0.05, "jensenshannon") == pytest.approx(0.12)
    assert noise.beyond_chance(0.62, 0.53, "domain_auc") == pytest.approx(0.59)
    assert noise.detectable(0.05, 0.10, "wasserstein") == pytest.approx(0.15)
    assert noise.beyond_chance(None, 0.1, "ks") is None


def test_rate_bounds_are_what_the_window_proves():
    # two odd rows in 165 prove far less than 1.2% of the rows
    assert noise.rate_excess_bound(2, 165) < 0.003  # raw share 0.0121
    # the same share of a million rows proves nearly all of it
    assert noise.rate_excess_bound(12_121, 1_000_000) == pytest.approx(0.0121, abs=0.0003)
    # a reference with the same rate: nothing beyond it
    assert noise.rate_excess_bound(10, 200, ref_k=50, ref_n=1000) == 0.0
    assert noise.rate_excess_bound(0, 0) == 0.0


def test_size_buckets_round_down():
    for n in (1, 15, 16, 17, 165, 1000, 123_456):
        b = noise.size_bucket(n)
        assert b <= n and b >= 0.9 * n - 1
