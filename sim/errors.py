"""The one exception type of ``sim``'s library errors.

Bad input to ``sim`` (a missing data directory, a selection that matches nothing, a design
too big to simulate, a sidecar that lacks what a testbench needs, a failed build) raises
:class:`SimError` with one line saying what was wrong and what to do; ``python -m sim``
prints that line as ``error: ...`` and exits with status 2.
"""

from __future__ import annotations


class SimError(ValueError):
    """A ``sim`` input or step is not usable; the message says why and what to do."""
