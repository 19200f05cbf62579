"""Synthetic reference/current samples with known drift, for the bench and detection tests.

20 numeric columns of four shapes (normal, log-normal, integer counts, bimodal) and 5
categorical ones. In the current sample four numeric columns move by 0.1 of their standard
deviation and one categorical column changes its mix; the other 20 keep their distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SHIFTED = ("x00", "x05", "x10", "x15")  # moved by SHIFT_SD standard deviations
CHANGED_MIX = "c0"
CHANGED = (*SHIFTED, CHANGED_MIX)
SHIFT_SD = 0.1
CATEGORIES = ["a", "b", "c", "d", "e"]
MIX = {
    "c0": [0.35, 0.25, 0.20, 0.12, 0.08],
    "c1": [0.2, 0.2, 0.2, 0.2, 0.2],
    "c2": [0.6, 0.2, 0.1, 0.07, 0.03],
    "c3": [0.5, 0.5, 0, 0, 0],
    "c4": [0.4, 0.3, 0.15, 0.1, 0.05],
}
CHANGED_SHARES = [0.30, 0.25, 0.20, 0.15, 0.10]  # c0 in the current sample


def _numeric(rng: np.random.Generator, i: int, n: int) -> tuple[np.ndarray, float]:
    """Column i's values and its population standard deviation."""
    shape = i // 5
    if shape == 0:  # normal with its own location and scale
        sd = 1.0 + i
        return rng.normal(10.0 * i, sd, n), sd
    if shape == 1:  # log-normal (skewed, heavy right tail)
        s = 0.5
        sd = float(np.sqrt((np.exp(s**2) - 1) * np.exp(s**2)))
        return rng.lognormal(0.0, s, n), sd
    if shape == 2:  # integer counts: many ties
        lam = 4.0 + i
        return rng.poisson(lam, n).astype(float), float(np.sqrt(lam))
    # bimodal mixture
    sd = float(np.sqrt(1 + 9))  # two unit normals at -3 and +3, equal weights
    return np.where(rng.random(n) < 0.5, -3.0, 3.0) + rng.normal(0, 1, n), sd


def drift_frames(n: int, seed: int, *, drift: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current) frames of `n` rows each; `drift=False` makes both alike."""
    rng = np.random.default_rng(seed)
    frames = []
    for side in ("reference", "current"):
        data: dict[str, np.ndarray] = {}
        for i, name in enumerate(NUMERIC):
            values, sd = _numeric(rng, i, n)
            if drift and side == "current" and name in SHIFTED:
                values = values + SHIFT_SD * sd
            data[name] = values
        for name in CATEGORICAL:
            p = MIX[name]
            if drift and side == "current" and name == CHANGED_MIX:
                p = CHANGED_SHARES
            data[name] = rng.choice(CATEGORIES, n, p=p)
        frames.append(pd.DataFrame(data))
    return frames[0], frames[1]
