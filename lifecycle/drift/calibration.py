"""How often the verdicts are wrong: stable and shifted streams at several window sizes.

Runs the real engine (univariate drift, prediction drift and the data-quality statistics,
on DuckDB tables) over synthetic windows whose truth is known, and counts flags. Used by
tests/test_noise_severity.py (false-alarm and detection rates over many seeds and sizes)
and by bench/noise_bench.py (the figures in docs/drift.md).

Each seed draws one reference (`REFERENCE_ROWS`, a typical validation set) and windows of
`n` rows from the same population: a normal column with 4% missing values, a skewed
log-normal, an integer count with many ties, a 3-category and an 18-category column, and a
classifier's score with its predicted label. A shifted window moves `num` by 0.3 reference
sd and changes the mixes of `cat3` and `cat18` so that each one's population Jensen-Shannon
distance to the reference population is 0.1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from lifecycle.drift.config import DriftConfig, FeatureInfo
from lifecycle.drift.engine import prediction_drift, univariate_drift
from lifecycle.drift.severity import RANK
from lifecycle.quality import quality_checks, reference_profile
from lifecycle.store import Sql

REFERENCE_ROWS = 5_000
SIZES = (100, 165, 500, 1_250, 10_000)
SHIFT_SD = 0.3
TARGET_JS = 0.1
CAT3 = np.array([0.6, 0.3, 0.1])
CAT18 = np.array([1 / (k + 1) for k in range(18)]) / sum(1 / (k + 1) for k in range(18))
FEATURES = (
    FeatureInfo("num", "numeric", "wasserstein"),
    FeatureInfo("skew", "numeric", "wasserstein"),
    FeatureInfo("count", "numeric", "wasserstein"),
    FeatureInfo("cat3", "categorical", "jensenshannon"),
    FeatureInfo("cat18", "categorical", "jensenshannon"),
)
QUALITY_CHECKS = ("missing_rate", "new_categories", "outliers")


def _js(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2
    kl = lambda a: float(np.sum(np.where(a > 0, a * np.log2(a / m), 0.0)))  # noqa: E731
    return float(np.sqrt((kl(p) + kl(q)) / 2))


def shifted_mix(p: np.ndarray, target: float = TARGET_JS) -> np.ndarray:
    """`p` moved towards its reverse order until the JS distance to `p` is `target`."""
    r = p[::-1]
    lo, hi = 0.0, 1.0
    for _ in range(60):
        t = (lo + hi) / 2
        lo, hi = (t, hi) if _js(p, (1 - t) * p + t * r) < target else (lo, t)
    return (1 - lo) * p + lo * r


def frame(rng: np.random.Generator, n: int, *, shifted: bool = False) -> pd.DataFrame:
    num = rng.normal(50.0, 10.0, n) + (SHIFT_SD * 10.0 if shifted else 0.0)
    num[rng.random(n) < 0.04] = np.nan
    mix3, mix18 = (shifted_mix(CAT3), shifted_mix(CAT18)) if shifted else (CAT3, CAT18)
    skew = rng.lognormal(0.0, 0.6, n)
    score = 1 / (1 + np.exp(-(0.05 * (np.nan_to_num(num, nan=50.0) - 50) + 0.4 * skew - 0.5)))
    return pd.DataFrame(
        {
            "_key": [f"{i}" for i in range(n)],
            "_has_features": True,
            "_batch": 1,
            "num": num,
            "skew": skew,
            "count": rng.poisson(3.0, n).astype(float),
            "cat3": rng.choice(["a", "b", "c"], n, p=mix3),
            "cat18": rng.choice([f"k{k:02d}" for k in range(18)], n, p=mix18),
            "prediction": score,
            "predicted_label": np.where(score > 0.5, "1", "0"),
        }
    )


@dataclass
class Tally:
    """Verdicts by severity over the tests of one window size, per (check, subject)."""

    insufficient: int = 0  # results too small to judge
    subjects: dict[tuple[str, str], Counter] = field(default_factory=dict)

    def add(self, check: str, subject: str, severity: str | None) -> None:
        if severity is None:
            self.insufficient += 1
        else:
            self.subjects.setdefault((check, subject), Counter())[severity] += 1

    def _counters(self, subject: tuple[str, str] | None) -> list[Counter]:
        if subject is None:
            return list(self.subjects.values())
        return [self.subjects.get(subject, Counter())]

    def tests(self, subject: tuple[str, str] | None = None) -> int:
        """Results with a verdict (all subjects, or one)."""
        return sum(sum(c.values()) for c in self._counters(subject))

    def at_least(self, severity: str, subject: tuple[str, str] | None = None) -> int:
        return sum(
            n for c in self._counters(subject) for s, n in c.items() if RANK[s] >= RANK[severity]
        )

    def rate(self, severity: str, subject: tuple[str, str] | None = None) -> float:
        tests = self.tests(subject)
        return self.at_least(severity, subject) / tests if tests else 0.0

    def flagged(self, severity: str = "moderate") -> dict[str, int]:
        """(check/subject) -> how many of its results reached `severity` (for messages)."""
        return {
            f"{check}/{subject}": self.at_least(severity, (check, subject))
            for check, subject in self.subjects
            if self.at_least(severity, (check, subject))
        }


def window_results(con, config: DriftConfig, reference: dict) -> list:
    """Every graded result of the window in table `cur` against table `ref`; `reference`
    keeps what is computed once per reference (atoms, quality profile)."""
    results = univariate_drift(
        con, "ref", "cur", FEATURES, config, ref_cache=reference.setdefault("features", {})
    )
    results += prediction_drift(
        con, "ref", "cur", config, classifier=True, ref_cache=reference.setdefault("pred", {})
    )
    if "profile" not in reference:
        reference["profile"] = reference_profile(con, Sql("SELECT * FROM ref"), "ref", FEATURES)
    profile = reference["profile"]
    types = {f.name: ("DOUBLE" if f.type == "numeric" else "VARCHAR") for f in FEATURES}
    quality = quality_checks(con, Sql("SELECT * FROM cur"), FEATURES, [], profile, types, config)
    return results + [r for r in quality if r.check in QUALITY_CHECKS]


def stream_trials(
    sizes: Iterable[int] = SIZES,
    seeds: Iterable[int] = range(20),
    windows: int = 20,
    *,
    shifted: bool = False,
    config: DriftConfig | None = None,
) -> dict[int, Tally]:
    """Tally of verdicts per window size over `seeds` x `windows` windows of stable (or
    shifted) data, each seed with its own reference."""
    config = config or DriftConfig(features=FEATURES, multivariate=False, concept=False)
    con = duckdb.connect()
    con.execute("CREATE TABLE ingest_batches (batch_id BIGINT, report VARCHAR)")
    con.execute("INSERT INTO ingest_batches VALUES (1, '{}')")
    out: dict[int, Tally] = {}
    try:
        for n in sizes:
            tally = out.setdefault(n, Tally())
            for seed in seeds:
                rng = np.random.default_rng([seed, n])
                _table(con, "ref", frame(rng, REFERENCE_ROWS))
                reference: dict = {}
                for _ in range(windows):
                    _table(con, "cur", frame(rng, n, shifted=shifted))
                    for r in window_results(con, config, reference):
                        tally.add(r.check, r.subject, r.severity)
    finally:
        con.close()
    return out


def _table(con, name: str, df: pd.DataFrame) -> None:
    con.register("_frame", df)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame")
    con.unregister("_frame")
