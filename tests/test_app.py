"""The app shell and the Overview page, run headless with AppTest."""

from __future__ import annotations

import time


def _versions_table(at):
    """Overview's versions-and-traffic table, found by its columns."""
    for element in at.dataframe:
        if "versions" in element.value.columns:
            return element.value
    raise AssertionError("no versions table on the page")


def test_overview_lists_every_model_with_versions_and_traffic(app_on, demo_copy):
    at = app_on(demo_copy)
    assert at.title[0].value == "Overview"
    table = _versions_table(at)
    assert list(table["model"]) == ["churn", "credit_risk", "delivery_time"]
    assert dict(zip(table["model"], table["production_version"], strict=True)) == {
        "churn": "2.0",
        "credit_risk": "1.1",
        "delivery_time": "1.1",
    }
    assert table.loc[table["model"] == "credit_risk", "versions"].item() == (
        "1.1 production · 1.2 shadow · 1.3 pending_approval · 1.0 retired"
    )
    assert table.loc[table["model"] == "churn", "versions"].item() == (
        "2.0 production · 2.1 canary · 1.0 retired"
    )
    assert (table["predictions_7d"] > 20_000).all()
    assert table["last_prediction"].notna().all()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Models"] == "3" and metrics["Versions"] == "11"
    assert any("Demo data" in i.value for i in at.sidebar.info)
    assert len(at.get("plotly_chart")) == 1


def test_overview_of_an_empty_database_says_what_to_do(app_on, tmp_path):
    from lifecycle.store import Store

    Store(tmp_path / "empty.duckdb").close()
    at = app_on(tmp_path / "empty.duckdb")
    assert "No model is registered yet" in at.info[0].value
    assert not at.dataframe  # neither table pretends to show something


def test_first_start_builds_a_demo_database_in_the_background(app_on, tmp_path, monkeypatch):
    """No database: the app's process builds a (small) demo, monitors every model and runs
    the first check, whatever the session that triggered it does meanwhile."""
    from lifecycle import first_start
    from ui import runtime

    monkeypatch.setenv(first_start.DEMO_DAYS_ENV, "7")
    target = tmp_path / "fresh" / "lifecycle.duckdb"
    at = app_on(target)
    assert "Setting up the app (first start)" in at.markdown[0].value
    job = runtime.job(runtime.setup_name(target))
    for _ in range(600):  # the job reports its first step within moments
        if "building" in job.text:
            break
        time.sleep(0.1)
    at = app_on(target)  # another session sees the same job's progress
    assert "Step 1 of 6: building the demo database" in at.get("progress")[0].proto.text
    assert runtime.job(runtime.setup_name(target)) is job
    assert job.wait(timeout=600) and job.error is None, job.error
    at = app_on(target)  # a new session once setup finished
    assert target.exists()
    assert len(_versions_table(at)) == 3
    assert not any("Setting up the app" in m.value for m in at.markdown)
    store = runtime.store_for(target)
    results = store.query_one("SELECT count(DISTINCT model_name), count(*) FROM monitor_results")
    assert results[0] == 3 and results[1] > 100  # every model has drift/quality history
    assert store.query_one("SELECT count(*) FROM check_runs")[0] == 1
    assert not first_start.is_pending(store)


def test_new_rows_show_after_a_refresh(app_on, demo_copy):
    """Logs ingested while the app runs appear on the next run (cache keyed on data version)."""
    import pandas as pd

    from lifecycle.ingest import ingest
    from ui import common

    at = app_on(demo_copy)
    before = _versions_table(at).set_index("model")["predictions_7d"]["churn"]
    store = common._open(str(demo_copy))  # the app's own store, as the inbox drainer uses it
    last = store.query_one("SELECT max(ts) FROM predictions")[0]
    batch = pd.DataFrame(
        {
            "prediction_id": [f"live-{i}" for i in range(25)],
            "model_version": "2.0",
            "ts": pd.Timestamp(last) - pd.Timedelta(hours=1),
            "prediction": 0.2,
            "predicted_label": "0",
        }
    )
    ingest(store, "churn", "predictions", batch)
    at.run()
    after = _versions_table(at).set_index("model")["predictions_7d"]["churn"]
    assert after == before + 25


def _worker_threads() -> list[str]:
    import threading

    return sorted(t.name for t in threading.enumerate() if t.name in ("inbox-drainer", "requests"))


def test_clearing_caches_never_restarts_or_duplicates_the_store_or_its_workers(app_on, demo_copy):
    """Any browser can send `clear_cache`; "Reload data" clears the data caches. Neither may
    reopen the store or start a second inbox drainer / request worker."""
    import streamlit as st

    from ui import common

    at = app_on(demo_copy)
    store = common.get_store()
    workers = _worker_threads()
    assert workers == ["inbox-drainer", "requests"]
    for _ in range(10):
        # a websocket `clear_cache` message clears both; "Reload data" clears cache_data
        st.cache_resource.clear()
        st.cache_data.clear()
        at.run()
        assert not at.exception, at.exception
    assert common.get_store() is store
    assert _worker_threads() == workers
