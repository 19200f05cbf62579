"""Issue 17, findings 3-5: who may register, identities the caller cannot assert (API tokens),
the queues' trust boundary, risk tiers and quorums, and spec settings validated at register."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from lifecycle import catalog, cli, inbox, registry, requests
from lifecycle.identity import (
    Actor,
    IdentityError,
    PermissionDenied,
    hash_token,
    load_identity_config,
    new_token,
)
from lifecycle.registry import machine
from lifecycle.spec import SpecError
from lifecycle.store import Store
from tests.conftest import toy_predictions, write_toy_spec
from tests.test_registry import DANA, RITA, SAM, register_version, state

ADMIN = Actor("root@example.com", frozenset({"admin"}))
VICTOR = Actor("victor@example.com", frozenset({"viewer"}))
ROLES = """
[identity.roles]
"rita@example.com" = ["reviewer"]
"sam@example.com" = ["reviewer"]
"dana@example.com" = ["deployer"]
"root@example.com" = ["admin"]
"victor@example.com" = ["viewer"]
"""


def write_config(path, *, tokens: dict[str, str] | None = None, extra: str = "") -> dict:
    """An identity config with the people above; `tokens` maps e-mail -> token (only the
    hashes are written). Returns the tokens."""
    text = f'[identity]\nmode = "dev"\n{extra}\n{ROLES}'
    if tokens:
        text += "\n[identity.tokens]\n" + "".join(
            f'"{email}" = ["{hash_token(token)}"]\n' for email, token in tokens.items()
        )
    path.write_text(text)
    return tokens or {}


def counts(store) -> dict:
    return store.row_counts()


# -- finding 3: register needs a role, the registrant is the verified caller -------------------


def test_register_needs_the_register_role_and_records_the_actor(store, tmp_path):
    spec = write_toy_spec(tmp_path / "s")
    before = counts(store)
    with pytest.raises(PermissionDenied, match="may not register"):
        catalog.register_from_file(store, spec, actor=VICTOR)
    with pytest.raises(PermissionDenied):
        catalog.register_from_file(store, spec, actor=RITA)  # reviewer: not by default
    assert counts(store) == before
    with pytest.raises(TypeError):
        catalog.register_from_file(store, spec, actor="dana@example.com")  # unverified text
    catalog.register_from_file(store, spec, actor=DANA)
    registrant = store.query_one("SELECT registered_by FROM model_versions")[0]
    assert registrant == DANA.name


def test_register_roles_are_configurable(tmp_path, monkeypatch):
    config = tmp_path / "lifecycle.toml"
    write_config(config, extra='register_roles = ["reviewer"]')
    loaded = load_identity_config(config)
    assert loaded.actor("rita@example.com").can("register")
    assert not loaded.actor("dana@example.com").can("register")
    assert loaded.actor("root@example.com").can("register")  # admin always


def test_cli_register_refuses_a_viewer_and_nothing_is_stored(toy_db_file, tmp_path, capsys):
    config = tmp_path / "lifecycle.toml"
    write_config(config)
    spec = write_toy_spec(tmp_path / "v2", version="2.0")
    with Store(toy_db_file) as store:
        before = counts(store)
    argv = ["register", "--db", str(toy_db_file), str(spec), "--config", str(config)]
    assert cli.main([*argv, "--actor", "victor@example.com"]) == 2
    err = capsys.readouterr().err
    assert "may not register" in err and "development identity" in err
    with Store(toy_db_file) as store:
        assert counts(store) == before
    assert cli.main([*argv, "--actor", "dana@example.com"]) == 0
    with Store(toy_db_file) as store:
        who = store.query_one("SELECT registered_by FROM model_versions WHERE version = '2.0'")[0]
    assert who == "dana@example.com"


def test_four_eyes_covers_the_requester_and_the_spec_owner(store, tmp_path):
    spec = write_toy_spec(tmp_path / "credit", card=True)  # owner alice, registered by dana
    spec.write_text(spec.read_text().replace('risk_tier = "low"', 'risk_tier = "high"'))
    spec.write_text(spec.read_text().replace('name = "toy"', 'name = "credit"'))
    catalog.register_from_file(store, spec, actor=DANA)
    ops = Actor("ops@example.com", frozenset({"deployer", "reviewer"}))
    registry.request_approval(store, ops, "credit", "1.0")
    with pytest.raises(registry.RegistryError, match="requested the review"):
        registry.approve(store, ops, "credit", "1.0")
    alice = Actor("Alice@example.com", frozenset({"reviewer"}))
    with pytest.raises(registry.RegistryError, match="owns credit"):
        registry.approve(store, alice, "credit", "1.0")
    assert registry.version_status(store, "credit", "1.0")["approvers"] == []
    registry.approve(store, RITA, "credit", "1.0")
    registry.approve(store, SAM, "credit", "1.0")
    assert state(store, "1.0", "credit") == machine.APPROVED


def test_a_new_version_cannot_lower_the_risk_tier_or_a_pending_quorum(store, tmp_path):
    register_version(store, tmp_path, "1.0", name="credit", risk="high")
    registry.request_approval(store, DANA, "credit", "1.0")
    before = counts(store)
    with pytest.raises(SpecError, match="cannot lower it"):
        register_version(store, tmp_path, "1.1", name="credit", risk="low")
    assert counts(store) == before
    assert registry.approve(store, RITA, "credit", "1.0").to_state == machine.PENDING


def test_set_risk_tier_is_an_audited_admin_action_and_pending_reviews_keep_their_quorum(
    store, tmp_path
):
    register_version(store, tmp_path, "1.0", name="credit", risk="high")
    registry.request_approval(store, DANA, "credit", "1.0")
    with pytest.raises(PermissionDenied):
        registry.set_risk_tier(store, DANA, "credit", "low", reason="cheaper")
    with pytest.raises(registry.RegistryError, match="needs a reason"):
        registry.set_risk_tier(store, ADMIN, "credit", "low", reason=" ")
    change = registry.set_risk_tier(store, ADMIN, "credit", "low", reason="reassessed")
    assert (change.from_tier, change.to_tier) == ("high", "low")
    audit = registry.lifecycle_history(store, "credit")
    row = audit[audit["action"] == "set_risk_tier"].iloc[0]
    assert row["actor"] == ADMIN.name and json.loads(row["evidence"])["from"] == "high"
    # the review requested under "high" still needs two reviewers
    assert registry.registry_table(store, "credit")["quorum"].iloc[0] == 2
    assert registry.approve(store, RITA, "credit", "1.0").to_state == machine.PENDING
    assert registry.approve(store, SAM, "credit", "1.0").to_state == machine.APPROVED
    # a version registered (and reviewed) after the change needs the new tier's one
    register_version(store, tmp_path, "1.1", name="credit", risk="low")
    registry.request_approval(store, DANA, "credit", "1.1")
    assert registry.approve(store, RITA, "credit", "1.1").to_state == machine.APPROVED


# -- finding 4: identities from API tokens ---------------------------------------------------------


def test_tokens_are_stored_hashed_and_verified():
    token = new_token()
    stored = hash_token(token)
    assert token not in stored and stored.startswith("sha256$")
    assert hash_token(token) != stored  # salted
    from lifecycle.identity import parse_identity_config

    config = parse_identity_config({"tokens": {"CI@example.com": [stored]}}, "test")
    assert config.principal_of(token) == "ci@example.com"
    assert config.principal_of(token + "x") is None and config.principal_of(None) is None
    assert config.caller(None, token) == ("ci@example.com", "verified by API token")
    with pytest.raises(IdentityError, match="--actor alone is not accepted"):
        config.caller("ci@example.com", None)
    with pytest.raises(IdentityError, match="does not match the token"):
        config.caller("root@example.com", token)
    with pytest.raises(Exception, match="not `sha256"):
        parse_identity_config({"tokens": {"ci@example.com": token}}, "test")  # a raw token


def test_cli_with_tokens_configured_refuses_actor_alone_and_acts_as_the_token(
    tmp_path, capsys, monkeypatch
):
    db = tmp_path / "tok.duckdb"
    with Store(db) as store:
        register_version(store, tmp_path, "1.0")
    config = tmp_path / "lifecycle.toml"
    tokens = write_config(config, tokens={"dana@example.com": new_token(),
                                          "rita@example.com": new_token()})  # fmt: skip
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    monkeypatch.delenv("LIFECYCLE_TOKEN", raising=False)

    def run(*argv):
        code = cli.main(["registry", *argv, "--db", str(db)])
        return code, "".join(capsys.readouterr())

    code, text = run("request-approval", "toy", "1.0", "--actor", "dana@example.com")
    assert code == 2 and "--actor alone is not accepted" in text
    monkeypatch.setenv("LIFECYCLE_TOKEN", "lct_guessed")
    code, text = run("request-approval", "toy", "1.0")
    assert code == 2 and "matches no token" in text
    monkeypatch.setenv("LIFECYCLE_TOKEN", tokens["dana@example.com"])
    code, text = run("request-approval", "toy", "1.0", "--actor", "root@example.com")
    assert code == 2 and "belongs to dana@example.com" in text
    with Store(db) as store:
        assert state(store, "1.0") == machine.REGISTERED
    code, text = run("request-approval", "toy", "1.0")
    assert code == 0 and "verified by API token" in text
    monkeypatch.setenv("LIFECYCLE_TOKEN", tokens["rita@example.com"])
    assert run("approve", "toy", "1.0")[0] == 0
    with Store(db) as store:
        history = registry.lifecycle_history(store, "toy", "1.0")
    assert list(history["actor"])[1:] == ["dana@example.com", "rita@example.com"]


def queue_raw(db, request: dict) -> str:
    """Write a request file into the queue by hand, as a forger would."""
    ticket = inbox.new_ticket()
    body = {"ticket": ticket, "expires_at": time.time() + 60, "error_exit": 3, **request}
    inbox.write_json(requests.requests_dir(db) / requests.PENDING / f"{ticket}.json", body)
    return ticket


def test_a_forged_admin_request_is_refused_by_the_acting_process(tmp_path, monkeypatch):
    db = tmp_path / "forge.duckdb"
    with Store(db) as store:
        register_version(store, tmp_path, "1.0")
    config = tmp_path / "lifecycle.toml"
    tokens = write_config(config, tokens={"dana@example.com": new_token()})
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    forged = {"kind": "registry", "action": "retire", "model": "toy", "version": "1.0",
              "actor": "root@example.com", "roles": ["admin"], "kwargs": {"reason": "x"},
              "config": str(tmp_path / "attacker.toml"), "here": True}  # fmt: skip
    with Store(db) as store:
        before = counts(store)
        no_token = queue_raw(db, forged)
        wrong_person = queue_raw(db, {**forged, "token": tokens["dana@example.com"]})
        assert set(requests.serve(store)) == {no_token, wrong_person}
        assert counts(store) == before and state(store, "1.0") == machine.REGISTERED
    first = requests.result(db, no_token)
    second = requests.result(db, wrong_person)
    assert first["exit_code"] == 2 and "no valid API token" in first["stderr"]
    assert second["exit_code"] == 2 and "belongs to dana@example.com" in second["stderr"]
    assert "token" not in second  # outcomes never keep the token


def test_in_development_mode_roles_come_from_the_config_not_the_request(tmp_path, monkeypatch):
    db = tmp_path / "dev.duckdb"
    with Store(db) as store:
        register_version(store, tmp_path, "1.0")
    config = tmp_path / "lifecycle.toml"
    write_config(config)
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    forged = {"kind": "registry", "action": "retire", "model": "toy", "version": "1.0",
              "actor": "victor@example.com", "roles": ["admin"], "kwargs": {"reason": "x"}}  # fmt: skip
    with Store(db) as store:
        ticket = queue_raw(db, forged)
        requests.serve(store)
        assert state(store, "1.0") == machine.REGISTERED
    outcome = requests.result(db, ticket)
    assert outcome["exit_code"] == 2 and "roles: viewer" in outcome["stderr"]
    assert "development identity" in outcome["stderr"]


# -- finding 4: the inbox -----------------------------------------------------------------------


def test_inbox_is_private_whatever_the_umask(toy_db_file, tmp_path):
    old = os.umask(0o022)
    try:
        inbox.submit(toy_db_file, "toy", "predictions", toy_predictions(5))
        requests.submit(toy_db_file, {"kind": "check", "error_exit": 3}, wait=60)
    finally:
        os.umask(old)
    root = inbox.inbox_dir(toy_db_file)
    paths = [root, *root.rglob("*")]
    assert len(paths) >= 6
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_a_manifest_naming_a_file_outside_the_inbox_is_refused_and_the_file_untouched(
    toy_store, tmp_path
):
    outside = tmp_path / "precious.csv"
    toy_predictions(5).to_csv(outside, index=False)
    original = outside.read_bytes()
    pending = inbox.inbox_dir(toy_store.path) / inbox.PENDING
    tickets = []
    for name in (str(outside), "../../precious.csv", "../../../" + outside.name):
        ticket = inbox.new_ticket()
        manifest = {"ticket": ticket, "model": "toy", "kind": "predictions",
                    "assume_utc": False, "file": name, "source": "forged"}  # fmt: skip
        inbox.write_json(pending / f"{ticket}.json", manifest)
        tickets.append(ticket)
    before = counts(toy_store)
    results = inbox.drain(toy_store)
    assert [r.state for r in results] == [inbox.REJECTED] * 3
    assert all("only its own batch file" in r.message for r in results)
    assert outside.read_bytes() == original
    assert counts(toy_store) == before
    for ticket in tickets:
        assert inbox.outcome(toy_store.path, ticket).state == inbox.REJECTED


def test_a_malformed_manifest_never_blocks_the_good_one(toy_db_file, tmp_path, capsys):
    pending = inbox.inbox_dir(toy_db_file) / inbox.PENDING
    good = inbox.submit(toy_db_file, "toy", "predictions", toy_predictions(7))
    bad = inbox.new_ticket()  # sorts after the good one; "broken" sorts before both
    (pending / f"{bad}.json").write_text('{"ticket": ')
    (pending / "broken.json").write_text('["not", "an", "object"]')
    more = toy_predictions(20).iloc[10:]
    batch = tmp_path / "more.parquet"
    more.to_parquet(batch, index=False)
    # direct ingest drains first: no traceback, and its own batch still loads
    code = cli.main(["ingest", "--db", str(toy_db_file), "--model", "toy",
                     "--kind", "predictions", str(batch)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert inbox.outcome(toy_db_file, good).state == inbox.DONE
    rejected = inbox.outcome(toy_db_file, bad)
    assert rejected.state == inbox.REJECTED and "not readable JSON" in rejected.message
    assert "not a JSON object" in inbox.outcome(toy_db_file, "broken").message
    assert not list(pending.glob("*.json"))
    with Store(toy_db_file) as store:
        assert store.query_one("SELECT count(*) FROM predictions")[0] == 17


def test_with_tokens_an_inbox_batch_needs_a_valid_token(toy_store, tmp_path, monkeypatch):
    config = tmp_path / "lifecycle.toml"
    tokens = write_config(config, tokens={"dana@example.com": new_token()})
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    monkeypatch.delenv("LIFECYCLE_TOKEN", raising=False)
    anonymous = inbox.submit(toy_store.path, "toy", "predictions", toy_predictions(5))
    monkeypatch.setenv("LIFECYCLE_TOKEN", tokens["dana@example.com"])
    signed = inbox.submit(toy_store.path, "toy", "predictions", toy_predictions(9).iloc[5:])
    inbox.drain(toy_store)
    refused = inbox.outcome(toy_store.path, anonymous)
    assert refused.state == inbox.REJECTED and "no valid API token" in refused.message
    done = inbox.outcome(toy_store.path, signed)
    assert done.state == inbox.DONE and done.detail["submitted_by"] == "dana@example.com"
    assert "token" not in done.detail
    assert toy_store.query_one("SELECT count(*) FROM predictions")[0] == 4


# -- finding 5: spec tables validated at register, check isolates bad stored settings ------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[alerts]\nresolve_after = 0\n", "`alerts.resolve_after` must be an integer >= 1"),
        ("[alerts]\nnope = 1\n", "unknown key `alerts.nope`"),
        ('[retraining]\npolicy = "weekly"\n', "`retraining.policy` is 'weekly'"),
        ("retraining = 5\n", "`retraining` must be a table"),
        ('[monitoring]\ngrain = "fortnight"\n', "fortnight"),
        ("[drift]\nfdr = 2\n", "fdr"),
    ],
)
def test_every_settings_table_is_validated_at_register(
    toy_db_file, tmp_path, capsys, table, message
):
    spec = write_toy_spec(tmp_path / "v2", version="2.0")
    text = spec.read_text()
    # a bare key must come before the first table header to be top-level
    spec.write_text(table + text if "=" in table.split("\n")[0] else text + "\n" + table)
    with Store(toy_db_file) as store:
        before = counts(store)
    code = cli.main(["register", "--db", str(toy_db_file), str(spec)])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    with Store(toy_db_file) as store:
        assert counts(store) == before


def test_check_isolates_a_model_whose_stored_settings_fail(tmp_path):
    from lifecycle.alerts.check import EXIT_NOT_EVALUATED, run_check
    from tests.test_check import FAST_DRIFT, end_of, serve_day

    with Store(tmp_path / "two.duckdb") as store:
        for name in ("toy", "other"):
            spec = write_toy_spec(tmp_path / name, rows=3000)
            spec.write_text(
                spec.read_text().replace('name = "toy"', f'name = "{name}"') + FAST_DRIFT
            )
            catalog.register_from_file(store, spec)
        serve_day(store, 0, new_color=0.015)  # toy drifts: a warning
        # settings stored before register validated them (or edited in the database)
        stored = json.loads(
            store.query_one("SELECT spec FROM model_versions WHERE model_name = 'other'")[0]
        )
        stored["alerts"] = {"resolve_after": 0}
        with store.transaction() as cur:
            cur.execute(
                "UPDATE model_versions SET spec = ? WHERE model_name = 'other'",
                [json.dumps(stored)],
            )
        report = run_check(store, as_of=end_of(0))
    assert report.exit_code == 1  # toy's warning, not an error for everyone
    assert "toy" in report.windows and "other" not in report.windows
    broken = [n for n in report.not_evaluated if n["model"] == "other"]
    assert broken and "alerts.resolve_after" in broken[0]["text"]
    assert "NOT EVALUATED - other" in report.text()
    assert report.opened and EXIT_NOT_EVALUATED == 4


def test_a_bad_stored_settings_model_alone_gives_not_evaluated(tmp_path):
    from lifecycle.alerts.check import EXIT_NOT_EVALUATED, run_check
    from tests.test_check import end_of, serve_day

    with Store(tmp_path / "one.duckdb") as store:
        catalog.register_from_file(store, write_toy_spec(tmp_path / "s", rows=3000))
        serve_day(store, 0)
        with store.transaction() as cur:
            cur.execute(
                "UPDATE model_versions SET spec = json_merge_patch(spec, ?)",
                ['{"drift": {"fdr": 2}}'],
            )
        report = run_check(store, as_of=end_of(0))
    assert report.exit_code == EXIT_NOT_EVALUATED
    assert any("fdr" in n["text"] for n in report.not_evaluated)


def test_two_processes_with_tokens_the_app_verifies_and_takes_its_own_roles(toy_db_file, tmp_path):
    """A real app-like holder with tokens configured; the command queues, the holder decides."""
    import subprocess
    import sys

    from tests.browser import ROOT
    from tests.test_live_ingest import Holder

    config = tmp_path / "lifecycle.toml"
    tokens = write_config(config, tokens={"dana@example.com": new_token(),
                                          "root@example.com": new_token()})  # fmt: skip
    # the command's own config makes dana an admin: queued, it must not matter
    lying = tmp_path / "lying.toml"
    lying.write_text('[identity]\n[identity.roles]\n"dana@example.com" = ["admin"]\n')

    def command(*argv, token=None):
        env = {k: v for k, v in os.environ.items() if k != "LIFECYCLE_TOKEN"}
        env["LIFECYCLE_CONFIG"] = str(config)
        if token:
            env["LIFECYCLE_TOKEN"] = token
        proc = subprocess.run(
            [sys.executable, "-m", "lifecycle", *map(str, argv), "--wait", "30"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        return proc.returncode, proc.stdout + proc.stderr

    holder = Holder(toy_db_file, {"LIFECYCLE_CONFIG": str(config)})
    try:
        before = holder.counts()
        code, text = command("registry", "retire", "toy", "1.0", "--db", toy_db_file,
                             "--config", lying, "--reason", "x",
                             token=tokens["dana@example.com"])  # fmt: skip
        assert code == 0, text  # dana is a deployer in the app's config: retire is allowed
        assert "held by another process" in text and "verified by API token" in text
        code, text = command("registry", "set-risk-tier", "toy", "high", "--db", toy_db_file,
                             "--config", lying, "--reason", "x",
                             token=tokens["dana@example.com"])  # fmt: skip
        assert code == 2 and "may not set risk tier" in text, text
        code, text = command("registry", "set-risk-tier", "toy", "high", "--db", toy_db_file,
                             "--reason", "regulator", token=tokens["root@example.com"])  # fmt: skip
        assert code == 0 and "risk tier low -> high" in text, text
        after = holder.counts()
        assert after["audit_log"] == before["audit_log"] + 2
    finally:
        holder.stop()
