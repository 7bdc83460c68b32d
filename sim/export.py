"""Export a :class:`~sim.configs.SimConfig`'s designs as Verilog + sidecar for simulation.

Each design point is built with ``hw.build_design(**point.build_kwargs())`` (the builder
behind ``DesignPoint.build`` and ``python -m hw verilog``) and written by
``hw.export_verilog``. Several designs of one configuration (a layer's array and
requantizer) are instantiated side by side by a generated wrapper module.

A big design (:func:`sim.configs.shows_progress`, 16x16 arrays and up) prints a line per
stage to stderr (elaborate, Verilog written), since each takes from seconds to minutes.

The fault-injection hook (:data:`FAULT_ENV`) lives here because it changes only what is
exported, never the expected values.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

import golden
import hw
from tools import atomic_write, atomic_write_set

from .configs import SimConfig, shows_progress
from .errors import SimError

log = logging.getLogger(__name__)

#: Environment hook for checking that the testbenches catch a broken decoder: a value like
#: ``dint4:3:5`` makes every export of format ``dint4`` use a table whose code 3 decodes to
#: the integer 5 (i.e. value 5 * 2**-frac_bits) instead of the registered value. The
#: expected values still come from ``golden.FORMATS``, so the run must fail. Never set in CI.
FAULT_ENV = "SIM_INJECT_DECODER_FAULT"


def weight_format_for_export(name: str) -> golden.Format:
    """The Format to hand to hw: the registered one, or a deliberately broken copy."""
    fmt = golden.get(name)
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return fmt
    try:
        fmt_name, code, new_int = spec.split(":")
        code, new_int = int(code), int(new_int)
    except ValueError:
        raise SimError(f"{FAULT_ENV}={spec!r}: expected FORMAT:CODE:INT, e.g. dint4:3:5") from None
    if fmt_name != fmt.name:
        return fmt
    values = list(fmt.values)
    values[code] = new_int * 2.0**-fmt.frac_bits
    log.warning(
        "%s: exporting %s with code %d -> %d (deliberately wrong)",
        FAULT_ENV,
        fmt.name,
        code,
        new_int,
    )
    return golden.Format(fmt.name, tuple(values), fmt.description)


def build_point(point: hw.DesignPoint):
    """The component of ``point`` (as ``point.build()``), with the fault hook applied."""
    kwargs = point.build_kwargs()
    if "weight_format" in kwargs:
        kwargs["weight_format"] = weight_format_for_export(kwargs["weight_format"])
    return hw.build_design(**kwargs)


def progress(config: SimConfig) -> Callable[[str], None]:
    """A printer of ``<config>: <stage>`` lines for a big design; a no-op for the others."""
    if not shows_progress(config):
        return lambda text: None
    return lambda text: tqdm.write(f"{config.name}: {text}", file=sys.stderr)


def _export_point(point: hw.DesignPoint, name: str, path: Path, say) -> dict:
    """``hw.export_verilog`` of one point, with a line per stage for a big design."""
    t0 = time.perf_counter()
    say(f"elaborating {point.name} ({point.macs_per_cycle} MACs per cycle)")
    comp = build_point(point)
    say(f"converting to Verilog {path.name} (a 16x16 array takes ~10 s)")
    meta = hw.export_verilog(comp, name, path)
    size = path.stat().st_size / 1e6
    say(f"wrote {path.name} ({size:.1f} MB) in {time.perf_counter() - t0:.0f} s")
    return meta


def export_config(config: SimConfig, src_dir: Path) -> dict:
    """Export every design of ``config`` into ``src_dir``; return the top sidecar dict.

    With one design (role ``"dut"``) its module is the top. With several, each is exported
    as ``<top>_<role>`` and a generated wrapper ``<top>`` instantiates them side by side,
    every port renamed ``<role>_<port>``; the wrapper's sidecar lists those ports and keeps
    each part's sidecar under ``parts``.
    """
    src_dir.mkdir(parents=True, exist_ok=True)
    say = progress(config)
    if set(config.designs) == {"dut"}:
        meta = _export_point(config.designs["dut"], config.top, src_dir / f"{config.top}.v", say)
        meta["sources"] = [f"{config.top}.v"]
        atomic_write(src_dir / f"{config.top}.json", json.dumps(meta, indent=2))
        return meta
    parts = {}
    for role, point in config.designs.items():
        name = f"{config.top}_{role}"
        parts[role] = _export_point(point, name, src_dir / f"{name}.v", say)
    meta = wrapper_sidecar(config.top, parts)
    atomic_write_set(
        {
            src_dir / f"{config.top}.v": wrapper_verilog(config.top, parts),
            src_dir / f"{config.top}.json": json.dumps(meta, indent=2),
        }
    )
    return meta


def wrapper_verilog(top: str, parts: dict[str, dict]) -> str:
    """A top module instantiating each part with its ports brought out as ``<role>_<port>``.

    ``clk`` and ``rst`` are shared.
    """
    ports: list[str] = ["clk", "rst"]
    decls = ["  input clk;", "  input rst;"]
    insts = []
    for role, meta in parts.items():
        conns = []
        for p in meta["ports"]:
            if p["name"] in ("clk", "rst"):
                conns.append(f"    .{p['name']}({p['name']})")
                continue
            outer = f"{role}_{p['name']}"
            ports.append(outer)
            rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
            kind = "input" if p["direction"] == "in" else "output"
            decls.append(f"  {kind} {rng}{outer};")
            conns.append(f"    .{p['name']}({outer})")
        insts.append(f"  {meta['top']} {role} (\n" + ",\n".join(conns) + "\n  );")
    return (
        "// Generated by sim.export: side-by-side instances of exported designs.\n"
        f"module {top}({', '.join(ports)});\n"
        + "\n".join(decls)
        + "\n"
        + "\n".join(insts)
        + "\nendmodule\n"
    )


def wrapper_sidecar(top: str, parts: dict[str, dict]) -> dict:
    """Sidecar of :func:`wrapper_verilog`: renamed ports and streams, parts kept verbatim."""
    ports = [
        {"name": "clk", "direction": "in", "width": 1, "signed": False},
        {"name": "rst", "direction": "in", "width": 1, "signed": False},
    ]
    streams = {}
    for role, meta in parts.items():
        for p in meta["ports"]:
            if p["name"] not in ("clk", "rst"):
                ports.append({**p, "name": f"{role}_{p['name']}"})
        for sname, s in (meta.get("streams") or {}).items():
            streams[f"{role}_{sname}"] = {
                "direction": s["direction"],
                **{k: f"{role}_{s[k]}" for k in ("valid", "ready", "payload", "last") if k in s},
            }
    return {
        "design": "wrapper",
        "top": top,
        "verilog": f"{top}.v",
        "sources": [f"{meta['top']}.v" for meta in parts.values()] + [f"{top}.v"],
        "parameters": {role: meta["parameters"] for role, meta in parts.items()},
        "acc_width": next(iter(parts.values())).get("acc_width"),
        "weight_format": next(iter(parts.values())).get("weight_format"),
        "latency": 0,
        "streams": streams,
        "ports": ports,
        "parts": parts,
    }


def designs_json(config: SimConfig) -> dict[str, dict]:
    """What the registry says about each design (``DesignPoint.to_json`` plus its
    ``acc_width``), written into the testbench's configuration so it can check the export."""
    return {role: {**p.to_json(), "acc_width": p.acc_width} for role, p in config.designs.items()}
