"""Figures: titled, axes labelled with units, thresholds drawn, honest empty states."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lifecycle import charts

DAYS = pd.date_range("2026-03-02", periods=5, freq="D", tz="UTC")


def _infra() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "window_start": DAYS,
            "model_version": "1.0",
            "variant": "production",
            "requests": [100, 120, 90, 110, 100],
            "errors": [0, 1, 30, 2, 0],
            "error_rate": [0, 1 / 120, 30 / 90, 2 / 110, 0],
            "latency_p50": [10.0, 11, 50, 10, 10],
            "latency_p95": [20.0, 21, 150, 20, 20],
            "latency_p99": [30.0, 31, 300, 30, 30],
            "throughput_per_min": [0.07, 0.08, 0.06, 0.08, 0.07],
        }
    )


def _perf(metric_values) -> pd.DataFrame:
    values = np.array(metric_values, dtype=float)
    return pd.DataFrame(
        {
            "window_start": DAYS,
            "model_version": "1.0",
            "variant": "production",
            "predictions": 100,
            "labelled": [80, 80, 60, 10, 0],
            "coverage": [0.8, 0.8, 0.6, 0.1, 0.0],
            "accuracy": values,
            "accuracy_low": values - 0.05,
            "accuracy_high": values + 0.05,
        }
    )


def _titles(fig) -> tuple[str, str, str]:
    return fig.layout.title.text, fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def test_infra_figures_have_titles_units_and_thresholds():
    infra = _infra()
    fig = charts.latency_figure(infra, thresholds_ms=[200, 400])
    title, x, y = _titles(fig)
    assert "Latency" in title and "UTC" in x and "(ms)" in y
    assert len(fig.data) == 3  # p50, p95, p99 of one version/variant
    assert [s.y0 for s in fig.layout.shapes] == [200, 400]
    fig = charts.error_rate_figure(infra, thresholds=[0.01, 0.05])
    assert "(%)" in fig.layout.yaxis.title.text
    assert fig.data[0].y[2] == pytest.approx(100 * 30 / 90)
    assert sorted(s.y0 for s in fig.layout.shapes) == [1.0, 5.0]
    assert "per minute" in charts.throughput_figure(infra).layout.yaxis.title.text


def test_empty_frames_say_so_instead_of_drawing_axes():
    empty = _infra().iloc[0:0]
    for fig in (
        charts.latency_figure(empty),
        charts.error_rate_figure(empty),
        charts.throughput_figure(empty),
        charts.metric_figure(_perf([math.nan] * 5), "accuracy", min_labels=30),
        charts.confusion_figure(pd.DataFrame(columns=["actual", "predicted", "count"])),
        charts.drivers_figure([]),
    ):
        assert charts.is_empty_figure(fig)
        assert fig.layout.annotations and fig.layout.annotations[0].text
        assert fig.layout.title.text
    fig = charts.metric_figure(_perf([math.nan] * 5), "accuracy", min_labels=30)
    assert "at least 30" in fig.layout.annotations[0].text


def test_metric_figure_skips_windows_without_enough_labels():
    fig = charts.metric_figure(_perf([0.9, 0.88, 0.7, math.nan, math.nan]), "accuracy",
                               reference=0.91)  # fmt: skip
    band, line = fig.data
    assert list(line.y) == [0.9, 0.88, 0.7]  # NaN windows are not drawn as zeros
    assert len(band.y) == 6  # interval polygon over the three windows
    assert fig.layout.shapes[0].y0 == 0.91  # the reference line
    assert list(line.customdata[:, 0]) == [80, 80, 60]


def test_confusion_and_calibration():
    cm = pd.DataFrame({"actual": ["0", "0", "1", "1"], "predicted": ["0", "1", "0", "1"],
                       "count": [50, 10, 5, 35]})  # fmt: skip
    fig = charts.confusion_figure(cm)
    z = np.array(fig.data[0].z)
    assert z[0, 0] == pytest.approx(50 / 60) and z[1, 1] == pytest.approx(35 / 40)
    cal = pd.DataFrame({"bin_left": [0.0, 0.5], "bin_right": [0.5, 1.0], "labelled": [10, 20],
                        "mean_score": [0.2, 0.8], "observed_rate": [0.1, 0.75],
                        "observed_low": [0.02, 0.5], "observed_high": [0.4, 0.9]})  # fmt: skip
    fig = charts.calibration_figure(cal)
    assert list(fig.data[1].error_y.array) == pytest.approx([0.3, 0.15])


def test_severity_heatmap_keeps_worst_and_greys_insufficient():
    frame = pd.DataFrame(
        {
            "window_start": [DAYS[0], DAYS[0], DAYS[1], DAYS[1]],
            "subject": ["x", "x", "x", "y"],
            "severity": ["minor", "significant", None, "none"],
            "status": ["ok", "ok", "insufficient_data", "ok"],
            "effect_size": [0.06, 0.4, None, 0.01],
        }
    )
    fig = charts.severity_heatmap(frame, row="subject", title="t", row_title="feature")
    z = np.array(fig.data[0].z)
    assert list(fig.data[0].y) == ["x", "y"]
    assert z[0, 0] == charts.SEVERITY_VALUE["significant"]
    assert z[0, 1] == charts.SEVERITY_VALUE["insufficient"]
    assert z[1, 0] == charts.SEVERITY_VALUE["no data"]
    assert z[1, 1] == charts.SEVERITY_VALUE["none"]
    assert list(fig.data[0].x) == ["2026-03-02", "2026-03-03"]  # one column per UTC day
    fig = charts.severity_heatmap(frame, row="subject", title="t", row_title="feature",
                                  selected=("y", DAYS[1]))  # fmt: skip
    (rect,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (0.5, 1.5, 0.5, 1.5)


def test_severity_grid_cells_outline_and_click_selection():
    """The drift page's clickable grid: worst result per cell, "no data" where nothing is
    stored, the chosen cell outlined, and a click read back as (subject, window key)."""
    frame = pd.DataFrame(
        {
            "row": ["x", "x", "x", "prediction · score"],
            "check_name": ["data_drift", "data_drift", "data_drift", "prediction_drift"],
            "subject": ["x", "x", "x", "score"],
            "window_start": [DAYS[0], DAYS[0], DAYS[1], DAYS[1]],
            "severity": ["minor", "significant", None, "none"],
            "status": ["ok", "ok", "insufficient_data", "ok"],
            "effect_size": [0.06, 0.4, None, 0.01],
        }
    )
    chart = charts.severity_grid(frame, title="t", row_title="feature", selected=("x", DAYS[1]))
    spec = chart.to_dict()
    cells = pd.DataFrame(spec["datasets"][spec["layer"][0]["data"]["name"]])
    by_cell = {(r.subject, r.window): (r.severity, r.effect) for r in cells.itertuples()}
    assert by_cell == {
        ("x", "2026-03-02T00:00"): ("significant", "0.4"),
        ("x", "2026-03-03T00:00"): ("insufficient", "-"),
        ("score", "2026-03-02T00:00"): ("no data", "-"),
        ("score", "2026-03-03T00:00"): ("none", "0.01"),
    }
    (pick,) = spec["params"]  # Altair lifts a layer's selection to the top level
    assert pick["name"] == charts.CELL_SELECTION and pick["select"]["fields"] == [
        "subject",
        "window",
    ]
    outline = spec["datasets"][spec["layer"][1]["data"]["name"]]
    assert [(c["subject"], c["window"]) for c in outline] == [("x", "2026-03-03T00:00")]
    colours = spec["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(colours["domain"], colours["range"], strict=True)) == charts.SEVERITY_COLOURS
    assert charts.picked_cell({"cell": [{"subject": "x", "window": "2026-03-03T00:00"}]}) == (
        "x", "2026-03-03T00:00")  # fmt: skip
    assert charts.picked_cell({"cell": []}) is None and charts.picked_cell({}) is None


def test_distribution_figure_numeric_and_categorical():
    num = pd.DataFrame({"bin_left": [0.0, 1.0], "bin_right": [1.0, 2.0],
                        "reference_count": [5, 5], "current_count": [2, 8],
                        "reference_share": [0.5, 0.5], "current_share": [0.2, 0.8],
                        "reference_cdf": [0.5, 1.0], "current_cdf": [0.2, 1.0]})  # fmt: skip
    num.attrs.update(kind="numeric", n_reference=10, n_current=10)
    fig = charts.distribution_figure(num, feature="debt_ratio", window_label="2026-03-02")
    assert [t.name for t in fig.data] == ["reference", "current"]
    assert list(fig.data[1].y) == pytest.approx([20.0, 80.0])
    fig = charts.distribution_figure(num, feature="f", window_label="w", ecdf=True)
    assert fig.layout.yaxis.title.text == "cumulative share"
    cat = pd.DataFrame({"category": ["a", "gig_worker"], "reference_count": [10, 0],
                        "current_count": [9, 1], "reference_share": [1.0, 0.0],
                        "current_share": [0.9, 0.1], "unseen": [False, True]})  # fmt: skip
    cat.attrs.update(kind="categorical", n_reference=10, n_current=10)
    fig = charts.distribution_figure(cat, feature="employment_type", window_label="w")
    assert list(fig.data[0].x) == ["a", "gig_worker (unseen)"]


def test_statistic_figure_marks_insufficient_windows_apart():
    history = pd.DataFrame(
        {
            "window_start": DAYS[:3],
            "model_version": "1.0",
            "variant": "production",
            "effect_size": [0.01, None, 0.2],
            "severity": ["none", None, "moderate"],
            "status": ["ok", "insufficient_data", "ok"],
        }
    )
    fig = charts.statistic_figure(history, subject="x", thresholds=[0.05, 0.15, 0.3])
    assert list(fig.data[0].y) == [0.01, 0.2]
    assert fig.data[1].name == "insufficient data"
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.05, 0.15, 0.3]


def test_kpi_figure_shows_model_output_beside_the_kpi():
    business = pd.DataFrame({"window_start": DAYS, "model_version": "1.0",
                             "variant": "production", "kpi": "conversion",
                             "events": 100, "value_mean": [0.3, 0.3, 0.15, 0.15, 0.15],
                             "mean_prediction": 0.6})  # fmt: skip
    fig = charts.kpi_figure(business, "conversion", perf=_perf([0.9] * 5), metric="accuracy")
    names = [t.name for t in fig.data]
    assert names == ["conversion 1.0 production", "mean model output 1.0 production",
                     "accuracy 1.0 production"]  # fmt: skip
    # each series in its own panel on one time axis, each with its own scale
    assert [t.yaxis for t in fig.data] == ["y", "y2", "y3"]
    assert fig.layout.yaxis3.title.text == "accuracy" and fig.layout.xaxis3.title.text
    assert charts.is_empty_figure(charts.kpi_figure(business, "revenue"))


def test_a_single_window_gets_a_readable_time_axis():
    fig = charts.error_rate_figure(_infra().iloc[:1])
    low, high = (pd.Timestamp(v) for v in fig.layout.xaxis.range)
    assert high - low == pd.Timedelta(days=2)
    assert charts.error_rate_figure(_infra()).layout.xaxis.range is None


def test_effect_titles_say_sign_and_unit():
    assert "1 = +100%" in charts.effect_title(["error_increase", "error_increase"], "change")
    assert "> 0 = worse" in charts.effect_title(["metric_drop", None], "change")
    assert charts.effect_title(["metric_drop", "error_increase"], "change") == "change"
    assert charts.effect_title(["wasserstein"], "effect size") == "effect size"


def test_free_text_is_shown_not_parsed_by_plotly():
    """Plotly renders <a href> in titles, legends and tick labels: data must not (issue 17)."""
    hostile = "<a href='http://evil.test/x'>v</a>"
    history = pd.DataFrame(
        {
            "window_start": DAYS[:2],
            "model_version": hostile,
            "variant": "production",
            "effect_size": [0.01, 0.2],
            "severity": ["none", "moderate"],
            "status": ["ok", "ok"],
        }
    )
    fig = charts.statistic_figure(history, subject=hostile, thresholds=[0.05, 0.15, 0.3])
    texts = [fig.layout.title.text, *(t.name for t in fig.data)]
    assert all("<a" not in t for t in texts if t)
    assert any("&lt;a href" in t for t in texts if t)  # shown as typed
    bars = charts.plain(hostile)
    assert bars == "&lt;a href='http://evil.test/x'&gt;v&lt;/a&gt;"


def _estimated(values, reason="the reference's scores carry no information") -> pd.DataFrame:
    values = np.array(values, dtype=float)
    defined = ~np.isnan(values)
    return pd.DataFrame(
        {
            "window_start": DAYS,
            "model_version": "1.0",
            "variant": "production",
            "metric": "accuracy",
            "estimate": values,
            "low": values - 0.03,
            "high": values + 0.03,
            "reference_value": 0.85,
            "severity": "none",
            "status": np.where(defined, "ok", "insufficient_data"),
            "reason": np.where(defined, None, reason),
            "predictions": 400,
        }
    )


def test_performance_figure_draws_the_estimate_band_and_realized_on_one_axis():
    # labels for the first two windows only; estimates everywhere but window 4
    perf = _perf([0.80, 0.82, math.nan, math.nan, math.nan])
    est = _estimated([0.81, 0.80, 0.79, math.nan, 0.70])
    span = (DAYS[0], DAYS[-1] + pd.Timedelta(days=1))
    fig = charts.performance_figure(perf, est, "accuracy", reference=0.85, x_range=span)
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert "estimated (labels pending), 95% band" in names
    assert "estimated (labels pending)" in names and "realized (labelled)" in names
    line = next(t for t in fig.data if t.name == "estimated (labels pending)")
    # the line breaks at the window without an estimate (no value is drawn for it)
    assert [pd.Timestamp(x, tz="UTC") for x in line.x] == list(DAYS)
    assert math.isnan(line.y[3]) and not line.connectgaps
    bands = [t for t in fig.data if t.fill == "toself" and "estimated" in (t.name or "")]
    # windows 0-2 are one run (a polygon); window 4 stands alone (an error bar)
    assert len(bands) == 1 and len(bands[0].x) == 6
    lone = [t for t in fig.data if t.error_y.array is not None]
    assert [pd.Timestamp(x, tz="UTC") for x in lone[0].x] == [DAYS[4]]
    realized = next(t for t in fig.data if t.name == "realized (labelled)")
    assert list(realized.y) == [0.80, 0.82]
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "No estimate in 1 window(s): the reference" in notes and "reference 0.85" in notes
    assert [pd.Timestamp(x) for x in fig.layout.xaxis.range] == list(span)
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_performance_figure_without_any_number_says_why():
    perf = _perf([math.nan] * 5)
    est = _estimated([math.nan] * 5, reason="only 120 labelled reference rows; need 200")
    fig = charts.performance_figure(perf, est, "accuracy", min_labels=30)
    assert charts.is_empty_figure(fig)
    text = fig.layout.annotations[0].text
    assert "only 120 labelled reference rows; need 200" in text and "at least 30" in text
    nothing = charts.performance_figure(perf, est.iloc[0:0], "accuracy")
    assert "monitoring has not computed them" in nothing.layout.annotations[0].text
    # a multiclass model: accuracy is estimated, precision is not, and the chart says so
    multiclass = charts.performance_figure(perf, est, "precision")
    assert "not estimated for this model's task" in multiclass.layout.annotations[0].text
