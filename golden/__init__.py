"""Bit-exact NumPy golden model: formats, quantizers, integer kernels and the tile schedule.

Depends on numpy only. ``hw``, ``quant``, ``sim`` and ``reports`` derive
their numbers from here.
"""

from . import hadamard, layerfile
from .bits import signed_width
from .contract import (
    MAC_UPDATE,
    acc_range,
    acc_width_for,
    check_acc_width,
    mac_next,
    mac_trace,
    max_k_for_width,
    min_acc_width,
    product_range,
    product_width,
)
from .formats import FORMATS, Format, FormatError, dint4_variant, get
from .kernels import (
    accumulate,
    accumulate_path,
    accumulate_reference,
    linear_int8,
    output_multiplier,
    requant_constants,
    requantize,
)
from .quantize import (
    ZERO_SLICE_SCALE,
    compute_scale,
    dequantize,
    quantize,
    quantize_activations,
    quantize_tensor,
)
from .schedule import Job, Phase, Schedule, TileGeometry, schedule
from .tilemodel import run_model

__all__ = [
    "FORMATS",
    "MAC_UPDATE",
    "ZERO_SLICE_SCALE",
    "Format",
    "FormatError",
    "Job",
    "Phase",
    "Schedule",
    "TileGeometry",
    "acc_range",
    "acc_width_for",
    "accumulate",
    "accumulate_path",
    "accumulate_reference",
    "check_acc_width",
    "compute_scale",
    "dequantize",
    "dint4_variant",
    "get",
    "hadamard",
    "layerfile",
    "linear_int8",
    "mac_next",
    "mac_trace",
    "max_k_for_width",
    "min_acc_width",
    "output_multiplier",
    "product_range",
    "product_width",
    "quantize",
    "quantize_activations",
    "quantize_tensor",
    "requant_constants",
    "requantize",
    "run_model",
    "schedule",
    "signed_width",
]
