"""Are two databases' monitoring results the same? (every monitor_results column but computed_at)

    python bench/compare_results.py A.duckdb B.duckdb

For checking that a speed-up leaves the stored results unchanged: run a bench on the old
code and on the new one, then compare their databases. Numbers must match exactly (doubles
bit for bit, `details` as stored JSON text). Prints the row counts and up to 10 rows found on
one side only; exit status 0 when identical, 1 otherwise.
"""

from __future__ import annotations

import sys

import duckdb

COLUMNS = (
    "model_name, model_version, variant, grain, window_start, window_end, reference_kind, "
    "check_name, subject, layer, method, statistic, p_value, p_adjusted, effect_size, "
    "threshold, severity, response, n_reference, n_current, status, "
    "CAST(details AS VARCHAR) AS details, input_version"
)


def only_in(con, first: str, second: str) -> list[tuple]:
    return con.execute(
        f"SELECT {COLUMNS} FROM {first}.monitor_results EXCEPT ALL "
        f"SELECT {COLUMNS} FROM {second}.monitor_results ORDER BY ALL LIMIT 10"
    ).fetchall()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    con = duckdb.connect()
    for alias, path in zip(("a", "b"), sys.argv[1:], strict=True):
        con.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [path])
    counts = [con.execute(f"SELECT count(*) FROM {s}.monitor_results").fetchall()[0][0]
              for s in ("a", "b")]  # fmt: skip
    print(f"rows: {counts[0]:,} in A, {counts[1]:,} in B")
    differ = False
    for first, second in (("a", "b"), ("b", "a")):
        rows = only_in(con, first, second)
        for row in rows:
            print(f"only in {first.upper()}: {row}")
        differ |= bool(rows)
    print("different" if differ else "identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
