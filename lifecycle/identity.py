"""Who is acting, and what their roles allow.

The library checks permissions itself on every mutating call (pages only hide buttons): a call
by an actor without the permission raises PermissionDenied before anything is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass

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
