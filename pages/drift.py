"""Drift investigation: feature x window severity, then the evidence behind one cell."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from lifecycle import charts, drift_impact, layers
from lifecycle.drift import feature_distribution
from lifecycle.drift.windows import chunk_size, grain_label
from ui import monitoring as mon
from ui.common import data_version, get_store
from ui.text import md, md_list

st.title("Drift investigation")
sel = mon.controls("drift", with_reference=True, extra_keys=("feature", "window"), chunks=True)
if sel is None:
    st.stop()

dv = data_version()
ctx = mon.model_context(dv, sel.model)
missing = mon.monitoring_status(sel)  # windows not computed yet, and an offer to compute them
stored = mon.stored(
    dv, mon.results_key(sel.model), sel.model, version=sel.version, variant=sel.variant,
    grain=sel.grain, since=sel.since, until=sel.until, reference=sel.reference,
)  # fmt: skip
cells = layers.drift_cells(stored)
st.caption(
    f"**{md(sel.model)}** {md(sel.version)} · {sel.variant} traffic · {grain_label(sel.grain)} windows · "
    f"{sel.period_label} · compared with the {mon.REFERENCES[sel.reference]}"
)
if cells.empty:
    if not missing:
        st.info("No drift results for this selection: the period holds no predictions.")
    st.stop()


@st.cache_data(show_spinner=False, ttl=600, max_entries=64)
def _profile(data_key: int, results_key: tuple, model: str, model_version: str):
    return drift_impact.importance_profile(get_store(), model, model_version)


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def _distribution(data_key: int, model, model_version, variant, grain, window, feature, ref):
    return feature_distribution(
        get_store(), model, model_version, variant, grain, window, feature, reference=ref
    )


def _window_label(ts) -> str:
    if chunk_size(sel.grain):
        return f"chunk from {pd.Timestamp(ts):%Y-%m-%d %H:%M}"
    fmt = {"hour": "%Y-%m-%d %H:00", "month": "%Y-%m"}.get(sel.grain, "%Y-%m-%d")
    text = pd.Timestamp(ts).strftime(fmt)
    return f"week of {text}" if sel.grain == "week" else text


# -- drift impact: drifting features ranked by importance x effect (docs/drift.md) -------------
profile = _profile(dv, mon.results_key(sel.model), sel.model, sel.version)
ranking = drift_impact.impact_ranking(stored)
features = drift_impact.feature_order(
    ranking, [f for f in ctx["features"] if f in set(cells["subject"])], profile
)
cells = drift_impact.order_cells(cells, features)

# -- the selected cell: the URL (or the selectors), else the most impactful finding -----------
subjects = features + [s for s in ("prediction", "predicted_label") if s in set(cells["subject"])]
if not subjects:
    st.info("The stored results hold no feature or prediction drift for this selection.")
    st.stop()
windows = sorted(cells["window_start"].unique())
window_keys = [pd.Timestamp(w).strftime(charts.WINDOW_KEY_FORMAT) for w in windows]
worst = (
    (ranking.iloc[0]["feature"], ranking.iloc[0]["window_start"])
    if not ranking.empty
    else layers.worst_cell(cells)
)
if elsewhere := layers.findings_elsewhere(cells):
    st.warning(
        f"No feature or prediction drift in this period; the findings are in "
        f"{md_list(elsewhere)}: see the multivariate and concept sections below.",
        icon=":material/arrow_downward:",
    )
if st.session_state.get("feature") not in subjects:
    st.session_state["feature"] = worst[0] if worst else subjects[0]
if st.session_state.get("window") not in window_keys:
    st.session_state["window"] = (
        pd.Timestamp(worst[1]).strftime(charts.WINDOW_KEY_FORMAT) if worst else window_keys[-1]
    )


# -- ranking by impact -------------------------------------------------------------------------
def _impact_ranking() -> None:
    """The drifting features, most impactful first, with their share of the model's
    importance; a click on a row opens its highest-impact window below."""
    if note := drift_impact.profile_note(profile):
        st.info(note, icon=":material/info:")
    if ranking.empty:
        return
    by_impact = ranking["impact"].notna().any()
    st.markdown(
        "**Drifting features, "
        + ("by impact** (importance x effect)" if by_impact else "by severity**")
    )
    table = pd.DataFrame(
        {
            "feature": ranking["feature"],
            "importance": ranking["importance"],
            "impact": ranking["impact"],
            "severity": ranking["severity"],
            "effect": [
                f"{m} {e:.3g}"
                for m, e in zip(ranking["method"], ranking["effect_size"], strict=True)
            ],
            "response": [
                f"{r} (capped)" if c else r
                for r, c in zip(ranking["response"], ranking["capped"], strict=True)
            ],
            "windows": ranking["windows_flagged"],
            "peak window": [_window_label(w) for w in ranking["window_start"]],
        }
    )
    if not by_impact:
        table = table.drop(columns=["importance", "impact"])
    picks = st.session_state.setdefault("ranking_picks", 0)
    event = st.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun",
        selection_mode="single-row", key=f"impact_ranking-{picks}",
        height=min(35 * (len(table) + 1) + 3, 320),
        column_config={
            "feature": st.column_config.TextColumn("feature", pinned=True),
            "importance": st.column_config.ProgressColumn(
                "importance", format="percent", min_value=0.0, max_value=1.0, width="small",
                color="#1f77b4",
                help="The feature's share of the model's importance (permutation importance "
                     "of a proxy of this version's predictions, computed from its reference)"),
            "impact": st.column_config.NumberColumn(
                "impact", format="%.2f",
                help="importance x effect / the method's significant threshold, at the "
                     "feature's highest-impact window (1 = a significant shift of the "
                     "model's only input)"),
            "severity": st.column_config.TextColumn("severity", width="small"),
            "response": st.column_config.TextColumn(
                "response", help="(capped): the feature has less of the model's importance "
                "than [drift] min_importance, so the response is investigate at most"),
            "windows": st.column_config.NumberColumn(
                "windows", width="small", help="windows flagged in the period"),
        },
    )  # fmt: skip
    rows = event.selection.rows if event is not None else []
    if rows:
        chosen = ranking.iloc[rows[0]]
        st.session_state["feature"] = chosen["feature"]
        st.session_state["window"] = pd.Timestamp(chosen["window_start"]).strftime(
            charts.WINDOW_KEY_FORMAT
        )
        st.session_state["ranking_picks"] += 1
        st.rerun()


# -- heatmap ---------------------------------------------------------------------------------
def _selected_window():
    return windows[window_keys.index(st.session_state["window"])]


flagged = cells[cells["severity"].isin(["minor", "moderate", "significant"])]
drifting = flagged[flagged["check_name"] == "data_drift"]["subject"].unique()
st.markdown(
    f"**{len(drifting)}** of {len(features)} features drifted in at least one window; "
    f"{len(flagged)} flagged result(s) in all. Click a feature or prediction cell, or a "
    "ranked feature, or use the selectors below; the URL keeps the choice."
)
_impact_ranking()
# A click selects a cell in the chart's own state, which would stay selected: after applying
# it, the chart gets a new key (an empty selection), so the same cell can be clicked again
# after the selectors have moved on.
grid_key = f"heatmap-{st.session_state.setdefault('heatmap_picks', 0)}"
event = st.altair_chart(
    charts.severity_grid(
        drift_impact.label_rows(cells, profile), title="Drift severity per feature and window",
        row_title="feature (share of importance) / check"
        if profile is not None and profile.valid else "feature / check",
        selected=(st.session_state["feature"], _selected_window()),
    ),
    on_select="rerun", key=grid_key, width="stretch",
)  # fmt: skip
picked = charts.picked_cell(event.selection)
if picked:
    if picked[0] in subjects and picked[1] in window_keys:
        st.session_state["feature"], st.session_state["window"] = picked
    else:
        st.session_state["heatmap_note"] = (
            "The multivariate and concept rows have their evidence in the sections below the "
            "chosen cell's: multivariate drift with its driving features, concept drift with "
            "the performance change and the surrogate check."
        )
    st.session_state["heatmap_picks"] += 1
    st.rerun()
if note := st.session_state.pop("heatmap_note", None):
    st.info(note)

left, right, opt = st.columns([1, 1, 0.6])
feature = left.selectbox("Feature", subjects, key="feature")
window_key = right.selectbox(
    "Window",
    window_keys,
    key="window",
    format_func=lambda k: _window_label(k),
)
ecdf = opt.toggle("ECDF", key="ecdf", help="Cumulative distributions instead of histograms")
mon.set_url_value("feature", feature)
mon.set_url_value("window", window_key)
window = windows[window_keys.index(window_key)]

# -- the cell's evidence -------------------------------------------------------------------------
check = "data_drift" if feature in features else "prediction_drift"
history = stored[(stored["check_name"] == check) & (stored["subject"] == feature)]
row = history[history["window_start"] == window]
result = row.iloc[0] if not row.empty else None
dist = _distribution(dv, sel.model, sel.version, sel.variant, sel.grain, window, feature,
                     sel.reference)  # fmt: skip
thresholds = result["details"].get("thresholds") if result is not None else None
if not thresholds and not history.empty:
    thresholds = next((d.get("thresholds") for d in history["details"] if d.get("thresholds")),
                      None)  # fmt: skip

st.subheader(f"{md(feature)} in {_window_label(window)}")
if result is not None:
    severity = result["severity"] or "insufficient data"
    response = result["response"] or "none (no verdict)"
    colour = {"significant": "red", "moderate": "orange", "minor": "orange"}.get(
        result["severity"], "gray"
    )
    share = drift_impact.number(result["details"].get("importance"))
    st.markdown(
        f"Severity **:{colour}[{severity}]** → response: **{response}**"
        + (f" · {drift_impact.share_text(share)}" if share is not None else "")
    )
    if capped := result["details"].get("response_capped"):
        st.info(f"Response capped at investigate: {md(capped)}.", icon=":material/low_priority:")
    if (noise_note := charts.noise_sentence(result)) is not None:
        st.caption(md(noise_note))
left, right = st.columns(2)
left.plotly_chart(
    charts.distribution_figure(dist, feature=feature, window_label=_window_label(window),
                               ecdf=ecdf),
    key="overlay",
)  # fmt: skip
right.plotly_chart(
    charts.statistic_figure(
        history, subject=feature, thresholds=thresholds,
        y_title=f"effect size ({history['method'].dropna().iloc[0]})"
        if history["method"].notna().any() else "effect size",
        selected_window=window,
    ),
    key="statistic",
)  # fmt: skip
right.caption(
    "Grey dotted: the effect that chance alone reaches at each window's size (99% of windows "
    "without drift stay below it). Dashed: where minor, moderate and significant start at "
    "that size. Small windows need larger effects; a window too small to judge is marked x."
)


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


if result is None:
    st.info("No stored result for this feature and window.")
else:
    details = result["details"]
    facts = {
        "method (effect size)": result["method"],
        "test": details.get("test"),
        "statistic": _fmt(result["statistic"]),
        "p-value": _fmt(result["p_value"]),
        "p-value, BH-adjusted": _fmt(result["p_adjusted"]),
        "effect size": _fmt(result["effect_size"]),
        "chance level at these sizes": _fmt(details.get("chance_level")),
        "effect beyond chance (graded)": _fmt(details.get("graded_effect")),
        "smallest effect these sizes can grade": _fmt(details.get("detectable_effect")),
        "thresholds (minor, moderate, significant)": ", ".join(_fmt(t) for t in thresholds or []),
        "severity": result["severity"] or "no verdict",
        "response": result["response"] or "—",
        "rows: reference / current": f"{_fmt(result['n_reference'])} / {_fmt(result['n_current'])}",
        "status": result["status"],
    }
    if details.get("reason"):
        facts["why no verdict"] = details["reason"]
    if (share := drift_impact.number(details.get("importance"))) is not None:
        facts["share of the model's importance"] = f"{share:.1%}"
        facts["impact (importance x effect / significant)"] = _fmt(details.get("impact"), 3)
    if details.get("response_capped"):
        facts["why the response is investigate"] = details["response_capped"]
    if details.get("reference_mean") is not None:
        facts["mean: reference → current"] = (
            f"{_fmt(details['reference_mean'])} → {_fmt(details.get('current_mean'))}"
        )
    unseen = details.get("unseen_categories")
    if unseen:  # category -> its share of the window
        facts["categories never seen in the reference"] = ", ".join(
            f"{name} ({share:.1%} of the window)" for name, share in unseen.items()
        )
    st.dataframe(
        pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}),
        hide_index=True, width="stretch", height=35 * len(facts) + 40,  # every row in view
    )  # fmt: skip
    if unseen:
        st.caption(
            "Part of this shift is a category the model never saw. Before the response above "
            "(retraining included), confirm with the feed's owner that the category is real: "
            "the data-quality check below flags it as a feed problem until then."
        )


quality_rows = mon.quality(
    dv, mon.results_key(sel.model), sel.model, version=sel.version, variant=sel.variant,
    grain=sel.grain, since=window, until=window + pd.Timedelta(seconds=1),
)  # fmt: skip
quality_rows = quality_rows[quality_rows["subject"] == feature]
if not quality_rows.empty:
    st.markdown(f"**Data quality of {md(feature)} in this window**")
    st.dataframe(
        quality_rows.assign(rate_pct=100 * quality_rows["rate"])[
            ["tier", "check_name", "rate_pct", "severity", "response", "n_current"]
        ],
        hide_index=True, width="stretch",
        column_config={"rate_pct": st.column_config.NumberColumn("Affected rows %",
                                                                 format="%.2f")},
    )  # fmt: skip
    missing = dist.attrs.get("missing_current", 0)
    if missing:
        st.caption(
            f"{missing:,} rows of this window have no {md(feature)} value (not in the overlay)."
        )


# -- prediction, multivariate and concept drift --------------------------------------------------
def _history(check_name: str, subject: str | None = None) -> pd.DataFrame:
    part = stored[stored["check_name"] == check_name]
    return part[part["subject"] == subject] if subject else part


def _thresholds(part: pd.DataFrame):
    return next((d.get("thresholds") for d in part["details"] if d.get("thresholds")), None)


st.subheader("Prediction drift")
left, right = st.columns(2)
for col, subject in zip((left, right), ("prediction", "predicted_label"), strict=True):
    part = _history("prediction_drift", subject)
    if part.empty:
        continue
    col.plotly_chart(
        charts.statistic_figure(part, subject=subject, thresholds=_thresholds(part),
                                y_title="effect size", selected_window=window),
        key=f"pred_{subject}",
    )  # fmt: skip

st.subheader("Multivariate drift")
multi = _history("multivariate_drift")
left, right = st.columns(2)
left.plotly_chart(
    charts.statistic_figure(multi, subject="all features", thresholds=_thresholds(multi),
                            y_title="domain classifier ROC AUC", selected_window=window),
    key="multivariate",
)  # fmt: skip
multi_row = multi[multi["window_start"] == window]
drivers = multi_row.iloc[0]["details"].get("drivers") if not multi_row.empty else None
right.plotly_chart(
    charts.drivers_figure(drivers, title=f"Features driving it in {_window_label(window)}"),
    key="drivers",
)

st.subheader("Concept drift evidence")
st.caption(
    "Performance drift compares the window's labelled rows with the reference (bootstrap "
    "interval); the surrogate check fits a simple model on the window's labels: clearly "
    "better than production means the feature-target relation moved. Windows whose labels "
    "have not arrived show no verdict."
)
left, right = st.columns(2)
for col, check_name, title in (
    (left, "performance_drift", "metric change vs reference"),
    (right, "concept_drift", "surrogate gain over production"),
):
    part = _history(check_name)
    subject = part["subject"].iloc[0] if not part.empty else check_name
    name = f"{check_name.replace('_', ' ')} ({subject})"
    col.plotly_chart(
        charts.statistic_figure(part, subject=name, thresholds=_thresholds(part),
                                y_title=charts.effect_title(part["method"], title),
                                selected_window=window, title=f"{name} per window"),
        key=f"concept_{check_name}",
    )  # fmt: skip
