"""Model specs: the TOML file a model version is registered from.

Parsing and validation only; nothing here touches the project's database. Every problem
found is collected, so one run of `register` names all of them, each with where it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from lifecycle.lake import parse_sources
from lifecycle.model_card import parse_card
from lifecycle.store import IDENT, feature_column, quote_ident

TASKS = ("binary_classification", "multiclass_classification", "regression")
RISK_TIERS = ("low", "high")
FEATURE_TYPES = ("numeric", "categorical")
KPI_DIRECTIONS = ("higher_is_better", "lower_is_better")
SQL_TYPE = {"numeric": "DOUBLE", "categorical": "VARCHAR"}
# Columns of the reference file besides the features.
REFERENCE_EXTRA = ("prediction", "predicted_label", "actual", "segment")
MIN_REFERENCE_ROWS = 50
MAX_FEATURE_NAME = 128
# Stored columns a feature may not take: the logs' own columns and the reference file's.
RESERVED_COLUMNS = frozenset({"prediction_id", "batch_id", *REFERENCE_EXTRA})

TOP_LEVEL_KEYS = {
    "name",
    "task",
    "owner",
    "risk_tier",
    "description",
    "version",
    "reference",
    "classes",
    "positive_class",
    "sensitive_attribute",
    "sensitive_attributes",
    "training",
    "model_card",
    "features",
    "kpis",
    "rules",
    # Sections whose contents belong to the monitoring, alerting and retraining modules;
    # those modules validate them when they read them.
    "drift",
    "alerts",
    "retraining",
    "monitoring",
    "rollout",
    "sources",  # logs read in place (lifecycle.lake)
}


class SpecError(ValueError):
    """A spec that cannot be registered; `problems` lists every reason with its location."""

    def __init__(self, source: str, problems: list[str], what: str = "spec", of: str = ""):
        self.source = source  # the file, as given
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        owner = f" (of {of})" if of else ""
        super().__init__(f"{what} {source}{owner} is not valid:\n{listing}")


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    range: tuple[float, float] | None = None
    values: tuple[str, ...] | None = None
    drift_method: str | None = None
    description: str = ""

    @property
    def sql_type(self) -> str:
        return SQL_TYPE[self.type]


@dataclass(frozen=True)
class Kpi:
    name: str
    direction: str = "higher_is_better"
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    sql: str
    description: str = ""


@dataclass
class ModelSpec:
    name: str
    task: str
    owner: str
    risk_tier: str
    version: str
    description: str
    features: list[Feature]
    kpis: list[Kpi]
    rules: list[Rule]
    reference_path: Path
    classes: list[str] | None = None
    positive_class: str | None = None
    sensitive_attribute: str | None = None
    sensitive_attributes: list[str] = field(default_factory=list)  # more, monitored over time
    training: dict[str, Any] = field(default_factory=dict)
    model_card: dict[str, Any] = field(default_factory=dict)  # lifecycle.model_card
    extra: dict[str, Any] = field(default_factory=dict)
    source_text: str = ""

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> dict[str, Any]:
        """The spec as stored in model_versions.spec (paths made plain strings)."""
        return {
            "name": self.name,
            "task": self.task,
            "owner": self.owner,
            "risk_tier": self.risk_tier,
            "version": self.version,
            "description": self.description,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "sensitive_attribute": self.sensitive_attribute,
            "sensitive_attributes": self.sensitive_attributes,
            "features": [
                {
                    "name": f.name,
                    "type": f.type,
                    "range": list(f.range) if f.range else None,
                    "values": list(f.values) if f.values else None,
                    "drift_method": f.drift_method,
                    "description": f.description,
                }
                for f in self.features
            ],
            "kpis": [vars(k) for k in self.kpis],
            "rules": [vars(r) for r in self.rules],
            "training": self.training,
            **({"model_card": self.model_card} if self.model_card else {}),
            "reference": str(self.reference_path),
            **self.extra,
        }


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate a spec file; raise SpecError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise SpecError(
            str(path),
            [
                f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                "a spec is a TOML text file"
            ],
        ) from exc
    if "\x00" in text:
        raise SpecError(str(path), ["the file holds NUL bytes; a spec is a TOML text file"])
    return parse_spec(text, source=str(path), base_dir=path.parent)


def parse_spec(text: str, *, source: str = "<string>", base_dir: Path | None = None) -> ModelSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, [f"not valid TOML: {exc}"]) from exc
    problems: list[str] = []
    spec = _build(raw, problems, base_dir or Path("."))
    if problems:
        raise SpecError(source, problems)
    assert spec is not None
    spec.source_text = text
    return spec


def _text(raw: dict, key: str, problems: list[str], where: str = "", required: bool = True) -> str:
    value = raw.get(key)
    label = f"{where}{key}"
    if value is None:
        if required:
            problems.append(f"`{label}` is missing")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(f"`{label}` must be a non-empty string, got {value!r}")
        return ""
    return value.strip()


def _choice(raw: dict, key: str, allowed: tuple[str, ...], problems: list[str], where="") -> str:
    value = _text(raw, key, problems, where)
    if value and value not in allowed:
        problems.append(f"`{where}{key}` is {value!r}; expected one of {', '.join(allowed)}")
    return value


def _build(raw: dict, problems: list[str], base_dir: Path) -> ModelSpec | None:
    for key in sorted(set(raw) - TOP_LEVEL_KEYS):
        problems.append(f"unknown key `{key}` (known keys: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    name = _text(raw, "name", problems)
    if name and not IDENT.match(name):
        problems.append(
            f"`name` {name!r} must be lower-case letters, digits and '_', starting with a letter"
        )
    task = _choice(raw, "task", TASKS, problems)
    owner = _text(raw, "owner", problems)
    risk_tier = _choice(raw, "risk_tier", RISK_TIERS, problems)
    version = _text(raw, "version", problems)
    if version and (len(version) > 40 or any(c.isspace() for c in version)):
        problems.append(f"`version` {version!r} must be at most 40 characters with no spaces")
    description = _text(raw, "description", problems, required=False)
    reference = _text(raw, "reference", problems)
    features = _features(raw.get("features"), problems)
    kpis = _kpis(raw.get("kpis", []), problems)
    rules = _rules(raw.get("rules", []), features, problems)
    classes, positive = _classes(raw, task, problems)
    sensitive = raw.get("sensitive_attribute")
    if sensitive is not None and sensitive not in {f.name for f in features}:
        problems.append(f"`sensitive_attribute` {sensitive!r} is not one of the features")
    sensitive_list = raw.get("sensitive_attributes", [])
    if not isinstance(sensitive_list, list) or not all(isinstance(a, str) for a in sensitive_list):
        problems.append("`sensitive_attributes` must be a list of feature names")
        sensitive_list = []
    for attribute in sensitive_list:
        if attribute not in {f.name for f in features}:
            problems.append(f"`sensitive_attributes` names {attribute!r}, which is not a feature")
    training = raw.get("training", {})
    if not isinstance(training, dict):
        problems.append("`training` must be a table")
        training = {}
    model_card, card_problems = parse_card(raw.get("model_card", {}))
    problems += card_problems
    sources, source_problems = parse_sources(
        raw.get("sources"), base_dir, [f.name for f in features]
    )
    problems += source_problems
    extra = {
        k: raw[k] for k in ("drift", "alerts", "retraining", "monitoring", "rollout") if k in raw
    }
    for key, value in extra.items():
        if not isinstance(value, dict):
            problems.append(f"`{key}` must be a table")
    if sources:
        extra["sources"] = sources
    if problems:
        return None
    ref_path = Path(reference)
    if not ref_path.is_absolute():
        ref_path = base_dir / ref_path
    return ModelSpec(
        name=name,
        task=task,
        owner=owner,
        risk_tier=risk_tier,
        version=version,
        description=description,
        features=features,
        kpis=kpis,
        rules=rules,
        reference_path=ref_path,
        classes=classes,
        positive_class=positive,
        sensitive_attribute=sensitive,
        sensitive_attributes=list(dict.fromkeys(sensitive_list)),
        training=training,
        model_card=model_card,
        extra=extra,
    )


def _features(items: Any, problems: list[str]) -> list[Feature]:
    if not isinstance(items, list) or not items:
        problems.append("`features` is missing: declare at least one [[features]] table")
        return []
    out: list[Feature] = []
    seen: dict[str, str] = {}  # lower-cased name -> the name as declared
    for i, item in enumerate(items, start=1):
        where = f"features[{i}]."
        if not isinstance(item, dict):
            problems.append(f"`features[{i}]` must be a table")
            continue
        known = {"name", "type", "range", "values", "drift_method", "description"}
        for key in sorted(set(item) - known):
            problems.append(f"unknown key `{where}{key}`")
        name = _text(item, "name", problems, where)
        ftype = _choice(item, "type", FEATURE_TYPES, problems, where)
        if name:
            where = f"features[{i}] ({name})."
            _check_feature_name(name, seen, problems)
        rng = _range(item.get("range"), ftype, where, problems)
        values = _values(item.get("values"), ftype, where, problems)
        method = item.get("drift_method")
        if method is not None and not isinstance(method, str):
            problems.append(f"`{where}drift_method` must be a string")
        out.append(
            Feature(
                name=name,
                type=ftype,
                range=rng,
                values=values,
                drift_method=method,
                description=str(item.get("description", "")),
            )
        )
    columns = [feature_column(name) for name in seen.values()]
    if len(set(columns)) < len(columns):  # a name equal to another's slug and digest
        problems.append(f"two feature names map to one stored column in {columns}; rename one")
    return out


def _bad_text(name: str) -> bool:
    return len(name) > MAX_FEATURE_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name)


def _check_feature_name(name: str, seen: dict[str, str], problems: list[str]) -> None:
    """Any name a data frame can have, minus what would be ambiguous in the logs or in SQL:
    control characters, the log files' own columns, the console's `_` columns, and two
    names that differ only in case (SQL column names are case-insensitive)."""
    if _bad_text(name):
        problems.append(
            f"feature name {name!r} must be at most {MAX_FEATURE_NAME} characters without "
            "control characters (tabs, line breaks)"
        )
        return
    if name != name.strip():
        problems.append(f"feature name {name!r} starts or ends with a space; remove it")
    column = feature_column(name)
    if name.startswith("_") or column in RESERVED_COLUMNS:
        problems.append(
            f"feature name {name!r} is reserved (a column of the log files or of the console "
            "itself: prediction_id, batch_id, prediction, predicted_label, actual, segment, "
            "or a name starting with '_'); rename the feature"
        )
    key = name.lower()
    if name in seen.values():
        problems.append(f"feature {name!r} is declared twice")
    elif key in seen:
        problems.append(
            f"features {seen[key]!r} and {name!r} differ only in case; column names are "
            "case-insensitive in SQL, so rename one of them"
        )
    seen.setdefault(key, name)


def _range(value: Any, ftype: str, where: str, problems: list[str]):
    if value is None:
        return None
    if ftype != "numeric":
        problems.append(f"`{where}range` is only allowed for numeric features")
        return None
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and math.isfinite(v) for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        problems.append(
            f"`{where}range` must be [low, high] with finite low <= high, got {value!r}"
        )
        return None
    return (float(value[0]), float(value[1]))


def _values(value: Any, ftype: str, where: str, problems: list[str]):
    if value is None:
        return None
    if ftype != "categorical":
        problems.append(f"`{where}values` is only allowed for categorical features")
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(f"`{where}values` must be a non-empty list of strings, got {value!r}")
        return None
    if len(set(value)) != len(value):
        problems.append(f"`{where}values` lists a value twice")
    return tuple(value)


def _kpis(items: Any, problems: list[str]) -> list[Kpi]:
    if not isinstance(items, list):
        problems.append("`kpis` must be a list of [[kpis]] tables")
        return []
    out = []
    for i, item in enumerate(items, start=1):
        where = f"kpis[{i}]."
        if not isinstance(item, dict):
            problems.append(f"`kpis[{i}]` must be a table")
            continue
        for key in sorted(set(item) - {"name", "direction", "unit", "description"}):
            problems.append(f"unknown key `{where}{key}`")
        name = _text(item, "name", problems, where)
        if name and _bad_text(name):
            problems.append(
                f"KPI name {name!r} must be at most {MAX_FEATURE_NAME} characters without "
                "control characters (tabs, line breaks)"
            )
        direction = item.get("direction", "higher_is_better")
        if direction not in KPI_DIRECTIONS:
            problems.append(
                f"`{where}direction` is {direction!r}; expected one of {', '.join(KPI_DIRECTIONS)}"
            )
        out.append(
            Kpi(
                name=name,
                direction=direction,
                unit=str(item.get("unit", "")),
                description=str(item.get("description", "")),
            )
        )
    return out


def _rules(items: Any, features: list[Feature], problems: list[str]) -> list[Rule]:
    if not isinstance(items, list):
        problems.append("`rules` must be a list of [[rules]] tables")
        return []
    out = []
    names: set[str] = set()
    for i, item in enumerate(items, start=1):
        where = f"rules[{i}]."
        if not isinstance(item, dict):
            problems.append(f"`rules[{i}]` must be a table")
            continue
        for key in sorted(set(item) - {"name", "sql", "description"}):
            problems.append(f"unknown key `{where}{key}`")
        name = _text(item, "name", problems, where)
        sql = _text(item, "sql", problems, where)
        if name in names:
            problems.append(f"rule {name!r} is declared twice")
        names.add(name)
        # a rule is bound against the feature columns: only when every feature is well-formed
        # (a feature with a bad type is reported on its own)
        if sql and features and all(f.name and f.type in SQL_TYPE for f in features):
            error = rule_error(sql, features)
            if error:
                problems.append(f"rule {name or i!r} ({sql}) does not parse: {error}")
        out.append(Rule(name=name, sql=sql, description=str(item.get("description", ""))))
    return out


def rule_error(sql: str, features: list[Feature]) -> str | None:
    """Why `sql` is not a boolean expression over the feature columns, or None if it is.

    The expression is bound against an empty table with exactly the feature columns in an
    isolated in-memory database, so it can reference nothing else and runs nothing.
    """
    if ";" in sql:
        return "a rule is one expression; ';' is not allowed"
    con = duckdb.connect(":memory:")
    try:
        cols = ", ".join(f"{quote_ident(f.name)} {f.sql_type}" for f in features if f.name)
        con.execute(f"CREATE TABLE features ({cols})")
        statements = con.extract_statements(f"SELECT ({sql}) FROM features")
        if len(statements) != 1:
            return "a rule is one expression"
        # Monitoring runs the rule as a row filter over the real database, so it must be one
        # row-level expression: the query with it as the WHERE clause must keep the shape of
        # a plain filter (text such as "x > 0) UNION SELECT ... (true" changes it), and a
        # WHERE clause refuses aggregates and window functions when bound.
        as_filter = f"SELECT * FROM features WHERE ({sql})"
        shape_error = _filter_shape_error(con, as_filter)
        if shape_error:
            return shape_error
        con.execute(f"DESCRIBE {as_filter}").fetchall()
        con.execute(f"DESCRIBE SELECT CAST(({sql}) AS BOOLEAN) AS ok FROM features").fetchall()
        types = con.execute(f"DESCRIBE SELECT ({sql}) AS ok FROM features").fetchall()
        if types[0][1] != "BOOLEAN":
            return f"the expression gives {types[0][1]}, not a boolean"
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    finally:
        con.close()
    return None


def _filter_shape_error(con: duckdb.DuckDBPyConnection, query: str) -> str | None:
    """Why `query` is not `SELECT * FROM features WHERE <one expression, no subquery>`."""

    def tree(text: str) -> dict:
        return json.loads(con.execute("SELECT json_serialize_sql(?)", [text]).fetchall()[0][0])

    if len(con.extract_statements(query)) != 1:  # raises the parser's error if it does not parse
        return "a rule is one expression"
    got = tree(query)
    if got.get("error") or len(got["statements"]) != 1:
        return "a rule is one expression"
    node = got["statements"][0]["node"]
    plain = tree("SELECT * FROM features WHERE (true)")["statements"][0]["node"]
    if {k: v for k, v in node.items() if k != "where_clause"} != {
        k: v for k, v in plain.items() if k != "where_clause"
    }:
        return "a rule is one expression over the feature columns"
    if '"SUBQUERY"' in json.dumps(node["where_clause"]):
        return "a rule may not contain a subquery: it reads only the feature columns"
    return None


def _classes(raw: dict, task: str, problems: list[str]):
    classes = raw.get("classes")
    positive = raw.get("positive_class")
    if classes is not None and (
        not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
    ):
        problems.append("`classes` must be a list of strings")
        classes = None
    if task == "binary_classification":
        classes = classes or ["0", "1"]
        if len(classes) != 2:
            problems.append("a binary classifier has exactly two `classes`")
        positive = positive if positive is not None else classes[-1]
        if positive not in classes:
            problems.append(f"`positive_class` {positive!r} is not one of {classes}")
    elif task == "multiclass_classification":
        if not classes or len(classes) < 3:
            problems.append("a multiclass classifier declares `classes` (at least three)")
    elif task == "regression" and (classes or positive):
        problems.append("a regression model has no `classes` or `positive_class`")
    return classes, positive


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
