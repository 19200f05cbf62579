"""Always-valid inference for a difference of means, safe under daily peeking.

The mixture sequential probability ratio test (mSPRT) with a normal mixing distribution
N(0, tau^2) over the true difference, as in Johari, Koomen, Pekelis and Walsh, "Always Valid
Inference: Continuous Monitoring of A/B Tests" (Operations Research, 2022; the method behind
Optimizely's stats engine). With an estimated difference d and its variance V (for two
independent arms s_c^2/n_c + s_p^2/n_p; for paired requests s_d^2/n), the mixture likelihood
ratio against "the difference is theta" is

    L(theta) = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta)^2 / (2 V (V + tau^2)))

and the set {theta : L(theta) < 1/alpha} is a (1 - alpha) confidence sequence: the chance
that it ever excludes the true difference, however often one looks, is at most alpha
(asymptotically, through the normal approximation of d). Its half-width is

    sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) - 2 log alpha)).

The always-valid p-value of "no difference" is min(1, 1/L(0)), and running minimum over looks.
tau sets the effect sizes the test is most sensitive to: we use the configured minimum effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POWER_Z = 0.8416212335729143  # standard normal quantile of 0.8 (80% power)


def half_width(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the always-valid interval at the estimate's variance."""
    if variance <= 0:
        return 0.0
    tau2 = tau * tau
    total = variance + tau2
    return math.sqrt(variance * total / tau2 * (math.log(total / variance) - 2 * math.log(alpha)))


def p_value(difference: float, variance: float, tau: float) -> float:
    """Always-valid p-value of "no difference" at this look (1 when variance is 0 and the
    difference too)."""
    if variance <= 0:
        return 1.0 if difference == 0 else 0.0
    tau2 = tau * tau
    total = variance + tau2
    log_ratio = 0.5 * math.log(variance / total) + tau2 * difference**2 / (2 * variance * total)
    return 1.0 if log_ratio <= 0 else math.exp(-log_ratio)


@dataclass(frozen=True)
class Look:
    """One look at the cumulative data: the difference (candidate - production), its
    variance, the always-valid interval and p-value (running minimum over looks)."""

    difference: float
    variance: float
    low: float
    high: float
    p_value: float


def looks(differences: list[float], variances: list[float], tau: float, alpha: float) -> list[Look]:
    """The confidence sequence over successive cumulative estimates."""
    out, best_p = [], 1.0
    for d, v in zip(differences, variances, strict=True):
        w = half_width(v, tau, alpha)
        best_p = min(best_p, p_value(d, v, tau))
        out.append(Look(d, v, d - w, d + w, best_p))
    return out


def rows_needed(
    var_candidate: float,
    var_production: float,
    ratio: float,
    min_effect: float,
    tau: float,
    alpha: float,
    *,
    paired: bool = False,
) -> int | None:
    """Candidate rows at which a true difference of `min_effect` would be detected with
    about 80% power by the always-valid interval: half-width + 0.84 sd <= min_effect.

    `var_*` are per-row variances; `ratio` production rows per candidate row (two arms);
    `paired`: var_candidate is the variance of the paired differences. None when the
    variances are unknown or the effect is 0."""
    if min_effect <= 0 or var_candidate < 0 or (not paired and var_production < 0):
        return None
    per_row = var_candidate if paired else var_candidate + var_production / max(ratio, 1e-9)
    if per_row <= 0:
        return 2

    def detects(n: float) -> bool:
        v = per_row / n
        return half_width(v, tau, alpha) + POWER_Z * math.sqrt(v) <= min_effect

    high = 2
    while not detects(high):
        high *= 2
        if high > 10**12:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if detects(mid) else (mid, high)
    return high
