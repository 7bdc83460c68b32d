"""The one exception type of the reports library (tools failures are ``tools.ToolError``)."""

from __future__ import annotations


class ReportError(ValueError):
    """A report input (level, size, target, record) is not usable; the message says what to do."""
