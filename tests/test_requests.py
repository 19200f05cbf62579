"""Registry and register commands while another process holds the database (lifecycle.requests).

A pipeline drives the registry with `python -m lifecycle registry ...` while the app serves:
the command cannot open the held file, queues its request, and the holder's Worker runs it
with the same checks, output and exit codes. Two real processes, as in test_live_ingest.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
    holder = Holder(db)
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
        assert after.pop("last_error") is None
        assert after["model_versions"] == before["model_versions"] + 1
    finally:
        holder.stop()
    with Store(db) as store:
        history = registry.lifecycle_history(store, "toy", "2.0")
    # one audit row per successful action, none for the refused and the conflicting one
    assert list(history["action"]) == ["register", "request_approval", "approve"]
    assert list(history["actor"]) == ["alice@example.com", "dana@example.com", "rita@example.com"]
    pending = requests.requests_dir(db) / requests.PENDING
    assert not list(pending.glob("*.json"))


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


def test_a_request_is_served_once_and_failures_come_back_with_the_error(db):
    bad = requests.submit(db, {"kind": "registry", "error_exit": 3, "action": "history"})
    good = requests.submit(db, {"kind": "registry", "error_exit": 3, "action": "list",
                                "model": "toy", "json": False})  # fmt: skip
    with Store(db) as store:
        assert requests.serve(store) == [bad, good]
        assert requests.serve(store) == []
    failed = requests.result(db, bad)
    assert failed["exit_code"] == 3 and "KeyError" in failed["stderr"]
    assert "toy" in requests.result(db, good)["stdout"]


def _locked(*args, **kwargs):
    raise DatabaseLocked("held by another process")
