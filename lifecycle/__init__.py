"""Model lifecycle library: logs, monitoring, drift, registry and alerts. Imports no streamlit."""

__version__ = "0.1.0"
