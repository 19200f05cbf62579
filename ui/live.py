"""Version detail's "Live vs production" tab: a shadow or canary version against the
production version on live traffic (lifecycle.live_comparison via the review pack)."""

from __future__ import annotations

import streamlit as st

from lifecycle import charts
from ui.text import md

VERDICT_STYLE = {
    "worse": (st.error, ":material/trending_down:"),
    "better": (st.success, ":material/trending_up:"),
    "equivalent": (st.success, ":material/check:"),
    "no difference detected yet": (st.info, ":material/hourglass:"),
    "not enough data": (st.warning, ":material/block:"),
}


def live_tab(live: dict | None, version: str, state: str) -> bool:
    """Draw the comparison; True when the candidate is significantly worse somewhere (the
    page then offers the rollback beside it)."""
    if live is None:
        st.info(f"{md(version)} is {md(state)}: the live comparison applies to a version in "
                "shadow (paired on the same requests) or canary (an A/B test on the traffic "
                "split).")  # fmt: skip
        return False
    if live.get("error"):
        st.error(md(live["error"]))
        return False
    for note in live["notes"]:
        st.caption(md(note))
    if not live["comparisons"]:
        return False
    how = ("paired on the same requests (shadow)" if live["mode"] == "shadow"
           else "canary requests against production's in the same period (A/B)")  # fmt: skip
    since = f" since {live['since']:%Y-%m-%d %H:%M} UTC" if live.get("since") else ""
    st.caption(
        f"{md(version)} against production {md(live['champion'])}, {how}{since}. Intervals "
        "are always-valid 95% intervals (mixture SPRT): looking every day does not raise the "
        'false-alarm rate (docs/governance.md, "Live comparison").'
    )
    for comparison in live["comparisons"]:
        show, icon = VERDICT_STYLE[comparison["verdict"]]
        show(md(comparison["text"]), icon=icon)
    names = [c["name"] for c in live["comparisons"]]
    picked = st.segmented_control("Measure", names, default=names[0], key="live_measure")
    chosen = next((c for c in live["comparisons"] if c["name"] == picked), live["comparisons"][0])
    st.plotly_chart(
        charts.live_difference_figure(chosen, candidate=version, champion=live["champion"]),
        key="live_figure",
        width="stretch",
    )
    return any(c["verdict"] == "worse" for c in live["comparisons"])
