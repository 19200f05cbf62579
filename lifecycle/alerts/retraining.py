"""Retraining recommendations from each model's [retraining] policy.

```toml
[retraining]
policy = "both"                    # scheduled | triggered | both
every_days = 90                    # scheduled: due this long after the production version's
                                   # training date (training.trained_at, else registration)
on_severity = "critical"           # triggered: an active alert at this severity or above ...
layers = ["drift", "performance"]  # ... in one of these layers, on the production version
```
Data-quality alerts do not trigger retraining by default: bad data is fixed at its source,
not learned. The recommendation is computed from the registry and the alerts at a time
(`as_of`), never stored: the check, the inbox and the weekly review show it. For a past
`as_of` (a weekly review), the trigger is an alert active now whose first failing window
came before `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from lifecycle import catalog
from lifecycle.alerts.rules import LAYERS
from lifecycle.store import Store

POLICIES = ("scheduled", "triggered", "both")
DEFAULTS: dict[str, Any] = {
    "policy": "both",
    "every_days": 90,
    "on_severity": "critical",
    "layers": ["drift", "performance"],
}


class RetrainingConfigError(ValueError):
    """A [retraining] table that cannot be used; `problems` names every bad key."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"[retraining] settings of {where} are not valid:\n{listing}")


@dataclass
class Recommendation:
    model: str
    version: str | None  # the production version (None: nothing in production)
    policy: str
    due: bool
    reasons: list[str] = field(default_factory=list)
    trained_at: datetime | None = None
    next_scheduled: datetime | None = None
    alert_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        for key in ("trained_at", "next_scheduled"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    def text(self) -> str:
        if self.version is None:
            return f"{self.model}: no production version"
        if self.due:
            return f"{self.model} {self.version}: retraining due: " + "; ".join(self.reasons)
        when = f"{self.next_scheduled:%Y-%m-%d}" if self.next_scheduled else "not scheduled"
        return f"{self.model} {self.version}: retraining not due (next scheduled: {when})"


def retraining_config(spec: dict | None, where: str = "spec") -> dict[str, Any]:
    raw = (spec or {}).get("retraining") or {}
    if not isinstance(raw, dict):
        raise RetrainingConfigError(where, ["`retraining` must be a table"])
    problems = [f"unknown key `retraining.{k}`" for k in sorted(set(raw) - set(DEFAULTS))]
    config = {**DEFAULTS, **{k: v for k, v in raw.items() if k in DEFAULTS}}
    if config["policy"] not in POLICIES:
        problems.append(
            f"`retraining.policy` is {config['policy']!r}; expected one of {', '.join(POLICIES)}"
        )
    days = config["every_days"]
    if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
        problems.append(f"`retraining.every_days` must be a positive number, got {days!r}")
    if config["on_severity"] not in ("warning", "critical"):
        problems.append("`retraining.on_severity` must be warning or critical")
    layers = config["layers"]
    if (
        not isinstance(layers, list)
        or not all(isinstance(layer, str) for layer in layers)
        or not set(layers) <= set(LAYERS)
    ):
        problems.append(f"`retraining.layers` must be a list of: {', '.join(LAYERS)}")
    if problems:
        raise RetrainingConfigError(where, problems)
    return config


def production_version(store: Store, model: str) -> str | None:
    row = store.query_all(
        "SELECT production_version FROM deployments WHERE model_name = ?", [model]
    )
    if row and row[0][0]:
        return row[0][0]
    rows = store.query_all(
        "SELECT version FROM model_versions WHERE model_name = ? AND state = 'production' "
        "ORDER BY state_changed_at DESC LIMIT 1",
        [model],
    )
    return rows[0][0] if rows else None


def recommendation(store: Store, model: str, as_of: datetime | None = None) -> Recommendation:
    as_of = as_of or datetime.now(UTC)
    version = production_version(store, model)
    if version is None:
        return Recommendation(model, None, "n/a", False, ["no production version"])
    with store.cursor() as cur:
        spec = catalog.version_spec(cur, model, version)
    config = retraining_config(spec, f"{model} {version}")
    trained_at = _trained_at(store, model, version, spec)
    rec = Recommendation(model, version, config["policy"], False, trained_at=trained_at)
    if config["policy"] in ("scheduled", "both"):
        rec.next_scheduled = trained_at + timedelta(days=config["every_days"])
        if as_of >= rec.next_scheduled:
            age = (as_of - trained_at).days
            rec.reasons.append(
                f"scheduled: trained {age} days ago (every {config['every_days']:g} days)"
            )
    if config["policy"] in ("triggered", "both"):
        severities = (
            ["critical"] if config["on_severity"] == "critical" else ["warning", "critical"]
        )
        alerts = store.query_all(
            "SELECT alert_id, layer, rule, subject, coalesce(worst_severity, severity) AS worst "
            "FROM alerts WHERE model_name = ? AND model_version = ? "
            "AND state IN ('open', 'acknowledged') "
            "AND list_contains(?, coalesce(worst_severity, severity)) AND list_contains(?, layer) "
            "AND first_seen < ? ORDER BY alert_id",
            [model, version, severities, config["layers"], as_of],
        )
        for alert_id, layer, rule, subject, severity in alerts:
            rec.alert_ids.append(int(alert_id))
            rec.reasons.append(f"{severity} {layer} alert #{alert_id} ({rule} / {subject})")
    rec.due = bool(rec.reasons)
    return rec


def _trained_at(store: Store, model: str, version: str, spec: dict) -> datetime:
    stated = (spec.get("training") or {}).get("trained_at")
    if stated:
        value = pd.Timestamp(stated)
        return (value.tz_localize(UTC) if value.tzinfo is None else value).to_pydatetime()
    row = store.query_all(
        "SELECT registered_at FROM model_versions WHERE model_name = ? AND version = ?",
        [model, version],
    )
    return row[0][0]


def recommendations(
    store: Store, models: list[str] | None = None, as_of: datetime | None = None
) -> list[Recommendation]:
    with store.cursor() as cur:
        names = models or catalog.model_names(cur)
    return [recommendation(store, m, as_of) for m in names]
