"""Alert routing: the routing table (routes, owner default, catch-all, escalation target),
real deliveries to local HTTP servers (generic and Slack bodies) and a local SMTP server
(aiosmtpd), retries, missing secrets, config problems named by key, no secret in any table,
migration m015 of an old outbox, and the inbox's delivery log."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import textwrap
from datetime import timedelta

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from lifecycle import catalog
from lifecycle.alerts import channels, notify
from lifecycle.alerts.routing import (
    RoutingConfigError,
    Secrets,
    parse_routing,
    redact_url,
    scrub,
)
from lifecycle.store import Store, quote_ident
from tests.test_notify import Hook, open_alert
from tests.test_pages_alerts import alerts_db_master  # noqa: F401 (a fixture)

SECRET = "T0KEN-s3cr3t-9f8e7d"  # in every webhook URL and the SMTP password

ROUTING = {
    "destinations": {
        "risk-slack": {"kind": "slack", "url_env": "RISK_SLACK_URL"},
        "risk-pager": {"kind": "webhook", "url_env": "RISK_PAGER_URL"},
        "ops-hook": {"kind": "webhook", "url_env": "OPS_HOOK_URL"},
        "ml-email": {
            "kind": "email",
            "host": "127.0.0.1",
            "port": 2525,
            "from": "lifecycle@example.com",
            "to": ["ml@example.com"],
        },
        "lead-email": {
            "kind": "email",
            "host": "127.0.0.1",
            "port": 2525,
            "from": "lifecycle@example.com",
            "to": "lead@example.com",
        },
    },
    "routes": [
        {
            "name": "infra critical",
            "layer": "infrastructure",
            "severity": "critical",
            "to": "ops-hook",
            "escalate_to": "lead-email",
        },
        {
            "name": "quality to ops too",
            "layer": "data_quality",
            "rule": ["missing_*"],
            "to": ["ops-hook"],
            "continue": True,
        },
        {
            "name": "credit models",
            "model": "credit*",
            "to": ["risk-slack"],
            "escalate_to": ["risk-pager"],
        },
    ],
    "owners": {
        "ml-team@example.com": {"to": "ml-email", "escalate_to": "lead-email"},
        "Alice@Example.com": "ml-email",
    },
    "routing": {"catch_all": "ops-hook", "escalate_to": "lead-email"},
}


def facts(model="churn", owner="ml-team@example.com", layer="drift", severity="warning",
          rule="data_drift"):  # fmt: skip
    return {"model": model, "owner": owner, "layer": layer, "severity": severity, "rule": rule}


@pytest.mark.parametrize(
    ("case", "event", "expected"),
    [
        # no route matches: the owner's destination, then its escalation target
        (facts(), "opened", [("ml-email", "owner ml-team@example.com")]),
        (facts(severity="critical"), "escalated", [("lead-email", "owner ml-team@example.com")]),
        # owners are matched without regard to case; no owner escalate_to: the global one
        (facts(owner="alice@example.com"), "opened", [("ml-email", "owner Alice@Example.com")]),
        (facts(owner="alice@example.com"), "escalated",
         [("lead-email", "owner Alice@Example.com")]),
        # an unknown owner: the catch-all
        (facts(owner="nobody@example.com"), "raised", [("ops-hook", "catch_all")]),
        # severity and layer route (first match wins over the model route below)
        (facts(model="credit_risk", layer="infrastructure", severity="critical"), "opened",
         [("ops-hook", "route 'infra critical'")]),
        (facts(model="credit_risk", layer="infrastructure", severity="critical"), "escalated",
         [("lead-email", "route 'infra critical'")]),
        # a warning on infrastructure does not match the critical route: the model route
        (facts(model="credit_risk", layer="infrastructure"), "opened",
         [("risk-slack", "route 'credit models'")]),
        # rule glob with continue: ops and the model's route both receive it
        (facts(model="credit_risk", layer="data_quality", rule="missing_rate"), "opened",
         [("ops-hook", "route 'quality to ops too'"), ("risk-slack", "route 'credit models'")]),
        # escalation goes to the second destination, never the first again
        (facts(model="credit_v2", severity="critical"), "escalated",
         [("risk-pager", "route 'credit models'")]),
        # a quality rule the glob does not match: owner default
        (facts(layer="data_quality", rule="range"), "opened",
         [("ml-email", "owner ml-team@example.com")]),
    ],
)  # fmt: skip
def test_routing_table(case, event, expected):
    routing = parse_routing(ROUTING, "test")
    targets, why = routing.targets(case, event)
    assert why is None
    assert [(t.destination, t.route) for t in targets] == expected


def test_without_owner_mapping_or_catch_all_nothing_is_routed_and_said_why():
    table = {**ROUTING, "routing": {}, "owners": {}}
    routing = parse_routing(table, "test")
    targets, why = routing.targets(facts(), "opened")
    assert targets == [] and "no route matches" in why
    # the credit route has an escalate_to; a route without one and no global: said so
    del table["routes"][2]["escalate_to"]
    targets, why = parse_routing(table, "test").targets(facts(model="credit"), "escalated")
    assert targets == [] and "has no escalate_to" in why


def test_config_problems_are_collected_and_named_by_key():
    bad = {
        "destinations": {
            "hook": {"kind": "webhook", "url": f"https://hooks.example.com/{SECRET}"},
            "mail": {"kind": "email", "host": "smtp", "from": "x", "to": [], "user": "u"},
            "odd": {"kind": "pager"},
            "env": {"kind": "slack", "url_env": f"https://hooks.example.com/{SECRET}"},
        },
        "routes": [
            {"layer": "drfit", "severity": "fatal", "to": "nowhere", "colour": "red"},
            {"name": "same", "to": "hook", "escalate_to": "hook"},
            {"model": "x"},
        ],
        "owners": {"team": "ghost"},
        "routing": {"catch_all": ["hook", "missing"], "delay": 1},
        "extra": 1,
    }
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing(bad, "lifecycle.toml")
    text = "\n".join(caught.value.problems)
    for expected in [
        "`alerts.destinations.hook.url`: never write a secret",
        "`alerts.destinations.hook.url_env` must name",
        "`alerts.destinations.mail.from` must be an e-mail address",
        "`alerts.destinations.mail.to` must be an e-mail address",
        "`alerts.destinations.mail.password_env` must name",
        "`alerts.destinations.odd.kind` is 'pager'",
        "`alerts.destinations.env.url_env` must be the NAME",
        "`alerts.routes[0].layer` has 'drfit'",
        "`alerts.routes[0].severity` has 'fatal'",
        "`alerts.routes[0].to` names unknown destination 'nowhere'",
        "unknown key `alerts.routes[0].colour`",
        "`alerts.routes[1].escalate_to` names hook, which already receives",
        "`alerts.routes[2].to` is missing",
        "`alerts.owners.'team'` names unknown destination 'ghost'",
        "`alerts.routing.catch_all` names unknown destination 'missing'",
        "unknown key `alerts.routing.delay`",
        "unknown key `alerts.extra`",
    ]:
        assert expected in text, expected
    assert SECRET not in str(caught.value)  # the message never repeats a secret


def test_redaction_keeps_scheme_and_host_only():
    url = f"https://user:{SECRET}@hooks.example.com:8443/services/{SECRET}?token={SECRET}"
    assert redact_url(url) == "https://hooks.example.com:8443"
    text = scrub(f"unknown url type: {url} and path /services/{SECRET}?token={SECRET}", [url])
    assert SECRET not in text and "hooks.example.com" in text


# -- real deliveries ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """A local SMTP server (aiosmtpd) that keeps the messages and accepts one login."""

    def __init__(self, password: str = SECRET):
        self.messages: list[tuple[str, list[str], str]] = []
        self.logins: list[str] = []
        self.port = free_port()
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                box.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                     envelope.content.decode("utf-8")))  # fmt: skip
                return "250 OK"

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.password.decode() == password
            if ok:
                box.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticate,
                                     auth_require_tls=False)  # fmt: skip

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def _config(port: int, **email) -> dict:
    table = {
        "destinations": {
            "team-slack": {"kind": "slack", "url_env": "TEAM_SLACK_URL"},
            "pager-hook": {"kind": "webhook", "url_env": "PAGER_URL"},
            "team-email": {
                "kind": "email",
                "host": "127.0.0.1",
                "port": port,
                "from": "lifecycle@example.com",
                "to": ["oncall@example.com", "lead@example.com"],
                **email,
            },
        },
        "owners": {"risk-team": {"to": ["team-slack", "team-email"], "escalate_to": "pager-hook"}},
    }
    return table


def _set_owner(store, owner="risk-team"):
    """The alert's model `credit` with this owner."""
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO models (name, task, owner, risk_tier, description, created_at) VALUES "
            "('credit', 'binary_classification', ?, 'low', 'test', now()) "
            "ON CONFLICT DO NOTHING",
            [owner],
        )


def test_routed_deliveries_reach_slack_webhook_and_smtp_servers(store):
    alert_id = open_alert(store)
    _set_owner(store)
    with Hook() as slack, Hook() as pager, Mailbox() as mail:
        env = {"TEAM_SLACK_URL": f"{slack.url}/{SECRET}", "PAGER_URL": f"{pager.url}?k={SECRET}",
               "SMTP_PASSWORD": SECRET}  # fmt: skip
        routing = parse_routing(
            _config(mail.port, user="lifecycle", password_env="SMTP_PASSWORD"), "test"
        )
        secrets = Secrets(environ=env)
        opened = notify.notify_check(store, [(alert_id, "opened")], routing, None,
                                     app_url="http://console:8501", secrets=secrets)  # fmt: skip
        assert len(opened.delivered) == 2 and not opened.failed and not opened.unrouted
        # Slack: text fallback + blocks; nothing for the pager yet
        (body,) = slack.received
        assert body["text"].startswith(f"New critical alert #{alert_id}: credit 1.1 drift")
        kinds = [b["type"] for b in body["blocks"]]
        assert kinds == ["header", "section", "section", "context"]
        assert "debt_ratio: wasserstein 0.4" in body["blocks"][1]["text"]["text"]
        assert "*Response:* retrain" in body["blocks"][1]["text"]["text"]
        fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1]
                  for f in body["blocks"][2]["fields"]}  # fmt: skip
        assert fields["*Model*"] == "credit 1.1 (production)"
        assert fields["*Severity*"] == "critical"
        links = body["blocks"][3]["elements"][0]["text"]
        assert f"<http://console:8501/alerts?alert={alert_id}|Acknowledge in the inbox>" in links
        assert pager.received == []
        # e-mail: both recipients, the subject and the links, after a login with the secret
        ((sender, recipients, content),) = mail.messages
        assert sender == "lifecycle@example.com"
        assert recipients == ["oncall@example.com", "lead@example.com"]
        message = email.message_from_string(content, policy=email.policy.default)
        assert message["Subject"] == (
            f"[critical] New critical alert #{alert_id}: credit 1.1 drift / data_drift / debt_ratio"
        )
        assert message["To"] == "oncall@example.com, lead@example.com"
        text = message.get_content().replace("\r\n", "\n")
        assert "debt_ratio: wasserstein 0.4\n\nResponse: retrain" in text
        assert f"Acknowledge in the inbox: http://console:8501/alerts?alert={alert_id}\n" in text
        assert mail.logins == ["lifecycle"]
        # escalation: to the second destination only, the generic JSON body
        escalated = notify.notify_check(store, [(alert_id, "escalated")], routing, None,
                                        secrets=secrets)  # fmt: skip
        assert len(escalated.delivered) == 1
        (page,) = pager.received
        assert page["event"] == "escalated" and page["alert_id"] == alert_id
        assert "ESCALATED critical alert" in page["text"]
        assert len(slack.received) == 1 and len(mail.messages) == 1  # not re-posted
    log = notify.delivery_log(store)
    assert sorted(zip(log.destination, log.kind, log.event, log.state, strict=True)) == [
        ("pager-hook", "webhook", "escalated", "delivered"),
        ("team-email", "email", "opened", "delivered"),
        ("team-slack", "slack", "opened", "delivered"),
    ]
    assert set(log.route) == {"owner risk-team"}
    assert all(t.startswith(("http://127.0.0.1:", "smtp://127.0.0.1:")) for t in log.target)
    assert_no_secret(store)


def test_retries_with_backoff_for_every_kind_then_success(store):
    alert_id = open_alert(store)
    _set_owner(store)
    with Hook(fail=2) as slack, Hook() as pager:
        env = {"TEAM_SLACK_URL": f"{slack.url}/{SECRET}", "PAGER_URL": pager.url}
        routing = parse_routing(_config(free_port()), "test")  # nothing listens for e-mail
        report = notify.notify_check(store, [(alert_id, "opened")], routing, None,
                                     secrets=Secrets(environ=env), backoff=0.25,
                                     attempts=3)  # fmt: skip
        # slack: two HTTP 500s, then delivered
        assert slack.calls == 3 and len(slack.received) == 1
        # the SMTP server is down: three tries, kept pending with the reason
        (error,) = report.failed.values()
        assert error.startswith("team-email: ConnectionRefusedError")
    assert report.destinations["team-slack"] == {
        "kind": "slack", "target": redact_url(slack.url), "delivered": 1, "failed": 0,
    }  # fmt: skip
    rows = store.query_all(
        "SELECT destination, attempts, state FROM alert_notifications ORDER BY destination"
    )
    assert rows == [("team-email", 3, "pending"), ("team-slack", 3, "delivered")]
    with Mailbox() as mail:  # the server is back, on the configured port now
        routing = parse_routing(_config(mail.port), "test")
        # the pending e-mail is retried by the next check, with no new event
        again = notify.notify_check(store, [], routing, None, secrets=Secrets(environ={}))
        assert len(again.delivered) == 1 and len(mail.messages) == 1
    assert_no_secret(store)


def test_backoff_waits_double_between_attempts(store):
    alert_id = open_alert(store)
    waits: list[float] = []
    with Hook(fail=2) as hook:
        notify.queue(store, [(alert_id, "opened")], f"{hook.url}?token={SECRET}")
        notify.deliver_pending(store, f"{hook.url}?token={SECRET}", attempts=3, backoff=0.5,
                               sleep=waits.append)  # fmt: skip
    assert waits == [0.5, 1.0] and hook.calls == 3
    assert_no_secret(store)


def test_a_missing_secret_fails_the_delivery_clearly_without_a_crash(store):
    alert_id = open_alert(store)
    _set_owner(store)
    routing = parse_routing(
        _config(free_port(), user="lifecycle", password_env="SMTP_PASSWORD"), "test"
    )
    secrets = Secrets(environ={}, path=store.path.parent / "no-secrets.toml")
    report = notify.notify_check(store, [(alert_id, "opened")], routing, None, secrets=secrets)
    assert report.delivered == []
    errors = sorted(report.failed.values())
    assert errors[0] == (
        "team-email: secret 'SMTP_PASSWORD' (alerts.destinations.team-email.password_env) is "
        "not set: neither an environment variable nor a key in " + str(secrets.path)
    )
    assert "secret 'TEAM_SLACK_URL' (alerts.destinations.team-slack.url_env)" in errors[1]
    # tried once each (retrying cannot help), kept pending
    assert store.query_all("SELECT DISTINCT attempts, state FROM alert_notifications") == [
        (1, "pending")
    ]
    # a Streamlit secrets file provides it: delivered on the next check
    with Hook() as slack:
        secrets.path.write_text(f'TEAM_SLACK_URL = "{slack.url}/{SECRET}"\n', encoding="utf-8")
        routing = parse_routing({**_config(0), "destinations": {
            "team-slack": {"kind": "slack", "url_env": "TEAM_SLACK_URL"}},
            "owners": {"risk-team": "team-slack"}}, "test")  # fmt: skip
        later = notify.notify_check(store, [], routing, None, secrets=secrets)
    assert len(later.delivered) == 1 and len(slack.received) == 1
    assert later.orphaned == {"team-email": 1}  # no longer configured: reported, kept


def assert_no_secret(store: Store) -> None:
    """No text column of any table holds the secret."""
    columns = store.query_all(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
        "'main' AND (data_type LIKE 'VARCHAR%' OR data_type = 'JSON')"
    )
    assert columns
    for table, column in columns:
        hits = store.query_one(
            f"SELECT count(*) FROM {quote_ident(table)} "
            f"WHERE contains(CAST({quote_ident(column)} AS VARCHAR), ?)",
            [SECRET],
        )[0]
        assert hits == 0, f"{table}.{column} holds the secret"


# -- the check, end to end -----------------------------------------------------------------------


def test_check_routes_by_owner_and_escalates_to_the_second_destination(tmp_path, monkeypatch):
    """The config file's routing through run_check: the owner's Slack gets the new alerts,
    the escalation goes to the pager only; `--notify URL` still gets everything."""
    from lifecycle.alerts.check import CheckError, run_check
    from tests.conftest import write_toy_spec
    from tests.test_check import FAST_DRIFT, end_of, serve_day

    spec = write_toy_spec(tmp_path / "spec", rows=3000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    config = tmp_path / "lifecycle.toml"
    config.write_text(textwrap.dedent("""
        [alerts.destinations.team-slack]
        kind = "slack"
        url_env = "TEAM_SLACK_URL"

        [alerts.destinations.pager]
        kind = "webhook"
        url_env = "PAGER_URL"

        [alerts.owners]
        "alice@example.com" = { to = "team-slack", escalate_to = "pager" }
    """), encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    with Store(tmp_path / "n.duckdb") as store, Hook() as slack, Hook() as pager, Hook() as adhoc:
        monkeypatch.setenv("TEAM_SLACK_URL", f"{slack.url}/{SECRET}")
        monkeypatch.setenv("PAGER_URL", f"{pager.url}/{SECRET}")
        catalog.register_from_file(store, spec)
        serve_day(store, 0, missing_x=0.5)
        first = run_check(store, as_of=end_of(0), notify_url=adhoc.url, backoff=0)
        assert first.opened and {b["text"].split("#")[1].split(":")[0] for b in slack.received} == {
            str(a) for a in first.opened
        }
        assert {b["alert_id"] for b in adhoc.received} == set(first.opened)
        assert pager.received == []
        assert "team-slack (slack, http://127.0.0.1:" in first.text()
        later = run_check(store, as_of=end_of(0) + timedelta(hours=5), notify_url=adhoc.url)
        assert later.escalated
        assert {b["alert_id"] for b in pager.received} == set(later.escalated)
        assert all(b["event"] == "escalated" for b in pager.received)
        assert len(slack.received) == len(first.opened)  # escalation not re-posted to Slack
        assert_no_secret(store)
        # a broken routing config stops the check before anything changes
        config.write_text('[alerts.owners]\n"alice@example.com" = "ghost"\n', encoding="utf-8")
        before = store.query_one("SELECT count(*) FROM check_runs")[0]
        with pytest.raises(
            CheckError, match=r"`alerts\.owners\.'alice@example\.com'` names unknown"
        ):
            run_check(store, as_of=end_of(0) + timedelta(hours=6))
        assert store.query_one("SELECT count(*) FROM check_runs")[0] == before


# -- migration m015 ------------------------------------------------------------------------------


def test_migration_removes_stored_webhook_urls_and_keeps_rows_retryable(tmp_path):
    from lifecycle.store import migrate

    url = f"https://hooks.example.com/services/{SECRET}"
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, upto=14)
    con.execute(
        "INSERT INTO alert_notifications VALUES (1, 7, 'opened', ?, '{\"alert_id\": 7}', "
        "'pending', 3, ?, now(), now(), NULL), (2, 7, 'escalated', ?, '{}', 'delivered', 1, "
        "NULL, now(), now(), now())",
        [url, f"ValueError: bad {url}", url],
    )
    con.execute(
        "INSERT INTO audit_log VALUES (1, now(), 'system:notify', 'alert_notified', 'credit', "
        "'1.1', NULL, NULL, ?, '{}')",
        [f"opened to {url}: delivered"],
    )
    con.execute(
        "INSERT INTO check_runs VALUES (1, now(), now(), now(), '[]', 2, ?)",
        ['{"notifications": {"url": "' + url + '", "delivered": [1]}}'],
    )
    con.close()
    with Store(path) as store:
        rows = store.query_df(
            "SELECT notification_id, destination, kind, target, route, state, attempts, "
            "last_error FROM alert_notifications ORDER BY 1"
        )
        assert list(rows.destination) == ["--notify", "--notify"]
        assert list(rows.target) == ["https://hooks.example.com"] * 2
        assert list(rows.state) == ["pending", "delivered"] and rows.attempts[0] == 3
        assert rows.last_error[0] == "ValueError: bad https://hooks.example.com"
        reason = store.query_one("SELECT reason FROM audit_log WHERE audit_id = 1")[0]
        assert reason == "opened to https://hooks.example.com: delivered"
        assert_no_secret(store)
        # the next `check --notify URL` with the same URL finds the pending one
        pending = notify.pending_notifications(store, url)
        assert list(pending.notification_id) == [1]
        assert notify.pending_notifications(store, url + "x").empty


# -- the inbox ------------------------------------------------------------------------------------


def test_inbox_shows_the_delivery_log(tmp_path, monkeypatch, alerts_db_master):  # noqa: F811
    from streamlit.testing.v1 import AppTest

    from tests.browser import ROOT

    db = tmp_path / "inbox.duckdb"
    shutil.copyfile(alerts_db_master, db)
    with Store(db) as store, Hook() as hook:
        alert_id = int(store.query_one("SELECT min(alert_id) FROM alerts")[0])
        notify.queue(store, [(alert_id, "opened")], f"{hook.url}/{SECRET}")
        notify.deliver_pending(store, f"{hook.url}/{SECRET}", sleep=lambda s: None)
        notify.queue(store, [(alert_id, "escalated")], f"http://127.0.0.1:{free_port()}/{SECRET}")
        notify.deliver_pending(store, f"http://127.0.0.1:{free_port()}/{SECRET}", attempts=1)
    monkeypatch.setenv("LIFECYCLE_DB", str(db))
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/alerts.py")
    at.run()
    assert not at.exception, at.exception
    (expander,) = [e for e in at.expander if e.label.startswith("Notification deliveries")]
    assert expander.label == "Notification deliveries (1 pending)"
    log = expander.dataframe[0].value
    assert list(log["event"]) == ["escalated", "opened"]
    assert list(log["state"]) == ["pending", "delivered"]
    assert list(log["destination"]) == ["--notify", "--notify"]
    assert log["target"].str.startswith("http://127.0.0.1:").all()
    assert "No alert routing configured" in " ".join(c.value for c in at.caption)
    page_text = str(at)  # everything the page rendered, the table included
    assert SECRET not in page_text and SECRET not in log.to_csv()


def test_email_message_headers_cannot_be_injected():
    from lifecycle.alerts.routing import Destination

    body = {"event": "opened", "severity": "critical", "alert_id": 1, "model": "m\r\nBcc: x@y",
            "version": "1", "layer": "drift", "rule": "r", "subject": "s", "summary": "sum",
            "response": "retrain", "count": 1, "first_seen": "t", "last_seen": "t",
            "state": "open", "link": "http://a", "inbox": "http://b"}  # fmt: skip
    dest = Destination("d", "email", host="h", sender="a@b", recipients=("c@d",))
    message = channels.email_message(dest, body)
    assert "\n" not in message["Subject"] and message["Bcc"] is None


@pytest.mark.parametrize(
    ("document", "section"),
    [("docs/alerts.md", "### Routing"), ("README.md", "### Connect an on-call channel")],
)
def test_the_documented_examples_are_valid_routing(document, section):
    import tomllib

    from tests.browser import ROOT

    text = (ROOT / document).read_text(encoding="utf-8").split(section)[1]
    example = tomllib.loads(text.split("```toml")[1].split("```")[0])
    routing = parse_routing(example["alerts"], document)
    assert routing.destinations and (routing.routes or routing.owners)


def test_starttls_is_required_when_configured_never_falls_back_to_plain_text(store):
    alert_id = open_alert(store)
    _set_owner(store)
    with Mailbox() as mail:  # a server that does not offer STARTTLS
        table = _config(mail.port, starttls=True, user="lifecycle", password_env="SMTP_PASSWORD")
        table["owners"] = {"risk-team": "team-email"}
        routing = parse_routing(table, "test")
        report = notify.notify_check(store, [(alert_id, "opened")], routing, None,
                                     secrets=Secrets(environ={"SMTP_PASSWORD": SECRET}),
                                     backoff=0)  # fmt: skip
        assert mail.messages == [] and mail.logins == []  # no password sent in clear
    (error,) = report.failed.values()
    assert error == "team-email: SMTPNotSupportedError: STARTTLS extension not supported by server."
    assert_no_secret(store)


def test_inbox_names_the_problems_of_a_broken_routing_config(tmp_path, monkeypatch,
                                                             alerts_db_master):  # noqa: F811  # fmt: skip
    from streamlit.testing.v1 import AppTest

    from tests.browser import ROOT

    db = tmp_path / "inbox.duckdb"
    shutil.copyfile(alerts_db_master, db)
    config = tmp_path / "lifecycle.toml"
    config.write_text(
        '[identity.roles]\n"developer@localhost" = ["admin"]\n'
        '[alerts.owners]\n"alice@example.com" = "ghost"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("LIFECYCLE_DB", str(db))
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/alerts.py")
    at.run()
    assert not at.exception, at.exception
    (expander,) = [e for e in at.expander if e.label.startswith("Notification deliveries")]
    assert "names unknown destination 'ghost'" in expander.error[0].value
    at.button(key="run_check").click().run()  # the check refuses, the page says why
    assert not at.exception, at.exception
    assert any("names unknown destination 'ghost'" in e.value for e in at.error)
