"""Model cards: carried by the spec or written later as audited revisions, required before
review and approval for the policy's risk tiers, rendered on version detail, in the review
pack and as Markdown/HTML, and driven from the command line."""

from __future__ import annotations

import json

import pytest

from lifecycle import catalog, cli, model_card, registry, review
from lifecycle.identity import ConfigError, PermissionDenied
from lifecycle.spec import SpecError
from lifecycle.store import Store
from tests.conftest import TOY_MODEL_CARD, write_toy_spec
from tests.test_registry import DANA, RITA, SAM, register_version

VIEWER_ROLES = frozenset({"viewer"})
CARD = {
    "intended_use": "Score toy requests.",
    "limitations": "Noise.",
    "training_data": "Synthetic rows.",
    "evaluation": "ROC AUC 0.8 on the reference.",
    "ethical_considerations": "No people are scored.",
    "owners": ["alice@example.com"],
}


def high_risk(store, folder, version="1.0", *, card: bool = False):
    spec = write_toy_spec(folder / version, version=version, card=card)
    spec.write_text(spec.read_text().replace('risk_tier = "low"', 'risk_tier = "high"'))
    catalog.register_from_file(store, spec)


def test_a_card_in_the_spec_is_revision_one_of_the_registered_version(store, tmp_path):
    catalog.register_from_file(store, write_toy_spec(tmp_path / "s", card=True))
    stored = model_card.current_card(store, "toy", "1.0")
    assert stored.revision == 1 and stored.written_by == "alice@example.com"
    assert stored.card["owners"] == ["alice@example.com"]
    assert stored.card["intended_use"] == "Scores toy requests for the test suite."
    assert model_card.missing_sections(stored.card) == []


def test_a_bad_card_is_refused_naming_each_key_and_nothing_is_stored(store, tmp_path):
    spec = write_toy_spec(tmp_path / "s")
    spec.write_text(
        spec.read_text()
        + '\n[model_card]\nintended_use = 3\nowners = [1]\nhazards = "x"\nlimitations = ""\n'
    )
    before = store.row_counts()
    with pytest.raises(SpecError) as err:
        catalog.register_from_file(store, spec)
    text = str(err.value)
    assert "`model_card.intended_use` must be a string, got int" in text
    assert "`model_card.owners` must be a string or a list of strings" in text
    assert "unknown key `model_card.hazards`" in text
    assert store.row_counts() == before


def test_high_risk_needs_a_complete_card_before_review_and_approval(store, tmp_path):
    high_risk(store, tmp_path)
    with pytest.raises(registry.RegistryError, match=r"toy 1\.0 has no model card"):
        registry.request_approval(store, DANA, "toy", "1.0")
    (option,) = [o for o in registry.available_actions(store, DANA, "toy", "1.0")
                 if o.action == "request_approval"]  # fmt: skip
    assert not option.allowed and "has no model card" in option.why
    # an incomplete card names what is missing
    partial = {k: v for k, v in CARD.items() if k != "ethical_considerations"}
    model_card.write_card(store, DANA, "toy", "1.0", partial, "first draft")
    with pytest.raises(registry.RegistryError, match="without ethical considerations"):
        registry.request_approval(store, DANA, "toy", "1.0")
    done = model_card.write_card(store, DANA, "toy", "1.0", CARD, "ethics reviewed")
    assert done["revision"] == 2
    registry.request_approval(store, DANA, "toy", "1.0")
    registry.approve(store, RITA, "toy", "1.0")
    assert registry.approve(store, SAM, "toy", "1.0").to_state == "approved"
    evidence = [
        json.loads(e)
        for (e,) in store.query_all(
            "SELECT evidence FROM audit_log WHERE action = 'approve' ORDER BY audit_id"
        )
    ]
    assert [e["model_card_revision"] for e in evidence] == [2, 2]


def test_low_risk_needs_no_card_unless_the_policy_says_so(store, tmp_path, monkeypatch):
    register_version(store, tmp_path, "1.0")  # low risk, no card
    registry.request_approval(store, DANA, "toy", "1.0")  # allowed by default
    config = tmp_path / "lifecycle.toml"
    config.write_text('[governance]\nmodel_card_required = ["low", "high"]\n')
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    assert model_card.required_tiers() == ("low", "high")
    with pytest.raises(registry.RegistryError, match="a low-risk version needs one"):
        registry.approve(store, RITA, "toy", "1.0")
    config.write_text("[governance]\nmodel_card_required = []\n")
    assert registry.approve(store, RITA, "toy", "1.0").to_state == "approved"
    config.write_text('[governance]\nmodel_card_required = ["extreme"]\n')
    with pytest.raises(ConfigError, match=r"governance\.model_card_required"):
        model_card.required_tiers()


def test_writing_a_card_is_checked_and_audited(store, tmp_path):
    register_version(store, tmp_path, "1.0")
    from lifecycle.identity import Actor

    with pytest.raises(PermissionDenied):
        model_card.write_card(store, Actor("vic@example.com", VIEWER_ROLES), "toy", "1.0",
                              CARD, "x")  # fmt: skip
    with pytest.raises(model_card.ModelCardError, match="needs a reason"):
        model_card.write_card(store, DANA, "toy", "1.0", CARD, " ")
    with pytest.raises(model_card.ModelCardError, match="not a registered version"):
        model_card.write_card(store, DANA, "toy", "9.9", CARD, "x")
    with pytest.raises(model_card.ModelCardError, match="unknown key"):
        model_card.write_card(store, DANA, "toy", "1.0", {"hazards": "x"}, "x")
    model_card.write_card(store, DANA, "toy", "1.0", CARD, "first")
    before = store.row_counts()
    with pytest.raises(model_card.ModelCardError, match="already says this"):
        model_card.write_card(store, DANA, "toy", "1.0", CARD, "again")
    assert store.row_counts() == before
    row = store.query_one(
        "SELECT actor, reason, evidence FROM audit_log WHERE action = 'model_card_written'"
    )
    assert row[:2] == ("dana@example.com", "first")
    assert json.loads(row[2])["revision"] == 1


def test_markdown_and_html_escape_what_people_wrote(store, tmp_path):
    register_version(store, tmp_path, "1.0")
    hostile = {**CARD, "limitations": "<script>alert(1)</script> **not bold** [x](javascript:1)"}
    model_card.write_card(store, DANA, "toy", "1.0", hostile, "test")
    stored = model_card.current_card(store, "toy", "1.0")
    page = model_card.to_html(stored, description="<b>desc</b>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;desc" in page
    text = model_card.to_markdown(stored)
    assert "# Model card: toy 1.0" in text and "## Ethical considerations" in text
    assert "\\*\\*not bold\\*\\*" in text
    assert "## Out-of-scope uses\n\n_Not given._" in text


def test_review_pack_carries_the_card_and_the_policy(store, tmp_path):
    high_risk(store, tmp_path, card=True)
    pack = review.review_pack(store, "toy", "1.0", with_gates=False)
    assert pack["model_card_required"] is True
    assert pack["model_card"]["revision"] == 1 and pack["model_card"]["missing"] == []


def test_cli_writes_prints_and_exports_a_card(toy_db_file, tmp_path, capsys):
    card_file = tmp_path / "card.toml"
    card_file.write_text(TOY_MODEL_CARD)
    db = str(toy_db_file)
    base = ["registry", "card", "--db", db, "toy", "1.0"]
    assert cli.main(base) == 2
    assert "has no model card" in capsys.readouterr().err
    assert cli.main([*base, "--file", str(card_file)]) == 2  # no reason
    assert "needs --reason" in capsys.readouterr().err
    argv = [*base, "--file", str(card_file), "--reason", "first card", "--actor",
            "developer@localhost"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "model card revision 1 written" in capsys.readouterr().out
    assert cli.main(base) == 0
    assert "## Intended use\n\nScores toy requests" in capsys.readouterr().out
    out = tmp_path / "card.html"
    assert cli.main([*base, "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    bad = tmp_path / "bad.toml"
    bad.write_text('[model_card]\nintended_use = ["a"]\n')
    assert cli.main([*base, "--file", str(bad), "--reason", "x"]) == 2
    assert "`model_card.intended_use` must be a string" in capsys.readouterr().err


def test_version_page_shows_the_card_and_writes_a_revision(tmp_path, monkeypatch):
    from tests.test_pages_registry import version_page_as_dana

    path = tmp_path / "cards.duckdb"
    with Store(path) as store:
        high_risk(store, tmp_path)
    at = version_page_as_dana(path, tmp_path, monkeypatch, "toy", "1.0")
    assert any("has no model card" in w.value and "needs one" in w.value for w in at.warning)
    blocked = " ".join(c.value for c in at.caption)
    assert "Blocked: toy 1.0 has no model card" in blocked
    for key, value in CARD.items():
        widget = at.text_input if key in model_card.LISTS else at.text_area
        widget(key=f"card_{key}").set_value(", ".join(value) if isinstance(value, list) else value)
    at.text_input(key="card_reason").set_value("written for the committee")
    at.button[[b.proto.form_id for b in at.button].index("card_form")].click().run()
    assert not at.exception
    assert any("Model card revision 1 saved" in s.value for s in at.success)
    shown = " ".join(m.value for m in at.markdown)
    assert "No people are scored." in shown and "alice@example.com" in shown
    assert not [c for c in at.caption if "Blocked: toy 1.0 has no model card" in c.value]
    assert len(at.get("download_button")) == 2
