"""Drift bench: 1,000,000 reference + 1,000,000 current rows, 20 numeric + 5 categorical columns.

Four numeric columns are shifted by 0.1 standard deviation and one categorical column's mix
changes (lifecycle.drift.synthetic); the other 20 columns keep their distribution. The data is
loaded as logs through the library (catalog.register for the reference, ingest for
predictions and features) by a child process, then this process opens the database and runs
the univariate drift suite on the one day window, exactly as `monitor` does. It prints the
suite's wall time, this process's peak memory and the flagged columns.

    python bench/drift_bench.py [--rows 1000000] [--db bench/out/drift_bench.duckdb] [--reload]

Targets (2 cores): under 3 s, under 600 MB peak, exactly the 5 changed columns flagged.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "drift_bench"
DAY = "2026-03-02"


def peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spec_text(rows: int) -> str:
    from lifecycle.drift.synthetic import CATEGORICAL, NUMERIC

    features = "".join(f'\n[[features]]\nname = "{n}"\ntype = "numeric"\n' for n in NUMERIC)
    features += "".join(
        f'\n[[features]]\nname = "{c}"\ntype = "categorical"\n' for c in CATEGORICAL
    )
    return (
        textwrap.dedent(
            f"""
            name = "{MODEL}"
            task = "regression"
            owner = "bench@example.com"
            risk_tier = "low"
            description = "Drift bench: {rows} reference and current rows"
            version = "1"
            reference = "reference.parquet"

            [drift]
            multivariate = false
            concept = false
            """
        )
        + features
    )


def load(db: Path, rows: int, seed: int) -> None:
    """Generate the data and load it as logs (runs in a child process)."""
    import numpy as np
    import pandas as pd

    from lifecycle import catalog
    from lifecycle.drift.synthetic import drift_frames
    from lifecycle.ingest import ingest
    from lifecycle.store import Store

    started = time.perf_counter()
    reference, current = drift_frames(rows, seed)
    folder = db.parent / "drift_bench_spec"
    folder.mkdir(parents=True, exist_ok=True)
    reference["prediction"] = 0.0
    reference["actual"] = 0.0
    reference.to_parquet(folder / "reference.parquet", index=False)
    del reference
    (folder / "spec.toml").write_text(spec_text(rows), encoding="utf-8")
    with Store(db) as store:
        catalog.register_from_file(store, folder / "spec.toml")
        ids = np.char.add("r", np.arange(rows).astype(str))
        ts = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(np.arange(rows) * (86_400 / rows), "s")
        predictions = pd.DataFrame(
            {"prediction_id": ids, "model_version": "1", "ts": ts, "prediction": 0.0}
        )
        ingest(store, MODEL, "predictions", predictions)
        del predictions
        current.insert(0, "prediction_id", ids)
        ingest(store, MODEL, "features", current)
    print(
        f"loaded {rows:,} reference + {rows:,} current rows in "
        f"{time.perf_counter() - started:.1f}s (load process peak {peak_mb():.0f} MB)"
    )


def noise_table(reps: int) -> None:
    """Effect sizes of unchanged and of minimally changed columns at several sample sizes.

    Normalised Wasserstein of a normal column (unchanged / shifted by 0.1 sd) and
    Jensen-Shannon distance of the bench's 5-category column (unchanged / the changed mix),
    computed with scipy on independent samples: the sampling noise the thresholds face.
    """
    import numpy as np
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    from lifecycle.drift.synthetic import CHANGED_SHARES, MIX

    rng = np.random.default_rng(0)
    print(
        f"{'n per side':>10} | {'W/sd unchanged p99 / max':>25} | {'W/sd 0.1-sd shift min':>21} "
        f"| {'JS unchanged p99 / max':>22} | {'JS changed mix min':>18}"
    )
    for n in (1_000, 10_000, 100_000):
        count = reps if n < 100_000 else max(reps // 4, 20)
        w_null, w_shift, js_null, js_mix = [], [], [], []
        for _ in range(count):
            a = rng.normal(0, 1, n)
            w_null.append(stats.wasserstein_distance(a, rng.normal(0, 1, n)) / a.std(ddof=1))
            w_shift.append(stats.wasserstein_distance(a, rng.normal(0.1, 1, n)) / a.std(ddof=1))
            ref = rng.multinomial(n, MIX["c0"])
            js_null.append(jensenshannon(ref, rng.multinomial(n, MIX["c0"]), base=2))
            js_mix.append(jensenshannon(ref, rng.multinomial(n, CHANGED_SHARES), base=2))
        print(
            f"{n:>10,} | {np.percentile(w_null, 99):>12.4f} / {max(w_null):<10.4f} | "
            f"{min(w_shift):>21.4f} | {np.percentile(js_null, 99):>10.4f} / {max(js_null):<9.4f} "
            f"| {min(js_mix):>18.4f}"
        )
    print(
        f"({reps} draws per size, {max(reps // 4, 20)} at 100,000; thresholds: W/sd 0.05, JS 0.02)"
    )


def run_suite(db: Path, sample_rows: int | None) -> dict:
    import pandas as pd

    from lifecycle.drift.synthetic import CHANGED
    from lifecycle.monitor import feature_drift_suite
    from lifecycle.store import Store

    started = time.perf_counter()
    with Store(db) as store:
        opened = time.perf_counter()
        day = pd.Timestamp(DAY, tz="UTC").to_pydatetime()
        results = feature_drift_suite(store, MODEL, day, sample_rows=sample_rows)
        finished = time.perf_counter()
    flagged = sorted(r.subject for r in results if r.severity not in (None, "none"))
    return {
        "suite_seconds": round(finished - opened, 3),
        "with_open_seconds": round(finished - started, 3),
        "peak_mb": round(peak_mb(), 1),
        "flagged": flagged,
        "expected": sorted(CHANGED),
        "exact": flagged == sorted(CHANGED),
        "results": [
            {
                "column": r.subject,
                "method": r.method,
                "statistic": r.statistic,
                "p_adjusted": r.p_adjusted,
                "effect_size": r.effect_size,
                "severity": r.severity,
                "n_reference": r.n_reference,
                "n_current": r.n_current,
            }
            for r in results
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "drift_bench.duckdb")
    parser.add_argument("--reload", action="store_true", help="regenerate and reload the data")
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print every column's result")
    parser.add_argument(
        "--sample-rows",
        type=int,
        help="override the per-side sample cap (default: the spec's, 100,000); "
        "--sample-rows 1000000 tests every row",
    )
    parser.add_argument(
        "--noise", type=int, metavar="DRAWS", help="print the effect-size noise table and exit"
    )
    args = parser.parse_args()
    if args.noise:
        noise_table(args.noise)
        return 0
    if args.load_only:
        load(args.db, args.rows, args.seed)
        return 0
    if args.reload or not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        for stale in (args.db, args.db.with_suffix(".duckdb.wal")):
            stale.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--load-only", "--db", str(args.db)]
        subprocess.run([*cmd, "--rows", str(args.rows), "--seed", str(args.seed)], check=True)
    report = run_suite(args.db, args.sample_rows)
    cap = args.sample_rows or 100_000
    print(
        f"univariate suite, 25 columns, {args.rows:,} + {args.rows:,} rows "
        f"(tested on up to {min(cap, args.rows):,} sampled rows per side): "
        f"{report['suite_seconds']:.2f} s (with opening the database "
        f"{report['with_open_seconds']:.2f} s), peak memory {report['peak_mb']:.0f} MB"
    )
    print(f"flagged: {', '.join(report['flagged']) or 'none'}")
    print(
        f"expected: {', '.join(report['expected'])} -> {'exact' if report['exact'] else 'MISMATCH'}"
    )
    if args.json:
        print(json.dumps(report["results"], indent=2))
    return 0 if report["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
