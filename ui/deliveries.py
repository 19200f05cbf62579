"""The alerts inbox's delivery log: where each alert notification went and how it fared.

Shows destination names, kinds and targets cut to scheme and host (what the outbox stores),
never a URL's token; and the routing configuration's problems, named by key.
"""

from __future__ import annotations

import streamlit as st

from lifecycle.alerts import notify
from lifecycle.alerts.routing import RoutingConfig, RoutingConfigError, load_routing_config
from lifecycle.store import Store
from ui.text import md

COLUMNS = {
    "notification_id": "#", "alert_id": "alert", "model": "model", "event": "event",
    "destination": "destination", "kind": "kind", "target": "target", "route": "route",
    "state": "state", "attempts": "attempts", "last_error": "last error",
    "created_at": "queued", "delivered_at": "delivered",
}  # fmt: skip


@st.cache_resource(show_spinner=False, ttl=60)
def _routing() -> RoutingConfig | RoutingConfigError:
    try:
        return load_routing_config()
    except RoutingConfigError as exc:
        return exc


def routing_summary(routing: RoutingConfig | RoutingConfigError) -> str:
    if isinstance(routing, RoutingConfigError):
        return "Alert routing cannot be used (the scheduled check stops until it is fixed)."
    if routing.empty:
        return ("No alert routing configured: alerts are sent only with `check --notify URL` "
                "(docs/alerts.md, Routing).")  # fmt: skip
    kinds = ", ".join(f"{d.name} ({d.kind})" for d in routing.destinations.values())
    return (
        f"Routing from {routing.source}: {len(routing.routes)} route(s), "
        f"{len(routing.owners)} owner default(s), destinations {kinds}."
    )


def delivery_log_section(store: Store, limit: int = 200) -> None:
    """One expander: the routing in force and the newest deliveries, pending ones counted."""
    routing = _routing()
    log = notify.delivery_log(store, limit)
    pending = int((log["state"] == notify.PENDING).sum()) if len(log) else 0
    label = "Notification deliveries" + (f" ({pending} pending)" if pending else "")
    with st.expander(label, expanded=bool(pending)):
        st.caption(md(routing_summary(routing)))
        if isinstance(routing, RoutingConfigError):
            st.error(md(str(routing)))
        if log.empty:
            st.info("No notification has been queued yet.")
            return
        st.dataframe(
            log[list(COLUMNS)].rename(columns=COLUMNS),
            hide_index=True,
            width="stretch",
            height=min(38 * len(log) + 38, 320),
            key="delivery_log",
        )
