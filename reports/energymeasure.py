"""One energy run: map a design point (cached), build its workload, simulate it at gate
level against golden, and turn the toggles into energy per MAC split by category.

:mod:`reports.energyruns` makes these runs into cached jobs; see its docstring for the flow.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import hw
import tools

from . import gatesim, hierarchy, opensta, operands, power, workload
from .powerlib import load_power
from .powernames import net_names
from .runner import generator_revision
from .toolchain import YOSYS, file_sha256, tool_version

#: Levels cross-checked with OpenSTA (it takes ~1 s per thousand cells).
OPENSTA_LEVELS = ("mac",)
IVERILOG = ("iverilog", gatesim.IVERILOG_INSTALL)


@dataclass(frozen=True)
class Settings:
    """What a run simulates: ``cycles`` (MAC and dot products: products, at least two dot
    products of ``k``, as iverilog slows down on a dot product's deep adder tree; arrays: a
    budget of cycles the weight tiles fill), dot products of ``k``, ``tokens`` per array
    weight tile, the clock, the operand seed, and an optional wire-load estimate (pF per
    driven pin; the OSU018 Liberty has no wire-load model, so the default is pin
    capacitances only)."""

    cycles: int = 1000
    k: int = 64
    tokens: int = 128
    clock_ns: float = 10.0
    seed: int = 7
    wire_cap_pf_per_fanout: float = 0.0

    def check(self) -> None:
        if self.cycles < 2 or self.k < 16 or self.k % 16 or self.tokens < 1:
            raise ValueError(
                "energy settings: cycles must be >= 2, k a positive multiple of 16 (the dot "
                f"products' lanes), tokens >= 1; got {asdict(self)}"
            )
        if not self.wire_cap_pf_per_fanout >= 0:
            raise ValueError("energy settings: the wire capacitance per fanout must be >= 0")
        if not self.clock_ns > 0:
            raise ValueError(f"energy settings: the clock period must be > 0, got {self.clock_ns}")


def unit_label(point: hw.DesignPoint) -> str:
    """The report's unit label (``mac``, ``dot8``, ``sys8x8 classic``)."""
    return point.level_label + (f" {point.arch}" if point.level == "systolic" else "")


@functools.cache
def iverilog_version() -> str:
    """First line of ``iverilog -V`` (it has no ``--version``)."""
    exe = tools.find_tool(*IVERILOG)
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip() if out.stdout or out.stderr else ""


@functools.cache
def flow_revision() -> str:
    """Hash of the energy flow's sources (this module and what it calls)."""
    h = hashlib.sha256(generator_revision().encode())
    here = Path(__file__).parent
    for name in (
        "energymeasure",
        "energyruns",
        "gatesim",
        "workload",
        "operands",
        "power",
        "powerlib",
        "powernames",
        "opensta",
        "liberty",
        "sta",
    ):
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def mapped_cached(point: hw.DesignPoint, work: Path, liberty: Path) -> gatesim.Mapped:
    """``point`` mapped (:func:`reports.gatesim.map_component`), reused from ``work`` while
    the generator, the flow, the Liberty and yosys are unchanged."""
    stamp = work / "map.stamp"
    rev = json.dumps(
        [generator_revision(), flow_revision(), file_sha256(liberty), tool_version(YOSYS)]
    )
    if stamp.is_file() and stamp.read_text() == rev and (work / "mapped.json").is_file():
        signed = json.loads((work / "signed.json").read_text())
        return gatesim.load_mapped(work, point.name, signed)
    mapped = gatesim.map_component(
        point.build(), point.name, work, liberty, booth=point.booth, clock_gate=point.clock_gate
    )
    tools.atomic_write(work / "signed.json", json.dumps(sorted(mapped.signed)))
    tools.atomic_write(stamp, rev)
    return mapped


def categories(mapped: gatesim.Mapped, plib) -> dict[str, str]:
    """Cell -> breakdown category (:data:`reports.hierarchy.CATEGORIES`): a clock gate's
    cells ``clock gating``, flip-flops by the role of the net they drive, other cells by the
    module instance they came from."""
    module = json.loads(mapped.json.read_text())["modules"][mapped.top]
    names = net_names(module)
    out = {}
    for cname, c in module["cells"].items():
        lc = plib.timing.cells.get(c["type"])
        if lc is None:
            continue
        if str(c.get("attributes", {}).get("src", "")).startswith("clock_gate.v"):
            out[cname] = hierarchy.CLOCK_GATING  # the cells of a clock gate (reports.asic)
        elif lc.sequential:
            bits = [b for p in lc.outputs for b in c["connections"].get(p, ())]
            nets = [n for b in bits for n in names.get(b, ())]
            out[cname] = hierarchy.register_role(nets)
        else:
            scope = mapped.scopes.get(cname, "")
            out[cname] = hierarchy.category_of(scope) if scope else "other"
    return out


def build_workload(
    point: hw.DesignPoint, source: str, settings: Settings
) -> tuple[workload.Workload, str]:
    """The point's workload on ``source`` and a description of the operands."""
    rng = np.random.default_rng(settings.seed)
    fmt = point.weight_format
    desc = operands.describe(source, fmt)
    if point.level == "mul":
        a, w = operands.operands(source, settings.cycles, fmt, rng)
        return workload.mul(point, a, w), desc
    if point.level == "mac":
        a, w = operands.operands(source, settings.cycles, fmt, rng)
        return workload.mac(point, a, w, settings.k), desc
    if point.level == "dot":
        beats = max(settings.cycles // point.size, 2 * settings.k // point.size)
        a, w = operands.operands(source, beats * point.size, fmt, rng)
        return workload.dot(point, a, w, settings.k), desc
    if point.level == "systolic" and source == "smollm2":
        tiles = workload.layer_tiles(
            operands.smollm2_tiles(fmt), point.rows, point.columns, settings.tokens, rng
        )
        return workload.systolic(point, tiles, settings.cycles), desc
    raise ValueError(f"no energy workload for {point.name} on {source} operands")


@dataclass(frozen=True)
class Netlist:
    """A mapped point and what every run on it shares: the Liberty's power data and each
    cell's breakdown category (computed once per job, not per run)."""

    mapped: gatesim.Mapped
    liberty: Path
    plib: object
    groups: dict[str, str]


def prepare(point: hw.DesignPoint, work: Path, liberty: Path) -> Netlist:
    """``point`` mapped (:func:`mapped_cached`) with its power data and categories."""
    mapped = mapped_cached(point, work, liberty)
    plib = load_power(liberty)
    return Netlist(mapped, liberty, plib, categories(mapped, plib))


def measure(
    point: hw.DesignPoint,
    source: str,
    activity: str,
    settings: Settings,
    netlist: Netlist,
    work: Path,
    built: tuple[workload.Workload, str] | None = None,
) -> dict:
    """One row: simulate, check against golden, compute the energy (module docstring);
    ``built``: the point's :func:`build_workload` on ``source`` if the caller has it (the
    same for both activities)."""
    mapped, liberty, plib = netlist.mapped, netlist.liberty, netlist.plib
    wl, desc = built or build_workload(point, source, settings)
    delays = activity == "glitch"
    run = work / f"{source}-{'glitch' if delays else 'zero'}"
    act = gatesim.simulate(
        mapped,
        gatesim.cells_verilog(),
        wl.stimulus,
        list(wl.expected),
        run,
        delays,
        settings.clock_ns,
        wl.expected,
        wl.check,
    )
    rep = power.energy(
        mapped.json,
        mapped.top,
        plib,
        act.toggles,
        act.cycles,
        settings.clock_ns,
        groups=netlist.groups,
        wire_cap_pf_per_fanout=settings.wire_cap_pf_per_fanout,
    )
    pj_run = settings.clock_ns * act.cycles  # mW -> pJ over the run
    per_mac = rep.total_mw * pj_run / wl.macs
    split = rep.split()
    sta_diff = None
    if point.level in OPENSTA_LEVELS and not settings.wire_cap_pf_per_fanout:
        sta_mw = opensta.opensta_power(
            mapped.sta_verilog,
            mapped.top,
            liberty,
            act.toggles,
            act.cycles,
            settings.clock_ns,
            run / "sta",
        )
        sta_diff = round(rep.total_mw / sta_mw - 1, 4)
    return {
        "unit": unit_label(point),
        "level": point.level,
        "size": point.size,
        "arch": point.arch,
        "variant": point.variant,
        "weight_format": point.weight_format,
        "style": point.style,
        "booth": point.booth,
        "acc_width": point.acc_width,
        "target": "osu018",
        "operands": source,
        "operand_data": desc,
        "activity": activity,
        "clock_ns": settings.clock_ns,
        "wire_cap_pf_per_fanout": settings.wire_cap_pf_per_fanout,
        "cycles": act.cycles,
        "macs": wl.macs,
        "workload": wl.note,
        "cells": len(mapped.cells),
        "toggles_per_cycle": round(act.total / act.cycles, 1),
        "energy_pj_per_mac": round(per_mac, 4),
        "power_mw": round(rep.total_mw, 4),
        "internal": round(split["internal"], 4),
        "switching": round(split["switching"], 4),
        "leakage": round(split["leakage"], 6),
        "by_category_pj": {
            c: round(rep.by_group[c] * pj_run / wl.macs, 4)
            for c in hierarchy.CATEGORIES
            if rep.by_group.get(c)
        },
        "opensta_diff": sta_diff,
    }
