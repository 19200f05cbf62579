"""Overview: every model, its versions' states, its traffic and how fresh its data is."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lifecycle import portfolio
from ui import monitoring
from ui.common import data_version, get_store


@st.cache_data(show_spinner=False, ttl=300)
def _summary(version: int) -> pd.DataFrame:
    return portfolio.model_summary(get_store())


@st.cache_data(show_spinner=False, ttl=300)
def _daily(version: int) -> pd.DataFrame:
    return portfolio.daily_predictions(get_store())


def _age(ts) -> str:
    if ts is None or pd.isna(ts):
        return "never"
    delta = pd.Timestamp.now(tz="UTC") - pd.Timestamp(ts)
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{max(delta.total_seconds() / 60, 0):.0f} min ago"
    if hours < 48:
        return f"{hours:.0f} h ago"
    return f"{hours / 24:.0f} days ago"


st.title("Overview")
version = data_version()
summary = _summary(version)
if summary.empty:
    st.info(
        "No model is registered yet. Register one with "
        "`python -m lifecycle register --db PATH SPEC.toml`, then ingest its logs."
    )
    st.stop()

last_prediction = summary["last_prediction_at"].max()
cols = st.columns([1, 1, 1.4, 1.6])  # the time stamp needs the room
cols[0].metric("Models", len(summary))
cols[1].metric("Versions", int(summary["version_count"].sum()))
cols[2].metric("Requests served, last 7 days", f"{int(summary['predictions_7d'].sum()):,}")
cols[3].metric(
    "Last prediction logged",
    "never" if pd.isna(last_prediction) else f"{pd.Timestamp(last_prediction):%d %b %H:%M}",
    help="Time stamp (UTC) of the newest prediction in the logs.",
)

monitoring.portfolio_section()

st.subheader("Versions, traffic and data freshness")
table = summary.assign(
    last_prediction=summary["last_prediction_at"],
    received=summary["last_received_at"].map(_age),
)
st.dataframe(
    table[
        [
            "model",
            "risk_tier",
            "production_version",
            "versions",
            "predictions_7d",
            "last_prediction",
            "last_label_at",
            "received",
        ]
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "model": st.column_config.TextColumn("Model", pinned=True),
        "risk_tier": st.column_config.TextColumn("Risk"),
        "production_version": st.column_config.TextColumn("In production"),
        "versions": st.column_config.TextColumn("Versions (state)", width="large"),
        "predictions_7d": st.column_config.NumberColumn(
            "Served, 7 d",
            format="localized",
            help="Production and canary requests in the last 7 days of logs.",
        ),
        "last_prediction": st.column_config.DatetimeColumn(
            "Last prediction (UTC)", format="YYYY-MM-DD HH:mm"
        ),
        "last_label_at": st.column_config.DatetimeColumn(
            "Last label (UTC)", format="YYYY-MM-DD HH:mm"
        ),
        "received": st.column_config.TextColumn(
            "Last batch received", help="When the newest batch of logs was ingested."
        ),
    },
)

daily = _daily(version)
if daily.empty:
    st.info("No predictions have been logged yet, so there is no traffic to chart.")
else:
    st.plotly_chart(portfolio.daily_predictions_figure(daily), width="stretch")
    st.caption(
        "Served traffic (production and canary). Shadow predictions of candidate versions "
        "duplicate production requests and are not counted here."
    )
