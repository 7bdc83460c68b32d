"""What ``python -m sim`` verifies: one :class:`SimConfig` per design point of the registry.

The designs are ``hw.sim_points()`` (every MAC of every format and style, dot products,
systolic arrays, requantizers: the very points ``reports`` synthesizes, with the same
accumulator widths) and, per real-layer run, ``hw.layer_point(fmt, K)`` (an array sized for
that layer's K plus its requantizer). Nothing here sizes an accumulator: the registry does.
Real layer tiles are read with ``golden.layerfile`` (the one reader of that file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import golden
import hw
from golden import layerfile

from .errors import SimError

#: Where the quantization front-end commits real layer tiles (``quant`` writes them).
DATA_DIR = Path(__file__).resolve().parent / "data"

#: The random-data layer run (tokens x inputs x outputs).
RANDOM_LAYER = {"T": 12, "K": 64, "N": 16}

#: From this many MACs per cycle on (a 16x16 array), exporting and building a design prints a
#: line per stage (elaborate, Verilog, Verilator build): each takes from seconds to minutes.
PROGRESS_MACS = 256

#: The largest design sim builds, in MACs per cycle (16x16). Converting to Verilog and the
#: Verilator build grow with the array: on a 2-core machine a 16x16 array takes ~10 s to
#: convert and ~1.5 min to export and build, a 32x32 ~45 s to convert (8 MB of Verilog) and
#: ~5.5 min to export and build (measured under load), and cocotb drives every cycle from
#: Python. Larger configurations are refused when they are made, before anything is exported.
MAX_ARRAY_MACS = 256

#: The cocotb testbench of each level.
TESTBENCHES = {
    "mac": "sim.tb_mac",
    "dot": "sim.tb_dot",
    "systolic": "sim.tb_systolic",
    "requant": "sim.tb_requant",
    "tile": "sim.tb_tile",
}

#: The random layer each tile protocol run (``sim.tb_tile``, cocotbext-axi drivers) streams,
#: tokens x inputs x outputs: several token blocks, K and N not multiples of the array, so
#: padding, K-tile accumulation and every tlast are exercised.
TILE_LAYER = {"T": 19, "K": 21, "N": 11}


@dataclass(frozen=True)
class SimConfig:
    """One configuration: the design points to export and the testbench that checks them.

    Attributes:
        name: directory name and summary label, e.g. ``"mac-dint4-shiftadd"``.
        testbench: cocotb test module, e.g. ``"sim.tb_mac"``.
        designs: ``{role: hw.DesignPoint}``; one entry ``"dut"`` for a single design, or
            several (e.g. ``"sa"`` and ``"rq"``) that a generated wrapper instantiates.
        options: testbench parameters (sizes, counts, data file, ...), passed in the JSON.
        seed: random seed of the testbench.
        macs_hint: rough count of MACs the testbench checks (orders the work queue).
    """

    name: str
    testbench: str
    designs: dict[str, hw.DesignPoint]
    options: dict = field(default_factory=dict)
    seed: int = 1
    macs_hint: int = 0

    def __post_init__(self) -> None:
        for point in self.designs.values():
            check_size(self.name, point)

    @property
    def top(self) -> str:
        return "tb_" + self.name.replace("-", "_").replace(".", "p")


def check_size(name: str, point: hw.DesignPoint) -> None:
    """Refuse a design beyond :data:`MAX_ARRAY_MACS` MACs per cycle (raises SimError)."""
    if point.macs_per_cycle > MAX_ARRAY_MACS:
        what = (
            f"a {point.rows}x{point.columns} array"
            if point.level == "systolic"
            else f"a {point.size}-lane {point.level}"
        )
        raise SimError(
            f"{name}: {what} ({point.macs_per_cycle} MACs per "
            f"cycle) is beyond sim's limit of {MAX_ARRAY_MACS} (16x16): its Verilog export "
            "and Verilator build take 5 min or more; verify a smaller array of the same "
            "generator, or raise sim.configs.MAX_ARRAY_MACS"
        )


def shows_progress(config: SimConfig) -> bool:
    """Whether exporting and building ``config`` print a line per stage (big designs)."""
    return any(p.macs_per_cycle >= PROGRESS_MACS for p in config.designs.values())


def config_name(point: hw.DesignPoint) -> str:
    """``mac-<fmt>-<style>[-a<width>]`` (width by need), ``dot-<fmt>-l<lanes>[-pipe][-<style>]``,
    ``systolic-<fmt>-<rows>x<cols>[-<arch>[-l<lanes>][-pipe][-r<n>]][-<style>]`` (arch ``lean`` or
    ``leancol``, with the weights per PE, pipeline and activation-register options; none of these
    for ``classic``), ``requant-l<lanes>-a<acc_width>[-pipe]``,
    ``tile-<fmt>-<rows>x<cols>-d<depth>``. The style is named when it is not
    the default (the format's for dot and classic arrays, ``shared`` for lean arrays)."""
    pipe = "-pipe" if point.pipeline else ""
    if point.level == "requant":
        return f"requant-l{point.size}-a{point.acc_width}{pipe}"
    fmt = point.weight_format
    if point.level == "tile":
        return f"tile-{fmt}-{point.rows}x{point.columns}-d{point.depth}"
    default = hw.LEAN_STYLES[0] if point.arch != "classic" else hw.default_style(fmt)
    style = "" if point.style == default else f"-{point.style}"
    if point.level == "mac":
        need = f"-a{point.acc_width}" if point.acc_rule == "need" else ""
        return f"mac-{fmt}-{point.style}{need}"
    if point.level == "dot":
        return f"dot-{fmt}-l{point.size}{pipe}{style}"
    if point.level == "systolic":
        arch = ""
        if point.arch != "classic":
            arch = "-" + point.arch.replace("-", "")
            arch += (f"-l{point.pe_lanes}" if point.pe_lanes != 1 else "") + pipe
            arch += f"-r{point.a_reg_every}" if point.a_reg_every is not None else ""
        return f"systolic-{fmt}-{point.rows}x{point.columns}{arch}{style}"
    raise SimError(f"sim has no testbench for level {point.level!r}")


def point_config(point: hw.DesignPoint) -> SimConfig:
    """The configuration that verifies one registry point with its level's testbench."""
    if point.level not in TESTBENCHES:
        raise SimError(f"sim has no testbench for level {point.level!r}")
    # Rough count of the MACs the testbench checks: the longest runs start first.
    hint = {
        "mac": 256 << golden.get(point.weight_format).bits,
        "dot": point.size * 4000,
        "systolic": point.macs_per_cycle * 3000,
        "requant": point.size * 10000,
        "tile": point.macs_per_cycle * 1000,
    }[point.level]
    options = dict(TILE_LAYER) if point.level == "tile" else {}
    return SimConfig(
        config_name(point), TESTBENCHES[point.level], {"dut": point}, options, macs_hint=hint
    )


def layer_config(name: str, weight_format: str, k: int, options: dict, macs_hint: int) -> SimConfig:
    """A layer run: the registry's array + requantizer for K inputs (``hw.layer_point``)."""
    sa, rq = hw.layer_point(weight_format, k)
    return SimConfig(
        name, "sim.tb_layer", {"sa": sa, "rq": rq}, options=options, macs_hint=macs_hint
    )


def layer_data_files(data_dir: Path = DATA_DIR) -> list[Path]:
    """Every layer tile ``*.npz`` in ``data_dir`` (default: the committed ``sim/data``), sorted."""
    return sorted(Path(data_dir).glob("*.npz")) if Path(data_dir).is_dir() else []


def layer_configs(data_dir: Path = DATA_DIR) -> list[SimConfig]:
    """A random-data layer, plus one configuration per real layer tile found.

    A tile runs the slice ``golden.layerfile`` defines (its first ``DEFAULT_TOKENS`` tokens x
    all K x its first ``DEFAULT_OUTPUTS`` outputs); a file that breaks the schema raises
    ``golden.FormatError`` naming the field.
    """
    t, k, n = RANDOM_LAYER["T"], RANDOM_LAYER["K"], RANDOM_LAYER["N"]
    out = [layer_config("layer-dint4-random", "dint4", k, dict(RANDOM_LAYER), t * k * n)]
    for path in layer_data_files(data_dir):
        tile = layerfile.load(path).slice(layerfile.DEFAULT_TOKENS, layerfile.DEFAULT_OUTPUTS)
        t, k, n = tile.shape
        out.append(
            layer_config(
                f"layer-{path.stem}",
                tile.weight_format.name,
                k,
                {"data": str(path.resolve())},
                t * k * n,
            )
        )
    return out


def default_configs(data_dir: Path = DATA_DIR) -> list[SimConfig]:
    """Every registry point of ``hw.sim_points()``, then the layer runs."""
    return [point_config(p) for p in hw.sim_points()] + layer_configs(data_dir)


def verified_points(configs: list[SimConfig]) -> list[hw.DesignPoint]:
    """The design points of ``configs`` (every role), in order, without repeats."""
    out: list[hw.DesignPoint] = []
    for c in configs:
        out += [p for p in c.designs.values() if p not in out]
    return out
