"""Two-sample statistics computed from summaries (value counts, bin counts), never raw logs.

Every function here takes counts that SQL produced and returns the numbers scipy would give
on the underlying samples: the KS p-value follows `scipy.stats.ks_2samp(method="auto")`,
chi-square is `scipy.stats.chi2_contingency` on the count table, Jensen-Shannon is
`scipy.spatial.distance.jensenshannon` (base 2, so it lies in [0, 1]). Missing values are
never part of a sample: the caller drops them (the missing-rate check reports them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lifecycle.drift import offload

# ks_2samp's own rule: exact distribution when both samples have at most this many values.
KS_EXACT_MAX_N = 10_000
# Sample-size products from which a parallel run computes the exact p-value in a worker
# process (lifecycle.drift.offload); below, sending it costs more than computing it.
OFFLOAD_KS_CELLS = 1_000_000
# Shares below this are raised to it before PSI's logarithm (an empty bin would be infinite).
PSI_EPSILON = 1e-4
# Chi-square cells with an expected count below this are pooled (Cochran's rule).
CHI2_MIN_EXPECTED = 5.0
OTHER = "(other)"

try:  # scipy's exact two-sample path; private, so the tests compare with ks_2samp itself
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - a scipy without it: use the asymptotic formula
    _attempt_exact_2kssamp = None


def ks_test(d: float, n1: int, n2: int) -> tuple[float, float, str]:
    """Two-sided KS result for the largest ECDF gap `d`, as ks_2samp(method="auto") reports it.

    Returns (statistic, p-value, "exact" | "asymp"). Only d, n1 and n2 matter, which is why
    the gap can come from SQL aggregates. Like ks_2samp, the exact path reports the gap
    rounded to the lattice h / lcm(n1, n2) that it was computed on.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"KS needs two non-empty samples, got sizes {n1} and {n2}")
    if max(n1, n2) <= KS_EXACT_MAX_N and _attempt_exact_2kssamp is not None:
        if n1 * n2 >= OFFLOAD_KS_CELLS:  # ~0.1 s at 10k x 5k: worth a worker process
            exact = offload.call(_exact_ks, n1, n2, d)
        else:
            exact = _exact_ks(n1, n2, d)
        success, d_exact, prob = exact
        if success:
            return float(d_exact), float(np.clip(prob, 0, 1)), "exact"
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(d), float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1)), "asymp"


def _exact_ks(n1: int, n2: int, d: float) -> tuple[bool, float, float]:
    return _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")


def psi(ref_counts, cur_counts, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index sum((q - p) * ln(q / p)) over shares; empty bins get epsilon."""
    p = np.maximum(_shares(ref_counts), epsilon)
    q = np.maximum(_shares(cur_counts), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref_counts, cur_counts) -> float:
    """Jensen-Shannon distance, base 2 (0 = same distribution, 1 = disjoint)."""
    p, q = _shares(ref_counts), _shares(cur_counts)
    return float(jensenshannon(p, q, base=2))


def _shares(counts) -> np.ndarray:
    arr = np.asarray(counts, dtype=float)
    total = arr.sum()
    if total <= 0:
        raise ValueError("shares of an empty sample")
    return arr / total


def bh_adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN entries stay NaN and are not counted)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    adjusted = stats.false_discovery_control(p[ok], method="bh")
    out[ok] = adjusted
    return out


# -- numeric: exact ECDF results from value counts --------------------------------


@dataclass
class NumericComparison:
    """KS, Wasserstein and binned divergences of a numeric column, reference vs current."""

    n_ref: int
    n_cur: int
    ks_d: float
    ks_p: float
    ks_method: str
    wasserstein: float
    ref_std: float
    cur_std: float
    scale: float  # what Wasserstein is divided by: the reference std (pooled if it is 0)
    psi: float
    js: float
    bin_edges: list[float]  # right edges of the reference-quantile bins (last bin is open)
    ref_bin_counts: list[int]
    cur_bin_counts: list[int]
    ref_mean: float = float("nan")
    cur_mean: float = float("nan")

    @property
    def wasserstein_norm(self) -> float:
        return self.wasserstein / self.scale if self.scale > 0 else float("nan")


@dataclass
class EcdfSummary:
    """What the exact ECDF walk yields; see lifecycle.drift.ecdf."""

    n_ref: int
    n_cur: int
    ks_d: float
    wasserstein: float
    edges: list[float]  # reference quantile edges (deduplicated, ascending)
    ref_le: list[int]  # reference count <= each edge
    cur_le: list[int]  # current count <= each edge


def summary_from_value_counts(values, ref_counts, cur_counts, quantile_bins: int) -> EcdfSummary:
    """Exact KS statistic, Wasserstein distance and reference-quantile edges from value counts.

    `values` ascending and distinct; counts per value for each sample. The ECDF difference
    is computed with the same floating-point operations as ks_2samp (count / n per sample).
    """
    v = np.asarray(values, dtype=float)
    r = np.asarray(ref_counts, dtype=np.int64)
    c = np.asarray(cur_counts, dtype=np.int64)
    n1, n2 = int(r.sum()), int(c.sum())
    cr, cc = np.cumsum(r), np.cumsum(c)
    diff = cr / n1 - cc / n2
    ks_d = float(np.max(np.abs(diff))) if len(v) else 0.0
    wasserstein = float(np.sum(np.abs(diff[:-1]) * np.diff(v))) if len(v) > 1 else 0.0
    edges, ref_le, cur_le = quantile_edges(v, cr, cc, n1, quantile_bins)
    return EcdfSummary(n1, n2, ks_d, wasserstein, edges, ref_le, cur_le)


def quantile_edges(v, cum_ref, cum_cur, n_ref: int, bins: int):
    """Reference quantile edges j/bins (inverse ECDF: the smallest value whose reference
    ECDF reaches j/bins, as numpy's method="inverted_cdf"), deduplicated, with the count of
    each sample at or below each edge."""
    edges, ref_le, cur_le = [], [], []
    for j in range(1, bins):
        # integer comparison: cum_ref / n_ref >= j / bins, without rounding
        i = int(np.searchsorted(np.asarray(cum_ref) * bins, j * n_ref, side="left"))
        if i >= len(v):
            continue
        if edges and edges[-1] == v[i]:
            continue
        edges.append(float(v[i]))
        ref_le.append(int(cum_ref[i]))
        cur_le.append(int(cum_cur[i]))
    return edges, ref_le, cur_le


def bin_counts_from_edges(ref_le, cur_le, n_ref: int, n_cur: int):
    """Counts per bin (-inf, e1], (e1, e2], ..., (ek, inf) from counts at or below each edge."""
    ref = np.diff(np.concatenate([[0], ref_le, [n_ref]])).astype(int)
    cur = np.diff(np.concatenate([[0], cur_le, [n_cur]])).astype(int)
    return ref.tolist(), cur.tolist()


def compare_numeric(summary: EcdfSummary, moments: dict) -> NumericComparison:
    """Assemble the numeric comparison from the ECDF summary and per-sample moments.

    `moments`: ref_std, cur_std, pooled_std, ref_mean, cur_mean (sample std, ddof=1).
    """
    ks_d, ks_p, ks_method = ks_test(summary.ks_d, summary.n_ref, summary.n_cur)
    ref_bins, cur_bins = bin_counts_from_edges(
        summary.ref_le, summary.cur_le, summary.n_ref, summary.n_cur
    )
    ref_std = _finite(moments.get("ref_std"))
    scale = ref_std if ref_std > 0 else _finite(moments.get("pooled_std"))
    return NumericComparison(
        n_ref=summary.n_ref,
        n_cur=summary.n_cur,
        ks_d=ks_d,
        ks_p=ks_p,
        ks_method=ks_method,
        wasserstein=summary.wasserstein,
        ref_std=ref_std,
        cur_std=_finite(moments.get("cur_std")),
        scale=scale,
        psi=psi(ref_bins, cur_bins),
        js=js_distance(ref_bins, cur_bins),
        bin_edges=summary.edges,
        ref_bin_counts=ref_bins,
        cur_bin_counts=cur_bins,
        ref_mean=_finite(moments.get("ref_mean"), float("nan")),
        cur_mean=_finite(moments.get("cur_mean"), float("nan")),
    )


def _finite(value, default: float = 0.0) -> float:
    if value is None:
        return default
    value = float(value)
    return value if math.isfinite(value) else default


# -- categorical ------------------------------------------------------------------


@dataclass
class CategoricalComparison:
    n_ref: int
    n_cur: int
    categories: list[str]
    ref_counts: list[int]
    cur_counts: list[int]
    chi2: float
    chi2_p: float
    dof: int
    pooled: list[str] = field(default_factory=list)  # categories merged into OTHER for chi2
    psi: float = 0.0
    js: float = 0.0
    unseen: dict[str, float] = field(default_factory=dict)  # category -> current share

    @property
    def ref_shares(self) -> list[float]:
        return (np.asarray(self.ref_counts) / self.n_ref).tolist()

    @property
    def cur_shares(self) -> list[float]:
        return (np.asarray(self.cur_counts) / self.n_cur).tolist()


def compare_categorical(ref: dict[str, int], cur: dict[str, int]) -> CategoricalComparison:
    """Chi-square (rare cells pooled), JS distance, PSI and unseen categories of two count maps.

    Both maps must be non-empty and together hold at least two categories.
    """
    categories = sorted(set(ref) | set(cur))
    r = np.array([ref.get(k, 0) for k in categories], dtype=np.int64)
    c = np.array([cur.get(k, 0) for k in categories], dtype=np.int64)
    n1, n2 = int(r.sum()), int(c.sum())
    if n1 == 0 or n2 == 0 or len(categories) < 2:
        raise ValueError("chi-square needs two non-empty samples and two categories")
    table, pooled = pooled_table(categories, r, c)
    if table.shape[1] >= 2:
        res = stats.chi2_contingency(table)
        chi2, p, dof = float(res.statistic), float(res.pvalue), int(res.dof)
    else:  # everything pooled into one cell: no test possible
        chi2, p, dof = float("nan"), float("nan"), 0
    unseen = {k: int(cur[k]) / n2 for k in categories if ref.get(k, 0) == 0 and cur.get(k, 0)}
    return CategoricalComparison(
        n_ref=n1,
        n_cur=n2,
        categories=categories,
        ref_counts=r.tolist(),
        cur_counts=c.tolist(),
        chi2=chi2,
        chi2_p=p,
        dof=dof,
        pooled=pooled,
        psi=psi(r, c),
        js=js_distance(r, c),
        unseen=unseen,
    )


def pooled_table(categories, r, c):
    """2 x k table for chi-square with categories whose expected count is below 5 pooled.

    Pooling keeps the chi-square approximation valid for rare categories; when nothing is
    rare the table is the plain count table.
    """
    n1, n2 = r.sum(), c.sum()
    total = n1 + n2
    expected_min = np.minimum(n1, n2) * (r + c) / total
    rare = expected_min < CHI2_MIN_EXPECTED
    if not rare.any():
        return np.vstack([r, c]), []
    keep = ~rare
    pooled = [categories[i] for i in np.flatnonzero(rare)]
    cols_r = [*r[keep].tolist(), int(r[rare].sum())]
    cols_c = [*c[keep].tolist(), int(c[rare].sum())]
    table = np.array([cols_r, cols_c], dtype=np.int64)
    # the pooled cell itself may still be rare; then fold it into the smallest kept cell
    if table.shape[1] >= 2 and min(n1, n2) * table[:, -1].sum() / total < CHI2_MIN_EXPECTED:
        table = table[:, :-1] + 0
        smallest = int(np.argmin(table.sum(axis=0)))
        table[0, smallest] += int(r[rare].sum())
        table[1, smallest] += int(c[rare].sum())
    return table, pooled
