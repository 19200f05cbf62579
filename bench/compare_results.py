"""Are two databases' monitoring results the same? (every monitor_results column but computed_at)

    python bench/compare_results.py A.duckdb B.duckdb [--ignore COLUMN ...]

For checking that a speed-up leaves the stored results unchanged: run a bench on the old
code and on the new one, then compare their databases. Numbers must match exactly (doubles
bit for bit, `details` as stored JSON text). `--ignore input_version` compares across an
ENGINE_VERSION bump (every fingerprint changes with it). Prints the row counts, how many rows
of each check differ, and up to 5 differing rows each way; exit status 0 when identical.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

COLUMNS = [
    "model_name",
    "model_version",
    "variant",
    "grain",
    "window_start",
    "window_end",
    "reference_kind",
    "check_name",
    "subject",
    "layer",
    "method",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "threshold",
    "severity",
    "response",
    "n_reference",
    "n_current",
    "status",
    "details",
    "input_version",
]


def only_in(con, first: str, second: str, columns: list[str]) -> list[tuple]:
    select = ", ".join("CAST(details AS VARCHAR)" if c == "details" else c for c in columns)
    return con.execute(
        f"SELECT {select} FROM {first}.monitor_results EXCEPT ALL "
        f"SELECT {select} FROM {second}.monitor_results ORDER BY ALL"
    ).fetchall()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--ignore", nargs="*", default=[], choices=COLUMNS)
    args = parser.parse_args()
    columns = [c for c in COLUMNS if c not in args.ignore]
    con = duckdb.connect()
    for alias, path in (("a", args.a), ("b", args.b)):
        con.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [path])
    counts = [con.execute(f"SELECT count(*) FROM {s}.monitor_results").fetchall()[0][0]
              for s in ("a", "b")]  # fmt: skip
    print(f"rows: {counts[0]:,} in A, {counts[1]:,} in B")
    differ = False
    check = columns.index("check_name")
    for first, second in (("a", "b"), ("b", "a")):
        rows = only_in(con, first, second, columns)
        by_check: dict[str, int] = {}
        for row in rows:
            by_check[row[check]] = by_check.get(row[check], 0) + 1
        if rows:
            print(f"only in {first.upper()}: {len(rows)} row(s), by check {by_check}")
        for row in rows[:5]:
            print(f"  {row}")
        differ |= bool(rows)
    print("different" if differ else "identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
