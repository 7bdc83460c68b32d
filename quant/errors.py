"""quant's one exception type for bad input (standard library only: no torch)."""

from __future__ import annotations


class QuantError(ValueError):
    """Bad input to quant (model, text, recipe, calibration, scaling): the message is one line
    that says what was wrong and what to do. ``python -m quant`` prints it as
    ``error: <message>`` and exits with status 2.

    Subclasses name the area: ``quant.checkpoint.ModelError``, ``quant.text.TextError``,
    ``quant.calibrate.CalibrationError``, ``quant.scaling.ScalingError``. A bad format name
    comes from golden's registry as ``golden.FormatError``; a missing tool or Debian file
    as ``tools.ToolError``.
    """
