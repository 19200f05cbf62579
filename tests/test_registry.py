"""The registry state machine: every allowed and forbidden transition, every role x action,
four-eyes and quorum, reasons, retirement, audit rows, compare-and-swap, CLI."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, cli, registry
from lifecycle.identity import PERMISSIONS, ROLES, Actor, PermissionDenied
from lifecycle.registry import machine
from lifecycle.store import Store
from tests.conftest import write_toy_spec

OWNER = "alice@example.com"  # registers every version (the toy spec's owner)
RITA = Actor("rita@example.com", frozenset({"reviewer"}))
SAM = Actor("sam@example.com", frozenset({"reviewer"}))
DANA = Actor("dana@example.com", frozenset({"deployer"}))
ADMIN = Actor("root@example.com", frozenset({"admin"}))


NO_LIVE_EVIDENCE = "\n[rollout]\nmin_live_rows = 0\nmin_windows = 0\n"


def register_version(
    store, folder: Path, version: str, *, name="toy", risk="low", auc=0.8, seed=None,
    live_evidence: bool = False,
):  # fmt: skip
    """Register `name` `version` whose reference predictions reach roughly the given AUC
    (the same reference rows for the same `seed`). These versions are for the state
    machine's tests and ask for no live evidence before production ([rollout] minimums 0)
    unless `live_evidence` keeps the defaults (the evidence gate's tests)."""
    spec = write_toy_spec(folder / f"{name}-{version}", version=version, card=risk == "high")
    text = spec.read_text().replace('name = "toy"', f'name = "{name}"')
    text += "" if live_evidence else NO_LIVE_EVIDENCE
    spec.write_text(text.replace('risk_tier = "low"', f'risk_tier = "{risk}"'))
    rng = np.random.default_rng(zlib.crc32((seed or f"{name} {version}").encode()))
    n = 400
    actual = rng.integers(0, 2, n)
    # score: a normal shift between classes that gives the wanted AUC (binormal model)
    shift = np.sqrt(2) * _norm_ppf(auc)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + shift * actual)))
    pd.DataFrame(
        {
            "x": rng.uniform(0, 10, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "prediction": score,
            "predicted_label": np.where(score >= 0.5, "1", "0"),
            "actual": actual,
            "segment": rng.choice(["web", "app"], n),
        }
    ).to_csv(spec.parent / "reference.csv", index=False)
    catalog.register_from_file(store, spec)


def _norm_ppf(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def state(store, version, model="toy") -> str:
    return store.query_one(
        "SELECT state FROM model_versions WHERE model_name = ? AND version = ?", [model, version]
    )[0]


def audit_count(store) -> int:
    return store.query_one("SELECT count(*) FROM audit_log")[0]


def approve_fully(store, version, model="toy"):
    registry.request_approval(store, DANA, model, version)
    registry.approve(store, RITA, model, version)
    if state(store, version, model) == machine.PENDING:
        registry.approve(store, SAM, model, version)


def to_production_first(store, version, model="toy"):
    approve_fully(store, version, model)
    registry.promote(store, DANA, model, version)
    registry.switch(store, DANA, model, version, reason="first release")


def assert_invariants(store):
    """Exactly one production version per model that has one, matching the pointer row;
    at most one canary; no retired version referenced by the pointer."""
    rows = store.query_all(
        "SELECT model_name, count(*) FILTER (WHERE state = 'production'), "
        "count(*) FILTER (WHERE state = 'canary'), count(*) FILTER (WHERE state = 'standby') "
        "FROM model_versions GROUP BY 1"
    )
    pointers = {
        r[0]: r[1:]
        for r in store.query_all(
            "SELECT model_name, production_version, canary_version, previous_version "
            "FROM deployments"
        )
    }
    for model, production, canary, standby in rows:
        assert production <= 1 and canary <= 1 and standby <= 1, model
        pointer = pointers.get(model, (None, None, None))
        if production:
            prod = store.query_one(
                "SELECT version FROM model_versions WHERE model_name = ? AND state = 'production'",
                [model],
            )[0]
            assert pointer[0] == prod
        else:
            assert pointer[0] is None
        for version in pointer:
            if version is not None:
                assert state(store, version, model) != machine.RETIRED


# -- a model with 1.0 in production and 2.0 ready to be put into any state ----------------------


class Templates:
    """Databases with 1.0 in production and 2.0 driven into a state, built once per worker
    and copied per test (building one takes about a second)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: dict[str, Path] = {}

    def copy(self, target_state: str, to: Path) -> Path:
        if target_state not in self.paths:
            path = self.folder / f"{target_state}.duckdb"
            with Store(path) as store:
                for version, auc in (("1.0", 0.75), ("2.0", 0.8), ("3.0", 0.8)):
                    register_version(store, self.folder / target_state, version, auc=auc)
                to_production_first(store, "1.0")
                put_in(store, target_state)
            self.paths[target_state] = path
        shutil.copyfile(self.paths[target_state], to)
        return to


@pytest.fixture(scope="session")
def templates(tmp_path_factory) -> Templates:
    return Templates(tmp_path_factory.mktemp("registry-templates"))


@pytest.fixture
def reg_in(templates, tmp_path):
    """reg_in(state) -> (store, version in that state); stores are closed after the test."""
    opened = []

    def make(target_state: str):
        store = Store(templates.copy(target_state, tmp_path / f"{target_state}.duckdb"))
        opened.append(store)
        return store, STATE_VERSION.get(target_state, "2.0")

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def reg(reg_in):
    return reg_in(machine.REGISTERED)[0]


STATE_VERSION = {machine.STANDBY: "1.0"}


def put_in(store, target: str) -> str:
    """Drive the machine until a version is in `target`; return that version."""
    v = "2.0"
    steps = {
        machine.REGISTERED: [],
        machine.PENDING: ["request"],
        machine.APPROVED: ["request", "approve"],
        machine.REJECTED: ["request", "reject"],
        machine.SHADOW: ["request", "approve", "shadow"],
        machine.CANARY: ["request", "approve", "shadow", "canary"],
        machine.PRODUCTION: ["request", "approve", "shadow", "switch"],
        machine.STANDBY: ["request", "approve", "shadow", "switch"],
        machine.ROLLED_BACK: ["request", "approve", "shadow", "canary", "rollback"],
        machine.RETIRED: ["request", "reject", "retire"],
    }[target]
    do = {
        "request": lambda: registry.request_approval(store, DANA, "toy", v),
        "approve": lambda: registry.approve(store, RITA, "toy", v),
        "reject": lambda: registry.reject(store, RITA, "toy", v, reason="not good enough"),
        "shadow": lambda: registry.promote(store, DANA, "toy", v),
        "canary": lambda: registry.promote(store, DANA, "toy", v),
        "switch": lambda: registry.switch(store, DANA, "toy", v),
        "rollback": lambda: registry.rollback(store, DANA, "toy", v, reason="errors"),
        "retire": lambda: registry.retire(store, DANA, "toy", v, reason="superseded"),
    }
    for step in steps:
        do[step]()
    if target == machine.STANDBY:
        v = "1.0"
    assert state(store, v) == target
    return v


ACTOR_FOR = {
    "request_approval": DANA,
    "approve": RITA,
    "reject": RITA,
    "promote": DANA,
    "switch": DANA,
    "rollback": DANA,
    "retire": DANA,
}
EXPECTED_TARGET = {
    ("request_approval", machine.REGISTERED): machine.PENDING,
    ("request_approval", machine.REJECTED): machine.PENDING,
    ("request_approval", machine.ROLLED_BACK): machine.PENDING,
    ("approve", machine.PENDING): machine.APPROVED,  # low risk: one approval
    ("reject", machine.PENDING): machine.REJECTED,
    ("promote", machine.APPROVED): machine.SHADOW,
    ("promote", machine.SHADOW): machine.CANARY,
    ("promote", machine.CANARY): machine.CANARY,  # 1% -> 5%
    ("switch", machine.SHADOW): machine.PRODUCTION,
    ("switch", machine.CANARY): machine.PRODUCTION,
    ("rollback", machine.CANARY): machine.ROLLED_BACK,
    ("rollback", machine.PRODUCTION): machine.ROLLED_BACK,
    **{("retire", s): machine.RETIRED for s in machine.SOURCES["retire"]},
}


@pytest.mark.parametrize("start", machine.STATES)
@pytest.mark.parametrize("action", machine.ACTIONS)
def test_every_transition_allowed_or_refused_as_the_table_says(reg_in, start, action):
    reg, version = reg_in(start)
    before = reg.row_counts()
    target = EXPECTED_TARGET.get((action, start))
    kwargs = {"reason": "checked by test"}
    if target is None:
        with pytest.raises(registry.RegistryError, match=f"it is {start}"):
            registry.act(reg, ACTOR_FOR[action], action, "toy", version, **kwargs)
        assert reg.row_counts() == before and state(reg, version) == start
    else:
        if action == "retire" and start in (machine.SHADOW, machine.STANDBY):
            # retiring the standby or a shadow needs explicit confirmation; unconfirmed,
            # nothing changes and the refusal names the consequence
            with pytest.raises(registry.RegistryError, match="needs explicit confirmation"):
                registry.act(reg, ACTOR_FOR[action], action, "toy", version, **kwargs)
            assert reg.row_counts() == before
            kwargs["confirm"] = True
        result = registry.act(reg, ACTOR_FOR[action], action, "toy", version, **kwargs)
        assert (result.from_state, result.to_state) == (start, target)
        assert state(reg, version) == target
        assert audit_count(reg) == before["audit_log"] + len(result.audit_ids)
    assert_invariants(reg)


def test_transition_table_matches_the_documented_machine():
    allowed = {(a, s) for a, sources in machine.SOURCES.items() for s in sources}
    assert allowed == set(EXPECTED_TARGET)
    assert machine.RETIRED not in {s for sources in machine.SOURCES.values() for s in sources}


# -- roles ---------------------------------------------------------------------------------------

START_FOR = {
    "request_approval": machine.REGISTERED,
    "approve": machine.PENDING,
    "reject": machine.PENDING,
    "promote": machine.APPROVED,
    "switch": machine.SHADOW,
    "rollback": machine.CANARY,
    "retire": machine.REJECTED,
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", machine.ACTIONS)
def test_every_role_and_action(reg_in, role, action):
    reg, version = reg_in(START_FOR[action])
    actor = Actor(f"{role}@example.com", frozenset({role}))
    before = reg.row_counts()
    permitted = role in PERMISSIONS[machine.PERMISSION[action]]
    if permitted:
        result = registry.act(reg, actor, action, "toy", version, reason="role test")
        assert result.to_state == EXPECTED_TARGET[(action, START_FOR[action])]
    else:
        with pytest.raises(PermissionDenied, match=f"{role}@example.com"):
            registry.act(reg, actor, action, "toy", version, reason="role test")
        assert reg.row_counts() == before
        assert state(reg, version) == START_FOR[action]
    assert permitted == (role == "admin" or role in ACTOR_FOR[action].roles)


def test_viewer_sees_no_actions_and_a_direct_call_is_refused(reg):
    viewer = Actor("victor@example.com", frozenset({"viewer"}))
    version = put_in(reg, machine.SHADOW)
    assert registry.available_actions(reg, viewer, "toy", version) == []
    with pytest.raises(PermissionDenied, match="may not promote"):
        registry.promote(reg, viewer, "toy", version)
    assert state(reg, version) == machine.SHADOW


# -- four-eyes and quorum -----------------------------------------------------------------------


def test_four_eyes_the_registrant_never_approves(reg):
    registry.request_approval(reg, DANA, "toy", "2.0")
    for who in (Actor(OWNER, frozenset({"reviewer"})), Actor(OWNER.upper(), frozenset({"admin"}))):
        with pytest.raises(registry.RegistryError, match="four-eyes"):
            registry.approve(reg, who, "toy", "2.0")
    assert state(reg, "2.0") == machine.PENDING
    options = registry.available_actions(reg, Actor(OWNER, frozenset({"reviewer"})), "toy", "2.0")
    approve = next(o for o in options if o.action == "approve")
    assert not approve.allowed and "four-eyes" in approve.why


def test_high_risk_needs_two_distinct_reviewers(store, tmp_path):
    register_version(store, tmp_path, "1.0", name="credit", risk="high")
    registry.request_approval(store, DANA, "credit", "1.0")
    first = registry.approve(store, RITA, "credit", "1.0")
    assert first.to_state == machine.PENDING and "1 of 2" in first.message
    with pytest.raises(registry.RegistryError, match="already approved"):
        registry.approve(store, RITA, "credit", "1.0")
    with pytest.raises(registry.RegistryError, match="it is pending_approval"):
        registry.promote(store, DANA, "credit", "1.0")
    second = registry.approve(store, SAM, "credit", "1.0")
    assert second.to_state == machine.APPROVED
    approvals = store.query_all(
        "SELECT reviewer FROM approvals WHERE model_name = 'credit' ORDER BY decided_at"
    )
    assert [r[0] for r in approvals] == [RITA.name, SAM.name]
    evidence = json.loads(
        store.query_one("SELECT evidence FROM audit_log WHERE audit_id = ?", [second.audit_ids[0]])[
            0
        ]
    )
    assert evidence["approvals"] == 2 and evidence["quorum"] == 2


def test_low_risk_needs_one_and_a_new_review_round_forgets_old_approvals(store, tmp_path):
    register_version(store, tmp_path, "1.0", name="credit", risk="high")
    registry.request_approval(store, DANA, "credit", "1.0")
    registry.approve(store, RITA, "credit", "1.0")
    registry.reject(store, SAM, "credit", "1.0", reason="fairness not shown")
    registry.request_approval(store, DANA, "credit", "1.0", reason="fairness added")
    assert registry.version_status(store, "credit", "1.0")["approvers"] == []
    registry.approve(store, RITA, "credit", "1.0")
    assert state(store, "1.0", "credit") == machine.PENDING  # rita's old approval not counted
    register_version(store, tmp_path, "1.0", name="churn", risk="low")
    registry.request_approval(store, DANA, "churn", "1.0")
    assert registry.approve(store, RITA, "churn", "1.0").to_state == machine.APPROVED


def test_review_queue_says_who_must_approve_and_who_may_not(store, tmp_path):
    register_version(store, tmp_path, "1.0", name="credit", risk="high")
    register_version(store, tmp_path, "1.0", name="churn", risk="low")
    register_version(store, tmp_path, "2.0", name="churn", risk="low")  # not sent for review
    registry.request_approval(store, DANA, "credit", "1.0")
    registry.approve(store, RITA, "credit", "1.0")
    registry.request_approval(store, DANA, "churn", "1.0")
    owner = Actor(OWNER, frozenset({"admin"}))
    people = [RITA, SAM, DANA, owner]
    queue = {q["model"]: q for q in registry.review_queue(store, RITA, people)}
    assert set(queue) == {"credit", "churn"}  # churn 2.0 is only registered
    credit, churn = queue["credit"], queue["churn"]
    assert (credit["quorum"], credit["approvers"]) == (2, [RITA.name])
    assert credit["review_kind"] == "committee review (2 distinct reviewers)"
    assert churn["review_kind"] == "peer review (one reviewer)"
    assert credit["eligible"] == [SAM.name]  # rita approved, dana has no reviewer role
    assert churn["eligible"] == [RITA.name, SAM.name]
    assert credit["may_not_approve"] == {
        OWNER: "registered it and owns it", DANA.name: "requested the review",
    }  # fmt: skip
    assert not credit["actor_may_approve"] and "already approved" in credit["actor_why_not"]
    assert churn["actor_may_approve"] and churn["actor_why_not"] is None
    own = registry.review_queue(store, owner, model="churn")[0]
    assert not own["actor_may_approve"] and "four-eyes" in own["actor_why_not"]


# -- reasons, retirement, serving rules ---------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_and_rollback_need_a_reason(reg, reason):
    registry.request_approval(reg, DANA, "toy", "2.0")
    before = reg.row_counts()
    with pytest.raises(registry.RegistryError, match="reject needs a reason"):
        registry.reject(reg, RITA, "toy", "2.0", reason=reason)
    assert reg.row_counts() == before
    registry.approve(reg, RITA, "toy", "2.0")
    registry.promote(reg, DANA, "toy", "2.0")
    registry.promote(reg, DANA, "toy", "2.0")
    with pytest.raises(registry.RegistryError, match="rollback needs a reason"):
        registry.rollback(reg, DANA, "toy", "2.0", reason=reason)
    assert state(reg, "2.0") == machine.CANARY


def test_retiring_production_needs_a_replacement_first(reg):
    with pytest.raises(registry.RegistryError, match="replacement promoted first"):
        registry.retire(reg, DANA, "toy", "1.0", reason="old")
    assert state(reg, "1.0") == machine.PRODUCTION


def test_a_retired_version_never_serves_again(reg):
    put_in(reg, machine.PRODUCTION)  # 2.0 production, 1.0 standby
    impact = registry.retirement_impact(reg, "toy", "1.0")
    assert impact["needs_confirmation"]
    assert impact["consequences"][0].startswith("no rollback target remains: 1.0 is the standby")
    with pytest.raises(registry.RegistryError, match="no rollback target remains"):
        registry.retire(reg, DANA, "toy", "1.0", reason="2.0 is trusted")
    assert registry.serving_versions(reg, "toy")["standby"] == "1.0"
    registry.retire(reg, DANA, "toy", "1.0", reason="2.0 is trusted", confirm=True)
    assert registry.serving_versions(reg, "toy")["standby"] is None
    with pytest.raises(registry.RegistryError, match="no previous production version"):
        registry.rollback(reg, DANA, "toy", "2.0", reason="errors")
    for action in machine.ACTIONS:
        with pytest.raises(registry.RegistryError, match="never serves again"):
            registry.act(reg, ADMIN, action, "toy", "1.0", reason="try")
    assert state(reg, "1.0") == machine.RETIRED
    assert_invariants(reg)


def test_canary_steps_then_production_keeps_the_old_version_on_standby(reg):
    registry.request_approval(reg, DANA, "toy", "2.0")
    registry.approve(reg, RITA, "toy", "2.0")
    registry.promote(reg, DANA, "toy", "2.0")
    shares = [registry.promote(reg, DANA, "toy", "2.0").canary_share for _ in range(4)]
    assert shares == list(registry.DEFAULT_CANARY_STEPS)
    final = registry.promote(reg, DANA, "toy", "2.0", reason="canary healthy")
    assert final.to_state == machine.PRODUCTION and len(final.audit_ids) == 2
    serving = registry.serving_versions(reg, "toy")
    assert (serving["production"], serving["standby"], serving["canary"]) == ("2.0", "1.0", None)
    assert serving["states"] == {"1.0": "standby", "2.0": "production", "3.0": "registered"}
    rollouts = reg.query_all(
        "SELECT version, variant, traffic_share FROM rollouts WHERE version = '2.0' "
        "ORDER BY started_at, traffic_share"
    )
    assert [r[2] for r in rollouts if r[1] == "canary"] == list(registry.DEFAULT_CANARY_STEPS)
    # rollback of production restores the standby in one transaction with two audit rows
    back = registry.rollback(reg, DANA, "toy", "2.0", reason="conversion fell")
    assert len(back.audit_ids) == 2
    assert (state(reg, "1.0"), state(reg, "2.0")) == (machine.PRODUCTION, machine.ROLLED_BACK)
    assert_invariants(reg)


def test_one_standby_slot_older_standby_is_retired_on_the_record(reg):
    put_in(reg, machine.PRODUCTION)  # 2.0 production, 1.0 standby
    approve_fully(reg, "3.0")
    registry.promote(reg, DANA, "toy", "3.0")
    result = registry.switch(reg, DANA, "toy", "3.0", reason="blue-green")
    assert len(result.audit_ids) == 3
    assert [state(reg, v) for v in ("1.0", "2.0", "3.0")] == ["retired", "standby", "production"]
    rows = reg.query_all(
        "SELECT version, action, from_state, to_state FROM audit_log WHERE audit_id IN ?",
        [result.audit_ids],
    )
    assert ("1.0", "retire", "standby", "retired") in rows
    assert_invariants(reg)


def test_canary_needs_a_production_version_and_only_one_canary(store, tmp_path):
    register_version(store, tmp_path, "1.0")
    approve_fully(store, "1.0")
    registry.promote(store, DANA, "toy", "1.0")
    with pytest.raises(registry.RegistryError, match="no production version"):
        registry.promote(store, DANA, "toy", "1.0")
    registry.switch(store, DANA, "toy", "1.0")
    for v in ("2.0", "3.0"):
        register_version(store, tmp_path, v)
        approve_fully(store, v)
        registry.promote(store, DANA, "toy", v)
    registry.promote(store, DANA, "toy", "2.0")
    with pytest.raises(registry.RegistryError, match="already in canary"):
        registry.promote(store, DANA, "toy", "3.0")
    with pytest.raises(registry.RegistryError, match="share"):
        registry.promote(store, DANA, "toy", "2.0", share=0.005)
    assert registry.promote(store, DANA, "toy", "2.0", share=0.4).canary_share == 0.4


# -- compare-and-swap, audit -----------------------------------------------------------------


def test_stale_revision_is_a_conflict_and_changes_nothing(reg):
    status = registry.version_status(reg, "toy", "2.0")
    registry.request_approval(reg, DANA, "toy", "2.0", expected_revision=status["revision"])
    before = reg.row_counts()
    with pytest.raises(registry.Conflict, match="changed since you loaded it"):
        registry.retire(reg, DANA, "toy", "2.0", expected_revision=status["revision"])
    assert reg.row_counts() == before and state(reg, "2.0") == machine.PENDING


def test_each_success_writes_one_audit_row_per_changed_version_with_actor_and_reason(reg):
    history = registry.lifecycle_history(reg, "toy")
    assert list(history["action"]) == [
        "register", "register", "register", "request_approval", "approve", "promote", "switch",
    ]  # fmt: skip
    last = history.iloc[-1]
    assert (last.actor, last.from_state, last.to_state, last.reason) == (
        DANA.name, "shadow", "production", "first release",
    )  # fmt: skip
    evidence = json.loads(last.evidence)
    assert {g["name"] for g in evidence["gates"]} == {
        "evidence",
        "monitoring",
        "alerts",
        "metrics",
        "live",
    }


def test_available_actions_offer_only_what_is_allowed(reg):
    version = put_in(reg, machine.CANARY)
    labels = {o.action: o for o in registry.available_actions(reg, DANA, "toy", version)}
    assert set(labels) == {"promote", "switch", "rollback"}
    assert labels["promote"].label == "Raise canary to 5%"
    assert labels["rollback"].needs_reason
    assert registry.available_actions(reg, RITA, "toy", version) == []


# -- command line -----------------------------------------------------------------------------


def test_cli_drives_the_machine_with_roles_from_the_config(tmp_path, capsys):
    db = tmp_path / "cli.duckdb"
    with Store(db) as store:
        register_version(store, tmp_path, "1.0", name="credit", risk="high")
    config = tmp_path / "lifecycle.toml"
    config.write_text(
        '[identity]\nmode = "dev"\n[identity.roles]\n'
        '"rita@example.com" = ["reviewer"]\n"sam@example.com" = ["reviewer"]\n'
        '"dana@example.com" = ["deployer"]\n'
    )

    def run(*argv):
        code = cli.main(["registry", *argv, "--db", str(db)])
        out, err = capsys.readouterr()
        return code, out + err

    act = ["--config", str(config)]
    assert run("request-approval", "credit", "1.0", "--actor", "dana@example.com", *act)[0] == 0
    code, text = run("approve", "credit", "1.0", "--actor", "victor@example.com", *act)
    assert code == 2 and "may not approve" in text  # not in the mapping: viewer
    assert run("approve", "credit", "1.0", "--actor", "rita@example.com", *act)[0] == 0
    code, text = run("approve", "credit", "1.0", "--actor", "rita@example.com", *act)
    assert code == 2 and "already approved" in text
    code, text = run("approve", "credit", "1.0", "--actor", "sam@example.com", *act)
    assert code == 0 and "pending_approval -> approved" in text
    code, text = run(
        "reject", "credit", "1.0", "--actor", "rita@example.com", "--reason", "late",
        "--expected-revision", "1", *act,
    )  # fmt: skip
    assert code == 4 and "changed since you loaded it" in text
    code, text = run("list", "--model", "credit", "--json")
    assert code == 0 and json.loads(text)[0]["state"] == "approved"
    code, text = run("history", "credit")
    assert code == 0 and text.count("approve") >= 2


def test_audit_entries_filter_by_model_actor_action_and_time(reg):
    everything = registry.audit_entries(reg)
    assert len(everything) == audit_count(reg)
    assert list(everything["audit_id"]) == sorted(everything["audit_id"], reverse=True)
    approvals = registry.audit_entries(reg, actions=["approve"], actors=[RITA.name])
    assert list(approvals["version"]) == ["1.0"]
    assert registry.audit_entries(reg, models=["other"]).empty
    newest = everything["ts"].max()
    assert len(registry.audit_entries(reg, since=newest)) >= 1
    assert registry.audit_entries(reg, until=everything["ts"].min()).empty
    facets = registry.audit_facets(reg)
    assert facets["models"] == ["toy"] and "switch" in facets["actions"]
    assert set(facets["actors"]) == {OWNER, DANA.name, RITA.name}


# -- identity configuration ----------------------------------------------------------------------


def test_identity_config_defaults_file_and_errors(tmp_path, monkeypatch):
    from lifecycle.identity import ConfigError, load_identity_config

    monkeypatch.delenv("LIFECYCLE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    default = load_identity_config()  # no file: development with the demo's people
    assert default.mode == "auto" and default.actor("developer@localhost").roles == {"admin"}
    assert default.actor("Rita.Reviewer@example.com").roles == {"reviewer"}
    assert default.actor("stranger@example.com").roles == {"viewer"}
    path = tmp_path / "lifecycle.toml"
    path.write_text(
        '[identity]\nmode = "oidc"\ndefault_roles = []\n'
        '[identity.roles]\n"Ops@Example.com" = ["deployer", "reviewer"]\n'
    )
    loaded = load_identity_config()
    assert loaded.mode == "oidc" and loaded.source == "lifecycle.toml"
    assert loaded.actor("ops@example.com").roles == {"deployer", "reviewer"}
    assert loaded.actor("rita.reviewer@example.com").roles == frozenset()  # not listed
    path.write_text('[identity]\nmode = "magic"\n[identity.roles]\n"a@b.c" = ["boss"]\n')
    with pytest.raises(ConfigError) as problem:
        load_identity_config()
    assert "identity.mode is 'magic'" in str(problem.value)
    assert "unknown role(s) ['boss']" in str(problem.value)
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_identity_config()


def test_permission_is_checked_before_anything_is_read(reg):
    viewer = Actor("victor@example.com", frozenset({"viewer"}))
    for action in machine.ACTIONS:
        with pytest.raises(PermissionDenied):
            registry.act(reg, viewer, action, "no_such_model", "9.9", reason="x")


def test_gate_reasons_say_how_many_they_do_not_list():
    from lifecycle.registry.gates import _first

    assert _first([f"#{i}" for i in range(7)]) == "#0, #1, #2, #3, #4 and 2 more"
    assert _first(["#1", "#2"]) == "#1, #2"
