"""Free text as Markdown that renders exactly as the text: `escape(value)`.

Versions, people, owners, model names, descriptions, KPI names, segments and alert summaries
come from specs, CLI arguments, logs and people. Put into Markdown unescaped, a version
`[1.1](http://host/phish)` becomes a link and `![p](http://host/x.png)` makes every reader's
browser fetch that URL. The app's pages (ui/text.py) and the weekly report's Markdown export
escape every such value with this one function.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation. Escaped: what opens inline Markdown
# anywhere in a line (emphasis, code, links and images, autolinks <..>, strikethrough, LaTeX,
# entities, table cells); a colon that is not followed by a space (Streamlit's :material/..:
# icons, :color[..] directives, emoji shortcodes); and what opens a block at the start
# (headings, quotes, lists). Mid-line "#", ".", "-", ">", "(", and ": " stay as typed, so
# ordinary sentences ("Alert #5: 1.0 -> 1.1 (approved)") read the same in the Markdown source.
_INLINE = re.compile(
    r"[\\`*\[\]<~$&|]"  # always
    r"|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"  # an underscore inside a word (credit_risk) is inert
    r"|:(?=\S)"
)
_BLOCK_START = re.compile(r"^(\s*)(>|(?:#{1,6}|[+-]|\d{1,9}[.)])(?=\s|$))")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
# GFM turns bare http://, https:// and www. into links after escapes are resolved (a text-level
# transform), so a backslash cannot stop it: an invisible word joiner splits the pattern.
_AUTOLINK = re.compile(r"(?i)(https?)(?=\\?:)|(www)(?=\.)")
WORD_JOINER = "\u2060"


def _escape(text: str) -> str:
    """A backslash before the last character of `text`."""
    return text[:-1] + "\\" + text[-1]


def escape(value: object) -> str:
    """`value` as Markdown that renders exactly as its text, on one line."""
    text = "—" if value is None else str(value)
    text = _INLINE.sub(lambda m: _escape(m.group(0)), _LINE_BREAKS.sub(" ", text))
    text = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, text)
    return _BLOCK_START.sub(lambda m: m.group(1) + _escape(m.group(2)), text)
