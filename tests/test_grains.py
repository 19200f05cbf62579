"""Windows that fit the traffic: month and row-count chunk grains, `auto`, and one declared
setting ([monitoring], or the older [alerts] grain) driving monitor, check, alert evaluation
and the weekly review.

The regression at the heart of it: a low-traffic model declared weekly, whose daily windows
are too small for any verdict while its weekly windows drift, must not be reported OK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, cli
from lifecycle.alerts import report as weekly
from lifecycle.alerts.check import run_check
from lifecycle.alerts.lifecycle import list_alerts
from lifecycle.alerts.sources import evaluate_model
from lifecycle.drift import results, window_counts
from lifecycle.drift.windows import Window, add_months, chunk_windows, window_end
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.monitoring_plan import monitoring_plan, monitoring_settings
from lifecycle.spec import SpecError
from lifecycle.store import Store
from tests.conftest import write_toy_spec

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday (ISO week 2026-W10)
FAST = "\n[drift]\nmultivariate = false\nconcept = false\n"


def serve(store: Store, day: int, rows: int, *, shift: bool = False, prefix: str = "d") -> None:
    """`rows` predictions of toy traffic on one day; `shift` moves x to the top of its range."""
    rng = np.random.default_rng(1000 + day)
    ts = pd.Timestamp(DAY0 + timedelta(days=day)) + pd.to_timedelta(
        np.sort(rng.uniform(0, 86_000, rows)), unit="s"
    )
    ids = [f"{prefix}{day}-{i}" for i in range(rows)]
    score = rng.uniform(0, 1, rows)
    ingest(store, "toy", "predictions", pd.DataFrame({
        "prediction_id": ids, "model_version": "1.0", "ts": ts, "prediction": score,
        "predicted_label": np.where(score >= 0.5, "1", "0"), "status": "ok",
    }))  # fmt: skip
    x = rng.uniform(7, 10, rows) if shift else rng.uniform(0, 10, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    ingest(store, "toy", "features", pd.DataFrame({"prediction_id": ids, "x": x, "color": color}))


def toy(tmp_path, settings: str) -> Store:
    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST + settings, encoding="utf-8")
    store = Store(tmp_path / "grains.duckdb")
    catalog.register_from_file(store, spec)
    return store


def low_traffic_weeks(store: Store) -> None:
    """24 predictions a day for two weeks; in the second week x has moved."""
    for day in range(14):
        serve(store, day, 24, shift=day >= 7)


# -- the weekly regression, at every entry point ------------------------------------------------


@pytest.mark.parametrize(
    "settings", ['\n[alerts]\ngrain = "week"\n', '\n[monitoring]\ngrain = "week"\n']
)
def test_weekly_model_is_monitored_alerted_and_reported_weekly(tmp_path, settings):
    store = toy(tmp_path, settings)
    low_traffic_weeks(store)
    as_of = DAY0 + timedelta(days=14)
    plan = monitoring_plan(store, "toy")
    assert plan.grains == ("week",) and plan.layer_grain == "week"

    report = run_check(store, as_of=as_of)
    assert [m["grain"] for m in report.monitor] == ["week"]
    assert report.monitor[0]["computed"] == 2
    assert results(store, "toy", grain="day").empty  # no daily windows were computed
    assert report.exit_code == 2, report.text()
    assert "CRITICAL" in report.text() and "toy monitored on week windows" in report.text()
    critical = list_alerts(store, severity="critical")
    assert ("drift", "data_drift", "x", "week") in set(
        zip(critical.layer, critical.rule, critical.subject, critical.grain, strict=True)
    )
    assert critical.loc[critical.subject == "x", "first_seen"].iloc[0] == DAY0 + timedelta(7)

    found = evaluate_model(store, "toy", as_of)
    drift = [e for e in found.evaluations if e.rule == "data_drift" and e.subject == "x"]
    assert {e.grain for e in drift} == {"week"}
    assert [e.outcome for e in sorted(drift, key=lambda e: e.window_start)][-1] == "critical"

    review = weekly.weekly_review(store, weekly.week_of(DAY0 + timedelta(days=7)))
    (model,) = review.models
    assert model.status["drift"] == "critical" and model.overall == "critical"
    assert "week windows" in weekly.to_markdown(review)
    from lifecycle import layers

    # the overview reads the production version's evaluations: the state alone matters here
    store.query_all("UPDATE model_versions SET state = 'production' RETURNING 1")
    overview = layers.portfolio_health(store, since=as_of - timedelta(days=7))
    assert overview.set_index("model").loc["toy", "drift"] == "critical"
    store.close()

    out = tmp_path / "review.md"
    db = str(tmp_path / "grains.duckdb")
    assert cli.main(["report", "--db", db, "--week", "2026-W11", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| toy | 1.0 | CRITICAL |" in text and "Monitored on week windows" in text


def test_daily_windows_of_the_same_traffic_give_no_verdict(tmp_path):
    """The same model on the default daily grain: every drift check is insufficient (the
    reason names the size and the minimum), which is why the weekly setting matters."""
    store = toy(tmp_path, "")
    low_traffic_weeks(store)
    run = monitor_model(store, "toy", as_of=DAY0 + timedelta(days=14))
    assert run.findings == {} and run.insufficient > 0
    assert "only 24 non-missing value(s) in the current window; at least 30 needed" in (
        run.summary()
    )
    store.close()


def test_monitor_cli_uses_the_declared_grains(tmp_path, capsys):
    store = toy(tmp_path, '\n[monitoring]\ngrains = ["week", "day"]\n')
    low_traffic_weeks(store)
    store.close()
    db = str(tmp_path / "grains.duckdb")
    assert cli.main(["monitor", "--db", db, "--as-of", "2026-03-16"]) == 0
    out = capsys.readouterr().out
    assert "toy: monitored on week, day windows (declared in [monitoring])" in out
    assert "toy: 2 week window(s)" in out and "toy: 14 day window(s)" in out
    assert cli.main(["monitor", "--db", db, "--grain", "month"]) == 0
    assert "toy: 1 month window(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        cli.main(["monitor", "--db", db, "--grain", "fortnight"])
    assert refused.value.code == 2
    assert "unknown grain 'fortnight'" in capsys.readouterr().err


# -- spec validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[monitoring]\ngrain = "fortnight"', "`[monitoring].grain`: 'fortnight' is not one of"),
        ('[monitoring]\ngrain = "day"\ngrains = ["week"]', "sets both `grain` and `grains`"),
        ("[monitoring]\ngrains = []", "`[monitoring].grains` must be a non-empty list"),
        ("[monitoring]\nchunk_rows = 3", "`[monitoring].chunk_rows` must be between 10"),
        ('[monitoring]\nchunk_rows = "5000"', "`[monitoring].chunk_rows` must be an integer"),
        ('[monitoring]\ngrain = "day"\nauto_min_rows = 50', 'applies only with grain = "auto"'),
        ("[monitoring]\nwindow = 3", "unknown key `[monitoring].window`"),
        ("[monitoring]\n", "declares no windows"),
        ('[monitoring]\ngrain = "day"\n[alerts]\ngrain = "week"', "`[alerts].grain` is 'week'"),
    ],
)
def test_bad_monitoring_settings_are_refused_at_register_naming_the_key(tmp_path, table, message):
    spec = write_toy_spec(tmp_path / "spec")
    spec.write_text(spec.read_text() + "\n" + table + "\n", encoding="utf-8")
    with Store(tmp_path / "db.duckdb") as store:
        with pytest.raises(SpecError) as err:
            catalog.register_from_file(store, spec)
        assert message in str(err.value)
        with store.cursor() as cur:
            assert catalog.model_names(cur) == []


def test_settings_sources_and_layer_grain():
    assert monitoring_settings({}).grains == ("day",)
    assert monitoring_settings({"alerts": {"grain": "hour"}}).source == "[alerts] grain"
    both = monitoring_settings({"monitoring": {"grains": ["day", "week"], "chunk_rows": 5000}})
    assert both.grains == ("day", "week", "chunk:5000")
    aligned = {"monitoring": {"grains": ["day", "week"]}, "alerts": {"grain": "week"}}
    assert monitoring_settings(aligned).alert_grain == "week"


# -- month ------------------------------------------------------------------------------------


def test_month_windows_use_calendar_months():
    jan = datetime(2026, 1, 1, tzinfo=UTC)
    assert window_end(jan, "month") == datetime(2026, 2, 1, tzinfo=UTC)
    assert window_end(datetime(2026, 12, 1, tzinfo=UTC), "month").year == 2027
    assert add_months(datetime(2026, 3, 31, tzinfo=UTC), -1).day == 28
    feb = Window("m", "1", "production", "month", datetime(2026, 2, 1, tzinfo=UTC), jan)
    assert feb.previous().start == jan and feb.previous().end == feb.start
    march = Window("m", "1", "production", "month", datetime(2026, 3, 1, tzinfo=UTC), jan)
    assert march.previous().start == datetime(2026, 2, 1, tzinfo=UTC)  # 28 days, not 31


def test_month_grain_monitored_and_alerted(tmp_path):
    store = toy(tmp_path, '\n[monitoring]\ngrain = "month"\n')
    for day in (0, 10, 20, 31):  # March (3 days) and April 1st
        serve(store, day, 40)
    report = run_check(store, as_of=datetime(2026, 5, 1, tzinfo=UTC))
    stored = results(store, "toy", grain="month", check="data_drift")
    assert set(stored.window_start) == {pd.Timestamp("2026-03-01", tz="UTC"),
                                        pd.Timestamp("2026-04-01", tz="UTC")}  # fmt: skip
    assert set(stored.window_end) == {pd.Timestamp("2026-04-01", tz="UTC"),
                                      pd.Timestamp("2026-05-01", tz="UTC")}  # fmt: skip
    assert report.monitor[0]["grain"] == "month"
    evaluated = store.query_all("SELECT DISTINCT grain FROM alert_evaluations")
    assert ("month",) in evaluated
    store.close()


# -- row-count chunks ------------------------------------------------------------------------


def _reference_chunks(ts: pd.Series, ids: pd.Series, size: int) -> list[tuple]:
    """The chunk ranges by the documented rule, computed the slow obvious way."""
    order = pd.DataFrame({"ts": ts, "id": ids}).sort_values(["ts", "id"], ignore_index=True)
    firsts = order["ts"].iloc[::size].drop_duplicates().tolist()
    ends = [*firsts[1:], order["ts"].iloc[-1] + pd.Timedelta(microseconds=1)]
    return list(zip(firsts, ends, strict=True))


def test_chunk_boundaries_follow_row_order_and_the_tie_rule(tmp_path):
    store = toy(tmp_path, "")
    serve(store, 0, 230)
    # 30 rows all at one instant, straddling the 250-row boundary: they go to the later chunk
    tied = pd.Timestamp(DAY0 + timedelta(days=1, hours=1))
    ids = [f"t{i:02d}" for i in range(30)]
    ingest(store, "toy", "predictions", pd.DataFrame({
        "prediction_id": ids, "model_version": "1.0", "ts": tied, "prediction": 0.5,
    }))  # fmt: skip
    serve(store, 2, 260)
    with store.cursor() as cur:
        chunks = chunk_windows(cur, "toy", "chunk:125")
        logged = cur.execute("SELECT ts, prediction_id FROM predictions").df()
    expected = _reference_chunks(pd.to_datetime(logged.ts, utc=True), logged.prediction_id, 125)
    got = [(pd.Timestamp(w.window.start), pd.Timestamp(w.window.end)) for w in chunks]
    assert got == expected
    assert sum(w.rows for w in chunks) == 520  # every row in exactly one chunk
    boundary = next(w for w in chunks if w.window.start == tied)
    assert boundary.rows > 125  # the tied rows all joined the later chunk
    assert [w.complete for w in chunks] == [True, True, True, True, False]
    assert chunks[-1].rows == 20  # rows 501-520: the trailing chunk, not full
    assert chunks[1].window.prev_start == chunks[0].window.start
    assert chunks[1].window.previous().end == chunks[1].window.start
    assert chunks[0].window.previous().start == chunks[0].window.start  # empty range
    store.close()


def test_chunks_judge_full_chunks_only_and_follow_late_rows(tmp_path):
    store = toy(tmp_path, "\n[monitoring]\nchunk_rows = 100\n")
    serve(store, 0, 250)
    plan = monitoring_plan(store, "toy")
    assert plan.grains == ("chunk:100",) and plan.layer_grain == "day"
    run = monitor_model(store, "toy", grain="chunk:100")
    assert run.windows == 2 and run.computed == 2
    assert run.pending and "50 of 100 rows, not judged until it is full" in run.pending[0]
    counts = window_counts(store, "toy", grain="chunk:100")
    assert counts["complete"].tolist() == [True, True, False]
    first = results(store, "toy", grain="chunk:100", check="data_drift")
    assert first.window_start.nunique() == 2 and (first.n_current == 100).all()

    # 30 rows logged late, timestamped before everything else, move every boundary
    serve(store, -1, 30, prefix="late")
    again = monitor_model(store, "toy", grain="chunk:100")
    assert again.removed > 0
    stored = results(store, "toy", grain="chunk:100", check="data_drift")
    with store.cursor() as cur:
        now = [w for w in chunk_windows(cur, "toy", "chunk:100") if w.complete]
    assert sorted(stored.window_start.unique()) == [pd.Timestamp(w.window.start) for w in now]

    report = run_check(store, as_of=DAY0 + timedelta(days=2))
    assert report.monitor[0]["grain"] == "chunk:100"
    grains = store.query_all("SELECT DISTINCT grain FROM alert_evaluations ORDER BY 1")
    assert ("chunk:100",) in grains
    store.close()


# -- auto ---------------------------------------------------------------------------------------


def test_auto_picks_the_smallest_grain_that_reaches_the_minimum(tmp_path):
    store = toy(tmp_path, '\n[monitoring]\ngrain = "auto"\n')
    for day in range(21):
        serve(store, day, 40)
    plan = monitoring_plan(store, "toy")  # multivariate off: [drift] min_rows 30 is the need
    assert plan.grains == ("day",), plan.notes
    store.close()


@pytest.mark.parametrize(("minimum", "grain"), [(30, "day"), (200, "week"), (400, "month"),
                                                (5000, "month")])  # fmt: skip
def test_auto_grain_by_minimum(tmp_path, minimum, grain):
    store = toy(tmp_path, f'\n[monitoring]\ngrain = "auto"\nauto_min_rows = {minimum}\n')
    for day in range(21):  # 40 a day: 280 a week, 840 in the one (partial) month
        serve(store, day, 40)
    plan = monitoring_plan(store, "toy")
    assert plan.grains == (grain,)
    assert plan.notes[0].startswith(f"auto: {grain}")
    if minimum == 5000:
        assert "insufficient data" in plan.notes[0]
    store.close()


def test_auto_without_traffic_and_with_multivariate_minimum(tmp_path):
    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + '\n[monitoring]\ngrain = "auto"\n', encoding="utf-8")
    with Store(tmp_path / "db.duckdb") as store:
        catalog.register_from_file(store, spec)
        plan = monitoring_plan(store, "toy")
        assert plan.grains == ("day",) and "no predictions yet" in plan.notes[0]
        for day in range(14):
            serve(store, day, 40)
        # multivariate on by default: its 200-row minimum decides (a day of 40 is too small)
        assert monitoring_plan(store, "toy").grains == ("week",)


# -- pages: the declared window is the default view ---------------------------------------------


@pytest.mark.parametrize(
    ("page", "settings", "expected"),
    [
        ("drift", '\n[monitoring]\ngrains = ["week", "day"]\n', "week"),
        ("drift", "\n[monitoring]\nchunk_rows = 100\n", "chunk:100"),
        ("model_health", "\n[monitoring]\nchunk_rows = 100\n", "day"),  # layers: calendar
        ("model_health", '\n[alerts]\ngrain = "week"\n', "week"),
    ],
)
def test_pages_open_on_the_declared_window(tmp_path, monkeypatch, page, settings, expected):
    from streamlit.testing.v1 import AppTest

    from tests.browser import ROOT

    store = toy(tmp_path, settings)
    for day in range(3):
        serve(store, day, 120)
    store.close()
    monkeypatch.setenv("LIFECYCLE_DB", str(tmp_path / "grains.duckdb"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="grain").value == expected
    assert at.query_params["grain"] in (expected, [expected])
    if page == "drift" and expected.startswith("chunk"):
        assert any("100-row chunk windows" in c.value for c in at.caption)
