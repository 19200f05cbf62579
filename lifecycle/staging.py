"""Stage a batch (DataFrame, Parquet or CSV) in DuckDB and coerce its columns to typed SQL.

Shared by log ingestion and reference-data registration. The batch lands in a temporary
table of the caller's cursor with a `_row` column (1 = first data row), and typed
expressions are checked with TRY_CAST so an error can name the column and the first rows
whose values do not convert.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from lifecycle.store import quote_ident

SAMPLE = 5
PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")  # a DataFrame's index, written by to_parquet
NUMERIC_SOURCE = ("DOUBLE", "FLOAT", "DECIMAL", "REAL")
# a time of day followed by a UTC offset; a bare date such as 2026-01-01 ends in "-01" but has
# no offset, so the time part is required
TIMESTAMP_OFFSET_RE = (
    r"\d:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?|\s(UTC|GMT|[A-Za-z_]+/[A-Za-z_/+-]+))$"
)


@dataclass
class Staged:
    table: str
    types: dict[str, str]  # column -> DuckDB type, as staged
    rows: int

    def column(self, name: str) -> str | None:
        """The staged column `name` refers to: the same name, else the one differing only in
        case (SQL resolves names case-insensitively), else None."""
        if name in self.types:
            return name
        return next((c for c in self.types if c.lower() == name.lower()), None)

    def extra_columns(self, expected) -> list[str]:
        """Staged columns that are none of `expected` (compared as SQL does, ignoring case),
        besides the index columns pandas writes to Parquet (`__index_level_0__`)."""
        known = {e.lower() for e in expected}
        return sorted(c for c in self.types if c.lower() not in known and not PANDAS_INDEX.match(c))

    def use_names(self, cur: duckdb.DuckDBPyConnection, expected) -> None:
        """Rename staged columns that differ from an `expected` name only in case to it, so
        `TS` or `Prediction_ID` in a file is read as `ts` and `prediction_id`."""
        for name in expected:
            found = self.column(name)
            if found is not None and found != name:
                cur.execute(
                    f"ALTER TABLE {self.table} RENAME COLUMN {quote_ident(found)} "
                    f"TO {quote_ident(name)}"
                )
                self.types = {(name if c == found else c): t for c, t in self.types.items()}


def stage(
    cur: duckdb.DuckDBPyConnection, source: pd.DataFrame | str | os.PathLike, table: str
) -> Staged:
    """Load `source` into TEMP table `table` with a 1-based `_row` column."""
    params: dict = {}
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
        cur.register("_stage_src", frame)
        scan = "_stage_src"
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty")
        suffix = path.suffix.lower()
        params["path"] = str(path)
        if suffix in (".parquet", ".pq"):
            scan = "read_parquet($path)"
        elif suffix == ".csv":
            problem = _csv_header_problem(path)
            if problem:
                raise ValueError(f"{path}: {problem}")
            # comma-separated, header on the first line, always: a sniffed dialect turns a
            # ';' file into one column, or skips "inconsistent" leading rows without a word
            scan = (
                "read_csv($path, header = true, all_varchar = true, delim = ',', "
                "quote = '\"', skip = 0)"
            )
        else:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; use .parquet or .csv")
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT row_number() OVER () AS _row, * FROM {scan}",
            params,
        )
    except duckdb.Error as exc:
        raise ValueError(f"cannot read {_name(source)}: {_reason(exc)}") from exc
    finally:
        if isinstance(source, pd.DataFrame):
            cur.unregister("_stage_src")
    described = cur.execute(f"DESCRIBE {table}").fetchall()
    types = {r[0]: r[1] for r in described if r[0] != "_row"}
    rows = cur.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    _check_shape(source, types)
    return Staged(table=table, types=types, rows=int(rows))


def _name(source) -> str:
    return "the data frame" if isinstance(source, pd.DataFrame) else str(source)


def _reason(exc: duckdb.Error) -> str:
    """DuckDB's first line without its class prefix ("Invalid Input Error: ...")."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "sniffing file" in line:
        return (
            "its rows do not all have as many comma-separated fields as the header "
            "(check the delimiter, quotes and ragged rows)"
        )
    return re.sub(r"^[A-Za-z ]*(Error|Exception): ", "", line)


def _csv_header_problem(path: Path) -> str | None:
    """A CSV whose first line is not UTF-8, or is delimited by something other than ','."""
    with open(path, "rb") as fh:
        head = fh.readline(1 << 16)
    try:
        line = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "not UTF-8 text; a CSV batch is UTF-8 text, comma-separated, with a header line"
    if "\x00" in line:
        return "binary data (NUL bytes); a CSV batch is UTF-8 text with a header line"
    for sep, shown in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if line.count(sep) > line.count(","):
            return f"the header looks delimited by {shown}; CSV batches must be comma-separated"
    return None


NESTED = re.compile(r"(\[\d*\]$|^(STRUCT|MAP|UNION)\()")


def _check_shape(source, types: dict[str, str]) -> None:
    """Refuse nested columns (a list id would be stored as the text "[a]") and CSV files
    delimited by something other than commas (read as one column)."""
    nested = [f"`{c}` ({t})" for c, t in types.items() if NESTED.search(t)]
    if nested:
        raise ValueError(
            f"{_name(source)}: column(s) {', '.join(nested)} hold lists or structures; "
            "a batch holds one plain value (text, number or timestamp) per cell"
        )
    if len(types) == 1:
        (header,) = types
        for sep in (";", "\t", "|"):
            if sep in header:
                shown = "tab" if sep == "\t" else repr(sep)
                raise ValueError(
                    f"{_name(source)}: the header is one column {header!r}; the file looks "
                    f"delimited by {shown}. CSV batches must be comma-separated"
                )


def double_expr(column: str) -> str:
    """The column as DOUBLE with NaN and +/-inf turned into NULL."""
    c = f"TRY_CAST({quote_ident(column)} AS DOUBLE)"
    return f"CASE WHEN isfinite({c}) THEN {c} END"


def text_expr(column: str, source_type: str) -> str:
    """The column as VARCHAR; integral floats print as integers (1.0 -> '1')."""
    c = quote_ident(column)
    if source_type.startswith(NUMERIC_SOURCE):
        return (
            f"CASE WHEN isfinite({c}) AND {c} = floor({c}) "
            f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) "
            f"WHEN isfinite({c}) THEN CAST({c} AS VARCHAR) END"
        )
    return f"NULLIF(trim(CAST({c} AS VARCHAR)), '')"


LABEL_RULE = (
    "a label must be one of the classes; a number counts as a class when it equals a whole-"
    "number class (1.0 -> '1'), true/false only when the classes are 0/1 or false/true"
)


def bool_classes(classes: list[str]) -> tuple[str, str] | None:
    """(class for true, class for false) when the classes are exactly {0, 1} or {false, true}
    (any case), else None: only then is a boolean label unambiguous."""
    by_lower = {c.lower(): c for c in classes}
    if len(classes) != 2 or len(by_lower) != 2:
        return None
    for true, false in (("1", "0"), ("true", "false")):
        if set(by_lower) == {true, false}:
            return by_lower[true], by_lower[false]
    return None


def label_expr(column: str, source_type: str, classes: list[str] | None) -> tuple[str, dict]:
    """The column as a class name, and the named parameters the SQL binds.

    A class written as a number (1.0 for '1', what pandas makes of an integer column with
    gaps) or as a boolean (True for '1' or 'true' when the classes are 0/1 or false/true)
    becomes that class; anything else stays as written and is refused by the class check."""
    text = text_expr(column, source_type)
    if not classes:
        return text, {}
    pair = bool_classes(classes)
    c = quote_ident(column)
    if source_type == "BOOLEAN":
        if pair is None:
            return text, {}
        return (
            f"CASE WHEN {c} THEN $label_true WHEN NOT {c} THEN $label_false END",
            {"label_true": pair[0], "label_false": pair[1]},
        )
    if source_type != "VARCHAR":
        return text, {}  # integral numbers already print as whole numbers
    number = f"TRY_CAST({text} AS DOUBLE)"
    whole = f"CAST(TRY_CAST({number} AS BIGINT) AS VARCHAR)"
    cases = [
        f"WHEN list_contains($label_classes::VARCHAR[], {text}) THEN {text}",
        f"WHEN isfinite({number}) AND {number} = floor({number}) "
        f"AND list_contains($label_classes::VARCHAR[], {whole}) THEN {whole}",
    ]
    params: dict = {"label_classes": list(classes)}
    if pair is not None:
        cases.append(f"WHEN lower({text}) = 'true' THEN $label_true")
        cases.append(f"WHEN lower({text}) = 'false' THEN $label_false")
        params.update(label_true=pair[0], label_false=pair[1])
    return f"CASE {' '.join(cases)} ELSE {text} END", params


def timestamp_expr(column: str) -> str:
    c = quote_ident(column)
    return f"TRY_CAST({c} AS TIMESTAMPTZ)"


def bad_numeric_rows(cur, staged: Staged, column: str) -> tuple[int, list]:
    """Rows whose value is present but is not a number (NaN/inf count as numbers)."""
    c = quote_ident(column)
    cond = f"{c} IS NOT NULL AND TRY_CAST({c} AS DOUBLE) IS NULL"
    return offending(cur, staged, column, cond)


def nonfinite_count(cur, staged: Staged, column: str) -> int:
    c = f"TRY_CAST({quote_ident(column)} AS DOUBLE)"
    return int(
        cur.execute(
            f"SELECT count(*) FROM {staged.table} WHERE {c} IS NOT NULL AND NOT isfinite({c})"
        ).fetchall()[0][0]
    )


TZ_AWARE_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS", "TIMESTAMPTZ_MS", "TIMESTAMPTZ_S")
NAIVE_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")


def timestamp_problems(
    cur, staged: Staged, column: str, assume_utc: bool
) -> tuple[list[str], list[str]]:
    """(problems, notes) of a timestamp column. Any precision is accepted; times with a zone or
    offset are converted to UTC; times without one are taken as UTC, which a note says (unless
    --assume-utc said so already). Values that are not timestamps are problems."""
    stype = staged.types[column]
    c = quote_ident(column)
    naive_note = (
        f"column `{column}`: {{n}} timestamp(s) without a time zone taken as UTC; if they are "
        "local times, write them with their UTC offset (e.g. +02:00) or time zone"
    )
    if stype.startswith(TZ_AWARE_TYPES):
        return [], []
    if stype in NAIVE_TYPES:
        count = 0 if assume_utc else _count(cur, staged, f"{c} IS NOT NULL")
        return [], [naive_note.format(n=count)] if count else []
    if stype != "VARCHAR":
        return [
            f"column `{column}` has type {stype}; expected timestamps (a timestamp type of any "
            "precision, or ISO 8601 text such as 2026-01-31T12:00:00Z)"
        ], []
    problems, notes = [], []
    count, sample = offending(
        cur, staged, column, f"{c} IS NOT NULL AND TRY_CAST({c} AS TIMESTAMPTZ) IS NULL"
    )
    if count:
        problems.append(
            f"column `{column}`: {count} value(s) are not timestamps, first rows: "
            + fmt_rows(sample)
            + "; write ISO 8601 times such as 2026-01-31T12:00:00Z or 2026-01-31 12:00:00+02:00"
        )
    if not assume_utc:
        naive = _count(
            cur,
            staged,
            f"{c} IS NOT NULL AND TRY_CAST({c} AS TIMESTAMPTZ) IS NOT NULL "
            f"AND NOT regexp_matches(trim({c}), $offset_re)",
            {"offset_re": TIMESTAMP_OFFSET_RE},
        )
        if naive:
            notes.append(naive_note.format(n=naive))
    return problems, notes


def _count(cur, staged: Staged, condition: str, params: dict | None = None) -> int:
    return int(
        cur.execute(
            f"SELECT count(*) FROM {staged.table} WHERE {condition}", params or {}
        ).fetchall()[0][0]
    )


def offending(
    cur, staged: Staged, column: str, condition: str, params: dict | None = None
) -> tuple[int, list]:
    """(count, first rows as (row, value)) of rows matching `condition` (its values bound
    as the named `params`)."""
    c = quote_ident(column)
    total = cur.execute(
        f"SELECT count(*) FROM {staged.table} WHERE {condition}", params or {}
    ).fetchall()[0][0]
    if not total:
        return 0, []
    sample = cur.execute(
        f"SELECT _row, CAST({c} AS VARCHAR) FROM {staged.table} WHERE {condition} "
        f"ORDER BY _row LIMIT {SAMPLE}",
        params or {},
    ).fetchall()
    return int(total), sample


def fmt_rows(sample: list) -> str:
    return ", ".join(f"row {r} ({v!r})" for r, v in sample)
