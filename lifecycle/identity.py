"""Who is acting, and what their roles allow; where the role mapping comes from; how a
command-line caller proves who it is (API tokens).

The library checks permissions itself on every mutating call (pages only hide buttons): a call
by an actor without the permission raises PermissionDenied before anything is read or written.

Configuration (docs/governance.md): `lifecycle.toml` in the working directory, or the file
named by $LIFECYCLE_CONFIG, with an `[identity]` table (mode, development user, default roles)
and `[identity.roles]` mapping e-mail addresses to roles. Without a file the app runs in
development mode with the demo's people (DEV_DEFAULT_ROLES). OIDC settings themselves (`[auth]`)
live in .streamlit/secrets.toml, which Streamlit reads.

Command-line callers and the requests they queue for the app (lifecycle.requests) prove who
they are with an API token in $LIFECYCLE_TOKEN, checked against `[identity.tokens]` (e-mail =
salted SHA-256 hashes, never the tokens) by the process that acts. With no token configured
the commands run in development mode: `--actor` is believed (or the development user acts),
and every answer says so. Roles always come from the acting process's configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("viewer", "reviewer", "deployer", "admin")

# permission -> roles that hold it (admin holds every permission)
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "request_approval": frozenset({"deployer", "admin"}),
    "approve": frozenset({"reviewer", "admin"}),
    "reject": frozenset({"reviewer", "admin"}),
    "promote": frozenset({"deployer", "admin"}),
    "rollback": frozenset({"deployer", "admin"}),
    "retire": frozenset({"deployer", "admin"}),
    "override_gates": frozenset({"admin"}),  # promote despite a failing gate, with a reason
    "manage_alerts": frozenset({"reviewer", "deployer", "admin"}),
    "register": frozenset({"deployer", "admin"}),  # [identity] register_roles overrides it
    "set_risk_tier": frozenset({"admin"}),
}


class PermissionDenied(PermissionError):
    """The actor's roles do not allow the action; nothing was changed."""


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[str] = frozenset({"viewer"})
    # permission -> roles, replacing PERMISSIONS' entry (from the identity configuration)
    grants: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not self.name or not self.name.strip():
            raise ValueError("an actor needs a name")
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")

    def can(self, permission: str) -> bool:
        return bool(self.roles & self.holders(permission))

    def holders(self, permission: str) -> frozenset[str]:
        """The roles that hold `permission` (admin always does)."""
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        return self.grants.get(permission, PERMISSIONS[permission]) | {"admin"}


def require(actor: Actor, permission: str) -> None:
    """Raise PermissionDenied unless `actor` holds `permission`."""
    if not actor.can(permission):
        allowed = ", ".join(sorted(actor.holders(permission)))
        held = ", ".join(sorted(actor.roles)) or "none"
        raise PermissionDenied(
            f"{actor.name} (roles: {held}) may not {permission.replace('_', ' ')}; "
            f"that needs one of: {allowed}"
        )


# -- configuration -----------------------------------------------------------------------------

CONFIG_ENV = "LIFECYCLE_CONFIG"
DEFAULT_CONFIG = Path("lifecycle.toml")
MODES = ("auto", "dev", "oidc")
DEV_USER = "developer@localhost"
# Used only when there is no config file: development mode with the demo's people.
DEV_DEFAULT_ROLES: dict[str, frozenset[str]] = {
    DEV_USER: frozenset({"admin"}),
    "rita.reviewer@example.com": frozenset({"reviewer"}),
    "sam.reviewer@example.com": frozenset({"reviewer"}),
    "dana.deployer@example.com": frozenset({"deployer"}),
    "victor.viewer@example.com": frozenset({"viewer"}),
    "alex.admin@example.com": frozenset({"admin"}),
}


class ConfigError(ValueError):
    """The identity configuration cannot be used; the message names the file and key."""


TOKEN_ENV = "LIFECYCLE_TOKEN"
TOKEN_PREFIX = "lct_"


class IdentityError(PermissionError):
    """The caller's identity could not be verified (no token, wrong token, --actor that the
    token does not name); nothing was done."""


@dataclass(frozen=True)
class IdentityConfig:
    """Mode, development user and the e-mail -> roles mapping."""

    mode: str = "auto"  # auto: OIDC when Streamlit has an [auth] section, else development
    dev_user: str = DEV_USER
    default_roles: frozenset[str] = frozenset({"viewer"})
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    source: str = "built-in defaults"
    register_roles: frozenset[str] = PERMISSIONS["register"]
    tokens: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # e-mail -> hashes

    def roles_of(self, email: str) -> frozenset[str]:
        return self.roles.get(email.strip().lower(), self.default_roles)

    def actor(self, email: str) -> Actor:
        return Actor(email.strip(), self.roles_of(email), {"register": self.register_roles})

    @property
    def development(self) -> bool:
        """No API token configured: command-line callers are believed (development mode)."""
        return not self.tokens

    def principal_of(self, token: str | None) -> str | None:
        """The e-mail whose configured hash matches `token`, or None. Every hash is compared
        (constant-time), so the time taken does not tell which entry nearly matched."""
        found = None
        for email, hashes in self.tokens.items():
            for stored in hashes:
                if token and _token_matches(token, stored):
                    found = email
        return found

    def caller(self, claimed: str | None, token: str | None) -> tuple[str, str]:
        """Who a command-line caller is, as (e-mail, how it was established).

        With tokens configured the token decides, and an `--actor` naming anyone else is
        refused; without tokens (development mode) `claimed`, else the development user."""
        if self.development:
            return (claimed or self.dev_user).strip(), "development identity: no token configured"
        if not token:
            raise IdentityError(
                f"API tokens are configured ({self.source}): set ${TOKEN_ENV} to your token; "
                "--actor alone is not accepted"
            )
        principal = self.principal_of(token)
        if principal is None:
            raise IdentityError(f"${TOKEN_ENV} matches no token in {self.source}")
        if claimed and claimed.strip().lower() != principal:
            raise IdentityError(
                f"--actor {claimed} does not match the token, which belongs to {principal}"
            )
        return principal, "verified by API token"


def new_token() -> str:
    """A fresh random API token (give it to the person or pipeline, store only its hash)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str, salt: str | None = None) -> str:
    """`sha256$<salt>$<hex digest>` of a token: what the identity config stores."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}${token}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def _token_matches(token: str, stored: str) -> bool:
    scheme, salt, _ = [*stored.split("$"), "", ""][:3]
    if scheme != "sha256" or not salt:
        return False
    return hmac.compare_digest(hash_token(token, salt).encode(), stored.encode())


def config_path(path: str | os.PathLike | None = None) -> Path:
    """`path` if given, else $LIFECYCLE_CONFIG, else ./lifecycle.toml."""
    if path:
        return Path(path)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


def config_table(name: str, path: str | os.PathLike | None = None) -> tuple[dict, Path | None]:
    """(the `[name]` table of the config file, the file) - ({}, None) when there is no file;
    ConfigError naming the file when it cannot be read."""
    target = config_path(path)
    if not target.exists():
        return {}, None
    try:
        raw = tomllib.loads(target.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config {target} cannot be read: {exc}") from exc
    return raw.get(name, {}), target


def load_identity_config(path: str | os.PathLike | None = None) -> IdentityConfig:
    """Read the identity configuration; built-in development defaults when no file exists
    (a file named explicitly or by $LIFECYCLE_CONFIG must exist)."""
    target = config_path(path)
    if not target.exists():
        if path or os.environ.get(CONFIG_ENV):
            raise ConfigError(f"identity config {target} does not exist")
        return IdentityConfig(roles=dict(DEV_DEFAULT_ROLES))
    try:
        raw = tomllib.loads(target.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"identity config {target} cannot be read: {exc}") from exc
    return parse_identity_config(raw.get("identity", {}), str(target))


def parse_identity_config(table: Mapping, source: str) -> IdentityConfig:
    problems: list[str] = []
    mode = table.get("mode", "auto")
    if mode not in MODES:
        problems.append(f"identity.mode is {mode!r}; use one of {', '.join(MODES)}")
    dev_user = table.get("dev_user", DEV_USER)
    if not isinstance(dev_user, str) or not dev_user.strip():
        problems.append("identity.dev_user must be a non-empty string (an e-mail address)")
        dev_user = DEV_USER
    default_roles = _roles(
        table.get("default_roles", ["viewer"]), "identity.default_roles", problems
    )
    mapping = table.get("roles", {})
    roles: dict[str, frozenset[str]] = {}
    if not isinstance(mapping, Mapping):
        problems.append("identity.roles must be a table: e-mail = [roles]")
        mapping = {}
    for email, value in mapping.items():
        roles[email.strip().lower()] = _roles(value, f"identity.roles.{email!r}", problems)
    register_roles = _roles(
        table.get("register_roles", sorted(PERMISSIONS["register"])),
        "identity.register_roles",
        problems,
    )
    tokens = _tokens(table.get("tokens", {}), problems)
    if problems:
        raise ConfigError(f"identity config {source}: " + "; ".join(problems))
    return IdentityConfig(
        mode, dev_user.strip(), default_roles, roles, source, register_roles, tokens
    )


def _tokens(table, problems: list[str]) -> dict[str, tuple[str, ...]]:
    """`[identity.tokens]`: e-mail = "sha256$salt$hex" or a list of them (rotation)."""
    if not isinstance(table, Mapping):
        problems.append("identity.tokens must be a table: e-mail = [token hashes]")
        return {}
    tokens = {}
    for email, value in table.items():
        hashes = [value] if isinstance(value, str) else value
        key = f"identity.tokens.{email!r}"
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            problems.append(f"{key} must be a token hash or a list of them")
            continue
        bad = [h for h in hashes if len(h.split("$")) != 3 or not h.startswith("sha256$")]
        if bad:
            problems.append(
                f"{key} holds {len(bad)} value(s) that are not `sha256$salt$hex` hashes "
                "(store the output of `python -m lifecycle token new`, never the token)"
            )
            continue
        tokens[email.strip().lower()] = tuple(hashes)
    return tokens


def _roles(value, key: str, problems: list[str]) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{key} must be a list of roles")
        return frozenset()
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        problems.append(f"{key} has unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
    return frozenset(value) & frozenset(ROLES)


def request_identity(params: Mapping) -> tuple[Actor, str]:
    """The verified actor of a command's request, in the process that acts on it, and how it
    was established. The identity config is the acting process's own: a request's `config`
    is honoured only when the command runs in its own process (`here`, set by the caller's
    process and removed from queued requests), and roles never come from the request."""
    config = load_identity_config(params.get("config") if params.get("here") else None)
    name, how = config.caller(params.get("actor"), params.get("token"))
    return config.actor(name), how


def caller_token() -> str | None:
    """The API token of this process's caller ($LIFECYCLE_TOKEN), if any."""
    return os.environ.get(TOKEN_ENV) or None
