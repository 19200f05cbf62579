"""Accept a batch of logs, validate it completely, then append it in one transaction.

Kinds: predictions, features, labels, business, infra (columns in README "Data formats").
Nothing is written unless every check passes; the batch, its report row in
`ingest_batches` and the log rows commit together or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle import catalog, lake
from lifecycle.names import KINDS
from lifecycle.staging import (
    LABEL_RULE,
    Staged,
    bad_numeric_rows,
    double_expr,
    files_name,
    fmt_rows,
    label_expr,
    nonfinite_count,
    offending,
    stage,
    text_expr,
    timestamp_expr,
    timestamp_problems,
)
from lifecycle.store import Sql, Store, feature_column, feature_table, quote_ident

VARIANTS = ("production", "shadow", "canary")
STATUSES = ("ok", "error")
SAMPLE_IDS = 10

# column -> (sql kind, required). Kinds: id/text, double, ts. Feature columns come from the
# model's schema instead.
COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "predictions": {
        "prediction_id": ("text", True),
        "model_version": ("text", True),
        "ts": ("ts", True),
        "request_id": ("text", False),
        "variant": ("text", False),
        "prediction": ("double", False),
        "predicted_label": ("text", False),
        "latency_ms": ("double", False),
        "status": ("text", False),
        "segment": ("text", False),
        "model_name": ("text", False),
    },
    "labels": {
        "prediction_id": ("text", True),
        "actual": ("text", True),
        "labeled_at": ("ts", True),
        "model_name": ("text", False),
    },
    "business": {
        "ts": ("ts", True),
        "kpi": ("text", True),
        "value": ("double", True),
        "prediction_id": ("text", False),
        "model_name": ("text", False),
    },
    "infra": {
        "ts": ("ts", True),
        "model_version": ("text", True),
        "metric": ("text", True),
        "value": ("double", True),
        "variant": ("text", False),
        "model_name": ("text", False),
    },
}


class AlreadyLoaded(Exception):
    """A file whose content (sha256) was loaded before for this model and kind; nothing
    was written (lifecycle.watch moves it to done/ as a duplicate)."""

    def __init__(self, model: str, kind: str, sha256: str, batch_id: int, source: str):
        self.model, self.kind, self.sha256, self.batch_id = model, kind, sha256, batch_id
        self.first_source = source
        super().__init__(
            f"duplicate, skipped: the same content (sha256 {sha256[:12]}...) was loaded as "
            f"{kind} batch {batch_id} for {model} from {source}"
        )


class IngestError(ValueError):
    """A refused batch. `problems` names each reason; nothing was written."""

    def __init__(self, model: str, kind: str, source: str, problems: list[str]):
        self.model, self.kind, self.source, self.problems = model, kind, source, problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{kind} batch for model {model!r} from {source} refused, nothing written:\n{listing}"
        )


@dataclass
class IngestReport:
    model: str
    kind: str
    source: str
    rows: int
    batch_id: int | None = None
    status: str = "ingested"
    missing_values: dict[str, int] = field(default_factory=dict)
    nonfinite_values: dict[str, int] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    unknown_prediction_ids: int = 0
    unknown_prediction_ids_sample: list[str] = field(default_factory=list)
    min_ts: str | None = None
    max_ts: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{self.status}: {self.rows} {self.kind} row(s) for {self.model}"]
        if self.batch_id is not None:
            lines[0] += f" as batch {self.batch_id}"
        if self.missing_columns:
            lines.append(
                f"missing schema columns stored as NULL: {', '.join(self.missing_columns)}"
            )
        for col, n in self.nonfinite_values.items():
            lines.append(f"{col}: {n} NaN/inf value(s) stored as missing")
        if self.unknown_prediction_ids:
            lines.append(
                f"{self.unknown_prediction_ids} row(s) refer to prediction ids not (yet) logged "
                f"for {self.model}, e.g. {', '.join(self.unknown_prediction_ids_sample)}; "
                "stored, and joined when those predictions arrive"
            )
        lines.extend(self.notes)
        return "\n".join(lines)


def ingest(
    store: Store,
    model: str,
    kind: str,
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    assume_utc: bool = False,
    allow_unknown_ids: bool = False,
    source_name: str | None = None,
    content_sha256: str | None = None,
) -> IngestReport:
    """Validate and append one batch; raise IngestError (nothing written) if it is refused.
    A list of files (one format, same columns) is one batch.

    Features or labels whose prediction ids this model never logged are refused unless
    `allow_unknown_ids` (then they are stored and joined when the predictions arrive).
    With `content_sha256` (the file's hash) the hash is recorded in `loaded_files` in the
    batch's transaction, and a hash already recorded for this model and kind raises
    AlreadyLoaded instead: a file is never loaded twice, even after a crash."""
    if kind not in KINDS:
        raise IngestError(model, kind, str(source_name), [f"unknown kind {kind!r}; use {KINDS}"])
    name = source_name or _source_name(source)
    with store.write_lock(), store.transaction() as cur:
        if content_sha256:
            _refuse_loaded(cur, model, kind, content_sha256)
        try:
            staged = stage(cur, source, "_batch")
        except (ValueError, FileNotFoundError) as exc:
            raise IngestError(model, kind, name, [str(exc)]) from exc
        model_row = catalog.model_info(cur, model)
        if model_row is None:
            known = ", ".join(catalog.model_names(cur)) or "none registered"
            raise IngestError(model, kind, name, [f"unknown model {model!r} (known: {known})"])
        if (external := lake.is_external(cur, model, kind)) is not None:
            raise IngestError(model, kind, name, [
                f"{model}'s {kind} are read in place from {external.format} source "
                f"{external.path}: write them to the lake instead of ingesting them"])  # fmt: skip
        report = IngestReport(model=model, kind=kind, source=name, rows=staged.rows)
        if staged.rows == 0:
            raise IngestError(model, kind, name, ["the batch has no rows"])
        checker = _Checker(cur, staged, model, model_row, kind, assume_utc, report)
        checker.allow_unknown_ids = allow_unknown_ids
        select = checker.run()
        if checker.problems:
            raise IngestError(model, kind, name, checker.problems)
        batch_id = _append(cur, model, kind, select, report)
        report.batch_id = batch_id
        if content_sha256:
            cur.execute(
                "INSERT INTO loaded_files VALUES (?, ?, ?, ?, ?, now())",
                [model, kind, content_sha256, batch_id, name],
            )
        cur.execute("DROP TABLE IF EXISTS _batch")
    return report


def _source_name(source) -> str:
    if isinstance(source, pd.DataFrame):
        return "DataFrame"
    if isinstance(source, (str, os.PathLike)):
        return str(Path(source).resolve())
    return files_name(source)


def _refuse_loaded(cur, model: str, kind: str, sha256: str) -> None:
    row = cur.execute(
        "SELECT batch_id, source FROM loaded_files WHERE model_name = ? AND kind = ? "
        "AND sha256 = ?",
        [model, kind, sha256],
    ).fetchall()
    if row:
        raise AlreadyLoaded(model, kind, sha256, int(row[0][0]), row[0][1])


def _append(cur, model: str, kind: str, select: Sql, report: IngestReport) -> int:
    batch_id = cur.execute("SELECT nextval('batch_seq')").fetchall()[0][0]
    target = {
        "predictions": "logged_predictions",  # behind the `predictions` view (lifecycle.lake)
        "labels": "logged_labels",
        "business": "logged_business_events",
        "infra": "infra_metrics",
        "features": feature_table(model),
    }[kind]
    select.execute(cur, "CREATE TEMP TABLE _typed AS ")
    cols = [r[0] for r in cur.execute("DESCRIBE _typed").fetchall()]
    col_list = ", ".join(quote_ident(c) for c in cols)
    cur.execute(
        f"INSERT INTO {quote_ident(target)} ({col_list}, batch_id) "
        f"SELECT {col_list}, {int(batch_id)} FROM _typed"
    )
    ts_col = {"predictions": "ts", "labels": "labeled_at", "business": "ts", "infra": "ts"}.get(
        kind
    )
    if ts_col:
        lo, hi = cur.execute(f"SELECT min({ts_col}), max({ts_col}) FROM _typed").fetchall()[0]
        report.min_ts, report.max_ts = (str(lo), str(hi))
    cur.execute("DROP TABLE _typed")
    cur.execute(
        "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?)",
        [
            batch_id,
            model,
            kind,
            report.source,
            report.rows,
            report.min_ts,
            report.max_ts,
            json.dumps(report.to_dict(), default=str),
        ],
    )
    return int(batch_id)


class _Checker:
    """Validates one staged batch and builds the typed SELECT that will be inserted."""

    def __init__(self, cur, staged: Staged, model: str, model_row, kind, assume_utc, report):
        self.cur, self.staged, self.model, self.kind = cur, staged, model, kind
        self.task = model_row["task"]
        self.assume_utc, self.report = assume_utc, report
        self.problems: list[str] = []
        self.allow_unknown_ids = False
        self.t = staged.table
        # values the typed SELECT binds (named parameters; never quoted into the SQL text)
        self.params: dict[str, object] = {"model": model}

    def _sql(self, text: str) -> Sql:
        """`text` with the checker's params that it uses (DuckDB refuses unused ones)."""
        return Sql(text, {k: v for k, v in self.params.items() if f"${k}" in text})

    def run(self) -> Sql:
        if self.kind == "features":
            names = [name for name, _ in self._feature_schema().values()]
            self.staged.use_names(self.cur, ["prediction_id", *names])
            return self._features()
        spec = COLUMNS[self.kind]
        self.staged.use_names(self.cur, list(spec))
        # column, type and model-name problems are reported together; the checks after them
        # (duplicates, unknown versions and ids, ranges) need typed columns, so they wait
        self._columns(spec)
        self._types(spec)
        self._model_name_column()
        if self.problems:
            return Sql("")
        return getattr(self, f"_{self.kind}")()

    # -- generic checks ---------------------------------------------------------

    def _columns(self, spec: dict[str, tuple[str, bool]]) -> None:
        missing = [c for c, (_, req) in spec.items() if req and c not in self.staged.types]
        extra = self.staged.extra_columns(spec)
        if missing:
            self.problems.append(f"required column(s) missing: {', '.join(missing)}")
        if extra:
            self.problems.append(
                f"unexpected column(s): {', '.join(extra)} (a {self.kind} batch has "
                f"{', '.join(spec)})"
            )

    def _types(self, spec: dict[str, tuple[str, bool]]) -> None:
        for col, (sql_kind, required) in spec.items():
            if col not in self.staged.types:
                continue
            if sql_kind == "double":
                count, sample = bad_numeric_rows(self.cur, self.staged, col)
                if count:
                    self.problems.append(
                        f"column `{col}`: {count} value(s) are not numbers, first rows: "
                        + fmt_rows(sample)
                    )
            elif sql_kind == "ts":
                problems, notes = timestamp_problems(self.cur, self.staged, col, self.assume_utc)
                self.problems.extend(problems)
                self.report.notes.extend(notes)
            if required:
                self._not_null(col, sql_kind)

    def _not_null(self, col: str, sql_kind: str) -> None:
        expr = self._expr(col, sql_kind)
        count, sample = offending(self.cur, self.staged, col, f"({expr}) IS NULL")
        if count:
            self.problems.append(
                f"column `{col}`: {count} row(s) have no value, first rows: " + fmt_rows(sample)
            )

    def _expr(self, col: str, sql_kind: str) -> str:
        if sql_kind == "double":
            return double_expr(col)
        if sql_kind == "ts":
            return timestamp_expr(col)
        return text_expr(col, self.staged.types[col])

    def _col(self, col: str, sql_kind: str, default_sql: str = "NULL") -> str:
        if col in self.staged.types:
            return self._expr(col, sql_kind)
        return default_sql

    def _model_name_column(self) -> None:
        if "model_name" not in self.staged.types:
            return
        expr = text_expr("model_name", self.staged.types["model_name"])
        count, sample = offending(
            self.cur,
            self.staged,
            "model_name",
            f"({expr}) IS DISTINCT FROM $model",
            {"model": self.model},
        )
        if count:
            self.problems.append(
                f"column `model_name`: {count} row(s) name another model than {self.model!r}, "
                "first rows: " + fmt_rows(sample)
            )

    def _allowed(
        self,
        col: str,
        expr: str,
        allowed: tuple[str, ...] | list[str],
        what: str,
        params: dict | None = None,
        rule: str = "",
    ):
        count, sample = offending(
            self.cur,
            self.staged,
            col,
            f"({expr}) IS NOT NULL AND NOT list_contains($allowed::VARCHAR[], ({expr}))",
            {"allowed": [str(v) for v in allowed], **(params or {})},
        )
        if count:
            self.problems.append(
                f"column `{col}`: {count} row(s) with {what} not in ({', '.join(allowed)}), "
                "first rows: " + fmt_rows(sample) + (f" ({rule})" if rule else "")
            )

    def _label(self, col: str, classes: list[str] | None) -> str:
        """`col` as a class name (1.0 -> '1', True -> '1' when unambiguous), checked against
        the classes; its parameters join the typed SELECT's."""
        expr, params = label_expr(col, self.staged.types[col], classes)
        if classes:
            self._allowed(col, expr, classes, "a label", params, LABEL_RULE)
        self.params.update(params)
        return expr

    def _versions(self) -> None:
        versions = catalog.version_names(self.cur, self.model)
        expr = self._expr("model_version", "text")
        self._allowed("model_version", expr, versions, f"a version of {self.model}")

    def _duplicates(self, id_expr: str, table: str, per_model: bool = False) -> None:
        """Ids twice in the batch, or already stored (for this model: ids are unique per
        model, so two models may log the same ids)."""
        dup_in = self.cur.execute(
            f"SELECT id, count(*) FROM (SELECT {id_expr} AS id FROM {self.t}) "
            f"GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT {SAMPLE_IDS}"
        ).fetchall()
        if dup_in:
            self.problems.append(
                "duplicate prediction id(s) inside the batch: "
                + ", ".join(f"{i} (x{n})" for i, n in dup_in)
            )
        same_model = "AND s.model_name = ?" if per_model else ""
        stored = self.cur.execute(
            f"SELECT DISTINCT b.id FROM (SELECT {id_expr} AS id FROM {self.t}) b "
            f"JOIN {quote_ident(table)} s ON s.prediction_id = b.id {same_model} "
            f"ORDER BY b.id LIMIT {SAMPLE_IDS}",
            [self.model] if per_model else [],
        ).fetchall()
        if stored:
            self.problems.append(
                f"prediction id(s) already stored in {table} for {self.model}: "
                + ", ".join(r[0] for r in stored)
                + (" ..." if len(stored) == SAMPLE_IDS else "")
                + "; a batch is loaded once: leave out the rows already loaded"
            )

    def _unknown_ids(self, id_expr: str, refuse: bool = True) -> None:
        """Rows whose prediction id was never logged for this model: refused when `refuse`
        (unless allow_unknown_ids), else reported and stored."""
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _ids AS SELECT _row, {id_expr} AS id FROM {self.t}"
        )
        unknown = (
            "FROM _ids b WHERE b.id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM predictions p "
            "WHERE p.prediction_id = b.id AND p.model_name = ?)"
        )
        total = self.cur.execute(f"SELECT count(*) {unknown}", [self.model]).fetchall()[0][0]
        if total:
            sample = self.cur.execute(
                f"SELECT b.id {unknown} ORDER BY b._row LIMIT 5", [self.model]
            ).fetchall()
            self.report.unknown_prediction_ids = int(total)
            self.report.unknown_prediction_ids_sample = [r[0] for r in sample]
            if refuse and not self.allow_unknown_ids:
                self.problems.append(
                    f"{total} row(s) refer to prediction ids that {self.model} never logged, "
                    f"e.g. {', '.join(r[0] for r in sample)}; ingest the predictions first, "
                    "check the model name (--model), or pass --allow-unknown-ids "
                    "(allow_unknown_ids=True) to store them and join them when the "
                    "predictions arrive"
                )
        self.cur.execute("DROP TABLE _ids")

    def _nonfinite(self, col: str) -> None:
        if col in self.staged.types:
            n = nonfinite_count(self.cur, self.staged, col)
            if n:
                self.report.nonfinite_values[col] = n

    # -- per kind ---------------------------------------------------------------

    def _predictions(self) -> Sql:
        self._versions()
        variant = self._col("variant", "text", "'production'")
        status = self._col("status", "text", "'ok'")
        if "variant" in self.staged.types:
            self._allowed("variant", variant, VARIANTS, "a variant")
        if "status" in self.staged.types:
            self._allowed("status", status, STATUSES, "a status")
        prediction = self._col("prediction", "double")
        latency = self._col("latency_ms", "double")
        self._range_check("latency_ms", latency, 0, None, "a negative latency")
        if self.task == "binary_classification":
            self._range_check("prediction", prediction, 0, 1, "a probability outside [0, 1]")
        classes = catalog.model_classes(self.cur, self.model)
        label = "NULL"
        if "predicted_label" in self.staged.types:
            label = self._label("predicted_label", classes)
        pid = self._expr("prediction_id", "text")
        self._duplicates(pid, "predictions", per_model=True)
        self._nonfinite("prediction")
        self._nonfinite("latency_ms")
        return self._sql(
            f"SELECT {pid} AS prediction_id, "
            f"coalesce({self._col('request_id', 'text')}, {pid}) AS request_id, "
            f"$model AS model_name, {self._expr('model_version', 'text')} AS model_version, "
            f"{self._expr('ts', 'ts')} AS ts, coalesce({variant}, 'production') AS variant, "
            f"{prediction} AS prediction, {label} AS predicted_label, {latency} AS latency_ms, "
            f"coalesce({status}, 'ok') AS status, {self._col('segment', 'text')} AS segment "
            f"FROM {self.t} ORDER BY _row"
        )

    def _range_check(self, col, expr, low, high, what):
        if col not in self.staged.types:
            return
        cond = f"({expr}) < {low}" + (f" OR ({expr}) > {high}" if high is not None else "")
        count, sample = offending(self.cur, self.staged, col, f"({expr}) IS NOT NULL AND ({cond})")
        if count:
            self.problems.append(
                f"column `{col}`: {count} row(s) with {what}, first rows: " + fmt_rows(sample)
            )

    def _labels(self) -> Sql:
        pid = self._expr("prediction_id", "text")
        actual = self._expr("actual", "text")
        if self.task == "regression":
            count, sample = bad_numeric_rows(self.cur, self.staged, "actual")
            if count:
                self.problems.append(
                    f"column `actual`: {count} value(s) are not numbers (this model is a "
                    "regressor), first rows: " + fmt_rows(sample)
                )
            value, label = double_expr("actual"), "NULL"
        else:
            classes = catalog.model_classes(self.cur, self.model)
            actual = self._label("actual", classes)
            positive = catalog.positive_class(self.cur, self.model)
            self.params["positive"] = positive
            value = (
                f"CASE WHEN ({actual}) = $positive THEN 1.0 ELSE 0.0 END"
                if positive is not None
                else "NULL"
            )
            label = actual
        self._duplicates(pid, "labels", per_model=True)
        self._unknown_ids(pid)
        return self._sql(
            f"SELECT {pid} AS prediction_id, $model AS model_name, "
            f"{value} AS actual_value, {label} AS actual_label, "
            f"{self._expr('labeled_at', 'ts')} AS labeled_at FROM {self.t} ORDER BY _row"
        )

    def _business(self) -> Sql:
        kpis = catalog.model_kpis(self.cur, self.model)
        kpi = self._expr("kpi", "text")
        if not kpis:
            self.problems.append(f"model {self.model!r} declares no KPIs in its spec")
        else:
            self._allowed("kpi", kpi, kpis, f"a KPI declared for {self.model}")
        pid = self._col("prediction_id", "text")
        if "prediction_id" in self.staged.types:
            self._unknown_ids(pid, refuse=False)
        return self._sql(
            f"SELECT $model AS model_name, {pid} AS prediction_id, "
            f"{self._expr('ts', 'ts')} AS ts, {kpi} AS kpi, {self._expr('value', 'double')} "
            f"AS value FROM {self.t} ORDER BY _row"
        )

    def _infra(self) -> Sql:
        self._versions()
        variant = self._col("variant", "text", "'production'")
        if "variant" in self.staged.types:
            self._allowed("variant", variant, VARIANTS, "a variant")
        select = self._sql(
            f"SELECT $model AS model_name, {self._expr('model_version', 'text')} "
            f"AS model_version, coalesce({variant}, 'production') AS variant, "
            f"{self._expr('ts', 'ts')} AS ts, {self._expr('metric', 'text')} AS metric, "
            f"{self._expr('value', 'double')} AS value FROM {self.t}"
        )
        dup = select.execute(
            self.cur,
            "SELECT model_version, variant, ts, metric FROM (",
            ") GROUP BY ALL HAVING count(*) > 1 LIMIT 3",
        ).fetchall()
        if dup:
            self.problems.append(
                "the batch has the same (version, variant, ts, metric) more than once, e.g. "
                + "; ".join(str(d) for d in dup)
            )
        stored = select.execute(
            self.cur,
            "SELECT b.model_version, b.variant, b.ts, b.metric FROM (",
            ") b JOIN infra_metrics s USING (model_name, model_version, variant, ts, metric) "
            "LIMIT 3",
        ).fetchall()
        if stored:
            self.problems.append(
                "metrics already stored for the same (version, variant, ts, metric), e.g. "
                + "; ".join(str(d) for d in stored)
            )
        return Sql(select.text + " ORDER BY _row", select.params)

    def _features(self) -> Sql:
        schema = self._feature_schema()  # stored column -> (name, numeric/categorical)
        if not self.staged.column("prediction_id"):
            self.problems.append("required column missing: prediction_id")
        extra = self.staged.extra_columns(["prediction_id", *(n for n, _ in schema.values())])
        if extra:
            names = ", ".join(n for n, _ in schema.values())
            self.problems.append(
                f"column(s) not in the feature schema of {self.model}: {', '.join(extra)} "
                f"(schema: {names}); drop them, or register a version whose spec declares them"
            )
        if self.problems:
            return Sql("")
        self._not_null("prediction_id", "text")
        pid = self._expr("prediction_id", "text")
        parts = [f"{pid} AS prediction_id"]
        for column, (name, ftype) in schema.items():
            found = self.staged.column(name)
            if found is None:
                self.report.missing_columns.append(name)
                parts.append(f"NULL AS {quote_ident(column)}")
                continue
            if ftype == "numeric":
                count, sample = bad_numeric_rows(self.cur, self.staged, found)
                if count:
                    self.problems.append(
                        f"feature `{name}` is numeric but {count} value(s) are not numbers, "
                        "first rows: " + fmt_rows(sample)
                    )
                self._nonfinite(found)
                parts.append(f"{double_expr(found)} AS {quote_ident(column)}")
            else:
                text = text_expr(found, self.staged.types[found])
                parts.append(f"{text} AS {quote_ident(column)}")
        self._missing_counts(parts, schema)
        self._duplicates(pid, feature_table(self.model))
        self._unknown_ids(pid)
        return self._sql(f"SELECT {', '.join(parts)} FROM {self.t} ORDER BY _row")

    def _feature_schema(self) -> dict[str, tuple[str, str]]:
        """Stored column -> (the feature's name, its type), over the model's versions; a
        name that differs from an earlier version's only in case shares its column."""
        out: dict[str, tuple[str, str]] = {}
        for name, ftype in catalog.logged_features(self.cur, self.model).items():
            out.setdefault(feature_column(name), (name, ftype))
        return out

    def _missing_counts(self, parts: list[str], schema: dict[str, tuple[str, str]]) -> None:
        """Missing values per feature (reported under the feature's own name)."""
        exprs = [p.rsplit(" AS ", 1)[0] for p in parts[1:]]  # stored columns are plain names
        select = ", ".join(f"count(*) - count({e})" for e in exprs)
        counts = self.cur.execute(f"SELECT {select} FROM {self.t}").fetchall()[0]
        names = [name for name, _ in schema.values()]
        self.report.missing_values = {n: int(c) for n, c in zip(names, counts, strict=True) if c}
