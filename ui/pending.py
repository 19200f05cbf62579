"""A confirmation dialog's pending action, bound to exactly what it was opened for.

Version detail keeps the action a person clicked in session state until they confirm or
dismiss its dialog. The record names the model, version, action and the revisions of the
version row and the model's deployment pointer the page showed: the dialog is drawn only while
the page still shows that model and version, and a confirm for anything else is refused with
a message that names what the dialog was for (never "changed since you loaded it" about a
version the person did not load).
"""

from __future__ import annotations

from dataclasses import dataclass

from ui.text import md


@dataclass(frozen=True)
class PendingAction:
    model: str
    version: str
    action: str
    label: str
    state: str  # the version's state when the dialog was opened
    revision: int  # the version row's revision (compare-and-swap in the library)
    pointer_revision: int | None  # the model's deployment pointer row's revision
    needs_reason: bool
    override: bool = False

    @classmethod
    def opened_on(cls, status: dict, action: str, label: str, **flags) -> PendingAction:
        """The pending action for `status` (registry.version_status) as the page shows it."""
        return cls(
            model=status["model"],
            version=status["version"],
            action=action,
            label=label,
            state=status["state"],
            revision=status["revision"],
            pointer_revision=status["deployment"]["revision"],
            **flags,
        )

    def is_for(self, model: str, version: str) -> bool:
        return (self.model, self.version) == (model, version)

    @property
    def target(self) -> str:
        return f"{self.model} {self.version}"


def refusal(pending: PendingAction, model: str, version: str, status: dict) -> str | None:
    """Why confirming `pending` must do nothing while the page shows `model` `version` whose
    current registry status is `status`; None when the dialog still matches. The version's own
    revision is checked again by the library inside the transaction."""
    if not pending.is_for(model, version):
        return (
            f"This dialog was for {md(pending.target)} ({md(pending.label)}), but the page now "
            f"shows {md(model)} {md(version)}; nothing was done."
        )
    deployment = status["deployment"]
    if deployment["revision"] != pending.pointer_revision:
        canary = deployment["canary"] or "none"
        return (
            f"The deployment of {md(model)} changed after this dialog was opened (production "
            f"now {md(deployment['production'] or 'none')}, canary {md(canary)}); nothing was "
            f"done to {md(pending.target)}: look again and decide."
        )
    return None
