"""Audit log: every recorded decision, filtered by model, actor, action and time; CSV export."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from lifecycle import registry
from ui.common import blank_missing, get_store

st.title("Audit log")
store = get_store()
st.caption(
    "Append-only: one row per state change (registration, review, promotion, rollback, "
    "retirement, alert handling), written in the same transaction as the change itself."
)

facets = registry.audit_facets(store)
cols = st.columns([1.2, 1.4, 1.2, 1.4])
models = cols[0].multiselect("Model", facets["models"], key="audit_models")
actors = cols[1].multiselect("Actor", facets["actors"], key="audit_actors")
actions = cols[2].multiselect("Action", facets["actions"], key="audit_actions")
period = cols[3].date_input("Period (UTC days)", value=(), key="audit_period")


def _bounds(value) -> tuple[datetime | None, datetime | None]:
    days = list(value) if isinstance(value, list | tuple) else [value]
    if not days:
        return None, None
    since = datetime.combine(days[0], time(), tzinfo=UTC)
    until = datetime.combine(days[-1], time(), tzinfo=UTC) + timedelta(days=1)
    return since, until


since, until = _bounds(period)
frame = registry.audit_entries(
    store, models=models or None, actors=actors or None, actions=actions or None,
    since=since, until=until,
)  # fmt: skip
st.markdown(f"**{len(frame):,}** entries")
st.download_button(
    "Download CSV",
    frame.to_csv(index=False).encode("utf-8"),
    file_name="audit_log.csv",
    mime="text/csv",
    icon=":material/download:",
    key="audit_csv",
)
st.dataframe(
    blank_missing(frame).assign(ts=pd.to_datetime(frame["ts"], utc=True)),
    hide_index=True,
    width="stretch",
    column_config={"ts": st.column_config.DatetimeColumn("time (UTC)",
                                                          format="YYYY-MM-DD HH:mm:ss")},
)  # fmt: skip
