"""Net and cell names of a mapped netlist: Yosys JSON bits to the names of the netlist's
Verilog (the names gate-level toggles and OpenSTA use), and a small reader of that Verilog.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .liberty import LibertyError

# ---- netlist names ------------------------------------------------------------------------


def norm_name(name: str) -> str:
    """``\\foo.bar [3]`` -> ``foo.bar[3]``: a Verilog bit name as toggles are keyed."""
    return name.replace("\\", "").replace(" ", "")


def _auto_names(module: dict) -> dict[str, str]:
    """The Verilog backend's names for the internal (``$``) wires and cells of ``module``:
    ``_<n>_`` numbered in the order of the module's wires and then its cells, from one past
    the largest ``_<n>_`` name already used, zero-padded to the width of the last number."""
    wires, cells = module["netnames"], module["cells"]
    auto = [n for n in wires if n.startswith("$")] + [c for c in cells if c.startswith("$")]
    offset = 0
    for n in list(wires) + list(cells):
        m = re.fullmatch(r"_(\d+)_?", n)
        if m:
            offset = max(offset, int(m.group(1)) + 1)
    digits, i = 1, 10
    while i < offset + len(auto):
        digits, i = digits + 1, i * 10
    return {n: f"_{offset + k:0{digits}d}_" for k, n in enumerate(auto)}


def net_names(module: dict) -> dict[int, list[str]]:
    """Net bit -> its scalar names in ``write_verilog -noattr -noexpr`` output of the same
    Yosys state: public wires by name (``acc[3]``; ``offset``/``upto`` honoured), internal
    wires as the Verilog backend renames them (:func:`_auto_names`). :func:`check_names`
    verifies the correspondence on a Verilog file."""
    auto = _auto_names(module)
    out: dict[int, list[str]] = defaultdict(list)
    for n, w in module["netnames"].items():
        bits = w["bits"]
        if n in auto:
            names = [auto[n]] if len(bits) == 1 else [f"{auto[n]}[{k}]" for k in range(len(bits))]
        elif len(bits) == 1 and not w.get("offset") and not w.get("upto"):
            names = [n]
        else:
            idx = [int(w.get("offset", 0)) + k for k in range(len(bits))]
            names = [f"{n}[{k}]" for k in (idx[::-1] if w.get("upto") else idx)]
        for b, name in zip(bits, names, strict=True):
            if not isinstance(b, str):
                out[b].append(name)
    return out


def cell_names(module: dict) -> dict[str, str]:
    """JSON cell name -> its Verilog instance name (renamed as :func:`_auto_names`)."""
    auto = _auto_names(module)
    return {c: auto.get(c, c) for c in module["cells"]}


# ---- the mapped Verilog -------------------------------------------------------------------

_ID = r"(?:\\\S+|[A-Za-z_][A-Za-z0-9_$]*)"


@dataclass(frozen=True)
class VerilogNetlist:
    """A flat structural netlist as ``write_verilog -noattr -noexpr`` writes it."""

    top: str
    ports: dict[str, str]  # port name -> "input" | "output" | "inout"
    instances: dict[str, tuple[str, dict[str, str]]]  # name -> (cell type, pin -> net bit)


def read_verilog(path_or_text: str | Path, top: str | None = None) -> VerilogNetlist:
    """Parse the module ``top`` (default: the first) of a mapped Verilog netlist; net and
    instance names normalised as :func:`norm_name` (``\\a.b [3]`` -> ``a.b[3]``)."""
    text = str(path_or_text)
    if "\n" not in text and Path(text).is_file():
        text = Path(text).read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    mods = list(re.finditer(rf"\bmodule\s+({_ID})\s*\((.*?)\);(.*?)\bendmodule", text, re.S))
    if not mods:
        raise LibertyError("no module in the Verilog netlist")
    mod = next((m for m in mods if top is None or norm_name(m.group(1)) == top), None)
    if mod is None:
        raise LibertyError(f"module {top!r} not in the Verilog netlist")
    ports: dict[str, str] = {}
    instances: dict[str, tuple[str, dict[str, str]]] = {}
    for stmt in mod.group(3).split(";"):
        s = stmt.strip()
        m = re.match(r"(input|output|inout)\b(?:\s*\[[^\]]*\])?\s*(.*)", s, re.S)
        if m:
            for name in m.group(2).split(","):
                ports[norm_name(name.strip())] = m.group(1)
            continue
        m = re.match(rf"({_ID})\s+({_ID})\s*\((.*)\)\s*$", s, re.S)
        if m and m.group(1) not in ("wire", "reg", "assign"):
            pins = {
                p: norm_name(net.strip())
                for p, net in re.findall(r"\.(\w+)\s*\(\s*([^()]*?)\s*\)", m.group(3))
            }
            instances[norm_name(m.group(2))] = (m.group(1), pins)
    return VerilogNetlist(norm_name(mod.group(1)), ports, instances)


def check_names(module: dict, verilog: VerilogNetlist) -> None:
    """Raise :class:`LibertyError` unless every cell of the JSON ``module`` is the Verilog
    instance :func:`cell_names` says, of the same type, its pins on nets :func:`net_names`
    names (constants aside): the toggles of the Verilog then land on the right JSON nets."""
    names = net_names(module)
    for cname, vname in cell_names(module).items():
        c = module["cells"][cname]
        if c["type"] == "$scopeinfo":
            continue
        if vname not in verilog.instances or verilog.instances[vname][0] != c["type"]:
            raise LibertyError(
                f"cell {cname!r} ({c['type']}) is not Verilog instance {vname!r}: the JSON and "
                "the Verilog are not from the same Yosys state"
            )
        pins = verilog.instances[vname][1]
        for pin, bits in c["connections"].items():
            b = bits[0] if len(bits) == 1 else None
            if isinstance(b, int) and pins.get(pin) not in names.get(b, []):
                raise LibertyError(
                    f"{vname}.{pin} is on {pins.get(pin)!r} in the Verilog, {names.get(b)} in "
                    "the JSON: the two netlists do not match"
                )
