"""Model cards: what a version is for, where it fails, what it was trained and evaluated on.

A card has the sections of Mitchell et al.'s "Model Cards for Model Reporting" that a
reviewer needs before approving a version (SECTIONS). It comes with the version's spec
(`[model_card]` table, stored as revision 1 when the version is registered) or is written
later (`python -m lifecycle registry card`, the version page): every write is a new revision
in `model_cards` with its audit row, so the card a reviewer approved stays readable.

Policy: versions of the risk tiers in `[governance] model_card_required` (lifecycle.toml;
default ["high"]) cannot be sent for review or approved without a card that fills every
required section (REQUIRED).
"""

from __future__ import annotations

import html
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifecycle.audit import append_audit
from lifecycle.identity import Actor, require
from lifecycle.markdown import escape as md_escape

# key -> heading, in the order a card reads
SECTIONS = {
    "intended_use": "Intended use",
    "out_of_scope": "Out-of-scope uses",
    "limitations": "Limitations",
    "training_data": "Training data",
    "evaluation": "Evaluation",
    "ethical_considerations": "Ethical considerations",
    "owners": "Owners",
    "contacts": "Contacts",
}
LISTS = ("owners", "contacts")  # a string or a list of strings
REQUIRED = ("intended_use", "limitations", "training_data", "evaluation",
            "ethical_considerations", "owners")  # fmt: skip
DEFAULT_REQUIRED_TIERS = ("high",)
MAX_CHARS = 20_000  # per section: a card is read by people, not a data dump


class ModelCardError(ValueError):
    """A card that cannot be stored, or a version whose card the policy requires."""


def parse_card(raw: Any, where: str = "model_card") -> tuple[dict[str, Any], list[str]]:
    """Validate a card table; (card, problems), each problem naming its key."""
    if not isinstance(raw, Mapping):
        return {}, [f"`{where}` must be a table"]
    problems = [
        f"unknown key `{where}.{key}` (known keys: {', '.join(SECTIONS)})"
        for key in sorted(set(raw) - set(SECTIONS))
    ]
    card: dict[str, Any] = {}
    for key in SECTIONS:
        if key not in raw:
            continue
        value = raw[key]
        if key in LISTS and isinstance(value, str):
            value = [value]
        if key in LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"`{where}.{key}` must be a string or a list of strings")
                continue
            value = [v.strip() for v in value if v.strip()]
        elif not isinstance(value, str):
            problems.append(f"`{where}.{key}` must be a string, got {type(value).__name__}")
            continue
        else:
            value = value.strip()
        if len(json.dumps(value)) > MAX_CHARS:
            problems.append(f"`{where}.{key}` is longer than {MAX_CHARS:,} characters")
            continue
        if value:
            card[key] = value
    return card, problems


def load_card_file(path: str | Path) -> dict[str, Any]:
    """A card from a TOML file: a `[model_card]` table, or the sections at the top level."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelCardError(f"model card {path} cannot be read: {exc}") from exc
    table = raw.get("model_card", raw)
    card, problems = parse_card(table, "model_card" if "model_card" in raw else path.name)
    if problems:
        raise ModelCardError(f"model card {path} is not valid:\n- " + "\n- ".join(problems))
    if not card:
        raise ModelCardError(f"model card {path} fills no section ({', '.join(SECTIONS)})")
    return card


def missing_sections(card: Mapping | None) -> list[str]:
    return [key for key in REQUIRED if not (card or {}).get(key)]


# -- storage ---------------------------------------------------------------------------------------


@dataclass
class StoredCard:
    model: str
    version: str
    revision: int
    card: dict[str, Any]
    written_by: str
    written_at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "missing": missing_sections(self.card)}


def insert_card(cur, model: str, version: str, card: dict, author: str, reason: str) -> int:
    """Append a revision of the version's card in the caller's transaction; its number."""
    revision = cur.execute(
        "SELECT coalesce(max(revision), 0) + 1 FROM model_cards "
        "WHERE model_name = ? AND version = ?",
        [model, version],
    ).fetchall()[0][0]
    cur.execute(
        "INSERT INTO model_cards VALUES (?, ?, ?, ?, ?, ?, ?)",
        [model, version, revision, json.dumps(card), author, datetime.now(UTC), reason],
    )
    return int(revision)


def write_card(store, actor: Actor, model: str, version: str, card: dict, reason: str) -> dict:
    """A new revision of a registered version's card (permission `register`), audited."""
    require(actor, "register")
    card, problems = parse_card(card)
    if problems:
        raise ModelCardError("the model card is not valid: " + "; ".join(problems))
    if not card:
        raise ModelCardError(f"the model card fills no section ({', '.join(SECTIONS)})")
    if not reason or not reason.strip():
        raise ModelCardError("writing a model card needs a reason (what changed)")
    with store.write_lock(), store.transaction() as cur:
        known = cur.execute(
            "SELECT count(*) FROM model_versions WHERE model_name = ? AND version = ?",
            [model, version],
        ).fetchall()[0][0]
        if not known:
            raise ModelCardError(f"{model} {version} is not a registered version")
        current = latest(cur, model, version)
        if current is not None and current.card == card:
            raise ModelCardError(
                f"{model} {version}'s card revision {current.revision} already says this; "
                "nothing was written"
            )
        revision = insert_card(cur, model, version, card, actor.name, reason.strip())
        audit_id = append_audit(
            cur,
            actor=actor.name,
            action="model_card_written",
            model_name=model,
            version=version,
            reason=reason.strip(),
            evidence={"revision": revision, "sections": sorted(card)},
        )
    return {"model": model, "version": version, "revision": revision, "audit_id": audit_id}


def current_card(store, model: str, version: str) -> StoredCard | None:
    """The newest revision of the version's card, None when it has none."""
    with store.cursor() as cur:
        return latest(cur, model, version)


def latest(cur, model: str, version: str) -> StoredCard | None:
    """The newest revision, read in the caller's cursor (or transaction)."""
    rows = cur.execute(
        "SELECT revision, card, written_by, written_at, reason FROM model_cards "
        "WHERE model_name = ? AND version = ? ORDER BY revision DESC LIMIT 1",
        [model, version],
    ).fetchall()
    if not rows:
        return None
    revision, card, by, at, reason = rows[0]
    return StoredCard(model, version, int(revision), json.loads(card), by, at, reason)


# -- policy ----------------------------------------------------------------------------------------


def required_tiers(path: str | os.PathLike | None = None) -> tuple[str, ...]:
    """Risk tiers whose versions need a card: `[governance] model_card_required` of the
    config file (lifecycle.identity.config_path), else DEFAULT_REQUIRED_TIERS."""
    from lifecycle.identity import ConfigError, config_table
    from lifecycle.spec import RISK_TIERS

    table, target = config_table("governance", path)
    tiers = table.get("model_card_required", list(DEFAULT_REQUIRED_TIERS))
    if not isinstance(tiers, list) or not all(t in RISK_TIERS for t in tiers):
        raise ConfigError(
            f"config {target}: governance.model_card_required must be a list of risk tiers "
            f"({', '.join(RISK_TIERS)}), got {tiers!r}"
        )
    return tuple(tiers)


def card_problem(cur, model: str, version: str, risk_tier: str) -> str | None:
    """Why the policy refuses the version a review (None when it may have one)."""
    if risk_tier not in required_tiers():
        return None
    stored = latest(cur, model, version)
    missing = missing_sections(stored.card if stored else None)
    if not missing:
        return None
    what = "has no model card" if stored is None else (
        f"has a model card (revision {stored.revision}) without "
        + ", ".join(SECTIONS[m].lower() for m in missing))  # fmt: skip
    return (
        f"{model} {version} {what}; a {risk_tier}-risk version needs one before review "
        f"(sections: {', '.join(SECTIONS[k].lower() for k in REQUIRED)}). Write it with "
        "`python -m lifecycle registry card` or on the version page "
        "([governance] model_card_required, docs/governance.md)"
    )


# -- rendering -------------------------------------------------------------------------------------


def _section_text(key: str, value) -> str:
    return ", ".join(value) if key in LISTS else value


def to_markdown(stored: StoredCard, *, description: str | None = None) -> str:
    out = [f"# Model card: {md_escape(stored.model)} {md_escape(stored.version)}", ""]
    if description:
        out += [md_escape(description), ""]
    out += [
        f"Revision {stored.revision}, written by {md_escape(stored.written_by)} on "
        f"{stored.written_at:%Y-%m-%d %H:%M} UTC ({md_escape(stored.reason)}).",
    ]
    for key, heading in SECTIONS.items():
        value = stored.card.get(key)
        out += ["", f"## {heading}", ""]
        out.append(md_escape(_section_text(key, value)) if value else "_Not given._")
    return "\n".join(out) + "\n"


def to_html(stored: StoredCard, *, description: str | None = None) -> str:
    """One self-contained HTML page (inline CSS, no external resources)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Model card: {e(stored.model)} {e(stored.version)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:860px;margin:2rem auto;"
        "padding:0 1rem;color:#1f2328}h2{border-bottom:1px solid #d0d7de}"
        ".muted{color:#57606a}p{white-space:pre-wrap}</style></head><body>",
        f"<h1>Model card: {e(stored.model)} {e(stored.version)}</h1>",
    ]
    if description:
        parts.append(f"<p>{e(description)}</p>")
    parts.append(
        f"<p class='muted'>Revision {stored.revision}, written by {e(stored.written_by)} on "
        f"{stored.written_at:%Y-%m-%d %H:%M} UTC ({e(stored.reason)}).</p>"
    )
    for key, heading in SECTIONS.items():
        value = stored.card.get(key)
        body = e(_section_text(key, value)) if value else "<i>Not given.</i>"
        parts.append(f"<h2>{e(heading)}</h2><p>{body}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
