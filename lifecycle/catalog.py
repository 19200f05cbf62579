"""The model catalogue: register versions from specs, and read models, versions and schemas.

Registration is one transaction: the model row (first version only), the per-model feature
and reference tables (created or widened), the reference rows, the version row and its
audit row commit together or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lifecycle import lake
from lifecycle.audit import append_audit
from lifecycle.identity import Actor, require
from lifecycle.model_card import insert_card
from lifecycle.spec import (
    MIN_REFERENCE_ROWS,
    REFERENCE_EXTRA,
    ModelSpec,
    SpecError,
    file_sha256,
    load_spec,
)
from lifecycle.staging import (
    LABEL_RULE,
    bad_numeric_rows,
    double_expr,
    fmt_rows,
    label_expr,
    offending,
    stage,
    text_expr,
)
from lifecycle.store import Store, feature_column, feature_table, quote_ident, reference_table

INITIAL_STATE = "registered"


# -- reads (take a cursor so they can run inside a caller's transaction) -------------


def model_info(cur: duckdb.DuckDBPyConnection, model: str) -> dict[str, Any] | None:
    rows = cur.execute(
        "SELECT name, task, owner, risk_tier, description FROM models WHERE name = ?", [model]
    ).fetchall()
    if not rows:
        return None
    name, task, owner, risk, desc = rows[0]
    return {"name": name, "task": task, "owner": owner, "risk_tier": risk, "description": desc}


def model_names(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in cur.execute("SELECT name FROM models ORDER BY name").fetchall()]


def version_names(cur: duckdb.DuckDBPyConnection, model: str) -> list[str]:
    return [
        r[0]
        for r in cur.execute(
            "SELECT version FROM model_versions WHERE model_name = ? ORDER BY registered_at",
            [model],
        ).fetchall()
    ]


def version_spec(cur: duckdb.DuckDBPyConnection, model: str, version: str) -> dict[str, Any]:
    rows = cur.execute(
        "SELECT spec FROM model_versions WHERE model_name = ? AND version = ?", [model, version]
    ).fetchall()
    if not rows:
        raise KeyError(f"unknown version {model} {version}")
    return json.loads(rows[0][0])


def latest_spec(cur: duckdb.DuckDBPyConnection, model: str) -> dict[str, Any] | None:
    rows = cur.execute(
        "SELECT spec FROM model_versions WHERE model_name = ? ORDER BY registered_at DESC LIMIT 1",
        [model],
    ).fetchall()
    return json.loads(rows[0][0]) if rows else None


def model_classes(cur: duckdb.DuckDBPyConnection, model: str) -> list[str] | None:
    spec = latest_spec(cur, model)
    return spec.get("classes") if spec else None


def positive_class(cur: duckdb.DuckDBPyConnection, model: str) -> str | None:
    spec = latest_spec(cur, model)
    return spec.get("positive_class") if spec else None


def model_kpis(cur: duckdb.DuckDBPyConnection, model: str) -> list[str]:
    """KPI names declared by any version of the model."""
    names: list[str] = []
    for r in cur.execute(
        "SELECT spec FROM model_versions WHERE model_name = ? ORDER BY registered_at", [model]
    ).fetchall():
        for kpi in json.loads(r[0]).get("kpis", []):
            if kpi["name"] not in names:
                names.append(kpi["name"])
    return names


def logged_features(cur: duckdb.DuckDBPyConnection, model: str) -> dict[str, str]:
    """Features of any version of the model, as their specs name them: name -> type, in
    registration order (the columns a feature log may have)."""
    out: dict[str, str] = {}
    for (spec,) in cur.execute(
        "SELECT spec FROM model_versions WHERE model_name = ? ORDER BY registered_at", [model]
    ).fetchall():
        for feature in json.loads(spec).get("features", []):
            out.setdefault(feature["name"], feature["type"])
    return out


def feature_schema(cur: duckdb.DuckDBPyConnection, model: str) -> dict[str, str]:
    """Stored columns of the model's feature log (union over versions): column -> type.
    A column is a feature name as `store.feature_column` stores it."""
    rows = cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [feature_table(model)],
    ).fetchall()
    return {
        name: ("numeric" if dtype == "DOUBLE" else "categorical")
        for name, dtype in rows
        if name not in ("prediction_id", "batch_id")
    }


def list_models(store: Store) -> pd.DataFrame:
    return store.query_df(
        "SELECT name, task, owner, risk_tier, description FROM models ORDER BY name"
    )


def list_versions(store: Store, model: str | None = None) -> pd.DataFrame:
    sql = (
        "SELECT model_name, version, state, registered_by, registered_at, state_changed_at, "
        "reference_rows FROM model_versions"
    )
    params: list = []
    if model:
        sql += " WHERE model_name = ?"
        params.append(model)
    return store.query_df(sql + " ORDER BY model_name, registered_at", params)


# -- registration ------------------------------------------------------------------


def register_from_file(store: Store, spec_path: str | Path, *, actor: Actor | None = None) -> dict:
    spec = load_spec(spec_path)
    try:
        return register(store, spec, actor=actor)
    except SpecError as exc:
        if exc.source != spec.name:
            raise
        # name the file, not just the model: the message says where to look
        raise SpecError(f"{spec_path} ({spec.name} {spec.version})", exc.problems) from exc


def register(
    store: Store,
    spec: ModelSpec,
    *,
    actor: Actor | None = None,
    reason: str = "registered from spec",
    source: dict | None = None,
) -> dict:
    """Register one model version; raise SpecError naming the problem, changing nothing.

    `reason` and `source` (added to the evidence) go into the registration's audit row: an
    importer (lifecycle.mlflow_import) names where the version came from.

    `actor` (verified by the caller: lifecycle.identity) needs the `register` permission and
    is recorded as the registrant; None is an in-process caller (the demo, a script) and
    records the spec's owner. The risk tier of a registered model is never lowered here
    (registry.set_risk_tier is the audited way)."""
    if actor is not None and not isinstance(actor, Actor):
        raise TypeError("register's actor is a verified lifecycle.identity.Actor")
    if actor is not None:
        require(actor, "register")  # before anything is read
    registrant = actor.name if actor is not None else spec.owner
    problems = spec_settings_problems(spec.to_json())
    from lifecycle.registry.auto_rollback import registration_problem

    if (problem := registration_problem(spec.to_json(), spec.risk_tier)) is not None:
        problems.append(problem)
    if problems:
        raise SpecError(spec.name, problems)
    if not spec.reference_path.exists():
        raise SpecError(spec.name, [f"reference file {spec.reference_path} does not exist"])
    with store.write_lock(), store.transaction() as cur:
        _check_model_consistency(cur, spec)
        if spec.version in version_names(cur, spec.name):
            raise SpecError(
                spec.name,
                [f"version {spec.version!r} of model {spec.name!r} is already registered"],
            )
        lake_features = "features" in (spec.extra.get("sources") or {}) or (
            lake.is_external(cur, spec.name, "features") is not None
        )
        _ensure_tables(cur, spec, feature_log=not lake_features)
        rows = _load_reference(cur, spec)
        _insert_model_and_version(cur, spec, registrant, rows)
        _declare_sources(cur, spec)
        if spec.model_card:
            insert_card(cur, spec.name, spec.version, spec.model_card, registrant,
                        "registered with the version's spec")  # fmt: skip
        append_audit(
            cur,
            actor=registrant,
            action="register",
            model_name=spec.name,
            version=spec.version,
            from_state=None,
            to_state=INITIAL_STATE,
            reason=reason,
            evidence={
                "reference_rows": rows,
                "reference_sha256": file_sha256(spec.reference_path),
                "training_fingerprint": spec.training.get("data_fingerprint"),
                **({"source": source} if source else {}),
            },
        )
    if spec.extra.get("sources"):
        store.refresh_lake()  # cursors from now on read the new sources' files
    return {"model": spec.name, "version": spec.version, "reference_rows": rows}


def spec_settings_problems(spec: dict) -> list[str]:
    """Every problem of the spec's settings tables ([drift], [monitoring], [alerts],
    [retraining], [rollout]), with the messages `check` and `monitor` give when they read them."""
    # imported here: the drift package pulls in scipy, which `ingest` callers need not pay for
    from lifecycle.alerts.config import AlertConfigError, alert_config
    from lifecycle.alerts.retraining import RetrainingConfigError, retraining_config
    from lifecycle.drift.config import DriftConfigError, drift_config
    from lifecycle.monitoring_plan import MonitoringConfigError, monitoring_settings

    problems: list[str] = []
    readers = (
        (drift_config, DriftConfigError),
        (monitoring_settings, MonitoringConfigError),
        (alert_config, AlertConfigError),
        (retraining_config, RetrainingConfigError),
    )
    for read, error in readers:
        try:
            read(spec)
        except error as exc:
            problems += exc.problems
    from lifecycle.live_comparison import rollout_problems

    problems += rollout_problems(spec.get("rollout", {}))
    return problems


# tiers from least to most scrutiny
_TIER_ORDER = ("low", "high")


def _check_model_consistency(cur, spec: ModelSpec) -> None:
    info = model_info(cur, spec.name)
    if info and info["task"] != spec.task:
        raise SpecError(
            spec.name,
            [f"model {spec.name!r} is registered as {info['task']}, this spec says {spec.task}"],
        )
    if info and _TIER_ORDER.index(spec.risk_tier) < _TIER_ORDER.index(info["risk_tier"]):
        raise SpecError(
            spec.name,
            [
                f"risk_tier is {spec.risk_tier!r} but {spec.name!r} is {info['risk_tier']} "
                "risk; a new version cannot lower it (an admin changes it, audited: "
                f"python -m lifecycle registry set-risk-tier {spec.name} {spec.risk_tier} "
                "--reason ...)"
            ],
        )
    existing = feature_schema(cur, spec.name) if info else {}
    clashes = [
        f"feature {f.name!r} is {existing[feature_column(f.name)]} in earlier versions, "
        f"{f.type} here"
        for f in spec.features
        if existing.get(feature_column(f.name), f.type) != f.type
    ]
    earlier = {n.lower(): n for n in logged_features(cur, spec.name)} if info else {}
    clashes += [
        f"feature {f.name!r} was {earlier[f.name.lower()]!r} in earlier versions; a feature "
        "keeps its name's case across versions (SQL column names ignore case): use "
        f"{earlier[f.name.lower()]!r}"
        for f in spec.features
        if earlier.get(f.name.lower(), f.name) != f.name
    ]
    if clashes:
        raise SpecError(spec.name, clashes)


def _declare_sources(cur, spec: ModelSpec) -> None:
    """Record the spec's external sources and (re)build the model's lake views; a source
    that cannot be read as declared fails the registration (lifecycle.lake)."""
    features = logged_features(cur, spec.name)  # every version's (this one is inserted)
    sources = spec.extra.get("sources") or {}
    if not sources and not lake.external_kinds(cur, spec.name):
        return
    try:
        if sources:
            lake.declare(cur, spec.to_json(), spec.version, spec.task, features)
        else:  # a version without [sources] keeps the model's; its new features join the view
            lake.rebuild_views(cur, task=spec.task, features=features, model=spec.name)
    except lake.LakeError as exc:
        raise SpecError(spec.name, str(exc).splitlines()) from exc


def _ensure_tables(cur, spec: ModelSpec, feature_log: bool = True) -> None:
    """Create or widen the model's feature-log (unless read from a lake) and reference
    tables for this schema."""
    ftable, rtable = feature_table(spec.name), reference_table(spec.name)
    if feature_log:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(ftable)} "
            "(prediction_id VARCHAR NOT NULL, batch_id BIGINT NOT NULL)"
        )
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {quote_ident(rtable)} (model_version VARCHAR NOT NULL, "
        "prediction DOUBLE, predicted_label VARCHAR, actual_value DOUBLE, actual_label VARCHAR, "
        "segment VARCHAR)"
    )
    for table in (ftable, rtable) if feature_log else (rtable,):
        have = {
            r[0]
            for r in cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table],
            ).fetchall()
        }
        for f in spec.features:
            if feature_column(f.name) not in have:
                cur.execute(
                    f"ALTER TABLE {quote_ident(table)} ADD COLUMN "
                    f"{quote_ident(feature_column(f.name))} {f.sql_type}"
                )


def _load_reference(cur, spec: ModelSpec) -> int:
    """Validate the reference file against the spec and insert its rows; return the count."""
    source, what, of = str(spec.reference_path), "the reference file", f"{spec.name} {spec.version}"
    try:
        staged = stage(cur, spec.reference_path, "_reference")
    except ValueError as exc:
        raise SpecError(source, [str(exc)], what, of) from exc
    staged.use_names(cur, [*spec.feature_names, *REFERENCE_EXTRA])
    problems = []
    missing = [c for c in [*spec.feature_names, "prediction", "actual"] if not staged.column(c)]
    if missing:
        problems.append(f"reference file lacks column(s): {', '.join(missing)}")
    extra = staged.extra_columns([*spec.feature_names, *REFERENCE_EXTRA])
    if extra:
        problems.append(
            f"reference file has column(s) not in the feature schema: {', '.join(extra)}"
        )
    if staged.rows < MIN_REFERENCE_ROWS:
        problems.append(
            f"reference file has {staged.rows} row(s); at least {MIN_REFERENCE_ROWS} are needed "
            "for drift baselines"
        )
    if problems:
        raise SpecError(source, problems, what, of)
    numeric = [f.name for f in spec.features if f.type == "numeric"] + ["prediction"]
    if spec.task == "regression":
        numeric.append("actual")
    for col in numeric:
        count, sample = bad_numeric_rows(cur, staged, col)
        if count:
            problems.append(
                f"reference column `{col}` must be numeric; {count} value(s) are not, "
                "first rows: " + fmt_rows(sample)
            )
            continue
        count, sample = offending(
            cur, staged, col, f"NOT isfinite(TRY_CAST({quote_ident(col)} AS DOUBLE))"
        )
        if count:
            problems.append(
                f"reference column `{col}` has {count} NaN or infinite value(s) (leave a cell "
                "empty for a missing value), first rows: " + fmt_rows(sample)
            )
    if spec.task == "binary_classification" and not problems:
        count, sample = offending(
            cur, staged, "prediction", f"NOT ({double_expr('prediction')} BETWEEN 0 AND 1)"
        )
        if count:
            problems.append(
                f"reference column `prediction` has {count} score(s) outside [0, 1] (a binary "
                "classifier's prediction is the probability of the positive class), first rows: "
                + fmt_rows(sample)
            )
    for column in ("actual", "predicted_label") if spec.classes else ():
        if not staged.column(column):
            continue
        label, params = label_expr(column, staged.types[staged.column(column)], spec.classes)
        null_ok = "" if column == "actual" else f"({label}) IS NOT NULL AND "
        count, sample = offending(
            cur,
            staged,
            column,
            f"{null_ok}NOT coalesce(list_contains($classes::VARCHAR[], ({label})), FALSE)",
            {"classes": list(spec.classes), **params},
        )
        if count:
            problems.append(
                f"reference column `{column}` has {count} label(s) not in classes "
                f"{list(spec.classes)}, first rows: " + fmt_rows(sample) + f" ({LABEL_RULE})"
            )
    if problems:
        raise SpecError(source, problems, what, of)
    _insert_reference(cur, spec, staged)
    return staged.rows


def _insert_reference(cur, spec: ModelSpec, staged) -> None:
    params: dict = {"version": spec.version}

    def text(col):
        found = staged.column(col)
        return text_expr(found, staged.types[found]) if found else "NULL"

    def as_class(col):
        found = staged.column(col)
        if not found:
            return "NULL"
        expr, label_params = label_expr(found, staged.types[found], spec.classes)
        params.update(label_params)
        return expr

    actual = as_class("actual")
    if spec.task == "regression":
        value, label = double_expr("actual"), "NULL"
    elif spec.positive_class is not None:
        params["positive"] = spec.positive_class
        value = f"CASE WHEN ({actual}) = $positive THEN 1.0 ELSE 0.0 END"
        label = actual
    else:
        value, label = "NULL", actual
    cols = [
        "model_version",
        "prediction",
        "predicted_label",
        "actual_value",
        "actual_label",
        "segment",
    ]
    exprs = [
        "$version",
        double_expr("prediction"),
        as_class("predicted_label"),
        value,
        label,
        text("segment"),
    ]
    for f in spec.features:
        cols.append(quote_ident(feature_column(f.name)))
        exprs.append(double_expr(f.name) if f.type == "numeric" else text(f.name))
    cur.execute(
        f"INSERT INTO {quote_ident(reference_table(spec.name))} ({', '.join(cols)}) "
        f"SELECT {', '.join(exprs)} FROM _reference ORDER BY _row",
        params,
    )
    cur.execute("DROP TABLE _reference")


def _insert_model_and_version(cur, spec: ModelSpec, actor: str, rows: int) -> None:
    if model_info(cur, spec.name) is None:
        cur.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?, ?, now())",
            [spec.name, spec.task, spec.owner, spec.risk_tier, spec.description],
        )
    else:
        # Owner, description and a raised risk tier follow the newest spec (a lower tier was
        # refused); the audit row of this registration records the spec that changed them.
        cur.execute(
            "UPDATE models SET owner = ?, risk_tier = ?, description = ? WHERE name = ?",
            [spec.owner, spec.risk_tier, spec.description, spec.name],
        )
    training = spec.training
    cur.execute(
        "INSERT INTO model_versions (model_name, version, state, registered_by, registered_at, "
        "spec_toml, spec, training_fingerprint, parameters, validation_metrics, reference_rows, "
        "reference_sha256, revision, state_changed_at) "
        "VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, 0, now())",
        [
            spec.name,
            spec.version,
            INITIAL_STATE,
            actor,
            spec.source_text,
            json.dumps(spec.to_json(), default=str),
            training.get("data_fingerprint"),
            json.dumps(training.get("parameters", {}), default=str),
            json.dumps(training.get("validation_metrics", {}), default=str),
            rows,
            file_sha256(spec.reference_path),
        ],
    )
