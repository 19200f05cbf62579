"""The rollout contract: after every action of a scripted rollout (shadow, canary 1% -> 50%,
switch, rollback, retire) the routes file and the signed webhook carry the registry's state,
the CLI prints the same JSON, and the example nginx adapter follows it."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lifecycle import cli, registry
from lifecycle.registry import routes
from tests.browser import ROOT
from tests.test_registry import ADMIN, DANA, approve_fully, register_version, to_production_first

SECRET = "s3cret-for-tests"


class Receiver:
    """A local HTTP server keeping every POST's body and signature header."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                received.append((self.rfile.read(length), self.headers[routes.SIGNATURE_HEADER]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/routes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def contract(store, tmp_path, monkeypatch):
    receiver = Receiver()
    config = tmp_path / "lifecycle.toml"
    routes_file = tmp_path / "out" / "routes.json"
    config.write_text(
        f'[routes]\nfile = "{routes_file}"\nwebhook_url_env = "ROUTES_URL"\n'
        'secret_env = "ROUTES_SECRET"\n'
    )
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    monkeypatch.setenv("ROUTES_URL", receiver.url)
    monkeypatch.setenv("ROUTES_SECRET", SECRET)
    for version in ("1.0", "2.0"):
        register_version(store, tmp_path, version, seed="same")
    yield store, routes_file, receiver
    receiver.close()


def expected(store) -> dict:
    serving = registry.serving_versions(store, "toy")
    share = (serving["canary_share"] or 0.0) if serving["canary"] else 0.0
    return {
        "production": serving["production"],
        "production_share": (1 - share) if serving["production"] else 0.0,
        "canary": serving["canary"],
        "canary_share": share,
        "shadow": serving["shadow"],
        "standby": serving["standby"],
        "revision": serving["revision"],
    }


def check_published(store, routes_file, receiver, count):
    """The file and the newest webhook body both say what the registry says now."""
    state = json.loads(routes_file.read_text())
    assert state["models"]["toy"] == expected(store)
    assert state["audit_id"] == store.query_one("SELECT max(audit_id) FROM audit_log")[0]
    assert len(receiver.received) == count
    payload, header = receiver.received[-1]
    assert routes.verify(payload, header, SECRET)
    assert not routes.verify(payload, header, "another secret")
    assert json.loads(payload) == state
    return state


def test_a_scripted_rollout_is_published_after_every_action(contract, capsys):
    store, routes_file, receiver = contract
    to_production_first(store, "1.0")  # promote (shadow) + switch: two publications
    state = check_published(store, routes_file, receiver, 2)
    assert state["models"]["toy"]["production"] == "1.0"
    approve_fully(store, "2.0")  # approvals change no route: nothing published
    assert len(receiver.received) == 2
    steps = [
        ("promote", {}),  # shadow
        *[("promote", {}) for _ in range(4)],  # canary 1%, 5%, 25%, 50%
        ("promote", {}),  # production (the last step), 1.0 on standby
        ("rollback", {"reason": "conversion dropped"}),  # back to 1.0
    ]
    shares = []
    for n, (action, kwargs) in enumerate(steps, start=3):
        registry.act(store, DANA, action, "toy", "2.0", **kwargs)
        state = check_published(store, routes_file, receiver, n)
        shares.append(state["models"]["toy"]["canary_share"])
    assert shares == [0.0, 0.01, 0.05, 0.25, 0.5, 0.0, 0.0]
    assert state["models"]["toy"]["production"] == "1.0"
    registry.retire(store, ADMIN, "toy", "2.0", reason="superseded")
    state = check_published(store, routes_file, receiver, len(steps) + 3)
    assert state["models"]["toy"] == {
        "production": "1.0", "production_share": 1.0, "canary": None, "canary_share": 0.0,
        "shadow": [], "standby": None, "revision": state["models"]["toy"]["revision"],
    }  # fmt: skip
    # the CLI prints the same contract
    path = store.path
    store.close()
    assert cli.main(["registry", "routes", "--db", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["models"] == state["models"] and printed["audit_id"] == state["audit_id"]


def test_a_failed_webhook_is_audited_and_healed_by_the_next_publication(contract, monkeypatch):
    store, routes_file, receiver = contract
    monkeypatch.setenv("ROUTES_URL", "http://127.0.0.1:9/nowhere")
    to_production_first(store, "1.0")
    assert json.loads(routes_file.read_text())["models"]["toy"]["production"] == "1.0"
    failures = store.query_all(
        "SELECT reason FROM audit_log WHERE action = 'routes_publish_failed'"
    )
    assert failures and "cannot reach the webhook" in failures[0][0]
    assert "127.0.0.1:9" not in failures[0][0]  # URLs may carry tokens: never recorded
    assert registry.version_status(store, "toy", "1.0")["state"] == "production"
    monkeypatch.setenv("ROUTES_URL", receiver.url)
    outcome = registry.publish_routes(store)
    assert outcome["webhook"] == "delivered"
    check_published(store, routes_file, receiver, 1)


def test_routes_config_refuses_literal_secrets_and_unsigned_webhooks(tmp_path, monkeypatch):
    config = tmp_path / "lifecycle.toml"
    config.write_text('[routes]\nwebhook_url = "https://hooks.example/x?token=abc"\n')
    with pytest.raises(routes.RoutesConfigError, match="names of environment variables"):
        routes.load_config(config)
    config.write_text('[routes]\nwebhook_url_env = "ROUTES_URL"\n')
    monkeypatch.setenv("ROUTES_URL", "http://127.0.0.1:9/")
    loaded = routes.load_config(config)
    assert loaded.webhook_url is None and "always signed" in loaded.problems[0]


def test_the_nginx_adapter_follows_the_routes(store, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "routes_to_nginx", ROOT / "docs" / "examples" / "routes_to_nginx.py"
    )
    adapter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(adapter)
    for version in ("1.0", "2.0", "3.0"):
        register_version(store, tmp_path, version, seed="same")
    to_production_first(store, "1.0")
    approve_fully(store, "2.0")
    approve_fully(store, "3.0")
    registry.promote(store, DANA, "toy", "2.0")
    registry.promote(store, DANA, "toy", "3.0")
    registry.promote(store, DANA, "toy", "2.0", share=0.25)
    text = adapter.nginx_config(routes.desired_state(store))
    assert 'split_clients "$request_id" $model_toy {' in text
    assert "    25.00% toy_2_0;\n    * toy_1_0;\n}" in text
    assert "map $uri $mirror_toy_3_0 { default toy_3_0; }" in text
