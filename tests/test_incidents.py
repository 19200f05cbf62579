"""Incident figures (time to acknowledge, time to resolve, auto-resolved, open age) per
model and week, on a scripted alert history driven through the alert lifecycle's own API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.alerts import incidents
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts.config import alert_config
from lifecycle.alerts.rules import Evaluation
from lifecycle.identity import Actor

WEEK1 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: ISO week 2026-W10
WEEK2 = WEEK1 + timedelta(weeks=1)
H = timedelta(hours=1)
REVIEWER = Actor("rita@example.com", frozenset({"reviewer"}))


def evaluation(model, subject, start, outcome):
    return Evaluation(
        model=model, version="1.0", variant="production", layer="drift", rule="data_drift",
        subject=subject, grain="hour", window_start=start, window_end=start + H,
        outcome=outcome, value=0.3, threshold=0.05, summary=f"{subject} {outcome}",
        evidence={},
    )  # fmt: skip


def open_alert(store, model, subject, at, outcome="warning") -> int:
    configs = {(model, "1.0"): alert_config({"alerts": {"resolve_after": 2}})}
    result = lc.apply_evaluations(
        store, [evaluation(model, subject, at - H, outcome)], configs, now=at
    )
    return result.opened[0]


def auto_resolve(store, model, subject, at):
    """Two healthy windows after the failing one, then the lifecycle's maintenance."""
    configs = {(model, "1.0"): alert_config({"alerts": {"resolve_after": 2}})}
    last = store.query_one(
        "SELECT max(last_seen) FROM alerts WHERE model_name = ? AND subject = ?", [model, subject]
    )[0]
    healthy = [evaluation(model, subject, last + k * H, "ok") for k in (1, 2)]
    lc.apply_evaluations(store, healthy, configs, now=at)
    lc.maintain(store, configs, now=at)


@pytest.fixture
def history(store):
    """Week 1 (credit): a critical alert acknowledged after 2 h and resolved by hand 10 h
    after opening; a warning acknowledged after 30 min that resolves itself 2 days after
    opening; a warning resolved by hand without acknowledgement after 4 h.
    Week 2 (credit): a warning opened Tuesday, still open and never acknowledged; a critical
    acknowledged after 6 h, still open. (churn): one warning auto-resolved after 1 day."""
    a = open_alert(store, "credit", "income", WEEK1 + 10 * H, "critical")
    lc.acknowledge(store, REVIEWER, a, "looking", now=WEEK1 + 12 * H)
    lc.resolve(store, REVIEWER, a, "fixed upstream", now=WEEK1 + 20 * H)
    b = open_alert(store, "credit", "age", WEEK1 + 30 * H)
    lc.acknowledge(store, REVIEWER, b, "watching", now=WEEK1 + 30.5 * H)
    auto_resolve(store, "credit", "age", WEEK1 + 78 * H)
    c = open_alert(store, "credit", "debt", WEEK1 + 50 * H)
    lc.resolve(store, REVIEWER, c, "known seasonal", now=WEEK1 + 54 * H)
    open_alert(store, "credit", "tenure", WEEK2 + 30 * H)
    e = open_alert(store, "credit", "limit", WEEK2 + 40 * H, "critical")
    lc.acknowledge(store, REVIEWER, e, "retraining", now=WEEK2 + 46 * H)
    open_alert(store, "churn", "usage", WEEK2 + 5 * H)
    auto_resolve(store, "churn", "usage", WEEK2 + 29 * H)
    return store


def row(frame, model, week):
    hit = frame[(frame.model_name == model) & (frame.week_start == week)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_weekly_figures_per_model_match_the_scripted_history(history):
    as_of = WEEK2 + 100 * H
    frame = incidents.weekly_incidents(history, [WEEK1, WEEK2], as_of=as_of)
    w1 = row(frame, "credit", WEEK1)
    assert (w1.opened_critical, w1.opened_warning) == (1, 2)
    # responses: 2 h (ack), 0.5 h (ack), 4 h (resolved by hand without an ack)
    assert w1.acknowledged == 3
    assert w1.tta_median_h == pytest.approx(2.0) and w1.tta_worst_h == pytest.approx(4.0)
    # resolutions: 10 h, 48 h (automatic), 4 h
    assert w1.resolved == 3 and w1.auto_resolved == 1
    assert w1.ttr_median_h == pytest.approx(10.0) and w1.ttr_worst_h == pytest.approx(48.0)
    assert w1.open_at_end == 0 and w1.unacknowledged_at_end == 0
    w2 = row(frame, "credit", WEEK2)
    assert (w2.opened_critical, w2.opened_warning, w2.resolved) == (1, 1, 0)
    assert w2.acknowledged == 1 and w2.tta_median_h == pytest.approx(6.0)
    # the running week is measured at as_of: two open, one never acknowledged, oldest 70 h
    assert (w2.open_at_end, w2.unacknowledged_at_end) == (2, 1)
    assert w2.oldest_open_h == pytest.approx(70.0)
    churn = row(frame, "churn", WEEK2)
    assert (churn.opened_warning, churn.resolved, churn.auto_resolved) == (1, 1, 1)
    assert churn.acknowledged == 0 and churn.ttr_median_h == pytest.approx(24.0)
    assert row(frame, "churn", WEEK1).opened_warning == 0


def test_weeks_not_yet_begun_are_left_out_and_models_filter(history):
    frame = incidents.weekly_incidents(
        history, [WEEK1, WEEK2], models=["churn"], as_of=WEEK1 + 50 * H
    )
    assert list(frame.model_name) == ["churn"] and list(frame.week_start) == [WEEK1]


def test_open_age_at_a_past_week_end_counts_alerts_resolved_later(history):
    # seen from the end of week 1 the critical alert of week 2 does not exist yet, and the
    # week's alerts were all resolved by then
    frame = incidents.weekly_incidents(history, [WEEK1], as_of=WEEK2 + 100 * H)
    assert row(frame, "credit", WEEK1).open_at_end == 0
    frame = incidents.weekly_incidents(history, [WEEK1], as_of=WEEK1 + 40 * H)
    # at 40 h: alert b (opened 30 h) is open (acknowledged), a was resolved at 20 h
    early = row(frame, "credit", WEEK1)
    assert (early.open_at_end, early.unacknowledged_at_end) == (1, 0)
    assert early.oldest_open_h == pytest.approx(10.0)


def test_week_over_week_for_one_model_and_for_all(history):
    as_of = WEEK2 + 100 * H
    credit = incidents.incident_week(history, WEEK2, models=["credit"], as_of=as_of)
    rows = {r["figure"]: r for r in credit.rows()}
    assert rows["critical alerts opened"] == {
        "figure": "critical alerts opened", "last week": "1", "this week": "1", "change": "="
    }  # fmt: skip
    assert rows["alerts resolved"]["change"] == "-3"
    assert rows["time to acknowledge, median"]["last week"] == "2.0 h"
    assert rows["time to acknowledge, median"]["change"] == "+4.0 h"
    assert rows["time to resolve, median"]["this week"] == "-"
    assert rows["oldest open alert's age"]["this week"] == "2.9 d"
    everyone = incidents.incident_week(history, WEEK2, as_of=as_of)
    assert everyone.this_week["opened_warning"] == 2  # credit's and churn's
    assert everyone.this_week["ttr_median_h"] == pytest.approx(24.0)
    assert everyone.last_week["ttr_worst_h"] == pytest.approx(48.0)
    assert everyone.any_alerts


def test_no_alerts_gives_empty_figures(store):
    week = incidents.incident_week(store, WEEK1, as_of=WEEK2)
    assert not week.any_alerts
    assert {r["this week"] for r in week.rows()} == {"-"}
