"""Plotly figures for the monitoring pages, built from result frames (no streamlit here).

Every figure has a title, axis titles with units, its thresholds drawn as lines, and an
honest empty state: a frame without data gives a blank figure that says what is missing,
never axes that pretend to show something.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lifecycle.drift.severity import SEVERITIES

HEIGHT = 380
MARGIN = {"l": 10, "r": 10, "t": 100, "b": 10}
SEVERITY_COLOURS = {
    "no data": "#e8e8e8",
    "insufficient": "#c9c9c9",
    "none": "#2e9e5b",
    "minor": "#f2c14e",
    "moderate": "#f08a24",
    "significant": "#d1332e",
}
# severity -> heat value: -2 no data, -1 insufficient, 0..3 none..significant
SEVERITY_VALUE = {"no data": -2, "insufficient": -1, **{s: i for i, s in enumerate(SEVERITIES)}}
VARIANT_DASH = {"production": "solid", "canary": "dash", "shadow": "dot", "reference": "longdash"}
THRESHOLD_COLOURS = ("#f2c14e", "#f08a24", "#d1332e")
SIDE_COLOURS = {"reference": "#7f7f7f", "current": "#1f77b4"}


def _single_time_range(fig: go.Figure) -> None:
    """A time axis with one point would show sub-millisecond ticks: give it a day each side."""
    stamps: set[pd.Timestamp] = set()
    for trace in fig.data:
        x = getattr(trace, "x", None)
        if x is None or not len(x) or isinstance(trace, go.Heatmap):
            return
        if not isinstance(x[0], pd.Timestamp | np.datetime64) and not hasattr(x[0], "tzinfo"):
            return
        stamps.update(pd.Timestamp(v) for v in x)
    if len(stamps) == 1:
        (only,) = stamps
        fig.update_xaxes(range=[only - pd.Timedelta(days=1), only + pd.Timedelta(days=1)])


def plain(text):
    """Free text as plotly text: plotly renders a subset of HTML (links included) in titles,
    legends, tick labels and annotations, so `<` and `>` of data are shown, never parsed."""
    if not isinstance(text, str):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain_traces(fig: go.Figure) -> None:
    """Trace names and categorical x/y values of data (versions, categories, segments)."""
    for trace in fig.data:
        if isinstance(getattr(trace, "name", None), str):
            trace.name = plain(trace.name)
        for axis in ("x", "y"):
            values = getattr(trace, axis, None)
            if values is not None and any(isinstance(v, str) for v in values):
                setattr(trace, axis, [plain(v) for v in values])


def _layout(fig: go.Figure, title: str, x: str, y: str, *, height: int = HEIGHT) -> go.Figure:
    _single_time_range(fig)
    _plain_traces(fig)
    fig.update_layout(
        title={"text": plain(title), "y": 0.98, "yref": "container", "yanchor": "top"},
        xaxis_title=plain(x),
        yaxis_title=plain(y),
        height=height,
        margin=MARGIN,
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        hovermode="x unified",
    )
    return fig


def empty_figure(title: str, message: str, *, height: int = 220) -> go.Figure:
    """A blank figure that says why there is nothing to show."""
    fig = go.Figure()
    fig.add_annotation(
        text=plain(message),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font_size=14,
    )
    fig.update_layout(title=plain(title), height=height, margin=MARGIN)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def is_empty_figure(fig: go.Figure) -> bool:
    return not fig.data


def _hline(
    fig: go.Figure, y: float, label: str = "", colour: str = "#555", at: float = 0.0
) -> None:
    """A dashed horizontal line across the plot (cheaper than fig.add_hline), labelled at
    `at` (0 = left edge, 1 = right edge, in plot widths)."""
    _guide(fig, {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y,
                 "y1": y, "line": {"dash": "dash", "color": colour, "width": 1.5}})  # fmt: skip
    if label:
        anchor = "right" if at >= 1 else "left"
        _label(fig, label, x=at, y=y, xref="paper", yref="y", xanchor=anchor)


def _vline(fig: go.Figure, x, label: str = "", colour: str = "#555", dash: str = "solid"):
    _guide(fig, {"type": "line", "yref": "paper", "y0": 0, "y1": 1, "xref": "x", "x0": x,
                 "x1": x, "line": {"dash": dash, "color": colour, "width": 1}})  # fmt: skip
    if label:
        _label(fig, label, x=x, y=1, xref="x", yref="paper", xanchor="left")


def _guide(fig: go.Figure, shape: dict) -> None:
    fig.layout.shapes = (*fig.layout.shapes, shape)


def _label(fig: go.Figure, text: str, **where) -> None:
    note = {"text": text, "showarrow": False, "yanchor": "bottom", "font": {"size": 11}}
    fig.layout.annotations = (*fig.layout.annotations, {**note, **where})


def _thresholds(
    fig: go.Figure, values: Sequence[float] | None, labels: Sequence[str] | None = None
) -> None:
    """Horizontal lines at the given thresholds (e.g. minor / moderate / significant)."""
    if not values:
        return
    labels = labels or ["minor", "moderate", "significant"][: len(values)]
    colours = THRESHOLD_COLOURS[-len(values) :]
    # labels staggered across the width: close thresholds would print on top of each other
    spots = (0.0, 0.36, 0.72)
    for i, (value, label, colour) in enumerate(zip(values, labels, colours, strict=False)):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        _hline(fig, value, f"{label} {value:g}", colour, at=spots[i % len(spots)])


def _series_name(version: str, variant: str) -> str:
    return f"{version} {variant}"


def _groups(frame: pd.DataFrame) -> Iterable[tuple[str, str, pd.DataFrame]]:
    for (version, variant), part in frame.groupby(["model_version", "variant"], sort=True):
        yield version, variant, part.sort_values("window_start")


def _mark_window(fig: go.Figure, window_start) -> None:
    if window_start is not None:
        _vline(fig, pd.Timestamp(window_start), "chosen window")


# -- infrastructure ----------------------------------------------------------------------------


def latency_figure(infra: pd.DataFrame, *, grain: str = "day", thresholds_ms=None):
    """Latency p50 / p95 / p99 (ms) per window and version/variant, with absolute alert
    thresholds [warning, critical] when the model has them."""
    title = f"Latency per {grain} (p50, p95, p99)"
    if infra.empty:
        return empty_figure(title, "No requests in this period.")
    fig = go.Figure()
    for version, variant, part in _groups(infra):
        for q, width in (("p50", 1), ("p95", 2), ("p99", 1)):
            fig.add_trace(
                go.Scatter(
                    x=part["window_start"],
                    y=part[f"latency_{q}"],
                    name=f"{q} {_series_name(version, variant)}",
                    mode="lines",
                    line={"dash": VARIANT_DASH.get(variant, "solid"), "width": width},
                )
            )
    if thresholds_ms:
        _thresholds(fig, list(thresholds_ms), ["warning", "critical"])
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", "latency (ms)")


def error_rate_figure(infra: pd.DataFrame, *, grain: str = "day", thresholds=None):
    """Share of requests with status other than ok (%), with alert thresholds."""
    title = f"Error rate per {grain}"
    if infra.empty:
        return empty_figure(title, "No requests in this period.")
    fig = go.Figure()
    for version, variant, part in _groups(infra):
        fig.add_trace(
            go.Scatter(
                x=part["window_start"],
                y=100 * part["error_rate"],
                name=_series_name(version, variant),
                mode="lines+markers",
                marker_size=4,
                line_dash=VARIANT_DASH.get(variant, "solid"),
                customdata=np.stack([part["errors"], part["requests"]], axis=1),
                hovertemplate="%{y:.2f}% (%{customdata[0]} of %{customdata[1]})",
            )
        )
    if thresholds:
        _thresholds(fig, [100 * t for t in thresholds], ["warning", "critical"])
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", "requests failed (%)")


def throughput_figure(infra: pd.DataFrame, *, grain: str = "day"):
    title = f"Throughput per {grain}"
    if infra.empty:
        return empty_figure(title, "No requests in this period.")
    fig = go.Figure()
    for version, variant, part in _groups(infra):
        fig.add_trace(
            go.Scatter(
                x=part["window_start"],
                y=part["throughput_per_min"],
                name=_series_name(version, variant),
                mode="lines",
                line_dash=VARIANT_DASH.get(variant, "solid"),
            )
        )
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", "requests per minute (window mean)")


RESOURCE_UNITS = {"cpu_util": "CPU utilisation (%)", "memory_mb": "memory (MB)"}


def resource_figure(resources: pd.DataFrame, metric: str, *, grain: str = "day", limits=None):
    """Mean (line) and max (dotted) of one infrastructure metric per window."""
    title = f"{metric} per {grain} (mean and max)"
    part_all = resources[resources["metric"] == metric] if not resources.empty else resources
    if part_all.empty:
        return empty_figure(title, f"No {metric} samples in this period.")
    fig = go.Figure()
    for version, variant, part in _groups(part_all):
        name = _series_name(version, variant)
        fig.add_trace(go.Scatter(x=part["window_start"], y=part["value_mean"], name=f"mean {name}"))
        fig.add_trace(
            go.Scatter(
                x=part["window_start"],
                y=part["value_max"],
                name=f"max {name}",
                line_dash="dot",
                line_width=1,
            )
        )
    if limits:
        _thresholds(fig, limits, ["warning", "critical"])
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", RESOURCE_UNITS.get(metric, metric))


# -- performance -------------------------------------------------------------------------------

METRIC_LABELS = {
    "accuracy": "accuracy (share correct)",
    "precision": "precision (positive class)",
    "recall": "recall (positive class)",
    "f1": "F1 (positive class)",
    "roc_auc": "ROC AUC",
    "mae": "MAE (target units)",
    "rmse": "RMSE (target units)",
    "bias": "bias: mean prediction - actual (target units)",
}


def metric_figure(
    perf: pd.DataFrame,
    metric: str,
    *,
    grain: str = "day",
    reference: float | None = None,
    min_labels: int | None = None,
    unit: str | None = None,
):
    """One performance metric over time with its 95% interval band (where defined), the
    labelled count in the hover and the version's reference value as a line."""
    label = METRIC_LABELS.get(metric, metric)
    if unit and metric in ("mae", "rmse", "bias"):
        label = label.replace("target units", unit)
    title = f"{label.split(' (')[0]} per {grain}, on labelled predictions"
    have = perf[perf[metric].notna()] if metric in perf and not perf.empty else perf.iloc[0:0]
    if have.empty:
        why = (
            "No window has enough labels yet"
            + (f" (at least {min_labels} labelled predictions)" if min_labels else "")
            + "."
        )
        return empty_figure(title, why)
    fig = go.Figure()
    for version, variant, part in _groups(have):
        name = _series_name(version, variant)
        low, high = f"{metric}_low", f"{metric}_high"
        if low in part and part[low].notna().any():
            fig.add_trace(
                go.Scatter(
                    x=pd.concat([part["window_start"], part["window_start"][::-1]]),
                    y=pd.concat([part[high], part[low][::-1]]),
                    fill="toself",
                    mode="lines",
                    line_width=0,
                    opacity=0.2,
                    name=f"95% interval {name}",
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=part["window_start"],
                y=part[metric],
                name=name,
                mode="lines+markers",
                marker_size=4,
                line_dash=VARIANT_DASH.get(variant, "solid"),
                customdata=np.stack([part["labelled"], 100 * part["coverage"]], axis=1),
                hovertemplate="%{y:.3f} on %{customdata[0]} labels (%{customdata[1]:.0f}%)",
            )
        )
    if reference is not None and not math.isnan(reference):
        _hline(fig, reference, f"reference {reference:.3g}", at=1.0)  # clear of the thresholds
    return _layout(fig, title, "window start (UTC) of the predictions", label)


ESTIMATED_COLOUR = "#d9730d"  # orange: estimated (labels pending)
REALIZED_COLOUR = "#1f5fa8"  # blue: realized on labels
ESTIMATED_NAME = "estimated (labels pending)"
REALIZED_NAME = "realized (labelled)"


def _segments(part: pd.DataFrame, column: str) -> list[pd.DataFrame]:
    """Runs of consecutive rows where `column` is defined (a band is not drawn across a gap)."""
    defined = part[column].notna().to_numpy()
    runs = np.cumsum(np.r_[True, defined[1:] != defined[:-1]])
    return [part[runs == r] for r in np.unique(runs[defined])]


def _band(fig, part, low, high, *, name, colour, group, legend, rank=1000) -> None:
    """A shaded band between `low` and `high`, one polygon per run of defined windows; a
    lone window gets an error bar (a polygon of one point would not show)."""
    shown = False
    for run in _segments(part, low):
        if len(run) == 1:
            fig.add_trace(go.Scatter(
                x=run["window_start"], y=(run[low] + run[high]) / 2, mode="markers",
                marker={"size": 1, "color": colour}, legendgroup=group, showlegend=False,
                error_y={"type": "data", "symmetric": False, "array": run[high] - (run[low] + run[high]) / 2,
                         "arrayminus": (run[low] + run[high]) / 2 - run[low], "color": colour,
                         "thickness": 6, "width": 0},
                opacity=0.3, hoverinfo="skip",
            ))  # fmt: skip
            continue
        fig.add_trace(go.Scatter(
            x=pd.concat([run["window_start"], run["window_start"][::-1]]),
            y=pd.concat([run[high], run[low][::-1]]),
            fill="toself", fillcolor=colour, opacity=0.22, line_width=0, name=name,
            mode="lines", legendgroup=group, showlegend=legend and not shown, hoverinfo="skip",
            legendrank=rank,
        ))  # fmt: skip
        shown = True


def performance_figure(
    perf: pd.DataFrame,
    estimated: pd.DataFrame,
    metric: str,
    *,
    grain: str = "day",
    reference: float | None = None,
    min_labels: int | None = None,
    unit: str | None = None,
    x_range: Sequence | None = None,
):
    """One metric over time: the estimate from the predictions (labels pending) as a line
    in its shaded 95% band, and the realized metric on labels with its 95% interval where
    enough labels exist, on one time axis; the version's reference value as a line.

    `perf`: lifecycle.layers.performance_windows; `estimated`: .estimated_windows. Windows
    without an estimate say why in a note; with neither, the figure says why it is empty.
    """
    label = METRIC_LABELS.get(metric, metric)
    if unit and metric in ("mae", "rmse", "bias"):
        label = label.replace("target units", unit)
    name = label.split(" (")[0]
    title = f"{name[:1].upper()}{name[1:]} per {grain}: estimated and realized"
    real = perf[perf[metric].notna()] if metric in perf and not perf.empty else perf.iloc[0:0]
    est = estimated[estimated["metric"] == metric] if not estimated.empty else estimated
    have_est = est[est["estimate"].notna()] if not est.empty else est
    missing = est[est["estimate"].isna()] if not est.empty else est
    why = _no_estimate_reason(missing, est, estimated)
    if real.empty and have_est.empty:
        labels = f" (at least {min_labels} labelled predictions)" if min_labels else ""
        return empty_figure(
            title, f"No estimate: {why}<br>No window has enough labels yet{labels}."
        )
    fig = go.Figure()
    series = {(r.model_version, r.variant) for r in pd.concat([have_est, real]).itertuples()}
    several = len(series) > 1  # name the version and variant only when there is a choice
    # every window, so that neither the band nor the line bridges one without an estimate
    for version, variant, part in _groups(est) if not have_est.empty else []:
        suffix = f" · {version} {variant}" if several else ""
        _band(fig, part, "low", "high", name=f"{ESTIMATED_NAME}, 95% band{suffix}",
              colour=ESTIMATED_COLOUR, group=f"est{suffix}", legend=True, rank=2)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=part["window_start"], y=part["estimate"], name=f"{ESTIMATED_NAME}{suffix}",
            mode="lines+markers", marker_size=4, legendgroup=f"est{suffix}", legendrank=1,
            line={"color": ESTIMATED_COLOUR, "dash": "dash"},
            customdata=np.stack([part["low"], part["high"], part["predictions"]], axis=1),
            hovertemplate="estimated %{y:.3f} (95% %{customdata[0]:.3f}-%{customdata[1]:.3f}) "
                          "from %{customdata[2]} predictions<extra></extra>",
        ))  # fmt: skip
    for version, variant, part in _groups(real) if not real.empty else []:
        suffix = f" · {version} {variant}" if several else ""
        low, high = f"{metric}_low", f"{metric}_high"
        if low in part and part[low].notna().any():
            _band(fig, part, low, high, name=f"{REALIZED_NAME}, 95% interval{suffix}",
                  colour=REALIZED_COLOUR, group=f"real{suffix}", legend=True, rank=4)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=part["window_start"], y=part[metric], name=f"{REALIZED_NAME}{suffix}",
            mode="lines+markers", marker_size=5, legendgroup=f"real{suffix}", legendrank=3,
            line={"color": REALIZED_COLOUR, "dash": VARIANT_DASH.get(variant, "solid")},
            customdata=np.stack([part["labelled"], 100 * part["coverage"]], axis=1),
            hovertemplate="realized %{y:.3f} on %{customdata[0]} labels "
                          "(%{customdata[1]:.0f}%)<extra></extra>",
        ))  # fmt: skip
    if reference is not None and not math.isnan(reference):
        _hline(fig, reference, f"reference {reference:.3g}", at=1.0)
    if why and not missing.empty:
        _label(fig, plain(f"No estimate in {missing['window_start'].nunique()} window(s): {why}"),
               x=0, y=0, xref="paper", yref="paper", xanchor="left")  # fmt: skip
    _layout(fig, title, "window start (UTC) of the predictions", label, height=HEIGHT + 80)
    # four legend entries wrap into rows at half width: at the figure's foot, clear of the
    # title and of the axis title
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": 0, "yref": "container",
                              "yanchor": "bottom"},
                      margin={**MARGIN, "t": 60, "b": 120})  # fmt: skip
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def _no_estimate_reason(missing: pd.DataFrame, est: pd.DataFrame, every: pd.DataFrame) -> str:
    """Why windows have no estimate: the most common stored reason, that the metric is not
    estimated for the task (others are), or that none is stored."""
    if est.empty and not every.empty:
        return (
            "this metric is not estimated for this model's task (a multiclass model logs "
            "only the predicted class's probability: accuracy alone is estimated)."
        )
    if est.empty:
        return "no estimate is stored for these windows (monitoring has not computed them)."
    if missing.empty:
        return ""
    reasons = missing["reason"].dropna()
    if reasons.empty:
        return "undefined in these windows."
    return str(reasons.value_counts().index[0]).rstrip(".") + "."


def coverage_figure(perf: pd.DataFrame, *, grain: str = "day", x_range: Sequence | None = None):
    """Labelled predictions per window (bars) and label coverage (%): labels arrive late.
    `x_range`: the time axis of the performance figures above it."""
    title = f"Labels per {grain}: how much of the performance is known"
    if perf.empty:
        return empty_figure(title, "No predictions in this period.")
    fig = go.Figure()
    for version, variant, part in _groups(perf):
        name = _series_name(version, variant)
        fig.add_trace(
            go.Bar(x=part["window_start"], y=part["labelled"], name=f"labelled {name}", opacity=0.6)
        )
        fig.add_trace(
            go.Scatter(
                x=part["window_start"],
                y=100 * part["coverage"],
                name=f"coverage % {name}",
                yaxis="y2",
                mode="lines",
                line_dash=VARIANT_DASH.get(variant, "solid"),
            )
        )
    fig.update_layout(
        yaxis2={"title": "coverage (% labelled)", "overlaying": "y", "side": "right",
                "range": [0, 105], "tickvals": [0, 25, 50, 75, 100], "showgrid": False},
        barmode="group",
    )  # fmt: skip
    _layout(fig, title, "window start (UTC) of the predictions", "labelled predictions")
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def confusion_figure(cm: pd.DataFrame, *, positive: str | None = None):
    title = "Confusion matrix (labelled predictions in the period)"
    if cm.empty:
        return empty_figure(title, "No labelled predictions in this period.")
    classes = sorted(set(cm["actual"]) | set(cm["predicted"]))
    table = (
        cm.pivot_table(index="actual", columns="predicted", values="count", aggfunc="sum")
        .reindex(index=classes, columns=classes)
        .fillna(0)
        .astype(int)
    )
    share = table.div(table.sum(axis=1).replace(0, np.nan), axis=0)
    text = [
        [f"{table.iat[i, j]:,}<br>{share.iat[i, j]:.0%} of row" for j in range(len(classes))]
        for i in range(len(classes))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=share.to_numpy(),
            x=[f"predicted {c}" for c in classes],
            y=[f"actual {c}" for c in classes],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "share of row"},
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, "predicted class", "actual class")


def calibration_figure(cal: pd.DataFrame):
    title = "Calibration: observed positive rate per score bin"
    if cal.empty:
        return empty_figure(title, "No labelled scores in this period.")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], name="perfect calibration", line_dash="dash",
                   line_color="#999", mode="lines")
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=cal["mean_score"],
            y=cal["observed_rate"],
            name="observed (95% Wilson interval)",
            mode="lines+markers",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": cal["observed_high"] - cal["observed_rate"],
                "arrayminus": cal["observed_rate"] - cal["observed_low"],
            },
            customdata=cal["labelled"],
            hovertemplate="score %{x:.2f}: observed %{y:.2f} on %{customdata} labels",
        )
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(hovermode="closest")
    return _layout(fig, title, "mean predicted probability in bin", "observed positive rate")


def residual_figure(hist: pd.DataFrame, *, unit: str = "target units"):
    title = "Residuals: prediction - actual (labelled predictions in the period)"
    if hist.empty:
        return empty_figure(title, "No labelled predictions in this period.")
    fig = go.Figure(
        go.Bar(
            x=(hist["bin_left"] + hist["bin_right"]) / 2,
            y=hist["count"],
            width=(hist["bin_right"] - hist["bin_left"]),
            name="residuals",
        )
    )
    _vline(fig, 0, dash="dash")
    mean = hist.attrs.get("mean")
    if mean is not None and not math.isnan(mean):
        _vline(fig, mean, f"mean {mean:.2f}", "#d1332e")
    fig.update_layout(hovermode="closest", bargap=0)
    return _layout(fig, title, f"residual ({unit})", "labelled predictions")


# -- business ------------------------------------------------------------------------------------


def kpi_figure(
    business: pd.DataFrame,
    kpi: str,
    *,
    grain: str = "day",
    perf: pd.DataFrame | None = None,
    metric: str | None = None,
    unit: str | None = None,
):
    """A KPI per window above the model's output (mean prediction of the events) and, if
    given, the model's performance metric, in panels sharing the time axis: a KPI drop with
    stable accuracy shows, and each series keeps its own scale (one shared second axis
    squeezed minutes and errors, or scores and AUC, into one band)."""
    title = f"{kpi} per {grain} beside the model"
    part_all = business[business["kpi"] == kpi] if not business.empty else business
    if part_all.empty:
        return empty_figure(title, f"No {kpi} events in this period.")
    with_metric = perf is not None and metric and metric in perf and perf[metric].notna().any()
    rows = 3 if with_metric else 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for version, variant, part in _groups(part_all):
        name = _series_name(version, variant)
        fig.add_trace(
            go.Scatter(
                x=part["window_start"], y=part["value_mean"], name=f"{kpi} {name}",
                mode="lines+markers", marker_size=4, customdata=part["events"],
                hovertemplate="%{y:.3f} over %{customdata} events",
            ),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=part["window_start"], y=part["mean_prediction"],
                       name=f"mean model output {name}", mode="lines", line_dash="dot"),
            row=2, col=1,
        )  # fmt: skip
    if with_metric:
        for version, variant, part in _groups(perf[perf[metric].notna()]):
            fig.add_trace(
                go.Scatter(x=part["window_start"], y=part[metric], mode="lines",
                           name=f"{metric} {_series_name(version, variant)}", line_dash="dash"),
                row=3, col=1,
            )  # fmt: skip
    label = f"{kpi} per event" + (f" ({unit})" if unit else "")
    _layout(fig, title, "", label, height=HEIGHT + 120 * (rows - 1))
    fig.update_yaxes(title_text="model output (mean)", row=2, col=1)
    if with_metric:
        fig.update_yaxes(title_text=metric, row=3, col=1)
    # from zero: an autoscaled panel turns a flat series' noise into a cliff
    fig.update_yaxes(rangemode="tozero", title_font_size=12)
    fig.update_xaxes(title_text="window start (UTC) of the events", row=rows, col=1)
    return fig


# -- data quality --------------------------------------------------------------------------------


def severity_label(severity, status: str | None = None) -> str:
    if severity is None or (isinstance(severity, float) and math.isnan(severity)):
        return "insufficient" if status == "insufficient_data" else "no data"
    return str(severity)


def window_label(window, stamps: Sequence[pd.Timestamp]) -> str:
    """A heatmap column label: the UTC day, with the hour when windows are shorter."""
    hourly = any(t.hour or t.minute for t in stamps)
    return pd.Timestamp(window).strftime("%Y-%m-%d %H:%M" if hourly else "%Y-%m-%d")


def severity_heatmap(
    frame: pd.DataFrame,
    *,
    row: str,
    title: str,
    row_title: str,
    selected: tuple | None = None,
    height: int | None = None,
):
    """Rows (features, checks) x windows, coloured by severity; insufficient data is grey.

    `frame` columns: window_start, `row`, severity, status and optional hover detail
    (`effect_size`, `method`). Several results in one cell keep the worst.
    """
    if frame.empty:
        return empty_figure(title, "No stored results for this selection.")
    cells, rows, windows = _worst_cells(frame, row)
    z = cells.pivot(index=row, columns="window_start", values="value").reindex(
        index=rows, columns=windows
    )
    label = cells.pivot(index=row, columns="window_start", values="label").reindex(
        index=rows, columns=windows
    )
    hover = label.fillna("no data").to_numpy().astype(object)
    if "effect_size" in cells:
        effect = cells.pivot(index=row, columns="window_start", values="effect_size").reindex(
            index=rows, columns=windows
        )
        for (i, j), value in np.ndenumerate(effect.to_numpy(dtype=float, na_value=np.nan)):
            if not math.isnan(value):
                hover[i, j] = f"{hover[i, j]}<br>effect {value:.4g}"
    # discrete colour scale over the values -2..3
    keys = list(SEVERITY_VALUE)
    scale = []
    for i, key in enumerate(keys):
        lo, hi = i / len(keys), (i + 1) / len(keys)
        scale += [[lo, SEVERITY_COLOURS[key]], [hi, SEVERITY_COLOURS[key]]]
    stamps = [pd.Timestamp(w) for w in windows]
    labels = [window_label(w, stamps) for w in stamps]
    fig = go.Figure(
        go.Heatmap(
            z=z.fillna(-2).to_numpy(),
            x=labels,
            y=rows,
            zmin=-2.5,
            zmax=3.5,
            colorscale=scale,
            customdata=hover,
            hovertemplate="%{y} · %{x}<br>%{customdata}<extra></extra>",
            colorbar={
                "tickvals": list(SEVERITY_VALUE.values()),
                "ticktext": keys,
                "title": "severity",
            },
            xgap=1,
            ygap=1,
        )
    )
    if selected is not None and selected[0] in rows and selected[1] is not None:
        column = window_label(selected[1], stamps)
        if column in labels:
            x, y = labels.index(column), rows.index(selected[0])
            _guide(fig, {"type": "rect", "x0": x - 0.5, "x1": x + 0.5, "y0": y - 0.5,
                         "y1": y + 0.5, "line": {"color": "#000", "width": 3}})  # fmt: skip
    fig.update_xaxes(type="category")
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed")
    fig = _layout(
        fig, title, "window start (UTC)", row_title, height=height or max(260, 80 + 28 * len(rows))
    )
    fig.update_layout(margin={**MARGIN, "t": 50})  # no legend above a heatmap
    return fig


def _worst_cells(frame: pd.DataFrame, row: str) -> tuple[pd.DataFrame, list, list]:
    """One result per (row, window), the worst; with the rows in order and sorted windows."""
    frame = frame.assign(
        label=[severity_label(s, st) for s, st in zip(frame["severity"], frame["status"],
                                                       strict=True)],
    )  # fmt: skip
    frame["value"] = frame["label"].map(SEVERITY_VALUE)
    cells = frame.sort_values("value").groupby([row, "window_start"], sort=False).tail(1)
    return cells, list(dict.fromkeys(frame[row])), sorted(frame["window_start"].unique())


# y-axis titles of effect sizes whose sign or unit is not obvious (docs/drift.md)
EFFECT_TITLES = {
    "metric_drop": "metric drop (points; > 0 = worse)",
    "error_increase": "error increase (relative; 1 = +100%)",
    "surrogate_gain": "surrogate gain (> 0 = production beaten)",
}


def effect_title(methods: Iterable, fallback: str) -> str:
    """The effect-size axis title for a history of results (their `method` values)."""
    known = [m for m in dict.fromkeys(methods) if isinstance(m, str)]
    return EFFECT_TITLES.get(known[0], fallback) if len(known) == 1 else fallback


CELL_SELECTION = "cell"  # name of the severity grid's click selection
WINDOW_KEY_FORMAT = "%Y-%m-%dT%H:%M"  # a window in URLs and in the grid's selection


def severity_grid(
    frame: pd.DataFrame, *, title: str, row_title: str, selected: tuple | None = None
) -> alt.LayerChart:
    """The drift heatmap as an Altair chart whose cells can be clicked (Plotly heatmaps
    report no selection to Streamlit). Rows (features, then checks) x windows, coloured by
    the worst severity; "no data" where nothing is stored. A click selects the cell's
    (subject, window key) in the point selection CELL_SELECTION (see picked_cell);
    `selected` (subject, window start) is outlined in black.

    `frame`: lifecycle.layers.drift_cells (row, subject, window_start, severity, status,
    effect_size).
    """
    cells, rows, windows = _worst_cells(frame, "row")
    stamps = [pd.Timestamp(w) for w in windows]
    grid = pd.MultiIndex.from_product([rows, windows], names=["row", "window_start"])
    data = (
        cells.set_index(["row", "window_start"])[["subject", "label", "effect_size"]]
        .reindex(grid)
        .reset_index()
    )
    row_info = frame.drop_duplicates("row").set_index("row")  # row -> subject, check_name
    data = pd.DataFrame(
        {
            "row": data["row"],
            "subject": data["row"].map(row_info["subject"]),
            "check_name": data["row"].map(row_info["check_name"]),
            "window": [pd.Timestamp(w).strftime(WINDOW_KEY_FORMAT) for w in data["window_start"]],
            "window_label": [window_label(w, stamps) for w in data["window_start"]],
            "severity": data["label"].fillna("no data"),
            "effect": [_effect_text(v) for v in data["effect_size"]],
        }
    )
    columns = [window_label(w, stamps) for w in stamps]
    x = alt.X("window_label:O", sort=columns, title="window start (UTC)",
              axis=alt.Axis(labelAngle=-45, labelOverlap=True))  # fmt: skip
    y = alt.Y("row:N", sort=rows, title=row_title, axis=alt.Axis(labelLimit=260))
    pick = alt.selection_point(name=CELL_SELECTION, fields=["subject", "window"], on="click",
                               clear=False, toggle=False)  # fmt: skip
    cells_layer = (
        alt.Chart(data)
        .mark_rect(stroke="white", strokeWidth=1, cursor="pointer")
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "severity:N",
                scale=alt.Scale(
                    domain=list(SEVERITY_COLOURS), range=list(SEVERITY_COLOURS.values())
                ),
                legend=alt.Legend(title="severity", orient="bottom", direction="horizontal"),
            ),
            tooltip=[
                alt.Tooltip("row:N", title=row_title),
                alt.Tooltip("window_label:N", title="window start (UTC)"),
                alt.Tooltip("severity:N", title="severity"),
                alt.Tooltip("effect:N", title="effect size"),
            ],
        )
        .add_params(pick)
    )
    parts = [cells_layer]
    if selected is not None and selected[1] is not None:
        key = pd.Timestamp(selected[1]).strftime(WINDOW_KEY_FORMAT)
        # feature and prediction rows only: a concept or multivariate subject may share a
        # feature's name
        mark = data[
            data["check_name"].isin(["data_drift", "prediction_drift"])
            & (data["subject"] == selected[0])
            & (data["window"] == key)
        ]
        if not mark.empty:
            outline = alt.Chart(mark).mark_rect(filled=False, stroke="#000", strokeWidth=3)
            parts.append(outline.encode(x=x, y=y))
    return alt.layer(*parts).properties(title=title, height=alt.Step(24) if len(rows) > 3 else 110)


def _effect_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def picked_cell(selection) -> tuple[str, str] | None:
    """(subject, window key) of the clicked severity_grid cell in a chart event's selection,
    or None when nothing is selected."""
    points = (selection or {}).get(CELL_SELECTION) or []
    if not points:
        return None
    point = points[0]
    subject, window = point.get("subject"), point.get("window")
    return (str(subject), str(window)) if subject and window else None


def quality_rate_figure(quality: pd.DataFrame, check: str, subject: str, *, thresholds=None):
    """Affected share (%) of one quality check over time, with its severity thresholds."""
    title = f"{check} of {subject}: affected rows per window"
    part = quality[(quality["check_name"] == check) & (quality["subject"] == subject)]
    part = part[part["rate"].notna()]
    if part.empty:
        return empty_figure(title, "No result with a measured rate for this check.")
    fig = go.Figure()
    for version, variant, group in _groups(part):
        fig.add_trace(
            go.Scatter(
                x=group["window_start"],
                y=100 * group["rate"],
                name=_series_name(version, variant),
                mode="lines+markers",
                marker_size=4,
            )
        )
    if thresholds:
        _thresholds(fig, [100 * t for t in thresholds])
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", "affected rows (%)")


# -- drift ------------------------------------------------------------------------------------


def distribution_figure(dist: pd.DataFrame, *, feature: str, window_label: str, ecdf=False):
    """Reference vs current distribution of one feature: overlaid histograms (or ECDFs)
    for numeric features, side-by-side bars of shares for categorical ones, unseen
    categories marked."""
    kind = dist.attrs.get("kind", "numeric")
    n_ref, n_cur = dist.attrs.get("n_reference", 0), dist.attrs.get("n_current", 0)
    title = f"{feature}: reference (n={n_ref:,}) vs {window_label} (n={n_cur:,})"
    if dist.empty or not (n_ref or n_cur):
        return empty_figure(title, "Neither side has a non-missing value.")
    fig = go.Figure()
    if kind == "numeric":
        centres = (dist["bin_left"] + dist["bin_right"]) / 2
        for side in ("reference", "current"):
            if ecdf:
                fig.add_trace(
                    go.Scatter(
                        x=dist["bin_right"],
                        y=dist[f"{side}_cdf"],
                        name=side,
                        mode="lines",
                        line_shape="hv",
                        line_color=SIDE_COLOURS[side],
                    )
                )
            else:
                fig.add_trace(
                    go.Bar(
                        x=centres,
                        y=100 * dist[f"{side}_share"],
                        width=dist["bin_right"] - dist["bin_left"],
                        name=side,
                        opacity=0.55,
                        marker_color=SIDE_COLOURS[side],
                    )
                )
        fig.update_layout(barmode="overlay", bargap=0, hovermode="closest")
        y = "cumulative share" if ecdf else "share of non-missing values (%)"
        return _layout(fig, title, f"{feature} (value)", y)
    labels = [f"{c} (unseen)" if u else str(c) for c, u in zip(dist["category"], dist["unseen"],
                                                                  strict=True)]  # fmt: skip
    for side in ("reference", "current"):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=100 * dist[f"{side}_share"],
                name=side,
                marker_color=SIDE_COLOURS[side],
            )
        )
    fig.update_layout(barmode="group", hovermode="closest")
    return _layout(fig, title, f"{feature} (category)", "share of non-missing values (%)")


def statistic_figure(
    history: pd.DataFrame,
    *,
    subject: str,
    value: str = "effect_size",
    thresholds: Sequence[float] | None = None,
    y_title: str = "effect size",
    selected_window=None,
    title: str | None = None,
):
    """A drift statistic of one subject over time, with its severity thresholds; windows
    without a verdict (insufficient data) are marked at the bottom, not plotted as 0."""
    title = title or f"{subject}: {y_title} per window"
    have = history[history[value].notna()] if not history.empty else history
    if have.empty:
        return empty_figure(title, "No window of this subject has a measured value.")
    fig = go.Figure()
    for version, variant, part in _groups(have):
        colours = [SEVERITY_COLOURS[severity_label(s, st)] for s, st in
                   zip(part["severity"], part["status"], strict=True)]  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=part["window_start"],
                y=part[value],
                name=_series_name(version, variant),
                mode="lines+markers",
                marker={"color": colours, "size": 7},
                line={"color": "#888", "dash": VARIANT_DASH.get(variant, "solid")},
            )
        )
    missing = history[history[value].isna()] if not history.empty else history
    if not missing.empty:
        fig.add_trace(
            go.Scatter(
                x=missing["window_start"],
                y=[0] * len(missing),
                name="insufficient data",
                mode="markers",
                marker={"symbol": "x", "color": "#999"},
            )
        )
    bounds = severity_bounds(have, thresholds) if value == "effect_size" else None
    if bounds is not None:
        _bound_traces(fig, bounds)
    else:
        _thresholds(fig, list(thresholds) if thresholds else None)
    _mark_window(fig, selected_window)
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", y_title)


def severity_bounds(history: pd.DataFrame, thresholds: Sequence[float] | None):
    """Per window: the chance level stored with the result and the measured effect at which
    each severity starts at that window's sizes (noise.detectable), or None when the
    results carry no chance level (computed before noise-aware grading)."""
    from lifecycle.drift import noise

    if not thresholds or history.empty or "details" not in history:
        return None
    chance = history["details"].map(lambda d: (d or {}).get("chance_level"))
    if chance.isna().all():
        return None
    rows = []
    for start, method, level in zip(history["window_start"], history["method"], chance,
                                    strict=True):  # fmt: skip
        if level is None or pd.isna(level):
            continue
        rows.append({"window_start": start, "chance": float(level),
                     **{name: noise.detectable(t, float(level), method)
                        for name, t in zip(SEVERITIES[1:], thresholds, strict=False)}})  # fmt: skip
    if not rows:
        return None
    # several series in one chart: the widest band per window (what any of them needs)
    return pd.DataFrame(rows).groupby("window_start", as_index=False).max()


def noise_sentence(result) -> str | None:
    """One line that puts a stored result's effect next to its chance level, e.g. "effect
    0.13, chance level at n = 165 (reference 5,000): 0.11; graded 0.02 ..." (None when the
    result has no chance level)."""
    details = result["details"] or {}
    chance = details.get("chance_level")
    if chance is None or result["effect_size"] is None or pd.isna(result["effect_size"]):
        return None
    n_cur, n_ref = result["n_current"], result["n_reference"]
    sizes = f"n = {int(n_cur):,}" if n_cur is not None and not pd.isna(n_cur) else "these sizes"
    if n_ref is not None and not pd.isna(n_ref):
        sizes += f" (reference {int(n_ref):,})"
    text = (f"Effect {result['effect_size']:.3g}; chance level at {sizes}: {chance:.3g} "
            f"({details.get('chance_quantile', 0.99):.0%} of no-change windows stay below it).")  # fmt: skip
    graded, smallest = details.get("graded_effect"), details.get("detectable_effect")
    if graded is not None:
        text += f" Graded on the part beyond chance: {graded:.3g}."
    if smallest is not None:
        unit = " sd" if result["method"] == "wasserstein" else ""
        text += f" The smallest effect a window of this size can grade: {smallest:.3g}{unit}."
    return text


def _bound_traces(fig: go.Figure, bounds: pd.DataFrame) -> None:
    fig.add_trace(
        go.Scatter(x=bounds["window_start"], y=bounds["chance"], name="chance level",
                   mode="lines", line={"color": "#9a9a9a", "dash": "dot", "shape": "hv"})
    )  # fmt: skip
    for name, colour in zip(SEVERITIES[1:], THRESHOLD_COLOURS, strict=True):
        if name in bounds:
            fig.add_trace(
                go.Scatter(x=bounds["window_start"], y=bounds[name], name=f"{name} from",
                           mode="lines", line={"color": colour, "dash": "dash", "width": 1.5,
                                               "shape": "hv"})
            )  # fmt: skip


def drivers_figure(drivers: Sequence[dict] | None, *, title: str = "Features driving it"):
    """Permutation importance of the multivariate domain classifier's features."""
    if not drivers:
        return empty_figure(title, "No driving features: the domain classifier was not flagged.")
    frame = pd.DataFrame(drivers)
    value = next((c for c in ("importance", "auc_drop", "score") if c in frame), None)
    name = next((c for c in ("feature", "name") if c in frame), None)
    if value is None or name is None:
        return empty_figure(title, "The stored result has no importance values.")
    frame = frame.sort_values(value)
    fig = go.Figure(go.Bar(x=frame[value], y=frame[name], orientation="h"))
    fig.update_layout(hovermode="closest")
    return _layout(
        fig, title, "permutation importance (drop of domain ROC AUC)", "feature", height=300
    )


def importance_figure(
    shares: pd.DataFrame, *, title: str, min_share: float | None = None
) -> go.Figure:
    """A version's importance profile: one horizontal bar per feature (share of the model's
    importance, labelled), largest on top; features below `min_share` (drift there calls for
    "investigate" at most) in grey, with the cut-off drawn.

    `shares`: lifecycle.drift_impact.StoredProfile.shares (feature, share)."""
    if shares.empty:
        return empty_figure(title, "No importance profile: see the reason above.")
    frame = shares.sort_values("share", kind="stable")
    below = frame["share"] < min_share if min_share is not None else frame["share"] < 0
    fig = go.Figure(
        go.Bar(
            x=frame["share"],
            y=frame["feature"],
            orientation="h",
            marker_color=["#9e9e9e" if b else "#1f77b4" for b in below],
            text=[f"{s:.1%}" for s in frame["share"]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} of the model's importance<extra></extra>",
        )
    )
    if min_share is not None and min_share > 0:
        _vline(fig, min_share, f"{min_share:.0%}: drift below is 'investigate'", "#888", "dash")
    fig.update_xaxes(
        tickformat=".0%", range=[0, min(1.0, float(frame["share"].max()) * 1.2 + 0.05)]
    )
    fig.update_layout(hovermode="closest", showlegend=False)
    fig = _layout(
        fig, title, "share of the model's importance", "feature",
        height=max(280, 130 + 36 * len(frame)),
    )  # fmt: skip
    fig.update_layout(margin={**MARGIN, "t": 70})  # no legend above the bars
    return fig


def live_difference_figure(comparison: dict, *, candidate: str, champion: str) -> go.Figure:
    """A live comparison (lifecycle.live_comparison, as dict): the cumulative difference
    candidate - production per day with its always-valid 95% band, zero and the minimum
    effect either side. Shares are drawn in percentage points."""
    daily = pd.DataFrame(comparison["daily"])
    title = f"{comparison['name']}: {candidate} - {champion} (production), since the stint began"
    if daily.empty:
        return empty_figure(title, "no live traffic of both versions yet")
    scale = 100.0 if comparison["unit"] == "share" else 1.0
    unit = "points" if comparison["unit"] == "share" else comparison["unit"] or "value"
    frame = daily.assign(
        window_start=daily["day"],
        **{c: daily[c] * scale for c in ("difference", "low", "high")},
    )
    fig = go.Figure()
    _band(fig, frame, "low", "high", name="always-valid 95% interval", colour="#4c78a8",
          group="band", legend=True)  # fmt: skip
    fig.add_trace(go.Scatter(
        x=frame["window_start"], y=frame["difference"], mode="lines+markers",
        name="difference so far", line={"color": "#4c78a8"},
        customdata=np.stack([daily["n_candidate"], daily["n_production"]], axis=-1),
        hovertemplate="%{y:.3g} " + unit + " (n = %{customdata[0]:,} vs %{customdata[1]:,})"
        "<extra></extra>",
    ))  # fmt: skip
    effect = comparison["min_effect"] * scale
    _hline(fig, 0.0, "no difference", colour="#333", at=1.0)
    better = 1 if comparison["higher_is_better"] else -1
    # the minimum effect either side as legend entries (labels on the lines would collide
    # with "no difference" when the effect is small against the interval)
    span = [frame["window_start"].min(), frame["window_start"].max()]
    for sign, side, colour in ((better, "better", "#54a24b"), (-better, "worse", "#e45756")):
        fig.add_trace(go.Scatter(
            x=span, y=[sign * effect] * 2, mode="lines", name=f"minimum effect ({side})",
            line={"dash": "dash", "color": colour, "width": 1.5}, hoverinfo="skip",
        ))  # fmt: skip
    return _layout(fig, title, "day (UTC)", f"difference ({unit})", height=320)


def group_rates_figure(frame: pd.DataFrame, attribute: str, *, grain: str = "day") -> go.Figure:
    """Positive rate per group of a sensitive attribute over windows (lifecycle.fairness)."""
    title = f"Positive rate per {attribute} group ({grain} windows)"
    part = frame[frame["attribute"] == attribute] if not frame.empty else frame
    if part.empty:
        return empty_figure(title, "no predictions with this attribute in the period")
    fig = go.Figure()
    for group, rows in part.groupby("grp", sort=True):
        fig.add_trace(go.Scatter(
            x=rows["window_start"], y=rows["positive_rate"], mode="lines+markers", name=group,
            customdata=rows["predictions"],
            hovertemplate="%{y:.1%} of %{customdata:,} predictions<extra>" + plain(group)
            + "</extra>",
        ))  # fmt: skip
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _layout(fig, title, "window start (UTC)", "share predicted positive")


def disparate_impact_figure(frame: pd.DataFrame, *, grain: str = "day") -> go.Figure:
    """Per window and attribute the lowest group's ratio to the highest (disparate impact)
    with the 80% rule's line; groups under 30 predictions are left out of the ratio."""
    title = f"Disparate impact: lowest group / highest group ({grain} windows)"
    if frame.empty or frame["disparate_impact"].isna().all():
        return empty_figure(title, "no window with two groups of 30+ predictions")
    lowest = (frame.dropna(subset=["disparate_impact"])
              .groupby(["attribute", "window_start"], as_index=False)["disparate_impact"].min())  # fmt: skip
    fig = go.Figure()
    for attribute, rows in lowest.groupby("attribute"):
        fig.add_trace(go.Scatter(x=rows["window_start"], y=rows["disparate_impact"],
                                 mode="lines+markers", name=attribute))  # fmt: skip
    _hline(fig, 0.8, "80% rule", colour="#e45756", at=1.0)
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, title, "window start (UTC)", "lowest ratio")


def segment_figure(segments: pd.DataFrame, column: str, label: str, *, grain: str = "day"):
    """One measure per logged segment over windows (lifecycle.fairness.segments_over_time)."""
    title = f"{label} per segment ({grain} windows)"
    if segments.empty or column not in segments or segments[column].isna().all():
        return empty_figure(title, f"no {label.lower()} in the period")
    fig = go.Figure()
    for segment, rows in segments.groupby("segment", sort=True):
        fig.add_trace(go.Scatter(x=rows["window_start"], y=rows[column], mode="lines+markers",
                                 name=segment, customdata=rows["predictions"],
                                 hovertemplate="%{y:.3g} (%{customdata:,} predictions)"))  # fmt: skip
    if column in ("positive_rate", "accuracy"):
        fig.update_yaxes(tickformat=".0%")
    return _layout(fig, title, "window start (UTC)", label)
