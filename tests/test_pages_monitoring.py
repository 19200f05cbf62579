"""Model health and drift pages, every demo model, run headless with AppTest.

The demo (tests/conftest.py, D = 2026-11-16) has dated incidents; each test opens a page on
a short period around one of them (through the URL, as a link from an alert would) and
checks that the incident shows on the layer it belongs to. The pages never compute monitoring
results while they run: open_page presses their "compute the missing windows" button and waits
for the background job, so the periods are kept to a few days.
"""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from lifecycle import charts
from tests.browser import ROOT

D = pd.Timestamp("2026-11-16", tz="UTC")


def day(offset: int) -> str:
    return f"{D + pd.Timedelta(days=offset):%Y-%m-%d}"


@pytest.fixture(scope="module")
def db(demo_db, tmp_path_factory):
    """One writable demo copy per module (and xdist worker): pages write monitor results."""
    target = tmp_path_factory.mktemp("pages") / "demo.duckdb"
    shutil.copyfile(demo_db, target)
    return target


def open_page(db_path, monkeypatch, page: str, *, compute=True, **params) -> AppTest:
    """Open `page` as a link with `params` would; `compute`: press the page's offer to compute
    the missing monitoring windows, wait for the background job and run the page again."""
    monkeypatch.setenv("LIFECYCLE_DB", str(db_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page(page)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if compute and has_button(at, "monitoring_compute"):
        compute_missing(at)
    return at


def has_button(at: AppTest, key: str) -> bool:
    return key in [b.key for b in at.button]


def compute_missing(at: AppTest) -> None:
    from ui import monitoring

    at.button(key="monitoring_compute").click().run()
    monitoring.join_monitoring()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not has_button(at, "monitoring_compute")


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out[spec["layout"].get("title", {}).get("text", "")] = spec
    return out


def figure(at: AppTest, starts: str) -> dict:
    found = [f for title, f in figures(at).items() if title.startswith(starts)]
    assert found, f"no figure titled {starts!r}: {list(figures(at))}"
    return found[0]


def values(data) -> np.ndarray:
    """Plotly's JSON holds numeric arrays as {"dtype", "bdata" (base64)} or as lists."""
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        if "shape" in data:
            shape = data["shape"]
            shape = [int(n) for n in shape.split(",")] if isinstance(shape, str) else shape
            array = array.reshape(shape)
        return array
    return np.asarray(data)


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with `column` (the coverage table may come first)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def url_value(at: AppTest, key: str) -> str:
    value = at.query_params[key]
    return value if isinstance(value, str) else value[0]


def trace(fig: dict, name: str) -> pd.Series:
    for t in fig["data"]:
        if t.get("name") == name:
            return pd.Series(values(t["y"]), index=pd.to_datetime(t["x"], utc=True))
    raise AssertionError(f"no trace {name!r} in {[t.get('name') for t in fig['data']]}")


# -- model health: each incident on its layer ----------------------------------------------------


def test_health_credit_risk_shows_every_layer(db, monkeypatch):
    at = open_page(db, monkeypatch, "pages/model_health.py", model="credit_risk",
                   **{"from": day(-38), "to": day(-35)})  # fmt: skip
    assert at.title[0].value == "Model health"
    assert [t.label for t in at.tabs] == ["Infrastructure", "Performance", "Business",
                                          "Data quality", "Fairness & segments"]  # fmt: skip
    assert {s.label: s.value for s in at.selectbox}["Version"] == "1.1"  # production default
    perf = table(at, "labelled")  # metrics per window, with counts
    assert len(perf) == 4 and (perf["labelled"] >= 30).all()
    assert perf["roc_auc"].between(0.6, 0.95).all()
    assert (perf["roc_auc_low"] < perf["roc_auc"]).all()
    titles = list(figures(at))
    for expected in ("Latency per day", "Error rate per day", "ROC AUC per day",
                     "Confusion matrix", "Calibration", "Data quality per window",
                     "Disparate impact", "Positive rate per age_band group",
                     "Accuracy on labelled rows per segment"):  # fmt: skip
        assert any(t.startswith(expected) for t in titles), expected
    assert any("declares no business KPI" in i.value for i in at.info)


def test_health_offers_a_period_whose_labels_have_arrived(db, monkeypatch):
    # credit_risk labels arrive 14-45 days late: the last days have none
    at = open_page(db, monkeypatch, "pages/model_health.py", model="credit_risk",
                   **{"from": day(-3), "to": day(-2)})  # fmt: skip
    assert any("arrive a median of" in i.value for i in at.info)
    assert table(at, "roc_auc")["roc_auc"].isna().all()
    at.button(key="labelled_period").click().run()
    assert not at.exception
    shifted = pd.Timestamp(url_value(at, "from"), tz="UTC")
    assert shifted <= D - pd.Timedelta(days=40)
    perf = table(at, "labelled")
    assert len(perf) == 2 and perf["roc_auc"].notna().all()


def test_health_credit_risk_estimates_performance_where_labels_are_pending(db, monkeypatch):
    """credit_risk's labels come 14-45 days late: on Oct 30 - Nov 4 the first three days have
    labels, the last three none. Each metric's chart has the estimate (labels pending) with
    its band on every day and the realized metric only where labels exist, on one axis."""
    at = open_page(db, monkeypatch, "pages/model_health.py", model="credit_risk",
                   **{"from": day(-17), "to": day(-12)})  # fmt: skip
    days = pd.date_range(day(-17), day(-12), freq="D", tz="UTC")
    for title in ("ROC AUC per day", "Accuracy per day", "F1 per day"):
        fig = figure(at, title)
        assert "estimated and realized" in fig["layout"]["title"]["text"]
        estimated = trace(fig, "estimated (labels pending)")
        assert list(estimated.index) == list(days) and estimated.notna().all()
        realized = trace(fig, "realized (labelled)")
        assert list(realized.index) == list(days[:3])  # no label on the last three days
        names = [t.get("name") for t in fig["data"]]
        assert "estimated (labels pending), 95% band" in names
        band = next(
            t
            for t in fig["data"]
            if t.get("name", "").startswith("estimated (labels pending), 95%")
        )
        assert band["fill"] == "toself"
        high, low = values(band["y"])[:6], values(band["y"])[6:][::-1]
        assert (low < estimated.to_numpy()).all() and (high > estimated.to_numpy()).all()
        assert fig["layout"]["xaxis"]["range"][0].startswith(day(-17))
    coverage = figure(at, "Labels per day")
    assert coverage["layout"]["xaxis"]["range"] == figure(at, "ROC AUC")["layout"]["xaxis"]["range"]
    est = table(at, "estimate")
    assert set(est["metric"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert (est["status"] == "ok").all() and (est["low"] <= est["estimate"]).all()


def test_health_churn_shows_the_usage_feed_break(db, monkeypatch):
    # incident 2: usage_gb ~90% null from D-50 to D-48
    at = open_page(db, monkeypatch, "pages/model_health.py", model="churn",
                   **{"from": day(-51), "to": day(-49)})  # fmt: skip
    flagged = table(at, "check_name")
    usage = flagged[(flagged["check_name"] == "missing_rate") & (flagged["subject"] == "usage_gb")]
    days = set(pd.to_datetime(usage["window_start"], utc=True).dt.strftime("%Y-%m-%d"))
    assert days == {day(-50), day(-49)}
    assert (usage["severity"] == "significant").all() and (usage["rate_pct"] > 80).all()
    assert set(usage["response"]) == {"fix the data feed"}


def test_health_churn_kpi_drops_while_accuracy_holds(db, monkeypatch):
    # incident 6: conversion ~30% -> ~15% from D-15, accuracy stable
    at = open_page(db, monkeypatch, "pages/model_health.py", model="churn",
                   **{"from": day(-18), "to": day(-13)})  # fmt: skip
    fig = figure(at, "conversion per day")
    conversion = trace(fig, "conversion 2.0 production")
    before = conversion[conversion.index < D - pd.Timedelta(days=15)]
    after = conversion[conversion.index >= D - pd.Timedelta(days=14)]
    assert before.mean() > 0.25 and after.mean() < 0.2
    accuracy = trace(fig, "accuracy 2.0 production")
    assert accuracy.max() - accuracy.min() < 0.05


def test_health_delivery_time_shows_the_latency_spike(db, monkeypatch):
    # incident 4: D-25 10:00-16:00 UTC, p95 ~8x, ~15% errors
    at = open_page(db, monkeypatch, "pages/model_health.py", model="delivery_time",
                   **{"from": day(-26), "to": day(-24)})  # fmt: skip
    errors = trace(figure(at, "Error rate per day"), "1.1 production")
    spike = pd.Timestamp(day(-25), tz="UTC")
    assert errors[spike] > 3 * errors.drop(spike).max()
    p95 = trace(figure(at, "Latency per day"), "p95 1.1 production")
    assert p95[spike] > 3 * p95.drop(spike).max()


# -- drift investigation ------------------------------------------------------------------------


def heat(at: AppTest) -> pd.DataFrame:
    """The drift page's severity grid (an Altair chart) as severity values, row x window."""
    (chart,) = [c for c in at.get("vega_lite_chart")
                if json.loads(c.proto.spec).get("title") == "Drift severity per feature and window"]  # fmt: skip
    cells = pd.concat(
        pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets
    ).drop_duplicates(["row", "window"])  # the outline layer repeats the chosen cell
    # feature rows by name: their labels carry the share of importance, "debt_ratio (65%)"
    features = cells["check_name"] == "data_drift"
    cells["row"] = cells["subject"].where(features, cells["row"])
    cells["value"] = cells["severity"].map(charts.SEVERITY_VALUE)
    grid = cells.pivot(index="row", columns="window", values="value")
    grid.columns = pd.to_datetime(grid.columns, utc=True)
    return grid


def grid_rows(at: AppTest) -> list[str]:
    """The severity grid's row labels, top to bottom."""
    (chart,) = [c for c in at.get("vega_lite_chart")
                if json.loads(c.proto.spec).get("title") == "Drift severity per feature and window"]  # fmt: skip
    return json.loads(chart.proto.spec)["layer"][0]["encoding"]["y"]["sort"]


def cell_details(at: AppTest) -> dict[str, str]:
    """The chosen cell's facts table (first column blank, then `value`)."""
    (table,) = [d.value for d in at.dataframe if list(d.value.columns) == ["", "value"]]
    return dict(table.to_numpy())


def test_drift_credit_risk_debt_ratio_drifts_from_its_onset(db, monkeypatch):
    # incident 1: debt_ratio mean rises from D-35
    at = open_page(db, monkeypatch, "pages/drift.py", model="credit_risk",
                   **{"from": day(-37), "to": day(-34)})  # fmt: skip
    z = heat(at)
    onset = D - pd.Timedelta(days=35)
    ratio = z.loc["debt_ratio"]
    assert (ratio[ratio.index < onset] == 0).all()  # none before the onset
    assert (ratio[ratio.index >= onset] >= 1).all()  # flagged from the onset on
    others = z.loc[[f for f in z.index if f not in ("debt_ratio",) and " · " not in f]]
    assert (others <= 0).all().all()
    # the page lands on the worst cell: debt_ratio, its overlay and statistic history
    values = {s.label: s.value for s in at.selectbox}
    assert values["Feature"] == "debt_ratio"
    assert url_value(at, "feature") == "debt_ratio"
    overlay = figure(at, "debt_ratio: reference")
    assert [t["name"] for t in overlay["data"]] == ["reference", "current"]
    stat = figure(at, "debt_ratio: effect size")
    # where each severity starts at each window's size, above the chance level
    names = {t["name"] for t in stat["data"]}
    assert {"chance level", "minor from", "moderate from", "significant from"} <= names
    details = cell_details(at)
    # +0.15-0.18 sd in its first two days: beyond the daily window's chance level it grades
    # minor (investigate); moderate follows as the shift grows (tests/test_check.py RAMP)
    assert details["severity"] in ("minor", "moderate", "significant")
    assert details["response"] in ("investigate", "enhanced monitoring", "retrain")
    assert float(details["chance level at these sizes"]) > 0


def test_drift_deep_link_opens_the_unseen_category(db, monkeypatch):
    # incident 3: employment_type "gig_worker" from D-20
    at = open_page(db, monkeypatch, "pages/drift.py", model="credit_risk", version="1.1",
                   feature="employment_type", window=f"{day(-19)}T00:00",
                   **{"from": day(-19), "to": day(-19)})  # fmt: skip
    values = {s.label: s.value for s in at.selectbox}
    assert values["Feature"] == "employment_type"
    assert values["Window"] == f"{day(-19)}T00:00"
    overlay = figure(at, "employment_type: reference")
    assert "gig_worker (unseen)" in overlay["data"][1]["x"]
    details = cell_details(at)
    assert "gig_worker" in details["categories never seen in the reference"]
    # the model gives employment_type ~3% of its importance: investigate, not retrain
    assert details["severity"] == "significant" and details["response"] == "investigate"
    assert "investigate rather than retrain" in details["why the response is investigate"]
    assert float(details["share of the model's importance"].rstrip("%")) < 5
    # debt_ratio (about two thirds of the importance) ranks first though both are significant
    (ranking,) = [d.value for d in at.dataframe if "impact" in d.value.columns]
    assert list(ranking["feature"][:2]) == ["debt_ratio", "employment_type"]
    assert ranking["importance"].iloc[0] > 0.5 > 0.05 > ranking["importance"].iloc[1]
    assert ranking["response"].iloc[1].startswith("investigate (capped")
    rows = grid_rows(at)  # in impact order, labelled with their share of importance
    assert rows[0].startswith("debt_ratio (") and rows[1].startswith("employment_type (")


def test_drift_delivery_time_concept_evidence(db, monkeypatch):
    # incident 5: from D-40 the traffic effect doubles; inputs stay stable
    at = open_page(db, monkeypatch, "pages/drift.py", model="delivery_time",
                   **{"from": day(-41), "to": day(-40)})  # fmt: skip
    z = heat(at)
    features = [f for f in z.index if " · " not in f]
    onset, before = pd.Timestamp(day(-40), tz="UTC"), pd.Timestamp(day(-41), tz="UTC")
    # the inputs do not move at the onset (hour_of_day differs from the reference every day)
    assert (z.loc[features, onset] <= z.loc[features, before]).all()
    surrogate = z.loc["concept · surrogate mae"]
    assert surrogate[onset] == 3 and surrogate.drop(onset).max() < 3
    concept = figure(at, "concept drift (mae)")
    assert values(concept["data"][0]["y"])[-1] > 1.0  # surrogate's MAE gain over production
    # ... and the performance layer shows the MAE rising as the labels arrive
    at = open_page(db, monkeypatch, "pages/model_health.py", model="delivery_time",
                   **{"from": day(-41), "to": day(-40)})  # fmt: skip
    fig = figure(at, "MAE per day")
    mae = trace(fig, "realized (labelled)")
    assert mae[onset] > 2 * mae[before]
    # the estimate reads only features and predictions: it cannot see this concept shift
    estimated = trace(fig, "estimated (labels pending)")
    assert estimated[onset] < 1.2 * estimated[before]


def test_drift_churn_page_runs_with_multivariate_and_prediction_sections(db, monkeypatch):
    at = open_page(db, monkeypatch, "pages/drift.py", model="churn",
                   **{"from": day(-51), "to": day(-50)})  # fmt: skip
    assert [h.value for h in at.subheader][1:] == [
        "Prediction drift", "Multivariate drift", "Concept drift evidence"]  # fmt: skip
    titles = " ".join(figures(at))
    assert "all features: domain classifier ROC AUC" in titles
    assert "prediction: effect size" in titles
    assert len(at.dataframe) >= 1  # test details (+ the feature's data quality)


def test_pages_on_an_empty_database_say_what_to_do(tmp_path, monkeypatch):
    from lifecycle.store import Store

    Store(tmp_path / "empty.duckdb").close()
    for page in ("pages/model_health.py", "pages/drift.py"):
        at = open_page(tmp_path / "empty.duckdb", monkeypatch, page)
        assert "No model is registered yet" in at.info[0].value
        assert not at.get("plotly_chart")


def test_controls_change_the_url(db, monkeypatch):
    at = open_page(db, monkeypatch, "pages/model_health.py", model="delivery_time",
                   **{"from": day(-26), "to": day(-24)})  # fmt: skip
    at.selectbox(key="version").set_value("1.2").run()
    assert not at.exception
    assert url_value(at, "version") == "1.2"
    assert {s.label: s.value for s in at.selectbox}["Variant"] == "shadow"
    assert url_value(at, "variant") == "shadow"
    assert np.isfinite(trace(figure(at, "Latency per day"), "p95 1.2 shadow")).all()


def test_a_version_outside_the_period_offers_its_own_days(db, monkeypatch):
    at = open_page(db, monkeypatch, "pages/model_health.py", model="churn", version="1.0",
                   **{"from": day(-3), "to": day(-2)})  # fmt: skip
    notes = [i.value for i in at.info]
    assert any("Version 1.0 served from" in n and "outside this period" in n for n in notes)
    assert charts_empty(at, "Latency per day")
    at.button(key="version_period").click().run()
    assert not at.exception
    end = pd.Timestamp(url_value(at, "to"), tz="UTC")
    assert end < D - pd.Timedelta(days=30)  # 1.0 was retired long before the end
    assert not charts_empty(at, "Latency per day")


def charts_empty(at: AppTest, title: str) -> bool:
    fig = figure(at, title)
    return not fig["data"]


def test_overview_portfolio_rows_lead_to_health_pages(db, monkeypatch):
    from lifecycle.store import Store

    # one evaluated layer is enough to see the worst outcome reach the portfolio
    with Store(db) as store, store.transaction() as cur:
        start = D - pd.Timedelta(days=2)
        cur.execute(
            "INSERT INTO alert_evaluations VALUES ('delivery_time', '1.1', 'production', "
            "'infrastructure', 'error_rate', 'error_rate', 'day', ?, ?, 'critical', 0.2, 0.05, "
            "'test', NULL, now())",
            [start, start + pd.Timedelta(days=1)],
        )
    monkeypatch.setenv("LIFECYCLE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Model health" in [h.value for h in at.subheader]
    table = _portfolio_table(at)
    rows = table.set_index("model")
    assert rows.loc["delivery_time", "infrastructure"] == "critical · 1/1"  # checks: 1 verdict
    assert rows.loc["credit_risk", "business"] == "no KPI declared"
    assert rows.loc["churn", "drift"] == "not evaluated"
    links = [link.proto.label for link in at.get("page_link")]
    assert {"churn health", "credit_risk health", "delivery_time health"} <= set(links)
    # a shorter period leaves the critical window out
    at.segmented_control(key="portfolio_days").set_value(1).run()
    table = _portfolio_table(at)
    assert table.set_index("model").loc["delivery_time", "infrastructure"] == "not evaluated"
    assert set(table["evaluation"]) == {"not evaluated"}  # no check ran: nothing evaluated


def _portfolio_table(at):
    """Overview's health table (a Styler holds the frame), found by its layer columns."""
    for element in at.dataframe:
        frame = element.value.data if hasattr(element.value, "data") else element.value
        if "infrastructure" in frame.columns:
            return frame
    raise AssertionError("no portfolio table on the page")


def test_drift_ecdf_and_previous_window_reference(db, monkeypatch):
    at = open_page(db, monkeypatch, "pages/drift.py", model="churn", reference="previous",
                   feature="tenure_months", **{"from": day(-6), "to": day(-5)})  # fmt: skip
    assert {s.label: s.value for s in at.selectbox}["Reference"] == "previous"
    assert "previous window" in at.caption[0].value
    overlay = figure(at, "tenure_months: reference")
    assert overlay["layout"]["yaxis"]["title"]["text"].startswith("share")
    at.toggle(key="ecdf").set_value(True).run()
    overlay = figure(at, "tenure_months: reference")
    assert overlay["layout"]["yaxis"]["title"]["text"] == "cumulative share"
    assert values(overlay["data"][0]["y"])[-1] == pytest.approx(1.0)


# -- one selection across the monitoring pages (issue 18) ----------------------------------------


def selected(at: AppTest) -> dict:
    """The shared selectors' values: Model, Version, Variant, Window (size)."""
    labels = {"model": "Model", "version": "Version", "variant": "Variant", "grain": "Window"}
    return {labels[s.key]: s.value for s in at.selectbox if s.key in labels}


def sidebar_link(at: AppTest, page: str) -> AppTest:
    """Follow a sidebar entry of st.navigation: it opens the page without query parameters."""
    at.query_params.clear()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_selection_survives_switching_pages_through_the_sidebar(db, monkeypatch):
    period = {"from": day(-20), "to": day(-18)}
    at = open_page(db, monkeypatch, "pages/model_health.py", compute=False, model="churn",
                   version="2.0", variant="production", grain="day", **period)  # fmt: skip
    want = {"Model": "churn", "Version": "2.0", "Variant": "production", "Window": "day"}
    assert {k: selected(at)[k] for k in want} == want
    sidebar_link(at, "pages/drift.py")
    assert {k: selected(at)[k] for k in want} == want
    assert {
        k: url_value(at, k) for k in ("model", "version", "variant", "grain", "from", "to")
    } == {"model": "churn", "version": "2.0", "variant": "production", "grain": "day", **period}
    at.selectbox(key="grain").set_value("week").run()  # changed on the drift page ...
    sidebar_link(at, "pages/model_health.py")
    assert {k: selected(at)[k] for k in want} == {**want, "Window": "week"}  # ... kept here
    assert url_value(at, "from") == period["from"] and url_value(at, "version") == "2.0"
    sidebar_link(at, "pages/version.py")  # Version detail opens the same model and version
    assert at.title[0].value == "churn 2.0"
    at.selectbox(key="version_pick_version").set_value("1.0").run()
    sidebar_link(at, "pages/model_health.py")
    assert selected(at)["Version"] == "1.0"


def test_a_link_still_wins_over_the_shared_selection(db, monkeypatch):
    at = open_page(db, monkeypatch, "pages/model_health.py", compute=False, model="churn",
                   version="2.0", grain="week")  # fmt: skip
    at.query_params.clear()
    at.query_params.update(model="credit_risk", version="1.1")  # an alert's link
    at.switch_page("pages/drift.py").run()
    assert selected(at)["Model"] == "credit_risk" and selected(at)["Version"] == "1.1"
    assert selected(at)["Window"] != "week"  # credit_risk's declared window, not churn's choice


def monitor_rows(db_path) -> int:
    from ui import runtime

    return runtime.store_for(db_path).query_one("SELECT count(*) FROM monitor_results")[0]


def test_drift_page_computes_nothing_while_it_runs_and_offers_to(demo_copy, monkeypatch):
    from ui import monitoring

    before = monitor_rows(demo_copy)
    at = open_page(demo_copy, monkeypatch, "pages/drift.py", compute=False, model="churn",
                   grain="hour", **{"from": day(-3), "to": day(-3)})  # fmt: skip
    assert monitor_rows(demo_copy) == before  # nothing computed on the request path
    offer = " ".join(m.value for m in at.markdown)
    assert "24 window(s) of this selection are not computed yet" in offer
    assert at.button(key="monitoring_compute").label == "Compute the 24 missing window(s)"
    assert not at.get("vega_lite_chart")  # no stored result yet: nothing to draw
    at.button(key="monitoring_compute").click().run()
    assert not at.exception
    monitoring.join_monitoring()
    assert monitor_rows(demo_copy) > before
    at.run()
    assert not has_button(at, "monitoring_compute")
    assert heat(at).shape[1] == 24  # the day's hours, computed in the background
