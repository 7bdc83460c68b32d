"""PyTorch quantization front-end: W4A8 with RTN, SmoothQuant, AQAS, SLAC and GPTQ.

Modules: ``models`` (loading), ``text`` (Austen / text files), ``qlinear`` (torch
quantizers from the golden formats and scale rule, ``QuantLinear``), ``calibrate``
(statistics, SLAC), ``scaling`` (SmoothQuant, AQAS, folding), ``gptq``, ``pipeline``
(``quantize_model``), ``evaluate`` (perplexity, fake or integer mode), ``export`` (layer
tiles in ``golden.layerfile``'s format), ``outputs`` (JSON / PNG rendering),
``experiments`` and ``__main__`` (CLI). Depends on ``golden`` and ``tools``, never on ``hw``.
"""
