"""The app process's store and background workers: one of each per process, never cached.

They live here, in a module-level singleton behind a lock, and not in st.cache_resource, on
purpose: any browser connected to the app (signed in or not) can ask Streamlit to clear its
caches (the `clear_cache` websocket message, the "Clear caches" menu entry), and "Reload data"
clears the data caches. A cached Store would be reopened after such a clear, with a second
inbox drainer and request worker started beside the first ones (a thread leaked per clear, two
workers serving one queue, a running request answered "the app stopped"). Caches of data
(st.cache_data) stay clearable: they are keyed on the data version and hold no resources.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lifecycle import inbox, requests
from lifecycle.store import Store, open_store

_LOCK = threading.Lock()


@dataclass
class Runtime:
    path: Path
    store: Store
    drainer: inbox.Drainer
    worker: requests.Worker

    def stop(self) -> None:
        self.drainer.stop()
        self.worker.stop()
        self.store.close()


_current: Runtime | None = None


def store_for(path: str | Path) -> Store:
    """The process's store of `path`, opened with its inbox drainer and request worker on
    first use. Another path (tests switch LIFECYCLE_DB) stops and closes the previous one."""
    global _current
    resolved = Path(path).resolve()
    with _LOCK:
        if _current is not None and _current.path == resolved:
            return _current.store
        if _current is not None:
            _current.stop()
            _current = None
        store = open_store(path, wait_seconds=10)
        drainer = inbox.Drainer(store).start()
        # check, report, register and registry commands from other processes queue for this one
        worker = requests.Worker.start_for(store)
        _current = Runtime(resolved, store, drainer, worker)
        return store


def shutdown() -> None:
    """Stop the workers and close the store (tests release the database file with this)."""
    global _current
    with _LOCK:
        if _current is not None:
            _current.stop()
            _current = None
