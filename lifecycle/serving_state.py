"""Traffic that contradicts the registry: a data-quality check of every monitored window.

Each logged prediction says which version answered and as which variant (production,
canary, shadow). The registry says, for every instant, which state each version was in
(its audit rows' `to_state`, stamped with the time of the change). A prediction is
*consistent* when its version was in the state of its variant at its timestamp, give or
take TOLERANCE around each change (routers take a moment to follow the registry); anything
else (traffic for a retired or rolled-back version, canary traffic for a version not in
canary, production traffic for the standby) is counted as a mismatch.

Models that were never promoted through the registry have no deployment history to
contradict, and get no result; traffic logged before a model's first promotion (historical
logs loaded after registering it) predates its governance and is not judged. Severity: any mismatch is at least moderate (a router does
not follow the registry), significant from 1% of the window's requests or 100 of them;
the alert rule `serving_state` (data-quality layer) raises warnings and critical alerts on
those grades like the other data-quality checks.
"""

from __future__ import annotations

from datetime import timedelta

from lifecycle.drift.results_model import CheckResult
from lifecycle.drift.windows import Window, utc_time

CHECK = "serving_state"
TOLERANCE = timedelta(minutes=15)
SIGNIFICANT_SHARE, SIGNIFICANT_ROWS = 0.01, 100
STATE_OF_VARIANT = {"production": "production", "canary": "canary", "shadow": "shadow"}
RESPONSE = {
    "moderate": "check the router against the registry (registry routes --json)",
    "significant": "fix the routing now: traffic reaches a version the registry does not serve",
}


def rows_severity(bad: int, rows: int) -> str:
    """Severity of `bad` rows out of `rows` that should not exist: any is moderate; 1% of
    the window or 100 rows significant (also lifecycle.lake_quality's levels)."""
    if not bad:
        return "none"
    big = bad / rows >= SIGNIFICANT_SHARE or bad >= SIGNIFICANT_ROWS
    return "significant" if big else "moderate"


def governed_since(cur, model: str):
    """When the model was first promoted through the registry (None: never): traffic logged
    before that predates its governance (historical logs loaded after registering) and is
    not judged."""
    return cur.execute(
        "SELECT min(ts) FROM audit_log WHERE model_name = ? AND action IN ('promote', 'switch')",
        [model],
    ).fetchall()[0][0]


def serving_state_check(cur, window: Window, since) -> CheckResult | None:
    """The window's predictions from `since` (governed_since) against the version's state
    history; None when the variant has no state or no prediction falls after `since`."""
    expected = STATE_OF_VARIANT.get(window.variant)
    if expected is None or since is None or utc_time(window.end) <= since:
        return None
    minutes = int(TOLERANCE.total_seconds() // 60)
    rows, bad, first_bad, last_bad = cur.execute(
        """
        WITH hist AS (
            SELECT ts AS since, lead(ts) OVER (ORDER BY ts, audit_id) AS until, to_state
            FROM audit_log
            WHERE model_name = ? AND version = ? AND to_state IS NOT NULL
        ), p AS (
            SELECT p.ts, EXISTS (
                SELECT 1 FROM hist h WHERE h.to_state = ?
                   AND p.ts >= h.since - to_minutes(CAST(? AS BIGINT))
                   AND (h.until IS NULL OR p.ts < h.until + to_minutes(CAST(? AS BIGINT)))
            ) AS consistent
            FROM predictions p
            WHERE p.model_name = ? AND p.model_version = ? AND p.variant = ?
              AND p.ts >= greatest(?, ?) AND p.ts < ?
        )
        SELECT count(*), count(*) FILTER (WHERE NOT consistent),
               min(ts) FILTER (WHERE NOT consistent), max(ts) FILTER (WHERE NOT consistent)
        FROM p
        """,
        [window.model, window.version, expected, minutes, minutes, window.model,
         window.version, window.variant, utc_time(window.start), since, utc_time(window.end)],
    ).fetchall()[0]  # fmt: skip
    if not rows:
        return None
    share = bad / rows if rows else 0.0
    severity = rows_severity(bad, rows)
    states = _states_in(cur, window)
    return CheckResult(
        check=CHECK,
        subject=f"{window.variant} traffic",
        method="requests against the registry's state",
        statistic=float(bad),
        effect_size=share,
        threshold=SIGNIFICANT_SHARE,
        severity=severity,
        response=RESPONSE.get(severity),
        n_current=int(rows),
        details={
            "mismatched": int(bad),
            "expected_state": expected,
            "states_in_window": states,
            "first_mismatch": first_bad.isoformat() if first_bad else None,
            "last_mismatch": last_bad.isoformat() if last_bad else None,
            "tolerance_minutes": minutes,
            "summary": (
                f"{bad:,} of {rows:,} {window.variant} request(s) came while {window.version} "
                f"was not in {expected} (registry states in the window: {', '.join(states)})"
                if bad
                else f"all {rows:,} {window.variant} request(s) match the registry"
            ),
        },
    )


def _states_in(cur, window: Window) -> list[str]:
    """The version's registry states over the window, in order (the one it began in first)."""
    rows = cur.execute(
        "SELECT ts, to_state FROM audit_log WHERE model_name = ? AND version = ? "
        "AND to_state IS NOT NULL AND ts < ? ORDER BY ts, audit_id",
        [window.model, window.version, utc_time(window.end)],
    ).fetchall()
    start = utc_time(window.start)
    before = [state for ts, state in rows if ts <= start][-1:] or ["registered"]
    states = []
    for state in before + [state for ts, state in rows if ts > start]:
        if not states or states[-1] != state:
            states.append(state)
    return states
