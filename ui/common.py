"""What every page shares: the process's store, its data version, first-start banner, sidebar.

The Streamlit process holds the DuckDB file for its whole life (one Store per process, a
cursor per operation). Other processes hand batches to it through the inbox (see
lifecycle/inbox.py), which a background thread of this process drains every few seconds.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lifecycle import demo
from lifecycle.store import DatabaseLocked, Store, StoreError, resolve_db_path
from ui import runtime
from ui.text import md

LAKE_REFRESH_SECONDS = 30.0  # how old a lake's file list may be when a page runs (docs/lake.md)
# measured once (README, "Two commands"); shown beside the elapsed time, not as a promise
SETUP_ESTIMATE = (
    "on an idle 2-core machine pages had verdicts after about 50 s and the whole history "
    "after about 3 minutes (measured twice); shared with other work it takes longer. The "
    "step and elapsed time above are what to go by."
)


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
    store = get_store()
    store.refresh_lake(max_age=LAKE_REFRESH_SECONDS)  # new files in a lake: fresh pages
    return store.data_version()


def first_start() -> None:
    """Start or show the first-start setup (lifecycle/first_start.py), which runs in the
    background of this process (ui/runtime.py), not in this browser session.

    While it runs every page shows its progress on top. Until the demo database file exists
    the page stops after the banner (nothing may open the file the build is about to move
    into place); afterwards pages show what is stored while monitoring continues.
    """
    path = db_path()
    if path.exists():
        get_store()  # a locked or unreadable file stops here, with its message
    job = runtime.setup_job(path)
    if job is None:
        return
    if job.running:
        _setup_progress(str(path), waiting=not path.exists())
    elif job.error:
        st.error(f"**First-start setup failed:** {md(job.error)}. Pages show what is stored; "
                 "layers without monitoring results stay *not evaluated*.",
                 icon=":material/error:")  # fmt: skip
        st.button("Retry the setup", key="retry_setup", icon=":material/replay:",
                  on_click=runtime.setup_job, args=(path,), kwargs={"retry": True})  # fmt: skip
    if not path.exists():
        st.stop()


def setup_running() -> bool:
    """Whether the first-start setup is still computing (monitoring, first check)."""
    return runtime.setup_running(db_path())


@st.fragment(run_every=2)
def _setup_progress(path: str, waiting: bool) -> None:
    """The setup banner, refreshed every 2 s; reruns the whole page when setup finishes
    (or, for a page that waited, when the database file appears)."""
    job = runtime.job(runtime.setup_name(path))
    if job is None or not job.running or (waiting and Path(path).exists()):
        st.rerun()
    with st.container(border=True, key="setup_banner"):
        st.markdown(
            "**Setting up the app (first start).** It runs in the app's process: closing or "
            "reloading this tab does not stop it, and a restarted app resumes it."
        )
        st.progress(job.fraction, text=md(job.text))
        minutes, seconds = divmod(int(job.elapsed), 60)
        lines = [f"Elapsed: {minutes} min {seconds:02d} s."]
        if job.still:
            lines.append(md(job.still))
        lines.append(
            "Pages show what is stored meanwhile: a layer without monitoring results reads "
            "*not evaluated* and no alert is raised before the first check."
            if not waiting
            else f"Pages open once the demo database {md(path)} is built; {SETUP_ESTIMATE}"
        )
        st.caption(" ".join(lines))


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
