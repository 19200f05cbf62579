"""Exact KS statistic, Wasserstein distance and quantile edges from SQL bin counts.

Sorting millions of values per column to walk the merged ECDF is too slow for the drift
budget, and most of that walk is not needed: the statistics only depend on the ECDF
difference D(x) = F_ref(x) - F_cur(x) at a few places. So the walk runs over bins:

1. SQL counts both samples in equal-width bins of [min, max] (count, min, max and the sum of
   offsets from the bin edge per sample). D is exact at every bin's last value.
2. A bin is *resolved* when it holds one distinct value. An unresolved bin is refined
   (split into finer bins by SQL, or, once small, fetched as value counts) only when
   - KS: D inside it could exceed the largest D seen so far (its bound is exact in
     floating point, since count/n is monotone in the count);
   - Wasserstein: D could change sign inside it (integer test); where it cannot,
     the integral of |D| over the bin is |integral of D|, which the per-bin sums give exactly;
   - quantiles: a reference quantile edge falls inside it.
3. This repeats until no bin needs refining. The results equal scipy's ks_2samp and
   wasserstein_distance on the same samples (to rounding of the sums).

Bin keys nest: at scale S a value's key is floor(u * S) with u = (x - lo) / (hi - lo), and
scales are powers of two, so a key at scale S * k divided by k is the key at scale S.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lifecycle.drift.stats import EcdfSummary, quantile_edges

# Fetch a bin's value counts once it holds at most this many values.
LEAF_VALUES = 4096
# Target values per bin when splitting; at most this many sub-bins per split.
TARGET_PER_BIN = 32
MAX_SPLIT = 1 << 16
# Deepest scale: beyond it floor(u * S) stops separating doubles; then fetch whatever is left.
MAX_SCALE = float(1 << 52)


@dataclass
class Bins:
    """Per-bin summaries of both samples at one scale (arrays aligned by bin)."""

    scale: float
    key: np.ndarray  # int64
    r: np.ndarray  # reference count
    c: np.ndarray  # current count
    vmin: np.ndarray  # over both samples
    vmax: np.ndarray
    s_ref: np.ndarray  # sum over reference values of (x - bin's nominal left edge)
    s_cur: np.ndarray
    edge: np.ndarray  # nominal left edge lo + key * (hi - lo) / scale


class TwoSampleSource(Protocol):
    """SQL access to one column of two samples (non-null values only)."""

    def bins(self, scale: float, parent_scale: float, parent_keys) -> Bins:
        """Bins at `scale` of the values whose key at `parent_scale` is in `parent_keys`
        (scale 1 has the single key 0: all values)."""
        ...

    def value_counts(
        self, parent_scale: float, parent_keys
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass
class _Segments:
    """The value line cut into ordered, disjoint pieces: resolved values and open bins."""

    vmin: np.ndarray
    vmax: np.ndarray
    r: np.ndarray
    c: np.ndarray
    s_ref: np.ndarray  # sum of (x - vmin) over the reference values in the piece
    s_cur: np.ndarray
    scale: np.ndarray
    key: np.ndarray

    @property
    def resolved(self) -> np.ndarray:
        return self.vmin == self.vmax

    def take(self, mask) -> _Segments:
        return _Segments(*(getattr(self, f)[mask] for f in _FIELDS))


_FIELDS = ("vmin", "vmax", "r", "c", "s_ref", "s_cur", "scale", "key")


def _concat(parts: list[_Segments]) -> _Segments:
    merged = _Segments(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
    order = np.argsort(merged.vmin, kind="stable")
    return merged.take(order)


def _from_bins(b: Bins) -> _Segments:
    keep = (b.r + b.c) > 0
    # sums relative to each piece's own minimum: sum(x - vmin) = sum(x - edge) - n * (vmin - edge)
    shift = b.vmin - b.edge
    return _Segments(
        vmin=b.vmin[keep],
        vmax=b.vmax[keep],
        r=b.r[keep],
        c=b.c[keep],
        s_ref=(b.s_ref - b.r * shift)[keep],
        s_cur=(b.s_cur - b.c * shift)[keep],
        scale=np.full(int(keep.sum()), b.scale),
        key=b.key[keep],
    )


def _from_values(values, r, c) -> _Segments:
    n = len(values)
    v = np.asarray(values, dtype=float)
    return _Segments(
        vmin=v,
        vmax=v.copy(),
        r=np.asarray(r, dtype=np.int64),
        c=np.asarray(c, dtype=np.int64),
        s_ref=np.zeros(n),
        s_cur=np.zeros(n),
        scale=np.zeros(n),
        key=np.zeros(n, dtype=np.int64),
    )


def exact_summary(
    source: TwoSampleSource, n_ref: int, n_cur: int, quantile_bins: int
) -> EcdfSummary:
    """Exact ECDF summary of two non-empty samples, refining bins only where needed."""
    n = n_ref + n_cur
    whole = _Segments(
        vmin=np.array([-np.inf]),
        vmax=np.array([np.inf]),
        r=np.array([n_ref], dtype=np.int64),
        c=np.array([n_cur], dtype=np.int64),
        s_ref=np.zeros(1),
        s_cur=np.zeros(1),
        scale=np.array([1.0]),
        key=np.array([0], dtype=np.int64),
    )
    seg = _refine(source, whole, np.array([True]), n)
    while True:
        need = _needs_refining(seg, n_ref, n_cur, quantile_bins)
        if not need.any():
            break
        seg = _refine(source, seg, need, n)
    return _summarise(seg, n_ref, n_cur, quantile_bins)


def _cumulative(seg: _Segments):
    r_end, c_end = np.cumsum(seg.r), np.cumsum(seg.c)
    return r_end - seg.r, c_end - seg.c, r_end, c_end


def _needs_refining(seg: _Segments, n_ref: int, n_cur: int, qbins: int) -> np.ndarray:
    open_ = ~seg.resolved
    if not open_.any():
        return open_
    r_prev, c_prev, r_end, c_end = _cumulative(seg)
    d_end = r_end / n_ref - c_end / n_cur
    largest = float(np.max(np.abs(d_end)))
    # KS: inside a bin D lies between these two values (exactly, in floating point)
    upper = np.maximum(
        np.abs(r_end / n_ref - c_prev / n_cur), np.abs(r_prev / n_ref - c_end / n_cur)
    )
    need = open_ & (upper > largest)
    # Wasserstein: does D change sign inside? (integers, so no rounding)
    low = r_prev * n_cur - c_end * n_ref
    high = r_end * n_cur - c_prev * n_ref
    need |= open_ & (low < 0) & (high > 0)
    # quantile edges: the first piece whose cumulative reference count reaches j/qbins
    for j in range(1, qbins):
        i = int(np.searchsorted(r_end * qbins, j * n_ref, side="left"))
        if i < len(need) and open_[i]:
            need[i] = True
    return need


def _refine(source: TwoSampleSource, seg: _Segments, need: np.ndarray, n: int) -> _Segments:
    """Replace the pieces in `need` by finer bins (or by their value counts when small)."""
    parts = [seg.take(~need)]
    todo = seg.take(need)
    sizes = todo.r + todo.c
    for scale in np.unique(todo.scale):
        at_scale = todo.scale == scale
        small = at_scale & ((sizes <= LEAF_VALUES) | (scale >= MAX_SCALE))
        big = at_scale & ~small
        if small.any():
            values, r, c = source.value_counts(float(scale), todo.key[small])
            parts.append(_from_values(values, r, c))
        if big.any():
            split = _split_factor(int(sizes[big].max()))
            child = min(float(scale) * split, MAX_SCALE)
            parts.append(_from_bins(source.bins(child, float(scale), todo.key[big])))
    return _concat(parts)


def _split_factor(largest: int) -> int:
    """Power of two that cuts the largest bin to about TARGET_PER_BIN values per sub-bin."""
    want = max(2, largest // TARGET_PER_BIN)
    return int(min(MAX_SPLIT, 1 << int(np.ceil(np.log2(want)))))


def _summarise(seg: _Segments, n_ref: int, n_cur: int, qbins: int) -> EcdfSummary:
    _, _, r_end, c_end = _cumulative(seg)
    d_end = r_end / n_ref - c_end / n_cur
    ks_d = float(np.max(np.abs(d_end)))
    # Wasserstein: integral of |D| from each piece's first value to the next piece's first
    # value. A resolved piece has D constant there; an open piece (no sign change) gives
    # |integral of D| = |(R_end (b - a) - S_ref) / n_ref - (C_end (b - a) - S_cur) / n_cur|.
    b = np.append(seg.vmin[1:], seg.vmax[-1])
    width = b - seg.vmin
    resolved = seg.resolved
    pieces = np.where(
        resolved,
        np.abs(d_end) * width,
        np.abs((r_end * width - seg.s_ref) / n_ref - (c_end * width - seg.s_cur) / n_cur),
    )
    wasserstein = float(np.sum(pieces))
    edges, ref_le, cur_le = quantile_edges(seg.vmin, r_end, c_end, n_ref, qbins)
    return EcdfSummary(n_ref, n_cur, ks_d, wasserstein, edges, ref_le, cur_le)
