"""The configurations ``python -m sim`` runs by default, and the layer data files it finds.

Accumulators are sized for ``K_MAX`` products (``golden.acc_width_for``) except where a
configuration says otherwise; the systolic array's accumulator carries a whole layer's sum
through the ``psum`` chain, so it is sized for the layer's K, not for one tile's rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import golden

from .runner import SimConfig

#: Largest K the MAC, dot-product and systolic configurations are sized for: above the
#: K of every SmolLM2-135M linear layer (576 and 1536) and of typical 7B layers (4096).
K_MAX = 4096

#: Where the quantization front-end commits real layer tiles (``quant`` writes them).
DATA_DIR = Path(__file__).resolve().parent / "data"

#: Slice of a layer file that is run: its first tokens x all K x its first outputs (a whole
#: committed tile is usually smaller than this; a full layer export is not).
LAYER_TOKENS, LAYER_OUTPUTS = 64, 64

STYLES = ("mul", "shiftadd")


def mac_configs() -> list[SimConfig]:
    out = []
    for name in golden.FORMATS:
        for style in STYLES:
            out.append(
                SimConfig(
                    f"mac-{name}-{style}",
                    "sim.tb_mac",
                    {"dut": dict(design="mac", weight_format=name, k_max=K_MAX, style=style)},
                    macs_hint=256 << golden.get(name).bits,
                )
            )
    return out


def dot_configs() -> list[SimConfig]:
    spec = [
        ("dint4", 16, False, None),
        ("dint4", 16, True, None),
        ("int8", 8, False, None),
        ("int4", 8, True, None),
        ("fp4_e2m1", 4, False, None),
        ("dint4_0.25", 8, False, "mul"),
    ]
    out = []
    for fmt, lanes, pipe, style in spec:
        name = f"dot-{fmt}-l{lanes}" + ("-pipe" if pipe else "") + (f"-{style}" if style else "")
        params = dict(design="dot", weight_format=fmt, lanes=lanes, k_max=K_MAX, pipeline=pipe)
        if style:
            params["style"] = style
        out.append(SimConfig(name, "sim.tb_dot", {"dut": params}, macs_hint=lanes * 4000))
    return out


def systolic_configs() -> list[SimConfig]:
    spec = [("dint4", 8, 8), ("dint4", 4, 8), ("int8", 8, 4), ("fp4_e2m1", 8, 8)]
    return [
        SimConfig(
            f"systolic-{fmt}-{r}x{c}",
            "sim.tb_systolic",
            {"dut": dict(design="systolic", weight_format=fmt, rows=r, cols=c, k_max=K_MAX)},
            macs_hint=r * c * 3000,
        )
        for fmt, r, c in spec
    ]


def requant_configs() -> list[SimConfig]:
    aw = golden.acc_width_for(K_MAX, "int8", "dint4")
    return [
        SimConfig(
            f"requant-l4-a{aw}",
            "sim.tb_requant",
            {"dut": dict(design="requant", lanes=4, acc_width=aw)},
            macs_hint=40000,
        ),
        SimConfig(
            "requant-l2-a48-pipe",
            "sim.tb_requant",
            {"dut": dict(design="requant", lanes=2, acc_width=48, pipeline=True)},
            macs_hint=20000,
        ),
    ]


def _layer_config(
    name: str, fmt: str, rows: int, cols: int, k_max: int, options: dict
) -> SimConfig:
    return SimConfig(
        name,
        "sim.tb_layer",
        {
            "sa": dict(design="systolic", weight_format=fmt, rows=rows, cols=cols, k_max=k_max),
            "rq": dict(
                design="requant",
                lanes=cols,
                acc_width=golden.acc_width_for(k_max, "int8", fmt),
            ),
        },
        options=options,
        macs_hint=200000,
    )


def layer_data_files(data_dir: Path = DATA_DIR) -> list[Path]:
    """Every committed layer tile ``sim/data/*.npz``, sorted."""
    return sorted(Path(data_dir).glob("*.npz")) if Path(data_dir).is_dir() else []


def layer_configs(data_dir: Path = DATA_DIR) -> list[SimConfig]:
    """A random-data layer, plus one configuration per real layer file found."""
    out = [_layer_config("layer-dint4-random", "dint4", 8, 8, K_MAX, {"T": 12, "K": 64, "N": 16})]
    for path in layer_data_files(data_dir):
        meta = _npz_meta(path)
        fmt = golden.get(meta.get("weight format") or meta.get("weight_format") or "dint4").name
        k = int(meta.get("K") or 0) or None
        k_max = max(K_MAX, k or 0)
        out.append(
            _layer_config(
                f"layer-{path.stem}",
                fmt,
                8,
                8,
                k_max,
                {"data": str(path), "tokens": LAYER_TOKENS, "outputs": LAYER_OUTPUTS},
            )
        )
    return out


def _npz_meta(path: Path) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z:
            return {}
        raw = z["meta"]
        text = raw.item() if raw.shape == () else str(raw)
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}


def default_configs(data_dir: Path = DATA_DIR) -> list[SimConfig]:
    return (
        mac_configs()
        + dot_configs()
        + systolic_configs()
        + requant_configs()
        + layer_configs(data_dir)
    )
