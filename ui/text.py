"""Free text (versions, people, owners, model names, descriptions, KPIs, segments, alert
summaries) shown as text, never as Markdown.

Streamlit renders titles, captions, messages, tab / expander / page-link labels and metric
labels as Markdown: a version `[1.1](http://host/phish)` would become a link and
`![p](http://host/x.png)` would make every viewer's browser fetch that URL. Every value that
came from a spec, a CLI argument, a log or a person goes through `md()` before it is put into
such a string; tables (st.dataframe) and widget options show cell values as plain text.
"""

from __future__ import annotations

from lifecycle.markdown import escape as md

__all__ = ["md", "md_list"]


def md_list(values, sep: str = ", ") -> str:
    """Several free-text values joined (the separator is not escaped)."""
    return sep.join(md(v) for v in values)
