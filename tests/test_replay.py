"""`check --replay`: the same alert outcomes as a loop of `check --as-of`, episodes split at
healed gaps, per-step lines, and no webhook unless asked."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, cli
from lifecycle.alerts.check import CheckError, run_check
from lifecycle.alerts.lifecycle import list_alerts
from lifecycle.alerts.replay import run_replay
from lifecycle.ingest import ingest
from lifecycle.store import Store
from tests.conftest import write_toy_spec
from tests.test_check import FAST_DRIFT, ROWS, end_of, serve_day

# day -> what goes wrong: missing x on days 2 and 8 (the same alert key twice), an unseen
# colour on day 5; healthy days in between
TROUBLE = {2: {"missing_x": 0.5}, 5: {"new_color": 0.015}, 8: {"missing_x": 0.5}}
DAYS = 10


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replay")
    spec = write_toy_spec(folder / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    path = folder / "history.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        rng = np.random.default_rng(7)
        for day in range(DAYS):
            serve_day(store, day, labels=False, **TROUBLE.get(day, {}))
            # labels for half the rows, two days late: performance changes between steps
            ids = [f"d{day}-{i}" for i in range(0, ROWS, 2)]
            ingest(store, "toy", "labels", pd.DataFrame({
                "prediction_id": ids, "actual": rng.choice(["0", "1"], len(ids)),
                "labeled_at": pd.Timestamp(end_of(day + 1)) + pd.Timedelta(hours=6)}))  # fmt: skip
    return path


@pytest.fixture
def copy(history, tmp_path):
    def make(name: str):
        target = tmp_path / f"{name}.duckdb"
        shutil.copyfile(history, target)
        return target

    return make


ALERT_COLUMNS = ["alert_id", "layer", "rule", "subject", "severity", "worst_severity", "state",
                 "first_seen", "last_seen", "count", "summary", "opened_at", "resolved_at"]  # fmt: skip


def outcomes(path):
    with Store(path, read_only=True) as store:
        alerts = list_alerts(store).sort_values("alert_id")[ALERT_COLUMNS]
        evaluations = store.query_df(
            "SELECT * EXCLUDE (evaluated_at) FROM alert_evaluations ORDER BY ALL"
        )
        audit = store.query_df(
            "SELECT action, reason, evidence->>'alert_id' AS alert FROM audit_log "
            "WHERE starts_with(action, 'alert_') ORDER BY audit_id"
        )
    return alerts.reset_index(drop=True), evaluations, audit


def test_replay_equals_a_loop_of_checks_as_of_each_step(copy):
    steps = [end_of(d) for d in range(DAYS)]
    looped, replayed = copy("loop"), copy("replay")
    with Store(looped) as store:
        codes = [run_check(store, as_of=step).exit_code for step in steps]
    with Store(replayed) as store:
        report = run_replay(store, start=steps[0], end=steps[-1], every="day")
    a_alerts, a_evals, a_audit = outcomes(looped)
    b_alerts, b_evals, b_audit = outcomes(replayed)
    assert len(a_alerts) >= 3
    performance = a_evals[a_evals.layer == "performance"]
    assert performance.outcome.isin(["ok", "warning", "critical"]).any()  # labels evaluated
    assert a_alerts.to_dict("records") == b_alerts.to_dict("records")
    assert a_evals.equals(b_evals)
    assert a_audit.to_dict("records") == b_audit.to_dict("records")
    # the exit code a cron job would have seen at each step, from the step summaries
    seen = [2 if s["active"]["critical"] else 1 if s["active"]["warning"] else 0
            for s in report.steps]  # fmt: skip
    assert seen == codes


def test_replay_splits_episodes_and_first_seen_is_the_new_breach(copy):
    path = copy("episodes")
    with Store(path) as store:
        report = run_replay(store, start=end_of(0), end=end_of(DAYS - 1), every="day")
        missing = list_alerts(store, model="toy").query("rule == 'missing_rate' and subject == 'x'")
    missing = missing.sort_values("alert_id")
    assert list(missing.state) == ["resolved", "open"]
    assert list(missing.first_seen) == [end_of(1), end_of(7)]  # day 2 and day 8 windows
    assert all(missing["count"] == 1)
    assert "auto-resolved after 3 healthy" in missing.resolution.iloc[0]
    assert len(report.steps) == DAYS
    text = report.text()
    assert text.startswith("replay 2026-03-03 00:00 .. 2026-03-12 00:00 UTC every day: 10 step")
    assert "2026-03-04 00:00: " in text and "opened 1" in text


def test_weekly_replay_still_splits_episodes(copy):
    """Steps longer than the gap: the episodes are split within one step's windows."""
    path = copy("weekly")
    with Store(path) as store:
        run_replay(store, start=end_of(2), end=end_of(9), every="week")
        missing = list_alerts(store).query("rule == 'missing_rate' and subject == 'x'")
    assert sorted(missing.first_seen) == [end_of(1), end_of(7)]


def test_cli_replay_prints_steps_and_json_and_posts_nothing_without_notify(copy, capsys):
    path = copy("cli")
    code = cli.main(["check", "--db", str(path), "--replay", "--from", "2026-03-03",
                     "--to", "2026-03-06", "--every", "day"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 2  # day 2's missing x is still critical: one healthy day since
    assert out.count("\n  2026-03-0") == 4 and "check as of 2026-03-06 00:00 UTC" in out
    code = cli.main(["check", "--db", str(path), "--replay", "--from", "2026-03-06",
                     "--to", "2026-03-12", "--json", "--no-monitor"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == data["exit_code"] and len(data["steps"]) == 7
    with Store(path, read_only=True) as store:
        assert store.query_one("SELECT count(*) FROM alert_notifications")[0] == 0


def test_replay_arguments_are_checked(copy, capsys):
    path = copy("args")
    with Store(path) as store, pytest.raises(CheckError, match="before --from"):
        run_replay(store, start=end_of(5), end=end_of(1))
    assert cli.main(["check", "--db", str(path), "--replay", "--to", "2026-03-06"]) == 3
    assert "--replay needs --from and --to" in capsys.readouterr().err
