"""Alert lifecycle over sequences of windows: de-duplication, repeats, severity raise,
auto-resolve, acknowledge, snooze, escalation, permissions, conflicts and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts.config import alert_config
from lifecycle.alerts.rules import Evaluation
from lifecycle.identity import Actor, PermissionDenied

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)
REVIEWER = Actor("rita@example.com", frozenset({"reviewer"}))
VIEWER = Actor("vic@example.com", frozenset({"viewer"}))


def evaluation(day: int, outcome: str, subject: str = "debt_ratio", version: str = "1.0"):
    start = T0 + day * DAY
    return Evaluation(
        model="toy", version=version, variant="production", layer="drift", rule="data_drift",
        subject=subject, grain="day", window_start=start, window_end=start + DAY,
        outcome=outcome, value={"ok": 0.01, "warning": 0.2, "critical": 0.4}.get(outcome),
        threshold=0.05, summary=f"{subject} day {day} {outcome}", evidence={"day": day},
    )  # fmt: skip


def configs(**alerts):
    config = alert_config({"alerts": alerts})
    return {("toy", "1.0"): config, ("toy", "2.0"): config}


def apply(store, *evals, now=None, **alerts):
    now = now or T0 + 60 * DAY
    return lc.apply_evaluations(store, list(evals), configs(**alerts), now=now)


def alerts(store):
    return lc.list_alerts(store).sort_values("alert_id").reset_index(drop=True)


def audit_actions(store):
    return [r[0] for r in store.query_all("SELECT action FROM audit_log ORDER BY audit_id")]


def test_repeats_of_one_key_make_one_alert_with_count_and_span(store):
    result = apply(store, evaluation(0, "warning"), evaluation(1, "warning"), evaluation(2, "ok"))
    frame = alerts(store)
    assert len(frame) == 1 and result.opened == [frame.alert_id[0]]
    row = frame.iloc[0]
    assert (row["count"], row.state, row.severity) == (2, "open", "warning")
    assert row.first_seen == T0 and row.last_seen == T0 + DAY
    assert row.response == "enhanced monitoring"
    result = apply(store, evaluation(3, "warning"))
    row = alerts(store).iloc[0]
    assert len(alerts(store)) == 1 and result.repeated == [row.alert_id]
    assert (row["count"], row.last_seen) == (3, T0 + 3 * DAY)
    assert audit_actions(store) == ["alert_opened", "alert_repeated"]


def test_other_subject_or_version_is_another_alert(store):
    apply(
        store,
        evaluation(0, "warning"),
        evaluation(0, "warning", subject="income"),
        evaluation(0, "warning", version="2.0"),
    )
    assert len(alerts(store)) == 3


def test_reapplying_the_same_evaluations_changes_nothing(store):
    evals = [evaluation(0, "critical"), evaluation(1, "ok")]
    apply(store, *evals)
    before = (store.row_counts(), alerts(store).to_dict("records"))
    result = apply(store, *evals)
    assert result.evaluated == 0 and not result.events()
    assert (store.row_counts(), alerts(store).to_dict("records")) == before


def test_severity_raise_to_critical_is_an_event(store):
    apply(store, evaluation(0, "warning"))
    result = apply(store, evaluation(1, "critical"))
    row = alerts(store).iloc[0]
    assert row.severity == "critical" and row.response == "retrain"
    assert result.events() == [(row.alert_id, "raised")]
    # a later warning window: the current severity follows it, the worst stays critical
    result = apply(store, evaluation(2, "warning"))
    row = alerts(store).iloc[0]
    assert (row.severity, row.worst_severity) == ("warning", "critical")
    assert not result.events() and row.response == "retrain"


def test_severity_and_summary_describe_the_same_latest_window(store):
    """The summary is the latest failing window's and so is `severity`; the worst of the
    episode is kept beside it."""
    for day, outcome in enumerate(["warning", "critical", "critical", "warning"]):
        apply(store, evaluation(day, outcome))
        row = alerts(store).iloc[0]
        assert row.summary == f"debt_ratio day {day} {outcome}"
        assert row.severity == outcome
        assert row.worst_severity == ("warning" if day == 0 else "critical")
    # a late, older window changes neither the summary nor the current severity
    apply(store, evaluation(-1, "critical", subject="debt_ratio"))
    row = alerts(store).iloc[0]
    assert (row.severity, row.summary) == ("warning", "debt_ratio day 3 warning")
    assert row.first_seen == T0 - DAY


def test_auto_resolve_after_n_healthy_windows_not_counting_insufficient(store):
    apply(store, evaluation(0, "critical"), resolve_after=3)
    apply(store, evaluation(1, "ok"), evaluation(2, "insufficient"), evaluation(3, "ok"),
          resolve_after=3)  # fmt: skip
    assert alerts(store).iloc[0].state == "open"
    result = apply(store, evaluation(4, "ok"), resolve_after=3)
    row = alerts(store).iloc[0]
    assert result.resolved == [row.alert_id]
    assert row.state == "resolved" and row.resolved_by == lc.SYSTEM
    assert "3 healthy" in row.resolution


def test_a_failure_between_healthy_windows_restarts_the_count(store):
    apply(store, evaluation(0, "warning"), evaluation(1, "ok"), evaluation(2, "ok"),
          evaluation(3, "warning"), evaluation(4, "ok"), evaluation(5, "ok"))  # fmt: skip
    row = alerts(store).iloc[0]
    assert row.state == "open" and row["count"] == 2 and row.last_seen == T0 + 3 * DAY
    apply(store, evaluation(6, "ok"))
    assert alerts(store).iloc[0].state == "resolved"


def test_one_check_over_history_splits_episodes_at_healed_gaps(store):
    """Applied at once (a first check over months of history), a failure that healed
    (resolve_after healthy windows) and a later one are two alerts, not one with a
    first_seen months early; a short gap stays one episode."""
    history = [evaluation(0, "warning"), *(evaluation(d, "ok") for d in range(1, 40)),
               evaluation(40, "critical"), evaluation(41, "ok"), evaluation(42, "critical")]  # fmt: skip
    result = apply(store, *history, resolve_after=3)
    frame = alerts(store)
    assert list(frame.state) == ["resolved", "open"]
    assert list(frame.first_seen) == [T0, T0 + 40 * DAY]
    assert list(frame["count"]) == [1, 2]
    assert sorted(result.opened) == list(frame.alert_id)
    assert result.resolved == [frame.alert_id[0]]
    assert frame.resolution[0] == "auto-resolved after 39 healthy window(s)"
    # insufficient windows are not healthy: they do not split an episode
    apply(store, *(evaluation(d, "insufficient") for d in range(43, 50)), evaluation(50, "warning"))
    assert len(alerts(store)) == 2 and alerts(store)["count"][1] == 3


def test_failure_after_resolution_opens_a_new_alert(store):
    apply(store, evaluation(0, "warning"), *(evaluation(d, "ok") for d in (1, 2, 3)))
    result = apply(store, evaluation(10, "warning"))
    frame = alerts(store)
    assert list(frame.state) == ["resolved", "open"]
    assert result.opened == [frame.alert_id[1]]


def test_a_late_older_failure_counts_without_moving_last_seen_back(store):
    apply(store, evaluation(5, "warning"))
    apply(store, evaluation(3, "critical"))
    row = alerts(store).iloc[0]
    assert (row["count"], row.first_seen, row.last_seen) == (2, T0 + 3 * DAY, T0 + 5 * DAY)
    assert row.summary == "debt_ratio day 5 warning"
    assert (row.severity, row.worst_severity) == ("warning", "critical")


def test_acknowledge_needs_a_comment_and_the_role(store):
    apply(store, evaluation(0, "critical"))
    alert_id = int(alerts(store).alert_id[0])
    counts = store.row_counts()
    with pytest.raises(PermissionDenied):
        lc.acknowledge(store, VIEWER, alert_id, "looking")
    with pytest.raises(lc.AlertError, match="comment"):
        lc.acknowledge(store, REVIEWER, alert_id, "  ")
    assert store.row_counts() == counts  # nothing written by refused calls
    row = lc.acknowledge(store, REVIEWER, alert_id, "upstream team paged")
    assert row["state"] == "acknowledged" and row["ack_comment"] == "upstream team paged"
    assert row["acknowledged_by"] == REVIEWER.name
    with pytest.raises(lc.AlertError, match="already acknowledged"):
        lc.acknowledge(store, REVIEWER, alert_id, "again")
    history = lc.alert_history(store, alert_id)
    assert list(history.action) == ["alert_opened", "alert_acknowledged"]
    assert history.actor.iloc[-1] == REVIEWER.name
    assert history.reason.iloc[-1] == "upstream team paged"


def test_stale_revision_is_a_conflict_and_changes_nothing(store):
    apply(store, evaluation(0, "warning"))
    alert = lc.get_alert(store, int(alerts(store).alert_id[0]))
    lc.snooze(store, REVIEWER, alert["alert_id"], T0 + 70 * DAY, "wait for deploy",
              revision=alert["revision"], now=T0 + 60 * DAY)  # fmt: skip
    with pytest.raises(lc.AlertConflict, match="reload"):
        lc.acknowledge(store, REVIEWER, alert["alert_id"], "mine", revision=alert["revision"])
    assert lc.get_alert(store, alert["alert_id"])["state"] == "snoozed"


def test_snooze_silences_until_its_time_then_the_alert_is_back(store):
    now = T0 + 60 * DAY
    apply(store, evaluation(0, "critical"), now=now)
    alert_id = int(alerts(store).alert_id[0])
    with pytest.raises(lc.AlertError, match="not in the future"):
        lc.snooze(store, REVIEWER, alert_id, now - DAY, now=now)
    lc.snooze(store, REVIEWER, alert_id, now + DAY, "maintenance window", now=now)
    assert lc.active_counts(store) == {"warning": 0, "critical": 0}
    # repeats while snoozed are counted, no escalation while snoozed
    result = apply(store, evaluation(1, "critical"), now=now + timedelta(hours=12))
    row = lc.get_alert(store, alert_id)
    assert row["state"] == "snoozed" and row["count"] == 2 and not result.escalated
    result = lc.maintain(store, configs(), now=now + DAY)
    assert result.unsnoozed == [alert_id]
    assert lc.get_alert(store, alert_id)["state"] == "open"
    assert lc.active_counts(store)["critical"] == 1


def test_snooze_of_an_acknowledged_alert_returns_to_acknowledged(store):
    now = T0 + 60 * DAY
    apply(store, evaluation(0, "warning"), now=now)
    alert_id = int(alerts(store).alert_id[0])
    lc.acknowledge(store, REVIEWER, alert_id, "on it")
    lc.snooze(store, REVIEWER, alert_id, now + DAY, now=now)
    lc.maintain(store, configs(), now=now + 2 * DAY)
    assert lc.get_alert(store, alert_id)["state"] == "acknowledged"


def test_unacknowledged_critical_alert_escalates_once_after_the_limit(store):
    now = T0 + 60 * DAY
    apply(store, evaluation(0, "critical"), evaluation(0, "warning", subject="income"), now=now)
    critical = int(alerts(store).query("severity == 'critical'").alert_id.iloc[0])
    assert not lc.maintain(store, configs(escalate_after_hours=4),
                           now=now + timedelta(hours=3, minutes=59)).escalated  # fmt: skip
    result = lc.maintain(store, configs(escalate_after_hours=4), now=now + timedelta(hours=4))
    assert result.escalated == [critical]  # the warning never escalates
    assert result.events() == [(critical, "escalated")]
    row = lc.get_alert(store, critical)
    assert row["escalation_level"] == 1 and row["state"] == "open"
    assert not lc.maintain(store, configs(), now=now + timedelta(hours=40)).escalated


def test_acknowledged_critical_alert_does_not_escalate(store):
    now = T0 + 60 * DAY
    apply(store, evaluation(0, "critical"), now=now)
    alert_id = int(alerts(store).alert_id[0])
    lc.acknowledge(store, REVIEWER, alert_id, "rolling back")
    assert not lc.maintain(store, configs(), now=now + timedelta(days=3)).escalated


def test_manual_resolve_needs_a_reason_and_a_later_failure_reopens(store):
    apply(store, evaluation(0, "warning"))
    alert_id = int(alerts(store).alert_id[0])
    with pytest.raises(lc.AlertError, match="reason"):
        lc.resolve(store, REVIEWER, alert_id, "")
    lc.resolve(store, REVIEWER, alert_id, "feature fixed upstream")
    with pytest.raises(lc.AlertError, match="already resolved"):
        lc.snooze(store, REVIEWER, alert_id, T0 + 90 * DAY, now=T0 + 61 * DAY)
    apply(store, evaluation(1, "warning"))
    assert list(alerts(store).state) == ["resolved", "open"]


def test_every_change_is_audited_with_the_alert_id(store):
    now = T0 + 60 * DAY
    apply(store, evaluation(0, "warning"), now=now)
    apply(store, evaluation(1, "critical"), now=now)
    alert_id = int(alerts(store).alert_id[0])
    lc.snooze(store, REVIEWER, alert_id, now + DAY, now=now)
    # the escalation clock restarts when the snooze ends: not escalated an hour later
    lc.maintain(store, configs(), now=now + DAY + timedelta(hours=1))
    lc.acknowledge(store, REVIEWER, alert_id, "seen")
    apply(store, *(evaluation(d, "ok") for d in (2, 3, 4)), now=now + 2 * DAY)
    assert list(lc.alert_history(store, alert_id).action) == [
        "alert_opened",
        "alert_severity_raised",
        "alert_snoozed",
        "alert_unsnoozed",
        "alert_acknowledged",
        "alert_resolved",
    ]
    windows = lc.alert_windows(store, lc.get_alert(store, alert_id))
    assert list(windows.outcome) == ["ok", "ok", "ok", "critical", "warning"]


def test_list_filters(store):
    apply(store, evaluation(0, "warning"), evaluation(0, "critical", subject="income"))
    assert len(lc.list_alerts(store, severity="critical")) == 1
    assert len(lc.list_alerts(store, severity=["critical", "warning"], layer="drift")) == 2
    assert lc.list_alerts(store, model="other").empty
    assert lc.list_alerts(store, state="resolved").empty
    # critical first
    assert lc.list_alerts(store).subject.iloc[0] == "income"
