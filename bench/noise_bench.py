"""False alarms, detection and chance levels at each window size (figures for docs/drift.md).

    python bench/noise_bench.py [--seeds 20] [--windows 20] [--shifted-windows 5]

Runs the real engine over the calibration streams (lifecycle.drift.calibration): stable
windows at 100, 165, 500, 1,250 and 10,000 rows against a 5,000-row reference, and shifted
windows (0.3 sd on a numeric feature, a JS 0.1 mix change on a 3- and an 18-category one).
Prints, per size, the share of verdicts at minor and at moderate or above on stable data,
the detection rates, and the chance level and smallest gradeable effect of each distance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--shifted-windows", type=int, default=5)
    args = parser.parse_args()

    from lifecycle.drift.calibration import REFERENCE_ROWS, SIZES, stream_trials

    print(f"reference {REFERENCE_ROWS:,} rows; {args.seeds} seeds", flush=True)
    print("\nstable data: verdicts, share >= minor, share >= moderate (flagged subjects)")
    for n in SIZES:
        t0 = time.perf_counter()
        tally = stream_trials([n], range(args.seeds), args.windows)[n]
        print(
            f"  n={n:>6,}: {tally.tests():>6,} verdicts, minor+ {tally.rate('minor'):.4%}, "
            f"moderate+ {tally.rate('moderate'):.4%} {tally.flagged('moderate') or ''} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    print("\nshifted data: share of windows flagged >= minor / >= moderate")
    for n in SIZES:
        tally = stream_trials([n], range(args.seeds), args.shifted_windows, shifted=True)[n]
        parts = []
        for feature, what in (("num", "0.3 sd"), ("cat3", "JS 0.1, 3 cat"), ("cat18", "18 cat")):
            s = ("data_drift", feature)
            parts.append(f"{what}: {tally.rate('minor', s):.0%} / {tally.rate('moderate', s):.0%}")
        print(f"  n={n:>6,}: " + "; ".join(parts), flush=True)
    chance_table(REFERENCE_ROWS, SIZES)


def chance_table(n_ref: int, sizes) -> None:
    """Chance level (0.99) and smallest gradeable effect (minor) per distance and size."""
    import numpy as np

    from lifecycle.drift import noise
    from lifecycle.drift.calibration import CAT3, CAT18
    from lifecycle.drift.severity import EFFECT_THRESHOLDS

    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, n_ref)
    atoms = noise.numeric_atoms(
        np.quantile(ref, noise.atom_quantile_points(), method="inverted_cdf")
    )
    cat3 = noise.categorical_atoms({str(i): round(p * n_ref) for i, p in enumerate(CAT3)})
    cat18 = noise.categorical_atoms({str(i): round(p * n_ref) for i, p in enumerate(CAT18)})
    print("\nchance level -> smallest effect graded minor (normal feature; JS of category mixes)")
    for n in sizes:
        row = []
        for label, a, method, kw in (
            ("W/sd", atoms, "wasserstein", {"scale": float(ref.std(ddof=1))}),
            ("KS", atoms, "ks", {}),
            ("JS 3 cat", cat3, "jensenshannon", {}),
            ("JS 18 cat", cat18, "jensenshannon", {}),
        ):
            c = noise.chance_level(a, method, n_ref, n, **kw)
            d = noise.detectable(EFFECT_THRESHOLDS[method][0], c, method)
            row.append(f"{label} {c:.3f} -> {d:.3f}")
        auc = noise.auc_chance_level(min(n_ref, 1000), min(n, 1000))
        print(f"  n={n:>6,}: " + "; ".join(row) + f"; domain AUC {auc:.3f}", flush=True)


if __name__ == "__main__":
    main()
