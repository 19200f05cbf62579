"""A page's period reads only the lake files that may hold it (lifecycle.lake_manifest.period,
.newest): the same numbers as reading the whole lake, fewer files, and files the manifest has
not read yet (new or rewritten) are always read."""

from __future__ import annotations

import contextlib
import shutil
from datetime import timedelta

import pandas as pd
import pytest

from lifecycle import fairness, lake_manifest, layers
from lifecycle.drift.results import feature_distribution
from tests.lake_data import DAY0, day_logs, write_day
from tests.test_lake import lake_store, twin_store

DAYS = 12
SINCE, UNTIL = DAY0 + timedelta(days=9), DAY0 + timedelta(days=11)


def period_calls(store):
    """Every period function a page calls on a lake model, on days 9 and 10."""
    args = {"since": SINCE, "until": UNTIL}
    return {
        "performance": lambda: layers.performance_windows(store, "toy", **args),
        "hourly performance": lambda: layers.performance_windows(
            store, "toy", grain="hour", **args
        ),
        "confusion": lambda: layers.confusion_matrix(store, "toy", **args),
        "calibration": lambda: layers.calibration_bins(store, "toy", **args),
        "infrastructure": lambda: layers.infra_windows(store, "toy", **args),
        "unmonitored weeks": lambda: layers.unmonitored_windows(store, "toy", grain="week", **args),
        "segments": lambda: fairness.segments_over_time(store, "toy", start=SINCE, end=UNTIL),
        "distribution": lambda: distribution(store),
        "freshness": lambda: layers.freshness(store, "toy"),
    }


def distribution(store) -> tuple:
    """The Drift page's histogram of a feature in day 9's window, with its counts."""
    frame = feature_distribution(store, "toy", "1.0", "production", "day", SINCE, "x")
    return frame, frame.attrs


def same(a, b, what: str) -> None:
    if isinstance(a, tuple):
        same(a[0], b[0], what)
        assert a[1] == b[1], what
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, obj=what)
    else:
        assert a == b, what


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_period_reads_its_files_only_and_gives_the_numbers_of_the_whole_lake(
    tmp_path, fmt, monkeypatch
):
    store = lake_store(tmp_path / "lake", days=DAYS, fmt=fmt)
    twin = twin_store(tmp_path / "twin", days=DAYS)
    whole = {name: call() for name, call in period_calls(store).items()}  # no manifest yet
    lake_manifest.refresh(store, "toy")
    bound: list[dict] = []
    narrow = store.narrow_lake
    monkeypatch.setattr(store, "narrow_lake", lambda values: bound.append(values) or narrow(values))
    narrowed = {name: call() for name, call in period_calls(store).items()}
    for name in whole:
        same(narrowed[name], whole[name], name)
    # ... and the numbers of the same rows ingested
    for name, call in period_calls(twin).items():
        if name != "freshness":  # the twin has batches received, the lake none
            same(call(), narrowed[name], f"{name} (ingested)")
    assert int(narrowed["performance"]["predictions"].sum()) == 600
    files = {name: len(parts["files"]) for name, parts in bound[0].items()}
    assert files["lake__toy__predictions"] == files["lake__toy__features"] == 2  # days 9, 10
    # labels stamped from a week before the period: days 1 to 11 (day 0's end spills into 1)
    assert files["lake__toy__labels"] < DAYS
    # freshness read the oldest and newest day's files only
    oldest, newest = bound[-1]["lake__toy__predictions"]["files"]
    assert f"date={DAY0:%Y-%m-%d}" in oldest
    assert f"date={DAY0 + timedelta(days=DAYS - 1):%Y-%m-%d}" in newest


def test_files_the_manifest_has_not_read_are_always_read(tmp_path):
    store = lake_store(tmp_path, days=DAYS)
    lake_manifest.refresh(store, "toy")
    write_day(tmp_path, DAYS)  # a new day after the manifest's last read
    store.refresh_lake()
    newest = day_logs(DAYS)[0]["event_time"].max()
    last = layers.freshness(store, "toy")["last_prediction"]
    assert abs(pd.Timestamp(last) - newest) < pd.Timedelta(microseconds=1)
    day10 = next((tmp_path / "lake" / "predictions").glob("date=2026-03-12/*.parquet"))
    day_logs(10, rows=120)[0].to_parquet(day10, index=False)  # a writer rewrote a file
    store.refresh_lake()
    perf = layers.performance_windows(store, "toy", since=SINCE, until=SINCE + timedelta(days=4))
    assert perf["predictions"].tolist() == [300, 120, 300, 300]
    with store.cursor() as cur:  # the manifest itself still knows the old file until a run
        rows = {w.window.start.day: w.rows for w in lake_manifest.windows(cur, "toy", "day")}
    assert rows[12] == 300 and 14 not in rows


def test_without_a_manifest_or_period_nothing_is_narrowed(tmp_path):
    store = lake_store(tmp_path, days=2)
    with lake_manifest.period(store, "toy", SINCE, UNTIL):  # never monitored: every file
        bound = store._narrowed.values["lake__toy__predictions"]["files"]
        assert bound == store.lake_values["lake__toy__predictions"]["files"]
    lake_manifest.refresh(store, "toy")
    with lake_manifest.period(store, "toy", None):
        assert getattr(store._narrowed, "values", None) is None  # no period: the whole lake
    with lake_manifest.period(store, "toy", SINCE, UNTIL):
        files = store._narrowed.values["lake__toy__predictions"]["files"]
        assert len(files) == 1  # no file meets days 9-10: one keeps the view readable
        assert layers.performance_windows(store, "toy", since=SINCE, until=UNTIL).empty


def test_oldest_and_newest_time_stamps_read_the_edge_files_only(tmp_path, monkeypatch):
    from lifecycle import portfolio

    store = lake_store(tmp_path, days=DAYS)
    lake_manifest.refresh(store, "toy")

    def spans():
        return {
            "context": {
                k: v
                for k, v in layers.model_context(store, "toy").items()
                if k in ("first_ts", "last_ts", "version_spans")
            },
            "first": portfolio.first_prediction_at(store),
            "last": portfolio.last_prediction_at(store),
            "freshness": layers.freshness(store, "toy"),
            "portfolio": layers.portfolio_health(store)["last_prediction"].tolist(),
        }

    bound: list[dict] = []
    narrow = store.narrow_lake
    monkeypatch.setattr(store, "narrow_lake", lambda values: bound.append(values) or narrow(values))
    edged = spans()
    assert len(bound) == 5  # each of the five read the edge files
    assert all(len(v["lake__toy__predictions"]["files"]) <= 3 for v in bound)
    with monkeypatch.context() as m:
        m.setattr(lake_manifest, "_known", lambda *a: None)  # every file
        assert spans() == edged
    # the oldest day removed after the manifest read it: the next oldest is the answer
    shutil.rmtree(next((tmp_path / "lake" / "predictions").glob("date=2026-03-02")))
    store.refresh_lake()
    first = portfolio.first_prediction_at(store)
    assert abs(pd.Timestamp(first) - day_logs(1)[0]["event_time"].min()) < pd.Timedelta("1us")


def test_a_query_of_one_lake_model_reads_one_file_of_the_others(tmp_path, monkeypatch):
    from lifecycle import catalog

    store = lake_store(tmp_path, days=DAYS)
    spec = tmp_path / "spec" / "other.toml"  # a second model reading the same lake
    spec.write_text((tmp_path / "spec" / "toy-1.0.toml").read_text().replace(
        'name = "toy"', 'name = "other"', 1))  # fmt: skip
    catalog.register_from_file(store, spec)
    narrow = store.narrow_lake
    with monkeypatch.context() as m:  # every lake read whole
        m.setattr(store, "narrow_lake", lambda values: contextlib.nullcontext())
        whole = {name: call() for name, call in period_calls(store).items()}
    bound: list[dict] = []
    monkeypatch.setattr(store, "narrow_lake", lambda values: bound.append(values) or narrow(values))
    narrowed = {name: call() for name, call in period_calls(store).items()}  # no manifest
    for name in whole:
        same(narrowed[name], whole[name], name)
    assert len(bound) == len(whole)
    for values in bound:
        assert len(values["lake__other__predictions"]["files"]) == 1
        assert len(values["lake__other__labels"]["files"]) == 1
        # never monitored: toy's own lake is bound whole
        assert values["lake__toy__predictions"] == store.lake_values["lake__toy__predictions"]


def test_the_overview_counts_history_from_the_manifest_and_the_files_not_read(tmp_path):
    from lifecycle import portfolio

    store = lake_store(tmp_path / "lake", days=DAYS)
    twin = twin_store(tmp_path / "twin", days=DAYS + 1)
    lake_manifest.refresh(store, "toy")
    write_day(tmp_path / "lake", DAYS)  # read by no monitoring run yet
    store.refresh_lake()
    columns = ["model", "predictions_7d", "last_prediction_at", "last_label_at"]
    for _ in range(2):  # with a file not read, then with every file read
        daily = portfolio.daily_predictions(store)
        pd.testing.assert_frame_equal(daily, portfolio.daily_predictions(twin))
        assert daily["predictions"].sum() == 300 * (DAYS + 1)
        mine, theirs = (portfolio.model_summary(s)[columns] for s in (store, twin))
        for column in columns[2:]:  # Parquet keeps nanoseconds, ingest microseconds
            mine[column], theirs[column] = (
                mine[column].dt.floor("ms"),
                theirs[column].dt.floor("ms"),
            )
        pd.testing.assert_frame_equal(mine, theirs)
        lake_manifest.refresh(store, "toy")
