"""Drift impact for pages and reports: a version's stored importance profile, and drifting
features ranked by impact (importance x effect).

Monitoring computes both (lifecycle.importance, lifecycle.reference_models): the profile is
kept in `feature_importance`, and every `data_drift` result carries `details.importance`
(the feature's share of the model's importance), `details.impact` and, when the response was
capped at "investigate", `details.response_capped` with the reason. This module only reads
them; docs/drift.md ("Drift impact") explains the method and the protocol.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lifecycle import catalog
from lifecycle.drift.config import DriftConfigError, drift_config
from lifecycle.drift.severity import severity_rank
from lifecycle.store import Store

FLAGGED = ("minor", "moderate", "significant")
RANKING_COLUMNS = [
    "feature", "importance", "impact", "severity", "method", "effect_size", "response",
    "capped", "windows_flagged", "window_start",
]  # fmt: skip


@dataclass(frozen=True)
class StoredProfile:
    """A version's importance profile as monitoring stored it."""

    model: str
    version: str
    valid: bool
    shares: pd.DataFrame  # feature, share (0..1): highest first; empty when not valid
    fidelity: float | None
    method: str
    reason: str | None
    computed_at: Any
    min_share: float | None = None  # [drift] min_importance: drift below it is "investigate"

    def share(self, feature: str) -> float | None:
        return self.share_of.get(feature)

    @functools.cached_property
    def share_of(self) -> dict[str, float]:
        """feature -> share (pages ask per cell: a pandas filter each took 1 s per grid)."""
        return {str(f): float(v) for f, v in zip(self.shares["feature"], self.shares["share"],
                                                  strict=True)}  # fmt: skip

    @property
    def fidelity_text(self) -> str:
        if self.fidelity is None:
            return "no proxy fitted"
        return f"proxy fidelity R² {self.fidelity:.2f} (held-out reference rows)"


def importance_profile(store: Store, model: str, version: str) -> StoredProfile | None:
    """The stored profile of `model` `version`, or None when monitoring has not computed one
    (the version was not monitored since importance profiles were introduced)."""
    frame = store.query_df(
        "SELECT feature, share, fidelity, method, reason, computed_at FROM feature_importance "
        "WHERE model_name = ? AND model_version = ? ORDER BY share DESC NULLS LAST, feature",
        [model, version],
    )
    if frame.empty:
        return None
    with store.cursor() as cur:
        spec = catalog.version_spec(cur, model, version)
    try:
        min_share = drift_config(spec).min_importance
    except DriftConfigError:  # shown without the line; monitoring names the problem
        min_share = None
    first = frame.iloc[0]
    shares = frame.loc[frame["feature"].notna(), ["feature", "share"]].reset_index(drop=True)
    return StoredProfile(
        model=model,
        version=version,
        valid=not shares.empty,
        shares=shares,
        fidelity=number(first["fidelity"]),
        method=str(first["method"]),
        reason=None if pd.isna(first["reason"]) else str(first["reason"]),
        computed_at=first["computed_at"],
        min_share=min_share,
    )


def profile_note(profile: StoredProfile | None) -> str | None:
    """Why drifting features are ranked by severity rather than impact, or None when the
    profile is valid."""
    if profile is None:
        return (
            "No importance profile is stored for this version yet (the monitoring run computes "
            "it from the reference): drifting features are ranked by severity."
        )
    if not profile.valid:
        return (
            f"No valid importance profile for this version: {profile.reason}. Drifting "
            "features are ranked by severity, and responses follow severity alone."
        )
    return None


def impact_ranking(stored: pd.DataFrame) -> pd.DataFrame:
    """Features whose data drift is graded minor or worse in `stored` (lifecycle.drift.results
    rows of one selection), one row each at its highest-impact window, most impactful first.

    Without impact (no valid profile) the order is by severity, then by windows flagged,
    then by effect. Columns: RANKING_COLUMNS (`capped`: why the response is "investigate",
    else None)."""
    if stored.empty:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    part = stored[
        (stored["check_name"] == "data_drift")
        & (stored["status"] == "ok")
        & stored["severity"].isin(FLAGGED)
    ]
    if part.empty:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    rows = pd.DataFrame(
        {
            "feature": part["subject"],
            "importance": [number(d.get("importance")) for d in part["details"]],
            "impact": [number(d.get("impact")) for d in part["details"]],
            "severity": part["severity"],
            "method": part["method"],
            "effect_size": part["effect_size"].astype(float),
            "response": part["response"],
            "capped": [d.get("response_capped") for d in part["details"]],
            "window_start": part["window_start"],
        }
    )
    rows["_rank"] = rows["severity"].map(severity_rank)
    rows["_impact"] = rows["impact"].fillna(-1.0)
    order = ["_impact", "_rank", "effect_size", "window_start"]
    peak = rows.sort_values(order, kind="stable").groupby("feature").tail(1)
    counts = rows.groupby("feature").size().rename("windows_flagged")
    peak = peak.join(counts, on="feature")
    peak = peak.sort_values(
        ["_impact", "_rank", "windows_flagged", "effect_size"], ascending=False, kind="stable"
    )
    peak["capped"] = pd.Series(  # object dtype: a missing reason stays None, never NaN
        [c if isinstance(c, str) else None for c in peak["capped"]],
        index=peak.index,
        dtype=object,
    )
    return peak[RANKING_COLUMNS].reset_index(drop=True)


def feature_order(
    ranking: pd.DataFrame, features: list[str], profile: StoredProfile | None
) -> list[str]:
    """`features` for the severity grid's rows: the ranked drifting ones first, then the others
    by importance (when the profile is valid), else in their declared order."""
    ranked = [f for f in ranking["feature"] if f in features]
    rest = [f for f in features if f not in ranked]
    if profile is not None and profile.valid:
        rest.sort(key=lambda f: -(profile.share(f) or 0.0))
    return ranked + rest


def order_cells(cells: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """lifecycle.layers.drift_cells rows with the feature rows in `features` order (the grid
    draws rows in the order they first appear); the other checks' rows keep their place."""
    position = {f: i for i, f in enumerate(features)}
    is_feature = cells["check_name"] == "data_drift"
    key = [
        position.get(s, len(position)) if f else len(position) + 1
        for s, f in zip(cells["subject"], is_feature, strict=True)
    ]
    return cells.assign(_key=key).sort_values("_key", kind="stable").drop(columns="_key")


def label_rows(cells: pd.DataFrame, profile: StoredProfile | None) -> pd.DataFrame:
    """drift_cells rows with each feature's share of importance in its row label,
    "debt_ratio (65%)", when the profile is valid (the grid shows it beside the feature)."""
    if profile is None or not profile.valid:
        return cells
    shares = profile.share_of
    rows = [
        f"{s} ({_percent(shares[s])})" if c == "data_drift" and s in shares else r
        for r, c, s in zip(cells["row"], cells["check_name"], cells["subject"], strict=True)
    ]  # fmt: skip
    return cells.assign(row=rows)


def _percent(share: float | None) -> str:
    if share is None:
        return "?"
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def share_text(share: float | None) -> str:
    """'31% of importance' ('<1%' for a feature the model barely uses)."""
    if share is None:
        return "importance unknown"
    return f"{_percent(share)} of importance"


def impact_lines(evidence: dict) -> list[str]:
    """Sentences on importance and impact from a drift result's details or an alert's
    evidence (importance, impact, response_capped); empty when it has none."""
    share = number(evidence.get("importance"))
    if share is None:
        return []
    capped = evidence.get("response_capped")
    if isinstance(capped, str) and capped:  # it names the share and the cap already
        lines = [f"{capped[0].upper()}{capped[1:]}."]
    else:
        lines = [f"The model gives this feature {share:.1%} of its importance."]
    impact = number(evidence.get("impact"))
    if impact is not None:
        lines.append(
            f"Impact {impact:.2f} (importance x effect / the method's significant threshold; "
            "1 = a significant shift of the model's only input)."
        )
    return lines


def number(value) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
