"""Logs read in place from a lake (lifecycle.lake): monitored without copying, the same
results as the same rows ingested, new partitions picked up, bad rows reported, not fatal."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from lifecycle import catalog, lake_quality
from lifecycle.ingest import IngestError, ingest
from lifecycle.monitor import monitor_model
from lifecycle.spec import SpecError
from lifecycle.store import Store
from tests.conftest import toy_predictions, write_toy_spec
from tests.lake_data import as_ingested, day_logs, lake_spec, write_day, write_frame

LOG_TABLES = ("predictions", "labels", "business_events", "features__toy")
RESULT_COLUMNS = ["window_start", "check_name", "subject", "statistic", "p_value", "severity"]


def lake_store(tmp_path, days=3, fmt="parquet") -> Store:
    for day in range(days):
        write_day(tmp_path, day, fmt)
    store = Store(tmp_path / "lake.duckdb")
    catalog.register_from_file(store, lake_spec(tmp_path, fmt))
    return store


def twin_store(tmp_path, days=3) -> Store:
    """The same rows ingested into a database of their own."""
    store = Store(tmp_path / "twin.duckdb")
    catalog.register_from_file(store, write_toy_spec(tmp_path / "twin-spec"))
    for day in range(days):
        logs = as_ingested(*day_logs(day))
        for kind in ("predictions", "features", "labels"):
            ingest(store, "toy", kind, logs[kind])
    return store


def results(store: Store) -> pd.DataFrame:
    frame = store.query_df(
        f"SELECT {', '.join(RESULT_COLUMNS)} FROM monitor_results WHERE check_name <> "
        "'source_read' ORDER BY window_start, check_name, subject"
    )
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_lake_model_is_monitored_in_place_like_the_same_rows_ingested(tmp_path, fmt):
    store = lake_store(tmp_path / "lake", fmt=fmt)
    twin = twin_store(tmp_path / "twin")
    before = store.row_counts()
    run = monitor_model(store, "toy")
    monitor_model(twin, "toy")
    after = store.row_counts()
    assert run.windows == 3 and run.computed == 3 and run.label_computed == 3
    # nothing of the logs was copied into the database file
    assert all(after[t] == before[t] == 0 for t in LOG_TABLES if t in before)
    assert "features__toy" not in after  # a view over the lake, not a table
    assert after["monitor_results"] > 0
    mine, theirs = results(store), results(twin)
    assert len(mine) == len(theirs) > 40
    pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-12, atol=1e-12)
    labelled = mine[mine.check_name == "performance_drift"]
    assert labelled.statistic.notna().all()  # labels joined from the lake
    read = store.query_df("SELECT * FROM monitor_results WHERE check_name = 'source_read'")
    assert len(read) == 3 and set(read.severity) == {"none"}


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_new_partitions_are_picked_up_incrementally(tmp_path, fmt):
    store = lake_store(tmp_path, days=2, fmt=fmt)
    assert monitor_model(store, "toy").computed == 2
    seen = store.data_version()
    write_day(tmp_path, 2, fmt)
    store.refresh_lake(max_age=60)  # refreshed a moment ago: pages keep their caches
    assert store.data_version() == seen
    store.refresh_lake()
    assert store.data_version() != seen  # new files: pages read again
    run = monitor_model(store, "toy")
    assert (run.windows, run.computed, run.skipped) == (3, 1, 2)
    write_day(tmp_path, 2, fmt, rows=50)  # late rows for a day already judged
    run = monitor_model(store, "toy")
    assert (run.computed, run.skipped) == (1, 2)
    counts = store.query_df(
        "SELECT date_trunc('day', ts) AS d, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1"
    )
    assert counts.n.tolist() == [300, 300, 350]


def test_bad_rows_in_the_lake_are_reported_not_fatal(tmp_path):
    store = lake_store(tmp_path, days=1)
    requests, _ = day_logs(1)
    requests["score"] = requests["score"].astype(object)
    requests.loc[:4, "score"] = "n/a"  # 5 scores that are not numbers
    requests.loc[5:6, "X value"] = None
    requests["event_time"] = requests["event_time"].astype(str)
    requests.loc[7, "event_time"] = "yesterday"  # a timestamp no window can hold
    requests.loc[8, "request_id"] = requests.loc[9, "request_id"]  # a duplicate id
    requests["score"] = requests["score"].astype(str)
    write_frame(tmp_path / "lake" / "predictions", requests, "2026-03-03", "parquet")
    run = monitor_model(store, "toy")
    assert run.computed == 2
    read = store.query_df(
        "SELECT window_start, severity, details FROM monitor_results "
        "WHERE check_name = 'source_read' ORDER BY window_start"
    )
    clean, dirty = read.iloc[0], read.iloc[1]
    assert clean.severity == "none"
    assert dirty.severity == "significant"  # 6 of 299 rows: above 1%
    details = json.loads(dirty.details)
    assert details["unreadable"] == {"prediction": 5}
    assert details["duplicate_ids"] == 1
    with store.cursor() as cur:
        status = {s.kind: s for s in lake_quality.source_status(cur)}
    assert status["predictions"].unusable_rows == 1  # "yesterday"
    assert status["predictions"].rows == 600
    with store.cursor() as cur:
        rows = cur.execute(
            "SELECT count(*) FROM predictions WHERE ts >= '2026-03-03' AND prediction IS NULL"
        ).fetchall()[0][0]
    assert rows == 5  # kept as missing values, like a logged NULL


def test_rows_without_a_version_are_in_no_window_and_counted_not_fatal(tmp_path):
    store = lake_store(tmp_path, days=1)
    requests, _ = day_logs(1)
    requests.loc[:2, "model_version"] = None  # a serving layer that lost the version
    write_frame(tmp_path / "lake" / "predictions", requests, "2026-03-03", "parquet")
    run = monitor_model(store, "toy")  # the manifest lists windows without them
    assert (run.windows, run.computed) == (2, 2)
    counts = store.query_df("SELECT model_version, count(*) AS n FROM predictions GROUP BY ALL")
    assert counts.to_dict("records") == [{"model_version": "1.0", "n": 597}]
    with store.cursor() as cur:
        status = {s.kind: s for s in lake_quality.source_status(cur)}
    assert status["predictions"].unusable_rows == 3


def test_a_lake_kind_is_not_ingested_and_a_bad_declaration_is_refused(tmp_path):
    store = lake_store(tmp_path, days=1)
    with pytest.raises(IngestError, match="read in place"):
        ingest(store, "toy", "predictions", toy_predictions(5))
    spec = lake_spec(tmp_path / "other", version="2.0")  # points at a lake with no files
    with pytest.raises(SpecError, match="no parquet files"):
        catalog.register_from_file(store, spec)
    text = spec.read_text().replace('ts = "event_time"', 'ts = "when"')
    spec.write_text(text.replace("../lake/", f"{tmp_path}/lake/"))
    with pytest.raises(SpecError, match=r"ts \(lake column 'when'\)"):
        catalog.register_from_file(store, spec)
    assert store.query_one("SELECT count(*) FROM model_versions")[0] == 1


def test_a_second_version_keeps_reading_the_lake_and_adds_its_features(tmp_path):
    store = lake_store(tmp_path, days=2)
    spec = lake_spec(tmp_path, version="2.0")  # latency_ms is logged: v2 uses it as a feature
    spec.write_text(spec.read_text().replace(
        "[[kpis]]", '[[features]]\nname = "latency_ms"\ntype = "numeric"\n\n[[kpis]]', 1))  # fmt: skip
    reference = pd.read_csv(spec.parent / "reference.csv")
    reference.assign(latency_ms=20.0).to_csv(spec.parent / "reference.csv", index=False)
    catalog.register_from_file(store, spec)
    with store.cursor() as cur:
        columns = [r[0] for r in cur.execute("DESCRIBE features__toy").fetchall()]
    assert {"x", "color", "latency_ms"} <= set(columns)
    assert store.query_one("SELECT count(*), count(latency_ms) FROM features__toy") == (600, 600)
    assert monitor_model(store, "toy").computed == 2


def test_ingested_and_lake_models_coexist_and_a_lost_lake_breaks_no_other(tmp_path):
    store = lake_store(tmp_path / "a", days=1)
    spec = write_toy_spec(tmp_path / "b")
    spec.write_text(spec.read_text().replace('name = "toy"', 'name = "stored"'))
    catalog.register_from_file(store, spec)
    ingest(store, "stored", "predictions", toy_predictions(20))
    counts = dict(store.query_all("SELECT model_name, count(*) FROM predictions GROUP BY 1"))
    assert counts == {"toy": 300, "stored": 20}
    path = store.path
    store.close()
    shutil.rmtree(tmp_path / "a" / "lake")
    with Store(path) as reopened:
        counts = dict(reopened.query_all("SELECT model_name, count(*) FROM predictions GROUP BY 1"))
        assert counts == {"stored": 20}
        with reopened.cursor() as cur:
            status = lake_quality.source_status(cur, "toy")
        assert {s.problem for s in status} == {"no files: the source is empty or unreachable"}


def test_model_health_names_the_lake_and_checks_it_on_demand(tmp_path, monkeypatch):
    from tests.test_pages_monitoring import open_page

    store = lake_store(tmp_path, days=2)
    monitor_model(store, "toy")
    path = store.path
    store.close()
    at = open_page(path, monkeypatch, "pages/model_health.py", model="toy", version="1.0",
                   variant="production", grain="day", **{"from": "2026-03-02", "to": "2026-03-03"})  # fmt: skip
    text = " ".join(m.value for m in at.markdown)
    assert "predictions**: parquet at" in text and str(tmp_path / "lake" / "labels") in text
    assert "read in place from a lake" in text and "last batch received" not in text
    at.button(key="lake_status").click().run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "log" in d.value.columns)
    assert table.set_index("log")["rows"].to_dict() == {"features": 600, "labels": 600,
                                                        "predictions": 600}  # fmt: skip
    assert set(table["problem"]) == {""}


def test_view_names_are_checked_before_they_reach_sql():
    from lifecycle import lake

    assert (
        lake.variable("lake__toy__predictions__tz")
        == "getvariable('lake')['lake__toy__predictions']['tz']"
    )
    assert lake.variable("lake__toy__labels") == (
        "getvariable('lake')['lake__toy__labels']['files']"
    )
    for bad in ("lake__toy__predictions'); DROP TABLE x; --", "other", "lake__Toy__labels"):
        with pytest.raises(ValueError):
            lake.variable(bad)
    with pytest.raises(ValueError):
        lake.model_literal("o'brien")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_the_manifest_reads_only_new_files_and_lists_what_the_logs_hold(tmp_path, fmt):
    from lifecycle import lake_manifest
    from lifecycle.drift.windows import list_windows

    store = lake_store(tmp_path, days=3, fmt=fmt)
    assert lake_manifest.refresh(store, "toy") == {"predictions": 3, "labels": 3}
    assert lake_manifest.refresh(store, "toy") == {"predictions": 0, "labels": 0}
    write_day(tmp_path, 3, fmt)
    store.refresh_lake()
    assert lake_manifest.refresh(store, "toy") == {"predictions": 1, "labels": 1}
    for grain in ("hour", "day", "week", "month"):
        with store.cursor() as cur:
            assert lake_manifest.applies(cur, "toy", grain)
            manifest = lake_manifest.windows(cur, "toy", grain)
            logs = list_windows(cur, "toy", grain)
        assert [(w.window, w.rows, w.feature_rows, w.labels) for w in manifest] == [
            (w.window, w.rows, w.feature_rows, w.labels) for w in logs
        ], grain
    with store.cursor() as cur:
        assert not lake_manifest.applies(cur, "toy", "chunk:100")  # chunks: the logs' order


def test_a_rewritten_or_removed_file_is_read_again_or_forgotten(tmp_path):
    from lifecycle import lake_manifest

    store = lake_store(tmp_path, days=2)
    monitor_model(store, "toy")
    day1 = next((tmp_path / "lake" / "predictions").glob("date=2026-03-03/*.parquet"))
    requests, _ = day_logs(1, rows=120)
    requests.to_parquet(day1, index=False)  # the writer rewrote a file
    run = monitor_model(store, "toy")
    assert (run.computed, run.skipped) == (1, 1)
    with store.cursor() as cur:
        rows = {w.window.start.day: w.rows for w in lake_manifest.windows(cur, "toy", "day")}
    assert rows == {2: 300, 3: 120}
    shutil.rmtree(day1.parent)
    monitor_model(store, "toy")
    with store.cursor() as cur:
        assert [w.rows for w in lake_manifest.windows(cur, "toy", "day")] == [300]


def test_views_written_by_an_earlier_release_are_rebuilt_on_open(tmp_path):
    import duckdb

    store = lake_store(tmp_path, days=1)
    path = store.path
    store.close()
    con = duckdb.connect(str(path))  # views as the first release wrote them: other variables
    old = con.execute(
        "SELECT sql FROM duckdb_views() WHERE view_name = 'lake__toy__predictions'"
    ).fetchall()[0][0]
    con.execute(
        "SET VARIABLE lake__toy__predictions = ?", [str(tmp_path / "lake" / "**" / "*.parquet")]
    )
    con.execute(
        old.replace("getvariable('lake')['lake__toy__predictions']['files']",
                    "getvariable('lake__toy__predictions')").replace("CREATE VIEW",
                                                                    "CREATE OR REPLACE VIEW")
    )  # fmt: skip
    con.close()
    with Store(path) as reopened:
        assert reopened.query_one("SELECT count(*) FROM predictions") == (300,)
        with reopened.cursor() as cur:
            from lifecycle import lake

            assert not lake.stale_views(cur)
    # a union view of the release before versionless rows were left out: rebuilt too
    with Store(path) as older, older.transaction() as cur:  # its cursors bind the lake
        sql = cur.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'predictions'")
        sql = sql.fetchall()[0][0]  # as DuckDB normalised it
        older_sql = sql.replace("(model_version IS NOT NULL) AND (variant IS NOT NULL) AND ", "")
        assert "model_version IS NOT NULL" not in older_sql
        cur.execute(older_sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    with Store(path) as reopened, reopened.cursor() as cur:
        from lifecycle import lake

        assert not lake.stale_views(cur)
        assert (
            "model_version IS NOT NULL"
            in cur.execute(
                "SELECT sql FROM duckdb_views() WHERE view_name = 'predictions'"
            ).fetchall()[0][0]
        )


def test_manifest_batches_bound_bytes_keep_order_and_every_file(monkeypatch):
    """A first read stages its files in batches of at most N bytes (memory stays bounded
    whatever a file's size); a file over the bound is read alone; none is lost or reordered."""
    from lifecycle import lake_manifest

    sizes = [10, 10, 10, 50, 10, 5, 5, 5, 5, 30]
    now = {f"f{i}": (size, 0) for i, size in enumerate(sizes)}
    batches = list(lake_manifest._batches(list(now), now, 30))
    assert [p for batch in batches for p in batch] == list(now)
    assert [[now[p][0] for p in batch] for batch in batches] == [
        [10, 10, 10], [50], [10, 5, 5, 5, 5], [30]
    ]  # fmt: skip
    monkeypatch.setattr(lake_manifest, "MAX_BATCH_FILES", 2)
    assert [len(b) for b in lake_manifest._batches(list(now), now, 10_000)] == [2, 2, 2, 2, 2]
    assert list(lake_manifest._batches([], {}, 30)) == []
