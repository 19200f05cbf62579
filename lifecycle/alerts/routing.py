"""Alert routing: which destinations receive an alert event (docs/alerts.md, "Routing").

Configured in the app's config file (lifecycle.toml or $LIFECYCLE_CONFIG, the file that holds
[identity] and [watch]) under [alerts]:

- `[alerts.destinations.NAME]`: `kind` webhook (generic JSON), slack (Slack incoming-webhook
  blocks) or email (SMTP). Secrets are never written in the file: `url_env` / `password_env`
  name an environment variable or a top-level key of Streamlit's secrets file, read when a
  notification is sent.
- `[[alerts.routes]]`, in order: match on `model`, `owner`, `layer`, `severity`, `rule` (a
  glob string or a list of them; a key left out matches anything) -> `to` (destination names)
  and `escalate_to`. The first matching route decides, unless it says `continue = true`.
- `[alerts.owners]`: owner (as the spec's `owner`) -> destinations, the default when no route
  matches; then `[alerts.routing] catch_all`. `[alerts.routing] escalate_to` is where
  escalations of routes without their own `escalate_to` go.

Opened and raised alerts go to the route's `to`; an escalated alert (critical, left
unacknowledged) goes to its `escalate_to`, a second destination, never to the same one again.
Every problem of the configuration is collected and named by its key (RoutingConfigError).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

KINDS = ("webhook", "slack", "email")
MATCH_KEYS = ("model", "owner", "layer", "severity", "rule")
SEVERITIES = ("warning", "critical")
ADHOC = "--notify"  # the destination name of `check --notify URL`
SECRETS_FILE = Path(".streamlit/secrets.toml")
_DEST_KEYS = {
    "webhook": {"kind", "url_env", "timeout"},
    "slack": {"kind", "url_env", "timeout"},
    "email": {"kind", "host", "port", "from", "to", "starttls", "user", "password_env",
              "timeout"},
}  # fmt: skip
_ROUTE_KEYS = {"name", *MATCH_KEYS, "to", "escalate_to", "continue"}
_TOP_KEYS = {"destinations", "routes", "owners", "routing"}


class RoutingConfigError(ValueError):
    """Routing settings that cannot be used; `problems` names every bad key."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"alert routing in {source} is not valid:\n{listing}")


class SecretMissing(LookupError):
    """A destination's secret is in neither the environment nor Streamlit's secrets."""


@dataclass(frozen=True)
class Destination:
    name: str
    kind: str
    url_env: str | None = None  # webhook, slack: where the URL (with its token) is
    url: str | None = None  # only for the ad-hoc `--notify URL` destination, never stored
    host: str | None = None  # email
    port: int = 25
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    starttls: bool = False
    user: str | None = None
    password_env: str | None = None
    timeout: float = 5.0

    @property
    def target(self) -> str:
        """Where it sends, safe to store and show: scheme and host, never a path or token."""
        if self.kind == "email":
            return f"smtp://{self.host}:{self.port} to {', '.join(self.recipients)}"
        if self.url:
            return redact_url(self.url)
        return f"${self.url_env}"

    def describe(self, secrets: Secrets) -> str:
        """`target`, with a configured webhook's host once its secret is readable."""
        if self.kind == "email" or self.url or not self.url_env:
            return self.target
        try:
            return redact_url(self.webhook_url(secrets))
        except SecretMissing:
            return f"${self.url_env} (not set)"

    def webhook_url(self, secrets: Secrets) -> str:
        if self.url:
            return self.url
        return secrets.get(self.url_env, f"alerts.destinations.{self.name}.url_env")

    def password(self, secrets: Secrets) -> str | None:
        if not self.password_env:
            return None
        return secrets.get(self.password_env, f"alerts.destinations.{self.name}.password_env")


def adhoc(url: str) -> Destination:
    """`check --notify URL`: a generic webhook outside the configuration."""
    return Destination(name=ADHOC, kind="webhook", url=url)


@dataclass(frozen=True)
class Route:
    name: str
    match: dict[str, tuple[str, ...]]  # key -> globs; a missing key matches anything
    to: tuple[str, ...]
    escalate_to: tuple[str, ...] = ()
    cont: bool = False

    def matches(self, facts: Mapping[str, str]) -> bool:
        return all(
            any(fnmatchcase(str(facts.get(key) or ""), glob) for glob in globs)
            for key, globs in self.match.items()
        )


@dataclass(frozen=True)
class Target:
    """One destination an alert event goes to, and which rule of the routing chose it."""

    destination: str
    route: str


@dataclass(frozen=True)
class RoutingConfig:
    destinations: dict[str, Destination] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    owners: dict[str, Route] = field(default_factory=dict)  # owner (lower case) -> targets
    catch_all: Route | None = None
    escalate_to: tuple[str, ...] = ()
    source: str = "no configuration"

    @property
    def empty(self) -> bool:
        return not self.destinations

    def targets(self, facts: Mapping[str, str], event: str) -> tuple[list[Target], str | None]:
        """(targets, why there are none) for an event of an alert with these facts
        (model, owner, layer, severity, rule)."""
        chosen = []
        for route in self.routes:
            if route.matches(facts):
                chosen.append(route)
                if not route.cont:
                    break
        if not chosen:
            owner = (facts.get("owner") or "").strip().lower()
            fallback = self.owners.get(owner) or self.catch_all
            chosen = [fallback] if fallback else []
        if not chosen:
            return [], "no route matches and no owner destination or catch_all is configured"
        found: dict[str, Target] = {}
        for route in chosen:
            names = route.to
            if event == "escalated":
                names = route.escalate_to or self.escalate_to
            for name in names:
                found.setdefault(name, Target(name, route.name))
        if not found:
            return [], (
                f"{', '.join(r.name for r in chosen)} has no escalate_to and "
                "[alerts.routing] escalate_to is not set"
            )
        return list(found.values()), None


NO_ROUTING = RoutingConfig()


# -- secrets ------------------------------------------------------------------------------------


class Secrets:
    """Secret values by name: the environment first, then Streamlit's secrets file (a
    top-level key, or a dotted path into its tables). Never stored, never shown."""

    def __init__(self, environ: Mapping[str, str] | None = None, path: Path | None = None):
        self.environ = os.environ if environ is None else environ
        self.path = SECRETS_FILE if path is None else path

    def get(self, name: str | None, key: str) -> str:
        if name and self.environ.get(name):
            return self.environ[name]
        value: Any = self._file()
        for part in (name or "").split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            return value
        raise SecretMissing(
            f"secret {name!r} ({key}) is not set: neither an environment variable nor a key "
            f"in {self.path}"
        )

    def _file(self) -> Mapping:
        try:
            return tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return {}


def redact_url(url: str) -> str:
    """scheme://host[:port] of a URL: what may be stored and shown (tokens live in paths,
    queries and user info)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if not parts.scheme or not host:
        return "(a URL that is not http(s))"
    return f"{parts.scheme}://{host}"


def scrub(text: str, secrets: list[str | None]) -> str:
    """`text` with every secret (and a URL's path, query and user info) replaced."""
    for secret in secrets:
        if not secret:
            continue
        pieces = [secret]
        parts = urlsplit(secret)
        if parts.scheme and parts.netloc:
            tail = secret[secret.index(parts.netloc) + len(parts.netloc) :]
            pieces += [tail] if len(tail) > 1 else []
            pieces += [parts.netloc.rpartition("@")[0]] if "@" in parts.netloc else []
            replacement = redact_url(secret) + "/..."
        else:
            replacement = "***"
        for piece in sorted(pieces, key=len, reverse=True):
            if piece:
                text = text.replace(piece, replacement if piece == secret else "...")
    return text


# -- configuration ------------------------------------------------------------------------------


def load_routing_config(path: str | os.PathLike | None = None) -> RoutingConfig:
    """The [alerts] routing of the app's config file (lifecycle.toml or $LIFECYCLE_CONFIG);
    no routing when the file or its [alerts] table is absent."""
    from lifecycle.identity import config_path

    target = config_path(path)
    if not target.exists():
        return NO_ROUTING
    try:
        raw = tomllib.loads(target.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RoutingConfigError(str(target), [f"the file cannot be read: {exc}"]) from exc
    table = raw.get("alerts")
    if table is None:
        return NO_ROUTING
    return parse_routing(table, str(target))


def parse_routing(table: Any, source: str) -> RoutingConfig:
    """Validate an [alerts] table; raises RoutingConfigError naming every problem."""
    problems: list[str] = []
    if not isinstance(table, Mapping):
        raise RoutingConfigError(source, ["`alerts` must be a table"])
    for key in sorted(set(table) - _TOP_KEYS):
        problems.append(f"unknown key `alerts.{key}` (known: {', '.join(sorted(_TOP_KEYS))})")
    destinations = _destinations(table.get("destinations", {}), problems)
    known = set(destinations)
    routes = _routes(table.get("routes", []), known, problems)
    owners = _owners(table.get("owners", {}), known, problems)
    routing = table.get("routing", {})
    catch_all, escalate_to = None, ()
    if not isinstance(routing, Mapping):
        problems.append("`alerts.routing` must be a table (catch_all, escalate_to)")
    else:
        for key in sorted(set(routing) - {"catch_all", "escalate_to"}):
            problems.append(f"unknown key `alerts.routing.{key}` (known: catch_all, escalate_to)")
        if "catch_all" in routing:
            names = _names(routing["catch_all"], "alerts.routing.catch_all", known, problems)
            catch_all = Route("catch_all", {}, names)
        escalate_to = _names(routing.get("escalate_to", []), "alerts.routing.escalate_to",
                             known, problems)  # fmt: skip
    if (routes or owners or catch_all) and not destinations:
        problems.append("routes are configured but `alerts.destinations` names none")
    if problems:
        raise RoutingConfigError(source, problems)
    return RoutingConfig(destinations, tuple(routes), owners, catch_all, escalate_to, source)


def _destinations(table: Any, problems: list[str]) -> dict[str, Destination]:
    if not isinstance(table, Mapping):
        problems.append("`alerts.destinations` must be a table of NAME = { kind = ... }")
        return {}
    found = {}
    for name, spec in table.items():
        where = f"alerts.destinations.{name}"
        if name == ADHOC:
            problems.append(f"`{where}`: {ADHOC} is reserved for `check --notify URL`")
            continue
        if not isinstance(spec, Mapping):
            problems.append(f"`{where}` must be a table with a `kind`")
            continue
        destination = _destination(name, spec, where, problems)
        if destination is not None:
            found[name] = destination
    return found


def _destination(name: str, spec: Mapping, where: str, problems: list[str]):
    kind = spec.get("kind")
    if kind not in KINDS:
        problems.append(f"`{where}.kind` is {kind!r}; expected one of {', '.join(KINDS)}")
        return None
    before = len(problems)
    for key in ("url", "password"):
        if key in spec:
            problems.append(
                f"`{where}.{key}`: never write a secret in the file; name the environment "
                f"variable or Streamlit secret that holds it with `{key}_env`"
            )
    for key in sorted(set(spec) - _DEST_KEYS[kind] - {"url", "password"}):
        problems.append(
            f"unknown key `{where}.{key}` for kind {kind} (known: "
            f"{', '.join(sorted(_DEST_KEYS[kind]))})"
        )
    timeout = spec.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(f"`{where}.timeout` must be a number of seconds > 0, got {timeout!r}")
    if kind in ("webhook", "slack"):
        url_env = _secret_name(spec, "url_env", where, problems, required=True)
        if len(problems) > before:
            return None
        return Destination(name, kind, url_env=url_env, timeout=float(timeout))
    return _email(name, spec, where, problems, before, float(timeout) if timeout else 5.0)


def _email(name, spec, where, problems, before, timeout) -> Destination | None:
    host = spec.get("host")
    if not isinstance(host, str) or not host.strip():
        problems.append(f"`{where}.host` must name the SMTP server")
    starttls = spec.get("starttls", False)
    if not isinstance(starttls, bool):
        problems.append(f"`{where}.starttls` must be true or false, got {starttls!r}")
    port = spec.get("port", 587 if starttls is True else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        problems.append(f"`{where}.port` must be a port number, got {port!r}")
    sender = spec.get("from")
    if not _address(sender):
        problems.append(f"`{where}.from` must be an e-mail address, got {sender!r}")
    recipients = spec.get("to")
    recipients = [recipients] if isinstance(recipients, str) else recipients
    if not isinstance(recipients, list) or not recipients or not all(map(_address, recipients)):
        problems.append(f"`{where}.to` must be an e-mail address or a list of them")
    user = spec.get("user")
    if user is not None and (not isinstance(user, str) or not user.strip()):
        problems.append(f"`{where}.user` must be a user name")
    password_env = _secret_name(spec, "password_env", where, problems, required=user is not None)
    if len(problems) > before:
        return None
    return Destination(
        name, "email", host=host.strip(), port=port, sender=sender,
        recipients=tuple(recipients), starttls=starttls, user=user, password_env=password_env,
        timeout=timeout,
    )  # fmt: skip


def _address(value) -> bool:
    return isinstance(value, str) and "@" in value and not any(c in value for c in "\r\n,;<>")


def _secret_name(spec, key, where, problems, *, required) -> str | None:
    value = spec.get(key)
    if value is None:
        if required:
            problems.append(f"`{where}.{key}` must name the environment variable or secret")
        return None
    if not isinstance(value, str) or not value.strip() or "://" in value:
        problems.append(
            f"`{where}.{key}` must be the NAME of an environment variable or Streamlit secret "
            "(not the secret itself)"
        )
        return None
    return value.strip()


def _names(value, where, known: set[str], problems: list[str]) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.append(f"`{where}` must be a destination name or a list of them")
        return ()
    for name in names:
        if name not in known:
            problems.append(
                f"`{where}` names unknown destination {name!r} (known: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
    return tuple(dict.fromkeys(names))


def _routes(value, known, problems) -> list[Route]:
    if not isinstance(value, list):
        problems.append("`alerts.routes` must be an array of tables ([[alerts.routes]])")
        return []
    routes = []
    for index, spec in enumerate(value):
        where = f"alerts.routes[{index}]"
        if not isinstance(spec, Mapping):
            problems.append(f"`{where}` must be a table")
            continue
        for key in sorted(set(spec) - _ROUTE_KEYS):
            problems.append(
                f"unknown key `{where}.{key}` (known: {', '.join(sorted(_ROUTE_KEYS))})"
            )
        name = spec.get("name", f"route {index + 1}")
        if not isinstance(name, str):
            problems.append(f"`{where}.name` must be a string")
            name = f"route {index + 1}"
        match = {k: _globs(spec[k], f"{where}.{k}", problems) for k in MATCH_KEYS if k in spec}
        if "to" not in spec:
            problems.append(f"`{where}.to` is missing: name the destination(s) of this route")
        to = _names(spec.get("to", []), f"{where}.to", known, problems)
        up = _names(spec.get("escalate_to", []), f"{where}.escalate_to", known, problems)
        _second(up, to, f"{where}.escalate_to", problems)
        cont = spec.get("continue", False)
        if not isinstance(cont, bool):
            problems.append(f"`{where}.continue` must be true or false")
        routes.append(Route(f"route {name!r}", match, to, up, cont is True))
    return routes


def _second(escalate_to, to, where, problems) -> None:
    same = sorted(set(escalate_to) & set(to))
    if same:
        problems.append(
            f"`{where}` names {', '.join(same)}, which already receives these alerts: an "
            "escalation goes to a second destination"
        )


def _globs(value, where, problems) -> tuple[str, ...]:
    from lifecycle.alerts.rules import LAYERS

    globs = [value] if isinstance(value, str) else value
    if not isinstance(globs, list) or not globs or not all(isinstance(g, str) for g in globs):
        problems.append(f'`{where}` must be a string (a glob such as "credit_*") or a list')
        return ()
    allowed = {"layer": LAYERS, "severity": SEVERITIES}.get(where.rsplit(".", 1)[-1])
    for glob in globs:
        literal = not any(c in glob for c in "*?[")
        if allowed and literal and glob not in allowed:
            problems.append(f"`{where}` has {glob!r}; expected one of {', '.join(allowed)}")
    return tuple(globs)


def _owners(table, known, problems) -> dict[str, Route]:
    if not isinstance(table, Mapping):
        problems.append('`alerts.owners` must be a table: "owner" = "destination"')
        return {}
    owners = {}
    for owner, value in table.items():
        where = f"alerts.owners.{owner!r}"
        if isinstance(value, Mapping):
            for key in sorted(set(value) - {"to", "escalate_to"}):
                problems.append(f"unknown key `{where}.{key}` (known: to, escalate_to)")
            to = _names(value.get("to", []), f"{where}.to", known, problems)
            up = _names(value.get("escalate_to", []), f"{where}.escalate_to", known, problems)
            _second(up, to, f"{where}.escalate_to", problems)
        else:
            to, up = _names(value, where, known, problems), ()
        owners[owner.strip().lower()] = Route(f"owner {owner}", {}, to, up)
    return owners
