"""Drift statistics from SQL summaries, checked against scipy on the same samples."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lifecycle.drift import ecdf
from lifecycle.drift.config import DriftConfig, FeatureInfo
from lifecycle.drift.engine import categorical_drift, univariate_drift
from lifecycle.drift.results_model import INSUFFICIENT, OK
from lifecycle.drift.stats import bh_adjust, compare_categorical, ks_test, psi
from lifecycle.drift.windows import KEY

TOL = 1e-9


def _tables(con, ref: dict, cur: dict) -> None:
    """Reference and current sample tables `r` and `c` (NaN stored as NULL, as ingestion does)."""
    for name, data in (("r", ref), ("c", cur)):
        n = len(next(iter(data.values())))
        frame = pd.DataFrame({KEY: [f"k{i}" for i in range(n)], **data})
        frame = frame.astype(object).where(frame.notna(), None)
        con.register("_src", frame)
        casts = ", ".join(
            f'CAST("{k}" AS {"DOUBLE" if _numeric(v) else "VARCHAR"}) AS "{k}"'
            for k, v in data.items()
        )
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {KEY}, {casts} FROM _src")
        con.unregister("_src")


def _numeric(values) -> bool:
    return np.asarray(values).dtype.kind in "fi"


def _drift(ref, cur, method="wasserstein", **config):
    con = duckdb.connect()
    _tables(con, {"x": ref}, {"x": cur})
    feature = FeatureInfo("x", "numeric" if _numeric(ref) else "categorical", method)
    return univariate_drift(con, "r", "c", [feature], DriftConfig(**config))[0]


def _expected_numeric(ref, cur, bins=10):
    a, b = np.asarray(ref, float), np.asarray(cur, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    ks = stats.ks_2samp(a, b)
    edges = np.unique(np.quantile(a, np.arange(1, bins) / bins, method="inverted_cdf"))
    ref_le = np.searchsorted(np.sort(a), edges, side="right")
    cur_le = np.searchsorted(np.sort(b), edges, side="right")
    ref_bins = np.diff(np.concatenate([[0], ref_le, [len(a)]]))
    cur_bins = np.diff(np.concatenate([[0], cur_le, [len(b)]]))
    return {
        "ks": ks.statistic,
        "p": ks.pvalue,
        "w": stats.wasserstein_distance(a, b),
        "std": np.std(a, ddof=1),
        "edges": edges,
        "psi": psi(ref_bins, cur_bins),
        "js": jensenshannon(ref_bins / len(a), cur_bins / len(b), base=2),
        "ref_bins": ref_bins,
        "cur_bins": cur_bins,
    }


def _samples():
    rng = np.random.default_rng(7)
    return {
        "normal shift": (rng.normal(0, 1, 3000), rng.normal(0.1, 1, 2500)),
        "same distribution": (rng.normal(5, 2, 4000), rng.normal(5, 2, 4000)),
        "ties (integers)": (
            rng.integers(0, 20, 3000).astype(float),
            rng.integers(0, 22, 2000).astype(float),
        ),
        "heavy tail": (rng.lognormal(0, 2, 3000), rng.lognormal(0.1, 2, 2000)),
        "far outlier": (np.r_[rng.normal(0, 1, 2000), 1e9], rng.normal(0, 1, 1500)),
        "tiny samples": (np.array([1.0, 2.0, 2.0, 5.0]), np.array([0.5, 2.0, 3.0])),
        "large (asymptotic p)": (rng.normal(0, 1, 30_000), rng.normal(0.02, 1, 25_000)),
        "large values, small spread": (
            1e6 + rng.normal(0, 1e-3, 3000),
            1e6 + rng.normal(0, 1e-3, 3000),
        ),
        "with NaN": (
            np.where(rng.random(3000) < 0.1, np.nan, rng.normal(0, 1, 3000)),
            np.where(rng.random(2000) < 0.3, np.nan, rng.normal(0, 1, 2000)),
        ),
    }


@pytest.fixture(params=["default bins", "forced refinement"])
def refinement(request, monkeypatch):
    """Run each case once as shipped and once with tiny bins, so every refinement path runs."""
    if request.param == "forced refinement":
        monkeypatch.setattr(ecdf, "LEAF_VALUES", 4)
        monkeypatch.setattr(ecdf, "TARGET_PER_BIN", 2)
    return request.param


@pytest.mark.parametrize("case", list(_samples()))
def test_numeric_statistics_equal_scipy(case, refinement):
    ref, cur = _samples()[case]
    res = _drift(ref, cur, min_rows=2)
    want = _expected_numeric(ref, cur)
    d = res.details
    assert res.status == OK
    assert res.statistic == pytest.approx(want["ks"], abs=TOL)
    assert res.p_value == pytest.approx(want["p"], abs=TOL, rel=TOL)
    assert d["wasserstein"] == pytest.approx(want["w"], rel=TOL, abs=TOL)
    assert d["wasserstein_norm"] == pytest.approx(want["w"] / want["std"], rel=TOL, abs=TOL)
    assert d["bin_edges"] == pytest.approx(list(want["edges"]), abs=0)
    assert d["psi"] == pytest.approx(want["psi"], abs=TOL)
    assert d["jensenshannon"] == pytest.approx(want["js"], abs=TOL)
    assert res.n_reference == np.sum(~np.isnan(ref))
    assert res.n_current == np.sum(~np.isnan(cur))


def test_ks_test_follows_scipy_method_choice():
    rng = np.random.default_rng(3)
    for n1, n2 in ((40, 40), (300, 170), (10_000, 9_000), (12_000, 500)):
        a, b = rng.normal(0, 1, n1), rng.normal(0.2, 1, n2)
        want = stats.ks_2samp(a, b)
        raw_gap = np.max(
            np.abs(
                np.searchsorted(np.sort(a), np.r_[a, b], "right") / n1
                - np.searchsorted(np.sort(b), np.r_[a, b], "right") / n2
            )
        )
        d, p, method = ks_test(raw_gap, n1, n2)
        assert method == ("exact" if max(n1, n2) <= 10_000 else "asymp")
        assert d == pytest.approx(want.statistic, abs=TOL)
        assert p == pytest.approx(want.pvalue, abs=TOL)


def test_categorical_statistics_equal_scipy():
    rng = np.random.default_rng(11)
    ref = rng.choice(list("abcd"), 5000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(list("abcde"), 4000, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    res = _drift(ref, cur, method="jensenshannon")
    cats = sorted(set(ref) | set(cur))
    table = np.array([[np.sum(ref == k) for k in cats], [np.sum(cur == k) for k in cats]])
    chi = stats.chi2_contingency(table)
    assert res.statistic == pytest.approx(chi.statistic, abs=TOL)
    assert res.p_value == pytest.approx(chi.pvalue, abs=TOL)
    assert res.effect_size == pytest.approx(
        jensenshannon(table[0] / 5000, table[1] / 4000, base=2), abs=TOL
    )
    assert res.details["psi"] == pytest.approx(psi(table[0], table[1]), abs=TOL)
    assert set(res.details["unseen_categories"]) == {"e"}
    assert res.details["unseen_categories"]["e"] == pytest.approx(np.mean(cur == "e"))


def test_two_categories_use_scipy_yates_correction():
    ref = {"yes": 700, "no": 300}
    cur = {"yes": 640, "no": 360}
    comp = compare_categorical(ref, cur)
    chi = stats.chi2_contingency(np.array([[300, 700], [360, 640]]))
    assert comp.chi2 == pytest.approx(chi.statistic, abs=TOL)
    assert comp.chi2_p == pytest.approx(chi.pvalue, abs=TOL)


def test_rare_categories_are_pooled_for_chi_square():
    ref = {"a": 500, "b": 480, "c": 2, "d": 1}
    cur = {"a": 450, "b": 520, "c": 3, "e": 2}
    comp = compare_categorical(ref, cur)
    assert sorted(comp.pooled) == ["c", "d", "e"]
    table = np.array([[500, 480], [450, 520]])
    table[:, np.argmin(table.sum(axis=0))] += [3, 5]  # the pooled cell is itself rare
    chi = stats.chi2_contingency(table)
    assert comp.chi2 == pytest.approx(chi.statistic, abs=TOL)
    assert comp.unseen == {"e": 2 / 975}


def test_insufficient_data_is_a_result_not_an_exception():
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, 500)
    cases = {
        "one row": (normal, np.array([0.3])),
        "all missing": (normal, np.full(200, np.nan)),
        "constant": (np.full(300, 2.0), np.full(250, 2.0)),
        "single category": (np.array(["a"] * 300), np.array(["a"] * 200)),
        "empty reference": (np.full(100, np.nan), normal),
    }
    for name, (ref, cur) in cases.items():
        res = _drift(ref, cur)
        assert res.status == INSUFFICIENT, name
        assert res.severity is None and res.response is None, name
        assert res.p_value is None and res.effect_size is None, name
        assert res.details["reason"], name


def test_constant_reference_with_moving_current_is_drift():
    res = _drift(np.full(300, 1.0), np.r_[np.full(150, 1.0), np.full(150, 3.0)])
    assert res.status == OK
    assert res.details["scale_from"] == "pooled std"
    assert res.severity == "significant"


def test_empty_tables_give_insufficient_data():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE r ({KEY} VARCHAR, x DOUBLE, k VARCHAR)")
    con.execute(f"CREATE TABLE c ({KEY} VARCHAR, x DOUBLE, k VARCHAR)")
    features = [FeatureInfo("x", "numeric", "wasserstein"), FeatureInfo("k", "categorical", "psi")]
    results = univariate_drift(con, "r", "c", features, DriftConfig())
    assert [r.status for r in results] == [INSUFFICIENT, INSUFFICIENT]


def test_single_category_each_side_but_different_is_drift():
    res = categorical_drift(
        {"a": 100}, {"b": 100}, FeatureInfo("k", "categorical", "jensenshannon"), DriftConfig()
    )
    assert res.status == OK
    assert res.effect_size == pytest.approx(1.0)
    assert res.details["unseen_categories"] == {"b": 1.0}


def test_benjamini_hochberg_matches_definition():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.001])
    adj = bh_adjust(p)
    finite = p[~np.isnan(p)]
    order = np.argsort(finite)
    m = len(finite)
    raw = finite[order] * m / np.arange(1, m + 1)
    expected = np.minimum.accumulate(raw[::-1])[::-1]
    got = adj[~np.isnan(p)][order]
    np.testing.assert_allclose(got, np.minimum(expected, 1), atol=1e-12)
    assert np.isnan(adj[4])


def test_verdict_needs_significance_and_effect():
    rng = np.random.default_rng(5)
    big = 200_000
    # a tiny but real shift at large n: p ~ 0, effect below the threshold -> no verdict
    tiny = _drift(rng.normal(0, 1, big), rng.normal(0.02, 1, big))
    assert tiny.p_adjusted < 1e-6 and tiny.effect_size < 0.05
    assert tiny.severity == "none" and tiny.response == "no action"
    # a large effect on few rows: not significant -> no verdict
    few = _drift(rng.normal(0, 1, 40), rng.normal(0.15, 1, 40))
    assert few.p_adjusted > 0.05 and few.severity == "none"
    # a 0.1-sd shift at 100k rows: significant and above the minor threshold
    shift = _drift(rng.normal(0, 1, 100_000), rng.normal(0.1, 1, 100_000))
    assert shift.severity == "minor" and shift.response == "investigate"
