"""Version detail: the review pack and the actions the current person may take.

Every action opens a confirmation dialog that asks for a reason; the library checks the role,
the state, four-eyes, quorum and the gates again, and refuses with a clear message if the
version changed since this page was loaded (compare-and-swap on its revision). The dialog is
bound to the model, version and action it was opened for (ui/pending.py): dismissing it or
changing a selector forgets it, and a confirm for anything else does nothing."""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lifecycle import charts, drift_impact, registry, review
from lifecycle.identity import PermissionDenied
from ui.common import blank_missing, data_version, get_store
from ui.identity import current_actor
from ui.live import live_tab
from ui.model_card import card_tab
from ui.monitoring import share_selection, shared_selection
from ui.pending import PendingAction, refusal
from ui.text import md, md_list
from ui.training import show_training_run

store = get_store()
actor = current_actor()
PENDING = "_version_pending_action"
FLASH = "_version_flash"
REASON = "action_reason"


def _forget_pending() -> None:
    """Dismissed (X, Escape, a click outside, Cancel) or the selection moved on."""
    st.session_state.pop(PENDING, None)
    st.session_state.pop(REASON, None)


@st.cache_data(show_spinner=False, ttl=30)
def _options(revision: int) -> dict[str, list[str]]:
    return review.version_options(get_store())


@st.cache_data(show_spinner="Computing the review pack…", ttl=300)
def _pack(model: str, version: str, data: int, revision: int) -> dict:
    return review.review_pack(get_store(), model, version, with_gates=False)


@st.cache_data(show_spinner=False, ttl=300)
def _importance(model: str, version: str, data: int):
    return drift_impact.importance_profile(get_store(), model, version)


@st.cache_data(show_spinner="Checking the promotion gates…", ttl=30)
def _actions(actor, model: str, version: str, data: int, revision: int) -> list:
    return registry.available_actions(get_store(), actor, model, version)


@st.cache_data(show_spinner="Checking the promotion gates…", ttl=30)
def _gates(model: str, version: str, champion: str | None, data: int, revision: int) -> list:
    return registry.promotion_gates(get_store(), model, version, champion)


def _revision() -> int:
    return registry.registry_revision(store)


revision_key = _revision()
options = _options(revision_key)
if not options:
    st.title("Version detail")
    st.info("No model version is registered yet.")
    st.stop()


def _pick(label: str, param: str, choices: list[str], default: str) -> str:
    """A picker that follows ?param= in the URL (deep links) and writes its choice back."""
    key, applied = f"version_pick_{param}", f"_version_applied_{param}"
    wanted = st.query_params.get(param)
    if wanted in choices and st.session_state.get(applied) != wanted:
        st.session_state[key] = wanted
    elif wanted is None and (shared := shared_selection().get(param)) in choices:
        st.session_state[key] = shared  # opened from the sidebar: the monitoring pages' choice
    if st.session_state.get(key) not in choices:
        st.session_state[key] = default
    if st.session_state.get(key) != st.session_state.get(applied):
        _forget_pending()  # a followed link moved the selection
    value = st.selectbox(label, choices, key=key, on_change=_forget_pending)
    st.query_params[param] = st.session_state[applied] = value
    return value


cols = st.columns(2)
models = list(options)
with cols[0]:
    model = _pick("Model", "model", models, models[0])
with cols[1]:
    version = _pick("Version", "version", options[model], options[model][-1])
share_selection(model=model, version=version)

status = registry.version_status(store, model, version)
st.title(f"{md(model)} {md(version)}")
st.markdown(
    f"**State:** `{status['state']}` · **risk tier:** {md(status['risk_tier'])} · "
    f"**approvals:** {len(status['approvers'])} of {status['quorum']}"
    + (f" ({md_list(status['approvers'])})" if status["approvers"] else "")
    + f" · {registry.review_kind(status['quorum'])}"
    + f" · **registered by:** {md(status['registered_by'])} · revision {status['revision']}"
)
if flash := st.session_state.pop(FLASH, None):
    kind, text = flash
    (st.success if kind == "ok" else st.error)(text)  # free text escaped where it was written


# -- actions ---------------------------------------------------------------------------------


@st.dialog("Confirm the action", on_dismiss=_forget_pending)
def _confirm(pending: PendingAction) -> None:
    st.markdown(f"**{md(pending.label)}**: {md(pending.target)} (now `{pending.state}`)")
    required = pending.needs_reason or pending.override
    understood = _retirement_warning(pending) if pending.action == "retire" else None
    reason = st.text_area(
        "Reason (recorded in the audit log)" + (" - required" if required else ""), key=REASON
    )
    cols = st.columns(2)
    confirmed = cols[0].button("Confirm", type="primary", key="action_confirm")
    if cols[1].button("Cancel", key="action_cancel"):
        _forget_pending()
        st.rerun()
    if confirmed:
        if required and not reason.strip():
            st.error("Please give a reason.")
        elif understood is False:
            st.error("Tick the box to confirm the consequence above.")
        else:
            _perform(pending, reason, confirm=bool(understood))


def _retirement_warning(pending: PendingAction) -> bool | None:
    """What retiring affects; for the standby or a shadow version, a box to tick (its value),
    else None (nothing to confirm)."""
    impact = registry.retirement_impact(store, pending.model, pending.version)
    (st.warning if impact["needs_confirmation"] else st.info)(
        "Retiring it: " + md_list(impact["consequences"], "; ") + ".",
        icon=":material/warning:" if impact["needs_confirmation"] else None,
    )
    if not impact["needs_confirmation"]:
        return None
    return st.checkbox(f"I understand: {md(impact['consequences'][0])}", key="retire_confirm")


def _perform(pending: PendingAction, reason: str, confirm: bool = False) -> None:
    _forget_pending()
    # the selection as it is now (a dialog rerun sees the widgets' current values)
    shown = (
        st.session_state.get("version_pick_model"),
        st.session_state.get("version_pick_version"),
    )
    try:
        current = registry.version_status(store, pending.model, pending.version)
        if (why := refusal(pending, *shown, current)) is not None:
            st.session_state[FLASH] = ("error", why)
        else:
            result = registry.act(
                store, actor, pending.action, pending.model, pending.version,
                reason=reason or None, expected_revision=pending.revision,
                override_gates=pending.override, confirm=confirm,
            )  # fmt: skip
            st.session_state[FLASH] = (
                "ok",
                f"{md(result.message)} ({result.from_state} -> {result.to_state}; recorded by "
                f"{md(actor.name)}).",
            )
    except registry.Conflict as exc:
        st.session_state[FLASH] = ("error", f"Not done: {md(exc)}")
    except (PermissionDenied, registry.RegistryError, KeyError) as exc:
        st.session_state[FLASH] = ("error", f"Refused: {md(exc)}")
    st.cache_data.clear()
    st.rerun()


choices = _actions(actor, model, version, data_version(), revision_key)
with st.container(border=True, key="version_actions"):
    st.markdown(f"**Actions** for {md(actor.name)} ({md_list(sorted(actor.roles))})")
    if not choices:
        st.caption(
            "No action is open to you on this version in its current state "
            "(approve / reject need the reviewer role; promote, roll back and retire the "
            "deployer role)."
        )
    cols = st.columns(max(len(choices), 1))
    for col, option in zip(cols, choices, strict=False):
        with col:
            if st.button(option.label, key=f"action_{option.action}", disabled=not option.allowed,
                         help=md(option.why) if option.why else None,
                         width="stretch"):  # fmt: skip
                st.session_state[PENDING] = PendingAction.opened_on(
                    status, option.action, option.label, needs_reason=option.needs_reason
                )
                st.session_state.pop(REASON, None)
            if not option.allowed:
                st.caption(f"Blocked: {md(option.why)}")
                may_override = option.gates and actor.can("override_gates")
                if may_override and st.button(
                    "Override gates (admin)", key=f"override_{option.action}"
                ):
                    st.session_state[PENDING] = PendingAction.opened_on(
                        status, option.action, option.label + " despite failing gates",
                        needs_reason=True, override=True,
                    )  # fmt: skip
                    st.session_state.pop(REASON, None)
if (pending := st.session_state.get(PENDING)) is not None:
    if pending.is_for(model, version):
        _confirm(pending)  # a stale revision is reported by the library on confirm
    else:  # opened for another selection: never shown (nor confirmed) for this one
        _forget_pending()


# -- review pack ---------------------------------------------------------------------------------


def _rollback_offer(options: list) -> None:
    """The candidate is worse on live traffic: the roll back action, right beside it (the
    same confirmation dialog as the actions above)."""
    rollback = next((o for o in options if o.action == "rollback"), None)
    if rollback is None:
        st.caption("Rolling back needs the deployer role." if status["state"] == "canary"
                   else "A shadow version serves no one: retire it or let it be.")  # fmt: skip
        return
    if st.button("Roll back the canary", key="live_rollback", type="primary",
                 disabled=not rollback.allowed, icon=":material/undo:"):  # fmt: skip
        st.session_state[PENDING] = PendingAction.opened_on(
            status, "rollback", rollback.label, needs_reason=True
        )
        st.session_state.pop(REASON, None)
        st.rerun()


def _importance_section(profile: drift_impact.StoredProfile | None) -> None:
    """The version's importance profile: what its drift findings are weighed by."""
    st.markdown("**Feature importance** (what drift findings are weighed by)")
    if profile is None:
        st.info("No importance profile yet: the monitoring run computes it from the reference.")
        return
    if not profile.valid:
        st.warning(f"No valid importance profile: {md(profile.reason)}. Drift findings of "
                   "this version are ranked and answered by severity alone.")  # fmt: skip
        return
    st.plotly_chart(
        charts.importance_figure(profile.shares, min_share=profile.min_share,
                                 title=f"{model} {version}: share of importance per feature"),
        key="importance_profile", width="stretch",
    )  # fmt: skip
    st.caption(
        f"Method: {md(profile.method)}; {profile.fidelity_text}; computed "
        f"{pd.Timestamp(profile.computed_at):%Y-%m-%d %H:%M} UTC. Drift impact = importance x "
        "effect; a shift in a feature below the dashed line calls for investigate, never "
        "retrain (`[drift] min_importance`, docs/drift.md)."
    )


pack = _pack(model, version, data_version(), revision_key)
if pack.get("canary"):
    rec = pack["canary"]
    if rec["rollback"]:
        st.error(
            "**Rollback recommended** for the canary: " + md_list(rec["breaches"], "; "),
            icon=":material/undo:",
        )
    else:
        st.success("Canary healthy so far: no breach against production.")

tabs = st.tabs(["Metadata", "Model card", "Live vs production", "Metrics vs production",
                "Segments", "Fairness", "Shadow comparison", "Drift baseline", "Gates",
                "History"])  # fmt: skip
meta = pack["metadata"]
with tabs[0]:
    st.markdown(
        f"**Task:** {md(meta['task'])} · **owner:** {md(meta['owner'])} · **risk tier:** "
        f"{md(meta['risk_tier'])} · **registered** {pd.Timestamp(meta['registered_at']):%Y-%m-%d} "
        f"by {md(meta['registered_by'])}"
    )
    st.markdown(f"**Training-data fingerprint:** {md(meta['training_fingerprint'])}")
    st.markdown(
        f"**Reference (validation) data:** {meta['reference_rows']:,} rows, "
        f"sha256 `{meta['reference_sha256'][:16]}…`"
    )
    cols = st.columns(2)
    cols[0].markdown("**Parameters**")
    cols[0].json(meta["parameters"])
    cols[1].markdown("**Validation metrics**")
    cols[1].json(meta["validation_metrics"])
    st.markdown("**Feature schema**")
    features = pd.DataFrame(meta["features"])
    st.dataframe(blank_missing(features).astype(str), hide_index=True, width="stretch")
    show_training_run(model, version, data_version())
with tabs[1]:
    card_tab(store, actor, model, version, pack)
with tabs[2]:
    if live_tab(pack.get("live"), version, status["state"]):
        _rollback_offer(choices)
with tabs[3]:
    comparison = pack["comparison"]
    if comparison is None:
        st.info("This version is the production version: nothing to compare with.")
    else:
        st.caption(f"Basis: {md(comparison['basis'])}; {comparison['rows']:,} labelled rows.")
        frame = pd.DataFrame(comparison["metrics"]).T
        names = {"candidate": f"{version} (candidate)",
                 "champion": f"{pack['champion']} (production)",
                 "difference": "candidate - production"}  # fmt: skip
        frame.columns = [names.get(c, c) for c in frame.columns]
        st.caption("Higher is better for ROC AUC, accuracy, precision, recall and F1; lower "
                   "for MAE and RMSE; bias is best near 0.")  # fmt: skip
        st.dataframe(frame, width="stretch")
with tabs[4]:
    seg = pack["segments"]
    st.caption(f"Basis: {md(seg['basis'])}.")
    st.dataframe(seg["frame"], hide_index=True, width="stretch")
with tabs[5]:
    fair = pack["fairness"]
    if fair.get("frame") is None:
        st.info(md(fair.get("note", "No fairness analysis.")))
    else:
        st.caption(
            f"Rate of {md(fair['outcome'])} per {md(fair['attribute'])} group; disparate impact "
            f"= group rate / highest group rate; the 80% rule needs every ratio >= 0.8. "
            f"Basis: {md(fair['basis'])}."
        )
        for side, summary in fair["summary"].items():
            verdict = "meets" if summary["passes"] else "fails"
            (st.success if summary["passes"] else st.warning)(
                f"{md(side)}: lowest ratio {summary['min_ratio']:.2f}: {verdict} the 80% rule"
            )
        st.dataframe(fair["frame"], hide_index=True, width="stretch")
    if pack.get("fairness_trend"):
        st.markdown("**Over time** (this version's live traffic, weekly; lowest ratio per "
                    "attribute, model health's *Fairness & segments* tab has the groups)")  # fmt: skip
        st.dataframe(pd.DataFrame(pack["fairness_trend"]), hide_index=True, width="stretch",
                     key="fairness_trend")  # fmt: skip
with tabs[6]:
    shadow = pack["shadow"]
    if not shadow.get("pairs"):
        st.info(md(shadow.get("note", "No shadow predictions.")))
    else:
        cols = st.columns(3)
        cols[0].metric("Requests answered by both", f"{shadow['pairs']:,}")
        if shadow["agreement"] is not None:
            cols[1].metric("Label agreement", f"{shadow['agreement']:.1%}")
        cols[2].metric("Mean |score difference|", f"{shadow['mean_abs_diff']:.4f}")
        hist = shadow["histogram"]
        fig = go.Figure(go.Bar(x=(hist["low"] + hist["high"]) / 2, y=hist["pairs"],
                               width=(hist["high"] - hist["low"])))  # fmt: skip
        fig.update_layout(
            title="Score difference: candidate - production, same requests",
            xaxis_title="score difference", yaxis_title="requests", height=320,
            margin={"l": 10, "r": 10, "t": 50, "b": 10},
        )  # fmt: skip
        st.plotly_chart(fig, width="stretch")
        st.dataframe(
            pd.DataFrame({"quantile": list(shadow["quantiles"]),
                          "difference": list(shadow["quantiles"].values())}),
            hide_index=True,
        )  # fmt: skip
with tabs[7]:
    _importance_section(_importance(model, version, data_version()))
    base = pack["baseline"]
    st.caption(
        f"Drift is measured against the version's reference data: {base['reference_rows']:,} rows."
    )
    if not base["numeric"].empty:
        st.dataframe(base["numeric"], hide_index=True, width="stretch")
    if not base["categorical"].empty:
        st.dataframe(base["categorical"], hide_index=True, width="stretch")
    if not base["latest_drift"].empty:
        st.markdown("**Latest stored drift verdicts of this version**")
        st.dataframe(base["latest_drift"], hide_index=True, width="stretch")
with tabs[8]:
    if status["state"] in (registry.SHADOW, registry.CANARY):
        gates = registry.promotion_gates(store, model, version, status["deployment"]["production"])
        for gate in gates:
            (st.success if gate.passed else st.error)(f"**{md(gate.name)}**: {md(gate.detail)}")
    else:
        st.info("Promotion gates apply when a shadow or canary version takes production.")
with tabs[9]:
    history = registry.lifecycle_history(store, model, version)
    history["evidence"] = history["evidence"].map(lambda e: json.dumps(json.loads(e or "{}")))
    st.dataframe(blank_missing(history), hide_index=True, width="stretch")
