"""PyTorch quantization front-end: W4A8 with RTN, SmoothQuant, AQAS, SLAC and GPTQ.

Modules: ``checkpoint`` (find a model, read its architecture from the GGUF / config.json
header without loading tensors), ``models`` (loading), ``text`` (Austen / text files),
``qlinear`` (torch quantizers from the golden formats and scale rule, ``QuantLinear``),
``calibrate`` (statistics, SLAC), ``scaling`` (SmoothQuant, AQAS, folding), ``gptq``,
``outliers`` (static ranges without outlier tokens, bypassed rows),
``pipeline`` (``quantize_model``), ``evaluate`` (perplexity, fake or integer mode), ``export``
(layer tiles in ``golden.layerfile``'s format), ``outputs`` (JSON / PNG rendering),
``experiments``, ``cli`` (argument parser) and ``__main__`` (CLI). Bad input raises
:class:`QuantError` (``errors``). Depends on ``golden`` and ``tools``, never on ``hw``.

Importing the package itself needs no torch (``python -m quant`` checks for it first).
"""

from .errors import QuantError

__all__ = ["QuantError"]
