"""A version's training run as reviewers read it: the spec's [training] table, sorted into the
run (id, experiment, artifact URI, git commit, datasets, tags) and every other key stored.

Versions imported from MLflow (lifecycle.mlflow_import) carry all of it; a version registered
from a TOML spec shows whichever keys its author wrote (`mlflow_run_id`, `artifact_uri`,
`git_commit`, ...). Links to the MLflow UI need its base URL in $LIFECYCLE_MLFLOW_UI_URL.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from lifecycle import catalog

UI_URL_ENV = "LIFECYCLE_MLFLOW_UI_URL"
# [training] keys shown elsewhere on the page (fingerprint, parameters, metrics) or below
SHOWN_ELSEWHERE = ("data_fingerprint", "parameters", "validation_metrics")
RUN_KEYS = ("mlflow_run_id", "experiment_id", "experiment_name", "artifact_uri", "git_commit")


def mlflow_ui_url() -> str | None:
    """Base URL of the MLflow UI, e.g. http://mlflow.internal:5000 (None: no links)."""
    url = os.environ.get(UI_URL_ENV, "").strip().rstrip("/")
    return url if url.startswith(("http://", "https://")) else None


def training_run(store, model: str, version: str) -> dict[str, Any]:
    """The version's training metadata: `run` (the RUN_KEYS present), `mlflow` (the imported
    MLflow record, or {}), `datasets`, `tags`, `links` (MLflow UI pages, when configured) and
    `other` (every further [training] key, as stored)."""
    with store.cursor() as cur:
        training = catalog.version_spec(cur, model, version).get("training") or {}
    record = training.get("mlflow") if isinstance(training.get("mlflow"), dict) else {}
    run = {key: training[key] for key in RUN_KEYS if training.get(key) not in (None, "")}
    other = {
        key: value
        for key, value in training.items()
        if key not in (*SHOWN_ELSEWHERE, *RUN_KEYS, "mlflow")
    }
    return {
        "run": run,
        "mlflow": record,
        "datasets": list(record.get("datasets") or []),
        "tags": dict(record.get("run_tags") or {}),
        "links": ui_links(run, record),
        "other": other,
    }


def ui_links(run: dict[str, Any], record: dict[str, Any]) -> dict[str, str]:
    """label -> URL of the run's and the model version's pages in the MLflow UI."""
    base = mlflow_ui_url()
    if base is None:
        return {}
    links = {}
    if run.get("experiment_id") and run.get("mlflow_run_id"):
        links["MLflow run"] = (f"{base}/#/experiments/{quote(str(run['experiment_id']))}"
                               f"/runs/{quote(str(run['mlflow_run_id']))}")  # fmt: skip
    if record.get("registered_model") and record.get("version"):
        links["MLflow model version"] = (f"{base}/#/models/{quote(record['registered_model'])}"
                                         f"/versions/{quote(str(record['version']))}")  # fmt: skip
    return links
