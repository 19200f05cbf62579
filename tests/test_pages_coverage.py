"""'Not evaluated' is never 'OK' on the pages: a production model with 24 predictions a day
(every daily drift check and performance window too small for a verdict), checked, then
seen on the overview, model health, the alerts inbox and the weekly review (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from lifecycle import catalog
from lifecycle.alerts.check import run_check
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import write_toy_spec
from tests.test_check import DAY0, FAST_DRIFT, end_of, serve_day


@pytest.fixture(scope="module")
def low_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coverage")
    spec = write_toy_spec(folder / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    path = folder / "low.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        with store.transaction() as cur:  # stands in for the registry's promotion
            cur.execute("UPDATE model_versions SET state = 'production'")
        for day in range(7):
            serve_day(store, day, rows=24)
        assert run_check(store, as_of=end_of(6)).exit_code == 4
    return path


def open_app(db, monkeypatch, page: str | None = None, **params) -> AppTest:
    monkeypatch.setenv("LIFECYCLE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    if page:
        at.switch_page(page)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def portfolio(at: AppTest):
    for element in at.dataframe:
        frame = element.value.data if hasattr(element.value, "data") else element.value
        if "infrastructure" in frame.columns and "evaluation" in frame.columns:
            return frame.set_index("model")
    raise AssertionError("no portfolio table on the page")


def test_overview_shows_the_model_not_evaluated(low_db, monkeypatch):
    row = portfolio(open_app(low_db, monkeypatch)).loc["toy"]
    assert row["evaluation"] == "not evaluated"
    assert row["drift"] == "not evaluated · 0/28"  # 7 days x 4 drift checks, no verdict
    assert row["performance"] == "not evaluated · 0/21"  # 7 days x ROC AUC, accuracy, F1
    assert row["data_quality"].startswith("ok · ")  # the rate checks did run


def test_model_health_says_what_was_not_evaluated_and_why(low_db, monkeypatch):
    at = open_app(low_db, monkeypatch, "pages/model_health.py", model="toy",
                  **{"from": f"{DAY0:%Y-%m-%d}", "to": "2026-03-08"})  # fmt: skip
    warnings = [w.value for w in at.warning]
    drift = [w for w in warnings if w.startswith("**Not evaluated - drift:**")]
    assert drift and "all 7 windows insufficient: 24 rows a window, 30 needed" in drift[0]
    assert any(w.startswith("**Not evaluated - performance:**") for w in warnings)
    (table,) = [d.value for d in at.dataframe if "windows_without_results" in d.value.columns]
    table = table.set_index("layer")
    assert table.loc["drift", "state"] == "not evaluated"
    assert table.loc["drift", "verdicts"] == 0 and table.loc["drift", "insufficient"] == 28


def test_alerts_inbox_and_weekly_review_show_not_evaluated(low_db, monkeypatch):
    at = open_app(low_db, monkeypatch, "pages/alerts.py")
    assert "exit code 4" in at.caption[0].value
    assert any("Not evaluated - toy:** drift" in w.value for w in at.warning)
    at = open_app(low_db, monkeypatch, "pages/weekly_review.py", week="2026-W10")
    summary = at.dataframe[0].value.set_index("model")
    assert summary.loc["toy", "overall"] == "not evaluated"
    assert summary.loc["toy", "drift"] == "not evaluated"
