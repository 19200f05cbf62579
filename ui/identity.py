"""The current actor in the app, and the sidebar widget that says who you are.

Two modes (lifecycle.toml [identity] mode, see docs/governance.md):
- OIDC: Streamlit's built-in login (st.login / st.user, configured by [auth] in
  .streamlit/secrets.toml); roles from the e-mail -> roles mapping. Not signed in: a viewer.
- development: no login; the identity is the config's dev_user, switchable in the sidebar
  among the people in the role mapping, under a visible "development identity" banner.
"auto" (the default) is OIDC when [auth] is configured, else development.
"""

from __future__ import annotations

import streamlit as st

from lifecycle.identity import Actor, ConfigError, IdentityConfig, load_identity_config
from ui.text import md

ANONYMOUS = "anonymous (not signed in)"
DEV_KEY = "dev_identity"


@st.cache_resource(show_spinner=False, ttl=60)
def _config() -> IdentityConfig | ConfigError:
    try:
        return load_identity_config()
    except ConfigError as exc:
        return exc


def config() -> IdentityConfig:
    """The identity configuration; a broken one stops the page with its message."""
    loaded = _config()
    if isinstance(loaded, ConfigError):
        st.error(f"Identity configuration problem: {md(loaded)}")
        st.stop()
    return loaded


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:
        return False


def mode() -> str:
    """'oidc' or 'dev'."""
    configured = config().mode
    if configured == "auto":
        return "oidc" if _auth_configured() else "dev"
    return configured


def _user() -> dict:
    try:
        return st.user.to_dict()
    except Exception:
        return {}


def dev_people(cfg: IdentityConfig) -> list[str]:
    people = sorted(cfg.roles)
    if cfg.dev_user.lower() in people:
        people.remove(cfg.dev_user.lower())
    return [cfg.dev_user, *people]


def current_actor() -> Actor:
    """Who is using the app now (always an Actor; a viewer when nobody is signed in)."""
    cfg = config()
    if mode() == "oidc":
        user = _user()
        email = user.get("email") if user.get("is_logged_in") else None
        if not email:
            return Actor(ANONYMOUS, frozenset({"viewer"}))
        return cfg.actor(email)
    people = dev_people(cfg)
    name = st.session_state.get(DEV_KEY, cfg.dev_user)
    return cfg.actor(name if name in people else cfg.dev_user)


def _roles_text(actor: Actor) -> str:
    return ", ".join(sorted(actor.roles)) or "no role"


def sidebar_widget() -> None:
    """Who you are, your roles, and sign-in / sign-out (OIDC) or the identity picker (dev)."""
    cfg = config()
    with st.sidebar:
        if mode() == "oidc":
            actor = current_actor()
            if actor.name == ANONYMOUS:
                st.caption("Not signed in: read-only.")
                st.button("Log in", icon=":material/login:", key="identity_login",
                          on_click=st.login)  # fmt: skip
            else:
                st.caption(f"Signed in as **{md(actor.name)}** ({md(_roles_text(actor))})")
                st.button("Log out", icon=":material/logout:", key="identity_logout",
                          on_click=st.logout)  # fmt: skip
            return
        people = dev_people(cfg)
        if st.session_state.get(DEV_KEY) not in people:
            st.session_state[DEV_KEY] = cfg.dev_user
        actor = current_actor()
        st.warning(
            f"**Development identity**: acting as **{md(actor.name)}** ({md(_roles_text(actor))}). "
            "Nobody is authenticated; configure OIDC for real use.",
            icon=":material/badge:",
        )
        st.selectbox(
            "Act as (development identity)",
            people,
            key=DEV_KEY,
            format_func=lambda name: f"{name} ({', '.join(sorted(cfg.roles_of(name)))})",
        )
