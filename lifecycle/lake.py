"""Logs read in place: a model's predictions, features, labels or business events kept in a
lake (a Parquet dataset or a Delta table) and read through DuckDB views, never copied.

A spec declares them (`[sources.<kind>]`, docs/lake.md):

    [sources.predictions]
    format = "parquet"                  # or "delta"
    path = "lake/churn/predictions"     # directory (every *.parquet below), glob or file
    timezone = "UTC"                    # zone of naive timestamps
    [sources.predictions.columns]       # our column = lake column (others: the same name)
    prediction_id = "request_id"
    ts = "event_time"

How the rest of the code sees them: `predictions`, `labels` and `business_events` are views,
the rows stored by `ingest` (tables `logged_*`) UNION ALL each external model's typed view,
and an external model's `features__<model>` is a view. So every query, page and check reads
lake rows exactly like ingested ones. Each source has one typed view (`lake__<model>__<kind>`)
that casts the lake's columns to ours with TRY_CAST and keeps, per row, the list of columns
whose value did not parse (`_bad`): a bad value becomes NULL and a data-quality finding
(`source_read`, lifecycle.monitor), never a refusal. Rows without a usable id or timestamp
cannot join a window; `source_status` counts them.

Paths are values from specs, so they never reach SQL text: the views read
`getvariable('lake')['lake__<model>__<kind>']`, which `bind` sets on every cursor the Store
hands out (DuckDB cannot prepare DDL). A Parquet source binds its glob, so DuckDB lists the files
at each query and new partitions are seen at once; a Delta source binds the file list of
the table's current version (deltalake), refreshed by `Store.refresh_lake` (every monitor
run and every app poll). A source with no files binds an empty file of its captured schema,
so one missing lake never breaks the views of the others.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from lifecycle.store import IDENT, feature_column, feature_table, quote_ident

KINDS = ("predictions", "features", "labels", "business")
FORMATS = ("parquet", "delta")
TS_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# our column -> kind of value, per log kind (features: the spec's features, numeric/categorical)
COLUMNS: dict[str, dict[str, str]] = {
    "predictions": {
        "prediction_id": "text",
        "request_id": "text",
        "model_version": "text",
        "ts": "ts",
        "variant": "text",
        "prediction": "double",
        "predicted_label": "text",
        "latency_ms": "double",
        "status": "text",
        "segment": "text",
    },
    "labels": {"prediction_id": "text", "actual": "actual", "labeled_at": "ts"},
    "business": {"prediction_id": "text", "ts": "ts", "kpi": "text", "value": "double"},
}
REQUIRED = {
    "predictions": ("prediction_id", "model_version", "ts"),
    "labels": ("prediction_id", "actual", "labeled_at"),
    "business": ("ts", "kpi", "value"),
    "features": ("prediction_id",),
}
# Values a column takes when the lake has no such column.
DEFAULTS = {"variant": "'production'", "status": "'ok'"}
# The union views and the stored tables behind them.
UNION_VIEWS = {
    "predictions": "logged_predictions",
    "labels": "logged_labels",
    "business": "logged_business_events",
}
UNION_NAMES = {"predictions": "predictions", "labels": "labels", "business": "business_events"}
UNION_COLUMNS = {
    "predictions": ("prediction_id", "request_id", "model_name", "model_version", "ts",
                    "variant", "prediction", "predicted_label", "latency_ms", "status",
                    "segment", "batch_id"),
    "labels": ("prediction_id", "model_name", "actual_value", "actual_label", "labeled_at",
               "batch_id"),
    "business": ("model_name", "prediction_id", "ts", "kpi", "value", "batch_id"),
}  # fmt: skip
SIMPLE_TYPE = re.compile(r"^[A-Z][A-Z0-9_ ]*(\(\d+(, ?\d+)?\))?(\[\])?$")
SOURCE_KEYS = {"format", "path", "columns", "timezone", "ts_unit"}
VARIABLE = re.compile(r"^(?P<source>lake__[a-z][a-z0-9_]{0,47}__"
                      r"(predictions|features|labels|business))(__(?P<part>tz|true|false|positive))?$")  # fmt: skip


class LakeError(ValueError):
    """A source that cannot be read as declared; the message says which and why."""


# -- spec ---------------------------------------------------------------------------------


def parse_sources(raw: Any, base_dir: Path, feature_names: list[str]) -> tuple[dict, list[str]]:
    """The spec's `[sources]` table as plain data (absolute paths), and its problems."""
    problems: list[str] = []
    if raw is None:
        return {}, problems
    if not isinstance(raw, dict):
        return {}, ["`sources` must be a table of [sources.<kind>] tables"]
    out: dict[str, dict] = {}
    for kind, item in raw.items():
        where = f"sources.{kind}"
        if kind not in KINDS:
            problems.append(f"`{where}`: unknown log kind (use {', '.join(KINDS)})")
            continue
        if not isinstance(item, dict):
            problems.append(f"`{where}` must be a table")
            continue
        for key in sorted(set(item) - SOURCE_KEYS):
            problems.append(f"`{where}.{key}`: unknown key ({', '.join(sorted(SOURCE_KEYS))})")
        parsed = _parse_source(kind, item, where, base_dir, feature_names, problems)
        if parsed is not None:
            out[kind] = parsed
    if "features" in out and "predictions" not in out:
        problems.append("`sources.features` needs `sources.predictions` (features join them)")
    return out, problems


def _parse_source(kind, item, where, base_dir, feature_names, problems) -> dict | None:
    fmt = item.get("format", "parquet")
    if fmt not in FORMATS:
        problems.append(f"`{where}.format` is {fmt!r}; use {' or '.join(FORMATS)}")
    path = item.get("path")
    if not isinstance(path, str) or not path.strip():
        problems.append(f"`{where}.path` is missing: the dataset's directory, glob or file")
        return None
    location = Path(path) if Path(path).is_absolute() else base_dir / path
    tz = item.get("timezone", "UTC")
    if not isinstance(tz, str) or not tz:
        problems.append(f"`{where}.timezone` must be a time zone name such as 'UTC'")
    unit = item.get("ts_unit")
    if unit is not None and unit not in TS_UNITS:
        problems.append(f"`{where}.ts_unit` is {unit!r}; use one of {', '.join(TS_UNITS)}")
    columns = item.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) and v for v in columns.values()):
        problems.append(f"`{where}.columns` must map our column names to lake column names")
        columns = {}
    known = set(feature_names) | {"prediction_id"} if kind == "features" else set(COLUMNS[kind])
    for ours in sorted(set(columns) - known):
        what = "a feature of this spec" if kind == "features" else "a column of this log kind"
        problems.append(f"`{where}.columns.{ours}` is not {what} ({', '.join(sorted(known))})")
    return {
        "format": fmt,
        "path": str(location.resolve()),
        "timezone": tz,
        "ts_unit": unit,
        "columns": dict(columns),
    }


# -- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One external log of one model, as its latest spec declares it."""

    model: str
    kind: str
    format: str
    path: str
    columns: dict[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    ts_unit: str | None = None
    schema: dict[str, str] = field(default_factory=dict)  # lake column -> DuckDB type

    @property
    def variable(self) -> str:
        """Name of the DuckDB variable holding its files, and of its typed view."""
        return f"lake__{self.model}__{self.kind}"

    def lake_column(self, ours: str) -> str:
        return self.columns.get(ours, ours)

    @classmethod
    def from_row(cls, model: str, kind: str, settings: str) -> Source:
        data = json.loads(settings)
        return cls(model, kind, data["format"], data["path"], data.get("columns", {}),
                   data.get("timezone", "UTC"), data.get("ts_unit"), data.get("schema", {}))  # fmt: skip

    def settings(self) -> str:
        return json.dumps(
            {"format": self.format, "path": self.path, "columns": self.columns,
             "timezone": self.timezone, "ts_unit": self.ts_unit, "schema": self.schema},
            sort_keys=True,
        )  # fmt: skip


def files(source: Source) -> str | list[str] | None:
    """What DuckDB reads for the source now: a glob (Parquet), the current version's file
    list (Delta), or None when there is nothing to read yet."""
    if source.format == "delta":
        return _delta_files(source.path)
    path = source.path
    if any(c in path for c in "*?["):
        pattern = path
    elif os.path.isdir(path):
        pattern = os.path.join(path, "**", "*.parquet")
    else:
        pattern = path
    return pattern if glob.glob(pattern, recursive=True) else None


def file_states(value: str | list[str] | None) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of the files `value` (a glob or a list) names now."""
    if value is None:
        return {}
    names = value if isinstance(value, list) else glob.glob(value, recursive=True)
    out = {}
    for name in sorted(names):
        try:
            info = os.stat(name)
        except OSError:
            continue
        out[name] = (info.st_size, info.st_mtime_ns)
    return out


def stamp(states: dict[str, tuple[int, int]]) -> int:
    """A number that changes when the source's files change (added, rewritten, removed):
    pages key their caches on it (Store.data_version)."""
    if not states:
        return 0
    state = "\n".join(f"{name}|{size}|{mtime}" for name, (size, mtime) in sorted(states.items()))
    return int.from_bytes(hashlib.sha256(state.encode()).digest()[:6], "big")


def _delta_files(path: str) -> list[str] | None:
    try:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError
    except ImportError as exc:  # an optional extra: docs/lake.md
        raise LakeError(
            f"{path} is a Delta table, which needs the deltalake package "
            "(pip install -r requirements-lake.txt)"
        ) from exc
    try:
        uris = DeltaTable(path).file_uris()
    except TableNotFoundError:
        return None
    return [u.removeprefix("file://") for u in uris] or None


def read_schema(cur, value: str | list[str]) -> dict[str, str]:
    """Lake column -> DuckDB type, over every file (columns a file lacks are NULL there)."""
    rows = cur.execute(
        "DESCRIBE SELECT * FROM read_parquet($f, hive_partitioning = true, union_by_name = true)",
        {"f": value},
    ).fetchall()
    return {name: dtype for name, dtype, *_ in rows}


def schema_problems(source: Source, schema: dict[str, str], features: dict[str, str]) -> list:
    """Required or mapped columns the lake does not have."""
    wanted = list(REQUIRED[source.kind])
    wanted += list(source.columns)
    if source.kind == "features":
        wanted += list(features)
    missing = [
        f"{ours} (lake column {source.lake_column(ours)!r})"
        for ours in dict.fromkeys(wanted)
        if source.lake_column(ours) not in schema
    ]
    if not missing:
        return []
    return [
        f"source {source.kind} of {source.model} at {source.path}: column(s) missing: "
        f"{', '.join(missing)} (the files have {', '.join(sorted(schema)) or 'no columns'})"
    ]


# -- typed views --------------------------------------------------------------------------


def _ts_expr(raw: str, dtype: str, source: Source) -> str:
    """A lake timestamp as TIMESTAMPTZ: naive ones are in the source's time zone."""
    tz = variable(f"{source.variable}__tz")
    # TRY_CAST throughout: a file written later with another type (text instead of a
    # timestamp) widens the column for every file, and a value that does not parse is a
    # finding, never a failed query
    if "WITH TIME ZONE" in dtype or dtype.startswith("TIMESTAMPTZ"):
        return f"TRY_CAST({raw} AS TIMESTAMPTZ)"
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        return f"timezone({tz}, TRY_CAST({raw} AS TIMESTAMP))"
    if dtype in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DOUBLE", "FLOAT"):
        divisor = TS_UNITS[source.ts_unit or "s"]
        return f"to_timestamp(TRY_CAST({raw} AS DOUBLE) / {divisor})"
    # text: an ISO time with an offset is exact; without one it is in the source's zone
    text = f"CAST({raw} AS VARCHAR)"
    return (
        f"coalesce(TRY_CAST(CASE WHEN regexp_matches({text}, '([+-]\\d\\d:?\\d\\d|Z)$') "
        f"THEN {text} END AS TIMESTAMPTZ), "
        f"timezone({tz}, TRY_CAST({text} AS TIMESTAMP)))"
    )


def _typed(kind: str, raw: str, dtype: str, source: Source) -> str:
    if kind == "ts":
        return _ts_expr(raw, dtype, source)
    if kind == "double":
        return f"TRY_CAST({raw} AS DOUBLE)"
    if dtype in ("DOUBLE", "FLOAT") and kind in ("text", "label"):
        # a class pandas wrote as 1.0 is the class '1'
        return (
            f"CASE WHEN {raw} = floor({raw}) THEN CAST(CAST({raw} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({raw} AS VARCHAR) END"
        )
    if dtype == "BOOLEAN" and kind == "label":
        return (
            f"CASE WHEN {raw} THEN {variable(source.variable + '__true')} "
            f"WHEN NOT {raw} THEN {variable(source.variable + '__false')} END"
        )
    return f"CAST({raw} AS VARCHAR)"


def typed_columns(source: Source, task: str, features: dict[str, str]) -> list[tuple]:
    """(our column, typed SQL, raw SQL or None) of the source's view, in view order."""
    if source.kind == "features":
        wanted = {"prediction_id": "text"}
        wanted |= {f: ("double" if t == "numeric" else "text") for f, t in features.items()}
    else:
        wanted = COLUMNS[source.kind]
    out = []
    for ours, kind in wanted.items():
        lake = source.lake_column(ours)
        if lake not in source.schema:
            default = DEFAULTS.get(ours, "NULL")
            if ours == "request_id":
                default = (
                    "CAST(raw." + quote_ident(source.lake_column("prediction_id")) + " AS VARCHAR)"
                )
            out.append((ours, default, None))
            continue
        raw = f"raw.{quote_ident(lake)}"
        dtype = source.schema[lake]
        if kind == "actual":
            if task == "regression":
                out.append(("actual_value", _typed("double", raw, dtype, source), raw))
                out.append(("actual_label", "NULL::VARCHAR", None))
            else:
                label = _typed("label", raw, dtype, source)
                value = "NULL::DOUBLE"
                if task == "binary_classification":  # as ingest stores it: 1.0 = positive
                    positive = variable(f"{source.variable}__positive")
                    value = f"CASE WHEN ({label}) = {positive} THEN 1.0 WHEN ({label}) IS NOT NULL THEN 0.0 END"
                out.append(("actual_value", value, None))
                out.append(("actual_label", label, raw))
            continue
        out.append((ours, _typed(kind, raw, dtype, source), raw))
    return out


def raw_columns(source: Source, features: dict[str, str]) -> list[str]:
    """The lake columns the source's typed view reads (in its schema order): what an
    engine that reads the lake itself hands over, with `_file` (lifecycle.engines)."""
    ours = ["prediction_id", *features] if source.kind == "features" else COLUMNS[source.kind]
    mapped = {source.lake_column(o) for o in ours}
    return [c for c in source.schema if c in mapped]


def view_sql(
    source: Source,
    task: str,
    features: dict[str, str],
    raw_rows: str | None = None,
    name: str | None = None,
) -> str:
    """CREATE VIEW of the source's typed rows, with `_bad` (columns that did not parse) and
    `batch_id` (a number per file, so a changed file changes the window's fingerprint).

    `raw_rows` (a table of the lake's own columns plus `_file`) makes it a TEMP view over
    those rows instead of the files: how an engine that read the lake itself (Spark) hands
    a window's raw rows to the same typing (lifecycle.engines); `name` names that view
    (default: the source's view, which it then shadows on the cursor)."""
    cols = typed_columns(source, task, features)
    names = {"features": lambda o: feature_column(o) if o != "prediction_id" else o}
    rename = names.get(source.kind, lambda o: o)
    select = ", ".join(f"{expr} AS {quote_ident(rename(ours))}" for ours, expr, _ in cols)
    # per column: a value was there and did not parse (a STRUCT of flags named by column)
    flags = [(ours, f"({raw} IS NOT NULL AND ({expr}) IS NULL)")
             for ours, expr, raw in cols if raw is not None]  # fmt: skip
    bad = ", ".join(f"{quote_ident(ours)} := {flag}" for ours, flag in flags) or "_none := FALSE"
    any_bad = " OR ".join(flag for _, flag in flags) or "FALSE"
    rows = raw_rows or _read(source)
    return (
        f"CREATE OR REPLACE {'TEMP ' if raw_rows else ''}VIEW "
        f"{quote_ident(name or source.variable)} "
        f"AS SELECT {select}, CAST(hash(raw._file) >> 2 AS BIGINT) AS batch_id, "
        f"raw._file AS _file, struct_pack({bad}) AS _bad, ({any_bad}) AS _any_bad "
        f"FROM {rows} AS raw"
    )


def variable(name: str) -> str:
    """SQL reading one of the lake's values: `lake__<model>__<kind>` (its files) or
    `lake__<model>__<kind>__<part>` (tz, true, false, positive), fields of the one DuckDB
    variable `lake` that every cursor sets (Store.cursor). Names are built from a validated
    model name and fixed words, never from a value."""
    match = VARIABLE.match(name)
    if not match:
        raise ValueError(f"not a lake variable name: {name!r}")
    source, part = match.group("source"), match.group("part") or "files"
    return f"getvariable('lake')['{source}']['{part}']"


def model_literal(model: str) -> str:
    """A model name as a SQL string in a view (DDL takes no parameters); model names are
    validated identifiers (store.IDENT), so no quote can occur."""
    if not IDENT.match(model):
        raise ValueError(f"not a model name: {model!r}")
    return f"'{model}'"


# a lake's prediction belongs to a window only with an id, a version and a variant (and a
# time stamp): rows without are left out of the views and counted as unusable
PREDICTION_KEY = (
    "prediction_id IS NOT NULL AND model_version IS NOT NULL AND variant IS NOT NULL AND "
)


def union_view_sql(kind: str, sources: list[Source], temp: bool = False) -> str:
    """CREATE VIEW predictions/labels/business_events: stored rows and every lake's
    (`temp`: a TEMP view of the given lake sources only, which shadows the database's on
    that cursor: see lifecycle.engines)."""
    cols = UNION_COLUMNS[kind]
    col_list = ", ".join(cols)
    parts = [] if temp else [f"SELECT {col_list} FROM {UNION_VIEWS[kind]}"]
    key = {"predictions": PREDICTION_KEY, "labels": "prediction_id IS NOT NULL AND labeled_at "
           "IS NOT NULL AND ", "business": ""}[kind]  # fmt: skip
    when = {"predictions": "ts", "labels": "labeled_at", "business": "ts"}[kind]
    for s in sources:
        select = ", ".join(
            f"{model_literal(s.model)} AS model_name" if c == "model_name" else c for c in cols
        )
        where = f"{key}{when} IS NOT NULL"
        if kind == "business":
            where += " AND kpi IS NOT NULL AND value IS NOT NULL"
        parts.append(f"SELECT {select} FROM {quote_ident(s.variable)} WHERE {where}")
    if not parts:  # a temp view of no lake: the columns, no rows
        parts = [f"SELECT {col_list} FROM {UNION_VIEWS[kind]} WHERE FALSE"]
    head = f"CREATE OR REPLACE {'TEMP ' if temp else ''}VIEW {UNION_NAMES[kind]} AS "
    return head + " UNION ALL ".join(parts)


def features_view_sql(source: Source, features: dict[str, str], temp: bool = False) -> str:
    cols = ", ".join(
        quote_ident(feature_column(f) if f != "prediction_id" else f)
        for f in ["prediction_id", *features]
    )
    return (
        f"CREATE OR REPLACE {'TEMP ' if temp else ''}VIEW "
        f"{quote_ident(feature_table(source.model))} AS "
        f"SELECT {cols}, batch_id FROM {quote_ident(source.variable)} "
        "WHERE prediction_id IS NOT NULL"
    )


# -- the database's sources ---------------------------------------------------------------


def load_sources(cur, model: str | None = None) -> list[Source]:
    rows = cur.execute(
        "SELECT model_name, kind, settings FROM external_sources "
        "WHERE ? IS NULL OR model_name = ? ORDER BY model_name, kind",
        [model, model],
    ).fetchall()
    return [Source.from_row(m, k, s) for m, k, s in rows]


def external_kinds(cur, model: str) -> dict[str, Source]:
    return {s.kind: s for s in load_sources(cur, model)}


def bindings(cur, db_path: Path | None) -> dict[str, dict[str, Any]]:
    """What every cursor binds for the lake views, per source: its files now (or an empty
    file of its schema when it has none), time zone, boolean and positive classes; and,
    outside the variable, each file's size and mtime and a stamp of them (Store)."""
    out: dict[str, dict[str, Any]] = {}
    for source in load_sources(cur):
        try:
            value = files(source)
        except LakeError:
            value = None
        out[source.variable] = {
            "files": value or _empty_file(cur, source, db_path),
            "tz": source.timezone,
            **_class_bindings(cur, source),
            "states": (states := file_states(value)),
            "stamp": stamp(states),
        }
    return out


def variable_value(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The value of the DuckDB variable `lake` from `bindings` (stamps are not SQL's)."""
    return {
        name: {k: v for k, v in parts.items() if k not in ("stamp", "states")}
        for name, parts in found.items()
    }


def bind(cur, found: dict[str, dict[str, Any]]) -> None:
    """Set the DuckDB variable `lake` on this cursor: one statement whatever the number of
    sources (Store.cursor does the same on every cursor, and pages open one per query)."""
    if found:
        cur.execute("SET VARIABLE lake = $v", {"v": variable_value(found)})


def _class_bindings(cur, source: Source) -> dict[str, str | None]:
    """The classes a lake's labels map to: booleans (when the classes are a pair such as
    0/1 or false/true) and the positive class (binary tasks store 1.0 for it)."""
    from lifecycle.staging import bool_classes  # staging pulls in pandas helpers

    row = cur.execute(
        "SELECT spec FROM model_versions WHERE model_name = ? ORDER BY registered_at DESC LIMIT 1",
        [source.model],
    ).fetchall()
    spec = json.loads(row[0][0]) if row else {}
    classes = spec.get("classes")
    pair = bool_classes(classes) if classes else None
    return {
        "true": pair[0] if pair else None,
        "false": pair[1] if pair else None,
        "positive": spec.get("positive_class"),
    }


def _empty_file(cur, source: Source, db_path: Path) -> str:
    """A Parquet file with no rows and the source's mapped columns (its captured types)."""
    memory = db_path is None or str(db_path) == ":memory:"
    folder = Path(os.environ.get("TMPDIR", "/tmp")) if memory else None
    folder = folder or Path(db_path).parent / ".lake-empty"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.variable}.parquet"
    cols = [
        f"CAST(NULL AS {t if SIMPLE_TYPE.match(t) else 'VARCHAR'}) AS {quote_ident(c)}"
        for c, t in source.schema.items()
    ] or ["NULL AS _none"]
    cur.sql(f"SELECT {', '.join(cols)} LIMIT 0").write_parquet(str(path))
    return str(path)


def declare(cur, spec: dict, version: str, task: str, features: dict[str, str]) -> list[Source]:
    """Record the spec's sources for its model (the latest declaration wins) and rebuild
    the views; inside the registration's transaction. `features`: every version's, name ->
    type. Raise LakeError naming every problem (missing files or columns, a kind whose rows
    were ingested before)."""
    declared = spec.get("sources") or {}
    model = spec["name"]
    problems, sources = [], []
    for kind, item in declared.items():
        source = Source(model, kind, item["format"], item["path"], item["columns"],
                        item["timezone"], item["ts_unit"])  # fmt: skip
        problems += _stored_rows_problem(cur, source)
        found = files(source)
        if found is None:
            problems.append(
                f"source {kind} of {model}: no {source.format} files at {source.path} "
                "(the view's types come from the files: register once the lake has data)"
            )
            continue
        schema = read_schema(cur, found)
        source = Source(**{**vars(source), "schema": schema})
        problems += schema_problems(source, schema, features)
        sources.append(source)
    if problems:
        raise LakeError("\n".join(problems))
    for source in sources:
        cur.execute(
            "INSERT OR REPLACE INTO external_sources VALUES (?, ?, ?, ?, now())",
            [model, source.kind, source.settings(), version],
        )
    rebuild_views(cur, task=task, features=features, model=model)
    return sources


def _stored_rows_problem(cur, source: Source) -> list[str]:
    if source.kind == "features":
        table = feature_table(source.model)
        kind_row = cur.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchall()
        if not kind_row or kind_row[0][0] != "BASE TABLE":
            return []
        rows = cur.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0]
    else:
        rows = cur.execute(
            f"SELECT count(*) FROM {UNION_VIEWS[source.kind]} WHERE model_name = ?",
            [source.model],
        ).fetchall()[0][0]
    if not rows:
        return []
    return [
        f"source {source.kind} of {source.model}: {rows:,} {source.kind} row(s) were ingested "
        "for this model; a log kind is either ingested or read in place, not both"
    ]


def rebuild_views(cur, *, task: str, features: dict[str, str], model: str) -> None:
    """(Re)create the model's typed views, its features view and the three union views."""
    bind(cur, bindings(cur, None))  # this cursor may predate the sources; views bind now
    _typed_views(cur, model, task, features)
    every = load_sources(cur)
    for kind in UNION_VIEWS:
        cur.execute(union_view_sql(kind, [s for s in every if s.kind == kind]))


def stale_views(cur) -> bool:
    """Whether lake views were written by an earlier release (they read other variables
    than the `lake` struct this one binds, or keep predictions without a version): Store
    rebuilds them on open."""
    return bool(
        cur.execute(
            "SELECT count(*) FROM duckdb_views() WHERE NOT internal AND ((starts_with("
            "view_name, 'lake__') AND NOT contains(sql, ?)) OR (view_name = 'predictions' "
            "AND contains(sql, 'lake__') AND NOT contains(sql, 'model_version IS NOT NULL')))",
            [variable("lake__x__predictions").split("[")[0]],
        ).fetchall()[0][0]
    )


def rebuild_all(cur) -> None:
    """Every lake model's views, then the union views, from the recorded sources (one
    transaction: the caller's)."""
    from lifecycle import catalog  # catalog builds on this module

    bind(cur, bindings(cur, None))
    for model in sorted({s.model for s in load_sources(cur)}):
        task = catalog.model_info(cur, model)["task"]
        _typed_views(cur, model, task, catalog.logged_features(cur, model))
    every = load_sources(cur)
    for kind in UNION_VIEWS:
        cur.execute(union_view_sql(kind, [s for s in every if s.kind == kind]))


def _typed_views(cur, model: str, task: str, features: dict[str, str]) -> None:
    for source in load_sources(cur, model):
        cur.execute(view_sql(source, task, features))
        if source.kind == "features":
            kind = cur.execute(
                "SELECT table_type FROM information_schema.tables WHERE table_name = ?",
                [feature_table(model)],
            ).fetchall()
            if kind and kind[0][0] == "BASE TABLE":  # created empty at registration
                cur.execute(f"DROP TABLE {quote_ident(feature_table(model))}")
            cur.execute(features_view_sql(source, features))


def is_external(cur, model: str, kind: str) -> Source | None:
    return external_kinds(cur, model).get(kind)


# -- a window's rows, staged --------------------------------------------------------------

STAGE_MARGIN = timedelta(days=1)  # more than any time-zone offset: the views cut exactly


def raw_time_filter(source: Source, start: datetime, end: datetime) -> tuple[str, dict]:
    """A filter on the lake's own timestamp column for [start - margin, end + margin): a
    plain comparison, so Parquet row-group statistics skip other days' data."""
    column = source.lake_column("ts")
    dtype = source.schema.get(column, "")
    raw = f"raw.{quote_ident(column)}"
    lo, hi = start - STAGE_MARGIN, end + STAGE_MARGIN
    if not SIMPLE_TYPE.match(dtype):
        return "TRUE", {}
    # the bounds take the column's own type (TIMESTAMPTZ_NS, DATE, ...): DuckDB compares
    # only like types, and a cast of the column would hide it from the statistics
    between = f"{raw} >= CAST($lo AS {dtype}) AND {raw} < CAST($hi AS {dtype})"
    if "WITH TIME ZONE" in dtype or dtype.startswith("TIMESTAMPTZ"):
        return between, {"lo": lo, "hi": hi}
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        return between, {"lo": lo.replace(tzinfo=None), "hi": hi.replace(tzinfo=None)}
    if dtype in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DOUBLE", "FLOAT"):
        scale = TS_UNITS[source.ts_unit or "s"]
        return f"{raw} >= $lo AND {raw} < $hi", {"lo": lo.timestamp() * scale,
                                                 "hi": hi.timestamp() * scale}  # fmt: skip
    return "TRUE", {}  # text timestamps: no plain comparison is safe; read every row


def _read(source: Source) -> str:
    """The source's files as DuckDB reads them (the path is a variable: lake docstring)."""
    return (
        f"read_parquet({variable(source.variable)}, hive_partitioning = true, "
        "union_by_name = true, filename = '_file')"
    )


def _select_raw(columns: list[str]) -> str:
    return ", ".join([*(f"raw.{quote_ident(c)}" for c in columns), "raw._file"])


def stage_window(cur, model: str, start: datetime, end: datetime, task: str,
                 features: dict[str, str]) -> list[str]:  # fmt: skip
    """Copy the raw lake rows a window's checks read (predictions and features of
    [start, end) with a margin, labels of those predictions) into temp tables, and shadow
    the log views with TEMP views over them on this cursor: each check then reads a day,
    not the lake. Returns the temp objects to `unstage` (none for a model not in a lake)."""
    sources = external_kinds(cur, model)
    preds = sources.get("predictions")
    if preds is None:
        return []
    feats = sources.get("features")
    shared = feats is not None and (feats.path, feats.format) == (preds.path, preds.format)
    cols = raw_columns(preds, features)
    if shared:
        cols = list(dict.fromkeys(cols + raw_columns(feats, features)))
    where, params = raw_time_filter(preds, start, end)
    stage = (f"CREATE OR REPLACE TEMP TABLE _lake_raw_predictions AS SELECT "
             f"{_select_raw(cols)} FROM {_read(preds)} AS raw WHERE ")  # fmt: skip
    try:
        cur.execute(stage + where, params)
    except duckdb.Error:
        # a file written since registration changed the column's type (text instead of
        # timestamps): read every row; the typed view still cuts the window exactly
        cur.execute(stage + "TRUE")
    made = ["_lake_raw_predictions"]
    ids = f"SELECT raw.{quote_ident(preds.lake_column('prediction_id'))} FROM _lake_raw_predictions raw"
    staged = {"predictions": "_lake_raw_predictions"}
    for kind in ("features", "labels"):
        source = sources.get(kind)
        if source is None:
            continue
        if kind == "features" and shared:
            staged[kind] = "_lake_raw_predictions"
            continue
        table = f"_lake_raw_{kind}"
        key = f"raw.{quote_ident(source.lake_column('prediction_id'))}"
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT "
            f"{_select_raw(raw_columns(source, features))} FROM {_read(source)} AS raw "
            f"WHERE CAST({key} AS VARCHAR) IN (SELECT CAST(i AS VARCHAR) FROM ({ids}) t(i))"
        )
        made.append(table)
        staged[kind] = table
    return made + shadow(cur, sources, staged, task, features)


def shadow(cur, sources: dict[str, Source], staged: dict[str, str], task: str,
           features: dict[str, str]) -> list[str]:  # fmt: skip
    """TEMP typed views over staged raw rows (kind -> temp table), and the log views over
    them, on this cursor. Shared by every engine that stages a window (lifecycle.engines)."""
    made = []
    for kind, table in staged.items():
        source = sources[kind]
        cur.execute(view_sql(source, task, features, raw_rows=table))
        made.append(source.variable)
        if kind == "features":
            cur.execute(features_view_sql(source, features, temp=True))
            made.append(feature_table(source.model))
        else:
            cur.execute(union_view_sql(kind, [source], temp=True))
            made.append(UNION_NAMES[kind])
    return made


def unstage(cur, made: list[str]) -> None:
    """Drop what stage_window made: the cursor reads the database's views again."""
    for name in reversed(made):
        kind = "TABLE" if name.startswith("_lake_raw_") else "VIEW"
        cur.execute(f"DROP {kind} IF EXISTS temp.{quote_ident(name)}")
