"""Incident figures: how fast people respond to alerts, per model and ISO week (UTC).

Per model and week, from the `alerts` table (one SQL statement for every week asked for):
- opened: alerts opened in the week, by the worst severity their episode reached;
- time to acknowledge: from opening to the first human response, i.e. the acknowledgement,
  or a person resolving it without acknowledging; counted in the week of that response;
- time to resolve: from opening to resolution (by a person or automatically), counted in the
  week of the resolution; median and worst, in hours;
- auto-resolved: resolutions in the week made by the alert lifecycle itself (healthy windows);
- open at the week's end (or at `as_of` for the running week): alerts opened before and not
  resolved then, how many of them nobody had acknowledged, and the oldest one's age.

Times come from the alert's own timestamps (`opened_at`, `acknowledged_at`, `resolved_at`),
which a check writes at its as-of time: a replayed history gives replayed response times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from lifecycle.alerts.lifecycle import SYSTEM
from lifecycle.store import Store

# (column, words, unit, lower is better) in the order pages and reports show them
FIGURES = (
    ("opened_critical", "critical alerts opened", "count", True),
    ("opened_warning", "warning alerts opened", "count", True),
    ("acknowledged", "alerts acknowledged", "count", None),
    ("tta_median_h", "time to acknowledge, median", "hours", True),
    ("tta_worst_h", "time to acknowledge, worst", "hours", True),
    ("resolved", "alerts resolved", "count", None),
    ("ttr_median_h", "time to resolve, median", "hours", True),
    ("ttr_worst_h", "time to resolve, worst", "hours", True),
    ("auto_resolved", "resolved automatically", "count", None),
    ("open_at_end", "open at the week's end", "count", True),
    ("unacknowledged_at_end", "of them never acknowledged", "count", True),
    ("oldest_open_h", "oldest open alert's age", "hours", True),
)
COLUMNS = tuple(f[0] for f in FIGURES)

_SQL = """
WITH weeks AS (
    SELECT unnest(?::TIMESTAMPTZ[]) AS week_start
), a AS (
    SELECT {model_key} AS model_name, opened_at, resolved_at, resolved_by,
           coalesce(worst_severity, severity) AS worst,
           coalesce(acknowledged_at,
                    CASE WHEN NOT starts_with(coalesce(resolved_by, ''), 'system:')
                         THEN resolved_at END) AS responded_at,
           acknowledged_at
    FROM alerts WHERE (? IS NULL OR list_contains(?, model_name))
), grid AS (
    SELECT m.model_name, w.week_start, w.week_start + INTERVAL 7 DAY AS week_end,
           least(w.week_start + INTERVAL 7 DAY, ?::TIMESTAMPTZ) AS cutoff
    FROM (SELECT DISTINCT model_name FROM a) m CROSS JOIN weeks w
)
SELECT g.model_name, g.week_start,
    count(a.opened_at) FILTER (WHERE a.opened_at >= g.week_start AND a.opened_at < g.week_end
                               AND a.worst = 'critical') AS opened_critical,
    count(a.opened_at) FILTER (WHERE a.opened_at >= g.week_start AND a.opened_at < g.week_end
                               AND a.worst <> 'critical') AS opened_warning,
    count(a.responded_at) FILTER (WHERE a.responded_at >= g.week_start
                                  AND a.responded_at < g.week_end) AS acknowledged,
    median(epoch(a.responded_at - a.opened_at) / 3600.0) FILTER (
        WHERE a.responded_at >= g.week_start AND a.responded_at < g.week_end) AS tta_median_h,
    max(epoch(a.responded_at - a.opened_at) / 3600.0) FILTER (
        WHERE a.responded_at >= g.week_start AND a.responded_at < g.week_end) AS tta_worst_h,
    count(a.resolved_at) FILTER (WHERE a.resolved_at >= g.week_start
                                 AND a.resolved_at < g.week_end) AS resolved,
    median(epoch(a.resolved_at - a.opened_at) / 3600.0) FILTER (
        WHERE a.resolved_at >= g.week_start AND a.resolved_at < g.week_end) AS ttr_median_h,
    max(epoch(a.resolved_at - a.opened_at) / 3600.0) FILTER (
        WHERE a.resolved_at >= g.week_start AND a.resolved_at < g.week_end) AS ttr_worst_h,
    count(a.resolved_at) FILTER (WHERE a.resolved_at >= g.week_start
                                 AND a.resolved_at < g.week_end
                                 AND a.resolved_by = ?) AS auto_resolved,
    count(a.opened_at) FILTER (WHERE a.opened_at < g.cutoff
                               AND (a.resolved_at IS NULL OR a.resolved_at >= g.cutoff))
        AS open_at_end,
    count(a.opened_at) FILTER (WHERE a.opened_at < g.cutoff
                               AND (a.resolved_at IS NULL OR a.resolved_at >= g.cutoff)
                               AND (a.acknowledged_at IS NULL OR a.acknowledged_at >= g.cutoff))
        AS unacknowledged_at_end,
    max(epoch(g.cutoff - a.opened_at) / 3600.0) FILTER (
        WHERE a.opened_at < g.cutoff AND (a.resolved_at IS NULL OR a.resolved_at >= g.cutoff))
        AS oldest_open_h
FROM grid g LEFT JOIN a ON a.model_name = g.model_name
WHERE g.week_start < ?::TIMESTAMPTZ
GROUP BY g.model_name, g.week_start
ORDER BY g.model_name, g.week_start
"""


def weekly_incidents(
    store: Store,
    weeks: list[datetime],
    *,
    models: list[str] | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """One row per (model with any alert, week start) for each Monday in `weeks` that began
    before `as_of` (default now); COLUMNS as described in the module docstring."""
    return _query(store, weeks, models, as_of or datetime.now(UTC), pooled=False)


def _query(store, weeks, models, as_of, *, pooled: bool) -> pd.DataFrame:
    # pooled: every model's alerts as one model named "*" (medians over all alerts)
    sql = _SQL.format(model_key="'*'" if pooled else "model_name")
    frame = store.query_df(sql, [list(weeks), models, models, as_of, SYSTEM, as_of])
    for column in COLUMNS:
        if not column.endswith("_h"):
            frame[column] = frame[column].astype(int)
    return frame


def week_starts(end: datetime, weeks: int) -> list[datetime]:
    """The Mondays (00:00 UTC) of the `weeks` ISO weeks up to the one holding `end`."""
    day = pd.Timestamp(end).tz_convert(UTC) if pd.Timestamp(end).tzinfo else pd.Timestamp(
        end, tz=UTC)  # fmt: skip
    monday = (day - pd.Timedelta(days=day.weekday())).normalize().to_pydatetime()
    return [monday - timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]


@dataclass
class IncidentWeek:
    """One week's incident figures beside the week before (for one model or all)."""

    this_week: dict[str, Any]
    last_week: dict[str, Any]

    @property
    def any_alerts(self) -> bool:
        return any(
            _number(week.get(c)) for week in (self.this_week, self.last_week) for c in COLUMNS
        )

    def rows(self) -> list[dict[str, str]]:
        """Figure, last week, this week and the change, as text, in FIGURES order."""
        return [
            {
                "figure": words,
                "last week": fmt(self.last_week.get(column), unit),
                "this week": fmt(self.this_week.get(column), unit),
                "change": change(self.last_week.get(column), self.this_week.get(column), unit),
            }
            for column, words, unit, _ in FIGURES
        ]


def incident_week(
    store: Store,
    week_start: datetime,
    *,
    models: list[str] | None = None,
    as_of: datetime | None = None,
) -> IncidentWeek:
    """The week starting at `week_start` and the one before, over `models` (default every
    model) taken together: counts add up, medians are over all their alerts, worst is the
    worst and the oldest open age the oldest."""
    previous = week_start - timedelta(weeks=1)
    frame = _query(store, [previous, week_start], models, as_of or datetime.now(UTC), pooled=True)
    by_week = {pd.Timestamp(r["week_start"]): r for r in frame.to_dict("records")}
    return IncidentWeek(
        this_week=by_week.get(pd.Timestamp(week_start), {}),
        last_week=by_week.get(pd.Timestamp(previous), {}),
    )


def _number(value) -> float:
    if value is None:
        return 0.0
    value = float(value)
    return 0.0 if math.isnan(value) else value


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value, unit: str) -> str:
    """A figure in words: counts as integers, durations in hours or days ('-' when none)."""
    if _missing(value):
        return "-"
    if unit == "count":
        return f"{int(value):,}"
    hours = float(value)
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def change(before, now, unit: str) -> str:
    """Week-over-week change in words: '+3', '-1.5 h', 'new' or '' (no comparison)."""
    if _missing(now) or _missing(before):
        return "" if _missing(now) else "new"
    delta = float(now) - float(before)
    if unit == "count":
        return f"{delta:+,.0f}" if delta else "="
    if abs(delta) < 1 / 60:
        return "="
    sign = "+" if delta > 0 else "-"
    return sign + fmt(abs(delta), unit)
