"""Evaluation coverage: how much of a period the alert rules could actually judge.

A rule evaluation (`alert_evaluations`, written by the scheduled check from the monitor
results and the layer summaries) either has a verdict (ok / warning / critical) or is
`insufficient` (too little data). A layer whose windows were all insufficient, or never
evaluated, must not look healthy: `evaluation_coverage` counts, per model, version,
variant and layer, the checks with a verdict, the insufficient ones, the windows with
traffic but no result at all, the most common reason, and gives the layer a `state`:

- `evaluated`: every window of the period had at least one verdict (for performance, a
  verdict on estimated performance counts: labels pending, `estimated` says how many);
- `partly evaluated`: some windows had a verdict, others none;
- `not evaluated`: no verdict at all in the period (never counted as OK);
- `awaiting labels` (performance only): no verdict yet, but every window without one is
  younger than the model's 90th percentile label delay, so its labels are not due yet;
- `no traffic`: no prediction and no evaluation in the period.

Windows count when they *ended* in (since, until] (and by `as_of`, the time of the newest
check): complete windows only. Everything is computed in one SQL query per call.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from lifecycle import catalog, lake_manifest
from lifecycle.store import Store

LAYERS = ("infrastructure", "performance", "business", "data_quality", "drift")
KEY_LAYERS = ("performance", "drift")  # a model with one of these not evaluated is not OK
STATES = ("evaluated", "partly evaluated", "not evaluated", "awaiting labels", "no traffic")
SIZE_WORDS = {  # what a window's size counts, per layer (for the reason shown)
    "infrastructure": "requests",
    "performance": "labelled rows",
    "business": "events",
    "data_quality": "rows",
    "drift": "rows",
}
COLUMNS = [
    "model", "model_version", "variant", "layer", "grain", "checks", "verdicts",
    "estimated", "insufficient", "awaiting", "windows", "windows_evaluated", "windows_without_results",
    "typical_size", "needed", "reason", "state",
]  # fmt: skip


def layer_grains(store: Store, model: str) -> dict[str, str]:
    """Window size of each layer's alert rules: the model's monitoring plan (drift and data
    quality: its first calendar window; performance and business: its layer grain) and
    [alerts.infrastructure] grain; the defaults when the settings cannot be read."""
    from lifecycle.alerts.config import DEFAULTS, AlertConfigError, alert_config
    from lifecycle.monitoring_plan import MonitoringConfigError, monitoring_plan

    with store.cursor() as cur:
        spec = catalog.latest_spec(cur, model) or {}
    try:
        infra = alert_config(spec, model).section("infrastructure")["grain"]
    except (AlertConfigError, KeyError):
        infra = DEFAULTS["infrastructure"]["grain"]
    try:
        plan = monitoring_plan(store, model)
        grain = plan.layer_grain
        monitored = plan.calendar_grains[0] if plan.calendar_grains else grain
    except (MonitoringConfigError, KeyError):
        grain = monitored = DEFAULTS["grain"]
    by_layer = {"infrastructure": infra, "drift": monitored, "data_quality": monitored}
    return {layer: by_layer.get(layer, grain) for layer in LAYERS}


def evaluation_coverage(
    store: Store,
    model: str | list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    version: str | None = None,
    variant: str | None = None,
    as_of: datetime | None = None,
    by_version: bool = True,
) -> pd.DataFrame:
    """Coverage per (model, version, variant, layer) over windows that ended in
    (since, until]; with `by_version=False`, per (model, layer) with version and variant
    "*" (every version's windows of the chosen variant pooled: the model-level view).

    `as_of` is the time the evaluations were made (default: the newest check run's), so
    windows ending after it are not counted as missing and labels not yet due are known.
    """
    with store.cursor() as cur:
        names = catalog.model_names(cur)
    if model is not None:
        names = [m for m in names if m in ([model] if isinstance(model, str) else model)]
    if not names or not store.table_exists("alert_evaluations"):
        return pd.DataFrame(columns=COLUMNS)
    if as_of is None:
        as_of = store.query_one("SELECT max(as_of) FROM check_runs")[0]
    grains = {m: layer_grains(store, m) for m in names}
    with store.cursor() as cur:
        kpi_models = {m for m in names if catalog.model_kpis(cur, m)}
    g_models, g_layers, g_grains = [], [], []
    for m in names:
        for layer, grain in grains[m].items():
            if layer == "business" and m not in kpi_models:
                continue  # no KPI declared: nothing to evaluate
            g_models.append(m)
            g_layers.append(layer)
            g_grains.append(grain)
    keys = "model, model_version, variant" if by_version else "model"
    # traffic is counted from a week before the period: a lake reads those files only
    with lake_manifest.period(store, names, since and since - timedelta(days=7), until):
        frame = _coverage_frame(store, keys, by_version, {
            "models": names, "g_models": g_models, "g_layers": g_layers,
            "g_grains": g_grains, "since": since, "until": until, "as_of": as_of,
            "version": version, "variant": variant,
        })  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame["awaiting"] = _awaiting(store, frame, as_of)
    frame["state"] = [_state(r) for r in frame.itertuples(index=False)]
    frame["reason"] = [_reason(r) for r in frame.itertuples(index=False)]
    order = {layer: i for i, layer in enumerate(LAYERS)}
    frame = frame.sort_values(
        ["model", "model_version", "variant", "layer"],
        key=lambda s: s.map(order) if s.name == "layer" else s,
    )
    return frame[COLUMNS].reset_index(drop=True)


def _coverage_frame(store: Store, keys: str, by_version: bool, params: dict) -> pd.DataFrame:
    sql = _SQL.format(keys=keys, version_key="model_version" if by_version else "'*'",
                      variant_key="variant" if by_version else "'*'")  # fmt: skip
    return store.query_df(sql, params)


_SQL = """
WITH grains AS (
    SELECT unnest($g_models) AS model, unnest($g_layers) AS layer, unnest($g_grains) AS grain
),
spans AS (
    SELECT model, layer, grain, CASE grain WHEN 'hour' THEN INTERVAL 1 HOUR
           WHEN 'day' THEN INTERVAL 1 DAY WHEN 'week' THEN INTERVAL 7 DAY
           WHEN 'month' THEN INTERVAL 1 MONTH END AS span
    FROM grains
),
evals AS (
    SELECT e.model_name AS model, e.model_version, e.variant, e.layer, e.window_start,
           e.window_end, e.outcome, e.rule,
           coalesce(e.evidence->>'reason', e.summary) AS reason
    FROM alert_evaluations e JOIN grains g ON g.model = e.model_name AND g.layer = e.layer
         -- drift and quality may be monitored on several grains: count the one shown
         AND (g.layer NOT IN ('drift', 'data_quality') OR g.grain = e.grain)
    WHERE ($version IS NULL OR e.model_version = $version)
      AND ($variant IS NULL OR e.variant = $variant)
      AND ($since IS NULL OR e.window_end > $since)
      AND ($until IS NULL OR e.window_end <= $until)
      AND ($as_of IS NULL OR e.window_end <= $as_of)
),
hours AS (  -- traffic, counted once per hour, then bucketed at each layer's grain
    SELECT model_name AS model, model_version, variant, date_trunc('hour', ts) AS hour
    FROM predictions
    WHERE list_contains($models, model_name)
      AND ($version IS NULL OR model_version = $version)
      AND ($variant IS NULL OR variant = $variant)
      AND ($since IS NULL OR ts >= $since - INTERVAL 7 DAY)
      AND ($until IS NULL OR ts < $until)
    GROUP BY ALL
),
traffic AS (
    SELECT DISTINCT h.model, h.model_version, h.variant, s.layer,
           CASE s.grain WHEN 'hour' THEN h.hour WHEN 'day' THEN date_trunc('day', h.hour)
                WHEN 'month' THEN date_trunc('month', h.hour)
                ELSE date_trunc('week', h.hour) END AS window_start, s.span
    FROM hours h JOIN spans s ON s.model = h.model
),
traffic_windows AS (
    SELECT model, model_version, variant, layer, window_start,
           window_start + span AS window_end
    FROM traffic
    WHERE ($since IS NULL OR window_start + span > $since)
      AND ($until IS NULL OR window_start + span <= $until)
      AND ($as_of IS NULL OR window_start + span <= $as_of)
),
per_window AS (
    SELECT coalesce(e.model, t.model) AS model,
           coalesce(e.model_version, t.model_version) AS model_version,
           coalesce(e.variant, t.variant) AS variant,
           coalesce(e.layer, t.layer) AS layer,
           coalesce(e.window_start, t.window_start) AS window_start,
           coalesce(e.window_end, t.window_end) AS window_end,
           coalesce(e.checks, 0) AS checks, coalesce(e.verdicts, 0) AS verdicts
    FROM (SELECT model, model_version, variant, layer, window_start,
                 any_value(window_end) AS window_end, count(*) AS checks,
                 count(*) FILTER (WHERE outcome <> 'insufficient') AS verdicts
          FROM evals GROUP BY ALL) e
    FULL JOIN traffic_windows t USING (model, model_version, variant, layer, window_start)
),
windows AS (  -- one row per window of the grouping, versions pooled when asked
    SELECT {keys}, layer, window_start,
           sum(checks) AS checks, sum(verdicts) AS verdicts, max(window_end) AS window_end
    FROM per_window GROUP BY ALL
),
counted AS (
    SELECT {keys}, layer,
           count(*) AS windows,
           count(*) FILTER (WHERE verdicts > 0) AS windows_evaluated,
           count(*) FILTER (WHERE checks = 0) AS windows_without_results,
           list(epoch(window_end)) FILTER (WHERE verdicts = 0 AND layer = 'performance')
               AS unjudged_ends  -- performance windows whose labels may not be due yet
    FROM windows
    GROUP BY ALL
),
checks AS (
    SELECT {keys}, layer, count(*) AS checks,
           count(*) FILTER (WHERE outcome <> 'insufficient') AS verdicts,
           count(*) FILTER (WHERE outcome <> 'insufficient'
                            AND rule = 'estimated_performance') AS estimated,
           count(*) FILTER (WHERE outcome = 'insufficient') AS insufficient
    FROM evals GROUP BY ALL
),
patterns AS (  -- the most common reason (numbers aside), its typical size and minimum
    SELECT {keys}, layer, regexp_replace(reason, '[0-9]+', '#', 'g') AS pattern,
           count(*) AS n, min(reason) AS example, median(w_size) AS typical_size,
           max(w_needed) AS needed
    FROM (
        -- "only 24 ... at least 30 needed" (monitor, infrastructure, business) or
        -- "0 labelled rows; need 200" (performance): the window's size and the minimum
        -- or pooled performance: "(6 days, 144 labels): insufficient (need 1,000 labels"
        SELECT *, coalesce(
                   TRY_CAST(regexp_extract(reason, 'only ([0-9]+)', 1) AS DOUBLE),
                   TRY_CAST(regexp_extract(reason, '([0-9]+) labelled rows; need', 1) AS DOUBLE),
                   TRY_CAST(replace(regexp_extract(reason, ', ([0-9,]+) labels[)]: insufficient',
                                                   1), ',', '') AS DOUBLE)
               ) AS w_size,
               coalesce(
                   TRY_CAST(regexp_extract(reason, 'at least ([0-9]+) needed', 1) AS BIGINT),
                   TRY_CAST(regexp_extract(reason, 'labelled rows; need ([0-9]+)', 1) AS BIGINT),
                   TRY_CAST(replace(regexp_extract(reason, 'need ([0-9,]+) labels', 1), ',', '')
                            AS BIGINT)
               ) AS w_needed
        FROM evals WHERE outcome = 'insufficient'
    )
    GROUP BY {keys}, layer, pattern
    QUALIFY row_number() OVER (PARTITION BY {keys}, layer
                               ORDER BY n DESC, max(w_needed) IS NULL, pattern) = 1
)
SELECT c.model, {version_key} AS model_version, {variant_key} AS variant, c.layer,
       g.grain, coalesce(k.checks, 0) AS checks, coalesce(k.verdicts, 0) AS verdicts,
       coalesce(k.estimated, 0) AS estimated,
       coalesce(k.insufficient, 0) AS insufficient, c.unjudged_ends, c.windows,
       c.windows_evaluated, c.windows_without_results, p.typical_size, p.needed,
       p.example AS reason
FROM counted c
LEFT JOIN checks k USING ({keys}, layer)
LEFT JOIN patterns p USING ({keys}, layer)
JOIN grains g ON g.model = c.model AND g.layer = c.layer
"""
for _name in ("since", "until", "as_of"):  # typed, so that a NULL bound still binds
    _SQL = _SQL.replace(f"${_name}", f"CAST(${_name} AS TIMESTAMPTZ)")


def _awaiting(store: Store, frame: pd.DataFrame, as_of) -> list[int]:
    """Per row: performance windows without a verdict that ended less than the model's
    90th-percentile label delay before `as_of` (their labels are not due yet). The delay is
    measured only for models that have such windows."""
    delays: dict[str, pd.Timedelta | None] = {}
    out = []
    for row in frame.itertuples(index=False):
        ends = row.unjudged_ends
        if as_of is None or not isinstance(ends, list | tuple | np.ndarray) or len(ends) == 0:
            out.append(0)
            continue
        if row.model not in delays:
            delays[row.model] = label_delay_p90(store, row.model)
        delay = delays[row.model]
        if delay is None:
            out.append(0)
            continue
        cutoff = (pd.Timestamp(as_of) - delay).timestamp()
        out.append(int(sum(end > cutoff for end in ends)))
    return out


def label_delay_p90(store: Store, model: str) -> pd.Timedelta | None:
    """90th percentile of labeled_at - ts over a fixed sample of the model's labels (5,000:
    within a day of the full figure on the demo, at a third of the cost)."""
    seconds = store.query_one(
        "SELECT quantile_cont(epoch(l.labeled_at - p.ts), 0.9) FROM (SELECT prediction_id, "
        "labeled_at FROM labels WHERE model_name = ? USING SAMPLE reservoir(5000 ROWS) "
        "REPEATABLE (7)) l JOIN predictions p ON p.prediction_id = l.prediction_id "
        "AND p.model_name = ?",
        [model, model],
    )[0]
    return None if seconds is None else pd.Timedelta(seconds=float(seconds))


def _state(row) -> str:
    if row.windows == 0:
        return "no traffic"
    if row.verdicts == 0:
        unevaluated = row.windows - row.windows_evaluated
        if row.layer == "performance" and unevaluated and row.awaiting == unevaluated:
            return "awaiting labels"
        return "not evaluated"
    return "evaluated" if row.windows_evaluated == row.windows else "partly evaluated"


def _reason(row) -> str | None:
    """Why windows had no verdict: size and minimum where too little data is the cause."""
    size, needed = row.typical_size, row.needed
    if pd.notna(size) and pd.notna(needed) and size < needed:
        return f"{size:,.0f} {SIZE_WORDS[row.layer]} a window, {int(needed):,} needed"
    return row.reason if isinstance(row.reason, str) else None


def describe(row) -> str:
    """One line for people, e.g. `drift (0 of 28 checks had a verdict; all 7 windows
    insufficient: 24 rows a window, 30 needed)`."""
    return f"{row.layer} ({detail(row)})"


def detail(row) -> str:
    """What ran and, when something did not, why (with the size and the minimum); verdicts
    from estimated performance (labels pending) are counted apart."""
    head = f"{row.verdicts} of {row.checks} checks had a verdict"
    if getattr(row, "estimated", 0):
        head += f" ({row.estimated} of them estimated, labels pending)"
    if row.state == "no traffic":
        return "no traffic in the period"
    if row.checks == 0:
        return f"no rule evaluation in any of {row.windows} window(s) with traffic"
    if row.state == "evaluated":
        return head
    if row.state == "awaiting labels":
        return f"{head}; labels of its {row.windows} window(s) are not due yet"
    missing = row.windows - row.windows_evaluated
    if missing == row.windows:
        why = f"all {row.windows} windows insufficient"
    else:
        why = f"{missing} of {row.windows} windows without a verdict"
    return f"{head}; {why}" + (f": {row.reason}" if row.reason else "")


def not_evaluated(coverage: pd.DataFrame, layers=KEY_LAYERS) -> pd.DataFrame:
    """The rows whose layer (one of `layers`) had no verdict at all in the period."""
    if coverage.empty:
        return coverage
    return coverage[(coverage["state"] == "not evaluated") & coverage["layer"].isin(layers)]
