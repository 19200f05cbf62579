"""MLflow import against a real local MLflow tracking store (sqlite backend) made here: two runs
with params, metrics, dataset inputs with digests and a signature, two registered versions, an
alias; every mapped field checked in the registry, idempotent re-import, and the refusals."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, registry, training_run
from lifecycle.store import Store, quote_ident, reference_table
from tests.browser import ROOT

mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is a test extra")
im = pytest.importorskip("lifecycle.mlflow_import")

OWNER = "maria.owner@example.com"
GIT = "0123456789abcdef0123456789abcdef01234567"


class NoNetwork:
    """Fail any IP connection (MLflow must reach nothing: telemetry off, sqlite store)."""

    def __init__(self):
        self.attempts: list = []

    def __enter__(self):
        self._connect, outer = socket.socket.connect, self

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                outer.attempts.append(address)
                raise OSError(f"network use in a test: {address}")
            return outer._connect(sock, address)

        socket.socket.connect = connect
        return self

    def __exit__(self, *exc):
        socket.socket.connect = self._connect


class Scorer(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return 1 / (1 + np.exp(-(model_input["age"] - 40) / 10))


def frame(seed: int, rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"age": rng.normal(40, 10, rows), "plan": rng.choice(["basic", "pro"], rows),
                      "tenure": rng.integers(0, 60, rows)})  # fmt: skip
    score = 1 / (1 + np.exp(-(x["age"] - 40) / 10))
    return x.assign(prediction=score, actual=(rng.uniform(0, 1, rows) < score).astype(int))


def log_version(client, name, *, seed, params, metrics, eval_file=None, table=False,
                signature="columns", tags=None):  # fmt: skip
    """One run logging a model (registered as a new version of `name`); its run id."""
    data = frame(seed)
    features = data[["age", "plan", "tenure"]]
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags({im.GIT_COMMIT_TAG: GIT, "team": "retention", **(tags or {})})
        train = mlflow.data.from_pandas(frame(seed + 100), source="/data/train.parquet",
                                        name=f"train-{seed}")  # fmt: skip
        mlflow.log_input(train, context="training")
        if eval_file is not None:
            data.to_parquet(eval_file)
            evaluation = mlflow.data.from_pandas(data, source=str(eval_file), name="holdout")
            mlflow.log_input(evaluation, context="eval")
        if table:
            mlflow.log_table(data, "reference.json")
        sig = {
            "columns": mlflow.models.infer_signature(features, data["prediction"]),
            "none": None,
            "tensor": mlflow.models.infer_signature(
                features[["age", "tenure"]].to_numpy(float), data["prediction"]),
            "datetime": mlflow.models.infer_signature(
                features.assign(seen=pd.Timestamp("2026-01-01")), data["prediction"]),
        }[signature]  # fmt: skip
        mlflow.pyfunc.log_model(name="model", python_model=Scorer(), signature=sig,
                                registered_model_name=name)  # fmt: skip
    return run.info.run_id


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A sqlite MLflow store: churn v1 (eval dataset file) and v2 (reference table artifact,
    alias champion); plus models for the refusals. Yields (uri, run ids, folder)."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp, NoNetwork() as guard:
        for key, value in im.QUIET_ENV.items():
            mp.setenv(key, value)
        mp.chdir(folder)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("churn-training",
                                               artifact_location=str(folder / "artifacts"))  # fmt: skip
        mlflow.set_experiment(experiment_id=experiment)
        client.create_registered_model(
            "churn", description="Probability that a subscriber cancels within 30 days",
            tags={"task": "binary_classification", "owner": OWNER, "risk_tier": "low"},
        )  # fmt: skip
        runs = {
            "1": log_version(client, "churn", seed=1, params={"C": 0.5, "max_iter": 100},
                             metrics={"roc_auc": 0.81, "log_loss": 0.52},
                             eval_file=folder / "holdout-1.parquet"),
            "2": log_version(client, "churn", seed=2, params={"C": 1.0, "max_iter": 200},
                             metrics={"roc_auc": 0.86, "log_loss": 0.47}, table=True),
        }  # fmt: skip
        client.update_model_version("churn", "2", description="retrained on November data")
        client.set_registered_model_alias("churn", "champion", "2")
        bare = {"task": "regression", "owner": OWNER, "risk_tier": "high"}
        for name, signature in (("no_signature", "none"), ("tensor_model", "tensor"),
                                ("dated", "datetime")):  # fmt: skip
            client.create_registered_model(name, tags=bare)
            log_version(client, name, seed=3, params={}, metrics={}, table=True,
                        signature=signature)  # fmt: skip
        client.create_registered_model("untagged")  # no task, owner, risk tier
        log_version(client, "untagged", seed=4, params={}, metrics={}, table=True)
        client.create_registered_model("no_reference", tags=bare)
        log_version(client, "no_reference", seed=5, params={}, metrics={})
        client.create_registered_model("Churn Model", tags=bare)
        log_version(client, "Churn Model", seed=6, params={}, metrics={}, table=True)
    assert guard.attempts == []
    yield uri, runs, folder


@pytest.fixture
def quiet(monkeypatch):
    with NoNetwork() as guard:
        yield
    assert guard.attempts == []


def audit_rows(store, model):
    return store.query_df(
        "SELECT action, version, reason, evidence FROM audit_log WHERE model_name = ? "
        "ORDER BY audit_id", [model],
    )  # fmt: skip


def test_import_by_version_maps_every_field(tracking, store, quiet):
    uri, runs, folder = tracking
    result = im.import_version(store, uri, "churn", version=1)
    assert (result.status, result.model, result.version) == ("imported", "churn", "1")
    assert result.reference_rows == 120
    with store.cursor() as cur:
        spec = catalog.version_spec(cur, "churn", "1")
        info = catalog.model_info(cur, "churn")
        row = cur.execute(
            "SELECT training_fingerprint, parameters, validation_metrics, reference_rows, state "
            "FROM model_versions WHERE model_name = 'churn' AND version = '1'"
        ).fetchall()[0]
    assert info == {"name": "churn", "task": "binary_classification", "owner": OWNER,
                    "risk_tier": "low",
                    "description": "Probability that a subscriber cancels within 30 days"}  # fmt: skip
    # signature -> features: double and long numeric, string categorical
    assert [(f["name"], f["type"]) for f in spec["features"]] == [
        ("age", "numeric"), ("plan", "categorical"), ("tenure", "numeric")]  # fmt: skip
    fingerprint, params, metrics, rows, state = row
    train_digest = mlflow.data.from_pandas(frame(101)).digest
    assert fingerprint == f"mlflow-datasets:train-1@{train_digest}"
    assert json.loads(params) == {"C": "0.5", "max_iter": "100"}  # MLflow keeps params as text
    assert json.loads(metrics) == {"roc_auc": 0.81, "log_loss": 0.52}
    assert (rows, state) == (120, "registered")
    training = spec["training"]
    assert training["mlflow_run_id"] == runs["1"]
    assert training["experiment_name"] == "churn-training"
    assert training["experiment_id"] == mlflow.MlflowClient(uri).get_experiment_by_name(
        "churn-training").experiment_id  # fmt: skip
    assert training["git_commit"] == GIT
    assert training["artifact_uri"].startswith(str(folder / "artifacts"))
    record = training["mlflow"]
    assert (record["registered_model"], record["version"]) == ("churn", "1")
    assert record["run_tags"]["team"] == "retention"
    assert record["model_tags"]["owner"] == OWNER
    assert record["model_description"].startswith("Probability")
    contexts = {d["name"]: (d["context"], d["digest"]) for d in record["datasets"]}
    holdout = mlflow.data.from_pandas(frame(1)).digest
    assert contexts == {"train-1": ("training", train_digest), "holdout": ("eval", holdout)}
    assert record["reference"] == {"origin": f"MLflow dataset holdout at {folder}/holdout-1.parquet",
                                   "digest": f"mlflow:{holdout}"}  # fmt: skip
    assert [c["type"] for c in record["signature"]] == ["double", "string", "long"]
    # the reference rows are the evaluation dataset's
    table = quote_ident(reference_table("churn"))
    ref = store.query_df(f"SELECT prediction FROM {table} WHERE model_version = '1'")
    assert np.allclose(np.sort(ref["prediction"]), np.sort(frame(1)["prediction"]))
    audit = audit_rows(store, "churn")
    assert audit["action"].tolist() == ["register"]
    assert audit["reason"][0] == (f"imported from MLflow: churn version 1, run {runs['1']} ({uri})")
    assert json.loads(audit["evidence"][0])["source"]["mlflow"]["run_id"] == runs["1"]


def test_import_by_alias_reads_reference_table_and_version_description(tracking, store, quiet):
    uri, runs, _ = tracking
    result = im.import_version(store, uri, "churn", alias="champion")
    assert (result.status, result.version) == ("imported", "2")
    with store.cursor() as cur:
        training = catalog.version_spec(cur, "churn", "2")["training"]
    assert training["mlflow_run_id"] == runs["2"]
    assert training["validation_metrics"]["roc_auc"] == 0.86
    assert training["mlflow"]["version_description"] == "retrained on November data"
    assert training["mlflow"]["reference"]["origin"] == "MLflow run artifact reference.json"
    assert training["data_fingerprint"].startswith("mlflow-datasets:train-2@")
    assert registry.version_status(store, "churn", "2")["state"] == "registered"


def test_reimport_is_idempotent_and_changed_content_refused(tracking, store, quiet):
    uri, _, _ = tracking
    im.import_version(store, uri, "churn", version=1)
    before = (audit_rows(store, "churn"), catalog.list_versions(store, "churn"))
    again = im.import_version(store, uri, "churn", version=1)
    assert again.status == "already imported"
    assert "nothing changed" in again.message()
    assert audit_rows(store, "churn").equals(before[0])
    assert catalog.list_versions(store, "churn").equals(before[1])
    client = mlflow.MlflowClient(uri)
    client.set_model_version_tag("churn", "1", "stage_note", "edited after import")
    try:
        with pytest.raises(im.ImportRefused, match="never overwritten") as refused:
            im.import_version(store, uri, "churn", version=1)
    finally:
        client.delete_model_version_tag("churn", "1", "stage_note")
    assert "training.mlflow.version_tags.stage_note" in str(refused.value)
    assert audit_rows(store, "churn").equals(before[0])


def test_version_registered_from_a_spec_is_not_overwritten(tracking, store, tmp_path, quiet):
    from tests.conftest import write_toy_spec

    uri, _, _ = tracking
    catalog.register_from_file(store, write_toy_spec(tmp_path / "spec", version="1"))
    with pytest.raises(im.ImportRefused, match="was not imported from MLflow"):
        im.import_version(store, uri, "churn", version=1, overrides=im.Overrides(name="toy"))


@pytest.mark.parametrize(
    ("model", "overrides", "message"),
    [
        ("no_signature", None, "has no signature, so its features are unknown"),
        ("tensor_model", None, "tensor-based signature"),
        ("dated", None, "input column 'seen' has type 'datetime'"),
        ("untagged", None, "no task: set the MLflow tag 'task'"),
        ("untagged", {"task": "binary"}, "no owner: set the MLflow tag 'owner'"),
        ("untagged", {"task": "binary", "owner": OWNER}, "no risk tier"),
        ("no_reference", None, r"no reference \(validation\) set"),
        ("Churn Model", None, "cannot be a model name here.*--as churn_model"),
        ("missing", None, "MLflow has no registered model 'missing'"),
    ],
)
def test_refusals_name_what_to_give(tracking, store, quiet, model, overrides, message):
    uri, _, _ = tracking
    with pytest.raises(im.ImportRefused, match=message):
        im.import_version(store, uri, model, version=1, overrides=im.Overrides(**(overrides or {})))
    assert catalog.list_versions(store).empty
    assert store.query_df("SELECT * FROM audit_log").empty


def test_flags_fill_in_what_mlflow_lacks(tracking, store, tmp_path, quiet):
    uri, _, _ = tracking
    reference = tmp_path / "ref.csv"
    frame(9).drop(columns=["plan", "tenure"]).to_csv(reference, index=False)
    result = im.import_version(store, uri, "no_signature", version=1, overrides=im.Overrides(
        features="age:numeric", task="binary", owner=OWNER, risk_tier="high",
        reference=reference, name="renamed"))  # fmt: skip
    assert (result.model, result.reference_rows) == ("renamed", 120)
    with store.cursor() as cur:
        assert catalog.model_info(cur, "renamed")["task"] == "binary_classification"
        spec = catalog.version_spec(cur, "renamed", "1")
    assert spec["features"][0]["name"] == "age"
    assert spec["training"]["mlflow"]["reference"]["origin"] == f"file {reference}"


def test_unknown_alias_and_missing_store_are_refused(tracking, store, tmp_path, quiet):
    uri, _, _ = tracking
    with pytest.raises(im.ImportRefused, match=r"no alias 'staging'.*aliases: champion"):
        im.import_version(store, uri, "churn", alias="staging")
    with pytest.raises(im.ImportRefused, match="has no version 7; versions: 1, 2; aliases: champ"):
        im.import_version(store, uri, "churn", version=7)
    with pytest.raises(im.ImportRefused, match="no MLflow database at"):
        im.import_version(store, f"sqlite:///{tmp_path / 'none.db'}", "churn", version=1)
    assert not (tmp_path / "none.db").exists()


def test_command_imports_then_says_already_imported(tracking, tmp_path):
    uri, _, _ = tracking
    db = tmp_path / "cli.duckdb"
    command = [sys.executable, "-m", "lifecycle", "import-mlflow", "--db", str(db),
               "--tracking-uri", uri, "--model", "churn", "--alias", "champion"]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           **im.QUIET_ENV}  # fmt: skip
    work = tmp_path / "cwd"
    work.mkdir()
    first = subprocess.run(command, capture_output=True, text=True, cwd=work, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("imported churn 2 from MLflow churn version 2")
    second = subprocess.run(command, capture_output=True, text=True, cwd=work, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("already imported: churn 2")
    refused = subprocess.run([*command[:-2], "--version", "1", "--task", "regression"],
                             capture_output=True, text=True, cwd=work, env=env)  # fmt: skip
    assert refused.returncode == 2
    assert list(work.iterdir()) == []  # MLflow made no default store (./mlflow.db, ./mlruns)
    assert "refused:" in refused.stderr and "Traceback" not in refused.stderr
    with Store(db) as s, s.cursor() as cur:
        assert catalog.version_names(cur, "churn") == ["2"]


def test_help_does_not_import_mlflow():
    code = "import sys; from lifecycle.cli import build_parser; build_parser(); " \
           "print('mlflow' in sys.modules)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_version_page_shows_the_training_run(tracking, tmp_path, monkeypatch, quiet):
    from streamlit.testing.v1 import AppTest

    uri, runs, _ = tracking
    db = tmp_path / "page.duckdb"
    with Store(db) as s:
        im.import_version(s, uri, "churn", version=1)
    monkeypatch.setenv("LIFECYCLE_DB", str(db))
    monkeypatch.setenv(training_run.UI_URL_ENV, "http://mlflow.example:5000")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["model"], at.query_params["version"] = "churn", "1"
    at.switch_page("pages/version.py").run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert runs["1"] in text and "churn-training" in text and GIT in text
    shown = [json.loads(j.value) if isinstance(j.value, str) else j.value for j in at.json]
    assert {"C": "0.5", "max_iter": "100"} in shown
    assert any(j.get("roc_auc") == 0.81 for j in shown)
    links = [b.proto.url for b in at.get("link_button")]
    assert any(url.endswith(f"/runs/{runs['1']}") for url in links), links


def test_spec_text_round_trips_any_tag_text():
    import tomllib

    hostile = 'a "quoted" \\ back\nline\ttab \x7f del \x01 ctl 🙂 [x](http://h) = #'
    doc = {"name": "m", "description": hostile, "features": [{"name": hostile, "type": "numeric"}],
           "training": {"parameters": {hostile: hostile, "n": 3, "f": 0.1, "big": 1e300},
                        "validation_metrics": {"nan": float("inf")}, "flag": True,
                        "mlflow": {"datasets": [{"name": hostile, "x": None}]}}}  # fmt: skip
    back = tomllib.loads(im.to_toml(doc))
    assert back["description"] == hostile and back["features"] == doc["features"]
    assert back["training"]["parameters"] == doc["training"]["parameters"]
    assert back["training"]["validation_metrics"]["nan"] == float("inf")
    assert back["training"]["mlflow"]["datasets"] == [{"name": hostile}]


def test_queued_import_is_served_with_the_callers_role(tracking, store, tmp_path, quiet):
    """The handler the app runs for a queued import: the acting process's identity decides."""
    from lifecycle import requests

    uri, runs, _ = tracking
    config = tmp_path / "lifecycle.toml"
    config.write_text('[identity]\nmode = "dev"\ndev_user = "dana@example.com"\n'
                      '[identity.roles]\n"dana@example.com" = ["deployer"]\n'
                      '"victor@example.com" = ["viewer"]\n')  # fmt: skip
    prepared = im.prepare(uri, "churn", tmp_path, version=1)
    params = {"kind": "import_mlflow", "spec": str(prepared.spec_path), "model": prepared.model,
              "version": prepared.version, "source": prepared.source, "token": None,
              "config": str(config), "here": True}  # fmt: skip
    viewer = requests.execute(store, {**params, "actor": "victor@example.com"})
    assert viewer.exit_code == 2 and "refused:" in viewer.stderr
    assert catalog.list_versions(store).empty
    done = requests.execute(store, {**params, "actor": None})
    assert done.exit_code == 0, done.stderr
    assert done.stdout == (f"imported churn 1 from MLflow churn version 1, run {runs['1']} "
                           "with 120 reference rows (state: registered)")  # fmt: skip
    assert audit_rows(store, "churn")["action"].tolist() == ["register"]
    assert store.query_df("SELECT actor FROM audit_log")["actor"].tolist() == ["dana@example.com"]
    again = requests.execute(store, {**params, "actor": None})
    assert (again.exit_code, again.stdout.split(":")[0]) == (0, "already imported")
    assert len(audit_rows(store, "churn")) == 1


def test_version_page_shows_training_keys_of_a_spec(tmp_path, monkeypatch):
    """[training] keys a spec author wrote (stored, and shown nowhere before) are shown."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import write_toy_spec

    spec = write_toy_spec(tmp_path / "spec")
    spec.write_text(spec.read_text().replace(
        'data_fingerprint = "sha256:toy"',
        'data_fingerprint = "sha256:toy"\nmlflow_run_id = "run-42"\ngit_commit = "c0ffee1"\n'
        'artifact_uri = "s3://models/toy/1"\nnotebook = "train.ipynb"'))  # fmt: skip
    db = tmp_path / "spec.duckdb"
    with Store(db) as s:
        catalog.register_from_file(s, spec)
        info = training_run.training_run(s, "toy", "1.0")
    assert info["run"] == {"mlflow_run_id": "run-42", "git_commit": "c0ffee1",
                           "artifact_uri": "s3://models/toy/1"}  # fmt: skip
    assert info["other"] == {"notebook": "train.ipynb"} and info["links"] == {}
    monkeypatch.setenv("LIFECYCLE_DB", str(db))
    monkeypatch.delenv(training_run.UI_URL_ENV, raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["model"], at.query_params["version"] = "toy", "1.0"
    at.switch_page("pages/version.py").run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "run-42" in text and "c0ffee1" in text and "models/toy/1" in text
    other = [d.value for d in at.dataframe if "key" in d.value.columns]
    assert other and other[0].to_dict("records") == [{"key": "notebook", "value": "train.ipynb"}]


def test_without_mlflow_installed_the_command_says_what_to_install(store, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    db = tmp_path / "x.db"
    db.touch()
    with pytest.raises(im.ImportRefused, match=r"pip install mlflow-skinny==3\.17\.2"):
        im.import_version(store, f"sqlite:///{db}", "churn", version=1)


def test_spec_and_reference_problems_name_the_mlflow_version(tracking, store, tmp_path, quiet):
    from lifecycle.spec import SpecError

    uri, _, _ = tracking
    with pytest.raises(im.ImportRefused, match=r"(?s)version 1 does not make a valid model spec"
                       r".*risk_tier. is 'medium'"):  # fmt: skip
        im.import_version(store, uri, "churn", version=1,
                          overrides=im.Overrides(risk_tier="medium"))  # fmt: skip
    reference = tmp_path / "no-actual.csv"
    frame(3).drop(columns=["actual"]).to_csv(reference, index=False)
    with pytest.raises(SpecError, match=r"(?s)the reference set file .*no-actual.csv \(of churn 1\)"
                       r".*lacks column\(s\): actual"):  # fmt: skip
        im.import_version(store, uri, "churn", version=1,
                          overrides=im.Overrides(reference=reference))  # fmt: skip
    assert catalog.list_versions(store).empty


def test_model_card_tags_become_the_versions_model_card(tracking, store, quiet):
    from lifecycle import model_card

    uri, _, _ = tracking
    client = mlflow.MlflowClient(uri)
    tags = {
        "model_card.intended_use": "Pick subscribers for retention offers.",
        "model_card.limitations": "Tenure under a month is rare in training.",
        "model_card.owners": "ann@example.com, bo@example.com",
    }
    for key, value in tags.items():
        client.set_model_version_tag("churn", "2", key, value)
    try:
        im.import_version(store, uri, "churn", version=2)
    finally:
        for key in tags:
            client.delete_model_version_tag("churn", "2", key)
    stored = model_card.current_card(store, "churn", "2")
    assert stored.revision == 1
    assert stored.card["intended_use"] == "Pick subscribers for retention offers."
    assert stored.card["owners"] == ["ann@example.com", "bo@example.com"]
    assert model_card.missing_sections(stored.card) == [
        "training_data", "evaluation", "ethical_considerations"
    ]  # fmt: skip
