"""The Spark engine against the DuckDB engine on the same lake (lifecycle.engines): the same
windows and fingerprints, the same verdicts, statistics equal where both read the same rows
and within the documented sampling tolerance (docs/engines.md) where each samples its own.

One Spark session (local mode, ~20 s to start) serves the whole module."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.drift.windows import list_windows
from lifecycle.engines import EngineError, make_engine
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.store import Store
from tests.conftest import toy_predictions, write_toy_spec
from tests.lake_data import day_logs, lake_spec, write_day, write_frame

pytestmark = pytest.mark.slow

COLUMNS = ["window_start", "check_name", "subject", "severity", "statistic", "p_value"]
# Where the engines sample differently (a window above [drift] sample_rows): how far an
# effect size may move between two samples of 1,000 of the same 3,000 rows (docs/engines.md)
SAMPLED_TOLERANCE = 0.05
DRIFT = ["data_drift", "prediction_drift", "multivariate_drift", "performance_drift",
         "concept_drift"]  # fmt: skip


@pytest.fixture(scope="module")
def spark():
    from lifecycle.engines.spark_engine import SparkEngine, start_session

    session = start_session("local[2]")
    yield lambda: SparkEngine(session=session)
    session.stop()


def stores(tmp_path, fmt="parquet", sample_rows=None):
    """Two databases registering the same lake: one per engine."""
    spec = lake_spec(tmp_path, fmt)
    if sample_rows:
        spec.write_text(spec.read_text() + f"\n[drift]\nsample_rows = {sample_rows}\n")
    out = []
    for name in ("duckdb", "spark"):
        store = Store(tmp_path / f"{name}.duckdb")
        catalog.register_from_file(store, spec)
        out.append(store)
    return out


def results(store: Store) -> pd.DataFrame:
    return store.query_df(
        f"SELECT {', '.join(COLUMNS)}, effect_size, details FROM monitor_results ORDER BY 1, 2, 3"
    ).reset_index(drop=True)


def test_both_engines_give_the_same_windows_verdicts_and_statistics(tmp_path, spark):
    for day in range(4):
        write_day(tmp_path, day, shift=4.0 if day == 3 else 0.0)
    duck, lake = stores(tmp_path)
    engine = spark()
    with lake.cursor() as cur:
        assert engine.windows(cur, "toy", "day") == list_windows(cur, "toy", "day")
    monitor_model(duck, "toy")
    ran_spark = monitor_model(lake, "toy", engine=engine)
    assert ran_spark.engine == "spark" and ran_spark.engine_note is None
    assert (ran_spark.windows, ran_spark.computed, ran_spark.label_computed) == (4, 4, 4)
    ours, theirs = results(lake), results(duck)
    assert len(ours) == len(theirs) > 60
    # below sample_rows both read identical rows: identical verdicts, numbers within 1e-9
    pd.testing.assert_frame_equal(
        ours.drop(columns="details"), theirs.drop(columns="details"),
        check_exact=False, rtol=1e-9, atol=1e-9,
    )  # fmt: skip
    assert ours.details.tolist() == theirs.details.tolist()
    drift = ours[(ours.check_name == "data_drift") & (ours.subject == "x")]
    assert drift.severity.tolist()[:3] == ["none"] * 3
    assert drift.severity.tolist()[3] != "none"  # the shifted day is found by Spark too
    # same fingerprints: a DuckDB run over Spark's results finds nothing to recompute
    again = monitor_model(lake, "toy")
    assert (again.computed, again.skipped) == (0, 4)


def test_a_window_above_sample_rows_is_sampled_by_spark_with_the_same_verdicts(tmp_path, spark):
    write_day(tmp_path, 0, rows=3000)
    write_day(tmp_path, 1, rows=3000, shift=2.0)
    duck, lake = stores(tmp_path, sample_rows=1000)
    monitor_model(duck, "toy")
    run = monitor_model(lake, "toy", engine=spark())
    assert run.computed == 2
    ours, theirs = results(lake), results(duck)
    assert ours[COLUMNS[:3]].equals(theirs[COLUMNS[:3]])
    for frame in (ours, theirs):
        x = frame[(frame.check_name == "data_drift") & (frame.subject == "x")]
        assert x.severity.tolist()[0] == "none" and x.severity.tolist()[1] != "none"
        details = json.loads(x.details.iloc[0])
        assert details["sampled"] and details["rows_current"] == 3000
    mine, other = (f[f.check_name.isin(DRIFT)] for f in (ours, theirs))
    # a finding or none alike (a grade may move one step near its threshold)
    assert ((mine.severity == "none") == (other.severity == "none")).all()
    gap = np.abs(mine.effect_size.to_numpy() - other.effect_size.to_numpy())
    assert np.nanmax(gap) <= SAMPLED_TOLERANCE, gap
    staged = lake.query_df(
        "SELECT n_current FROM monitor_results WHERE check_name = 'data_drift' "
        "AND subject = 'x' ORDER BY window_start"
    )
    assert staged.n_current.tolist() == [1000, 1000]  # Spark collected 1,000 of 3,000 rows


def test_delta_lake_on_spark_and_new_partitions_picked_up_incrementally(tmp_path, spark):
    for day in range(2):
        write_day(tmp_path, day, "delta")
    duck, lake = stores(tmp_path, "delta")
    engine = spark()
    assert monitor_model(lake, "toy", engine=engine).computed == 2
    write_day(tmp_path, 2, "delta", shift=4.0)
    lake.refresh_lake()
    run = monitor_model(lake, "toy", engine=engine)
    assert (run.windows, run.computed, run.skipped) == (3, 1, 2)  # only the new day
    monitor_model(duck, "toy")
    pd.testing.assert_frame_equal(
        results(lake).drop(columns="details"), results(duck).drop(columns="details"),
        check_exact=False, rtol=1e-9, atol=1e-9,
    )  # fmt: skip


def test_bad_rows_in_the_lake_are_reported_alike_by_both_engines(tmp_path, spark):
    write_day(tmp_path, 0)
    duck, lake = stores(tmp_path)
    requests, _ = day_logs(1)
    requests["score"] = requests["score"].astype(object)
    requests.loc[:4, "score"] = "n/a"  # 5 scores that are not numbers
    requests["event_time"] = requests["event_time"].astype(str)
    requests.loc[7, "event_time"] = "yesterday"  # a timestamp no window can hold
    requests.loc[8, "request_id"] = requests.loc[9, "request_id"]  # a duplicate id
    requests["score"] = requests["score"].astype(str)
    write_frame(tmp_path / "lake" / "predictions", requests, "2026-03-03", "parquet")
    monitor_model(duck, "toy")
    run = monitor_model(lake, "toy", engine=spark())
    assert run.computed == 2
    query = (
        "SELECT window_start, severity, statistic, details FROM monitor_results "
        "WHERE check_name = 'source_read' ORDER BY 1"
    )
    ours, theirs = lake.query_df(query), duck.query_df(query)
    pd.testing.assert_frame_equal(ours, theirs)
    dirty = json.loads(ours.details.iloc[1])
    assert ours.severity.tolist() == ["none", "significant"]
    assert dirty["unreadable"] == {"prediction": 5} and dirty["duplicate_ids"] == 1
    pd.testing.assert_frame_equal(
        results(lake).drop(columns="details"), results(duck).drop(columns="details"),
        check_exact=False, rtol=1e-9, atol=1e-9,
    )  # fmt: skip


def test_an_ingested_model_runs_on_duckdb_and_unsupported_runs_are_refused(tmp_path, spark):
    store = Store(tmp_path / "db.duckdb")
    catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
    ingest(store, "toy", "predictions", toy_predictions(50))
    engine = spark()
    run = monitor_model(store, "toy", engine=engine)
    assert run.engine == "duckdb" and run.computed == 1
    assert "monitored by the DuckDB engine" in run.summary()
    write_day(tmp_path / "lake", 0)
    lake = stores(tmp_path / "lake")[1]
    with pytest.raises(EngineError, match="spec's reference only"):
        monitor_model(lake, "toy", reference="previous", engine=engine)
    with pytest.raises(EngineError, match="DuckDB engine only"):
        monitor_model(lake, "toy", grain="chunk:100", engine=engine)
    with pytest.raises(EngineError, match="needs --engine spark"):
        make_engine("duckdb", "spark://host:7077")
