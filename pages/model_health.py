"""Model health: one model version at a time, its four layers over the chosen period."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from lifecycle import charts, layers
from lifecycle.alerts.config import infra_limits
from lifecycle.drift import severity_rank
from ui import monitoring as mon
from ui.common import data_version, get_store
from ui.fairness import fairness_tab
from ui.text import md, md_list

st.title("Model health")
mon.forget_unless_linked("model_health", "tab")
sel = mon.controls("model_health", extra_keys=("tab",))
if sel is None:
    st.stop()

dv = data_version()
ctx = mon.model_context(dv, sel.model)
task = ctx["task"]
state = {v["version"]: v["state"] for v in ctx["versions"]}[sel.version]
st.caption(
    f"**{md(sel.model)}** {md(sel.version)} ({state}) · {task.replace('_', ' ')} · risk tier "
    f"{md(ctx['risk_tier'])} · {sel.variant} traffic · {sel.grain} windows · {sel.period_label}"
)

fresh = mon.layer("freshness", dv, sel.model)


def _when(ts) -> str:
    return "never" if ts is None or pd.isna(ts) else f"{pd.Timestamp(ts):%b %d, %H:%M}"


# one line, not four metrics: a metric's large value is cut off below ~1400 px
st.markdown(
    f"**Freshness (UTC)** · last prediction **{_when(fresh['last_prediction'])}** · last label "
    f"**{_when(fresh['last_label'])}** · last business event "
    f"**{_when(fresh['last_business_event'])}** · "
    + ("logs **read in place from a lake** (see Data quality)" if fresh.get("read_in_place")
       else f"last batch received **{_when(fresh['last_received'])}**")
)  # fmt: skip
st.page_link(
    "pages/drift.py",
    label=f"Investigate drift of {md(sel.model)} {md(sel.version)}",
    icon=":material/query_stats:",
    query_params={"model": sel.model, "version": sel.version, "variant": sel.variant,
                  "grain": sel.grain, "from": f"{sel.since:%Y-%m-%d}",
                  "to": f"{sel.until - pd.Timedelta(days=1):%Y-%m-%d}"},
)  # fmt: skip

mon.coverage_section(sel)

args = sel.layer_args()
TABS = ["Infrastructure", "Performance", "Business", "Data quality", "Fairness & segments"]
# an alert's link names the tab with its evidence (lifecycle.alerts.links)
opened = st.session_state.get("tab") if st.session_state.get("tab") in TABS else None
infra_tab, perf_tab, biz_tab, quality_tab, fair_tab = st.tabs(TABS, default=opened)

# -- infrastructure: every variant of the version ------------------------------------------
with infra_tab:
    infra = mon.layer("infra_windows", dv, sel.model, version=sel.version, **args)
    resources = mon.layer("resource_windows", dv, sel.model, version=sel.version, **args)
    if not infra.empty:
        total, errors = int(infra["requests"].sum()), int(infra["errors"].sum())
        c = st.columns(4)
        c[0].metric("Requests", f"{total:,}")
        c[1].metric("Error rate", f"{errors / total:.2%}" if total else "n/a")
        c[2].metric("Worst window p95", f"{infra['latency_p95'].max():.0f} ms")
        c[3].metric("Variants", md_list(sorted(infra["variant"].unique())))
    left, right = st.columns(2)
    limits = infra_limits(get_store(), sel.model, sel.version)  # the alert thresholds
    left.plotly_chart(
        charts.latency_figure(infra, grain=sel.grain, thresholds_ms=limits["latency_ms"]),
        key="latency",
    )
    right.plotly_chart(
        charts.error_rate_figure(infra, grain=sel.grain, thresholds=limits["error_rate"]),
        key="errors",
    )
    left.plotly_chart(charts.throughput_figure(infra, grain=sel.grain), key="throughput")
    metrics = sorted(resources["metric"].unique()) if not resources.empty else []
    if not metrics:
        right.plotly_chart(
            charts.empty_figure("Resources", "No infrastructure metrics in this period."),
            key="resource_empty",
        )
    for i, metric in enumerate(metrics):
        target = right if i % 2 == 0 else left
        target.plotly_chart(
            charts.resource_figure(resources, metric, grain=sel.grain), key=f"res_{metric}"
        )

# -- performance: the chosen variant, on labelled predictions ------------------------------
with perf_tab:
    perf = mon.layer(
        "performance_windows", dv, sel.model, version=sel.version, variant=sel.variant, **args
    )
    reference = mon.layer("reference_performance", dv, sel.model, version=sel.version)
    labelled = int(perf["labelled"].sum()) if not perf.empty else 0
    predicted = int(perf["predictions"].sum()) if not perf.empty else 0
    coverage = (
        f"**{labelled:,}** of **{predicted:,}** predictions in the period have a label "
        f"({labelled / predicted:.0%} coverage). "
        if predicted
        else "No predictions in this period. "
    )
    st.markdown(
        coverage + "Labels arrive late, so recent windows have few: a window's metrics need "
        f"at least {layers.MIN_LABELS} labels and show a 95% interval."
    )
    # how late labels come (a join over every labelled prediction): only when it explains
    # a period that is mostly unlabelled
    mostly_unlabelled = predicted and labelled < 0.5 * predicted
    delay = (mon.layer("label_delay", dv, sel.model, version=sel.version, variant=sel.variant)
             if mostly_unlabelled else {"p90_hours": None})  # fmt: skip
    if delay["p90_hours"] is not None:
        lag = pd.Timedelta(hours=delay["p90_hours"]).ceil("D")
        st.info(
            f"Labels of {md(sel.model)} arrive a median of {delay['p50_hours'] / 24:.1f} days after "
            f"the prediction (90% within {delay['p90_hours'] / 24:.1f} days), so most of this "
            "period has no label yet.",
            icon=":material/schedule:",
        )
        st.button(
            f"Show the {(sel.until - sel.since).days} days ending {lag.days} days earlier",
            key="labelled_period",
            on_click=mon.shift_period,
            args=(-lag.days,),
        )
    estimated = mon.estimated(dv, mon.results_key(sel.model), sel.model, version=sel.version,
                              variant=sel.variant, **args)  # fmt: skip
    st.markdown(
        "Each chart shows the metric **estimated** from the predictions' scores (or, for a "
        "regressor, from its features and prediction) while labels are pending, as a dashed "
        "line in its shaded 95% band, and the **realized** metric on labels with its 95% "
        "interval where a window has enough of them. The estimate assumes the relation "
        "between inputs and label is unchanged since the reference; the concept-drift check "
        "tests that once labels arrive."
    )
    if task == "regression":
        names = ["mae", "rmse", "bias"]
    else:
        names = ["roc_auc", "accuracy", "precision", "recall", "f1"]
        if task != "binary_classification":
            names.remove("roc_auc")
    span = (sel.since, sel.until)  # one time axis for every chart of the tab
    left, right = st.columns(2)
    for i, name in enumerate(names):
        ref_value = reference.get(name)
        if name == "bias":  # not estimated: the realized chart alone
            figure = charts.metric_figure(perf, name, grain=sel.grain, reference=ref_value,
                                          min_labels=layers.MIN_LABELS)  # fmt: skip
            figure.update_xaxes(range=list(span))
        else:
            figure = charts.performance_figure(
                perf, estimated, name, grain=sel.grain, reference=ref_value,
                min_labels=layers.MIN_LABELS, x_range=span,
            )  # fmt: skip
        (left if i % 2 == 0 else right).plotly_chart(figure, key=f"metric_{name}")
    st.plotly_chart(charts.coverage_figure(perf, grain=sel.grain, x_range=span), key="coverage")
    period = {"since": sel.since, "until": sel.until, "version": sel.version,
              "variant": sel.variant}  # fmt: skip
    left, right = st.columns(2)
    if task == "regression":
        hist = mon.layer("residual_histogram", dv, sel.model, **period)
        left.plotly_chart(charts.residual_figure(hist), key="residuals")
    else:
        cm = mon.layer("confusion_matrix", dv, sel.model, **period)
        left.plotly_chart(charts.confusion_figure(cm), key="confusion")
        if task == "binary_classification":
            cal = mon.layer("calibration_bins", dv, sel.model, **period)
            right.plotly_chart(charts.calibration_figure(cal), key="calibration")
    with st.expander("Metrics per window, with label counts and intervals"):
        st.dataframe(perf, hide_index=True, width="stretch")
    with st.expander("Estimated metrics per window (labels pending), with bands and reasons"):
        st.dataframe(estimated, hide_index=True, width="stretch", key="estimated_table")
    ref_text = ", ".join(
        f"{k} {v:.3g}"
        for k, v in reference.items()
        if k in names and v is not None and not math.isnan(v)
    )
    st.caption(
        f"Reference ({md(sel.version)}'s validation data, {reference.get('labelled', 0):,} rows): "
        f"{ref_text or 'no labelled reference rows'}."
    )

# -- business: each KPI beside the model ---------------------------------------------------
with biz_tab:
    kpis = ctx["kpis"]
    if not kpis:
        st.info(f"{md(sel.model)} declares no business KPI in its spec.")
    else:
        business = mon.layer(
            "business_windows", dv, sel.model, version=sel.version, variant=sel.variant, **args
        )
        perf_metric = "mae" if task == "regression" else "accuracy"
        for name, kpi in kpis.items():
            st.plotly_chart(
                charts.kpi_figure(business, name, grain=sel.grain, perf=perf,
                                  metric=perf_metric, unit=kpi.get("unit")),
                key=f"kpi_{name}",
            )  # fmt: skip
            if kpi.get("description"):
                direction = kpi.get("direction", "higher_is_better").replace("_", " ")
                st.caption(f"{md(name)}: {md(kpi['description'])} ({direction}).")

# -- data quality: stored results of the three tiers ------------------------------------------
with quality_tab:
    mon.lake_sources_section(sel.model)
    # what is not computed yet, and an offer to compute it in the background
    missing = mon.monitoring_status(sel)
    quality = mon.quality(
        dv, mon.results_key(sel.model), sel.model, version=sel.version, variant=sel.variant,
        grain=sel.grain, since=sel.since, until=sel.until,
    )  # fmt: skip
    if not quality.empty:
        quality = quality.assign(
            row=quality["tier"] + " · " + quality["check_name"] + " · " + quality["subject"]
        )
        rank = quality["severity"].map(lambda s: severity_rank(s))
        flagged = quality[rank > 0]
        st.plotly_chart(
            charts.severity_heatmap(
                quality, row="row", title="Data quality per window (worst severity)",
                row_title="tier · check · subject",
            ),
            key="quality_heatmap",
        )  # fmt: skip
        st.markdown(f"**{len(flagged)}** flagged result(s) in the period.")
        if not flagged.empty:
            table = flagged.sort_values(["window_start", "tier"]).assign(
                rate_pct=100 * flagged["rate"]
            )
            st.dataframe(
                table[["window_start", "tier", "check_name", "subject", "rate_pct", "severity",
                       "response", "n_current"]],
                hide_index=True, width="stretch",
                column_config={
                    "window_start": st.column_config.DatetimeColumn(
                        "Window (UTC)", format="YYYY-MM-DD HH:mm"),
                    "rate_pct": st.column_config.NumberColumn("Affected rows %", format="%.2f"),
                    "n_current": st.column_config.NumberColumn("Rows"),
                },
            )  # fmt: skip
            with_examples = table[table["examples"].map(bool)]
            if not with_examples.empty:
                choice = st.selectbox(
                    "Offending rows of",
                    list(with_examples.index),
                    format_func=lambda i: (
                        f"{with_examples.at[i, 'window_start']:%Y-%m-%d %H:%M} · "
                        f"{with_examples.at[i, 'check_name']} · {with_examples.at[i, 'subject']}"
                    ),
                    key="quality_examples",
                )
                st.dataframe(pd.DataFrame(with_examples.at[choice, "examples"]), hide_index=True)
    elif not missing:
        st.info("No data-quality results for this selection (no predictions in the period).")

# -- fairness and segments over time -------------------------------------------------------
with fair_tab:
    fairness_tab(dv, sel, task)
