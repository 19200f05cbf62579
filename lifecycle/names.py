"""Vocabularies shared by the library and the command line, free of heavy imports.

The command line offers these as choices; `python -m lifecycle --help` reads them without
loading pandas, scipy or the drift engine (see lifecycle.commands).
"""

KINDS = ("predictions", "features", "labels", "business", "infra")  # log kinds ingest accepts
GRAINS = ("hour", "day", "week", "month")  # calendar window sizes, smallest first
REFERENCE_KINDS = ("spec", "baseline", "previous")  # what a window is compared with
CHUNK_PREFIX = "chunk:"  # chunk:N = windows of N consecutive predictions
MAX_CHUNK_ROWS = 10_000_000


def chunk_size(grain: str) -> int | None:
    """Rows per chunk of a chunk grain; None for a calendar grain."""
    if not isinstance(grain, str) or not grain.startswith(CHUNK_PREFIX):
        return None
    text = grain[len(CHUNK_PREFIX) :]
    return int(text) if text.isdigit() else None


def check_grain(grain: str) -> str:
    """`grain` if it is a calendar grain or a valid `chunk:N`; ValueError naming it if not."""
    if grain in GRAINS:
        return grain
    rows = chunk_size(grain)
    if rows is not None and 2 <= rows <= MAX_CHUNK_ROWS:
        return grain
    raise ValueError(
        f"unknown grain {grain!r}; use one of {', '.join(GRAINS)} or chunk:N "
        f"(N consecutive predictions, 2 <= N <= {MAX_CHUNK_ROWS:,})"
    )
