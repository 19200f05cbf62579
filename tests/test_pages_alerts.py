"""Alerts inbox and Weekly review pages, run headless with AppTest through app.py."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from lifecycle import catalog
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts import report
from lifecycle.alerts.check import run_check
from lifecycle.identity import Actor
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import write_toy_spec
from tests.test_check import FAST_DRIFT, end_of, serve_day


@pytest.fixture(scope="module")
def alerts_db_master(tmp_path_factory):
    """A small database with one critical (missing x) and one warning (new colour) alert."""
    folder = tmp_path_factory.mktemp("alerts_pages")
    spec = write_toy_spec(folder / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    path = folder / "pages.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        serve_day(store, 0)
        serve_day(store, 1, new_color=0.015)
        serve_day(store, 2, missing_x=0.5)
        run_check(store, as_of=end_of(2))
    return path


@pytest.fixture
def alerts_db(alerts_db_master, tmp_path):
    target = tmp_path / "pages.duckdb"
    shutil.copyfile(alerts_db_master, target)
    return target


@pytest.fixture
def page(monkeypatch):
    def start(db_path, name):
        monkeypatch.setenv("LIFECYCLE_DB", str(db_path))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page(f"pages/{name}.py")
        at.run()
        assert not at.exception, at.exception
        return at

    return start


def by_key(at, kind, key):
    return next(w for w in getattr(at, kind) if w.key == key)


def test_inbox_lists_alerts_with_evidence_and_link(page, alerts_db):
    at = page(alerts_db, "alerts")
    assert at.title[0].value == "Alerts"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Critical (active)"] == "1" and metrics["Warning (active)"] >= "1"
    table = at.dataframe[0].value
    assert table["severity"].iloc[0] == "critical"  # worst first
    assert ("missing_rate", "x") in set(zip(table["rule"], table["subject"], strict=True))
    assert "Response:** fix the data feed" in " ".join(m.value for m in at.markdown)
    links = at.get("page_link")
    assert links and links[0].proto.page == "drift"
    assert "feature=x" in str(links[0].proto) and "window=2026-03-04T00" in str(links[0].proto)


def follow_alert_link(alerts_db, monkeypatch, alert_id: int) -> AppTest:
    """The inbox opened by a notification's link, ?alert=ID, as a server's first run."""
    monkeypatch.setenv("LIFECYCLE_DB", str(alerts_db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["alert"] = str(alert_id)
    at.switch_page("pages/alerts.py")
    at.run()
    assert not at.exception
    assert by_key(at, "selectbox", "alert_pick").value == alert_id
    return at


def test_a_link_with_an_alert_id_opens_that_alert(alerts_db, monkeypatch):
    with Store(alerts_db) as store:
        warning = int(lc.list_alerts(store, severity="warning").alert_id[0])
    follow_alert_link(alerts_db, monkeypatch, warning)


def test_a_link_to_a_resolved_alert_opens_it_despite_the_state_filter(alerts_db, monkeypatch):
    """The default filter hides resolved alerts; a followed link must still show the alert
    it names, never silently another one."""
    from lifecycle.identity import Actor

    with Store(alerts_db) as store:
        warning = int(lc.list_alerts(store, severity="warning").alert_id[0])
        lc.resolve(store, Actor("rita@example.com", frozenset({"admin"})), warning, "feed fixed")
    at = follow_alert_link(alerts_db, monkeypatch, warning)
    assert "resolved" in by_key(at, "multiselect", "f_state").value
    assert any(f"#{warning}:" in h.value for h in at.subheader)


def test_filters(page, alerts_db):
    at = page(alerts_db, "alerts")
    by_key(at, "multiselect", "f_severity").set_value(["warning"]).run()
    table = at.dataframe[0].value
    assert set(table["severity"]) == {"warning"}
    by_key(at, "multiselect", "f_layer").set_value(["infrastructure"]).run()
    assert any("No alerts match" in i.value for i in at.info)


def test_acknowledge_from_the_page_is_recorded(page, alerts_db):
    at = page(alerts_db, "alerts")
    alert_id = int(by_key(at, "selectbox", "alert_pick").value)
    by_key(at, "button", "ack").click().run()  # no comment: refused, nothing changes
    assert any("needs a comment" in e.value for e in at.error)
    by_key(at, "text_input", "ack_comment").set_value("feed owner paged")
    by_key(at, "button", "ack").click().run()
    assert not at.exception
    assert any(f"Alert #{alert_id}: acknowledge recorded" in s.value for s in at.success)
    row = lc.get_alert(_page_store(), alert_id)  # the app's cached store holds the file
    assert row["state"] == "acknowledged" and row["ack_comment"] == "feed owner paged"


def _page_store():
    from ui.common import get_store

    return get_store()


def test_a_viewer_sees_no_actions(page, alerts_db):
    at = page(alerts_db, "alerts")
    # the viewer of the development identity (ui/identity.py), or of the page's fallback
    at.session_state["dev_identity"] = "victor.viewer@example.com"
    at.session_state["alerts_roles"] = ["viewer"]
    at.run()
    assert not at.exception
    assert not [b for b in at.button if b.key in ("ack", "snooze", "resolve")]
    assert any("may view alerts" in i.value for i in at.info)
    assert by_key(at, "button", "run_check").disabled


def test_weekly_review_page_with_exports(page, alerts_db, monkeypatch):
    monkeypatch.delenv("LIFECYCLE_APP_URL", raising=False)
    at = page(alerts_db, "weekly_review")
    assert at.title[0].value == "Weekly review"
    week = report.week_of(end_of(2))
    # logging stopped long before last week: the page opens on the week of the newest data
    assert by_key(at, "selectbox", "week").value == week
    assert not at.exception
    summary = at.dataframe[0].value
    assert summary["model"].tolist() == ["toy"] and summary["overall"].iloc[0] == "critical"
    assert summary["data_quality"].iloc[0] == "critical"
    buttons = at.get("download_button")
    assert len(buttons) == 2
    # the page says which base URL the exports' links use: the default, and how to change it
    assert any(
        "Exported links open http" in c.value and "set LIFECYCLE_APP_URL" in c.value
        for c in at.caption
    )
    assert any("#" in link.proto.label for link in at.get("page_link"))


def test_snooze_and_resolve_from_the_page(page, alerts_db):
    at = page(alerts_db, "alerts")
    first = int(by_key(at, "selectbox", "alert_pick").value)
    by_key(at, "number_input", "snooze_hours").set_value(12)
    by_key(at, "text_input", "snooze_comment").set_value("deploy in progress")
    by_key(at, "button", "snooze").click().run()
    assert any(f"Alert #{first}: snooze recorded" in s.value for s in at.success)
    row = lc.get_alert(_page_store(), first)
    assert row["state"] == "snoozed" and row["snoozed_by"]
    hours = (row["snoozed_until"] - row["updated_at"]).total_seconds() / 3600
    assert 11.9 < hours <= 12.0
    by_key(at, "text_input", "resolve_reason").set_value("fixed upstream")
    by_key(at, "button", "resolve").click().run()
    row = lc.get_alert(_page_store(), first)
    assert row["state"] == "resolved" and row["resolution"] == "fixed upstream"
    # resolved alerts leave the default (unresolved) view
    assert first not in set(at.dataframe[0].value["alert_id"])


def test_inbox_shows_current_and_worst_severity(page, alerts_db):
    """An alert whose latest window is a warning after a critical one shows both, beside
    the latest window's summary."""
    from datetime import timedelta

    from lifecycle.alerts.config import alert_config
    from lifecycle.alerts.rules import Evaluation

    with Store(alerts_db) as store:
        critical = lc.list_alerts(store, severity="critical").iloc[0]
        start = critical.last_seen + timedelta(days=1)
        later = Evaluation("toy", "1.0", critical.variant, critical.layer, critical.rule,
                           critical.subject, critical.grain, start, start + timedelta(days=1),
                           "warning", 0.1, 0.05, "x missing 8% (moderate)")  # fmt: skip
        lc.apply_evaluations(store, [later], {("toy", "1.0"): alert_config(None)}, now=start)
    at = page(alerts_db, "alerts")
    table = at.dataframe[0].value
    row = table[table["alert_id"] == critical.alert_id].iloc[0]
    assert (row["severity"], row["worst_severity"]) == ("warning", "critical")
    assert row["summary"] == "x missing 8% (moderate)"
    by_key(at, "selectbox", "alert_pick").set_value(int(critical.alert_id)).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Severity"] == "warning (worst critical)"


def test_inbox_shows_incident_response_against_last_week(page, alerts_db):
    """The check opened its alerts at the logs' end (2026-03); acknowledging one now makes
    this week's time to acknowledge and leaves both alerts open, aged from their opening."""
    from datetime import UTC, datetime

    with Store(alerts_db) as store:
        critical = lc.list_alerts(store, severity="critical").iloc[0]
        lc.acknowledge(store, Actor("rita@example.com", frozenset({"reviewer"})),
                       int(critical.alert_id), "paged the feed owner")  # fmt: skip
        opened = store.query_one("SELECT min(opened_at) FROM alerts")[0]
    at = page(alerts_db, "alerts")
    metrics = {m.label: m for m in at.metric}
    waited = (datetime.now(UTC) - opened).total_seconds() / 3600
    for label in ("Median time to acknowledge", "Oldest open alert"):
        shown = metrics[label].value  # months: "271.4 d"
        assert shown.endswith(" d") and float(shown[:-2]) == pytest.approx(waited / 24, abs=0.11)
    assert metrics["Critical opened this week"].value == "0"  # opened months ago
    table = next(d.value for d in at.dataframe if "figure" in d.value.columns)
    rows = table.set_index("figure")
    assert rows.loc["alerts acknowledged", "this week"] == "1"
    assert rows.loc["open at the week's end", "this week"] == str(
        len(lc.list_alerts(_page_store()))
    )
    history = next(d.value for d in at.dataframe if "tta_median_h" in d.value.columns)
    assert set(history["model_name"]) == {"toy"} and len(history) == 8
