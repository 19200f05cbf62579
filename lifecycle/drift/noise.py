"""What chance alone produces: the noise level of every graded effect at a window's sizes.

A distance between two samples is never exactly zero, and how far from zero chance takes it
depends on the sample sizes: at 165 rows a window of unchanged data measures a normalised
Wasserstein distance of about 0.1-0.2, at 100,000 rows about 0.01. A fixed threshold
therefore means "alarm" at small windows and "blind" nowhere else. Every graded effect is
compared with its *chance level* at the window's own sizes and only what stands clear of it
is graded (docs/drift.md, "Noise-aware severity"):

- drift distances (Wasserstein / sd, KS, Jensen-Shannon, PSI): the `quantile` (0.99) of the
  distance between two samples of the window's sizes (reference n, current n) drawn from the
  *reference* distribution itself: a parametric-free bootstrap null, simulated with
  multinomial draws over the reference's atoms (at most 1,000 quantile points of a numeric
  column, or its categories), so it costs milliseconds and never touches the logs;
- rates (missing-rate increase, new categories, outliers, range and rule violations): the
  one-sided lower confidence bound of the rate (Wilson score; Newcombe's hybrid score for a
  difference of two rates), so the graded value is what the window proves at that level;
- the domain classifier's AUC: the Mann-Whitney null quantile at the two sample sizes.

How the chance level is removed from an effect (`beyond_chance`) depends on how noise adds
to it. KS and Wasserstein are metrics whose noise can line up with a shift, so the measured
value is bounded by the true one plus the noise (triangle inequality): subtract. Jensen-
Shannon distance is the square root of a divergence whose noise adds as an independent
quadratic term (chi-square-like): subtract in squares. PSI is itself a divergence: subtract.
Chance levels are cached per (reference atoms, method, size bucket); sizes are rounded
*down* to a geometric grid, which only makes the chance level a little larger (conservative).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import stats

from lifecycle.drift.stats import PSI_EPSILON

SIMULATIONS = 1000
DEFAULT_QUANTILE = 0.99
MAX_ATOMS = 1000  # quantile points that stand for a numeric reference distribution
_EXACT_ATOMS = 64  # up to this many atoms, exact multinomial draws are cheap
_INDEX_DRAWS = 500  # samples up to this size are drawn value by value
_GRID = 2 ** (1 / 8)  # size buckets: about 9% apart
_CACHE_SIZE = 4096
_cache: OrderedDict[tuple, float] = OrderedDict()
_cache_lock = threading.Lock()

QUADRATIC = frozenset({"jensenshannon"})  # noise adds in squares (see module docstring)


@dataclass(frozen=True)
class Atoms:
    """A discrete stand-in for a reference distribution: distinct values and their masses."""

    values: np.ndarray  # ascending (numeric) or category labels
    masses: np.ndarray  # sum to 1

    @cached_property  # the reference's atoms are reused window after window
    def digest(self) -> str:
        h = hashlib.sha1(np.asarray(self.masses, dtype=float).tobytes())
        h.update(repr(list(self.values)).encode())
        return h.hexdigest()


def numeric_atoms(quantile_values) -> Atoms:
    """Atoms from equally weighted quantile points (duplicates merge: ties are kept)."""
    v = np.asarray([x for x in quantile_values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Atoms(np.array([0.0]), np.array([1.0]))
    values, counts = np.unique(v, return_counts=True)
    return Atoms(values, counts / counts.sum())


def categorical_atoms(counts: dict[str, int]) -> Atoms:
    keys = sorted(k for k, n in counts.items() if n > 0)
    n = np.array([counts[k] for k in keys], dtype=float)
    return Atoms(np.array(keys, dtype=object), n / n.sum())


def size_bucket(n: int) -> int:
    """`n` rounded down to the geometric grid (at least 1)."""
    if n <= 16:
        return max(int(n), 1)
    return max(16, math.floor(_GRID ** math.floor(math.log(n) / math.log(_GRID))))


def atom_quantile_points(k: int = MAX_ATOMS) -> list[float]:
    """Probabilities at which a numeric reference is summarised: (i + 0.5) / k."""
    return [(i + 0.5) / k for i in range(k)]


# -- simulated null of the drift distances --------------------------------------------------


def chance_level(
    atoms: Atoms,
    method: str,
    n_ref: int,
    n_cur: int,
    *,
    scale: float = 1.0,
    edges: list[float] | None = None,
    quantile: float = DEFAULT_QUANTILE,
) -> float:
    """The `quantile` of `method`'s distance between two samples of sizes (n_ref, n_cur)
    drawn from `atoms`. `scale` divides Wasserstein; `edges` are the bins of binned
    (PSI, JS) distances of a numeric column (None: the atoms are the categories)."""
    m1, m2 = size_bucket(n_ref), size_bucket(n_cur)
    key = (
        atoms.digest,
        method,
        m1,
        m2,
        tuple(edges) if edges is not None else None,
        quantile,
    )
    with _cache_lock:
        raw = _cache.get(key)
        if raw is not None:
            _cache.move_to_end(key)
    if raw is None:
        raw = _simulate(atoms, method, m1, m2, edges, quantile, _seed(key))
        with _cache_lock:  # monitoring may run on several threads of the app's process
            _cache[key] = raw
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    if method == "wasserstein":
        return raw / scale if scale > 0 else float("nan")
    return raw


def _seed(key: tuple) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:4], "big")


def _simulate(atoms, method, m1, m2, edges, quantile, seed) -> float:
    rng = np.random.default_rng(seed)
    p = atoms.masses
    a, b = _counts(rng, m1, p), _counts(rng, m2, p)
    if method in ("wasserstein", "ks"):
        diff = np.cumsum(a, axis=1) / m1 - np.cumsum(b, axis=1) / m2
        if method == "ks":
            values = np.abs(diff).max(axis=1)
        else:
            values = np.abs(diff[:, :-1]) @ np.diff(atoms.values.astype(float))
    else:
        if edges is not None:  # numeric column binned on the reference's quantile edges
            bins = np.searchsorted(np.asarray(edges, dtype=float), atoms.values, side="left")
            onehot = np.zeros((len(p), len(edges) + 1))
            onehot[np.arange(len(p)), bins] = 1.0
            a, b = a @ onehot, b @ onehot
        a, b = np.maximum(a, 0.0), np.maximum(b, 0.0)
        values = _psi_rows(a, b) if method == "psi" else _js_rows(a, b)
    return float(np.quantile(values, quantile))


def _counts(rng: np.random.Generator, m: int, p: np.ndarray) -> np.ndarray:
    """SIMULATIONS rows of counts of a size-m sample over atoms with masses p.

    Exact multinomial draws where that is cheap (few atoms); index draws for small samples;
    for large samples over many atoms the Gaussian limit of the multinomial (mean m p,
    covariance m (diag p - p p')), whose cumulative sums are the empirical process that
    KS and Wasserstein integrate, at a tenth of the cost.
    """
    k = len(p)
    if k <= _EXACT_ATOMS:
        return rng.multinomial(m, p, size=SIMULATIONS).astype(float)
    if m <= _INDEX_DRAWS:
        idx = np.searchsorted(np.cumsum(p), rng.random((SIMULATIONS, m)), side="right")
        idx = np.minimum(idx, k - 1) + np.arange(SIMULATIONS)[:, None] * k
        return np.bincount(idx.ravel(), minlength=SIMULATIONS * k).reshape(SIMULATIONS, k) * 1.0
    z = rng.standard_normal((SIMULATIONS, k)) * np.sqrt(p)
    noise = z - np.outer(z.sum(axis=1), p)
    return m * p + math.sqrt(m) * noise  # may dip below 0 per atom; binned sums are clipped


def _shares(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum(axis=1, keepdims=True)


def _psi_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p = np.maximum(_shares(a), PSI_EPSILON)
    q = np.maximum(_shares(b), PSI_EPSILON)
    return np.sum((q - p) * np.log(q / p), axis=1)


def _js_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) per row, as scipy's jensenshannon computes it."""
    p, q = _shares(a), _shares(b)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0) / np.log(2))


# -- what stands clear of chance -------------------------------------------------------------


def beyond_chance(effect: float | None, chance: float | None, method: str) -> float | None:
    """The part of `effect` that chance at these sizes cannot explain (0 when none)."""
    if effect is None or chance is None or not math.isfinite(chance):
        return effect
    if method in QUADRATIC:
        return math.sqrt(max(effect * effect - chance * chance, 0.0))
    if method == "domain_auc":
        return 0.5 + max(effect - chance, 0.0)
    return max(effect - chance, 0.0)


def detectable(minor: float, chance: float | None, method: str) -> float | None:
    """The smallest measured effect that grades as minor at these sizes."""
    if chance is None or not math.isfinite(chance):
        return None
    if method in QUADRATIC:
        return math.sqrt(minor * minor + chance * chance)
    if method == "domain_auc":
        return minor + (chance - 0.5)
    return minor + chance


def auc_chance_level(n_ref: int, n_cur: int, quantile: float = DEFAULT_QUANTILE) -> float:
    """The null quantile of a ROC AUC between two groups of these sizes (Mann-Whitney)."""
    sd = math.sqrt((n_ref + n_cur + 1) / (12.0 * n_ref * n_cur))
    return 0.5 + float(stats.norm.ppf(quantile)) * sd


# -- rates: lower confidence bounds ---------------------------------------------------------


def wilson(successes, n, z: float):
    """Wilson score interval of `successes` in `n` (scalars or arrays; NaN where n = 0).
    The one implementation behind rate bounds, performance intervals and label coverage."""
    s, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    safe = np.where(n > 0, n, 1)
    p = s / safe
    denom = 1 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denom
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / denom
    low = np.where(n > 0, np.maximum(0.0, centre - half), np.nan)
    high = np.where(n > 0, np.minimum(1.0, centre + half), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def rate_excess_bound(
    k: int,
    n: int,
    *,
    ref_rate: float = 0.0,
    ref_k: int | None = None,
    ref_n: int | None = None,
    quantile: float = DEFAULT_QUANTILE,
) -> float:
    """Lower confidence bound (one-sided, `quantile`) of (rate - reference rate), floored at 0.

    With `ref_k`/`ref_n` the reference rate is itself a sample (Newcombe's hybrid score
    interval for a difference of proportions); otherwise `ref_rate` is taken as known (a
    spec's allowed values, an expected rate).
    """
    if n <= 0:
        return 0.0
    z = float(stats.norm.ppf(quantile))
    p = k / n
    lo, _ = wilson(k, n, z)
    if ref_k is None or not ref_n:
        return max(lo - ref_rate, 0.0)
    p_ref = ref_k / ref_n
    _, hi_ref = wilson(ref_k, ref_n, z)
    bound = (p - p_ref) - math.sqrt((p - lo) ** 2 + (hi_ref - p_ref) ** 2)
    return max(bound, 0.0)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
