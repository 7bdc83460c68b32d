"""Verilog export with a JSON sidecar (the lint helpers are in :mod:`hw.lint`).

:func:`export_verilog` converts a component with Amaranth's Yosys back-end, keeps the
signature's port names (``en``, ``a``, ``i__valid``, ``i__payload``, ...; Amaranth joins
a port's path with ``__``) and writes ``FILE.v`` and ``FILE.json`` atomically.

The sidecar (``SIDECAR_VERSION``) holds: ``design``, ``top``, ``verilog`` (file name),
``parameters``, ``weight_format`` / ``act_format`` (name, bits, frac_bits, ints),
``acc_width``, ``frac_bits``, ``latency`` (cycles from an accepted input, or an ``en``
edge, to the first cycle its result is visible), ``streams`` (per stream: direction and the
names of its valid/ready/payload ports; an AXI4-Stream port adds ``last``, its ``tlast``) and
``ports``: every Verilog port with ``direction``
(``"in"``/``"out"``), ``width``, ``signed`` and, for structured ports (stream payloads),
``fields``: every leaf of the payload layout as ``{"path", "offset", "width", "signed"}``
with ``path`` like ``"a[3]"`` or ``"psum[0]"`` and ``offset`` the LSB within the port, and
``reset`` (``rst`` is synchronous, active high). :func:`pack_fields` / :func:`unpack_fields`
turn ``{path: int}`` into the flat payload integer and back.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data, stream, wiring

from tools import atomic_write_set

from .names import check_module_name
from .params import HwError

SIDECAR_VERSION = 1


class ExportError(RuntimeError):
    """The converted Verilog does not match the component's signature (a generator bug)."""


# ---- sidecar ----------------------------------------------------------------------------


def _leaf_fields(shape, path: str, offset: int, out: list[dict]) -> None:
    if isinstance(shape, ShapeCastable) and not isinstance(shape, data.Layout):
        shape = Shape.cast(shape)
    if isinstance(shape, data.StructLayout):
        for name, field in shape:
            _leaf_fields(
                field.shape, f"{path}.{name}" if path else name, offset + field.offset, out
            )
    elif isinstance(shape, data.ArrayLayout):
        elem = Shape.cast(shape.elem_shape).width  # a Layout casts to unsigned(size)
        for i in range(shape.length):
            _leaf_fields(shape.elem_shape, f"{path}[{i}]", offset + i * elem, out)
    elif isinstance(shape, data.Layout):
        raise TypeError(f"unsupported payload layout {shape!r} at {path!r}")
    else:
        s = Shape.cast(shape)
        out.append({"path": path, "offset": offset, "width": s.width, "signed": s.signed})


def _format_info(fmt) -> dict:
    return {"name": fmt.name, "bits": fmt.bits, "frac_bits": fmt.frac_bits, "ints": list(fmt.ints)}


def describe_ports(component: wiring.Component) -> tuple[list[dict], dict]:
    """Ports and streams of a component as the sidecar records them (without clk/rst)."""
    ports = []
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(map(str, path))
        shape = member.shape
        if isinstance(shape, data.Layout):
            width, is_signed = shape.size, False
        else:
            s = Shape.cast(shape)
            width, is_signed = s.width, s.signed
        entry = {
            "name": name,
            "direction": "in" if member.flow == wiring.In else "out",
            "width": width,
            "signed": is_signed,
        }
        if isinstance(shape, data.Layout):
            fields: list[dict] = []
            _leaf_fields(shape, "", 0, fields)
            entry["fields"] = fields
        ports.append(entry)
    streams = {}
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, stream.Signature):
            # A flipped stream signature (In(...)) is a sink of the component.
            streams[name] = {
                "direction": "in" if member.flow == wiring.In else "out",
                "valid": f"{name}__valid",
                "ready": f"{name}__ready",
                "payload": f"{name}__payload",
            }
    return ports, streams


def sidecar(component: wiring.Component, name: str, verilog_file: str, verilog_text: str) -> dict:
    """The sidecar dict for an exported component (see the module docstring)."""
    ports, streams = describe_ports(component)
    if hasattr(component, "stream_ports"):  # AXI4-Stream ports named by the design (hw.Tile)
        streams.update(component.stream_ports())
    header = re.search(rf"module {re.escape(name)}\(([^)]*)\);", verilog_text)
    if header is None:
        raise ExportError(f"exported Verilog has no module {name!r}; Amaranth output changed?")
    verilog_ports = {p.strip() for p in header.group(1).split(",") if p.strip()}
    clocking = [
        {"name": p, "direction": "in", "width": 1, "signed": False}
        for p in ("clk", "rst")
        if p in verilog_ports
    ]
    ports = clocking + ports
    missing = verilog_ports - {p["name"] for p in ports}
    if missing:
        raise ExportError(f"Verilog ports {sorted(missing)} of {name!r} are not in the signature")
    wf = getattr(component, "weight_format", None)
    af = getattr(component, "act_format", None)
    params = component.parameters() if hasattr(component, "parameters") else {}
    return {
        "sidecar_version": SIDECAR_VERSION,
        "design": getattr(component, "design", type(component).__name__.lower()),
        "top": name,
        "verilog": verilog_file,
        "parameters": params,
        "weight_format": _format_info(wf) if wf is not None else None,
        "act_format": _format_info(af) if af is not None else None,
        "acc_width": getattr(component, "acc_width", None),
        "frac_bits": wf.frac_bits if wf is not None else None,
        "latency": getattr(component, "latency", 0),
        "reset": "rst: synchronous, active high" if clocking else None,
        "streams": streams,
        "ports": ports,
    }


def pack_fields(fields: list[dict], values: dict[str, int]) -> int:
    """Pack ``{path: int}`` into a flat payload integer using a sidecar port's ``fields``.

    Every field must be given; values are checked against the field's signed/unsigned range.
    """
    raw = 0
    for f in fields:
        if f["path"] not in values:
            raise KeyError(f"payload field {f['path']!r} missing; give every field")
        v, w = int(values[f["path"]]), f["width"]
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if f["signed"] else (0, (1 << w) - 1)
        if not lo <= v <= hi:
            raise HwError(f"payload field {f['path']!r} = {v} is outside [{lo}, {hi}]")
        raw |= (v & ((1 << w) - 1)) << f["offset"]
    return raw


def unpack_fields(fields: list[dict], raw: int) -> dict[str, int]:
    """Inverse of :func:`pack_fields`: ``{path: int}`` (signed fields sign-extended)."""
    out = {}
    for f in fields:
        w = f["width"]
        v = (int(raw) >> f["offset"]) & ((1 << w) - 1)
        if f["signed"] and v >> (w - 1):
            v -= 1 << w
        out[f["path"]] = v
    return out


# ---- export -----------------------------------------------------------------------------


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (ports named by the signature)."""
    check_module_name(name)
    return verilog.convert(component, name=name, emit_src=False)


def export_verilog(component: wiring.Component, name: str, path: str | os.PathLike) -> dict:
    """Write ``path`` (Verilog, top module ``name``) and ``path`` with ``.json`` (sidecar).

    Both files are produced in memory first and then written as a set with
    :func:`tools.atomic_write_set` (both or neither; mode 0644 under the umask); the parent
    directory is created. Returns the sidecar.
    """
    path = Path(path)
    if path.suffix != ".v":
        raise HwError(f"Verilog output {str(path)!r} must end in .v (the sidecar gets .json)")
    text = to_verilog(component, name)
    meta = sidecar(component, name, path.name, text)
    atomic_write_set({path: text, path.with_suffix(".json"): json.dumps(meta, indent=2) + "\n"})
    return meta
