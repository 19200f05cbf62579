"""Registry: every model's versions with their states, approvals and what serves traffic."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from lifecycle import registry
from ui.common import get_store
from ui.identity import config, current_actor, dev_people, mode
from ui.text import md, md_list

st.title("Registry")
store = get_store()


@st.cache_data(show_spinner=False, ttl=30)
def _table(revision: int) -> pd.DataFrame:
    return registry.registry_table(get_store())


@st.cache_data(show_spinner=False, ttl=60)
def _canary(model: str, revision: int) -> dict | None:
    return registry.canary_recommendation(get_store(), model)


@st.cache_data(show_spinner=False, ttl=30)
def _retirement(model: str, versions: tuple[str, ...], revision: int) -> list[str]:
    """What retiring each version would affect, in words (registry.retirement_impact)."""
    out = []
    for version in versions:
        impact = registry.retirement_impact(get_store(), model, version)
        text = "; ".join(impact["consequences"][:-1]) or "nothing serving"
        out.append(("CONFIRM: " if impact["needs_confirmation"] else "") + text
                   if impact["allowed"] else "-")  # fmt: skip
    return out


def _revision() -> int:
    """Grows with every registry change: the cache key of the registry reads."""
    return registry.registry_revision(store)


table = _table(_revision())
if table.empty:
    st.info(
        "No model version is registered yet. Register one with "
        "`python -m lifecycle register --db PATH SPEC.toml`."
    )
    st.stop()

models = sorted(table["model"].unique())
chosen = st.multiselect("Models", models, default=models, key="registry_models")
st.caption(
    "States: registered -> pending_approval -> approved | rejected -> shadow -> canary (1% -> "
    "5% -> 25% -> 50%) -> production; the replaced version waits on standby for a rollback. "
    "Low-risk models need one approval, high-risk ones two distinct reviewers, never the "
    "person who registered the version."
)


def _people() -> list:
    """Everyone the identity configuration names (in development mode with its dev user)."""
    cfg = config()
    return [cfg.actor(email) for email in (dev_people(cfg) if mode() == "dev" else cfg.roles)]


def _review_queue(models: list[str]) -> None:
    """The versions awaiting review: who must approve, who may not, and whether you may."""
    actor = current_actor()
    queue = [
        item for item in registry.review_queue(store, actor, _people()) if item["model"] in models
    ]
    if not queue:
        return
    with st.container(border=True, key="registry_review_queue"):
        st.subheader(f"Waiting for review ({len(queue)})")
        for item in queue:
            name = f"{md(item['model'])} {md(item['version'])}"
            approvers = f" ({md_list(item['approvers'])})" if item["approvers"] else ""
            asked = item["requested_at"]
            when = f" on {asked:%Y-%m-%d}" if pd.notna(asked) else ""
            st.markdown(
                f"**{name}** · {md(item['risk_tier'])} risk: {item['review_kind']} · "
                f"approvals {len(item['approvers'])} of {item['quorum']}{approvers} · "
                f"requested by {md(item['requested_by'])}{when}"
            )
            excluded = "; ".join(
                f"{md(who)} ({why})" for who, why in item["may_not_approve"].items()
            )
            st.caption(
                f"May approve now: {md_list(item['eligible']) or 'nobody configured'}. "
                f"May not (four-eyes): {excluded}."
            )
            if item["actor_may_approve"]:
                st.success(f"You ({md(actor.name)}) may approve {name}.", icon=":material/check:")
            else:
                st.warning(
                    f"You ({md(actor.name)}) cannot approve {name}: {md(item['actor_why_not'])}",
                    icon=":material/block:",
                )
            st.page_link(
                "pages/version.py",
                label=f"Review {name}: review pack and actions",
                icon=":material/rate_review:",
                query_params={"model": item["model"], "version": item["version"]},
            )


_review_queue(chosen)
for model in chosen:
    part = table[table["model"] == model]
    serving = registry.serving_versions(store, model)
    with st.container(border=True, key=f"registry_model_{model}"):
        st.subheader(md(model))
        cols = st.columns(4)
        cols[0].metric("Production", md(serving["production"] or "none"))
        share = serving["canary_share"]
        cols[1].metric(
            "Canary", f"{md(serving['canary'])} at {share:.0%}" if serving["canary"] else "none"
        )
        cols[2].metric("Shadow", md_list(serving["shadow"]) or "none")
        cols[3].metric("Standby (rollback target)", md(serving["standby"] or "none"))
        if serving["canary"] and (rec := _canary(model, _revision())) is not None:
            if rec["rollback"]:
                st.error(
                    f"Rollback of canary {md(rec['canary'])} recommended: "
                    + md_list(rec["breaches"], "; "),
                    icon=":material/undo:",
                )
            else:
                st.success(f"Canary {md(rec['canary'])}: no breach against production so far.")
        view = part.assign(
            approvals=part["approvals"].astype(str) + " of " + part["quorum"].astype(str),
            canary_share=[
                f"{v:.0%}" if v == v and v is not None else "—" for v in part["canary_share"]
            ],
            open=[f"version?{urlencode({'model': model, 'version': v})}" for v in part["version"]],
            retiring=_retirement(model, tuple(part["version"]), _revision()),
        )
        st.dataframe(
            view[
                [
                    "version",
                    "state",
                    "approvals",
                    "canary_share",
                    "registered_by",
                    "registered_at",
                    "state_changed_at",
                    "retiring",
                    "open",
                ]
            ],
            hide_index=True,
            width="stretch",
            column_config={
                "canary_share": st.column_config.TextColumn("canary share"),
                "registered_at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                "state_changed_at": st.column_config.DatetimeColumn(
                    "state since", format="YYYY-MM-DD HH:mm"
                ),
                "open": st.column_config.LinkColumn("details", display_text="open"),
                "retiring": st.column_config.TextColumn(
                    "retiring it would",
                    help="what retiring the version affects; CONFIRM: the page and the CLI "
                    "ask for explicit confirmation (no rollback target, or live traffic)",
                ),
            },
        )
        for version in part["version"]:
            st.page_link(
                "pages/version.py",
                label=f"{md(model)} {md(version)}: review pack and actions",
                icon=":material/fact_check:",
                query_params={"model": model, "version": version},
            )
