"""Drift suites over two sample tables, the verdict rule, and storing results.

A suite compares a *reference* sample table with a *current* one (see windows.py) and
returns CheckResults. The verdict of a univariate feature test needs both:
  - significance: the test's p-value (KS for numeric, chi-square for categorical) after
    Benjamini-Hochberg correction over all features tested in the window is below `fdr`;
  - an effect size at or above the method's minor threshold (severity.EFFECT_THRESHOLDS).
The severity then grades the effect size. Too few values, constant columns and all-missing
columns give an `insufficient_data` result with the reason, never a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lifecycle.drift import ecdf, noise, stats
from lifecycle.drift.config import DriftConfig, FeatureInfo
from lifecycle.drift.results_model import (
    CHECKS,
    OK,
    CheckResult,
    clean,
    insufficient,
    number,
)
from lifecycle.drift.severity import grade, response
from lifecycle.drift.windows import (
    SqlTwoSample,
    category_counts_of,
    merge_value_counts,
    numeric_moments,
    pooled_std,
    value_counts_of,
)
from lifecycle.store import Store, quote_ident

# Bump when a change to the computations alters stored results: windows are recomputed.
ENGINE_VERSION = 3  # 2: severity graded beyond the chance level (noise.py); 3: exact logistic fit


# -- univariate ---------------------------------------------------------------------


def univariate_drift(
    cur,
    ref_table: str,
    cur_table: str,
    features: Sequence[FeatureInfo],
    config: DriftConfig,
    *,
    check: str = "data_drift",
    correct: bool = True,
    context: dict | None = None,
    ref_cache: dict | None = None,
) -> list[CheckResult]:
    """Test every feature of two sample tables; verdicts use BH over the features if `correct`.

    `context` (e.g. row counts before sampling) is copied into each result's details;
    `ref_cache` keeps the reference's summaries when the reference is the same every window.
    """
    numeric = [f.name for f in features if f.type == "numeric"]
    categorical = [f.name for f in features if f.type != "numeric"]
    ref = reference_summary(cur, ref_table, numeric, categorical, ref_cache)
    current = sample_summary(cur, cur_table, numeric, categorical, ref)
    results = []
    for f in features:
        if f.type == "numeric":
            res = numeric_drift(cur, ref_table, cur_table, f, ref, current, config)
            reference = ref.atoms[f.name]
        else:
            ref_counts = ref.categories[f.name]
            res = categorical_drift(ref_counts, current.categories[f.name], f, config)
            reference = noise.categorical_atoms(ref_counts) if ref_counts else None
        if res.status == OK and reference is not None:
            attach_chance_level(res, reference, config)
        res.check = check
        if context:
            res.details.update(context)
        results.append(res)
    apply_verdicts(results, config, correct=correct)
    return results


@dataclass
class SampleSummary:
    """What the univariate tests read from one sample table, fetched a few queries at once."""

    moments: dict[str, dict]  # numeric column -> numeric_moments
    categories: dict[str, dict[str, int]]  # categorical column -> value counts
    values: dict[str, tuple]  # numeric column -> value counts, where few enough (see below)
    atoms: dict[str, noise.Atoms | None] = field(default_factory=dict)  # reference only


def reference_summary(cur, table, numeric, categorical, cache: dict | None) -> SampleSummary:
    """The reference's summary, kept in `cache` (if given) for the next windows."""
    if cache is not None and "summary" in cache:
        return cache["summary"]
    moments = numeric_moments(cur, table, numeric)
    # whole value counts pay off only where the ECDF walk would fetch them at once
    few = [c for c in numeric if moments[c]["n"] <= ecdf.LEAF_VALUES]
    summary = SampleSummary(
        moments,
        category_counts_of(cur, table, categorical),
        value_counts_of(cur, table, few),
        reference_atoms(cur, table, numeric),
    )
    if cache is not None:
        cache["summary"] = summary
    return summary


def sample_summary(cur, table, numeric, categorical, ref: SampleSummary) -> SampleSummary:
    """The current sample's summary; value counts of the columns whose two samples
    together hold at most ecdf.LEAF_VALUES values (the walk reads those whole)."""
    moments = numeric_moments(cur, table, numeric)
    few = [c for c in ref.values if moments[c]["n"] + ref.moments[c]["n"] <= ecdf.LEAF_VALUES]
    return SampleSummary(
        moments, category_counts_of(cur, table, categorical), value_counts_of(cur, table, few)
    )


def numeric_drift(
    cur,
    ref_table: str,
    cur_table: str,
    f: FeatureInfo,
    ref: SampleSummary,
    current: SampleSummary,
    config,
) -> CheckResult:
    """KS test, Wasserstein, PSI and JS of one numeric column (verdict applied later)."""
    m_ref, m_cur = ref.moments[f.name], current.moments[f.name]
    n_ref, n_cur = m_ref["n"], m_cur["n"]
    reason = _too_little(n_ref, n_cur, config.min_rows)
    if reason is None and m_ref["min"] == m_ref["max"] == m_cur["min"] == m_cur["max"]:
        reason = f"constant column: every value is {m_ref['min']!r} in both samples"
    if reason:
        return insufficient(
            "data_drift", f.name, reason, n_reference=n_ref, n_current=n_cur, method=f.method
        )
    lo, hi = min(m_ref["min"], m_cur["min"]), max(m_ref["max"], m_cur["max"])
    whole = None
    if f.name in current.values:
        whole = merge_value_counts(ref.values[f.name], current.values[f.name])
    source = SqlTwoSample(cur, ref_table, cur_table, f.name, lo, hi, whole)
    summary = ecdf.exact_summary(source, n_ref, n_cur, config.quantile_bins)
    comp = stats.compare_numeric(
        summary,
        {
            "ref_std": m_ref["std"],
            "cur_std": m_cur["std"],
            "pooled_std": pooled_std(m_ref, m_cur),
            "ref_mean": m_ref["mean"],
            "cur_mean": m_cur["mean"],
        },
    )
    effect = {
        "wasserstein": comp.wasserstein_norm,
        "ks": comp.ks_d,
        "psi": comp.psi,
        "jensenshannon": comp.js,
    }[f.method]
    return CheckResult(
        check="data_drift",
        subject=f.name,
        method=f.method,
        statistic=comp.ks_d,
        p_value=comp.ks_p,
        effect_size=number(effect),
        threshold=config.thresholds[f.method][0],
        n_reference=n_ref,
        n_current=n_cur,
        details=clean(
            {
                "type": "numeric",
                "test": f"ks_{comp.ks_method}",
                "ks_statistic": comp.ks_d,
                "ks_p_value": comp.ks_p,
                "wasserstein": comp.wasserstein,
                "wasserstein_norm": comp.wasserstein_norm,
                "scale": comp.scale,
                "scale_from": "reference std" if comp.ref_std > 0 else "pooled std",
                "psi": comp.psi,
                "jensenshannon": comp.js,
                "reference_mean": comp.ref_mean,
                "current_mean": comp.cur_mean,
                "reference_std": comp.ref_std,
                "current_std": comp.cur_std,
                "bin_edges": comp.bin_edges,
                "reference_shares": (np.asarray(comp.ref_bin_counts) / n_ref).tolist(),
                "current_shares": (np.asarray(comp.cur_bin_counts) / n_cur).tolist(),
                "thresholds": config.thresholds[f.method],
            }
        ),
    )


def categorical_drift(
    ref: dict[str, int], cur: dict[str, int], f: FeatureInfo, config: DriftConfig
) -> CheckResult:
    """Chi-square test, JS distance, PSI and unseen categories of one categorical column."""
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    reason = _too_little(n_ref, n_cur, config.min_rows)
    if reason is None and len(set(ref) | set(cur)) < 2:
        only = next(iter(ref))
        reason = f"constant column: every value is {only!r} in both samples"
    if reason:
        return insufficient(
            "data_drift", f.name, reason, n_reference=n_ref, n_current=n_cur, method=f.method
        )
    comp = stats.compare_categorical(ref, cur)
    details = {
        "type": "categorical",
        "test": "chi2",
        "chi2": comp.chi2,
        "chi2_p_value": comp.chi2_p,
        "dof": comp.dof,
        "pooled_for_chi2": comp.pooled,
        "psi": comp.psi,
        "jensenshannon": comp.js,
        "categories": comp.categories,
        "reference_shares": comp.ref_shares,
        "current_shares": comp.cur_shares,
        "unseen_categories": comp.unseen,
        "thresholds": config.thresholds[f.method],
    }
    if np.isnan(comp.chi2_p):
        return insufficient(
            "data_drift",
            f.name,
            "too few rows per category for a chi-square test (all cells pooled)",
            n_reference=n_ref,
            n_current=n_cur,
            method=f.method,
            details=clean(details),
        )
    effect = comp.js if f.method == "jensenshannon" else comp.psi
    return CheckResult(
        check="data_drift",
        subject=f.name,
        method=f.method,
        statistic=comp.chi2,
        p_value=comp.chi2_p,
        effect_size=number(effect),
        threshold=config.thresholds[f.method][0],
        n_reference=n_ref,
        n_current=n_cur,
        details=clean(details),
    )


def _too_little(n_ref: int, n_cur: int, min_rows: int) -> str | None:
    if n_ref == 0 and n_cur == 0:
        return "no values on either side (empty or all missing)"
    if n_cur < min_rows:
        what = "no" if n_cur == 0 else f"only {n_cur}"
        return f"{what} non-missing value(s) in the current window; at least {min_rows} needed"
    if n_ref < min_rows:
        what = "no" if n_ref == 0 else f"only {n_ref}"
        return f"{what} non-missing value(s) in the reference; at least {min_rows} needed"
    return None


def reference_atoms(cur, ref_table: str, columns: list[str]) -> dict[str, noise.Atoms | None]:
    """Each numeric column's reference distribution as at most `noise.MAX_ATOMS` equally
    weighted order statistics (SQL): the input of the chance-level simulation."""
    out = {}
    for c in columns:
        q = quote_ident(c)
        values = cur.execute(
            f"SELECT list(x ORDER BY x) FROM (SELECT {q} AS x, "
            f"row_number() OVER (ORDER BY {q}) AS rn, count(*) OVER () AS n "
            f"FROM {ref_table} WHERE {q} IS NOT NULL) "
            "WHERE (rn * ?) // n != ((rn - 1) * ?) // n",
            [noise.MAX_ATOMS, noise.MAX_ATOMS],
        ).fetchall()[0][0]
        out[c] = noise.numeric_atoms(values) if values else None
    return out


def attach_chance_level(res: CheckResult, atoms: noise.Atoms, config: DriftConfig) -> None:
    """Store the chance level of the result's effect at its sizes, and the smallest effect
    those sizes can grade (details: chance_level, detectable_effect)."""
    d = res.details
    binned = d.get("type") == "numeric" and res.method in ("psi", "jensenshannon")
    chance = noise.chance_level(
        atoms,
        res.method,
        res.n_reference,
        res.n_current,
        scale=d.get("scale") or 0.0,
        edges=d.get("bin_edges", []) if binned else None,
        quantile=config.noise_quantile,
    )
    minor = config.thresholds[res.method][0]
    d["chance_level"] = number(chance)
    d["chance_quantile"] = config.noise_quantile
    d["detectable_effect"] = number(noise.detectable(minor, chance, res.method))


def apply_verdicts(results: list[CheckResult], config: DriftConfig, *, correct: bool) -> None:
    """Benjamini-Hochberg over the tested results; the severity of a significant result
    grades the part of its effect that stands clear of chance (noise.beyond_chance)."""
    tested = [r for r in results if r.status == OK and r.p_value is not None]
    p = [r.p_value for r in tested]
    adjusted = stats.bh_adjust(p) if correct else np.asarray(p, dtype=float)
    for r, p_adj in zip(tested, adjusted, strict=True):
        r.p_adjusted = number(p_adj)
        significant = r.p_adjusted is not None and r.p_adjusted < config.fdr
        graded = noise.beyond_chance(r.effect_size, r.details.get("chance_level"), r.method)
        r.severity = grade(graded, config.thresholds[r.method]) if significant else "none"
        r.response = response(r.severity)
        r.details["graded_effect"] = number(graded)
        r.details["significant"] = bool(significant)
        r.details["fdr"] = config.fdr


# -- prediction drift -------------------------------------------------------------


def prediction_drift(
    cur,
    ref_table: str,
    cur_table: str,
    config: DriftConfig,
    *,
    classifier: bool,
    ref_cache: dict | None = None,
) -> list[CheckResult]:
    """The score/value distribution and, for classifiers, the predicted-class mix."""
    subjects = [FeatureInfo("prediction", "numeric", "wasserstein")]
    if classifier:
        subjects.append(FeatureInfo("predicted_label", "categorical", "jensenshannon"))
    return univariate_drift(
        cur,
        ref_table,
        cur_table,
        subjects,
        config,
        check="prediction_drift",
        correct=False,
        ref_cache=ref_cache,
    )


# -- storing ------------------------------------------------------------------------

COLUMNS = {  # stored column -> SQL type of the values bound for it
    "model_name": "VARCHAR",
    "model_version": "VARCHAR",
    "variant": "VARCHAR",
    "grain": "VARCHAR",
    "window_start": "TIMESTAMPTZ",
    "window_end": "TIMESTAMPTZ",
    "reference_kind": "VARCHAR",
    "check_name": "VARCHAR",
    "subject": "VARCHAR",
    "layer": "VARCHAR",
    "method": "VARCHAR",
    "statistic": "DOUBLE",
    "p_value": "DOUBLE",
    "p_adjusted": "DOUBLE",
    "effect_size": "DOUBLE",
    "threshold": "DOUBLE",
    "severity": "VARCHAR",
    "response": "VARCHAR",
    "n_reference": "BIGINT",
    "n_current": "BIGINT",
    "status": "VARCHAR",
    "details": "VARCHAR",  # JSON text; the column's type casts it
    "input_version": "BIGINT",
}
# what identifies a stored group of checks: everything in the primary key but the subject
GROUP_KEY = ("model_name", "model_version", "variant", "grain", "window_start",
             "reference_kind", "check_name")  # fmt: skip


@dataclass
class ResultGroup:
    """The results of some `checks` of one window, replacing whatever was stored for them."""

    window: object  # windows.Window
    checks: Sequence[str]
    input_version: int
    results: Sequence[CheckResult]


def store_results(
    store: Store,
    window,
    reference_kind: str,
    checks: Sequence[str],
    input_version: int,
    results: Sequence[CheckResult],
) -> int:
    """Replace the stored results of `checks` for one window with `results`, in one transaction."""
    return store_groups(
        store, reference_kind, [ResultGroup(window, checks, input_version, results)]
    )


def store_groups(store: Store, reference_kind: str, groups: Sequence[ResultGroup]) -> int:
    """Replace the stored results of several groups in one transaction and two statements
    (one per row or per window costs a statement's overhead each). Returns rows written."""
    keys, rows = [], []
    for g in groups:
        unknown = sorted({r.check for r in g.results} - set(g.checks))
        if unknown:
            raise ValueError(f"results for checks {unknown} were not declared in {list(g.checks)}")
        w = g.window
        keys += [[w.model, w.version, w.variant, w.grain, w.start, reference_kind, c]
                 for c in g.checks]  # fmt: skip
        rows += [_row(w, reference_kind, g.input_version, r) for r in g.results]
    with store.write_lock(), store.transaction() as cur:
        if keys:
            _delete_groups(cur, keys)
        if rows:
            _insert_rows(cur, rows)
    return len(rows)


def _delete_groups(cur, keys: list[list]) -> None:
    columns = [list(c) for c in zip(*keys, strict=True)]
    select = ", ".join(f"unnest(?::{COLUMNS[c]}[]) AS {c}" for c in GROUP_KEY)
    match = " AND ".join(f"r.{c} = k.{c}" for c in GROUP_KEY)
    cur.execute(f"DELETE FROM monitor_results r USING (SELECT {select}) k WHERE {match}", columns)


def _insert_rows(cur, rows: list[list]) -> None:
    """All rows in one INSERT: one list parameter per column, zipped by unnest."""
    columns = [list(c) for c in zip(*rows, strict=True)]
    select = ", ".join(f"unnest(?::{t}[])" for t in COLUMNS.values())
    cur.execute(
        f"INSERT INTO monitor_results ({', '.join(COLUMNS)}, computed_at) SELECT {select}, now()",
        columns,
    )


def _row(window, reference_kind: str, input_version: int, r: CheckResult) -> list:
    if r.check not in CHECKS:
        raise ValueError(f"unknown check {r.check!r}")
    return [
        window.model,
        window.version,
        window.variant,
        window.grain,
        window.start,
        window.end,
        reference_kind,
        r.check,
        r.subject,
        r.layer,
        r.method,
        number(r.statistic),
        number(r.p_value),
        number(r.p_adjusted),
        number(r.effect_size),
        number(r.threshold),
        r.severity,
        r.response,
        r.n_reference,
        r.n_current,
        r.status,
        json.dumps(clean(r.details), sort_keys=True),
        int(input_version),
    ]
