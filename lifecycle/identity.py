"""Who is acting, and what their roles allow; where the role mapping comes from.

The library checks permissions itself on every mutating call (pages only hide buttons): a call
by an actor without the permission raises PermissionDenied before anything is read or written.

Configuration (docs/governance.md): `lifecycle.toml` in the working directory, or the file
named by $LIFECYCLE_CONFIG, with an `[identity]` table (mode, development user, default roles)
and `[identity.roles]` mapping e-mail addresses to roles. Without a file the app runs in
development mode with the demo's people (DEV_DEFAULT_ROLES). OIDC settings themselves (`[auth]`)
live in .streamlit/secrets.toml, which Streamlit reads.
"""

from __future__ import annotations

import os
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
}


class PermissionDenied(PermissionError):
    """The actor's roles do not allow the action; nothing was changed."""


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[str] = frozenset({"viewer"})

    def __post_init__(self):
        if not self.name or not self.name.strip():
            raise ValueError("an actor needs a name")
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")

    def can(self, permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        return bool(self.roles & PERMISSIONS[permission])


def require(actor: Actor, permission: str) -> None:
    """Raise PermissionDenied unless `actor` holds `permission`."""
    if not actor.can(permission):
        allowed = ", ".join(sorted(PERMISSIONS[permission]))
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


@dataclass(frozen=True)
class IdentityConfig:
    """Mode, development user and the e-mail -> roles mapping."""

    mode: str = "auto"  # auto: OIDC when Streamlit has an [auth] section, else development
    dev_user: str = DEV_USER
    default_roles: frozenset[str] = frozenset({"viewer"})
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    source: str = "built-in defaults"

    def roles_of(self, email: str) -> frozenset[str]:
        return self.roles.get(email.strip().lower(), self.default_roles)

    def actor(self, email: str) -> Actor:
        return Actor(email.strip(), self.roles_of(email))


def config_path(path: str | os.PathLike | None = None) -> Path:
    """`path` if given, else $LIFECYCLE_CONFIG, else ./lifecycle.toml."""
    if path:
        return Path(path)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


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
    if problems:
        raise ConfigError(f"identity config {source}: " + "; ".join(problems))
    return IdentityConfig(mode, dev_user.strip(), default_roles, roles, source)


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
