"""A model's monitoring windows, declared once in its spec and resolved in one place.

```toml
[monitoring]
grain = "day"             # hour, day, week, month, or auto (see below)
grains = ["day", "week"]  # several grains instead of `grain`; the first is the default view
chunk_rows = 5000         # also (or only, without grain/grains) chunks of 5,000 predictions
auto_min_rows = 200       # grain = "auto": rows a typical window must reach
```

`monitor` (without --grain), `check`, the alert rules, the monitoring pages, the weekly
review and `report` all call `monitoring_plan`, so they agree on the windows.

- Without a `[monitoring]` table the older `[alerts] grain` (default "day") selects the
  windows, as before; with one, `[alerts] grain` may stay only if it names one of the
  declared calendar grains.
- `auto` picks, per model, the smallest calendar grain (hour, day, week, month) whose
  median window over the production traffic's history (empty windows between the first and
  the last prediction count as 0) holds at least `auto_min_rows` predictions; by default
  the most any data check needs: `[drift] min_rows`, and `multivariate_min_rows` when the
  multivariate check is on (30 and 200 by default, so 200). If not even a month gets there,
  month is used and the plan says so. It is re-resolved on every run from the newest
  version's settings, so it follows traffic as it grows.
- Drift and data-quality checks run, and alert, on every resolved grain (a row-count chunk
  included). The performance and business rules need calendar windows: they use
  `[alerts] grain` when set, else the first calendar grain of the plan, else day.

The plan comes from the model's newest registered version (like the alert settings).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lifecycle import catalog
from lifecycle.drift.windows import GRAINS, MAX_CHUNK_ROWS, chunk_grain, chunk_size, grain_label

AUTO = "auto"
KEYS = ("grain", "grains", "chunk_rows", "auto_min_rows")
MIN_CHUNK_ROWS = 10
DEFAULT_GRAIN = "day"


class MonitorError(RuntimeError):
    """A window whose checks could not run; says which one and why (raised by
    lifecycle.monitor, defined here so that callers catch it without loading the engine)."""


class MonitoringConfigError(ValueError):
    """A `[monitoring]` table that cannot be used; `problems` names every bad key."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"[monitoring] settings of {where} are not valid:\n{listing}")


@dataclass(frozen=True)
class MonitoringSettings:
    """What a spec declares (before `auto` is resolved against the logs)."""

    grains: tuple[str, ...]  # calendar grains, "auto" and chunk grains, in declared order
    alert_grain: str | None  # `[alerts] grain` when the spec sets it
    auto_min_rows: int | None
    source: str  # where the grains come from: [monitoring], [alerts] grain, or default


@dataclass(frozen=True)
class MonitoringPlan:
    """The windows a model is monitored on, resolved (no `auto` left)."""

    model: str
    version: str | None  # whose spec declared them
    grains: tuple[str, ...]  # drift and data quality: monitored and alerted, in this order
    layer_grain: str  # performance and business rules, and the layer pages' default
    source: str
    notes: tuple[str, ...] = ()  # how `auto` was resolved, or why it fell back

    @property
    def default_grain(self) -> str:
        return self.grains[0]

    @property
    def calendar_grains(self) -> tuple[str, ...]:
        return tuple(g for g in self.grains if g in GRAINS)

    def describe(self) -> str:
        text = f"{', '.join(grain_label(g) for g in self.grains)} windows ({self.source})"
        return text + "".join(f"; {n}" for n in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grains": list(self.grains),
            "layer_grain": self.layer_grain,
            "source": self.source,
            "notes": list(self.notes),
        }


def monitoring_settings(spec: dict[str, Any] | None, where: str = "spec") -> MonitoringSettings:
    """The declared windows of a stored spec; MonitoringConfigError names every problem."""
    spec = spec or {}
    raw = spec.get("monitoring")
    alerts = spec.get("alerts") if isinstance(spec.get("alerts"), dict) else {}
    alert_grain = alerts.get("grain")
    problems: list[str] = []
    if raw is None:
        grains = (alert_grain,) if alert_grain in GRAINS else (DEFAULT_GRAIN,)
        source = "[alerts] grain" if alert_grain in GRAINS else "default"
        # a bad [alerts] grain is named by the alert settings' own validation
        return MonitoringSettings(grains, alert_grain, None, source)
    if not isinstance(raw, dict):
        raise MonitoringConfigError(where, ["`[monitoring]` must be a table"])
    for key in sorted(set(raw) - set(KEYS)):
        problems.append(f"unknown key `[monitoring].{key}` (known: {', '.join(KEYS)})")
    declared = _declared_grains(raw, problems)
    chunk = _chunk(raw, problems)
    if chunk:
        declared.append(chunk)
    if not declared and not problems:
        problems.append("`[monitoring]` declares no windows: set `grain`, `grains` or `chunk_rows`")
    min_rows = _auto_min_rows(raw, AUTO in declared, problems)
    if alert_grain is not None and alert_grain in GRAINS and alert_grain not in declared:
        calendar = [g for g in declared if g in GRAINS]
        problems.append(
            f"`[alerts].grain` is {alert_grain!r} but `[monitoring]` declares "
            f"{', '.join(calendar) or 'no calendar grain'}: declare the windows once in "
            "[monitoring] and drop `[alerts].grain`, or make it one of the declared grains"
        )
    if problems:
        raise MonitoringConfigError(where, problems)
    return MonitoringSettings(tuple(declared), alert_grain, min_rows, "declared in [monitoring]")


def _declared_grains(raw: dict, problems: list[str]) -> list[str]:
    allowed = (*GRAINS, AUTO)
    if "grain" in raw and "grains" in raw:
        problems.append("`[monitoring]` sets both `grain` and `grains`: keep one")
        return []
    if "grain" in raw:
        values, key = [raw["grain"]], "`[monitoring].grain`"
    elif "grains" in raw:
        values, key = raw["grains"], "`[monitoring].grains`"
        if not isinstance(values, list) or not values:
            problems.append(f'{key} must be a non-empty list, e.g. ["day", "week"]')
            return []
    else:
        return []
    out: list[str] = []
    for value in values:
        if value not in allowed:
            problems.append(f"{key}: {value!r} is not one of {', '.join(allowed)}")
        elif value in out:
            problems.append(f"{key}: {value!r} is listed twice")
        else:
            out.append(value)
    return out


def _chunk(raw: dict, problems: list[str]) -> str | None:
    if "chunk_rows" not in raw:
        return None
    rows = raw["chunk_rows"]
    if isinstance(rows, bool) or not isinstance(rows, int):
        problems.append(f"`[monitoring].chunk_rows` must be an integer, got {rows!r}")
        return None
    if not MIN_CHUNK_ROWS <= rows <= MAX_CHUNK_ROWS:
        problems.append(
            f"`[monitoring].chunk_rows` must be between {MIN_CHUNK_ROWS} and "
            f"{MAX_CHUNK_ROWS:,}, got {rows}"
        )
        return None
    return chunk_grain(rows)


def _auto_min_rows(raw: dict, auto: bool, problems: list[str]) -> int | None:
    if "auto_min_rows" not in raw:
        return None
    value = raw["auto_min_rows"]
    if not auto:
        problems.append('`[monitoring].auto_min_rows` applies only with grain = "auto"')
    elif isinstance(value, bool) or not isinstance(value, int) or value < 2:
        problems.append(f"`[monitoring].auto_min_rows` must be an integer >= 2, got {value!r}")
    else:
        return value
    return None


# -- resolution against the logs ---------------------------------------------------------------


def monitoring_plan(store, model: str) -> MonitoringPlan:
    """The model's resolved windows (KeyError for an unknown model, MonitoringConfigError
    for bad settings). `auto` reads the prediction log (one small SQL summary)."""
    with store.cursor() as cur:
        if catalog.model_info(cur, model) is None:
            known = ", ".join(catalog.model_names(cur)) or "none registered"
            raise KeyError(f"unknown model {model!r} (known: {known})")
        versions = catalog.version_names(cur, model)  # oldest first
        version = versions[-1] if versions else None
        spec = catalog.version_spec(cur, model, version) if version else {}
        settings = monitoring_settings(spec, f"{model} {version}")
        grains: list[str] = []
        notes: list[str] = []
        for grain in settings.grains:
            if grain == AUTO:
                grain, note = auto_grain(cur, model, _auto_minimum(spec, settings))
                notes.append(note)
            if grain not in grains:
                grains.append(grain)
    calendar = [g for g in grains if g in GRAINS]
    layer_grain = settings.alert_grain if settings.alert_grain in GRAINS else None
    layer_grain = layer_grain or (calendar[0] if calendar else DEFAULT_GRAIN)
    return MonitoringPlan(model, version, tuple(grains), layer_grain, settings.source, tuple(notes))


def _auto_minimum(spec: dict, settings: MonitoringSettings) -> int:
    if settings.auto_min_rows is not None:
        return settings.auto_min_rows
    from lifecycle.drift.config import drift_config

    config = drift_config(spec)
    if config.multivariate:
        return max(config.min_rows, config.multivariate_min_rows)
    return config.min_rows


def typical_rows(cur, model: str) -> dict[str, float]:
    """Median predictions per window for each calendar grain, over the production traffic
    (all variants if it has none) from the first to the last prediction, empty windows
    counted as 0. One SQL summary of hourly counts; the rest is arithmetic on it."""
    hourly = cur.execute(
        "SELECT date_trunc('hour', ts) AS h, count(*) FROM predictions WHERE model_name = ? "
        "AND (variant = 'production' OR NOT EXISTS (SELECT 1 FROM predictions "
        "WHERE model_name = ? AND variant = 'production')) GROUP BY 1 ORDER BY 1",
        [model, model],
    ).fetchall()
    if not hourly:
        return {}
    counts = pd.Series([n for _, n in hourly], index=pd.DatetimeIndex([h for h, _ in hourly]))
    counts.index = counts.index.tz_convert("UTC")
    rules = {"hour": "h", "day": "D", "week": "W-MON", "month": "MS"}
    # W-MON with closed/label left: [Monday 00:00, next Monday), the ISO weeks of date_trunc
    return {
        grain: float(
            statistics.median(counts.resample(rule, closed="left", label="left").sum().tolist())
        )
        for grain, rule in rules.items()
    }


def auto_grain(cur, model: str, min_rows: int) -> tuple[str, str]:
    """(grain, how it was chosen): the smallest calendar grain whose median window holds at
    least `min_rows` predictions."""
    typical = typical_rows(cur, model)
    if not typical:
        return DEFAULT_GRAIN, f"auto: no predictions yet, {DEFAULT_GRAIN} until traffic arrives"
    for grain in GRAINS:
        if typical[grain] >= min_rows:
            return grain, (
                f"auto: {grain} (a median {grain} holds {typical[grain]:,.0f} predictions, "
                f">= {min_rows:,} needed)"
            )
    return "month", (
        f"auto: month, though a median month holds only {typical['month']:,.0f} predictions "
        f"(< {min_rows:,} needed): checks will report insufficient data; consider "
        "chunk_rows"
    )


def chunk_grains(plan: MonitoringPlan) -> tuple[str, ...]:
    return tuple(g for g in plan.grains if chunk_size(g))
