"""Data quality of a window in three tiers: schema, statistics and business rules.

- schema: per spec feature, the share of the window's feature rows that came from batches
  without that column (ingestion stores a missing schema column as NULL and records it in
  ingest_batches.report `missing_columns`), and whether the logged column's type still
  matches the spec; plus columns outside this version's spec that hold values (a feature
  log is shared by all versions of a model; ingestion refuses columns outside the schema).
- statistics: missing rate against the reference, values outside the spec's range, far
  outliers (beyond Tukey's 3 x IQR fences of the reference) against the reference's own
  rate, and categories outside the spec's `values` (or the reference's categories).
- business rules: each spec rule (a boolean SQL expression over the features) evaluated in
  DuckDB over the window: violation count and rate, with a few offending rows as evidence.
  A rule that evaluates to NULL (a value missing) is counted apart, not as a violation.

Counts run as one aggregate query over all the window's rows; only counts and a few
evidence rows reach Python. Severity grades the affected share of rows
(severity.QUALITY_THRESHOLDS), and only the part of it the window proves: the one-sided
lower confidence bound of the rate's excess over the reference (lifecycle.drift.noise,
`rate_excess_bound`), so two odd rows among 165 do not grade like 1.2% of a million rows.
A rate compared with the reference also needs a significant test (p < fdr).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from scipy import stats

from lifecycle.drift import noise
from lifecycle.drift.config import DriftConfig, FeatureInfo
from lifecycle.drift.results_model import CheckResult, clean, insufficient
from lifecycle.drift.severity import grade, response
from lifecycle.drift.windows import HAS_FEATURES, KEY
from lifecycle.store import Sql, bind, quote_ident

EVIDENCE_ROWS = 5
TUKEY_FAR = 3.0
SQL_TYPES = {"numeric": "DOUBLE", "categorical": "VARCHAR"}


@dataclass(frozen=True)
class RuleInfo:
    name: str
    sql: str


@dataclass
class ReferenceProfile:
    """What the quality checks need from the reference, computed once per reference."""

    rows: int
    missing: dict[str, int]  # feature -> missing values
    fences: dict[str, tuple[float, float]]  # numeric feature -> (low, high) far-out fences
    outlier_rate: dict[str, float]
    categories: dict[str, list[str]]  # categorical feature -> categories seen
    # categorical feature -> Good-Turing estimate of the share of categories the reference
    # never saw (its singletons / its rows): what "new" categories chance alone brings
    unseen_mass: dict[str, float] = field(default_factory=dict)


def reference_profile(
    cur, ref_relation: Sql, ref_sample_table: str, features: Sequence[FeatureInfo]
) -> ReferenceProfile:
    """Missing counts and categories over the full reference; fences from its sample table."""
    parts = ["count(*)"] + [f"count(*) - count({quote_ident(f.name)})" for f in features]
    row = ref_relation.execute(
        cur, f"SELECT {', '.join(parts)} FROM (", f") WHERE {HAS_FEATURES}"
    ).fetchall()[0]
    missing = {f.name: int(row[i + 1]) for i, f in enumerate(features)}
    fences, outlier_rate = _fences(cur, ref_sample_table, features)
    categories, unseen_mass = {}, {}
    for f in features:
        if f.type == "categorical":
            q = quote_ident(f.name)
            counts = ref_relation.execute(
                cur,
                f"SELECT {q}, count(*) FROM (",
                f") WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY 1",
            ).fetchall()
            categories[f.name] = [k for k, _ in counts]
            total = sum(n for _, n in counts)
            unseen_mass[f.name] = sum(n == 1 for _, n in counts) / total if total else 0.0
    return ReferenceProfile(int(row[0]), missing, fences, outlier_rate, categories, unseen_mass)


def _fences(cur, table: str, features: Sequence[FeatureInfo]):
    numeric = [f.name for f in features if f.type == "numeric"]
    if not numeric:
        return {}, {}
    parts = [f"quantile_cont({quote_ident(c)}, [0.25, 0.75])" for c in numeric]
    row = cur.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchall()[0]
    fences = {}
    for name, q in zip(numeric, row, strict=True):
        if q is None or q[0] is None:
            continue
        iqr = q[1] - q[0]
        fences[name] = (q[0] - TUKEY_FAR * iqr, q[1] + TUKEY_FAR * iqr)
    rates = {}
    if fences:
        params: dict = {}
        parts = [
            f"count(*) FILTER (WHERE {_outside(c, lo, hi, params)}) "
            f"/ greatest(count({quote_ident(c)}), 1)"
            for c, (lo, hi) in fences.items()
        ]
        row = cur.execute(f"SELECT {', '.join(parts)} FROM {table}", params).fetchall()[0]
        rates = dict(zip(fences, (float(v) for v in row), strict=True))
    return fences, rates


def quality_checks(
    cur,
    cur_relation: Sql,
    features: Sequence[FeatureInfo],
    rules: Sequence[RuleInfo],
    profile: ReferenceProfile,
    table_types: dict[str, str],
    config: DriftConfig,
) -> list[CheckResult]:
    """All three tiers for one window. `table_types`: feature-log column -> SQL type."""
    counts = _window_counts(cur, cur_relation, features, rules, profile, table_types)
    rows = counts["rows"]
    out: list[CheckResult] = []
    out += _schema(cur, cur_relation, features, table_types, counts, config)
    out += _statistics(cur, cur_relation, features, profile, counts, config)
    out += _rules(cur, cur_relation, features, rules, counts, config)
    for r in out:
        r.details.setdefault("feature_rows", rows)
    return out


# -- one aggregate query -------------------------------------------------------------


def _outside(column: str, lo: float, hi: float, params: dict) -> str:
    """SQL: `column` lies outside [lo, hi] (the bounds bound as DOUBLE parameters)."""
    q = quote_ident(column)
    return f"{q} < {bind(params, float(lo))} OR {q} > {bind(params, float(hi))}"


def _window_counts(cur, relation: Sql, features, rules, profile, table_types) -> dict:
    exprs: dict[str, str] = {"rows": "count(*)"}
    params: dict = {}
    for f in features:
        q = quote_ident(f.name)
        exprs[f"present:{f.name}"] = f"count({q})"
        if f.type == "numeric" and f.range:
            lo, hi = f.range
            exprs[f"range:{f.name}"] = f"count(*) FILTER (WHERE {_outside(f.name, lo, hi, params)})"
        if f.type == "numeric" and f.name in profile.fences:
            lo, hi = profile.fences[f.name]
            exprs[f"outlier:{f.name}"] = (
                f"count(*) FILTER (WHERE {_outside(f.name, lo, hi, params)})"
            )
        if f.type == "categorical":
            exprs[f"new:{f.name}"] = f"count(*) FILTER (WHERE {_new_category(f, profile, params)})"
    for name in table_types:
        if name not in {f.name for f in features}:
            exprs[f"extra:{name}"] = f"count({quote_ident(name)})"
    for i, rule in enumerate(rules):
        exprs[f"violations:{i}"] = f"count(*) FILTER (WHERE NOT ({rule.sql}))"
        exprs[f"unknown:{i}"] = f"count(*) FILTER (WHERE ({rule.sql}) IS NULL)"
    keys = list(exprs)
    select = ", ".join(exprs[k] for k in keys)
    row = relation.execute(
        cur, f"SELECT {select} FROM (", f") WHERE {HAS_FEATURES}", params
    ).fetchall()[0]
    return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}


def _new_category(f: FeatureInfo, profile: ReferenceProfile, params: dict) -> str:
    """SQL: a value outside the allowed categories (the list bound as a parameter)."""
    allowed = list(f.values) if f.values else profile.categories.get(f.name, [])
    q = quote_ident(f.name)
    if not allowed:
        return f"{q} IS NOT NULL"
    values = bind(params, [str(v) for v in allowed])
    return f"{q} IS NOT NULL AND NOT list_contains({values}::VARCHAR[], CAST({q} AS VARCHAR))"


# -- schema ---------------------------------------------------------------------------


def _schema(cur, relation, features, table_types, counts, config) -> list[CheckResult]:
    rows = counts["rows"]
    thresholds = config.quality_thresholds["schema"]
    out = []
    if rows == 0:
        return [
            insufficient("schema", f.name, "no feature rows logged in this window")
            for f in features
        ]
    missing_by_batch = _missing_columns_by_batch(cur, relation)
    for f in features:
        affected = sum(n for cols, n in missing_by_batch if f.name in cols)
        logged = table_types.get(f.name)
        type_changed = logged is not None and logged != SQL_TYPES[f.type]
        rate = affected / rows
        severity = "significant" if (type_changed or logged is None) else grade(rate, thresholds)
        out.append(
            CheckResult(
                check="schema",
                subject=f.name,
                method="missing_column_rate",
                statistic=rate,
                effect_size=rate,
                threshold=thresholds[0],
                severity=severity,
                response=response(severity, quality=True),
                n_current=rows,
                details=clean(
                    {
                        "rows_without_column": affected,
                        "spec_type": SQL_TYPES[f.type],
                        "logged_type": logged,
                        "type_changed": type_changed,
                        "column_missing_from_log": logged is None,
                    }
                ),
            )
        )
    for name, dtype in table_types.items():
        filled = counts.get(f"extra:{name}", 0)
        if filled:
            rate = filled / rows
            severity = grade(rate, thresholds)
            out.append(
                CheckResult(
                    check="schema",
                    subject=name,
                    method="unexpected_column",
                    statistic=rate,
                    effect_size=rate,
                    threshold=thresholds[0],
                    severity=severity,
                    response=response(severity, quality=True),
                    n_current=rows,
                    details={
                        "rows_with_values": filled,
                        "logged_type": dtype,
                        "reason": "column is not in this version's spec",
                    },
                )
            )
    return out


def _missing_columns_by_batch(cur, relation) -> list[tuple[set[str], int]]:
    rows = relation.execute(
        cur,
        "SELECT b.report, w.n FROM (SELECT _batch, count(*) AS n FROM (",
        f") WHERE {HAS_FEATURES} GROUP BY _batch) w JOIN ingest_batches b ON b.batch_id = w._batch",
    ).fetchall()
    out = []
    for report, n in rows:
        cols = json.loads(report).get("missing_columns") or []
        if cols:
            out.append((set(cols), int(n)))
    return out


# -- statistics ------------------------------------------------------------------------


def _statistics(cur, relation, features, profile, counts, config) -> list[CheckResult]:
    rows = counts["rows"]
    out = []
    for f in features:
        out.append(_missing_rate(f, rows, counts, profile, config))
        present = counts[f"present:{f.name}"]
        if f.type == "numeric" and f.range:
            out.append(_out_of_range(cur, relation, f, present, counts, config))
        if f.type == "numeric":
            out.append(_outliers(f, present, counts, profile, config))
        if f.type == "categorical":
            out.append(_new_categories(cur, relation, f, present, counts, profile, config))
    return out


def _missing_rate(f, rows, counts, profile, config) -> CheckResult:
    if rows == 0:
        return insufficient("missing_rate", f.name, "no feature rows logged in this window")
    missing = rows - counts[f"present:{f.name}"]
    ref_rows, ref_missing = profile.rows, profile.missing.get(f.name, 0)
    rate = missing / rows
    ref_rate = ref_missing / ref_rows if ref_rows else 0.0
    increase = rate - ref_rate
    p = _two_proportion_p(missing, rows, ref_missing, ref_rows)
    thresholds = config.quality_thresholds["missing_rate"]
    significant = p is not None and p < config.fdr and increase > 0
    bound = noise.rate_excess_bound(
        missing, rows, ref_k=ref_missing, ref_n=ref_rows, quantile=config.noise_quantile
    )
    severity = grade(bound, thresholds) if significant else "none"
    return CheckResult(
        check="missing_rate",
        subject=f.name,
        method="missing_rate_increase",
        statistic=rate,
        p_value=p,
        effect_size=increase,
        threshold=thresholds[0],
        severity=severity,
        response=response(severity, quality=True),
        n_reference=ref_rows,
        n_current=rows,
        details={
            "missing": missing,
            "reference_rate": ref_rate,
            "all_missing": missing == rows,
            **_noise_details(increase, bound, config),
        },
    )


def _two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """p-value that the two missing rates differ (chi-square on the 2 x 2 table)."""
    if n1 == 0 or n2 == 0:
        return None
    table = [[k1, n1 - k1], [k2, n2 - k2]]
    if (k1 + k2) == 0 or (k1 + k2) == (n1 + n2):
        return 1.0  # nothing missing (or everything) on both sides: no difference
    return float(stats.chi2_contingency(table).pvalue)


def _out_of_range(cur, relation, f, present, counts, config) -> CheckResult:
    if present == 0:
        return insufficient("out_of_range", f.name, "no non-missing values in this window")
    bad = counts[f"range:{f.name}"]
    rate = bad / present
    thresholds = config.quality_thresholds["out_of_range"]
    bound = noise.rate_excess_bound(bad, present, quantile=config.noise_quantile)
    severity = grade(bound, thresholds) if bad else "none"
    lo, hi = f.range
    params: dict = {}
    condition = _outside(f.name, lo, hi, params)
    evidence = _evidence(cur, relation, condition, [f.name], params) if bad else []
    return CheckResult(
        check="out_of_range",
        subject=f.name,
        method="spec_range",
        statistic=rate,
        effect_size=rate,
        threshold=thresholds[0],
        severity=severity,
        response=response(severity, quality=True),
        n_current=present,
        details={
            "violations": bad,
            "range": [lo, hi],
            "examples": evidence,
            **_noise_details(rate, bound, config),
        },
    )


def _outliers(f, present, counts, profile, config) -> CheckResult:
    if f.name not in profile.fences:
        return insufficient("outliers", f.name, "the reference has no values for this feature")
    if present < config.min_rows:
        return insufficient(
            "outliers",
            f.name,
            f"only {present} non-missing value(s) in this window; at least {config.min_rows} "
            "needed",
            n_current=present,
        )
    far = counts[f"outlier:{f.name}"]
    rate = far / present
    ref_rate = profile.outlier_rate.get(f.name, 0.0)
    excess = rate - ref_rate
    # more far outliers than the reference rate predicts? (binomial, one-sided)
    p = float(stats.binomtest(far, present, max(ref_rate, 1e-6), alternative="greater").pvalue)
    thresholds = config.quality_thresholds["outliers"]
    bound = noise.rate_excess_bound(far, present, ref_rate=ref_rate, quantile=config.noise_quantile)
    severity = grade(bound, thresholds) if p < config.fdr else "none"
    lo, hi = profile.fences[f.name]
    return CheckResult(
        check="outliers",
        subject=f.name,
        method="tukey_far_out",
        statistic=rate,
        p_value=p,
        effect_size=excess,
        threshold=thresholds[0],
        severity=severity,
        response=response(severity, quality=True),
        n_current=present,
        details={
            "outliers": far,
            "fences": [lo, hi],
            "reference_rate": ref_rate,
            **_noise_details(excess, bound, config),
        },
    )


def _new_categories(cur, relation, f, present, counts, profile, config) -> CheckResult:
    if present == 0:
        return insufficient("new_categories", f.name, "no non-missing values in this window")
    new = counts[f"new:{f.name}"]
    rate = new / present
    thresholds = config.quality_thresholds["new_categories"]
    # against the reference's categories, a rare category it happened to miss is chance
    expected = 0.0 if f.values else profile.unseen_mass.get(f.name, 0.0)
    bound = noise.rate_excess_bound(new, present, ref_rate=expected, quantile=config.noise_quantile)
    severity = grade(bound, thresholds) if new else "none"
    shares = {}
    if new:
        q = quote_ident(f.name)
        params: dict = {}
        new_sql = _new_category(f, profile, params)
        shares = {
            str(k): n / present
            for k, n in relation.execute(
                cur,
                f"SELECT {q}, count(*) FROM (",
                f") WHERE {HAS_FEATURES} AND {new_sql} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
                params,
            ).fetchall()
        }
    return CheckResult(
        check="new_categories",
        subject=f.name,
        method="spec_values" if f.values else "reference_categories",
        statistic=rate,
        effect_size=rate,
        threshold=thresholds[0],
        severity=severity,
        response=response(severity, quality=True),
        n_current=present,
        details={
            "rows": new,
            "categories": shares,
            "expected_unseen_share": expected,
            **_noise_details(rate, bound, config),
        },
    )


# -- business rules ------------------------------------------------------------------------


def _rules(cur, relation, features, rules, counts, config) -> list[CheckResult]:
    rows = counts["rows"]
    thresholds = config.quality_thresholds["business_rule"]
    out = []
    for i, rule in enumerate(rules):
        if rows == 0:
            out.append(insufficient("business_rule", rule.name, "no feature rows in this window"))
            continue
        bad, unknown = counts[f"violations:{i}"], counts[f"unknown:{i}"]
        rate = bad / rows
        bound = noise.rate_excess_bound(bad, rows, quantile=config.noise_quantile)
        severity = grade(bound, thresholds) if bad else "none"
        columns = _rule_columns(rule.sql, features)
        evidence = _evidence(cur, relation, f"NOT ({rule.sql})", columns) if bad else []
        out.append(
            CheckResult(
                check="business_rule",
                subject=rule.name,
                method="sql_rule",
                statistic=rate,
                effect_size=rate,
                threshold=thresholds[0],
                severity=severity,
                response=response(severity, quality=True),
                n_current=rows,
                details={
                    "sql": rule.sql,
                    "violations": bad,
                    "not_evaluable": unknown,
                    "examples": evidence,
                    **_noise_details(rate, bound, config),
                },
            )
        )
    return out


def _noise_details(effect: float, bound: float, config: DriftConfig) -> dict:
    """What the window proves about a rate (`graded_effect`, the lower confidence bound that
    severity grades) and how much of the measured rate chance could explain."""
    return {
        "graded_effect": bound,
        "chance_level": max(effect - bound, 0.0),
        "chance_quantile": config.noise_quantile,
    }


def _rule_columns(sql: str, features) -> list[str]:
    """Features a rule mentions, bare (`MedInc`, any case) or quoted (`"Loan amount"`)."""
    words = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}
    text = sql.lower()
    return [
        f.name for f in features if f.name.lower() in words or quote_ident(f.name).lower() in text
    ]


def _evidence(
    cur, relation: Sql, condition: str, columns: list[str], params: dict | None = None
) -> list[dict]:
    cols = "".join(f", {quote_ident(c)}" for c in columns)
    rows = relation.execute(
        cur,
        f"SELECT {KEY}{cols} FROM (",
        f") WHERE {HAS_FEATURES} AND ({condition}) ORDER BY {KEY} LIMIT {EVIDENCE_ROWS}",
        params,
    ).fetchall()
    out = []
    for row in rows:
        item = {"prediction_id": row[0]}
        for name, value in zip(columns, row[1:], strict=True):
            item[name] = value if not isinstance(value, float) or math.isfinite(value) else None
        out.append(item)
    return out
