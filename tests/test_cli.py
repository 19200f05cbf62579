"""`python -m lifecycle`: help, DB path resolution, and ingestion of Parquet and CSV files.

Most cases call `lifecycle.cli.main` in this process (the same code `python -m lifecycle`
runs, without paying for an interpreter start each time); a few run the real module.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifecycle import cli
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import toy_predictions, write_toy_spec

FORMATS = ("parquet", "csv")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def python_m_lifecycle(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *[str(a) for a in argv]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


def write(frame: pd.DataFrame, folder, name: str, fmt: str):
    path = folder / f"{name}.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def ingest_cli(capsys, store, kind: str, path, *extra, model="toy") -> tuple[int, str, str]:
    return run_cli(
        capsys, "ingest", "--db", store.path, "--model", model, "--kind", kind, path, *extra
    )


def refused(capsys, store, kind, path, *fragments, model="toy", extra=()) -> str:
    before = store.row_counts()
    code, out, err = ingest_cli(capsys, store, kind, path, *extra, model=model)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and "refused, nothing written" in err
    for fragment in fragments:
        assert fragment in err, err
    assert store.row_counts() == before
    return err


# -- help and database path -------------------------------------------------------------------


def test_help_lists_the_commands():
    run = python_m_lifecycle("--help")
    assert run.returncode == 0, run.stderr
    for command in ("register", "ingest", "demo", "monitor"):
        assert re.search(rf"^    {command}(\s|$)", run.stdout, re.M), run.stdout
    commands = next(
        a.choices for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    for command in commands:  # every command, extensions' included, is listed with its help
        assert re.search(rf"^    {re.escape(command)}(\s|$)", run.stdout, re.M), command


def test_ingest_help_documents_kinds_and_assume_utc(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["ingest", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "{predictions,features,labels,business,infra}" in out
    assert "--assume-utc" in out and "--wait" in out


def test_db_path_from_option_else_environment_else_default(tmp_path, monkeypatch, capsys):
    spec = write_toy_spec(tmp_path / "spec")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFECYCLE_DB", raising=False)
    assert run_cli(capsys, "register", spec)[0] == 0
    assert (tmp_path / "data" / "lifecycle.duckdb").exists()

    monkeypatch.setenv("LIFECYCLE_DB", str(tmp_path / "env.duckdb"))
    assert run_cli(capsys, "register", spec)[0] == 0
    assert (tmp_path / "env.duckdb").exists()

    assert run_cli(capsys, "register", "--db", tmp_path / "opt.duckdb", spec)[0] == 0
    for name in ("opt.duckdb", "env.duckdb", "data/lifecycle.duckdb"):
        with Store(tmp_path / name) as s:  # each registration landed in its own file only
            assert s.row_counts()["model_versions"] == 1, name


# -- ingestion of files -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_valid_file_is_ingested(toy_store, tmp_path, capsys, fmt):
    path = write(toy_predictions(30), tmp_path, "ok", fmt)
    code, out, _ = ingest_cli(capsys, toy_store, "predictions", path)
    assert code == 0 and "ingested: 30 predictions row(s) for toy as batch 1" in out
    assert toy_store.row_counts()["predictions"] == 30
    source = toy_store.query_one("SELECT source FROM ingest_batches")[0]
    assert source == str(path.resolve())


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_required_column(toy_store, tmp_path, capsys, fmt):
    path = write(toy_predictions(5).drop(columns=["ts"]), tmp_path, "b", fmt)
    refused(capsys, toy_store, "predictions", path, "required column(s) missing: ts")


@pytest.mark.parametrize("fmt", FORMATS)
def test_uncoercible_value_names_column_and_rows(toy_store, tmp_path, capsys, fmt):
    batch = toy_predictions(8)
    batch["prediction"] = batch["prediction"].round(3).astype(str)
    batch.loc[5, "prediction"] = "high"
    path = write(batch, tmp_path, "b", fmt)
    refused(
        capsys,
        toy_store,
        "predictions",
        path,
        "column `prediction`: 1 value(s) are not numbers, first rows: row 6 ('high')",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_naive_timestamps_are_taken_as_utc_with_a_note(toy_store, tmp_path, capsys, fmt):
    batch = toy_predictions(4)
    batch["ts"] = batch["ts"].dt.tz_localize(None)
    path = write(batch, tmp_path, "naive", fmt)
    code, out, _ = ingest_cli(capsys, toy_store, "predictions", path)
    assert code == 0 and "ingested: 4" in out
    assert "column `ts`: 4 timestamp(s) without a time zone taken as UTC" in out
    assert str(toy_store.query_one("SELECT min(ts) FROM predictions")[0]) == (
        "2026-01-01 00:00:00+00:00"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_nan_and_inf_features_are_stored_as_missing_and_counted(toy_store, tmp_path, capsys, fmt):
    ingest_cli(capsys, toy_store, "predictions", write(toy_predictions(4), tmp_path, "p", fmt))
    batch = pd.DataFrame(
        {
            "prediction_id": ["p0", "p1", "p2", "p3"],
            "x": [2.0, math.nan, math.inf, -math.inf],
            "color": ["red", "blue", "red", "green"],
        }
    )
    path = tmp_path / f"f.{fmt}"
    if fmt == "csv":
        batch.to_csv(path, index=False, na_rep="nan")
    else:  # NaN as a float value, not as Parquet's null
        pq.write_table(pa.table({c: pa.array(batch[c].tolist()) for c in batch}), path)
    code, out, _ = ingest_cli(capsys, toy_store, "features", path)
    assert code == 0
    assert "x: 3 NaN/inf value(s) stored as missing" in out
    assert toy_store.query_all('SELECT count(*), count(x) FROM "features__toy"') == [(4, 1)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_ids_in_the_batch_and_against_stored_rows(toy_store, tmp_path, capsys, fmt):
    batch = toy_predictions(5)
    batch.loc[4, "prediction_id"] = "p2"
    refused(
        capsys,
        toy_store,
        "predictions",
        write(batch, tmp_path, "dup", fmt),
        "duplicate prediction id(s) inside the batch: p2 (x2)",
    )
    assert (
        ingest_cli(capsys, toy_store, "predictions", write(toy_predictions(5), tmp_path, "a", fmt))[
            0
        ]
        == 0
    )
    again = toy_predictions(3, prefix="q")
    again.loc[0, "prediction_id"] = "p4"
    refused(
        capsys,
        toy_store,
        "predictions",
        write(again, tmp_path, "again", fmt),
        "prediction id(s) already stored in predictions for toy: p4",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_model_and_unknown_version(toy_store, tmp_path, capsys, fmt):
    path = write(toy_predictions(3), tmp_path, "p", fmt)
    refused(capsys, toy_store, "predictions", path, "unknown model 'fraud'", model="fraud")
    path = write(toy_predictions(3, version="3.0"), tmp_path, "v", fmt)
    refused(capsys, toy_store, "predictions", path, "with a version of toy not in (1.0)")


@pytest.mark.parametrize("fmt", FORMATS)
def test_feature_columns_not_in_the_schema(toy_store, tmp_path, capsys, fmt):
    batch = pd.DataFrame({"prediction_id": ["p0"], "x": [1.0], "colour": ["red"]})
    path = write(batch, tmp_path, "f", fmt)
    refused(capsys, toy_store, "features", path, "not in the feature schema of toy: colour")


@pytest.mark.parametrize("fmt", FORMATS)
def test_labels_for_unknown_prediction_ids_need_allow_unknown_ids(toy_store, tmp_path, capsys, fmt):
    ingest_cli(capsys, toy_store, "predictions", write(toy_predictions(3), tmp_path, "p", fmt))
    batch = pd.DataFrame(
        {
            "prediction_id": ["p0", "lost1"],
            "actual": [1, 0],
            "labeled_at": ["2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z"],
        }
    )
    path = write(batch, tmp_path, "l", fmt)
    refused(capsys, toy_store, "labels", path, "1 row(s) refer to prediction ids that toy never "
            "logged, e.g. lost1", "--allow-unknown-ids")  # fmt: skip
    code, out, _ = ingest_cli(capsys, toy_store, "labels", path, "--allow-unknown-ids")
    assert code == 0
    assert "1 row(s) refer to prediction ids not (yet) logged for toy, e.g. lost1" in out
    assert toy_store.query_all("SELECT prediction_id, actual_label FROM labels ORDER BY 1") == [
        ("lost1", "0"),
        ("p0", "1"),
    ]


def test_unsupported_file_type_and_missing_file(toy_store, tmp_path, capsys):
    (tmp_path / "batch.json").write_text("[]")
    refused(capsys, toy_store, "predictions", tmp_path / "batch.json", "unsupported file type")
    refused(capsys, toy_store, "predictions", tmp_path / "none.csv", "no such file")


def test_python_m_lifecycle_ingest_refuses_a_bad_csv(toy_store, tmp_path):
    batch = toy_predictions(6)
    batch["ts"] = batch["ts"].astype(str)
    batch.loc[1, "ts"] = "soon"
    batch["latency_ms"] = batch["latency_ms"].round(2).astype(str)
    batch.loc[3, "latency_ms"] = "n/a ms"
    path = write(batch, tmp_path, "bad", "csv")
    before = toy_store.row_counts()
    db = toy_store.path
    toy_store.close()  # a real second process needs the file free
    env = {**os.environ, "LIFECYCLE_DB": str(db)}  # no --db: the environment names the file
    run = python_m_lifecycle("ingest", "--model", "toy", "--kind", "predictions", path, env=env)
    assert run.returncode == 2, run.stderr
    assert "column `ts`: 1 value(s) are not timestamps, first rows: row 2 ('soon')" in run.stderr
    assert "column `latency_ms`: 1 value(s) are not numbers, first rows: row 4 ('n/a ms')" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr
    with Store(db) as s:
        assert s.row_counts() == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_business_and_infra_batches(toy_store, tmp_path, capsys, fmt):
    events = pd.DataFrame(
        {
            "ts": ["2026-01-02T09:00:00+01:00", "2026-01-02T10:00:00+01:00"],
            "kpi": ["conversion", "revenue"],
            "value": [1.0, 20.0],
        }
    )
    refused(
        capsys,
        toy_store,
        "business",
        write(events, tmp_path, "events", fmt),
        "column `kpi`: 1 row(s) with a KPI declared for toy not in (conversion), first rows: "
        "row 2 ('revenue')",
    )
    code, out, _ = ingest_cli(
        capsys, toy_store, "business", write(events.head(1), tmp_path, "one", fmt)
    )
    assert code == 0 and "ingested: 1 business row(s)" in out

    metrics = pd.DataFrame(
        {
            "ts": ["2026-01-02T09:00:00Z"] * 2,
            "model_version": ["1.0", "2.0"],
            "metric": "cpu_util",
            "value": [0.5, 0.7],
        }
    )
    path = write(metrics, tmp_path, "infra", fmt)
    refused(capsys, toy_store, "infra", path, "row 2 ('2.0')", "a version of toy not in (1.0)")
    path = write(metrics.drop(columns=["metric"]), tmp_path, "nometric", fmt)
    refused(capsys, toy_store, "infra", path, "required column(s) missing: metric")


def test_ingest_into_a_missing_database_is_refused_without_creating_it(tmp_path, capsys):
    from lifecycle.cli import main

    target = tmp_path / "nowhere.duckdb"
    assert main(["ingest", "--db", str(target), "--model", "m", "--kind", "labels", "x.csv"]) == 2
    assert "does not exist; register a model first" in capsys.readouterr().err
    assert not target.exists()


def test_ingest_command_does_not_load_the_heavy_extensions(tmp_path):
    """Serving systems call ingest per batch: it must not import scikit-learn or scipy."""
    import subprocess
    import sys

    code = (
        "import sys; from lifecycle.cli import main; "
        f"main(['ingest', '--db', {str(tmp_path / 'x.duckdb')!r}, '--model', 'm', "
        "'--kind', 'labels', 'x.csv']); "
        "print(sorted(m for m in ('sklearn', 'scipy', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["", "demo", "monitor", "check", "report", "registry approve"])
def test_help_does_not_load_the_heavy_libraries(command):
    """`--help` builds every parser: parsers must not import pandas, scipy, scikit-learn,
    plotly or DuckDB (they cost seconds), only the command that runs does."""
    code = (
        "import sys, contextlib, io; from lifecycle.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    try: main({command.split()!r} + ['--help'])\n"
        "    except SystemExit: pass\n"
        "assert 'usage:' in out.getvalue()\n"
        "heavy = ('pandas', 'numpy', 'scipy', 'sklearn', 'plotly', 'duckdb', 'pyarrow')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_retire_of_the_standby_needs_confirm(tmp_path, capsys):
    from lifecycle import registry
    from lifecycle.store import Store
    from tests.test_registry import register_version, to_production_first

    path = tmp_path / "r.duckdb"
    with Store(path) as store:
        for version in ("1.0", "2.0"):
            register_version(store, tmp_path, version, seed="same")
        to_production_first(store, "1.0")
        to_production_first(store, "2.0")
    argv = ["registry", "retire", "--db", str(path), "toy", "1.0", "--actor",
            "developer@localhost", "--reason", "2.0 is trusted"]  # fmt: skip
    assert cli.main(argv) == 2
    assert "no rollback target remains" in capsys.readouterr().err
    assert cli.main([*argv, "--confirm"]) == 0
    with Store(path) as store:
        assert registry.version_status(store, "toy", "1.0")["state"] == "retired"
