"""Canary and shadow versions against production on live traffic, with always-valid intervals.

For a candidate in canary: its canary requests against the production version's requests of
the same period (an A/B test on the traffic split). For a candidate in shadow: its answers
paired with production's on the same requests (request_id), so each request is its own
control. Per day and cumulatively since the current shadow or canary stint began:

- performance on labelled rows: correct predictions (classifiers) or absolute error
  (regression);
- each KPI of the spec, by variant (canary only: shadow answers reach no customer);
- latency (ok requests) and error rate.

Each comparison's cumulative difference (candidate - production) gets an always-valid 95%
interval (lifecycle.sequential: mixture SPRT, valid however often people look), a verdict
(worse / better / no difference detected / equivalent within the minimum effect / not
enough data) and the candidate rows still needed to detect the configured minimum effect
with 80% power. Daily aggregates (n, sum, sum of squares per day and arm) come from one SQL
statement per measure; Python only accumulates a few rows per day.

Settings: the candidate spec's `[rollout]` table (ROLLOUT_DEFAULTS, docs/governance.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from lifecycle import catalog, layers, sequential
from lifecycle.store import Store

ROLLOUT_DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,  # the always-valid intervals' error rate over the whole rollout
    # minimum effect each comparison should be able to detect; sets the mixture's tau.
    # absolute for rates (accuracy, error_rate), relative to production's mean otherwise
    "min_effect": {
        "accuracy": 0.01,
        "abs_error": 0.05,
        "kpi": 0.05,
        "latency": 0.25,
        "error_rate": 0.005,
    },
    "min_live_rows": 1000,  # candidate requests (shadow or canary) before production
    "min_windows": 3,  # monitored daily windows of the candidate's live traffic
    "auto_rollback": False,
    "rollback_after": 2,  # windows a critical alert must hold before auto-rollback
}
RELATIVE = ("abs_error", "kpi", "latency")
MIN_ROWS = 30  # per arm before any verdict (the normal approximation needs some rows)

WORSE, SLIGHTLY_WORSE, BETTER, SAME, UNDECIDED, TOO_FEW = (
    "worse", "slightly worse (less than the minimum effect)", "better", "equivalent",
    "no difference detected yet", "not enough data",
)  # fmt: skip


class RolloutConfigError(ValueError):
    """A [rollout] table that cannot be used; the message names every bad key."""


def rollout_settings(spec: dict) -> dict[str, Any]:
    """ROLLOUT_DEFAULTS overridden by the spec's [rollout] table, validated."""
    raw = spec.get("rollout") or {}
    problems = rollout_problems(raw)
    if problems:
        raise RolloutConfigError("[rollout]: " + "; ".join(problems))
    settings = {**ROLLOUT_DEFAULTS, **{k: v for k, v in raw.items() if k != "min_effect"}}
    settings["min_effect"] = {**ROLLOUT_DEFAULTS["min_effect"], **raw.get("min_effect", {})}
    return settings


def rollout_problems(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return ["`rollout` must be a table"]
    problems = [f"unknown key `rollout.{k}` (known: {', '.join(ROLLOUT_DEFAULTS)})"
                for k in sorted(set(raw) - set(ROLLOUT_DEFAULTS))]  # fmt: skip
    alpha = raw.get("alpha", 0.05)
    if not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        problems.append(f"`rollout.alpha` must be a number in (0, 0.5), got {alpha!r}")
    for key in ("min_live_rows", "min_windows", "rollback_after"):
        value = raw.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"`rollout.{key}` must be a whole number >= 0, got {value!r}")
    if not isinstance(raw.get("auto_rollback", False), bool):
        problems.append("`rollout.auto_rollback` must be true or false")
    effects = raw.get("min_effect", {})
    if not isinstance(effects, dict):
        problems.append("`rollout.min_effect` must be a table")
        effects = {}
    for key, value in effects.items():
        if key not in ROLLOUT_DEFAULTS["min_effect"]:
            problems.append(f"unknown key `rollout.min_effect.{key}` (known: "
                            f"{', '.join(ROLLOUT_DEFAULTS['min_effect'])})")  # fmt: skip
        elif not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            problems.append(f"`rollout.min_effect.{key}` must be a number > 0, got {value!r}")
    return problems


@dataclass
class Comparison:
    """One measure, candidate - production, per day and over the stint so far."""

    name: str  # e.g. "accuracy", "kpi: conversion", "p50 latency"
    unit: str
    higher_is_better: bool
    min_effect: float  # absolute, in the measure's unit
    daily: pd.DataFrame  # day, n_candidate, n_production, difference, low, high (cumulative)
    verdict: str
    rows_needed: int | None  # more candidate rows to detect min_effect with 80% power
    candidate_mean: float | None = None
    production_mean: float | None = None

    @property
    def last(self) -> dict[str, Any] | None:
        return None if self.daily.empty else self.daily.iloc[-1].to_dict()

    def text(self) -> str:
        last = self.last
        if last is None or self.verdict == TOO_FEW:
            n = 0 if last is None else int(min(last["n_candidate"], last["n_production"]))
            return f"{self.name}: not enough data (n={n:,}, needs {MIN_ROWS} per side)"
        more = (f"; about {self.rows_needed:,} more candidate rows to detect "
                f"{_fmt(self.min_effect, self.unit)}" if self.rows_needed else "")  # fmt: skip
        return (
            f"{self.name}: {_fmt(self.candidate_mean, self.unit)} vs production "
            f"{_fmt(self.production_mean, self.unit)}, difference "
            f"{_fmt(last['difference'], self.unit, signed=True)} (always-valid 95%: "
            f"{_fmt(last['low'], self.unit, signed=True)} to "
            f"{_fmt(last['high'], self.unit, signed=True)}, n={int(last['n_candidate']):,}): "
            f"{self.verdict}{more}"
        )


@dataclass
class LiveComparison:
    model: str
    candidate: str
    champion: str | None
    mode: str | None  # "canary", "shadow" or None (neither: nothing to compare)
    since: datetime | None
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def worse(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == WORSE]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "candidate": self.candidate, "champion": self.champion,
            "mode": self.mode, "since": self.since, "notes": self.notes,
            "comparisons": [
                {"name": c.name, "unit": c.unit, "verdict": c.verdict, "text": c.text(),
                 "higher_is_better": c.higher_is_better, "min_effect": c.min_effect,
                 "rows_needed": c.rows_needed, "last": c.last,
                 "daily": c.daily.to_dict("records")}
                for c in self.comparisons
            ],
        }  # fmt: skip


def live_comparison(store: Store, model: str, candidate: str) -> LiveComparison:
    """The candidate (in shadow or canary) against the production version, see the module."""
    with store.cursor() as cur:
        state = cur.execute(
            "SELECT state FROM model_versions WHERE model_name = ? AND version = ?",
            [model, candidate],
        ).fetchall()[0][0]
        spec = catalog.version_spec(cur, model, candidate)
        champion = cur.execute(
            "SELECT production_version FROM deployments WHERE model_name = ?", [model]
        ).fetchall()
    champion = champion[0][0] if champion else None
    mode = state if state in ("shadow", "canary") else None
    out = LiveComparison(model, candidate, champion, mode, None)
    if mode is None or champion is None or champion == candidate:
        out.notes.append(
            f"{candidate} is {state}: live comparison applies to a shadow or canary version "
            "beside a production version"
        )
        return out
    settings = rollout_settings(spec)
    out.since = stint_start(store, model, candidate, mode)
    task = layers.model_task(store, model)
    measures = _measures(task, spec, mode)
    for measure in measures:
        daily = _daily(store, model, candidate, champion, out.since, mode, measure, task)
        out.comparisons.append(_compare(measure, daily, settings, paired=mode == "shadow"))
    if mode == "shadow" and spec.get("kpis"):
        out.notes.append("KPIs are compared in canary only: shadow answers reach no customer")
    return out


def stint_start(store: Store, model: str, version: str, variant: str) -> datetime | None:
    """When the version's current run in `variant` began (its first rollout row in that
    variant after the last one in another)."""
    return store.query_one(
        "SELECT min(started_at) FROM rollouts WHERE model_name = ? AND version = ? "
        "AND variant = ? AND started_at >= coalesce((SELECT max(started_at) FROM rollouts "
        "WHERE model_name = ? AND version = ? AND variant <> ?), "
        "TIMESTAMPTZ '1970-01-01 00:00:00+00')",
        [model, version, variant, model, version, variant],
    )[0]


# -- measures --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    key: str  # min_effect key
    name: str
    unit: str
    higher_is_better: bool
    value_sql: str  # per prediction row `p` (and labels `l`, business events `b`)
    params: tuple = ()
    source: str = "predictions"  # predictions | labels | kpi
    kpi: str | None = None


def _measures(task, spec: dict, mode: str) -> list[Measure]:
    """What is compared; value_sql is a template over {p} (the prediction) and {l} (its
    label), filled per arm."""
    out = []
    if task.task == "regression":
        out.append(Measure("abs_error", "absolute error", "", False,
                           "abs({p}.prediction - {l}.actual_value)", source="labels"))  # fmt: skip
    else:
        label_sql, params = layers.predicted_label_sql("{p}", task)
        out.append(Measure("accuracy", "accuracy", "share", True,
                           f"CAST(({label_sql}) = {{l}}.actual_label AS DOUBLE)", tuple(params),
                           source="labels"))  # fmt: skip
    if mode == "canary":
        for kpi in spec.get("kpis", []):
            higher = kpi.get("direction", "higher_is_better") == "higher_is_better"
            out.append(Measure("kpi", f"kpi: {kpi['name']}", kpi.get("unit", ""), higher,
                               "b.value", source="kpi", kpi=kpi["name"]))  # fmt: skip
    out.append(Measure("latency", "latency", "ms", False,
                       "CASE WHEN {p}.status = 'ok' THEN {p}.latency_ms END"))  # fmt: skip
    out.append(Measure("error_rate", "error rate", "share", False,
                       "CAST({p}.status = 'error' AS DOUBLE)"))  # fmt: skip
    return out


def _daily(store, model, candidate, champion, since, mode, m: Measure, task) -> pd.DataFrame:
    """Per day: n, sum, sum of squares of the measure for each arm (canary), or of the
    paired differences (shadow)."""
    if mode == "shadow":
        return _daily_paired(store, model, candidate, champion, since, m)
    joins = {
        "predictions": "",
        "labels": "JOIN labels l ON l.prediction_id = p.prediction_id "
        "AND l.model_name = p.model_name",
        "kpi": "JOIN business_events b ON b.prediction_id = p.prediction_id "
        "AND b.model_name = p.model_name AND b.kpi = ?",
    }
    kpi_params = [m.kpi] if m.source == "kpi" else []
    sql = f"""
        WITH v AS (
            SELECT date_trunc('day', p.ts) AS day,
                   p.model_version = ? AND p.variant = 'canary' AS is_candidate,
                   {m.value_sql.format(p="p", l="l")} AS x
            FROM predictions p {joins[m.source]}
            WHERE p.model_name = ? AND p.ts >= coalesce(?, TIMESTAMPTZ '1970-01-01 00:00:00+00')
              AND ((p.model_version = ? AND p.variant = 'canary')
                   OR (p.model_version = ? AND p.variant = 'production'))
        )
        SELECT day,
               count(x) FILTER (WHERE is_candidate) AS n_c,
               sum(x) FILTER (WHERE is_candidate) AS s_c,
               sum(x * x) FILTER (WHERE is_candidate) AS ss_c,
               count(x) FILTER (WHERE NOT is_candidate) AS n_p,
               sum(x) FILTER (WHERE NOT is_candidate) AS s_p,
               sum(x * x) FILTER (WHERE NOT is_candidate) AS ss_p
        FROM v WHERE x IS NOT NULL GROUP BY day ORDER BY day
    """
    params = [candidate, *m.params, *kpi_params, model, since, candidate, champion]
    return store.query_df(sql, params)


def _daily_paired(store, model, candidate, champion, since, m: Measure) -> pd.DataFrame:
    """Shadow: both versions' answers to each request side by side (structs `cand`, `prod`),
    with the request's label from either prediction (`lab`); the measure per side, and
    their difference per request."""
    sql = f"""
        WITH pairs AS (
            SELECT c.ts,
                   struct_pack(prediction := c.prediction, predicted_label := c.predicted_label,
                               status := c.status, latency_ms := c.latency_ms) AS cand,
                   struct_pack(prediction := p.prediction, predicted_label := p.predicted_label,
                               status := p.status, latency_ms := p.latency_ms) AS prod,
                   struct_pack(actual_label := coalesce(lp.actual_label, lc.actual_label),
                               actual_value := coalesce(lp.actual_value, lc.actual_value)) AS lab
            FROM predictions c
            JOIN predictions p ON p.request_id = c.request_id AND p.model_name = c.model_name
                 AND p.variant = 'production' AND p.model_version = ?
            LEFT JOIN labels lc ON lc.prediction_id = c.prediction_id
                 AND lc.model_name = c.model_name
            LEFT JOIN labels lp ON lp.prediction_id = p.prediction_id
                 AND lp.model_name = p.model_name
            WHERE c.model_name = ? AND c.model_version = ? AND c.variant = 'shadow'
              AND c.ts >= coalesce(?, TIMESTAMPTZ '1970-01-01 00:00:00+00')
        ), sides AS (
            SELECT date_trunc('day', ts) AS day,
                   {m.value_sql.format(p="cand", l="lab")} AS xc,
                   {m.value_sql.format(p="prod", l="lab")} AS xp
            FROM pairs
        )
        SELECT day, count(*) AS n_c, sum(xc - xp) AS s_c, sum((xc - xp) * (xc - xp)) AS ss_c,
               count(*) AS n_p, sum(xc) AS mean_c_sum, sum(xp) AS mean_p_sum
        FROM sides WHERE xc IS NOT NULL AND xp IS NOT NULL GROUP BY day ORDER BY day
    """
    return store.query_df(sql, [champion, model, candidate, since, *m.params, *m.params])


# -- statistics ------------------------------------------------------------------------------------


def _compare(m: Measure, daily: pd.DataFrame, settings: dict, *, paired: bool) -> Comparison:
    alpha = float(settings["alpha"])
    cum = daily.drop(columns="day").cumsum() if not daily.empty else daily
    rows, diffs, variances = [], [], []
    var_c = var_p = mean_c = mean_p = None
    for i in range(len(daily)):
        r = cum.iloc[i]
        n_c, n_p = float(r["n_c"]), float(r["n_p"])
        if paired:
            mean_c, mean_p = r["mean_c_sum"] / n_c, r["mean_p_sum"] / n_c
            diff, var_c = r["s_c"] / n_c, _var(n_c, r["s_c"], r["ss_c"])
            variance = var_c / n_c if var_c is not None else math.inf
        else:
            mean_c, mean_p = _mean(n_c, r["s_c"]), _mean(n_p, r["s_p"])
            var_c, var_p = _var(n_c, r["s_c"], r["ss_c"]), _var(n_p, r["s_p"], r["ss_p"])
            diff = None if mean_c is None or mean_p is None else mean_c - mean_p
            variance = (var_c / n_c + var_p / n_p) if None not in (var_c, var_p) else math.inf
        rows.append((daily["day"].iloc[i], int(n_c), int(n_p)))
        diffs.append(diff if diff is not None else 0.0)
        variances.append(variance)
    effect = _absolute_effect(m, settings, mean_p)
    seq = sequential.looks(diffs, variances, effect, alpha) if rows else []
    frame = pd.DataFrame(
        [{"day": day, "n_candidate": nc, "n_production": npr, "difference": s.difference,
          "low": s.low, "high": s.high, "p_value": s.p_value}
         for (day, nc, npr), s in zip(rows, seq, strict=True)],
        columns=["day", "n_candidate", "n_production", "difference", "low", "high", "p_value"],
    )  # fmt: skip
    verdict, needed = TOO_FEW, None
    if rows and min(rows[-1][1], rows[-1][2]) >= MIN_ROWS and math.isfinite(variances[-1]):
        last = seq[-1]
        verdict = _verdict(last, m.higher_is_better, effect)
        ratio = rows[-1][2] / max(rows[-1][1], 1)
        total = sequential.rows_needed(var_c or 0.0, var_p or 0.0, ratio, effect, effect, alpha,
                                       paired=paired)  # fmt: skip
        needed = None if total is None or verdict != UNDECIDED else max(total - rows[-1][1], 0)
    return Comparison(m.name, m.unit, m.higher_is_better, effect, frame, verdict, needed,
                      mean_c, mean_p)  # fmt: skip


def _verdict(look: sequential.Look, higher_is_better: bool, effect: float) -> str:
    """Worse: harm established (the interval excludes 0 on the bad side) and at least the
    minimum effect by the estimate; a smaller established harm is only "slightly worse"."""
    if look.low > 0 or look.high < 0:
        if (look.low > 0) == higher_is_better:
            return BETTER
        return WORSE if abs(look.difference) >= effect else SLIGHTLY_WORSE
    if -effect < look.low and look.high < effect:
        return SAME
    return UNDECIDED


def _absolute_effect(m: Measure, settings: dict, production_mean: float | None) -> float:
    effect = float(settings["min_effect"][m.key])
    if m.key in RELATIVE:
        base = abs(production_mean) if production_mean else 0.0
        effect = effect * base if base > 0 else effect
    return effect


def _mean(n, s) -> float | None:
    return None if not n else float(s) / n


def _var(n, s, ss) -> float | None:
    """Sample variance from count, sum and sum of squares (None below 2 rows)."""
    if n is None or n < 2:
        return None
    return max((float(ss) - float(s) ** 2 / n) / (n - 1), 0.0)


def _fmt(value, unit: str, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    sign = "+" if signed else ""
    if unit == "share":
        return f"{value * 100:{sign}.2f} pts" if signed else f"{value:.2%}"
    if unit == "ms":
        return f"{value:{sign}.1f} ms"
    return f"{value:{sign}.4g}" + (f" {unit}" if unit else "")
