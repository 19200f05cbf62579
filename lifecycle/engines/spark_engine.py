"""The Spark engine: window listing and per-window staging of lake logs computed by Spark.

`windows` is one Spark aggregate per model and grain: the predictions' typed keys (id,
version, variant, timestamp) left-joined with the feature and label rows, grouped by
version, variant and window start, counting rows and collecting each window's files; the
newest batch id of a window is DuckDB's `hash(file) >> 2` of its files, so the fingerprints
are exactly the DuckDB engine's (switching engines recomputes nothing).

`staged` collects one window: its prediction rows (files pruned to the window's date
partitions, a day's margin either side), or, when the window holds more than the cap, the
rows of at most `cap` prediction ids picked by a seeded hash; the feature and label rows of
those ids. Only the mapped raw columns and the file of each row travel (Arrow); DuckDB types
them with the same view SQL as the lake views (lifecycle.lake.view_sql with `raw_rows`).

Spark only types what it must to place rows in windows (ids, versions, variants and
timestamps), with the lake views' rules: an instant as it is, a naive time or date in the
source's zone, a text with an offset exactly and without one in the source's zone, a number
as an epoch in the source's `ts_unit`. Files whose columns have different types (a writer
that changed) are read per schema and unioned by DuckDB, which widens them as its own
`union_by_name` does. pyspark is imported here only: the core never needs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle import catalog, lake
from lifecycle.drift.windows import Window, WindowInputs, window_end
from lifecycle.engines import EngineError
from lifecycle.names import chunk_size
from lifecycle.store import feature_table, quote_ident

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
except ImportError as exc:  # an optional extra: docs/engines.md
    raise EngineError(
        "the Spark engine needs the pyspark package (pip install pyspark==4.3.0, as pinned in "
        "requirements-dev.txt) and Java 17; the DuckDB engine needs neither"
    ) from exc

OFFSET = r"([+-]\d\d:?\d\d|Z)$"  # lake._ts_expr's test for a text time with an offset
DATE_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MARGIN = timedelta(days=1)  # date partitions are written in some zone: keep a day either side
STAGE = "_stage__"
KEY = "_lifecycle_pid"  # the typed id a staged source joins the window's ids on  # prefix of the TEMP tables holding a window's raw rows


def start_session(master: str) -> SparkSession:
    """One session per run: UTC, small shuffles, no UI, nanosecond Parquet times readable."""
    spark = (
        SparkSession.builder.master(master)
        .appName("lifecycle-monitor")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.ansi.enabled", "false")  # an unparseable value is NULL, a finding
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")  # pandas' ns times: as longs
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class _Group:
    """Files of one source that share their columns' types (read by Spark together)."""

    files: list[str]
    types: dict[str, pa.DataType]  # raw column -> Parquet (Arrow) type, present columns only


@dataclass
class _Model:
    """A model's lake sources as the Spark engine reads them (cached for the run)."""

    name: str
    task: str
    features: dict[str, str]
    sources: dict[str, lake.Source]
    groups: dict[str, list[_Group]] = field(default_factory=dict)


class SparkEngine:
    name = "spark"

    def __init__(self, master: str = "local[2]", session: SparkSession | None = None):
        self.master = master
        self.spark = session or start_session(master)
        self.own_session = session is None
        self.models: dict[str, _Model] = {}
        self._schemas: dict[tuple, pa.Schema] = {}  # (path, mtime, size) -> footer schema

    def close(self) -> None:
        if self.own_session:
            self.spark.stop()

    # -- what it reads -------------------------------------------------------------

    def unsupported(self, cur, model: str) -> str | None:
        sources = lake.external_kinds(cur, model)
        if "predictions" not in sources:
            return "its predictions are ingested into the database, not read from a lake"
        labels = cur.execute(
            "SELECT count(*) FROM logged_labels WHERE model_name = ?", [model]
        ).fetchall()[0][0]
        if "labels" not in sources and labels:
            return "its labels are ingested into the database (Spark reads only the lake)"
        if "features" not in sources and _stored_feature_rows(cur, model):
            return "its features are ingested into the database (Spark reads only the lake)"
        return None

    def check_run(self, grain: str, reference: str) -> None:
        if chunk_size(grain):
            raise EngineError(
                f"grain {grain}: row-count chunks are computed by the DuckDB engine only "
                "(--engine duckdb); the Spark engine lists calendar windows"
            )
        if reference != "spec":
            raise EngineError(
                f"reference {reference!r}: the Spark engine compares windows with the spec's "
                "reference only; use --engine duckdb for the baseline or previous window"
            )

    def _model(self, cur, model: str) -> _Model:
        if model not in self.models:
            row = cur.execute(
                "SELECT spec->>'task' FROM model_versions WHERE model_name = ? "
                "ORDER BY registered_at DESC LIMIT 1",
                [model],
            ).fetchall()
            self.models[model] = _Model(
                model,
                row[0][0],
                catalog.logged_features(cur, model),
                lake.external_kinds(cur, model),
            )
        return self.models[model]

    def _groups(self, m: _Model, kind: str) -> list[_Group]:
        """The source's files now, by the types of the columns its view reads."""
        if kind not in m.groups:
            source = m.sources[kind]
            wanted = lake.raw_columns(source, m.features)
            found = _file_list(source)
            by_types: dict[tuple, _Group] = {}
            for path in found:
                schema = self._schema(path)
                types = {c: schema.field(c).type for c in wanted if c in schema.names}
                key = tuple((c, str(t)) for c, t in types.items())
                by_types.setdefault(key, _Group([], types)).files.append(path)
            m.groups[kind] = list(by_types.values())
        return m.groups[kind]

    def _schema(self, path: str) -> pa.Schema:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in self._schemas:
            self._schemas[key] = pq.read_schema(path)
        return self._schemas[key]

    def _frame(self, source: lake.Source, group: _Group, files: list[str] | None = None):
        """The group's files (or `files` of them) as a Spark DataFrame with `_file`."""
        paths = group.files if files is None else files
        reader = self.spark.read.option("basePath", _base_path(source))
        frame = reader.parquet(*paths)
        return frame.withColumn("_file", F.input_file_name())

    # -- window listing --------------------------------------------------------------

    def windows(
        self, cur, model: str, grain: str, *, version=None, variant=None, since=None, until=None
    ) -> list[WindowInputs]:
        self.models.pop(model, None)  # new files since the last call: list them again
        m = self._model(cur, model)
        preds = self._keys(m, "predictions")
        if preds is None:
            return []
        if version is not None:
            preds = preds.where(F.col("version") == F.lit(version))
        if variant is not None:
            preds = preds.where(F.col("variant") == F.lit(variant))
        preds = preds.withColumn("w", F.date_trunc(grain, F.col("ts")))
        if since is not None:
            preds = preds.where(F.col("w") >= F.lit(since))
        if until is not None:
            preds = preds.where(F.col("w") < F.lit(until))
        joined = preds.select("pid", "version", "variant", "w", F.col("_file").alias("p_file"))
        count_f = count_l = F.lit(0)
        files_f = files_l = F.array().cast("array<string>")
        for kind, alias in (("features", "f"), ("labels", "l")):
            other = self._keys(m, kind)
            if other is None:
                continue
            other = other.select(
                F.col("pid").alias(f"{alias}_pid"), F.col("_file").alias(f"{alias}_file")
            )
            joined = joined.join(other, joined.pid == other[f"{alias}_pid"], "left")
            if alias == "f":
                count_f, files_f = F.count("f_pid"), F.collect_set("f_file")
            else:
                count_l, files_l = F.count("l_pid"), F.collect_set("l_file")
        table = (
            joined.groupBy("version", "variant", "w")
            .agg(
                F.count(F.lit(1)).alias("n"),
                count_f.alias("nf"),
                F.collect_set("p_file").alias("fp"),
                files_f.alias("ff"),
                count_l.alias("nl"),
                files_l.alias("fl"),
            )
            .orderBy("version", "variant", "w")
            .toArrow()
        )
        rows = table.to_pylist()
        batches = _batch_ids(cur, [f for r in rows for k in ("fp", "ff", "fl") for f in r[k]])
        return [
            WindowInputs(
                window=Window(
                    model, r["version"], r["variant"], grain, r["w"], window_end(r["w"], grain)
                ),
                rows=int(r["n"]),
                feature_rows=int(r["nf"]),
                last_prediction_batch=max(batches[f] for f in r["fp"]),
                last_feature_batch=max((batches[f] for f in r["ff"]), default=0),
                labels=int(r["nl"]),
                last_label_batch=max((batches[f] for f in r["fl"]), default=0),
            )
            for r in rows
        ]

    def _keys(self, m: _Model, kind: str, files_of=None) -> DataFrame | None:
        """The source's rows typed as far as windows need (pid, and per kind version,
        variant, ts or labeled_at) with `_file`, every schema group unioned; rows without
        a usable key dropped as the union views drop them. None: no such source or files."""
        if kind not in m.sources:
            return None
        source = m.sources[kind]
        parts = []
        for group in self._groups(m, kind):
            files = files_of(group) if files_of else group.files
            if not files:
                continue
            frame = self._frame(source, group, files)
            parts.append(frame.select(*_key_columns(source, group.types), "_file"))
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out.unionByName(part)
        out = out.where(F.col("pid").isNotNull())
        if kind == "predictions":  # lake.PREDICTION_KEY
            out = out.where(
                F.col("ts").isNotNull()
                & F.col("version").isNotNull()
                & F.col("variant").isNotNull()
            )
        if kind == "labels":
            out = out.where(F.col("labeled_at").isNotNull())
        return out

    # -- staging one window --------------------------------------------------------

    def prepare(self, store, cur, model: str, grain: str) -> None:
        return None  # the listing is one Spark aggregate: nothing kept between runs

    @contextlib.contextmanager
    def staged(
        self, cur, inputs: WindowInputs, cap: int | None, seed: int, since=None
    ) -> Iterator[bool]:  # `since`: only the spec reference runs on Spark (check_run)
        w = inputs.window
        m = self._model(cur, w.model)
        sampled = cap is not None and inputs.rows > cap
        ids = self._window_ids(m, w, cap if sampled else None, seed)
        made: list[tuple[str, str]] = []  # (TEMP object kind, name) to drop, newest last
        try:
            for kind, source in m.sources.items():
                if kind == "business":
                    continue  # no check reads business events per window
                near = _near(w) if kind == "predictions" or _same_files(m, kind) else None
                table = self._stage(cur, m, kind, ids, near)
                made.append(("TABLE", table))
                cur.execute(lake.view_sql(source, m.task, m.features, raw_rows=table))
                made.append(("VIEW", source.variable))
            for kind in ("predictions", "labels"):
                found = [m.sources[kind]] if kind in m.sources else []
                cur.execute(lake.union_view_sql(kind, found, temp=True))
                made.append(("VIEW", lake.UNION_NAMES[kind]))
            if "features" in m.sources:
                cur.execute(lake.features_view_sql(m.sources["features"], m.features, temp=True))
                made.append(("VIEW", feature_table(m.name)))
            yield sampled
        finally:
            for what, name in reversed(made):
                cur.execute(f"DROP {what} IF EXISTS temp.main.{quote_ident(name)}")

    def _window_ids(self, m: _Model, w: Window, cap: int | None, seed: int) -> DataFrame:
        """The prediction ids of the window (at most `cap` of them, by a seeded hash)."""
        source, near = m.sources["predictions"], _near(w)
        keys = self._keys(m, "predictions", lambda group: _pruner_dates(group, source, near))
        if keys is None:
            return self.spark.createDataFrame([], "pid string")
        keys = (
            keys.where(
                (F.col("version") == F.lit(w.version))
                & (F.col("variant") == F.lit(w.variant))
                & (F.col("ts") >= F.lit(w.start))
                & (F.col("ts") < F.lit(w.end))
            )
            .select("pid")
            .distinct()
        )
        if cap is not None:
            keys = keys.orderBy(F.xxhash64("pid", F.lit(seed)), "pid").limit(cap)
        return keys

    def _stage(self, cur, m: _Model, kind: str, ids: DataFrame, near) -> str:
        """Collect the raw rows of `ids` from the source into a TEMP table; its name."""
        source = m.sources[kind]
        wanted = lake.raw_columns(source, m.features)
        parts = []
        for i, group in enumerate(self._groups(m, kind)):
            files = _pruner_dates(group, source, near) if near else group.files
            if not files:
                continue
            frame = self._frame(source, group, files)
            pid = _key_columns(source, group.types)[0].alias(KEY)
            present = [c for c in wanted if c in group.types or c in frame.columns]
            rows = frame.select(*[F.col(_q(c)) for c in present], "_file", pid)
            keep = F.broadcast(ids.withColumnRenamed("pid", KEY))
            rows = rows.join(keep, KEY, "left_semi").drop(KEY)
            name = f"_spark_{kind}_{i}"
            cur.register(name, rows.toArrow())
            parts.append((name, group))
        table = f"{STAGE}{m.name}__{kind}"
        try:
            selects = [_restore(name, group) for name, group in parts]
            if not selects:  # no files near the window: no rows, the source's columns
                selects = [_empty(source, wanted)]
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} AS "
                f"SELECT * REPLACE (url_decode(regexp_replace(_file, '^file:(//)?', '')) AS _file) "
                f"FROM ({' UNION ALL BY NAME '.join(selects)})"
            )
        finally:
            for name, _ in parts:
                cur.unregister(name)
        have = {r[0] for r in cur.execute(f"DESCRIBE {quote_ident(table)}").fetchall()}
        for c in wanted:  # a column no file near the window has: NULL, as union_by_name
            if c not in have:
                dtype = source.schema[c] if lake.SIMPLE_TYPE.match(source.schema[c]) else "VARCHAR"
                cur.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(c)} {dtype}")
        return table


# -- typing the keys in Spark (the rules of lifecycle.lake._ts_expr / _typed) -----------


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _key_columns(source: lake.Source, types: dict[str, pa.DataType]) -> list:
    """Spark columns pid (+ version, variant, ts | labeled_at) of one schema group."""

    def raw(ours: str, default=None):
        col = source.lake_column(ours)
        if col not in source.schema:
            return default
        return (col, types.get(col))

    out = [_text(raw("prediction_id")).alias("pid")]
    if source.kind == "predictions":
        variant = raw("variant", default="production")
        out += [
            _text(raw("model_version")).alias("version"),
            (F.lit(variant) if isinstance(variant, str) else _text(variant)).alias("variant"),
            _time(raw("ts"), source).alias("ts"),
        ]
    elif source.kind == "labels":
        out.append(_time(raw("labeled_at"), source).alias("labeled_at"))
    return out


def _text(found):
    if found is None or found[1] is None:  # a column this group's files lack: NULL
        return F.lit(None).cast("string")
    col, dtype = F.col(_q(found[0])), found[1]
    if pa.types.is_floating(dtype):  # a class pandas wrote as 1.0 is the class '1'
        return F.when(col == F.floor(col), col.cast("long").cast("string")).otherwise(
            col.cast("string")
        )
    return col.cast("string")


def _time(found, source: lake.Source):
    if found is None or found[1] is None:
        return F.lit(None).cast("timestamp")
    col, dtype = F.col(_q(found[0])), found[1]
    tz = F.lit(source.timezone)
    if pa.types.is_timestamp(dtype):
        if dtype.unit == "ns":  # read as a long (nanosAsLong): to microseconds, rounded
            col = F.timestamp_micros(F.floor((col + F.lit(500)) / F.lit(1000)).cast("long"))
        if dtype.tz is not None:
            return col.cast("timestamp")
        return F.to_utc_timestamp(col.cast("timestamp_ntz").cast("timestamp"), tz)
    if pa.types.is_date(dtype):
        return F.to_utc_timestamp(col.cast("timestamp"), tz)
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        per_second = lake.TS_UNITS[source.ts_unit or "s"]
        micros = F.round(col.cast("double") / F.lit(per_second) * F.lit(1_000_000))
        return F.timestamp_micros(micros.cast("long"))
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        text = col.cast("string")
        exact = F.when(text.rlike(OFFSET), text.try_cast("timestamp"))
        local = F.to_utc_timestamp(text.try_cast("timestamp_ntz").cast("timestamp"), tz)
        return F.coalesce(exact, local)
    return F.lit(None).cast("timestamp")


# -- files ---------------------------------------------------------------------------


def _file_list(source: lake.Source) -> list[str]:
    found = lake.files(source)
    if found is None:
        return []
    if isinstance(found, list):
        return found
    return sorted(glob.glob(found, recursive=True))


def _base_path(source: lake.Source) -> str:
    """Where hive partition directories (`date=...`) start for the source."""
    path = source.path
    if any(c in path for c in "*?["):
        head = re.split(r"[*?\[]", path, maxsplit=1)[0]
        return head if head.endswith(os.sep) else os.path.dirname(head)
    return path if os.path.isdir(path) else os.path.dirname(path)


def _partition_date(path: str, base: str):
    """The date of the file's `<name>=YYYY-MM-DD` directory below `base` (None: none)."""
    rel = os.path.relpath(path, base)
    for part in Path(rel).parts[:-1]:
        _, sep, value = part.partition("=")
        if sep and DATE_VALUE.match(value):
            return datetime.strptime(value, "%Y-%m-%d").date()
    return None


def _near(w: Window) -> tuple:
    return ((w.start - MARGIN).date(), (w.end + MARGIN).date())


def _pruner_dates(group: _Group, source: lake.Source, near) -> list[str]:
    """The group's files whose date partition is near the window (undated files always)."""
    base = _base_path(source)
    lo, hi = near
    out = []
    for path in group.files:
        day = _partition_date(path, base)
        if day is None or lo <= day <= hi:
            out.append(path)
    return out


def _same_files(m: _Model, kind: str) -> bool:
    """Features kept in the prediction rows themselves (the same files): pruned alike."""
    p, other = m.sources.get("predictions"), m.sources.get(kind)
    return bool(p and other and (p.format, p.path) == (other.format, other.path))


def _batch_ids(cur, files: list[str]) -> dict[str, int]:
    """Spark's file URIs -> the batch ids the lake views give those files (DuckDB's hash)."""
    unique = sorted(set(files))
    if not unique:
        return {}
    rows = cur.execute(
        "SELECT f, CAST(hash(url_decode(regexp_replace(f, '^file:(//)?', ''))) >> 2 AS BIGINT) "
        "FROM unnest(?::VARCHAR[]) t(f)",
        [unique],
    ).fetchall()
    return {f: int(b) for f, b in rows}


def _restore(name: str, group: _Group) -> str:
    """SELECT of a collected group with nanosecond times made times again (Spark read
    them as longs): the raw column as DuckDB reads it from the file."""
    fixes = []
    for col, dtype in group.types.items():
        if pa.types.is_timestamp(dtype) and dtype.unit == "ns":
            target = "TIMESTAMPTZ_NS" if dtype.tz is not None else "TIMESTAMP_NS"
            fixes.append(
                f"CAST(make_timestamp_ns({quote_ident(col)}) AS {target}) AS {quote_ident(col)}"
            )
    replace = f" REPLACE ({', '.join(fixes)})" if fixes else ""
    return f"SELECT *{replace} FROM {name}"


def _empty(source: lake.Source, wanted: list[str]) -> str:
    cols = [
        f"CAST(NULL AS {t if lake.SIMPLE_TYPE.match(t) else 'VARCHAR'}) AS {quote_ident(c)}"
        for c in wanted
        for t in [source.schema[c]]
    ]
    return f"SELECT {', '.join([*cols, 'NULL::VARCHAR AS _file'])} LIMIT 0"


def _stored_feature_rows(cur, model: str) -> int:
    table = feature_table(model)
    found = cur.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()
    if not found or found[0][0] != "BASE TABLE":
        return 0
    return int(cur.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0])
