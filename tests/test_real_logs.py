"""Logs as real tools write them: pandas/pyarrow Parquet and CSV timestamps of any precision and
zone, labels written as floats or booleans, two models sharing prediction ids, and refused
commands that leave nothing behind."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.cli import main
from lifecycle.ingest import IngestError, ingest
from lifecycle.layers import performance_windows
from lifecycle.monitor import monitor_model
from lifecycle.spec import SpecError
from lifecycle.store import Store
from tests.conftest import TOY_SPEC, toy_predictions, write_toy_spec
from tests.test_cli import write

# 10:00:00.123456789 UTC on 1 Jan 2026, in the forms pandas produces
UTC_TS = pd.Series(
    pd.to_datetime(["2026-01-01 10:00:00.123456789", "2026-01-02 00:00:00"], format="ISO8601")
)
TIMESTAMP_FORMS = {
    "ns_utc": UTC_TS.dt.tz_localize("UTC"),  # pandas' default for tz-aware: TIMESTAMPTZ_NS
    "us_utc": UTC_TS.dt.tz_localize("UTC").astype("datetime64[us, UTC]"),
    "ms_utc": UTC_TS.dt.tz_localize("UTC").astype("datetime64[ms, UTC]"),
    "s_utc": UTC_TS.dt.tz_localize("UTC").astype("datetime64[s, UTC]"),
    "ns_new_york": UTC_TS.dt.tz_localize("UTC").dt.tz_convert("America/New_York"),
    "ns_naive": UTC_TS,
    "ms_naive": UTC_TS.astype("datetime64[ms]"),
    "s_naive": UTC_TS.astype("datetime64[s]"),
}
# what each form keeps of 10:00:00.123456789 (DuckDB stores microseconds)
FIRST_MICROS = {"ms_utc": 123000, "ms_naive": 123000, "s_utc": 0, "s_naive": 0}


def expected_first(form: str) -> datetime:
    micros = FIRST_MICROS.get(form, 123457 if form.startswith("ns") else 123456)
    return datetime(2026, 1, 1, 10, 0, 0, micros, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("form", list(TIMESTAMP_FORMS))
def test_timestamps_of_any_precision_and_zone_are_stored_in_utc(toy_store, tmp_path, form, fmt):
    preds = toy_predictions(2)
    preds["ts"] = TIMESTAMP_FORMS[form]
    report = ingest(toy_store, "toy", "predictions", write(preds, tmp_path, "p", fmt))
    labels = pd.DataFrame(
        {"prediction_id": ["p0", "p1"], "actual": ["1", "0"], "labeled_at": preds["ts"]}
    )
    label_report = ingest(toy_store, "toy", "labels", write(labels, tmp_path, "l", fmt))
    first_ts = toy_store.query_one("SELECT min(ts) FROM predictions")[0]
    first_label = toy_store.query_one("SELECT min(labeled_at) FROM labels")[0]
    if fmt == "parquet":  # exact to the microsecond DuckDB keeps
        assert first_ts == expected_first(form) and first_label == expected_first(form)
    else:  # pandas writes the text it has; DuckDB parses it to microseconds
        assert first_ts.replace(microsecond=0) == datetime(2026, 1, 1, 10, tzinfo=UTC)
        assert first_label == first_ts
    naive = "naive" in form
    for rep, column in ((report, "ts"), (label_report, "labeled_at")):
        note = f"column `{column}`: 2 timestamp(s) without a time zone taken as UTC"
        assert (note in rep.summary()) is naive, rep.summary()


def test_csv_times_with_named_zones_are_converted_and_not_called_naive(toy_store, tmp_path):
    preds = toy_predictions(3)
    preds["ts"] = ["2026-01-01 11:00:00 Europe/Paris", "2026-01-01 10:00:00 UTC",
                   "2026-01-01T15:30:00+05:30"]  # fmt: skip
    report = ingest(toy_store, "toy", "predictions", write(preds, tmp_path, "p", "csv"))
    assert not report.notes
    stored = [r[0] for r in toy_store.query_all("SELECT ts FROM predictions ORDER BY 1")]
    assert stored == [datetime(2026, 1, 1, 10, tzinfo=UTC)] * 3


def test_a_timestamp_column_of_another_type_says_what_to_write(toy_store):
    preds = toy_predictions(2).assign(ts=[1767261600, 1767261660])  # epoch seconds
    with pytest.raises(IngestError) as info:
        ingest(toy_store, "toy", "predictions", preds)
    assert "column `ts` has type BIGINT; expected timestamps" in str(info.value)
    assert "ISO 8601 text such as 2026-01-31T12:00:00Z" in str(info.value)


# -- labels as floats and booleans ------------------------------------------------------------


@pytest.fixture
def logged(toy_store):
    ingest(toy_store, "toy", "predictions", toy_predictions(4))
    return toy_store


def label_batch(actual) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(len(actual))],
            "actual": actual,
            "labeled_at": pd.Timestamp("2026-01-03", tz="UTC"),
        }
    )


@pytest.mark.parametrize("fmt", ["frame", "parquet", "csv"])
@pytest.mark.parametrize(
    "actual",
    [[1.0, 0.0, 1.0, 0.0], [True, False, True, False], ["1.0", "0.0", "1", "0"]],
    ids=["float", "bool", "float_text"],
)
def test_float_and_bool_labels_become_the_classes(logged, tmp_path, actual, fmt):
    batch = label_batch(actual)
    source = batch if fmt == "frame" else write(batch, tmp_path, "l", fmt)
    ingest(logged, "toy", "labels", source)
    rows = logged.query_all("SELECT actual_label, actual_value FROM labels ORDER BY prediction_id")
    assert rows == [("1", 1.0), ("0", 0.0), ("1", 1.0), ("0", 0.0)]


@pytest.mark.parametrize("fmt", ["frame", "csv"])
def test_a_float_that_is_no_class_is_refused_with_the_rule(logged, tmp_path, fmt):
    batch = label_batch([1.0, 1.5, 0.0, 0.0])
    source = batch if fmt == "frame" else write(batch, tmp_path, "l", fmt)
    before = logged.row_counts()
    with pytest.raises(IngestError) as info:
        ingest(logged, "toy", "labels", source)
    message = str(info.value)
    assert "column `actual`: 1 row(s) with a label not in (0, 1), first rows: row 2 ('1.5')" in (
        message
    )
    assert "a number counts as a class when it equals a whole-number class (1.0 -> '1')" in (
        message
    )
    assert logged.row_counts() == before


YES_NO_SPEC = TOY_SPEC.replace('name = "toy"', 'name = "yn"\nclasses = ["no", "yes"]\n'
                               'positive_class = "yes"')  # fmt: skip


def register_yes_no(store, folder, actual=("no", "yes")):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "x": rng.uniform(0, 10, 200),
            "color": rng.choice(["red", "green", "blue"], 200),
            "prediction": rng.uniform(0, 1, 200),
            "actual": rng.choice(list(actual), 200),
        }
    ).to_parquet(folder / "reference.parquet", index=False)
    spec = folder / "yn.toml"
    text = textwrap.dedent(YES_NO_SPEC.format(version="1.0"))
    spec.write_text(text.replace("reference.csv", "reference.parquet"), encoding="utf-8")
    return catalog.register_from_file(store, spec)


def test_floats_and_bools_are_refused_when_the_classes_are_not_numbers(store, tmp_path):
    register_yes_no(store, tmp_path / "spec")
    ingest(store, "yn", "predictions", toy_predictions(2, version="1.0").drop(
        columns=["predicted_label"]))  # fmt: skip
    for actual, shown in (([1.0, 0.0], "'1.0'"), ([True, False], "'true'")):
        with pytest.raises(IngestError) as info:
            ingest(store, "yn", "labels", label_batch(actual))
        message = str(info.value)
        assert f"2 row(s) with a label not in (no, yes), first rows: row 1 ({shown})" in message
        assert "true/false only when the classes are 0/1 or false/true" in message
    assert store.row_counts()["labels"] == 0


def test_a_reference_with_float_labels_is_registered_as_the_classes(store, tmp_path):
    spec = write_toy_spec(tmp_path / "spec")
    reference = pd.read_csv(tmp_path / "spec" / "reference.csv")
    reference["actual"] = reference["actual"].astype(float)  # 1.0 / 0.0, as pandas gives
    reference.to_csv(tmp_path / "spec" / "reference.csv", index=False)
    catalog.register_from_file(store, spec)
    labels = {r[0] for r in store.query_all("SELECT DISTINCT actual_label FROM reference__toy")}
    assert labels == {"0", "1"}
    positives = store.query_one(
        "SELECT count(*) FROM reference__toy WHERE actual_value = 1 AND actual_label = '1'"
    )[0]
    assert positives == int((reference["actual"] == 1.0).sum())


def test_a_reference_with_ambiguous_labels_names_the_reference_file_and_the_rule(store, tmp_path):
    spec = write_toy_spec(tmp_path / "spec")
    reference = pd.read_csv(tmp_path / "spec" / "reference.csv")
    reference["actual"] = reference["actual"].astype(float)
    reference.loc[4, "actual"] = 0.5
    reference.to_csv(tmp_path / "spec" / "reference.csv", index=False)
    with pytest.raises(SpecError) as info:
        catalog.register_from_file(store, spec)
    message = str(info.value)
    path = tmp_path / "spec" / "reference.csv"
    assert message.startswith(f"the reference file {path} (of toy 1.0) is not valid")
    assert "reference column `actual` has 1 label(s) not in classes ['0', '1'], first rows: " in (
        message
    )
    assert "row 5 ('0.5')" in message and "1.0 -> '1'" in message
    assert store.row_counts().get("reference__toy", 0) == 0


def test_a_yes_no_reference_written_as_bools_is_refused(store, tmp_path):
    with pytest.raises(SpecError) as info:
        register_yes_no(store, tmp_path / "spec", actual=(True, False))
    assert "true/false only when the classes are 0/1 or false/true" in str(info.value)


# -- unknown ids and ids shared between models ------------------------------------------------


def test_a_features_batch_for_another_models_ids_is_refused_with_nothing_written(store, tmp_path):
    catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
    ingest(store, "toy", "predictions", toy_predictions(50, prefix="a"))
    before = store.row_counts()
    features = pd.DataFrame({"prediction_id": [f"b{i}" for i in range(30)], "x": 1.0})
    with pytest.raises(IngestError) as info:
        ingest(store, "toy", "features", features)
    assert "30 row(s) refer to prediction ids that toy never logged, e.g. b0, b1, b2, b3, b4" in (
        str(info.value)
    )
    assert store.row_counts() == before


def two_models_sharing_ids(store, tmp_path):
    """`toy` and `twin` (the same spec under another name), each with predictions p0..p199,
    features and labels; twin's labels are the opposite of toy's."""
    for name in ("toy", "twin"):
        spec = write_toy_spec(tmp_path / name)
        spec.write_text(spec.read_text().replace('name = "toy"', f'name = "{name}"'))
        catalog.register_from_file(store, spec)
    preds = toy_predictions(200)
    rng = np.random.default_rng(3)
    features = pd.DataFrame(
        {
            "prediction_id": preds["prediction_id"],
            "x": rng.uniform(0, 10, 200),
            "color": rng.choice(["red", "green", "blue"], 200),
        }
    )
    truth = (preds["prediction"] >= 0.5).map({True: "1", False: "0"})
    for name, actual in (("toy", truth), ("twin", truth.map({"1": "0", "0": "1"}))):
        ingest(store, name, "predictions", preds)
        ingest(store, name, "features", features.assign(x=features["x"] + (name == "twin")))
        labels = pd.DataFrame(
            {"prediction_id": preds["prediction_id"], "actual": actual,
             "labeled_at": pd.Timestamp("2026-01-02", tz="UTC")}
        )  # fmt: skip
        ingest(store, name, "labels", labels)


def test_two_models_sharing_prediction_ids_load_and_monitor_independently(store, tmp_path):
    two_models_sharing_ids(store, tmp_path)
    counts = store.row_counts()
    assert counts["predictions"] == 400 and counts["labels"] == 400
    accuracy = {}
    for name in ("toy", "twin"):
        perf = performance_windows(store, name, grain="day")
        assert perf["labelled"].sum() == 200, perf  # each joins its own labels only
        accuracy[name] = float(perf["accuracy"].iloc[0])
        run = monitor_model(store, name, grain="day")
        assert run is not None
    assert accuracy == {"toy": 1.0, "twin": 0.0}
    # each model's ids are its own: loading them again is refused for that model only
    with pytest.raises(IngestError, match="already stored in predictions for toy"):
        ingest(store, "toy", "predictions", toy_predictions(1))


# -- refused commands leave no file behind ----------------------------------------------------


def test_a_refused_register_leaves_no_database_file(tmp_path, capsys):
    spec = write_toy_spec(tmp_path / "spec")
    (tmp_path / "spec" / "reference.csv").write_text("x,color\n1,red\n", encoding="utf-8")
    db = tmp_path / "new" / "deeper" / "fresh.duckdb"
    code = main(["register", "--db", str(db), str(spec)])
    err = capsys.readouterr().err
    assert code == 2 and "the reference file" in err
    assert not db.exists() and not db.with_name("fresh.duckdb.wal").exists()
    assert not (tmp_path / "new").exists()
    # the same command with a valid reference creates it
    write_toy_spec(tmp_path / "spec")
    assert main(["register", "--db", str(db), str(spec)]) == 0
    assert db.exists()


def test_a_refused_register_keeps_an_existing_database(toy_db_file, tmp_path, capsys):
    spec = write_toy_spec(tmp_path / "again")  # version 1.0 is registered already
    assert main(["register", "--db", str(toy_db_file), str(spec)]) == 2
    assert "already registered" in capsys.readouterr().err
    with Store(toy_db_file) as store, store.cursor() as cur:
        assert catalog.version_names(cur, "toy") == ["1.0"]


def test_ingest_into_a_missing_database_creates_nothing(tmp_path, capsys):
    batch = tmp_path / "p.csv"
    toy_predictions(2).to_csv(batch, index=False)
    db = tmp_path / "none" / "x.duckdb"
    code = main(["ingest", "--db", str(db), "--model", "toy", "--kind", "predictions", str(batch)])
    assert code == 2 and "register a model first" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
