"""Bit-exact NumPy golden model: formats, quantizers and integer kernels.

Depends on numpy only. ``hw``, ``quant``, ``sim`` and ``reports`` derive
their numbers from here.
"""

from .formats import FORMATS, Format, FormatError, acc_width_for, dint4_variant, get
from .kernels import (
    accumulate,
    accumulate_reference,
    check_acc_width,
    linear_int8,
    output_multiplier,
    requant_constants,
    requantize,
)
from .quantize import compute_scale, dequantize, quantize, quantize_activations, quantize_tensor

__all__ = [
    "FORMATS",
    "Format",
    "FormatError",
    "acc_width_for",
    "accumulate",
    "accumulate_reference",
    "check_acc_width",
    "compute_scale",
    "dequantize",
    "dint4_variant",
    "get",
    "linear_int8",
    "output_multiplier",
    "quantize",
    "quantize_activations",
    "quantize_tensor",
    "requant_constants",
    "requantize",
]
