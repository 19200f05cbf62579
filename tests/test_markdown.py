"""Free text as Markdown that renders as its text (lifecycle.markdown.escape), in the pages'
helper and the weekly report's Markdown export."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from lifecycle.alerts import report
from lifecycle.markdown import WORD_JOINER, escape
from lifecycle.store import Store
from tests.hostile import HOST, HOSTILE, hostile_database

# what would open a link, an image, an autolink, a directive or emphasis if left unescaped
ACTIVE = re.compile(r"(?<!\\)\[|(?<!\\)<|(?<!\\)`|(?<!\\)\*|(?<!\\)~|(?<!\\)\$|(?<!\\):(?=\S)")
AUTOLINK = re.compile(r"(?i)https?://|www\.")  # GFM links these in the text after unescaping


def unescape(text: str) -> str:
    """What a Markdown renderer shows, minus the invisible word joiners."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text).replace(WORD_JOINER, "")


@pytest.mark.parametrize(
    "text",
    [
        *HOSTILE.values(),
        "<http://evil.test/a>", "https://evil.test", "WWW.evil.test", ":material/home: :+1:",
        "$x^2$", "`code`", "**bold** _it_ ~~gone~~", "a | b", "&lt;b&gt;", "back\\slash",
    ],
)  # fmt: skip
def test_escaped_text_has_no_active_markdown_and_reads_back_unchanged(text):
    escaped = escape(text)
    assert not ACTIVE.search(escaped), escaped
    assert not AUTOLINK.search(escaped.replace("\\", "")), escaped
    assert unescape(escaped) == text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("# title", "\\# title"), ("1. first", "1\\. first"), ("- item", "\\- item"),
     ("> quote", "\\> quote"), ("line one\nline two", "line one line two")],
)  # fmt: skip
def test_block_markup_at_the_start_and_line_breaks_are_neutralised(text, escaped):
    assert escape(text) == escaped


def test_ordinary_sentences_read_the_same_in_the_source():
    for text in ("Alert #5: 1.0 -> 1.1 (approved)", "credit_risk", "rita@example.com",
                 "Blocked: monitoring: 1 significant finding"):  # fmt: skip
        assert escape(text) == text
    assert escape(None) == "—"


def test_weekly_markdown_export_escapes_every_free_text(tmp_path):
    path = hostile_database(tmp_path)
    with Store(path) as store:
        review = report.weekly_review(store, report.week_of(datetime.now(UTC)))
    text = report.to_markdown(review)
    hostile = [line for line in text.splitlines() if HOST in line]
    assert hostile  # the registration decision names the hostile version and registrant
    for line in hostile:
        assert unescape(escape(HOSTILE["version"])) in unescape(line)
        assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(http", line), line
