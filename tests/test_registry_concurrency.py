"""Many reviewers at once: threads issue conflicting actions on one store (a cursor each, as
the app does). Every invariant holds and each success wrote exactly its audit rows."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from lifecycle import registry
from lifecycle.identity import Actor
from lifecycle.registry import machine
from tests.test_registry import (
    DANA,
    RITA,
    SAM,
    approve_fully,
    assert_invariants,
    audit_count,
    register_version,
    state,
    to_production_first,
)

THREADS = 10


def race(calls) -> tuple[list, list]:
    """Run the callables at the same instant on their own threads; (results, errors)."""
    barrier = threading.Barrier(len(calls))
    results, errors = [], []
    lock = threading.Lock()

    def run(call):
        barrier.wait()
        try:
            outcome = call()
        except Exception as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results, errors


def audit_ids(store) -> set[int]:
    return {r[0] for r in store.query_all("SELECT audit_id FROM audit_log")}


@pytest.fixture
def canary_store(store, tmp_path):
    for version, auc in (("1.0", 0.7), ("2.0", 0.85)):
        register_version(store, tmp_path, version, auc=auc)
    to_production_first(store, "1.0")
    approve_fully(store, "2.0")
    registry.promote(store, DANA, "toy", "2.0")
    registry.promote(store, DANA, "toy", "2.0")  # canary at 1%
    return store


@pytest.mark.parametrize("round_", range(3))
def test_conflicting_actions_on_one_version_one_wins(canary_store, round_):
    store = canary_store
    revision = registry.version_status(store, "toy", "2.0")["revision"]
    before = audit_ids(store)
    deployers = [Actor(f"deployer{i}@example.com", frozenset({"deployer"})) for i in range(THREADS)]
    kinds = ["promote", "switch", "rollback"]
    calls = [
        (
            lambda a=a, k=kinds[i % 3]: registry.act(
                store, a, k, "toy", "2.0", reason="race", expected_revision=revision
            )
        )
        for i, a in enumerate(deployers)
    ]
    results, errors = race(calls)
    assert len(results) == 1, errors
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, registry.Conflict) for e in errors), errors
    assert all("reload" in str(e) for e in errors)
    new = audit_ids(store) - before
    assert new == set(results[0].audit_ids)
    assert state(store, "2.0") == results[0].to_state
    assert_invariants(store)


def test_eight_reviewers_approving_one_high_risk_version(store, tmp_path):
    register_version(store, tmp_path, "1.0", name="credit", risk="high")
    registry.request_approval(store, DANA, "credit", "1.0")
    revision = registry.version_status(store, "credit", "1.0")["revision"]
    before = audit_count(store)
    reviewers = [Actor(f"reviewer{i}@example.com", frozenset({"reviewer"})) for i in range(8)]
    results, errors = race(
        [
            lambda r=r: registry.approve(store, r, "credit", "1.0", expected_revision=revision)
            for r in reviewers
        ]
    )
    assert len(results) == 1 and all(isinstance(e, registry.Conflict) for e in errors)
    assert audit_count(store) == before + 1
    approvals = store.query_all("SELECT reviewer FROM approvals WHERE model_name = 'credit'")
    winner = store.query_one(
        "SELECT actor FROM audit_log WHERE audit_id = ?", [results[0].audit_ids[0]]
    )[0]
    assert [a[0] for a in approvals] == [winner]
    assert len(approvals) == 1  # no approval row without its audit row
    assert state(store, "1.0", "credit") == machine.PENDING


def test_many_versions_racing_for_production_leave_exactly_one(store, tmp_path):
    versions = [f"{i}.0" for i in range(1, 10)]
    for v in versions:
        register_version(store, tmp_path, v, seed="same reference")
    to_production_first(store, "1.0")
    for v in versions[1:]:
        approve_fully(store, v)
        registry.promote(store, DANA, "toy", v)
    before = audit_ids(store)
    results, errors = race(
        [lambda v=v: registry.switch(store, DANA, "toy", v, reason="race") for v in versions[1:]]
        + [lambda: registry.retire(store, SAM, "toy", "1.0", reason="not a deployer")]
    )
    kinds = Counter(type(e).__name__ for e in errors)
    assert set(kinds) <= {"Conflict", "PermissionDenied"}, errors
    assert kinds["PermissionDenied"] == 1
    assert results, "at least one switch succeeds"
    assert audit_ids(store) - before == {i for r in results for i in r.audit_ids}
    assert_invariants(store)
    states = Counter(state(store, v) for v in versions)
    assert states["production"] == 1
    # every winner took production in turn; the last is the one serving
    serving = registry.serving_versions(store, "toy")["production"]
    assert serving == max(results, key=lambda r: r.audit_ids[0]).version


def test_rollback_racing_a_promotion_never_leaves_two_production_versions(canary_store):
    store = canary_store
    for _ in range(3):
        registry.promote(store, DANA, "toy", "2.0")
    registry.promote(store, DANA, "toy", "2.0")  # 2.0 production, 1.0 standby
    results, errors = race(
        [lambda: registry.rollback(store, DANA, "toy", "2.0", reason="errors")] * 4
        + [lambda: registry.retire(store, DANA, "toy", "1.0", reason="cleanup")] * 4
        + [lambda: registry.approve(store, RITA, "toy", "2.0")] * 2
    )
    assert 1 <= len(results) <= 2
    assert all(isinstance(e, registry.RegistryError | registry.Conflict) for e in errors)
    assert_invariants(store)
    rows = store.query_one("SELECT count(*) FROM model_versions WHERE state = 'production'")[0]
    assert rows == 1
