"""Monitoring settings of a model version: defaults, overridden by its spec's `[drift]` table.

```toml
[drift]
fdr = 0.05                 # Benjamini-Hochberg false discovery rate over the features
min_rows = 30              # fewer non-missing values on either side: insufficient data
sample_rows = 100000       # larger sides are tested on a deterministic hash sample this big
numeric_method = "wasserstein"      # effect size deciding numeric severity
categorical_method = "jensenshannon"
baseline = ["2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z"]  # the "baseline" reference
multivariate_sample = 1000 # rows per side for the domain classifier
[drift.thresholds]         # (minor, moderate, significant) per effect size
wasserstein = [0.05, 0.15, 0.3]
```

A feature's own `drift_method` (in `[[features]]`) overrides the model-wide method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.drift.severity import EFFECT_THRESHOLDS, QUALITY_THRESHOLDS

NUMERIC_METHODS = ("wasserstein", "ks", "psi", "jensenshannon")
CATEGORICAL_METHODS = ("jensenshannon", "psi")
DEFAULT_METHOD = {"numeric": "wasserstein", "categorical": "jensenshannon"}


class DriftConfigError(ValueError):
    """A `[drift]` table (or feature drift_method) that cannot be used; names every problem."""

    def __init__(self, model: str, version: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"drift settings of {model} {version} are not valid:\n{listing}")


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    type: str  # numeric | categorical
    method: str
    range: tuple[float, float] | None = None
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DriftConfig:
    fdr: float = 0.05
    min_rows: int = 30
    quantile_bins: int = 10
    sample_rows: int = 100_000
    baseline: tuple[datetime, datetime] | None = None
    multivariate: bool = True
    multivariate_sample: int = 1000
    multivariate_min_rows: int = 200
    concept: bool = True
    min_labels: int = 100
    label_sample: int = 10_000
    bootstrap: int = 200
    noise_quantile: float = 0.99  # chance level: this quantile of the no-change distance
    min_importance: float = 0.05  # importance share below which drift calls for investigate
    thresholds: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: dict(EFFECT_THRESHOLDS)
    )
    quality_thresholds: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: dict(QUALITY_THRESHOLDS)
    )
    features: tuple[FeatureInfo, ...] = ()

    def feature(self, name: str) -> FeatureInfo:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)


_INT_KEYS = {
    "min_rows": (2, None),
    "quantile_bins": (2, 100),
    "sample_rows": (1_000, 10_000_000),
    "multivariate_sample": (100, 100_000),
    "multivariate_min_rows": (20, None),
    "min_labels": (10, None),
    "label_sample": (100, 1_000_000),
    "bootstrap": (20, 10_000),
}
_BOOL_KEYS = ("multivariate", "concept")
_KNOWN = {
    "fdr",
    "noise_quantile",
    "min_importance",
    "baseline",
    "numeric_method",
    "categorical_method",
    "thresholds",
    "quality_thresholds",
    *_INT_KEYS,
    *_BOOL_KEYS,
}


def drift_config(spec: dict[str, Any]) -> DriftConfig:
    """Settings of one version from its stored spec JSON; DriftConfigError on bad values."""
    raw = spec.get("drift") or {}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in sorted(set(raw) - _KNOWN):
        problems.append(f"unknown key `[drift].{key}` (known: {', '.join(sorted(_KNOWN))})")
    if "fdr" in raw:
        fdr = raw["fdr"]
        if not isinstance(fdr, int | float) or not 0 < fdr < 1:
            problems.append(f"`[drift].fdr` must be a number between 0 and 1, got {fdr!r}")
        else:
            values["fdr"] = float(fdr)
    if "noise_quantile" in raw:
        q = raw["noise_quantile"]
        if not isinstance(q, int | float) or isinstance(q, bool) or not 0.5 <= q < 1:
            problems.append(f"`[drift].noise_quantile` must be a number in [0.5, 1), got {q!r}")
        else:
            values["noise_quantile"] = float(q)
    if "min_importance" in raw:
        share = raw["min_importance"]
        if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share < 1:
            problems.append(
                f"`[drift].min_importance` must be a share in [0, 1) (0 switches the cap "
                f"off), got {share!r}"
            )
        else:
            values["min_importance"] = float(share)
    for key, (low, high) in _INT_KEYS.items():
        if key in raw:
            v = raw[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < low or (high and v > high):
                bound = f"{low}..{high}" if high else f">= {low}"
                problems.append(f"`[drift].{key}` must be an integer {bound}, got {v!r}")
            else:
                values[key] = v
    for key in _BOOL_KEYS:
        if key in raw:
            if not isinstance(raw[key], bool):
                problems.append(f"`[drift].{key}` must be true or false, got {raw[key]!r}")
            else:
                values[key] = raw[key]
    if "baseline" in raw:
        values["baseline"] = _baseline(raw["baseline"], problems)
    values["thresholds"] = _thresholds(raw, "thresholds", EFFECT_THRESHOLDS, problems)
    values["quality_thresholds"] = _thresholds(
        raw, "quality_thresholds", QUALITY_THRESHOLDS, problems
    )
    values["features"] = _features(spec, raw, problems)
    if problems:
        raise DriftConfigError(spec.get("name", "?"), spec.get("version", "?"), problems)
    return DriftConfig(**values)


def _baseline(value: Any, problems: list[str]):
    where = "`[drift].baseline`"
    if not (isinstance(value, list) and len(value) == 2):
        problems.append(f"{where} must be [start, end] timestamps with a UTC offset")
        return None
    try:
        start, end = (datetime.fromisoformat(str(v).replace("Z", "+00:00")) for v in value)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if start.tzinfo is None or end.tzinfo is None:
        problems.append(f"{where} timestamps need a UTC offset (e.g. 2026-01-01T00:00:00Z)")
        return None
    if end <= start:
        problems.append(f"{where} ends before it starts")
        return None
    return (start, end)


def _thresholds(raw: dict, key: str, defaults: dict, problems: list[str]) -> dict:
    out = dict(defaults)
    table = raw.get(key, {})
    if not isinstance(table, dict):
        problems.append(f"`[drift].{key}` must be a table")
        return out
    for name, value in table.items():
        where = f"`[drift.{key}].{name}`"
        if name not in defaults:
            problems.append(f"{where}: unknown measure (known: {', '.join(defaults)})")
            continue
        ok = (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and value[0] <= value[1] <= value[2]
        )
        if not ok:
            problems.append(
                f"{where} must be [minor, moderate, significant] ascending, got {value!r}"
            )
            continue
        out[name] = tuple(float(v) for v in value)
    return out


def _features(spec: dict, raw: dict, problems: list[str]) -> tuple[FeatureInfo, ...]:
    model_default = {
        "numeric": raw.get("numeric_method", DEFAULT_METHOD["numeric"]),
        "categorical": raw.get("categorical_method", DEFAULT_METHOD["categorical"]),
    }
    allowed = {"numeric": NUMERIC_METHODS, "categorical": CATEGORICAL_METHODS}
    for ftype, method in model_default.items():
        if method not in allowed[ftype]:
            problems.append(
                f"`[drift].{ftype}_method` is {method!r}; expected one of "
                f"{', '.join(allowed[ftype])}"
            )
    out = []
    for f in spec.get("features", []):
        method = f.get("drift_method") or model_default[f["type"]]
        if f.get("drift_method") and method not in allowed[f["type"]]:
            problems.append(
                f"feature {f['name']!r}: drift_method {method!r} is not one of "
                f"{', '.join(allowed[f['type']])} ({f['type']} feature)"
            )
        rng = tuple(f["range"]) if f.get("range") else None
        vals = tuple(f["values"]) if f.get("values") else None
        out.append(FeatureInfo(f["name"], f["type"], method, rng, vals))
    return tuple(out)
