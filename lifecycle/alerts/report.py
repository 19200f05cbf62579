"""The weekly model-health review: one ISO week, model by model.

For each model: status per layer this week and last (worst rule outcome of the production
traffic over the windows that ended in the week, on the model's declared grains
(lifecycle.monitoring_plan), from `alert_evaluations`), what changed, key figures against last week (from
lifecycle.layers), alerts open / raised / resolved in the week, incident response against last
week (time to acknowledge and resolve, lifecycle.alerts.incidents), decisions taken (audit log),
whether retraining is due, and links to the evidence. Rendered as Markdown or as one
self-contained HTML file (plotly.js inlined, no external resources) by `to_markdown` /
`to_html`, from the Weekly review page or `python -m lifecycle report --db PATH
--week YYYY-Www --out FILE` (.md or .html).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from lifecycle import catalog
from lifecycle.alerts import incidents as incident_figures
from lifecycle.alerts.lifecycle import list_alerts
from lifecycle.alerts.links import absolute, alert_link, app_url_note, evidence_link
from lifecycle.alerts.retraining import recommendation
from lifecycle.alerts.rules import LAYERS
from lifecycle.markdown import escape as _md
from lifecycle.monitoring_plan import MonitoringConfigError, monitoring_plan
from lifecycle.store import Store

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
STATUS_RANK = {"no data": -1, "ok": 0, "warning": 1, "critical": 2}
STATUS_ICON = {
    "no data": "·",
    "ok": "OK",
    "warning": "WARNING",
    "critical": "CRITICAL",
    "not evaluated": "NOT EVALUATED",
    "awaiting labels": "awaiting labels",
}
# coverage states (lifecycle.coverage) shown instead of a verdict when a layer had none
UNJUDGED = ("not evaluated", "awaiting labels")
SYSTEM_ACTIONS = ("alert_repeated", "alert_notified", "alert_notify_failed")


def parse_week(text: str) -> tuple[datetime, datetime]:
    """'2026-W46' -> (Monday 00:00 UTC, next Monday 00:00 UTC)."""
    match = WEEK.match(text or "")
    if not match:
        raise ValueError(f"week {text!r} is not in the form YYYY-Www, e.g. 2026-W46")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        start = datetime.fromisocalendar(year, week, 1).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"week {text!r} does not exist: {exc}") from exc
    return start, start + timedelta(weeks=1)


def week_of(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class ModelWeek:
    model: str
    task: str
    risk_tier: str
    production_version: str | None
    status: dict[str, str]  # layer -> worst outcome this week
    previous: dict[str, str]  # layer -> worst outcome last week
    figures: list[dict[str, Any]] = field(default_factory=list)  # key figure rows
    alerts: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    retraining: dict[str, Any] = field(default_factory=dict)
    daily: pd.DataFrame = field(default_factory=pd.DataFrame)  # day x layer -> rank
    notes: list[str] = field(default_factory=list)
    windows: str = ""  # the monitoring plan, in words
    grain: str = "day"  # the plan's calendar grain (evidence links)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)  # layer -> this week's
    # drifting features of the production version, most impactful first (_drift)
    drift: list[dict[str, Any]] = field(default_factory=list)
    drift_note: str | None = None  # why they are ranked by severity, not impact
    # layers whose shown verdict rests on estimated performance (labels pending): this week's
    # and last week's; shown as "ok (estimated)" wherever the verdict is
    estimated: set[str] = field(default_factory=set)
    estimated_before: set[str] = field(default_factory=set)
    estimated_days: set[pd.Timestamp] = field(default_factory=set)  # the same, per day
    # incident response this week beside last week (lifecycle.alerts.incidents): rows of
    # figure / last week / this week / change; empty when neither week saw an alert
    incidents: list[dict[str, str]] = field(default_factory=list)

    def status_text(self, layer: str, *, previous: bool = False) -> str:
        """The layer's verdict in words, marked "(estimated)" when it rests on estimates."""
        status = (self.previous if previous else self.status)[layer]
        marked = layer in (self.estimated_before if previous else self.estimated)
        return f"{status} (estimated)" if marked and status in STATUS_RANK else status

    def status_icon(self, layer: str) -> str:
        icon = STATUS_ICON[self.status[layer]]
        return f"{icon} (estimated)" if layer in self.estimated else icon

    @property
    def changes(self) -> list[str]:
        out = []
        for layer in LAYERS:
            now = self.status_text(layer)
            before = self.status_text(layer, previous=True)
            if now != before:
                out.append(f"{layer}: {before} -> {now}")
        opened = [a for a in self.alerts if a["new_this_week"]]
        if opened:
            out.append(f"{len(opened)} new alert(s)")
        resolved = [a for a in self.alerts if a["resolved_this_week"]]
        if resolved:
            out.append(f"{len(resolved)} alert(s) resolved")
        return out

    @property
    def overall(self) -> str:
        """Worst verdict; "not evaluated" rather than "ok" when drift or performance had
        no verdict at all this week (lifecycle.coverage.KEY_LAYERS)."""
        from lifecycle.coverage import KEY_LAYERS

        worst = max((v for v in self.status.values() if v in STATUS_RANK),
                    key=STATUS_RANK.__getitem__, default="no data")  # fmt: skip
        if worst in ("warning", "critical"):
            return worst
        if any(self.status[layer] == "not evaluated" for layer in KEY_LAYERS):
            return "not evaluated"
        return worst

    def coverage_text(self, layer: str) -> str:
        """Checks with a verdict this week, and why the others had none."""
        row = self.coverage.get(layer)
        return row["text"] if row else "no traffic, no evaluation"


@dataclass
class WeeklyReview:
    week: str
    start: datetime
    end: datetime
    generated_at: datetime
    models: list[ModelWeek]
    app_url: str | None = None

    def link(self, relative: str) -> str:
        return absolute(relative, self.app_url)

    @property
    def links_note(self) -> tuple[str, str]:
        """(base URL of the report's links, where it came from)."""
        return app_url_note(self.app_url)


def weekly_review(
    store: Store, week: str, *, models: list[str] | None = None, app_url: str | None = None
) -> WeeklyReview:
    start, end = parse_week(week)
    with store.cursor() as cur:
        names = models or catalog.model_names(cur)
        infos = {m: catalog.model_info(cur, m) for m in names}
    out = [_model_week(store, infos[m], start, end) for m in names]
    return WeeklyReview(week, start, end, datetime.now(UTC), out, app_url)


def _model_week(store: Store, info: dict, start: datetime, end: datetime) -> ModelWeek:
    model = info["name"]
    rec = recommendation(store, model, as_of=end)
    status, daily, covered = _layer_status(store, model, start, end)
    previous, _, _ = _layer_status(store, model, start - timedelta(weeks=1), start)
    estimated_days = _estimated_days(store, model, start, end)
    estimated = {"performance"} if estimated_days and _estimated_layers(
        store, model, start, end) else set()  # fmt: skip
    estimated_before = _estimated_layers(store, model, start - timedelta(weeks=1), start)
    week = ModelWeek(
        model=model,
        task=info["task"],
        risk_tier=info["risk_tier"],
        production_version=rec.version,
        status=status,
        previous=previous,
        retraining={**rec.to_dict(), "text": rec.text()},
        daily=daily,
        coverage=covered,
        estimated=estimated,
        estimated_before=estimated_before,
        estimated_days=estimated_days,
    )
    try:
        plan = monitoring_plan(store, model)
        week.windows, week.grain = plan.describe(), plan.layer_grain
    except MonitoringConfigError as exc:
        week.notes.append(str(exc))
    week.alerts = _alerts(store, model, start, end)
    response = incident_figures.incident_week(store, start, models=[model])
    week.incidents = response.rows() if response.any_alerts else []
    week.decisions = _decisions(store, model, start, end)
    week.drift, week.drift_note = _drift(store, model, rec.version, week.grain, start, end)
    try:
        week.figures = _figures(store, model, info["task"], start, end)
    except Exception as exc:  # the review still shows alerts and decisions
        week.notes.append(f"key figures unavailable: {type(exc).__name__}: {exc}")
    return week


def _layer_status(store: Store, model: str, start: datetime, end: datetime):
    """Worst outcome per layer (production traffic), a day x layer table of ranks (-1: only
    insufficient evaluations that day) and the week's evaluation coverage per layer.

    A window counts in the week it ended in (a daily window on its own day, a weekly one on
    its Sunday, a monthly one on the month's last day), whatever grain it has. A layer
    without a single verdict is "not evaluated" (or "awaiting labels"), never "ok" and never
    silently "no data" (lifecycle.coverage)."""
    from lifecycle import coverage

    frame = store.query_df(
        "SELECT date_trunc('day', window_end - INTERVAL 1 MICROSECOND) AS day, layer, "
        "max(CASE outcome WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 WHEN 'ok' THEN 0 "
        "ELSE -1 END) AS rank FROM alert_evaluations WHERE model_name = ? "
        "AND variant = 'production' AND window_end > ? AND window_end <= ? "
        "GROUP BY ALL ORDER BY 1, 2",
        [model, start, end],
    )
    covered = coverage.evaluation_coverage(store, model, start, end, variant="production",
                                           by_version=False)  # fmt: skip
    rows = {
        r.layer: {"state": r.state, "verdicts": int(r.verdicts), "checks": int(r.checks),
                  "insufficient": int(r.insufficient), "windows": int(r.windows),
                  "text": coverage.detail(r)}
        for r in covered.itertuples(index=False)
    }  # fmt: skip
    names = {v: k for k, v in STATUS_RANK.items()}
    status = {}
    for layer in LAYERS:
        ranks = frame.loc[(frame.layer == layer) & (frame["rank"] >= 0), "rank"]
        state = rows.get(layer, {}).get("state")
        if len(ranks):
            status[layer] = names[int(ranks.max())]
        else:
            status[layer] = state if state in UNJUDGED else "no data"
    daily = frame.pivot(index="day", columns="layer", values="rank") if len(frame) else frame
    return status, daily, rows


_ESTIMATED_SQL = """
    SELECT {group} max(CASE WHEN rule = 'estimated_performance' THEN rank END) AS estimated,
           max(CASE WHEN rule <> 'estimated_performance' THEN rank END) AS realized
    FROM (SELECT rule, date_trunc('day', window_end - INTERVAL 1 MICROSECOND) AS day,
                 CASE outcome WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 WHEN 'ok' THEN 0
                 END AS rank
          FROM alert_evaluations WHERE model_name = ? AND variant = 'production'
          AND layer = 'performance' AND window_end > ? AND window_end <= ?
          AND outcome <> 'insufficient')
    {group_by}
"""


def _from_estimates(estimated, realized) -> bool:
    """The worst verdict came from estimated performance alone (labels pending)."""
    return estimated is not None and (realized is None or realized < estimated)


def _estimated_layers(store: Store, model: str, start: datetime, end: datetime) -> set[str]:
    """Layers whose worst verdict of the week (production traffic) came from estimated
    performance alone: no realized verdict as bad or worse (labels pending)."""
    row = store.query_one(_ESTIMATED_SQL.format(group="", group_by=""), [model, start, end])
    return {"performance"} if row and _from_estimates(*row) else set()


def _estimated_days(store: Store, model: str, start: datetime, end: datetime) -> set:
    """The days (as the status heatmap counts them) whose performance verdict came from
    estimates alone."""
    rows = store.query_all(_ESTIMATED_SQL.format(group="day,", group_by="GROUP BY day"),
                           [model, start, end])  # fmt: skip
    return {pd.Timestamp(day) for day, est, real in rows if _from_estimates(est, real)}


def _alerts(store: Store, model: str, start: datetime, end: datetime) -> list[dict]:
    frame = list_alerts(store, model=model, since=start, until=end)
    rows = []
    for a in frame.to_dict("records"):
        resolved_at = a["resolved_at"]
        rows.append(
            {
                **{
                    k: a[k]
                    for k in (
                        "alert_id",
                        "model_version",
                        "variant",
                        "layer",
                        "rule",
                        "subject",
                        "severity",
                        "state",
                        "count",
                        "summary",
                        "response",
                        "acknowledged_by",
                        "ack_comment",
                        "resolution",
                    )
                },
                "first_seen": pd.Timestamp(a["first_seen"]),
                "last_seen": pd.Timestamp(a["last_seen"]),
                "new_this_week": pd.Timestamp(a["first_seen"]) >= pd.Timestamp(start),
                "resolved_this_week": a["state"] == "resolved"
                and resolved_at is not None
                and not pd.isna(resolved_at)
                and pd.Timestamp(start) <= pd.Timestamp(resolved_at) < pd.Timestamp(end),
                "link": alert_link(a),
            }
        )
    return rows


def _drift(store: Store, model: str, version: str | None, grain: str, start: datetime,
           end: datetime) -> tuple[list[dict], str | None]:  # fmt: skip
    """Features whose data drift was flagged in the production version's windows starting
    this week (production traffic, against its reference), most impactful first
    (lifecycle.drift_impact), and why they are ranked by severity when there is no valid
    importance profile."""
    from lifecycle import drift_impact
    from lifecycle.drift.results import results

    if version is None:
        return [], None
    stored = results(store, model, version=version, variant="production", grain=grain,
                     check="data_drift", since=start, until=end, reference="spec")  # fmt: skip
    ranking = drift_impact.impact_ranking(stored)
    if ranking.empty:
        return [], None
    note = drift_impact.profile_note(drift_impact.importance_profile(store, model, version))
    return ranking.to_dict("records"), note


def drift_heading(week: ModelWeek) -> str:
    by_impact = any(row["impact"] is not None and not pd.isna(row["impact"]) for row in week.drift)
    order = "by impact (importance x effect)" if by_impact else "by severity"
    return f"Drifting features this week ({len(week.drift)}), {order}"


def drift_item(row: dict) -> str:
    """One drifting feature in words: its importance, impact, peak finding and response."""
    from lifecycle.drift_impact import number, share_text

    impact = number(row["impact"])
    share = number(row["importance"])
    head = row["feature"] + (f": {share_text(share)}, impact {impact:.2f}" if share is not None
                             and impact is not None else "")  # fmt: skip
    capped = " (capped: below [drift] min_importance)" if row["capped"] else ""
    response = row["response"] + capped
    return (
        f"{head}; {row['severity']} ({row['method']} {row['effect_size']:.3g}, window of "
        f"{pd.Timestamp(row['window_start']):%Y-%m-%d}), {row['windows_flagged']} window(s) "
        f"flagged; response: {response}"
    )


def _decisions(store: Store, model: str, start: datetime, end: datetime) -> list[dict]:
    frame = store.query_df(
        "SELECT ts, actor, action, version, from_state, to_state, reason FROM audit_log "
        "WHERE model_name = ? AND ts >= ? AND ts < ? AND NOT list_contains(?, action) "
        "AND NOT (starts_with(action, 'alert_') AND starts_with(actor, 'system')) "
        "ORDER BY ts, audit_id",
        [model, start, end, list(SYSTEM_ACTIONS)],
    )
    return frame.to_dict("records")


def _figures(store: Store, model: str, task: str, start: datetime, end: datetime) -> list[dict]:
    """Key production figures this week vs last week (per layer), from lifecycle.layers."""
    from lifecycle import layers

    since = start - timedelta(weeks=1)
    rows = []

    def add(layer, name, frame, column, fmt, link_layer=None):
        if frame.empty or column not in frame:
            return
        prod = frame[frame["variant"] == "production"]
        by_week = prod.groupby("window_start")[column].mean()
        this = by_week.get(pd.Timestamp(start), float("nan"))
        last = by_week.get(pd.Timestamp(since), float("nan"))
        rows.append({"layer": layer, "figure": name, "this_week": this, "last_week": last,
                     "format": fmt})  # fmt: skip

    infra = layers.infra_windows(store, model, grain="week", since=since, until=end)
    add("infrastructure", "requests", infra, "requests", "{:,.0f}")
    add("infrastructure", "error rate", infra, "error_rate", "{:.2%}")
    add("infrastructure", "latency p95 (ms)", infra, "latency_p95", "{:.0f}")
    perf = layers.performance_windows(store, model, grain="week", since=since, until=end,
                                      as_of=end)  # fmt: skip
    metric = {"regression": "mae", "binary_classification": "roc_auc"}.get(task, "accuracy")
    add("performance", f"{metric} (labels by week end)", perf, metric, "{:.3f}")
    realized = next((r for r in rows if r["figure"].startswith(f"{metric} (labels")), None)
    if realized is None or pd.isna(realized["this_week"]) or pd.isna(realized["last_week"]):
        estimated = _estimated_figure(store, model, metric, start, end)
        if estimated is not None:  # labels pending: what the predictions say meanwhile
            rows.append(estimated)
    add("performance", "label coverage", perf, "coverage", "{:.0%}")
    business = layers.business_windows(store, model, grain="week", since=since, until=end)
    for kpi, frame in business.groupby("kpi") if not business.empty else []:
        add("business", kpi, frame, "value_mean", "{:.3f}")
    return rows


def _estimated_figure(store: Store, model: str, metric: str, start, end) -> dict | None:
    """The metric estimated from the week's predictions (labels pending): the mean of the
    estimates of the production windows that ended in each week, weighted by their
    predictions (lifecycle.layers.estimated_windows, at the model's monitored grain); None
    without any estimate in either week."""
    from lifecycle import layers
    from lifecycle.coverage import layer_grains

    grain = layer_grains(store, model)["drift"]
    since = start - timedelta(weeks=1)
    est = layers.estimated_windows(store, model, grain=grain, variant="production",
                                   since=since - timedelta(days=31), until=end)  # fmt: skip
    est = est[(est["metric"] == metric) & est["estimate"].notna()]
    values, counts = {}, {}
    for key, lo, hi in (("this_week", start, end), ("last_week", since, start)):
        ended = (est["window_end"] > pd.Timestamp(lo)) & (est["window_end"] <= pd.Timestamp(hi))
        weights = est.loc[ended, "predictions"].astype(float)
        counts[key] = int(weights.sum())
        mean = (est.loc[ended, "estimate"] * weights).sum() / counts[key] if counts[key] else None
        values[key] = float("nan") if mean is None else float(mean)
    if not any(counts.values()):
        return None
    return {"layer": "performance", "this_week": values["this_week"],
            "last_week": values["last_week"], "format": "{:.3f}",
            "figure": f"{metric} (estimated, labels pending; {counts['this_week']:,} "
                      f"predictions)"}  # fmt: skip


# -- charts ----------------------------------------------------------------------------------------


def status_figure(week: ModelWeek, start: datetime, end: datetime) -> go.Figure:
    """Heatmap: worst outcome per layer and day of the week (production traffic)."""
    days = pd.date_range(start, end - timedelta(days=1), freq="D", tz="UTC")
    daily = week.daily.reindex(index=days) if len(week.daily) else pd.DataFrame(index=days)
    z = [[_cell(daily, day, layer) for day in days] for layer in LAYERS]
    words = {None: "no data", -1: "not evaluated", 0: "ok", 1: "warning", 2: "critical"}
    text = [[words[v] + (" (est.)" if layer == "performance" and v is not None and v >= 0
                         and day in week.estimated_days else "")
             for v, day in zip(row, days, strict=True)]
            for row, layer in zip(z, LAYERS, strict=True)]  # fmt: skip
    fig = go.Figure(
        go.Heatmap(
            z=[[None if v is None else v for v in row] for row in z],
            x=[d.strftime("%a %d %b") for d in days],
            y=list(LAYERS),
            text=text,
            texttemplate="%{text}",
            zmin=-1,  # only insufficient evaluations that day: grey, never green
            zmax=2,
            colorscale=[
                [0, "#bdbdbd"],
                [0.25, "#bdbdbd"],
                [0.34, "#2e7d32"],
                [0.5, "#2e7d32"],
                [0.67, "#f9a825"],
                [1, "#c62828"],
            ],
            showscale=False,
            hovertemplate="%{y} %{x}: %{text}<extra></extra>",
        )
    )
    note = " (est.: from estimated performance, labels pending)" if week.estimated_days else ""
    fig.update_layout(
        title=f"{week.model}: status per layer and day (production){note}",
        height=300,
        margin={"l": 110, "r": 20, "t": 50, "b": 40},
    )
    return fig


def _cell(daily: pd.DataFrame, day, layer):
    if layer not in daily.columns:
        return None
    value = daily.at[day, layer]
    return None if pd.isna(value) else int(value)


# -- Markdown and HTML --------------------------------------------------------------------------


def _fmt(value, fmt: str) -> str:
    return "n/a" if value is None or pd.isna(value) else fmt.format(value)


def _when(ts) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M")


def to_markdown(review: WeeklyReview) -> str:
    out = [
        f"# Weekly model-health review {review.week}",
        "",
        f"{review.start:%Y-%m-%d} to {review.end - timedelta(days=1):%Y-%m-%d} (UTC); "
        f"generated {review.generated_at:%Y-%m-%d %H:%M} UTC.",
        "",
        "Links in this report open the console at [{0}]({0}) ({1}).".format(
            review.links_note[0], _md(review.links_note[1])
        ),
        "",
        "| model | production | overall | " + " | ".join(LAYERS) + " | retraining |",
        "|---|---|---|" + "---|" * len(LAYERS) + "---|",
    ]
    for m in review.models:
        out.append(
            f"| {_md(m.model)} | {_md(m.production_version) if m.production_version else '-'} | {STATUS_ICON[m.overall]} | "
            + " | ".join(m.status_icon(layer) for layer in LAYERS)
            + f" | {'due' if m.retraining.get('due') else 'not due'} |"
        )
    for m in review.models:
        out += ["", f"## {_md(m.model)}", ""]
        out.append(
            f"{_md(m.task)}, risk tier {_md(m.risk_tier)}; production version "
            f"{_md(m.production_version or 'none')}. "
            f"[Model health]({review.link(evidence_link(m.model, m.production_version or '', 'performance', grain=m.grain))})"
        )
        if m.windows:
            out += ["", f"Monitored on {_md(m.windows)}."]
        out += [
            "",
            "**What changed since last week:** " + ("; ".join(map(_md, m.changes)) or "nothing"),
        ]
        out += [
            "",
            "| layer | last week | this week | checks with a verdict this week |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {layer} | {m.status_text(layer, previous=True)} | {m.status_text(layer)} | "
            f"{_md(m.coverage_text(layer))} |"
            for layer in LAYERS
        ]
        if m.figures:
            out += ["", "| figure | last week | this week |", "|---|---|---|"]
            out += [
                f"| {f['layer']}: {_md(f['figure'])} | {_fmt(f['last_week'], f['format'])} | "
                f"{_fmt(f['this_week'], f['format'])} |"
                for f in m.figures
            ]
        if m.drift:
            out += ["", f"**{drift_heading(m)}:**", ""]
            out += [f"- {_md(drift_item(row))}" for row in m.drift]
            out += ["", f"_{_md(m.drift_note)}_"] if m.drift_note else []
        out += ["", f"**Alerts ({len(m.alerts)}):**", ""]
        if not m.alerts:
            out.append("None.")
        for a in m.alerts:
            flags = ", ".join(
                x
                for x, on in (("new", a["new_this_week"]), ("resolved", a["resolved_this_week"]))
                if on
            )
            out.append(
                f"- **{a['severity']}** #{a['alert_id']} {_md(a['model_version'])} {a['variant']} "
                f"{a['layer']} / {_md(a['rule'])} / {_md(a['subject'])} ({a['state']}"
                f"{', ' + flags if flags else ''}; {a['count']} window(s) "
                f"{_when(a['first_seen'])} to {_when(a['last_seen'])}): {_md(a['summary'])}. "
                f"Response: {_md(a['response'])}. [evidence]({review.link(a['link'])})"
            )
        out += ["", "**Incident response (this week against last week):**", ""]
        if not m.incidents:
            out.append("No alert opened, answered or open in either week.")
        else:
            out += ["| figure | last week | this week | change |", "|---|---|---|---|"]
            out += [
                f"| {r['figure']} | {r['last week']} | {r['this week']} | {r['change']} |"
                for r in m.incidents
            ]
        out += ["", f"**Decisions ({len(m.decisions)}):**", ""]
        if not m.decisions:
            out.append("None.")
        for d in m.decisions:
            change = f" {d['from_state'] or ''} -> {d['to_state']}" if d["to_state"] else ""
            out.append(
                f"- {_when(d['ts'])} {_md(d['actor'])}: {d['action']} {_md(d['version'] or '')}"
                f"{change}: {_md(d['reason'] or '')}"
            )
        out += ["", f"**Retraining:** {_md(m.retraining.get('text', 'n/a'))}"]
        out += ["", *[f"_{_md(n)}_" for n in m.notes]] if m.notes else []
    return "\n".join(out) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2328;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;
text-align:left}th{background:#f6f8fa}.ok{background:#e6f4ea}.warning{background:#fff4ce}
.critical{background:#fde2e1}.unjudged{background:#e0e0e0}.muted{color:#57606a}h2{border-bottom:1px solid #d0d7de;
padding-bottom:.3rem;margin-top:2.5rem}li{margin:.3rem 0}
"""


def to_html(review: WeeklyReview) -> str:
    """One self-contained HTML file: inline CSS, plotly.js inlined once, no external URLs."""
    from plotly.offline import get_plotlyjs

    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Weekly model-health review {e(review.week)}</title>",
        f"<style>{CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>Weekly model-health review {e(review.week)}</h1>",
        f"<p class='muted'>{review.start:%Y-%m-%d} to "
        f"{review.end - timedelta(days=1):%Y-%m-%d} (UTC); generated "
        f"{review.generated_at:%Y-%m-%d %H:%M} UTC.</p>",
        "<p class='muted'>Links in this report open the console at <a href='{0}'>{0}</a> "
        "({1}).</p>".format(e(review.links_note[0]), e(review.links_note[1])),
        "<table><tr><th>model</th><th>production</th><th>overall</th>"
        + "".join(f"<th>{e(layer)}</th>" for layer in LAYERS)
        + "<th>retraining</th></tr>",
    ]
    for m in review.models:
        parts.append(
            f"<tr><td><a href='#{e(m.model)}'>{e(m.model)}</a></td>"
            f"<td>{e(m.production_version or '-')}</td>"
            + _status_cell(m.overall)
            + "".join(_status_cell(m.status[layer], layer in m.estimated) for layer in LAYERS)
            + f"<td>{'due' if m.retraining.get('due') else 'not due'}</td></tr>"
        )
    parts.append("</table>")
    for m in review.models:
        parts.append(_model_html(review, m))
    parts.append("</body></html>")
    return "\n".join(parts)


def _status_cell(status: str, estimated: bool = False) -> str:
    css = status if status in ("ok", "warning", "critical") else ""
    css = "unjudged" if status in UNJUDGED else css
    text = f"{status} (estimated)" if estimated and status in STATUS_RANK else status
    return f"<td class='{css}'>{html.escape(text)}</td>"


def _model_html(review: WeeklyReview, m: ModelWeek) -> str:
    e = html.escape
    health = review.link(
        evidence_link(m.model, m.production_version or "", "performance", grain=m.grain)
    )
    parts = [
        f"<h2 id='{e(m.model)}'>{e(m.model)}</h2>",
        f"<p>{e(m.task)}, risk tier {e(m.risk_tier)}; production version "
        f"{e(m.production_version or 'none')}. <a href='{e(health)}'>Model health</a>"
        + (f" · monitored on {e(m.windows)}" if m.windows else "")
        + "</p>",
        f"<p><b>What changed since last week:</b> {e('; '.join(m.changes) or 'nothing')}</p>",
        status_figure(m, review.start, review.end).to_html(
            full_html=False, include_plotlyjs=False, config={"displayModeBar": False}
        ),
        "<table><tr><th>layer</th><th>last week</th><th>this week</th>"
        "<th>checks with a verdict this week</th></tr>",
        *[
            f"<tr><td>{e(layer)}</td>"
            f"{_status_cell(m.previous[layer], layer in m.estimated_before)}"
            f"{_status_cell(m.status[layer], layer in m.estimated)}"
            f"<td>{e(m.coverage_text(layer))}</td></tr>"
            for layer in LAYERS
        ],
        "</table>",
    ]
    if m.figures:
        parts.append("<table><tr><th>figure</th><th>last week</th><th>this week</th></tr>")
        parts += [
            f"<tr><td>{e(f['layer'])}: {e(f['figure'])}</td>"
            f"<td>{e(_fmt(f['last_week'], f['format']))}</td>"
            f"<td>{e(_fmt(f['this_week'], f['format']))}</td></tr>"
            for f in m.figures
        ]
        parts.append("</table>")
    if m.drift:
        parts.append(f"<h3>{e(drift_heading(m))}</h3><ul>")
        parts += [f"<li>{e(drift_item(row))}</li>" for row in m.drift]
        parts.append("</ul>")
        parts += [f"<p class='muted'>{e(m.drift_note)}</p>"] if m.drift_note else []
    parts.append(f"<h3>Alerts ({len(m.alerts)})</h3>")
    parts.append("<ul>" if m.alerts else "<p>None.</p>")
    for a in m.alerts:
        flags = [x for x, on in (("new", a["new_this_week"]),
                                 ("resolved", a["resolved_this_week"])) if on]  # fmt: skip
        parts.append(
            f"<li class='{e(a['severity'])}'><b>{e(a['severity'])}</b> #{a['alert_id']} "
            f"{e(a['model_version'])} {e(a['variant'])} {e(a['layer'])} / {e(a['rule'])} / "
            f"{e(a['subject'])} ({e(a['state'])}{', ' + ', '.join(flags) if flags else ''}; "
            f"{a['count']} window(s) {_when(a['first_seen'])} to {_when(a['last_seen'])}): "
            f"{e(a['summary'])}. Response: {e(a['response'])}. "
            f"<a href='{e(review.link(a['link']))}'>evidence</a></li>"
        )
    parts.append("</ul>" if m.alerts else "")
    parts.append(_incidents_html(m))
    parts.append(f"<h3>Decisions ({len(m.decisions)})</h3>")
    parts.append("<ul>" if m.decisions else "<p>None.</p>")
    for d in m.decisions:
        change = f" {d['from_state'] or ''} → {d['to_state']}" if d["to_state"] else ""
        parts.append(
            f"<li>{_when(d['ts'])} {e(d['actor'])}: {e(d['action'])} {e(d['version'] or '')}"
            f"{e(change)}: {e(d['reason'] or '')}</li>"
        )
    parts.append("</ul>" if m.decisions else "")
    parts.append(f"<p><b>Retraining:</b> {e(m.retraining.get('text', 'n/a'))}</p>")
    parts += [f"<p class='muted'>{e(n)}</p>" for n in m.notes]
    return "\n".join(parts)


def _incidents_html(m: ModelWeek) -> str:
    e = html.escape
    head = "<h3>Incident response (this week against last week)</h3>"
    if not m.incidents:
        return head + "<p>No alert opened, answered or open in either week.</p>"
    rows = "".join(
        f"<tr><td>{e(r['figure'])}</td><td>{e(r['last week'])}</td>"
        f"<td>{e(r['this week'])}</td><td>{e(r['change'])}</td></tr>"
        for r in m.incidents
    )
    return (
        f"{head}<table><tr><th>figure</th><th>last week</th><th>this week</th>"
        f"<th>change</th></tr>{rows}</table>"
    )


# -- command line ---------------------------------------------------------------------------------


def render(review: WeeklyReview, suffix: str) -> str:
    if suffix == ".md":
        return to_markdown(review)
    if suffix in (".html", ".htm"):
        return to_html(review)
    raise ValueError(f"--out must end in .md or .html, not {suffix or '(no suffix)'!r}")


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lifecycle import requests
    from lifecycle.store import resolve_db_path

    out = Path(args.out)
    try:
        parse_week(args.week)
        if out.suffix.lower() not in (".md", ".html", ".htm"):
            raise ValueError(f"--out must end in .md or .html, not {out.name!r}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    db_path = resolve_db_path(args.db)
    if not db_path.exists():
        print(f"error: no database at {db_path}", file=sys.stderr)
        return 2
    params = {"kind": "report", "error_exit": 2, "week": args.week, "out": str(out.resolve()),
              "models": args.model, "app_url": args.app_url}  # fmt: skip
    return requests.run(db_path, params, wait=args.wait)


def serve_request(store, params: dict):
    """Write the weekly review file a report request asks for (here or in the app's process)."""
    from pathlib import Path

    from lifecycle.requests import Outcome

    out = Path(params["out"])
    try:
        review = weekly_review(
            store, params["week"], models=params.get("models"), app_url=params.get("app_url")
        )
        text = render(review, out.suffix.lower())
    except (KeyError, ValueError) as exc:
        return Outcome(2, stderr=f"error: {exc}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return Outcome(
        0,
        stdout=f"wrote {out} ({len(text):,} characters): {len(review.models)} model(s), "
        f"week {review.week}",
    )


def review_json(review: WeeklyReview) -> str:
    """The review's data as JSON (for tests and other tools)."""
    data = {
        "week": review.week,
        "models": [
            {k: v for k, v in vars(m).items() if k != "daily"} | {"changes": m.changes}
            for m in review.models
        ],
    }
    return json.dumps(data, default=str)
