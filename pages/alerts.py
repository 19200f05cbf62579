"""Alerts inbox: filter, read the evidence, follow the link, acknowledge / snooze / resolve."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from lifecycle import drift_impact
from lifecycle.alerts import incidents
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts.check import CheckError, run_check
from lifecycle.alerts.links import alert_link, page_target
from lifecycle.alerts.retraining import recommendations
from lifecycle.alerts.rules import LAYERS
from lifecycle.identity import Actor, PermissionDenied
from lifecycle.registry import auto_rollback
from ui.common import data_version, get_store, setup_running
from ui.deliveries import delivery_log_section
from ui.text import md

st.title("Alerts")
store = get_store()
FLASH = "_alerts_flash"
LINK = "_alerts_link_seen"


def current_actor() -> Actor:
    """The signed-in user (ui.identity when present), else the local development identity."""
    try:
        from ui import identity
    except ImportError:
        identity = None
    if identity is not None and hasattr(identity, "current_actor"):
        return identity.current_actor()
    with st.sidebar.expander("Acting as (local development mode)", expanded=False):
        name = st.text_input("Name", "dev.reviewer@example.com", key="alerts_actor")
        roles = st.multiselect(
            "Roles", ["viewer", "reviewer", "deployer", "admin"], ["reviewer"], key="alerts_roles"
        )
    st.caption(
        f"Local development mode: acting as **{md(name)}** ({', '.join(roles) or 'no role'})."
    )
    return Actor(name or "anonymous", frozenset(roles))


@st.cache_data(show_spinner=False, ttl=60)
def _alerts(version: int, revision: int) -> pd.DataFrame:
    return lc.list_alerts(get_store())


@st.cache_data(show_spinner=False, ttl=300)
def _retraining(version: int, revision: int) -> list[dict]:
    return [r.to_dict() | {"text": r.text()} for r in recommendations(get_store())]


def _revision() -> int:
    """Grows with every alert change: the cache key of the alert reads."""
    return lc.alerts_revision(store)


def _last_check() -> dict | None:
    return lc.last_check_run(store)


def _last_check_text(run: dict | None, setting_up: bool) -> str:
    if run is None and setting_up:
        return ("Last check: never - the first-start setup runs the first one once the last "
                "7 days of every model are monitored (older history follows).")  # fmt: skip
    if run is None:
        return "Last check: never - run one to evaluate the alert rules on the stored windows."
    return (
        f"Last check {pd.Timestamp(run['finished_at']):%Y-%m-%d %H:%M} UTC (as of "
        f"{pd.Timestamp(run['as_of']):%Y-%m-%d %H:%M} UTC), exit code {run['exit_code']}. "
        "Schedule `python -m lifecycle check` to keep alerts current."
    )


def _not_evaluated_section(run: dict | None) -> None:
    """What the last check could not evaluate (lifecycle.coverage via the check's summary):
    drift or performance without a verdict is shown, never taken for healthy."""
    if run is None:
        return
    summary = run["summary"]
    summary = json.loads(summary) if isinstance(summary, str) else summary or {}
    for item in summary.get("not_evaluated", []):
        st.warning(f"**Not evaluated - {md(item['model'])}:** {md(item['text'])}",
                   icon=":material/block:")  # fmt: skip
    rows = summary.get("coverage") or []
    if rows:
        with st.expander("Evaluation coverage of the last check (checks with a verdict per "
                         "model and layer, last 7 days, production traffic)"):  # fmt: skip
            table = pd.DataFrame(rows)[["model", "layer", "state", "verdicts", "text"]]
            st.table(
                table.rename(
                    columns={"verdicts": "checks with a verdict", "text": "detail"}
                ).set_index(["model", "layer"])
            )


@st.cache_data(show_spinner=False, ttl=60)
def _incidents(version: int, revision: int, models: tuple[str, ...]):
    """This ISO week against last week, and the last 8 weeks per model."""
    now = datetime.now(UTC)
    weeks = incidents.week_starts(now, 8)
    chosen = list(models) or None
    week = incidents.incident_week(get_store(), weeks[-1], models=chosen, as_of=now)
    return week, incidents.weekly_incidents(get_store(), weeks, models=chosen, as_of=now)


def _incident_section(models: list[str]) -> None:
    """Incident response of the chosen models (all when none): key figures with the change
    since last week, the whole table, and the last 8 weeks per model."""
    week, history = _incidents(data_version(), _revision(), tuple(sorted(models)))
    this, last = week.this_week, week.last_week
    cols = st.columns(4)
    for col, (column, label) in zip(cols, (
        ("opened_critical", "Critical opened this week"),
        ("tta_median_h", "Median time to acknowledge"),
        ("ttr_median_h", "Median time to resolve"),
        ("oldest_open_h", "Oldest open alert"),
    ), strict=True):  # fmt: skip
        unit = "count" if column == "opened_critical" else "hours"
        delta = incidents.change(last.get(column), this.get(column), unit)
        col.metric(label, incidents.fmt(this.get(column), unit),
                   delta=None if delta in ("", "=", "new") else delta, delta_color="inverse",
                   help="this ISO week (UTC) so far, against last week")  # fmt: skip
    with st.expander("Incident response: this week against last week, and the last 8 weeks"):
        st.caption("Time to acknowledge runs from opening to the first human response "
                   "(acknowledge, or resolve without acknowledging); time to resolve from "
                   "opening to resolution, counted in the week it happened (docs/alerts.md).")  # fmt: skip
        st.dataframe(pd.DataFrame(week.rows()), hide_index=True, width="stretch")
        if not history.empty:
            shown_weeks = history.assign(week=[f"{pd.Timestamp(w):%G-W%V}"
                                               for w in history["week_start"]])  # fmt: skip
            st.dataframe(
                shown_weeks[["model_name", "week", *incidents.COLUMNS]].round(1),
                hide_index=True,
                width="stretch",
            )


actor = current_actor()
can_manage = actor.can("manage_alerts")
if flash := st.session_state.pop(FLASH, None):
    (st.success if flash[0] == "ok" else st.error)(md(flash[1]))

# -- the last check, and running one -----------------------------------------------------------
last = _last_check()
setting_up = setup_running()  # its first check comes once the last 7 days are monitored
cols = st.columns([3, 1])
cols[0].caption(_last_check_text(last, setting_up))
if cols[1].button("Run check now", key="run_check", disabled=not can_manage or setting_up,
                  help="the first-start setup runs the first check" if setting_up
                  else None if can_manage else "needs the manage_alerts permission"):  # fmt: skip
    with st.spinner("Computing new windows and evaluating the alert rules…"):
        try:
            report = run_check(store)
            st.session_state[FLASH] = ("ok", report.text().splitlines()[0])
        except CheckError as exc:  # e.g. alert routing that cannot be used
            st.session_state[FLASH] = ("error", str(exc))
    st.cache_data.clear()
    st.rerun()

_not_evaluated_section(last)
delivery_log_section(store)

frame = _alerts(data_version(), _revision())
for rollback in auto_rollback.recent(store, datetime.now(UTC) - timedelta(days=14)):
    done = rollback["action"] == "auto_rollback"
    (st.error if done else st.warning)(
        f"**{'Automatic rollback' if done else 'Automatic rollback not done'}** of "
        f"{md(rollback['model_name'])} {md(rollback['version'])} on "
        f"{pd.Timestamp(rollback['ts']):%Y-%m-%d %H:%M} UTC: {md(rollback['reason'])}",
        icon=":material/undo:",
    )
due = [r for r in _retraining(data_version(), _revision()) if r["due"]]
for rec in due:
    st.warning(md(rec["text"]), icon=":material/model_training:")

# -- filters -----------------------------------------------------------------------------------
FILTERS = {"f_model": "model_name", "f_layer": "layer", "f_severity": "severity",
           "f_state": "state"}  # fmt: skip
st.session_state.setdefault("f_state", list(lc.UNRESOLVED))
linked = st.query_params.get("alert")  # ?alert=ID from a notification opens that alert
if linked and st.session_state.get(LINK) != linked:
    match = frame[frame["alert_id"].astype(str) == linked]
    if match.empty:
        st.warning(f"Alert #{md(linked)} (from the link) does not exist in this database.")
    else:  # widen the filters so the linked alert shows, resolved or not
        for key, column in FILTERS.items():
            chosen = st.session_state.get(key)
            if chosen and match.iloc[0][column] not in chosen:
                st.session_state[key] = [*chosen, match.iloc[0][column]]
f = st.columns(4)
models = f[0].multiselect("Model", sorted(frame["model_name"].unique()), key="f_model")
layers = f[1].multiselect("Layer", list(LAYERS), key="f_layer")
severities = f[2].multiselect("Severity", ["critical", "warning"], key="f_severity")
states = f[3].multiselect("State", list(lc.STATES), key="f_state")
shown = frame
for column, chosen in (("model_name", models), ("layer", layers), ("severity", severities),
                       ("state", states)):  # fmt: skip
    if chosen:
        shown = shown[shown[column].isin(chosen)]

active = frame[frame["state"].isin(lc.ACTIVE)]
m = st.columns(4)
m[0].metric("Critical (active)", int((active["severity"] == "critical").sum()))
m[1].metric("Warning (active)", int((active["severity"] == "warning").sum()))
m[2].metric("Snoozed", int((frame["state"] == "snoozed").sum()))
m[3].metric("Shown", len(shown))

if shown.empty:
    st.info("No alerts match these filters." if len(frame) else "No alerts yet.")
    _incident_section(models)
    st.stop()

columns = ["alert_id", "severity", "worst_severity", "state", "model_name", "model_version",
           "variant", "layer", "rule", "subject", "count", "first_seen", "last_seen",
           "summary"]  # fmt: skip
# a drift alert's feature: its share of the model's importance (evidence.importance)
importance = [drift_impact.number(e.get("importance")) for e in shown["evidence"]]
if any(v is not None for v in importance):
    columns.insert(columns.index("subject") + 1, "importance")
table = shown.assign(importance=importance)[columns]
st.dataframe(
    table, hide_index=True, width="stretch", height=min(38 * len(table) + 38, 420),
    column_config={"importance": st.column_config.ProgressColumn(
        "importance", format="percent", min_value=0.0, max_value=1.0,
        help="Drift alerts: the feature's share of the model's importance")},
)  # fmt: skip
_incident_section(models)


# -- one alert: evidence, response, link, actions ------------------------------------------------
def _label(alert_id: int) -> str:
    a = shown.loc[shown["alert_id"] == alert_id].iloc[0]
    return (
        f"#{alert_id} {lc.severity_text(a)} · {a['model_name']} {a['model_version']} · "
        f"{a['layer']} / {a['rule']} / {a['subject']}"
    )


ids = [int(i) for i in shown["alert_id"]]
if linked and linked.isdigit() and int(linked) in ids and st.session_state.get(LINK) != linked:
    st.session_state["alert_pick"] = int(linked)
    st.session_state[LINK] = linked
if st.session_state.get("alert_pick") not in ids:
    st.session_state["alert_pick"] = ids[0]
alert_id = st.selectbox("Alert", ids, format_func=_label, key="alert_pick")
alert = lc.get_alert(store, alert_id)

st.subheader(f"#{alert_id}: {md(alert['summary'])}")
cols = st.columns(4)
cols[0].metric("Severity", lc.severity_text(alert), help="now (worst of this episode)")
cols[1].metric("State", alert["state"])
cols[2].metric("Windows seen", int(alert["count"]))
cols[3].metric("Escalated", "yes" if alert["escalation_level"] else "no")
st.markdown(
    f"**Response:** {md(alert['response'])}  \n"
    f"**Seen:** {pd.Timestamp(alert['first_seen']):%Y-%m-%d %H:%M} to "
    f"{pd.Timestamp(alert['last_seen']):%Y-%m-%d %H:%M} UTC ({alert['grain']} windows, "
    f"{alert['variant']} traffic)"
)
if impact := drift_impact.impact_lines(alert["evidence"]):
    st.markdown("**Drift impact:** " + md(" ".join(impact)))
if alert["acknowledged_by"]:
    st.markdown(f"**Acknowledged** by {md(alert['acknowledged_by'])}: {md(alert['ack_comment'])}")
if alert["state"] == "snoozed":
    st.markdown(f"**Snoozed** until {pd.Timestamp(alert['snoozed_until']):%Y-%m-%d %H:%M} UTC")
if alert["resolution"]:
    st.markdown(f"**Resolved** by {md(alert['resolved_by'])}: {md(alert['resolution'])}")
page, params = page_target(alert_link(alert))
st.page_link(page, label="Open the evidence", icon=":material/query_stats:",
             query_params=params)  # fmt: skip
with st.expander("Evidence summary", expanded=True):
    evidence = {k: v for k, v in alert["evidence"].items() if v is not None}
    st.json(evidence, expanded=1)
    st.dataframe(lc.alert_windows(store, alert).head(50), hide_index=True, width="stretch")
with st.expander("History (audit log)"):
    st.dataframe(lc.alert_history(store, alert_id), hide_index=True, width="stretch")


def _act(action, *args, **kwargs) -> None:
    try:
        action(store, actor, alert_id, *args, revision=int(alert["revision"]), **kwargs)
    except (lc.AlertError, lc.AlertConflict, PermissionDenied) as exc:
        st.session_state[FLASH] = ("error", str(exc))
    else:
        st.session_state[FLASH] = ("ok", f"Alert #{alert_id}: {action.__name__} recorded.")
    st.cache_data.clear()
    st.rerun()


if alert["state"] != "resolved":
    if not can_manage:
        st.info(f"{md(actor.name)} may view alerts; acknowledging, snoozing and resolving need the "
                "reviewer, deployer or admin role.")  # fmt: skip
    else:
        tabs = st.tabs(["Acknowledge", "Snooze", "Resolve"])
        with tabs[0]:
            comment = st.text_input("Comment (what you are doing about it)", key="ack_comment")
            if st.button("Acknowledge", key="ack", disabled=alert["state"] == "acknowledged"):
                _act(lc.acknowledge, comment)
        with tabs[1]:
            hours = st.number_input("Hours", 1, 24 * 30, 24, key="snooze_hours")
            note = st.text_input("Comment", key="snooze_comment")
            if st.button("Snooze", key="snooze"):
                until = datetime.now(UTC) + timedelta(hours=int(hours))
                _act(lc.snooze, until, note)
        with tabs[2]:
            reason = st.text_input("Reason", key="resolve_reason")
            if st.button("Resolve", key="resolve"):
                _act(lc.resolve, reason)
