"""Model health's "Fairness & segments" tab: positive rate and disparate impact per sensitive
attribute over windows, and each logged segment's performance (lifecycle.fairness)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lifecycle import charts, fairness
from ui.common import get_store
from ui.text import md


@st.cache_data(show_spinner="Computing fairness over time…", ttl=600, max_entries=64)
def _fairness(data_key: int, model: str, version: str, variant: str, grain: str, since, until):
    return fairness.fairness_over_time(get_store(), model, version=version, variant=variant,
                                       grain=grain, start=since, end=until)  # fmt: skip


@st.cache_data(show_spinner=False, ttl=600, max_entries=64)
def _segments(data_key: int, model: str, version: str, variant: str, grain: str, since, until):
    return fairness.segments_over_time(get_store(), model, version=version, variant=variant,
                                       grain=grain, start=since, end=until)  # fmt: skip


def fairness_tab(data_key: int, sel, task: str) -> None:
    args = (data_key, sel.model, sel.version, sel.variant, sel.grain, sel.since, sel.until)
    frame = _fairness(*args)
    if task != "binary_classification":
        st.info("Disparate impact compares the rate of positive predictions per group: it "
                "applies to binary classifiers. Segments below.")  # fmt: skip
    elif frame.empty:
        st.info(f"{md(sel.model)} declares no sensitive attribute (`sensitive_attribute` or "
                "`sensitive_attributes` in its spec), or no predictions fall in the period.")  # fmt: skip
    else:
        _fairness_section(frame, sel.grain)
    segments = _segments(*args)
    st.markdown("**Segments** (the logged `segment` column)")
    if segments.empty:
        st.info("No predictions in the period.")
        return
    measure = ("accuracy", "Accuracy on labelled rows") if "accuracy" in segments else (
        "mae", "MAE on labelled rows")  # fmt: skip
    left, right = st.columns(2)
    left.plotly_chart(charts.segment_figure(segments, *measure, grain=sel.grain),
                      key="segment_quality", width="stretch")  # fmt: skip
    rate = ("positive_rate", "Share predicted positive") if segments["positive_rate"].notna(
    ).any() else ("mean_score", "Mean prediction")  # fmt: skip
    right.plotly_chart(charts.segment_figure(segments, *rate, grain=sel.grain),
                       key="segment_rate", width="stretch")  # fmt: skip


def _fairness_section(frame: pd.DataFrame, grain: str) -> None:
    latest = frame[frame["window_start"] == frame["window_start"].max()]
    for attribute, rows in latest.groupby("attribute"):
        ratio = rows["disparate_impact"].min()
        eod = rows["eo_difference"].min()
        text = (f"**{md(attribute)}**, latest window: lowest disparate impact "
                f"{ratio:.2f}" if pd.notna(ratio) else f"**{md(attribute)}**: too few rows per group")  # fmt: skip
        if pd.notna(eod):
            text += f", equal opportunity difference {eod:+.2f}"
        (st.warning if pd.notna(ratio) and ratio < fairness.FOUR_FIFTHS else st.caption)(text)
    st.caption(
        "Disparate impact = a group's positive rate / the highest group's (80% rule: every "
        "ratio >= 0.8); equal opportunity difference = a group's true positive rate minus the "
        "highest group's. Groups under 30 predictions are left out of the ratios. Monitoring "
        "alerts (rule `fairness`) only when the window proves the ratio under 0.8 (an upper "
        "confidence bound), so small windows do not alarm on noise."
    )
    st.plotly_chart(charts.disparate_impact_figure(frame, grain=grain), key="fairness_di",
                    width="stretch")  # fmt: skip
    for attribute in sorted(frame["attribute"].unique()):
        st.plotly_chart(charts.group_rates_figure(frame, attribute, grain=grain),
                        key=f"fairness_rates_{attribute}", width="stretch")  # fmt: skip
