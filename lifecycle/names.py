"""Vocabularies shared by the library and the command line, free of heavy imports.

The command line offers these as choices; `python -m lifecycle --help` reads them without
loading pandas, scipy or the drift engine (see lifecycle.commands).
"""

KINDS = ("predictions", "features", "labels", "business", "infra")  # log kinds ingest accepts
GRAINS = ("hour", "day", "week")  # monitoring window sizes
REFERENCE_KINDS = ("spec", "baseline", "previous")  # what a window is compared with
