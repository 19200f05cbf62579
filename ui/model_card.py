"""Version detail's "Model card" tab: the card a reviewer reads, its exports, and a form
that writes a new revision (lifecycle.model_card) for people who may register versions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lifecycle import model_card as cards
from lifecycle.identity import Actor, PermissionDenied
from ui.text import md

FLASH = "_model_card_flash"


def card_tab(store, actor: Actor, model: str, version: str, pack: dict) -> None:
    """The card (or why there is none), downloads, and the editor."""
    if flash := st.session_state.pop(FLASH, None):
        (st.success if flash[0] == "ok" else st.error)(flash[1])
    info = pack.get("model_card")
    required = pack.get("model_card_required")
    if info is None:
        text = f"{md(model)} {md(version)} has no model card."
        if required:
            st.warning(f"{text} Its risk tier ({md(pack['metadata']['risk_tier'])}) needs one "
                       "before it can be sent for review or approved.",
                       icon=":material/assignment_late:")  # fmt: skip
        else:
            st.info(text + " Not required for its risk tier; reviewers still benefit from one.")
    else:
        _show(cards.StoredCard(**{k: v for k, v in info.items() if k != "missing"}), required,
              info["missing"], pack["metadata"].get("description"))  # fmt: skip
    if actor.can("register"):
        _editor(store, actor, model, version, info["card"] if info else {})


def _show(stored: cards.StoredCard, required: bool, missing: list[str], description) -> None:
    st.caption(
        f"Revision {stored.revision}, written by {md(stored.written_by)} on "
        f"{pd.Timestamp(stored.written_at):%Y-%m-%d %H:%M} UTC ({md(stored.reason)})."
    )
    if missing:
        names = ", ".join(cards.SECTIONS[m].lower() for m in missing)
        (st.warning if required else st.info)(
            f"Sections not filled: {names}"
            + (" - required before review for this risk tier." if required else ".")
        )
    for key, heading in cards.SECTIONS.items():
        value = stored.card.get(key)
        st.markdown(f"**{heading}**")
        if not value:
            st.caption("Not given.")
        elif key in cards.LISTS:
            st.markdown(md(", ".join(value)))
        else:
            st.markdown(md(value))
    name = f"model-card-{stored.model}-{stored.version}"
    cols = st.columns([1, 1, 4])
    cols[0].download_button("Card as Markdown", cards.to_markdown(stored, description=description),
                            f"{name}.md", "text/markdown", key="card_md",
                            icon=":material/download:")  # fmt: skip
    cols[1].download_button("Card as HTML", cards.to_html(stored, description=description),
                            f"{name}.html", "text/html", key="card_html",
                            icon=":material/download:")  # fmt: skip


def _editor(store, actor: Actor, model: str, version: str, card: dict) -> None:
    with st.expander("Write a new revision of the card"), st.form("card_form"):
        values = {}
        for key, heading in cards.SECTIONS.items():
            current = card.get(key, [] if key in cards.LISTS else "")
            if key in cards.LISTS:
                text = st.text_input(f"{heading} (comma-separated)", ", ".join(current),
                                     key=f"card_{key}")  # fmt: skip
                values[key] = [v.strip() for v in text.split(",") if v.strip()]
            else:
                values[key] = st.text_area(heading, current, key=f"card_{key}", height=90)
        reason = st.text_input("Reason (what changed)", key="card_reason")
        if st.form_submit_button("Save as a new revision"):
            try:
                done = cards.write_card(store, actor, model, version, values, reason)
            except (cards.ModelCardError, PermissionDenied) as exc:
                st.session_state[FLASH] = ("error", f"Not saved: {md(exc)}")
            else:
                st.session_state[FLASH] = (
                    "ok", f"Model card revision {done['revision']} saved (audit "
                    f"{done['audit_id']}).",
                )  # fmt: skip
            st.cache_data.clear()
            st.rerun()
