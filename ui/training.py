"""The training run on Version detail's Metadata tab: run id, experiment, artifact URI, git
commit, dataset digests, tags, MLflow UI links and every other stored [training] key."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lifecycle import training_run
from ui.common import get_store
from ui.text import md


@st.cache_data(show_spinner=False, ttl=300)
def _training(model: str, version: str, data: int) -> dict:
    return training_run.training_run(get_store(), model, version)


def show_training_run(model: str, version: str, data: int) -> None:
    """Render the version's training run; `data` is the page's data version (cache key)."""
    info = _training(model, version, data)
    run, record = info["run"], info["mlflow"]
    st.markdown("**Training run**")
    if not run and not record and not info["other"]:
        st.caption("No training run recorded: the spec's [training] table names none "
                   "(mlflow_run_id, artifact_uri, git_commit, ...).")  # fmt: skip
        return
    facts = []  # escaped text, never code spans (an escape shows literally inside one)
    if run.get("mlflow_run_id"):
        facts.append(f"**run id:** {md(run['mlflow_run_id'])}")
    if run.get("experiment_name") or run.get("experiment_id"):
        facts.append(f"**experiment:** {md(run.get('experiment_name', ''))} "
                     f"(id {md(run.get('experiment_id', '?'))})")  # fmt: skip
    if run.get("git_commit"):
        facts.append(f"**git commit:** {md(run['git_commit'])}")
    if record.get("registered_model"):
        facts.append(f"**imported from MLflow model** {md(record['registered_model'])} version "
                     f"{md(record.get('version', '?'))}")  # fmt: skip
    if facts:
        st.markdown(" · ".join(facts))
    if run.get("artifact_uri"):
        st.markdown(f"**Artifact URI (model source):** {md(run['artifact_uri'])}")
    for label, url in info["links"].items():
        st.link_button(label, url)
    if record and not info["links"]:
        st.caption(f"Set ${training_run.UI_URL_ENV} to the MLflow UI's base URL for links.")
    for key, label in (("version_description", "Version description"),
                       ("model_description", "Registered-model description")):  # fmt: skip
        if record.get(key):
            st.markdown(f"**{label}:** {md(record[key])}")
    if info["datasets"]:
        st.markdown("**Dataset inputs** (digests; the training ones make the fingerprint)")
        frame = pd.DataFrame(info["datasets"])
        st.dataframe(frame.astype(str), hide_index=True, width="stretch")
    if info["tags"]:
        st.markdown("**Run tags**")
        tags = pd.DataFrame({"tag": list(info["tags"]), "value": list(info["tags"].values())})
        st.dataframe(tags.astype(str), hide_index=True, width="stretch")
    if info["other"]:
        st.markdown("**Other training metadata** (stored [training] keys)")
        other = pd.DataFrame({"key": list(info["other"]),
                              "value": [_text(v) for v in info["other"].values()]})  # fmt: skip
        st.dataframe(other, hide_index=True, width="stretch")


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
