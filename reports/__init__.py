"""Synthesis reports: Yosys/nextpnr flows, area/delay/efficiency tables, plots, baselines.

``python -m reports`` builds the full report under ``build/reports/``; see ``reports/README.md``.
"""

from .errors import ReportError

__all__ = ["ReportError"]
