"""The rollout contract: the registry's desired serving state, published for routers.

`desired_state` says, for every model, what should serve: the production version and the
share of traffic it keeps, the canary version and its share, the versions that receive
shadow copies, and the standby a rollback restores. Routers (Argo Rollouts, KServe, an nginx
split, a plain load balancer) follow it; docs/governance.md "Rollout contract" shows how, and
docs/examples/routes_to_nginx.py is a tested adapter.

After every registry change (`registry.act`), `publish` writes the whole state, with the
audit id of the change, to the configured routes file (atomically: a temporary file in the
same folder, then a rename, so a reader never sees half a file) and POSTs it to the
configured webhook, signed with HMAC-SHA256 over the exact body under a shared secret
(header `X-Lifecycle-Signature: sha256=<hex>`). Every message carries the full state, so a
missed delivery is healed by the next one or by `registry routes --publish`. A failed
delivery never undoes the registry change; it is written to the audit log.

Configuration (lifecycle.toml or $LIFECYCLE_CONFIG):

    [routes]
    file = "routes.json"                  # relative to the working folder
    webhook_url_env = "ROUTES_WEBHOOK_URL"  # names of environment variables, never values
    secret_env = "ROUTES_WEBHOOK_SECRET"
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifecycle.audit import append_audit
from lifecycle.store import Store

SIGNATURE_HEADER = "X-Lifecycle-Signature"
SCHEMA = "lifecycle.routes/v1"


class RoutesConfigError(ValueError):
    """A [routes] table that cannot be used; the message names the key."""


@dataclass
class RoutesConfig:
    file: Path | None = None
    webhook_url: str | None = None
    secret: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        return self.file is not None or self.webhook_url is not None


def load_config(path: str | os.PathLike | None = None) -> RoutesConfig:
    """The [routes] table of the config file (lifecycle.identity.config_path); secrets are
    read from the environment variables it names."""
    from lifecycle.identity import ConfigError, config_table

    try:
        table, target = config_table("routes", path)
    except ConfigError as exc:
        raise RoutesConfigError(str(exc)) from exc
    if target is None:
        return RoutesConfig()
    unknown = sorted(set(table) - {"file", "webhook_url_env", "secret_env"})
    if unknown or "webhook_url" in table or "secret" in table:
        raise RoutesConfigError(
            f"config {target}: [routes] takes file, webhook_url_env and secret_env (names of "
            f"environment variables holding the URL and secret), not {', '.join(unknown)}"
        )
    config = RoutesConfig(file=Path(table["file"]) if table.get("file") else None)
    if name := table.get("webhook_url_env"):
        config.webhook_url = os.environ.get(name) or None
        if config.webhook_url is None:
            config.problems.append(f"routes.webhook_url_env names ${name}, which is not set")
        secret_name = table.get("secret_env")
        config.secret = os.environ.get(secret_name) if secret_name else None
        if not config.secret:
            config.problems.append(
                "routes.secret_env must name a set environment variable: the webhook's "
                "messages are always signed"
            )
            config.webhook_url = None
    return config


def desired_state(store: Store, model: str | None = None) -> dict[str, Any]:
    """Every model's (or one model's) desired serving state, with the newest audit id."""
    rows = store.query_all(
        "SELECT m.name, d.production_version, d.previous_version, d.canary_version, "
        "d.canary_share, d.revision, (SELECT list(v.version ORDER BY v.registered_at) "
        "FROM model_versions v WHERE v.model_name = m.name AND v.state = 'shadow') "
        "FROM models m LEFT JOIN deployments d ON d.model_name = m.name "
        "WHERE ? IS NULL OR m.name = ? ORDER BY m.name",
        [model, model],
    )
    audit_id = store.query_one("SELECT max(audit_id) FROM audit_log")[0]
    models = {}
    for name, production, standby, canary, share, revision, shadow in rows:
        canary_share = float(share) if canary and share is not None else 0.0
        models[name] = {
            "production": production,
            "production_share": (1.0 - canary_share) if production else 0.0,
            "canary": canary,
            "canary_share": canary_share,
            "shadow": list(shadow or []),
            "standby": standby,
            "revision": int(revision) if revision is not None else 0,
        }
    return {"schema": SCHEMA, "audit_id": audit_id, "models": models}


def body(state: dict[str, Any]) -> bytes:
    """The exact bytes written and signed (sorted keys: the same state, the same bytes)."""
    return json.dumps(state, sort_keys=True, indent=2).encode("utf-8")


def signature(payload: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def verify(payload: bytes, header: str, secret: str) -> bool:
    """For receivers: does the header sign these exact bytes with this secret?"""
    return hmac.compare_digest(signature(payload, secret), header or "")


def write_file(path: Path, payload: bytes) -> None:
    """Atomically: readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def post(url: str, payload: bytes, secret: str, timeout: float = 5.0) -> None:
    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(payload, secret)},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "not 2xx", response.headers, None)


def publish(store: Store, config: RoutesConfig | None = None) -> dict[str, Any]:
    """Write and send the current desired state where configured; returns what happened
    ({"file": path or None, "webhook": "delivered" / error / None, "audit_id": ...})."""
    config = config if config is not None else load_config()
    outcome: dict[str, Any] = {"file": None, "webhook": None, "problems": list(config.problems)}
    if not config.configured and not config.problems:
        return outcome
    state = desired_state(store)
    state["published_at"] = datetime.now(UTC).isoformat()
    payload = body(state)
    outcome["audit_id"] = state["audit_id"]
    if config.file is not None:
        write_file(config.file, payload)
        outcome["file"] = str(config.file)
    if config.webhook_url:
        try:
            post(config.webhook_url, payload, config.secret or "")
            outcome["webhook"] = "delivered"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            outcome["webhook"] = f"failed: {_describe(exc)}"
    failures = outcome["problems"] + (
        [f"routes webhook {outcome['webhook']}"]
        if str(outcome["webhook"]).startswith("failed") else []
    )  # fmt: skip
    if failures:
        with store.transaction() as cur:
            append_audit(cur, actor="system:routes", action="routes_publish_failed",
                         reason="; ".join(failures),
                         evidence={"audit_id": state["audit_id"]})  # fmt: skip
    return outcome


def _describe(exc: Exception) -> str:
    """An error without the URL (it may carry a token)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the webhook ({type(exc.reason).__name__})"
    return type(exc).__name__
