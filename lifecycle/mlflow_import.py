"""Import MLflow registered model versions into the registry (`python -m lifecycle import-mlflow`).

An MLflow model version is read in two steps:

1. `prepare` talks to MLflow (imported here only, lazily): it resolves the version (number or
   alias), reads its run, experiment, signature, dataset inputs, tags and descriptions, finds
   the reference (validation) set, and writes an ordinary model spec (TOML) and, where the
   reference had to be materialised, its reference file into a work folder.
2. `apply` registers that spec through the very same path as `register` (lifecycle.catalog),
   as one transaction whose audit row names the MLflow source; it needs no mlflow, so a
   queued import is served by the app's process like any `register` request.

What maps where (docs/mlflow.md):
- signature input columns -> [[features]]: double, float, integer, long -> numeric; string,
  boolean -> categorical; any other column type, a tensor signature or no signature (without
  --features) is refused.
- tags `task`, `owner`, `risk_tier`, `classes`, `positive_class` (model version, else
  registered model, else run; a command-line flag wins) -> the spec's keys.
- run params, metrics -> [training] parameters, validation_metrics; run id, experiment,
  artifact URI, git commit, tags, descriptions, signature and dataset inputs -> [training]
  (the datasets' digests make the training-data fingerprint).

Re-importing a version whose content is unchanged changes nothing; a version whose content
differs from what was imported under the same version id is refused, never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

NUMERIC_TYPES = ("double", "float", "integer", "long")
CATEGORICAL_TYPES = ("string", "boolean")
TASK_NAMES = {
    "binary_classification": "binary_classification",
    "binary": "binary_classification",
    "multiclass_classification": "multiclass_classification",
    "multiclass": "multiclass_classification",
    "regression": "regression",
}
# tag names read from the model version, the registered model and the run (in that order)
TAG_TASK, TAG_OWNER, TAG_RISK = "task", "owner", "risk_tier"
TAG_CLASSES, TAG_POSITIVE = "classes", "positive_class"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
# dataset input contexts (tag mlflow.data.context) that hold the evaluation set, and the
# context whose datasets make the training fingerprint
EVAL_CONTEXTS = ("eval", "evaluation", "validation", "test", "reference")
TRAINING_CONTEXT = "training"
# run artifacts taken as the reference set when no evaluation dataset can be read
REFERENCE_ARTIFACTS = ("reference.parquet", "reference.csv", "reference.json")
READABLE_SUFFIXES = (".parquet", ".pq", ".csv")
# keys of [training].mlflow that say where the version was read from, not what it is
NOT_CONTENT = ("tracking_uri", "content_sha256")
# MLflow sends usage telemetry unless told not to; this console sends nothing anywhere
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


class ImportRefused(ValueError):
    """An MLflow version that cannot be imported; the message says why and what to give."""


@dataclass
class Overrides:
    """Command-line values that fill or replace what the MLflow tags say."""

    task: str | None = None
    owner: str | None = None
    risk_tier: str | None = None
    classes: list[str] | None = None
    positive_class: str | None = None
    features: str | None = None  # "name:numeric,name:categorical"
    reference: Path | None = None
    name: str | None = None  # register under this name instead of the MLflow name


@dataclass
class Prepared:
    """A spec written from an MLflow version, ready for `apply`."""

    spec_path: Path
    model: str
    version: str
    source: dict[str, Any]  # the MLflow source, for the audit row
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    status: str  # "imported" or "already imported"
    model: str
    version: str
    reference_rows: int | None
    source: dict[str, Any]

    def message(self) -> str:
        where = (f"MLflow {self.source['registered_model']} version {self.source['version']}, "
                 f"run {self.source['run_id']}")  # fmt: skip
        if self.status == "imported":
            return (f"imported {self.model} {self.version} from {where} with "
                    f"{self.reference_rows} reference rows (state: registered)")  # fmt: skip
        return f"already imported: {self.model} {self.version} ({where}); nothing changed"


# -- reading MLflow ----------------------------------------------------------------------------


INSTALL_HINT = "pip install mlflow-skinny==3.17.2 sqlalchemy==2.1.9 alembic==1.20.1"


def _mlflow():
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError as exc:
        raise ImportRefused(f"import-mlflow needs MLflow's client ({exc}): {INSTALL_HINT}") from exc
    return mlflow


def safe_uri(uri: str) -> str:
    """The tracking URI without a user name or password (it is stored and shown)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _check_tracking_uri(uri: str) -> None:
    """A sqlite store that does not exist would be created empty by MLflow: refuse instead."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.exists():
            raise ImportRefused(f"no MLflow database at {path} (from --tracking-uri {uri})")


def _client(tracking_uri: str):
    _check_tracking_uri(tracking_uri)
    mlflow = _mlflow()
    return mlflow, mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _model_version(client, name: str, version: str | None, alias: str | None):
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        known = sorted(m.name for m in client.search_registered_models(max_results=100))
        raise ImportRefused(
            f"MLflow has no registered model {name!r}; registered models: "
            f"{', '.join(map(repr, known)) or 'none'}"
        ) from exc
    try:
        if alias is not None:
            return registered, client.get_model_version_by_alias(name, alias)
        return registered, client.get_model_version(name, str(version))
    except MlflowException as exc:
        versions = sorted(
            # every version, filtered here: no value is quoted into a filter string
            int(v.version)
            for v in client.search_model_versions(max_results=10_000)
            if v.name == name
        )
        aliases = sorted(registered.aliases or {})
        what = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise ImportRefused(
            f"MLflow model {name!r} has no {what}; versions: "
            f"{', '.join(map(str, versions)) or 'none'}; aliases: {', '.join(aliases) or 'none'}"
        ) from exc


def _signature_columns(
    mlflow, tracking_uri: str, model_uri: str, name: str, version: str, work: Path
) -> list[dict] | None:
    # the MLmodel file itself: get_model_info would ask the process-wide tracking URI
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{model_uri.rstrip('/')}/MLmodel", dst_path=str(work / "mlmodel"),
        tracking_uri=tracking_uri,
    )  # fmt: skip
    signature = mlflow.models.Model.load(local).signature
    if signature is None or signature.inputs is None:
        return None
    if signature.inputs.is_tensor_spec():
        raise ImportRefused(
            f"MLflow model {name!r} version {version} has a tensor-based signature "
            f"({signature.inputs}); only column-based signatures map to features: pass "
            "--features 'name:numeric,name:categorical,...' to declare them"
        )
    return signature.inputs.to_dict()


def features_from_signature(columns: list[dict], where: str) -> list[dict]:
    """[[features]] tables from a column-based signature's input columns."""
    features, problems = [], []
    for i, column in enumerate(columns, start=1):
        name, kind = column.get("name"), column.get("type")
        if not name:
            problems.append(f"input column {i} has no name")
        elif kind in NUMERIC_TYPES:
            features.append({"name": name, "type": "numeric"})
        elif kind in CATEGORICAL_TYPES:
            features.append({"name": name, "type": "categorical"})
        else:
            problems.append(f"input column {name!r} has type {kind!r}")
    if problems:
        raise ImportRefused(
            f"the signature of {where} does not map to features: {'; '.join(problems)}. "
            f"Numeric: {', '.join(NUMERIC_TYPES)}; categorical: {', '.join(CATEGORICAL_TYPES)}. "
            "Pass --features 'name:numeric,name:categorical,...' to declare them instead"
        )
    return features


def features_from_flag(text: str) -> list[dict]:
    """--features 'age:numeric,plan:categorical'."""
    features, problems = [], []
    for item in (part.strip() for part in text.split(",")):
        name, _, kind = item.rpartition(":")
        if not name or kind not in ("numeric", "categorical"):
            problems.append(repr(item))
        else:
            features.append({"name": name.strip(), "type": kind})
    if problems or not features:
        raise ImportRefused(
            f"--features {text!r}: give name:numeric or name:categorical, comma-separated "
            f"(not understood: {', '.join(problems) or 'empty'})"
        )
    return features


def _tag(tags: list[dict[str, str]], key: str) -> str | None:
    for source in tags:
        if source.get(key, "").strip():
            return source[key].strip()
    return None


def _classes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    with contextlib.suppress(ValueError):
        value = json.loads(text)
        if isinstance(value, list):
            return [str(v) for v in value]
    return [part.strip() for part in text.split(",") if part.strip()]


def _datasets(run) -> list[dict[str, Any]]:
    out = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        tags = {t.key: t.value for t in item.tags or []}
        ds = item.dataset
        out.append({"name": ds.name, "digest": ds.digest, "context": tags.get("mlflow.data.context", ""),
                    "source_type": ds.source_type, "source": ds.source})  # fmt: skip
    # a stable order: the content digest must not depend on how the store lists them
    return sorted(out, key=lambda d: (d["context"], d["name"], d["digest"]))


def training_fingerprint(datasets: list[dict[str, Any]]) -> str | None:
    """The lineage fingerprint: the digests of the run's training datasets (every dataset
    input when none is marked `training`)."""
    used = [d for d in datasets if d["context"] == TRAINING_CONTEXT] or datasets
    if not used:
        return None
    return "mlflow-datasets:" + ";".join(f"{d['name']}@{d['digest']}" for d in used)


# -- the reference set ---------------------------------------------------------------------------


def _local_file(source_json: str) -> Path | None:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        uri = json.loads(source_json).get("uri", "")
        path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if path.suffix.lower() in READABLE_SUFFIXES and path.is_file():
            return path
    return None


def _read_frame(path: Path):
    import pandas as pd

    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() == ".json":  # mlflow.log_table: {"columns": [...], "data": [...]}
        table = json.loads(path.read_text(encoding="utf-8"))
        return pd.DataFrame(table["data"], columns=table["columns"])
    return pd.read_parquet(path)


def _eval_dataset_reference(mlflow, datasets) -> tuple[dict | None, list[str]]:
    """The first evaluation dataset readable here whose file still has its logged digest."""
    notes = []
    for ds in (d for d in datasets if d["context"].lower() in EVAL_CONTEXTS):
        path = _local_file(ds["source"])
        label = f"evaluation dataset {ds['name']!r} ({ds['source_type']} {ds['source']})"
        if path is None:
            notes.append(f"{label} cannot be read here")
            continue
        digest = mlflow.data.from_pandas(_read_frame(path)).digest
        if digest != ds["digest"]:
            notes.append(f"{label}: the file's digest is {digest}, MLflow logged {ds['digest']}")
            continue
        return {"path": path, "origin": f"MLflow dataset {ds['name']} at {path}",
                "digest": f"mlflow:{ds['digest']}"}, notes  # fmt: skip
    return None, notes


def _artifact_reference(client, run_id: str, work: Path) -> dict | None:
    from lifecycle.spec import file_sha256

    names = {a.path for a in client.list_artifacts(run_id)}
    for name in REFERENCE_ARTIFACTS:
        if name not in names:
            continue
        (work / "artifacts").mkdir(exist_ok=True)
        local = Path(client.download_artifacts(run_id, name, str(work / "artifacts")))
        digest = "sha256:" + file_sha256(local)
        if local.suffix == ".json":
            target = work / "reference.parquet"
            _read_frame(local).to_parquet(target, index=False)
            local = target
        return {"path": local, "origin": f"MLflow run artifact {name}", "digest": digest}
    return None


def _find_reference(mlflow, client, run, datasets, overrides: Overrides, work: Path) -> dict:
    from lifecycle.spec import file_sha256

    if overrides.reference is not None:
        path = overrides.reference.resolve()
        if not path.is_file():
            raise ImportRefused(f"--reference {overrides.reference}: no such file")
        return {"path": path, "origin": f"file {path}", "digest": "sha256:" + file_sha256(path)}
    found, notes = _eval_dataset_reference(mlflow, datasets)
    found = found or _artifact_reference(client, run.info.run_id, work)
    if found is None:
        seen = f" ({'; '.join(notes)})" if notes else ""
        raise ImportRefused(
            f"no reference (validation) set for run {run.info.run_id}{seen}: log the evaluation "
            "set as a dataset input with context 'eval' from a local Parquet or CSV file "
            "(mlflow.log_input(mlflow.data.from_pandas(df, source=PATH), context='eval')) or "
            f"as a run artifact named {' or '.join(REFERENCE_ARTIFACTS)}, or pass --reference "
            "FILE (features plus prediction and actual columns)"
        )
    return found


# -- the spec ------------------------------------------------------------------------------------


def registry_name(name: str) -> str:
    """`name` if the registry can take it as a model name; ImportRefused with a suggestion."""
    from lifecycle.store import IDENT

    if IDENT.match(name):
        return name
    slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    slug = (slug if slug[:1].isalpha() else f"m_{slug}")[:48].rstrip("_")
    raise ImportRefused(
        f"MLflow model name {name!r} cannot be a model name here (lower-case letters, digits "
        f"and '_', starting with a letter, at most 48 characters); import it under another "
        f"name with --as {slug}"
    )


def _required(value: str | None, what: str, tag: str, flag: str, allowed=None) -> str:
    if value is None:
        raise ImportRefused(
            f"no {what}: set the MLflow tag {tag!r} on the model version, the registered "
            f"model or the run, or pass {flag}"
            + (f" (one of {', '.join(allowed)})" if allowed else "")
        )
    return value


def build_spec(
    mlflow, client, tracking_uri: str, registered, mv, overrides: Overrides, work: Path
) -> Prepared:
    """Read one MLflow model version and write its spec into `work`."""
    run = client.get_run(mv.run_id)
    artifact_uri = client.get_model_version_download_uri(registered.name, mv.version)
    experiment = client.get_experiment(run.info.experiment_id)
    tags = [dict(mv.tags or {}), dict(registered.tags or {}), dict(run.data.tags or {})]
    where = f"MLflow model {registered.name!r} version {mv.version}"
    name = registry_name(overrides.name or registered.name)
    task_text = overrides.task or _tag(tags, TAG_TASK)
    task = TASK_NAMES.get(_required(task_text, "task", TAG_TASK, "--task", tuple(TASK_NAMES)))
    if task is None:
        raise ImportRefused(f"task {task_text!r} of {where} is not one of {', '.join(TASK_NAMES)}")
    owner = _required(overrides.owner or _tag(tags, TAG_OWNER), "owner", TAG_OWNER, "--owner")
    risk = _required(overrides.risk_tier or _tag(tags, TAG_RISK), "risk tier", TAG_RISK,
                     "--risk-tier", ("low", "high"))  # fmt: skip
    if overrides.features:
        features = features_from_flag(overrides.features)
        columns = None
    else:
        columns = _signature_columns(mlflow, tracking_uri, artifact_uri, registered.name,
                                     mv.version, work)  # fmt: skip
        if columns is None:
            raise ImportRefused(
                f"{where} has no signature, so its features are unknown: log the model with a "
                "signature (mlflow.models.infer_signature) or pass --features "
                "'name:numeric,name:categorical,...'"
            )
        features = features_from_signature(columns, where)
    datasets = _datasets(run)
    reference = _find_reference(mlflow, client, run, datasets, overrides, work)
    mlflow_table = {
        "registered_model": registered.name,
        "version": str(mv.version),
        "source": mv.source or "",
        "run_name": run.info.run_name or "",
        "run_artifact_uri": run.info.artifact_uri or "",
        "model_description": registered.description or "",
        "version_description": mv.description or "",
        "run_tags": dict(run.data.tags or {}),
        "model_tags": dict(registered.tags or {}),
        "version_tags": dict(mv.tags or {}),
        "datasets": datasets,
        "signature": columns or [],
        "reference": {k: reference[k] for k in ("origin", "digest")},
        "tracking_uri": safe_uri(tracking_uri),
    }
    training = {
        "data_fingerprint": training_fingerprint(datasets),
        "parameters": dict(run.data.params or {}),
        "validation_metrics": dict(run.data.metrics or {}),
        "mlflow_run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "experiment_name": experiment.name,
        "artifact_uri": artifact_uri,
        "git_commit": run.data.tags.get(GIT_COMMIT_TAG),
        "mlflow": mlflow_table,
    }
    doc = {
        "name": name,
        "task": task,
        "owner": owner,
        "risk_tier": risk,
        "description": registered.description or mv.description or "",
        "version": str(mv.version),
        "reference": str(reference["path"]),
    }
    classes = overrides.classes or _classes(_tag(tags, TAG_CLASSES))
    positive = overrides.positive_class or _tag(tags, TAG_POSITIVE)
    if classes:
        doc["classes"] = classes
    if positive:
        doc["positive_class"] = positive
    doc["training"] = {k: v for k, v in training.items() if v is not None}
    if card := model_card_from_tags(tags):
        doc["model_card"] = card
    doc["features"] = features
    mlflow_table["content_sha256"] = content_digest(doc)
    path = work / "spec.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    _check_spec(path, where)
    source = {"tracking_uri": mlflow_table["tracking_uri"], "registered_model": registered.name,
              "version": str(mv.version), "run_id": run.info.run_id,
              "experiment": experiment.name}  # fmt: skip
    return Prepared(path, name, str(mv.version), source)


def _check_spec(path: Path, where: str) -> None:
    """Validate the written spec here, so problems name the MLflow version (not a temp file)
    before anything is queued for the database's holder."""
    from lifecycle.spec import SpecError, load_spec

    try:
        load_spec(path)
    except SpecError as exc:
        problems = "\n".join(f"  - {p}" for p in exc.problems)
        raise ImportRefused(f"{where} does not make a valid model spec:\n{problems}") from exc


def _content(doc: dict) -> dict:
    """The spec without what only says where it was read from."""
    out = {k: v for k, v in doc.items() if k != "reference"}
    training = dict(out.get("training", {}))
    table = {k: v for k, v in training.get("mlflow", {}).items() if k not in NOT_CONTENT}
    if "reference" in table:
        table["reference"] = {"digest": table["reference"].get("digest")}
    training["mlflow"] = table
    out["training"] = training
    return out


def content_digest(doc: dict) -> str:
    text = json.dumps(_content(doc), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if old == new else [f"{path}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


# -- TOML ---------------------------------------------------------------------------------------


def _toml_str(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML also wants DEL escaped
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (
            f"{_toml_str(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def model_card_from_tags(tags: list[dict[str, str]]) -> dict[str, Any]:
    """A model card from tags named `model_card.<section>` (version tags first, then the
    registered model's, then the run's); owners and contacts are comma-separated."""
    from lifecycle.model_card import LISTS, SECTIONS

    card: dict[str, Any] = {}
    for section in SECTIONS:
        value = _tag(tags, f"model_card.{section}")
        if value and value.strip():
            card[section] = ([v.strip() for v in value.split(",") if v.strip()]
                             if section in LISTS else value.strip())  # fmt: skip
    return card


def to_toml(doc: dict) -> str:
    """A spec dict as TOML: scalars first, then [training] (and [model_card]), then
    [[features]]."""
    lines = ["# written by python -m lifecycle import-mlflow"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)
              and k != "features"]  # fmt: skip
    lines += ["", "[training]"]
    lines += [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in doc["training"].items()]
    if doc.get("model_card"):
        lines += ["", "[model_card]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in doc["model_card"].items()]
    for feature in doc["features"]:
        lines += ["", "[[features]]"] + [f"{k} = {_toml_value(v)}" for k, v in feature.items()]
    return "\n".join(lines) + "\n"


# -- importing ----------------------------------------------------------------------------------


def prepare(
    tracking_uri: str,
    model: str,
    work: Path,
    *,
    version: str | int | None = None,
    alias: str | None = None,
    overrides: Overrides | None = None,
) -> Prepared:
    """Read an MLflow model version (by number or alias) and write its spec into `work`."""
    if (version is None) == (alias is None):
        raise ImportRefused("give the MLflow model version (--version N) or an alias (--alias A)")
    mlflow, client = _client(tracking_uri)
    try:
        registered, mv = _model_version(client, model, version, alias)
        if mv.status and mv.status != "READY":
            raise ImportRefused(f"MLflow model {model!r} version {mv.version} is {mv.status}, "
                                "not READY: import it once its registration has finished")  # fmt: skip
        overrides = overrides or Overrides()
        return build_spec(mlflow, client, tracking_uri, registered, mv, overrides, work)
    except ImportError as exc:  # e.g. a sqlite store without SQLAlchemy
        raise ImportRefused(f"reading {safe_uri(tracking_uri)} needs {exc.name or exc}: "
                            f"{INSTALL_HINT}") from exc  # fmt: skip
    except mlflow.exceptions.MlflowException as exc:
        raise ImportRefused(f"MLflow at {safe_uri(tracking_uri)} answered: {exc.message}") from exc


def apply(store, prepared: Prepared, *, actor=None) -> ImportResult:
    """Register a prepared spec unless the same content is already there (no mlflow needed).

    Refused (SpecError / ImportRefused) when the version id exists with other content or was
    not imported from MLflow; the registration and its audit row are one transaction."""
    from lifecycle import catalog
    from lifecycle.identity import require
    from lifecycle.spec import SpecError, load_spec

    if actor is not None:
        require(actor, "register")
    spec = load_spec(prepared.spec_path)
    with store.cursor() as cur:
        known = spec.version in catalog.version_names(cur, spec.name)
        stored = catalog.version_spec(cur, spec.name, spec.version) if known else None
    if stored is not None:
        _same_or_refuse(stored, spec.to_json(), prepared)
        return ImportResult("already imported", spec.name, spec.version, None, prepared.source)
    s = prepared.source
    try:
        result = catalog.register(
            store, spec, actor=actor, source={"mlflow": s},
            reason=f"imported from MLflow: {s['registered_model']} version {s['version']}, "
                   f"run {s['run_id']} ({s['tracking_uri']})",
        )  # fmt: skip
    except SpecError as exc:
        if exc.source != str(spec.reference_path):
            raise
        origin = spec.training["mlflow"]["reference"]["origin"]  # not the temporary copy
        of = f"{spec.name} {spec.version}"
        raise SpecError(origin, exc.problems, "the reference set", of) from exc
    return ImportResult("imported", spec.name, spec.version, result["reference_rows"], s)


def _same_or_refuse(stored: dict, new: dict, prepared: Prepared) -> None:
    where = f"version {prepared.version!r} of model {prepared.model!r}"
    old_table = stored.get("training", {}).get("mlflow")
    if not isinstance(old_table, dict):
        raise ImportRefused(f"{where} is already registered and was not imported from MLflow; "
                            "import under another name with --as NAME")  # fmt: skip
    new_table = new["training"]["mlflow"]
    if old_table.get("content_sha256") == new_table["content_sha256"]:
        return
    changes = _differences(_content(stored), _content(new))
    changes = [c for c in changes if not c.startswith("training.mlflow.content_sha256")]
    listing = "; ".join(changes[:8]) + (
        f"; and {len(changes) - 8} more" if len(changes) > 8 else ""
    )
    raise ImportRefused(
        f"{where} was imported from MLflow {old_table.get('registered_model')} version "
        f"{old_table.get('version')} with other content; an imported version is never "
        f"overwritten. Differences: {listing or 'the content digest'}. Register the change "
        "as a new MLflow version"
    )


def import_version(
    store,
    tracking_uri: str,
    model: str,
    *,
    version: str | int | None = None,
    alias: str | None = None,
    overrides: Overrides | None = None,
    actor=None,
) -> ImportResult:
    """Import one MLflow model version into `store` (a script's or a test's entry point)."""
    with tempfile.TemporaryDirectory(prefix="lifecycle-mlflow-") as work:
        prepared = prepare(tracking_uri, model, Path(work), version=version, alias=alias,
                           overrides=overrides)  # fmt: skip
        return apply(store, prepared, actor=actor)


# -- command line -------------------------------------------------------------------------------


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "import-mlflow",
        help="register an MLflow model version (run, params, metrics, signature, datasets)",
        description="Register an MLflow registered model version in this registry: its run, "
        "experiment, parameters, metrics, tags, artifact URI, signature (-> features) and "
        "dataset digests (-> training fingerprint). Task, owner and risk tier come from the "
        "MLflow tags task, owner, risk_tier (model version, registered model, run) or the "
        "flags. Re-importing the same version changes nothing; changed content is refused. "
        "Exit codes: 0 imported or already imported, 2 refused, 3 the app did not answer.",
    )
    p.add_argument("--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)")
    p.add_argument("--tracking-uri", required=True,
                   help="MLflow tracking/registry URI, e.g. sqlite:///mlflow.db")  # fmt: skip
    p.add_argument("--model", required=True, help="MLflow registered model name")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="MLflow model version number")
    which.add_argument("--alias", help="MLflow model version alias, e.g. champion")
    p.add_argument("--as", dest="name", help="register under this name (default: the MLflow name)")
    p.add_argument("--reference", type=Path,
                   help="reference (validation) file, Parquet or CSV: features, prediction, "
                   "actual (default: the run's evaluation dataset or reference artifact)")  # fmt: skip
    p.add_argument("--features",
                   help="'name:numeric,name:categorical,...' instead of the signature's columns")  # fmt: skip
    p.add_argument("--task", choices=tuple(TASK_NAMES), help="instead of the tag `task`")
    p.add_argument("--owner", help="instead of the tag `owner`")
    p.add_argument("--risk-tier", choices=("low", "high"), help="instead of the tag `risk_tier`")
    p.add_argument("--classes", help="comma-separated classes (instead of the tag `classes`)")
    p.add_argument("--positive-class", help="instead of the tag `positive_class`")
    p.add_argument("--actor", help="who imports it (needs the deployer or admin role); as for "
                   "register")  # fmt: skip
    p.add_argument(
        "--config", help="identity config when the command runs itself (as for register)"
    )
    p.add_argument("--wait", type=float, default=60.0,
                   help="if the app holds the database, seconds to wait for it (default 60)")  # fmt: skip
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from lifecycle.cli import run_registration
    from lifecycle.identity import ConfigError, IdentityError, caller_token, load_identity_config
    from lifecycle.store import resolve_db_path

    token = caller_token()
    try:  # a quick answer before reading MLflow; the acting process checks again
        load_identity_config(args.config).caller(args.actor, token)
    except (ConfigError, IdentityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    overrides = Overrides(
        task=args.task, owner=args.owner, risk_tier=args.risk_tier,
        classes=_classes(args.classes), positive_class=args.positive_class,
        features=args.features, reference=args.reference, name=args.name,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lifecycle-mlflow-") as work:
        try:
            prepared = prepare(args.tracking_uri, args.model, Path(work), version=args.version,
                               alias=args.alias, overrides=overrides)  # fmt: skip
        except ImportRefused as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
        params = {"kind": "import_mlflow", "error_exit": 3, "spec": str(prepared.spec_path),
                  "model": prepared.model, "version": prepared.version,
                  "source": prepared.source, "actor": args.actor, "token": token,
                  "config": args.config}  # fmt: skip
        return run_registration(resolve_db_path(args.db), params, args.wait)


def serve_request(store, params: dict):
    """Register a prepared import as the verified caller (here or in the app's process)."""
    from lifecycle.identity import ConfigError, IdentityError, PermissionDenied, request_identity
    from lifecycle.requests import Outcome
    from lifecycle.spec import SpecError

    try:
        actor, how = request_identity(params)
    except (ConfigError, IdentityError, ValueError) as exc:
        return Outcome(2, stderr=f"refused: {exc}")
    note = f"acting as {actor.name} ({how})"
    prepared = Prepared(Path(params["spec"]), params["model"], params["version"], params["source"])
    try:
        result = apply(store, prepared, actor=actor)
    except (PermissionDenied, ImportRefused) as exc:
        return Outcome(2, stderr=f"refused: {exc}\n{note}")
    except SpecError as exc:
        return Outcome(2, stderr=f"refused: {exc}\n{note}")
    return Outcome(0, stdout=result.message(), stderr=note)
