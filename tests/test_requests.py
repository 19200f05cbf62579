"""Registry and register commands while another process holds the database (lifecycle.requests).

A pipeline drives the registry with `python -m lifecycle registry ...` while the app serves:
the command cannot open the held file, queues its request, and the holder's Worker runs it
with the same checks, output and exit codes. Two real processes, as in test_live_ingest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from lifecycle import registry, requests
from lifecycle.store import DatabaseLocked, Store
from tests.browser import ROOT
from tests.conftest import write_toy_spec
from tests.test_live_ingest import Holder

CONFIG = """
[identity]
mode = "dev"
[identity.roles]
"rita@example.com" = ["reviewer"]
"dana@example.com" = ["deployer"]
"alice@example.com" = ["deployer"]
"""


def lifecycle_cmd(*argv, wait="30") -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle", *map(str, argv), "--wait", wait],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def db(toy_db_file):
    return toy_db_file


def test_register_and_registry_commands_run_in_the_holding_process(db, tmp_path):
    config = tmp_path / "lifecycle.toml"
    config.write_text(CONFIG)
    spec = write_toy_spec(tmp_path / "v2", version="2.0", seed=2)
    act = ["--db", db, "--config", config]
    holder = Holder(db, {"LIFECYCLE_CONFIG": str(config)})  # the app's config decides roles
    try:
        before = holder.counts()
        code, out, err = lifecycle_cmd("register", "--db", db, spec, "--actor", "alice@example.com")
        assert code == 0, err
        assert "held by another process" in err and "registered toy 2.0" in out

        code, out, err = lifecycle_cmd("registry", "request-approval", "toy", "2.0",
                                       "--actor", "dana@example.com", *act)  # fmt: skip
        assert code == 0 and "registered -> pending_approval" in out, err
        # refused in the holder, reported here: a deployer may not approve
        code, out, err = lifecycle_cmd("registry", "approve", "toy", "2.0",
                                       "--actor", "dana@example.com", *act)  # fmt: skip
        assert code == 2 and "may not approve" in err
        # a stale revision is a conflict, exit 4
        code, out, err = lifecycle_cmd("registry", "approve", "toy", "2.0", "--actor",
                                       "rita@example.com", "--expected-revision", "0", *act)  # fmt: skip
        assert code == 4 and "changed since you loaded it" in err
        code, out, err = lifecycle_cmd("registry", "approve", "toy", "2.0",
                                       "--actor", "rita@example.com", *act)  # fmt: skip
        assert code == 0 and "pending_approval -> approved" in out, err
        code, out, err = lifecycle_cmd("registry", "list", "--db", db, "--model", "toy", "--json")
        assert code == 0, err
        assert {r["version"]: r["state"] for r in json.loads(out)}["2.0"] == "approved"

        code, out, err = lifecycle_cmd("monitor", "--db", db, "--model", "toy", "--json")
        assert code == 0 and json.loads(out)[0]["model"] == "toy", err

        after = holder.counts()
        assert after["model_versions"] == before["model_versions"] + 1
    finally:
        holder.stop()
    with Store(db) as store:
        history = registry.lifecycle_history(store, "toy", "2.0")
    # one audit row per successful action, none for the refused and the conflicting one
    assert list(history["action"]) == ["register", "request_approval", "approve"]
    assert list(history["actor"]) == ["alice@example.com", "dana@example.com", "rita@example.com"]
    # every answer was read and removed by its command; nothing left queued or running
    root = requests.requests_dir(db)
    assert not list(root.rglob("*.json"))


def test_bad_spec_is_refused_by_the_holder_with_the_problem_named(db, tmp_path):
    spec = write_toy_spec(tmp_path / "bad", version="3.0")
    spec.write_text(spec.read_text().replace('task = "binary_classification"', 'task = "ranking"'))
    holder = Holder(db)
    try:
        before = holder.counts()
        code, _, err = lifecycle_cmd("register", "--db", db, spec)
        assert code == 2 and "task" in err and "ranking" in err, err
        assert holder.counts() == before
    finally:
        holder.stop()


def test_unanswered_request_is_withdrawn_and_never_runs_later(db, tmp_path, capsys, monkeypatch):
    """No worker serves: the command gives up after --wait, and takes its request back, so an
    app started later does not act on a command whose caller saw it fail."""
    holder = Store(db)  # holds the file, serves nothing
    try:
        monkeypatch.setattr(requests, "open_store", _locked)
        params = {"kind": "registry", "error_exit": 3, "action": "list", "model": None,
                  "json": True}  # fmt: skip
        assert requests.run(db, params, wait=0.5) == 3
        assert "withdrawn, nothing was done" in capsys.readouterr().err
        assert requests.serve(holder) == []
    finally:
        holder.close()


SHORT_HOLDER = """
import sys, time
from lifecycle.store import Store
store = Store(sys.argv[1])
print("holding", flush=True)
time.sleep(2)
store.close()
"""


def test_request_runs_here_once_a_short_lived_holder_lets_go(db):
    """The holder was another command, not the app: when it closes the file, the waiting
    command takes its request back and runs it itself, exactly once."""
    holder = subprocess.Popen([sys.executable, "-c", SHORT_HOLDER, str(db)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(DatabaseLocked):
            Store(db)
        params = {"kind": "registry", "error_exit": 3, "action": "history", "model": "toy",
                  "json": True}  # fmt: skip
        outcome = requests.via_holder(db, params, wait=30)
    finally:
        holder.wait(timeout=30)
    assert outcome.exit_code == 0
    assert [row["action"] for row in json.loads(outcome.stdout)] == ["register"]
    root = requests.requests_dir(db)
    assert not list((root / requests.PENDING).glob("*.json"))
    assert not list((root / requests.DONE).glob("*.json"))


LIST = {"kind": "registry", "error_exit": 3, "action": "list", "model": "toy", "json": False}


def test_a_request_is_served_once_and_failures_come_back_with_the_error(db):
    bad = requests.submit(db, {"kind": "registry", "error_exit": 3, "action": "history"}, 60)
    good = requests.submit(db, LIST, 60)
    with Store(db) as store:
        assert requests.serve(store) == [bad, good]
        assert requests.serve(store) == []
    failed = requests.result(db, bad)
    assert failed["exit_code"] == 3 and "KeyError" in failed["stderr"]
    assert "toy" in requests.result(db, good, consume=True)["stdout"]
    assert requests.result(db, good) is None  # the waiting command took it


def test_an_unexpected_error_has_the_same_exit_code_here_and_in_the_app(db, tmp_path, capsys):
    """A report that cannot be written: exit 2 with the error named, on both paths."""
    params = {"kind": "report", "error_exit": 2, "week": "2026-W10", "models": None,
              "app_url": None, "out": str(tmp_path / "missing-dir-is-a-file" / "r.md")}  # fmt: skip
    (tmp_path / "missing-dir-is-a-file").write_text("a file, not a folder")
    assert requests.run(db, params, wait=5) == 2
    here = capsys.readouterr().err
    ticket = requests.submit(db, params, 60)
    with Store(db) as store:
        requests.serve(store)
    served = requests.result(db, ticket)
    assert served["exit_code"] == 2
    assert "report failed" in here and "report failed" in served["stderr"]


def test_an_expired_request_is_answered_but_never_run(db):
    """Its command stopped waiting (SIGKILL, a long queue): the app must not act on it."""
    params = {"kind": "registry", "error_exit": 3, "action": "request_approval",
              "model": "toy", "version": "1.0", "actor": "dana@example.com",
              "roles": ["deployer"], "kwargs": {"reason": None, "expected_revision": None}}  # fmt: skip
    ticket = requests.submit(db, params, wait=-1)
    with Store(db) as store:
        assert requests.serve(store) == [ticket]
        assert registry.version_status(store, "toy", "1.0")["state"] == "registered"
    answer = requests.result(db, ticket)
    assert answer["exit_code"] == 3 and "expired" in answer["stderr"]


def test_an_interrupted_command_withdraws_its_request(db, monkeypatch):
    """Ctrl-C, or SIGTERM from a scheduler's timeout, while waiting: nothing stays queued."""
    monkeypatch.setattr(requests, "open_store", _locked)

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(requests.time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        requests.via_holder(db, LIST, wait=60)
    assert not list((requests.requests_dir(db) / requests.PENDING).glob("*.json"))


def test_sigterm_withdraws_the_request_of_a_waiting_command(db):
    """A real process, terminated while it waits for an app that never answers."""
    blocker = subprocess.Popen([sys.executable, "-c", SHORT_HOLDER.replace("time.sleep(2)",
                               "time.sleep(60)"), str(db)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        assert blocker.stdout.readline().strip() == "holding"
        waiting = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "registry", "list", "--db", str(db),
             "--wait", "60"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert "queued as" in waiting.stderr.readline()
        pending = requests.requests_dir(db) / requests.PENDING
        assert len(list(pending.glob("*.json"))) == 1
        waiting.terminate()
        waiting.wait(timeout=30)
        assert not list(pending.glob("*.json"))
    finally:
        blocker.kill()
        blocker.wait()


def test_a_request_finished_just_after_the_deadline_reports_its_real_outcome(db, monkeypatch):
    """Claimed by the app before the deadline, answered just after it: the caller gets the
    answer, not a timeout that would make a pipeline retry a change that happened."""
    monkeypatch.setattr(requests, "open_store", _locked)

    def slow_handler(store, params):
        time.sleep(1.5)  # claimed at 0.3 s, finished at 1.8 s: after the 1 s deadline
        return requests.Outcome(0, stdout="promoted")

    monkeypatch.setattr(requests, "_handler", lambda kind: slow_handler)
    holder = Store(db)

    def serve_late():
        time.sleep(0.3)
        requests.serve(holder)

    server = threading.Thread(target=serve_late)
    server.start()
    try:
        outcome = requests.via_holder(db, LIST, wait=1.0)
    finally:
        server.join()
        holder.close()
    assert (outcome.exit_code, outcome.stdout) == (0, "promoted")


def test_a_new_server_answers_what_a_dead_one_claimed_and_malformed_requests(db):
    root = requests.requests_dir(db)
    orphan = requests.submit(db, LIST, 60)
    (root / requests.RUNNING).mkdir(parents=True)
    (root / requests.PENDING / f"{orphan}.json").rename(root / requests.RUNNING / f"{orphan}.json")
    (root / requests.PENDING / "20260101T000000.000000-garbage.json").write_text("{not json")
    with Store(db) as store:
        assert requests.recover(store) == [orphan]
        assert requests.serve(store) == ["20260101T000000.000000-garbage"]
    assert "app stopped while running" in requests.result(db, orphan)["stderr"]
    garbage = requests.result(db, "20260101T000000.000000-garbage")
    assert garbage["exit_code"] == 2 and "unreadable request" in garbage["stderr"]
    assert not list((root / requests.RUNNING).glob("*.json"))


def _locked(*args, **kwargs):
    raise DatabaseLocked("held by another process")
