"""Stage a batch (DataFrame, Parquet or CSV) in DuckDB and coerce its columns to typed SQL.

Shared by log ingestion and reference-data registration. The batch lands in a temporary
table of the caller's cursor with a `_row` column (1 = first data row), and typed
expressions are checked with TRY_CAST so an error can name the column and the first rows
whose values do not convert.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
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


DATA_SUFFIXES = {".parquet": "Parquet", ".pq": "Parquet", ".csv": "CSV"}


def is_ignored(name: str) -> bool:
    """A file or folder name that tools use while writing or for bookkeeping (Spark's
    `_SUCCESS`, `_temporary/`, `.part-0.crc`, `x.parquet.tmp`): never part of a batch."""
    return name.startswith((".", "_")) or name.endswith((".tmp", ".crc"))


def batch_files(pattern: str | os.PathLike) -> list[Path]:
    """The files a FILE argument names: the file itself; every Parquet/CSV file under a
    directory (sub-folders included); or the Parquet/CSV files a glob matches (`**` spans
    folders). Names starting with '.' or '_' or ending .tmp/.crc are left out. Sorted by path,
    which is the order of their rows. ValueError when a directory or glob matches nothing."""
    path = Path(pattern)
    if path.is_file() or (not path.exists() and not glob.has_magic(str(pattern))):
        return [path]  # a missing file is named by stage()
    if path.is_dir():
        candidates = [
            p
            for p in path.rglob("*")
            if not any(is_ignored(part) for part in p.relative_to(path).parts)
        ]
    else:
        base = _literal_prefix(path)
        candidates = [
            Path(p)
            for p in glob.glob(str(pattern), recursive=True)
            if not any(is_ignored(part) for part in Path(p).relative_to(base).parts)
        ]
    files = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not files:
        others = sum(1 for p in candidates if p.is_file())
        raise ValueError(
            f"no Parquet (.parquet, .pq) or CSV (.csv) files match {pattern}"
            + (f" ({others} other file(s) left out)" if others else "")
        )
    return files


def files_name(files: Sequence[str | os.PathLike]) -> str:
    """How a batch of files is named in reports: the file, or "N files in FOLDER"."""
    paths = [Path(p).resolve() for p in files]
    if len(paths) == 1:
        return str(paths[0])
    return f"{len(paths)} files in {os.path.commonpath(paths)}"


def _literal_prefix(pattern: Path) -> Path:
    """The folders of a glob before its first wildcard (`logs/2026/*/x*.csv` -> logs/2026)."""
    parts = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path()


def stage(
    cur: duckdb.DuckDBPyConnection,
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    table: str,
) -> Staged:
    """Load `source` into TEMP table `table` with a 1-based `_row` column. A list of files
    (same format, same columns) is one batch, its rows numbered across the files in order."""
    params: dict = {}
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
        cur.register("_stage_src", frame)
        scan = "_stage_src"
    else:
        scan, params = file_scan(cur, source)
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


def file_scan(
    cur: duckdb.DuckDBPyConnection, source: str | os.PathLike | Sequence[str | os.PathLike]
) -> tuple[str, dict]:
    """(table function reading the file or files, its parameters), after checking that each
    file exists, is not empty, has a supported type, all share one format and, for several
    files, the same column names (in any order: columns are matched by name).

    Folder names such as `date=2026-11-30/` are not read as columns (hive partitioning off):
    a batch's columns are the files' own, so a partition key the kind needs must be written
    into the files, and a folder can never add or overwrite a column."""
    paths = [Path(source)] if isinstance(source, (str, os.PathLike)) else [Path(p) for p in source]
    if not paths:
        raise ValueError("no files to read")
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty")
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(
                f"{path}: unsupported file type {path.suffix.lower()!r}; use .parquet or .csv"
            )
    formats = {DATA_SUFFIXES[p.suffix.lower()] for p in paths}
    if len(formats) > 1:
        counts = ", ".join(
            f"{sum(DATA_SUFFIXES[p.suffix.lower()] == f for p in paths)} {f}"
            for f in sorted(formats)
        )
        raise ValueError(
            f"the files mix Parquet and CSV ({counts}); a batch is one format: load them "
            "as separate batches"
        )
    if formats == {"CSV"}:
        for path in paths:
            problem = _csv_header_problem(path)
            if problem:
                raise ValueError(f"{path}: {problem}")
        # comma-separated, header on the first line, always: a sniffed dialect turns a
        # ';' file into one column, or skips "inconsistent" leading rows without a word
        reader = (
            "read_csv($path, header = true, all_varchar = true, delim = ',', quote = '\"', "
            "skip = 0, hive_partitioning = false"
        )
    else:
        reader = "read_parquet($path, hive_partitioning = false"
    if len(paths) == 1:
        return reader + ")", {"path": str(paths[0])}
    _check_same_columns(cur, reader + ")", paths)
    return reader + ", union_by_name = true)", {"path": [str(p) for p in paths]}


def _check_same_columns(cur, reader: str, paths: list[Path]) -> None:
    """Refuse files whose column names differ from the first file's: a column missing from
    some files would be stored as empty for their rows without a word."""
    first: list[str] | None = None
    for path in paths:
        try:
            names = [
                r[0]
                for r in cur.execute(
                    f"DESCRIBE SELECT * FROM {reader}", {"path": str(path)}
                ).fetchall()
            ]
        except duckdb.Error as exc:
            raise ValueError(f"cannot read {path}: {_reason(exc)}") from exc
        if first is None:
            first = names
            continue
        missing = [n for n in first if n not in names]
        extra = [n for n in names if n not in first]
        if missing or extra:
            what = "; ".join(
                part
                for part in (
                    f"lacks {', '.join(missing)}" if missing else "",
                    f"has {', '.join(extra)} in addition" if extra else "",
                )
                if part
            )
            raise ValueError(
                f"{path} {what} compared with {paths[0]}; the files of one batch must have "
                "the same columns (in any order)"
            )


def _name(source) -> str:
    if isinstance(source, pd.DataFrame):
        return "the data frame"
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    files = list(source)
    return str(files[0]) if len(files) == 1 else f"the {len(files)} files (first {files[0]})"


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
