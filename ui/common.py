"""What every page shares: the process's store, its data version, first-run demo build, sidebar.

The Streamlit process holds the DuckDB file for its whole life (one Store per process, a
cursor per operation). Other processes hand batches to it through the inbox (see
lifecycle/inbox.py), which a background thread of this process drains every few seconds.
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from lifecycle import catalog, demo, monitor
from lifecycle.alerts.check import run_check
from lifecycle.store import DatabaseLocked, Store, StoreError, resolve_db_path
from ui import runtime
from ui.text import md

_BUILD_LOCK = threading.Lock()


def db_path() -> Path:
    return resolve_db_path(None)


def _open(path: str) -> Store:
    """The process's store and its workers (ui/runtime.py: kept out of the resource cache)."""
    return runtime.store_for(path)


_app_has_run = False  # set once app.py has routed a page in this process


def leave_legacy_pages_mode(*, entry_point: bool = False) -> None:
    """Run pages through app.py's navigation even when a deep link is a server's first request.

    Streamlit treats a folder named pages/ beside the entry script as a legacy multipage app
    until some run calls st.navigation. A link such as /drift?model=... opened as a fresh
    server's first request would run that page alone: no sections, sidebar or identity. Such
    a page switches the flag off and reruns, so app.py routes the same URL (query parameters
    are kept). app.py calls this with entry_point=True first thing: it only records that the
    process has been routed, since a rerun there would drop a click or interrupt the first
    start. (AppTest resets the flag before every run; once app.py has run, no rerun is needed.)
    """
    global _app_has_run
    from streamlit.runtime.pages_manager import PagesManager

    if entry_point:
        _app_has_run = True
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not _app_has_run:
            st.rerun()


def get_store() -> Store:
    """The process-wide store; stops the page with a clear message if it cannot be opened."""
    leave_legacy_pages_mode()
    try:
        return _open(str(db_path()))
    except DatabaseLocked:
        st.error(
            f"The database {md(db_path())} is held by another process (another app instance, or a "
            "long CLI command). Stop it or point this app at another file with LIFECYCLE_DB."
        )
        st.stop()
    except StoreError as exc:
        st.error(md(exc))
        st.stop()


def data_version() -> int:
    """Grows whenever logs arrive: use it as an argument of cached functions."""
    return get_store().data_version()


def ensure_database() -> None:
    """On first start (no database file), build the demo database, showing progress."""
    path = db_path()
    if path.exists():
        return
    with _BUILD_LOCK:
        if path.exists():  # another session built it while this one waited
            return
        with st.status("First start: building the demo database…", expanded=True) as status:
            st.write(
                f"No database at {md(path)}. Building a demo with three models, 90 days of "
                "traffic and known incidents (about 20-60 s)."
            )
            bar = st.progress(0.0)

            def show(fraction: float, message: str) -> None:
                bar.progress(min(max(fraction, 0.0), 1.0), text=message)

            summary = demo.build_demo(path, progress=show)
            st.write(summary.text())
            _first_monitoring(get_store(), bar)
            status.update(label=f"Demo database ready: {md(summary.text())}", state="complete")


def _first_monitoring(store: Store, bar) -> None:
    """Compute the drift and data-quality results of every model's declared windows once
    (daily for the demo), so every page has history."""
    st.write("Computing drift and data-quality results for every model and version…")
    with store.cursor() as cur:
        models = catalog.model_names(cur)
    for index, model in enumerate(models):

        def show(done, total, window, computed, index=index, model=model):
            fraction = (index + done / max(total, 1)) / len(models)
            bar.progress(fraction, text=f"monitoring {model}: window {done} of {total}")

        monitor.monitor_declared(store, model, progress=show)
    st.write("Evaluating the alert rules (first check)…")
    run_check(store, monitor=False)


@st.cache_data(show_spinner=False)
def _is_demo(path: str, version: int) -> bool:
    return demo.is_demo(get_store())


def sidebar() -> None:
    """Data source, freshness and the demo note."""
    store = get_store()
    with st.sidebar:
        if _is_demo(str(store.path), data_version()):
            st.info(
                "**Demo data.** Generated models, traffic and incidents "
                "(see data/README.md). Point LIFECYCLE_DB at your own database to use real logs.",
                icon=":material/science:",
            )
        st.caption(f"Database: {md(store.path)}")
        if st.button("Reload data", icon=":material/refresh:", key="reload_data"):
            st.cache_data.clear()
            st.rerun()


def blank_missing(frame):
    """A table for people: missing text shows as a dash, not as "None"."""
    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) == "str"]
    return frame.assign(**{c: frame[c].map(lambda v: "—" if _missing(v) else v) for c in text})


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)
