"""Weekly review: a chosen ISO week, model by model, with HTML and Markdown export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from lifecycle import portfolio
from lifecycle.alerts import report
from lifecycle.alerts.lifecycle import alerts_revision
from lifecycle.alerts.links import app_url_note, page_target
from lifecycle.alerts.rules import LAYERS
from ui.common import data_version, get_store
from ui.text import md, md_list

st.title("Weekly review")
store = get_store()


@st.cache_data(show_spinner=False, ttl=300)
def _weeks(version: int) -> list[str]:
    """ISO weeks from the first logged prediction to now, newest first."""
    first = portfolio.first_prediction_at(store)
    now = datetime.now(UTC)
    if first is None:
        return [report.week_of(now)]
    weeks, day = [], pd.Timestamp(first).to_pydatetime()
    while day <= now:
        week = report.week_of(day)
        if week not in weeks:
            weeks.append(week)
        day += timedelta(days=1)
    return weeks[::-1]


@st.cache_data(show_spinner="Building the review…", ttl=120)
def _review(version: int, alerts_revision: int, week: str) -> report.WeeklyReview:
    return report.weekly_review(get_store(), week)


@st.cache_data(show_spinner=False, ttl=120)
def _exports(version: int, alerts_revision: int, week: str) -> tuple[str, str]:
    review = _review(version, alerts_revision, week)
    return report.to_html(review), report.to_markdown(review)


@st.cache_data(show_spinner=False, ttl=300)
def _default_week(version: int) -> str:
    """Last week, or the week of the newest data when logging stopped before it (a review
    of an empty week answers nothing)."""
    last_week = datetime.now(UTC) - timedelta(weeks=1)
    newest = portfolio.last_prediction_at(store)
    return report.week_of(min(last_week, pd.Timestamp(newest).to_pydatetime()) if newest
                          else last_week)  # fmt: skip


weeks = _weeks(data_version())
default = _default_week(data_version())
if st.query_params.get("week") in weeks and "week" not in st.session_state:
    st.session_state["week"] = st.query_params["week"]
if st.session_state.get("week") not in weeks:
    st.session_state["week"] = default if default in weeks else weeks[0]
week = st.selectbox("Week (ISO, UTC)", weeks, key="week")
st.query_params["week"] = week
revision = alerts_revision(store)
review = _review(data_version(), revision, week)
st.caption(f"{review.start:%Y-%m-%d} to {review.end - timedelta(days=1):%Y-%m-%d} (UTC)")

html_text, markdown_text = _exports(data_version(), revision, week)
cols = st.columns([1, 1, 3])
cols[0].download_button("Export HTML", html_text, f"weekly-review-{week}.html", "text/html",
                        key="export_html", icon=":material/download:")  # fmt: skip
cols[1].download_button("Export Markdown", markdown_text, f"weekly-review-{week}.md",
                        "text/markdown", key="export_md", icon=":material/download:")  # fmt: skip
base_url, why = app_url_note()
cols[2].caption(f"Exported links open {md(base_url)} ({md(why)}).")

summary = pd.DataFrame(
    [
        {
            "model": m.model,
            "production": m.production_version,
            "overall": m.overall,
            **{layer: m.status_text(layer) for layer in LAYERS},
            "alerts": len(m.alerts),
            "retraining": "due" if m.retraining.get("due") else "not due",
        }
        for m in review.models
    ]
)
st.dataframe(summary, hide_index=True, width="stretch")

for m in review.models:
    alarming = m.overall in ("warning", "critical", "not evaluated")
    with st.expander(f"{md(m.model)}: {m.overall}", expanded=alarming):
        st.markdown(f"**What changed since last week:** {md_list(m.changes, '; ') or 'nothing'}")
        st.dataframe(
            pd.DataFrame(
                [{"layer": layer, "last week": m.status_text(layer, previous=True),
                  "this week": m.status_text(layer),
                  "checks with a verdict this week": m.coverage_text(layer)}
                 for layer in LAYERS]
            ),
            hide_index=True, width="stretch", key=f"layers_{m.model}",
        )  # fmt: skip
        st.plotly_chart(report.status_figure(m, review.start, review.end), key=f"fig_{m.model}")
        if m.figures:
            figures = pd.DataFrame(
                [
                    {
                        "layer": f["layer"],
                        "figure": f["figure"],
                        "last week": report._fmt(f["last_week"], f["format"]),
                        "this week": report._fmt(f["this_week"], f["format"]),
                    }
                    for f in m.figures
                ]
            )
            st.dataframe(figures, hide_index=True, width="stretch")
        if m.drift:
            st.markdown(f"**{md(report.drift_heading(m))}**")
            st.markdown("\n".join(f"- {md(report.drift_item(row))}" for row in m.drift))
            if m.drift_note:
                st.caption(md(m.drift_note))
        st.markdown(f"**Alerts ({len(m.alerts)})**")
        for a in m.alerts:
            page, params = page_target(a["link"])
            flags = " · new" if a["new_this_week"] else ""
            flags += " · resolved this week" if a["resolved_this_week"] else ""
            st.page_link(
                page,
                label=f"{a['severity']} #{a['alert_id']} {md(a['layer'])} / {md(a['rule'])} / "
                f"{md(a['subject'])} ({a['state']}{flags}): {md(a['summary'])}",
                query_params=params,
                icon=":material/error:" if a["severity"] == "critical" else ":material/warning:",
            )
        st.markdown("**Incident response (this week against last week)**")
        if m.incidents:
            st.dataframe(pd.DataFrame(m.incidents), hide_index=True, width="stretch",
                         key=f"incidents_{m.model}")  # fmt: skip
        else:
            st.caption("No alert opened, answered or open in either week.")
        st.markdown(f"**Decisions ({len(m.decisions)})**")
        if m.decisions:
            st.dataframe(pd.DataFrame(m.decisions), hide_index=True, width="stretch")
        st.markdown(f"**Retraining:** {md(m.retraining.get('text', 'n/a'))}")
        for note in m.notes:
            st.caption(md(note))
