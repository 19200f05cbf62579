"""The scheduled check on a small model: healthy, warning and critical states give exit codes
0, 1 and 2; windows are computed only once; the CLI prints text or JSON; a locked database
hands the check to the process that holds it."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, cli, requests
from lifecycle.alerts import report as weekly
from lifecycle.alerts.check import CheckError, run_check
from lifecycle.alerts.lifecycle import list_alerts
from lifecycle.ingest import ingest
from lifecycle.store import DatabaseLocked, Store
from tests.conftest import write_toy_spec

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
ROWS = 2000
FAST_DRIFT = "\n[drift]\nmultivariate = false\nconcept = false\n"


def serve_day(
    store: Store,
    day: int,
    *,
    new_color: float = 0.0,
    missing_x: float = 0.0,
    rows: int = ROWS,
    labels: bool = True,
):
    """One day of toy traffic like the reference, labelled an hour later; optionally an
    unseen colour or missing x."""
    rng = np.random.default_rng(100 + day)  # not 0: the reference is drawn with seed 0
    ts = pd.Timestamp(DAY0 + timedelta(days=day)) + pd.to_timedelta(
        np.sort(rng.uniform(0, 86_000, rows)), unit="s"
    )
    ids = [f"d{day}-{i}" for i in range(rows)]
    score = rng.uniform(0, 1, rows)
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "model_version": "1.0",
            "ts": ts,
            "prediction": score,
            "predicted_label": np.where(score >= 0.5, "1", "0"),
            "latency_ms": rng.gamma(2.0, 10.0, rows),
            "status": "ok",
        }
    )
    x = rng.uniform(0, 10, rows)
    x[rng.random(rows) < missing_x] = np.nan
    color = rng.choice(["red", "green", "blue"], rows).astype(object)
    color[rng.random(rows) < new_color] = "purple"
    ingest(store, "toy", "predictions", predictions)
    ingest(store, "toy", "features", pd.DataFrame({"prediction_id": ids, "x": x, "color": color}))
    if labels:  # as random as the reference's: performance stays at its reference value
        actual = rng.choice(["0", "1"], rows)
        frame = {"prediction_id": ids, "actual": actual, "labeled_at": ts + pd.Timedelta(hours=1)}
        ingest(store, "toy", "labels", pd.DataFrame(frame))


def end_of(day: int) -> datetime:
    return DAY0 + timedelta(days=day + 1)


@pytest.fixture
def toy_db(tmp_path):
    path = tmp_path / "check.duckdb"
    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    # the alert path is under test, not the slower multivariate and label checks
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        serve_day(store, 0)
        serve_day(store, 1)
    return path


def test_exit_codes_follow_the_worst_active_alert(toy_db):
    with Store(toy_db) as store:
        healthy = run_check(store, as_of=end_of(1))
        assert healthy.exit_code == 0 and healthy.opened == []
        assert len(healthy.monitor) == 1 and healthy.monitor[0]["computed"] == 2

        serve_day(store, 2, new_color=0.015)  # 1.5% "purple": moderate drift and quality
        warning = run_check(store, as_of=end_of(2))
        assert warning.exit_code == 1
        opened = list_alerts(store)
        assert set(opened.severity) == {"warning"}
        assert ("data_quality", "new_categories", "color") in set(
            zip(opened.layer, opened.rule, opened.subject, strict=True)
        )
        assert warning.monitor[0]["computed"] == 1  # only the new window was computed

        serve_day(store, 3, missing_x=0.4)  # 40% of x missing: critical
        critical = run_check(store, as_of=end_of(3))
        assert critical.exit_code == 2
        missing = list_alerts(store, severity="critical")
        assert ("missing_rate", "x") in set(zip(missing.rule, missing.subject, strict=True))
        assert missing.first_seen.iloc[0] == DAY0 + timedelta(days=3)
        assert critical.active["critical"] >= 1

        # a repeat of the same check changes nothing and reports the same state
        counts = store.row_counts()
        again = run_check(store, as_of=end_of(3))
        assert again.exit_code == 2 and again.evaluated == 0 and again.opened == []
        counts_after = store.row_counts()
        assert counts_after.pop("check_runs") == counts.pop("check_runs") + 1
        assert counts_after == counts


def test_windows_not_complete_at_as_of_are_not_evaluated(toy_db):
    with Store(toy_db) as store:
        serve_day(store, 2, missing_x=0.5)
        report = run_check(store, as_of=end_of(2) - timedelta(hours=1))
        assert report.exit_code == 0  # day 2 is not complete yet
        assert run_check(store, as_of=end_of(2)).exit_code == 2


def test_unknown_model_is_a_clear_error(toy_db):
    with Store(toy_db) as store, pytest.raises(CheckError, match="unknown model"):
        run_check(store, ["nope"], as_of=end_of(1))


def test_cli_text_and_json(toy_db, capsys):
    with Store(toy_db) as store:
        serve_day(store, 2, missing_x=0.5)
    code = cli.main(["check", "--db", str(toy_db), "--as-of", "2026-03-04T00:00Z"])
    text = capsys.readouterr().out
    assert code == 0 and "check as of 2026-03-04 00:00 UTC: OK" in text
    code = cli.main(["check", "--db", str(toy_db), "--as-of", "2026-03-05", "--json"])
    data = json.loads(capsys.readouterr().out, parse_constant=_not_json)  # strict: no NaN
    assert code == 2 == data["exit_code"]
    assert data["as_of"].startswith("2026-03-05T00:00:00")
    assert data["active"]["critical"] >= 1
    assert any(a["rule"] == "missing_rate" for a in data["active_alerts"])
    assert {r["model"] for r in data["retraining"]} == {"toy"}


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def test_cli_errors_exit_3(tmp_path, toy_db, capsys):
    assert cli.main(["check", "--db", str(tmp_path / "none.duckdb")]) == 3
    assert cli.main(["check", "--db", str(toy_db), "--model", "nope"]) == 3
    assert "unknown model" in capsys.readouterr().err


def test_check_while_another_process_holds_the_database(toy_db, capsys):
    """The app's process serves a queued check; the command prints its report and exit code."""
    with Store(toy_db) as store:
        serve_day(store, 2, missing_x=0.5)
    params = {"kind": "check", "error_exit": 3, "models": None, "monitor": True,
              "as_of": "2026-03-05T00:00:00+00:00", "notify_url": None, "app_url": None}  # fmt: skip
    ticket = requests.submit(toy_db, params, wait=60)
    with Store(toy_db) as store:  # stands in for the app: it holds the file and serves
        assert requests.serve(store) == [ticket]
        assert requests.serve(store) == []  # served once
    outcome = requests.result(toy_db, ticket)
    assert outcome["exit_code"] == 2 and "CRITICAL" in outcome["stdout"]


def test_cli_check_queues_for_the_app_when_locked(toy_db, capsys, monkeypatch):
    """With the file locked, `check` queues its request and returns the served exit code."""

    def locked(*args, **kwargs):
        raise DatabaseLocked("held by the app")

    monkeypatch.setattr(requests, "open_store", locked)
    holder = Store(toy_db)
    worker = requests.Worker(holder, interval=0.1)
    thread = threading.Thread(target=worker._run, daemon=True)
    thread.start()
    try:
        code = cli.main(["check", "--db", str(toy_db), "--as-of", "2026-03-03", "--wait", "60"])
    finally:
        worker.stop()
        thread.join(timeout=5)
        holder.close()
    captured = capsys.readouterr()
    assert code == 0 and "check queued" in captured.err and "OK" in captured.out


# -- the demo database: every documented incident, and nothing else ------------------------------

D = datetime(2026, 11, 16, tzinfo=UTC)  # the pinned end of the demo data (tests/conftest.py)
# From /work/briefs/demo.md and data/README.md: (model, layer, rule, subject, start, end, grain).
# `end` None = until the end of the data.
INCIDENTS = [
    ("credit_risk", "drift", "data_drift", "debt_ratio", D - timedelta(days=35), None, "day"),
    ("churn", "data_quality", "missing_rate", "usage_gb", D - timedelta(days=50),
     D - timedelta(days=48), "day"),
    ("credit_risk", "data_quality", "new_categories", "employment_type",
     D - timedelta(days=20), None, "day"),
    ("delivery_time", "infrastructure", "latency", "latency_p95",
     D - timedelta(days=25) + timedelta(hours=10), D - timedelta(days=25) + timedelta(hours=16),
     "hour"),
    ("delivery_time", "infrastructure", "error_rate", "error_rate",
     D - timedelta(days=25) + timedelta(hours=10), D - timedelta(days=25) + timedelta(hours=16),
     "hour"),
    ("delivery_time", "performance", "performance_metric", "mae", D - timedelta(days=40), None,
     "day"),
    ("churn", "business", "kpi_drop", "conversion", D - timedelta(days=15), None, "day"),
]  # fmt: skip


@pytest.fixture(scope="session")
def demo_checked(demo_monitored, tmp_path_factory):
    """The demo with monitoring results and one check as of its end: (path, report)."""
    path = tmp_path_factory.mktemp("demo_check") / "demo.duckdb"
    shutil.copyfile(demo_monitored, path)
    with Store(path) as store:
        report = run_check(store, as_of=D)
    return path, report


@pytest.mark.slow
def test_demo_check_raises_every_incident_at_its_layer_and_start(demo_checked):
    path, report = demo_checked
    assert report.exit_code == 2 and not report.skipped
    with Store(path, read_only=True) as store:
        alerts = list_alerts(store)
    production = alerts[alerts["variant"] == "production"]
    for model, layer, rule, subject, start, _end, grain in INCIDENTS:
        found = production[
            (production.model_name == model) & (production.layer == layer)
            & (production.rule == rule) & (production.subject == subject)
        ]  # fmt: skip
        assert len(found) >= 1, f"no {layer} alert for {model} {subject}"
        first = found.first_seen.min()
        window = GRAIN[grain]
        late = RAMP.get((model, subject), timedelta(0))
        assert start - window <= first <= start + window + late, (
            model, rule, subject, first, start,
        )  # fmt: skip


GRAIN = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# A gradual drift alerts (warning = moderate) once the shift *beyond chance* reaches the
# moderate 0.15 sd: debt_ratio starts at +0.15 sd and rises 0.03 sd a day, and a daily
# window's chance level is about 0.06 sd, so the warning comes about two days in.
RAMP = {("credit_risk", "debt_ratio"): timedelta(days=2)}


@pytest.mark.slow
def test_demo_exit_codes_through_the_upstream_break(demo_monitored, tmp_path):
    """churn replayed day by day: healthy before the break (0), critical during it (2),
    healthy again once the alert resolved itself (0)."""
    path = tmp_path / "replay.duckdb"
    shutil.copyfile(demo_monitored, path)
    with Store(path) as store:
        before = run_check(store, ["churn"], as_of=D - timedelta(days=51), monitor=False)
        during = run_check(store, ["churn"], as_of=D - timedelta(days=49), monitor=False)
        after = run_check(store, ["churn"], as_of=D - timedelta(days=44), monitor=False)
        resolved = list_alerts(store, model="churn", state="resolved")
    assert (before.exit_code, during.exit_code, after.exit_code) == (0, 2, 0)
    assert ("missing_rate", "usage_gb") in set(zip(resolved.rule, resolved.subject, strict=True))


@pytest.mark.slow
def test_demo_check_is_quiet_in_weeks_without_incidents(demo_checked):
    """No failing production window outside an incident's weeks."""
    path, _ = demo_checked
    with Store(path, read_only=True) as store:
        failing = store.query_df(
            "SELECT model_name, rule, subject, window_start FROM alert_evaluations "
            "WHERE variant = 'production' AND outcome IN ('warning', 'critical')"
        )
    incident_weeks = {
        (model, week)
        for model, *_, start, end, _grain in INCIDENTS
        for week in _weeks(start, end or D)
    }
    false_alarms = failing[
        [
            (m, weekly.week_of(w)) not in incident_weeks
            for m, r, s, w in zip(
                failing.model_name, failing.rule, failing.subject, failing.window_start, strict=True
            )
        ]
    ]
    assert false_alarms.empty, false_alarms.to_string()
    # and every model has incident-free weeks that were actually evaluated
    with Store(path, read_only=True) as store:
        evaluated = store.query_df(
            "SELECT DISTINCT model_name, window_start FROM alert_evaluations "
            "WHERE variant = 'production' AND outcome = 'ok'"
        )
    quiet = {(m, weekly.week_of(w)) for m, w in zip(evaluated.model_name,
                                                     evaluated.window_start, strict=True)}  # fmt: skip
    for model in ("churn", "credit_risk", "delivery_time"):
        assert len({w for m, w in quiet - incident_weeks if m == model}) >= 4


@pytest.mark.slow
def test_demo_weekly_report_names_the_incidents(demo_checked):
    path, _ = demo_checked
    with Store(path, read_only=True) as store:
        spike_week = weekly.weekly_review(store, weekly.week_of(D - timedelta(days=25)))
        quiet_week = weekly.weekly_review(store, weekly.week_of(D - timedelta(days=70)))
    delivery = next(m for m in spike_week.models if m.model == "delivery_time")
    assert delivery.status["infrastructure"] == "critical"
    assert {("latency", "latency_p95"), ("error_rate", "error_rate")} <= {
        (a["rule"], a["subject"]) for a in delivery.alerts
    }
    text = weekly.to_markdown(spike_week)
    assert "infrastructure / latency / latency_p95" in text
    for m in quiet_week.models:
        layers_failing = {k for k, v in m.status.items() if v in ("warning", "critical")}
        assert not layers_failing, (m.model, m.status)


def _weeks(start: datetime, end: datetime) -> set[str]:
    weeks, day = set(), start
    while day < end:
        weeks.add(weekly.week_of(day))
        day += timedelta(days=1)
    return weeks


# -- retraining recommendations ------------------------------------------------------------------


def _production_toy(tmp_path, retraining: str = "") -> Store:
    spec = write_toy_spec(tmp_path / "rspec", rows=200)
    spec.write_text(spec.read_text() + retraining, encoding="utf-8")
    store = Store(tmp_path / "retrain.duckdb")
    catalog.register_from_file(store, spec)
    with store.transaction() as cur:  # stands in for the registry's promotion
        cur.execute("UPDATE model_versions SET state = 'production', registered_at = ?",
                    [DAY0])  # fmt: skip
    return store


def _alert(store, layer, rule, severity):
    from lifecycle.alerts.config import alert_config
    from lifecycle.alerts.lifecycle import apply_evaluations
    from lifecycle.alerts.rules import Evaluation

    e = Evaluation("toy", "1.0", "production", layer, rule, "x", "day", DAY0,
                   DAY0 + timedelta(days=1), severity, 1.0, 0.1, "x moved")  # fmt: skip
    apply_evaluations(store, [e], {("toy", "1.0"): alert_config(None)}, now=DAY0)


def test_retraining_scheduled_and_triggered(tmp_path):
    from lifecycle.alerts.retraining import recommendation

    with _production_toy(tmp_path, "\n[retraining]\nevery_days = 30\n") as store:
        rec = recommendation(store, "toy", as_of=DAY0 + timedelta(days=29))
        assert not rec.due and rec.next_scheduled == DAY0 + timedelta(days=30)
        assert "not due (next scheduled: 2026-04-01)" in rec.text()
        rec = recommendation(store, "toy", as_of=DAY0 + timedelta(days=31))
        assert rec.due and rec.reasons == ["scheduled: trained 31 days ago (every 30 days)"]
        # a data-quality problem is fixed at the source: no retraining
        _alert(store, "data_quality", "missing_rate", "critical")
        assert not recommendation(store, "toy", as_of=DAY0 + timedelta(days=2)).due
        # a warning is below the default trigger; a critical drift alert triggers it
        _alert(store, "drift", "data_drift", "warning")
        assert not recommendation(store, "toy", as_of=DAY0 + timedelta(days=2)).due
        _alert(store, "drift", "data_drift", "critical")
        rec = recommendation(store, "toy", as_of=DAY0 + timedelta(days=2))
        assert rec.due and rec.reasons[0].startswith("critical drift alert #")
        assert rec.alert_ids


def test_retraining_policy_scheduled_ignores_alerts_and_bad_policy_is_named(tmp_path):
    from lifecycle.alerts.retraining import (
        RetrainingConfigError,
        recommendation,
        retraining_config,
    )

    with _production_toy(tmp_path, '\n[retraining]\npolicy = "scheduled"\n') as store:
        _alert(store, "drift", "data_drift", "critical")
        assert not recommendation(store, "toy", as_of=DAY0 + timedelta(days=2)).due
    with pytest.raises(RetrainingConfigError) as err:
        retraining_config({"retraining": {"policy": "weekly", "every_days": 0, "x": 1}})
    text = str(err.value)
    assert "retraining.policy" in text and "retraining.every_days" in text
    assert "unknown key `retraining.x`" in text


@pytest.mark.slow
def test_demo_weekly_performance_is_never_no_data_for_a_model_with_predictions(demo_checked):
    """The demo's last week (credit_risk's labels 14-45 days late): every model with
    predictions has a performance verdict and a performance figure this week; credit_risk's
    rest on estimates and say so."""
    path, _ = demo_checked
    with Store(path, read_only=True) as store:
        review = weekly.weekly_review(store, "2026-W46")
        served = {m for (m,) in store.query_all(
            "SELECT DISTINCT model_name FROM predictions WHERE ts >= ? AND ts < ?",
            [review.start, review.end])}  # fmt: skip
    assert served == {"churn", "credit_risk", "delivery_time"}
    for m in review.models:
        assert m.status["performance"] not in ("no data", "not evaluated"), m.model
        figures = [f for f in m.figures if f["layer"] == "performance"
                   and f["figure"] != "label coverage"]  # fmt: skip
        assert any(not np.isnan(f["this_week"]) for f in figures), (m.model, figures)
    credit = next(m for m in review.models if m.model == "credit_risk")
    assert credit.status_text("performance").endswith("(estimated)")
    (estimated,) = [f for f in credit.figures if "estimated, labels pending" in f["figure"]]
    assert 0.5 < estimated["this_week"] < 1
    text = weekly.to_markdown(review)
    assert "roc_auc (estimated, labels pending; " in text


# -- "not evaluated" is never "OK" ----------------------------------------------------------------


@pytest.fixture
def low_traffic_db(tmp_path):
    """toy at 24 predictions a day for a week: every daily drift check (30 rows needed) and
    every performance window (200 labels needed) is insufficient."""
    path = tmp_path / "low.duckdb"
    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        for day in range(7):
            serve_day(store, day, rows=24)
    return path


def test_a_model_whose_drift_could_not_be_evaluated_is_not_ok(low_traffic_db, capsys):
    with Store(low_traffic_db) as store:
        report = run_check(store, as_of=end_of(6))
    assert report.active == {"warning": 0, "critical": 0} or not any(report.active.values())
    assert report.exit_code == 4
    first, *rest = report.text().splitlines()
    assert "NOT EVALUATED" in first and ": OK" not in first
    lines = {line.split(" (", 1)[0].strip(): line for line in rest if "NOT EVALUATED" in line}
    drift = lines["NOT EVALUATED - toy: drift"]
    assert "all 7 windows insufficient: 24 rows a window, 30 needed" in drift
    performance = lines["NOT EVALUATED - toy: performance"]
    # pooled over the rule's 28-day span and still short of its minimum
    assert "labelled rows a window, 1,000 needed" in performance
    assert {(n["model"], n["layer"]) for n in report.not_evaluated} == {
        ("toy", "drift"), ("toy", "performance")}  # fmt: skip
    covered = {c["layer"]: c for c in report.coverage}
    assert covered["drift"]["verdicts"] == 0 and covered["drift"]["insufficient"] > 0
    assert covered["data_quality"]["verdicts"] > 0  # the rate checks still ran

    # the command: exit code 4, and the JSON names what was not evaluated
    code = cli.main(["check", "--db", str(low_traffic_db), "--as-of", "2026-03-09", "--json",
                     "--no-monitor"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 4 == data["exit_code"]
    assert {n["layer"] for n in data["not_evaluated"]} == {"drift", "performance"}


def test_the_weekly_review_says_not_evaluated(low_traffic_db):
    with Store(low_traffic_db) as store:
        run_check(store, as_of=end_of(6))
        review = weekly.weekly_review(store, weekly.week_of(DAY0))
    (m,) = review.models
    assert m.status["drift"] == m.status["performance"] == "not evaluated"
    assert m.overall == "not evaluated"
    assert m.coverage["drift"]["verdicts"] == 0 and m.coverage["drift"]["windows"] == 7
    text = weekly.to_markdown(review)
    assert "| toy | - | NOT EVALUATED |" in text
    assert "24 rows a window, 30 needed" in text
    assert "not evaluated" in weekly.to_html(review)


def test_labels_not_due_yet_are_awaited_not_a_failure(tmp_path):
    """Labels that arrive three weeks late leave this week's performance without a verdict:
    "awaiting labels", and the check stays OK while drift was evaluated."""
    path = tmp_path / "late.duckdb"
    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        for day in range(2):
            serve_day(store, day, labels=False)
            ids = [f"d{day}-{i}" for i in range(ROWS)]
            late = pd.Timestamp(DAY0 + timedelta(days=day + 21))
            labels = pd.DataFrame({"prediction_id": ids, "actual": "1", "labeled_at": late})
            ingest(store, "toy", "labels", labels)
        report = run_check(store, as_of=end_of(1))
    covered = {c["layer"]: c for c in report.coverage}
    assert covered["performance"]["state"] == "awaiting labels"
    assert covered["drift"]["state"] == "evaluated"
    assert report.exit_code == 0 and report.not_evaluated == []
