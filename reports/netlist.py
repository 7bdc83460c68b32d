"""Verilog and netlists around the flows: staging, module merging, ports, the fmax wrapper.

- :func:`stage` copies the exported Verilog into a flow's directory (the yowasp tools see
  only paths under their working directory), with identical modules merged
  (:func:`dedupe_modules`: Amaranth writes one module per instance);
- :func:`ports_of` reads the top module's ports with Yosys; :func:`wrapper_verilog` wraps
  the unit so that every input and output is registered (for nextpnr's fmax);
- :func:`find_top` finds the top module of a flattened Yosys JSON netlist.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tools import ToolError

from .toolchain import run_yosys

log = logging.getLogger(__name__)

#: A module with the attribute lines in front of it: name, header ports, body.
MODULE = re.compile(
    r"^(?:\(\*[^\n]*\*\)[ \t]*\n)*"
    r"module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*\((.*?)\);\n(.*?)^endmodule\b[^\n]*\n?",
    re.M | re.S,
)
_ESCAPED = re.compile(r"\\\S+")
_AUTO_NAME = re.compile(r"\\\$auto\$[^\s]*")


def canonical_body(body: str) -> str:
    """A module body with Yosys's file-global ``$auto$...$N`` names numbered per module."""
    names: dict[str, str] = {}
    return _AUTO_NAME.sub(lambda m: names.setdefault(m.group(0), f"\\$auto${len(names)}"), body)


def _duplicates(mods: list[re.Match], top: str) -> dict[str, str]:
    """Module name -> the name of an identical module kept in its place (``top`` is kept)."""
    canon: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    for m in mods:
        name, ports, body = m.group(1), m.group(2), m.group(3)
        if name.lstrip("\\") == top:
            continue
        key = (tuple(sorted(p.strip() for p in ports.split(","))), canonical_body(body))
        if key in canon:
            rename[name] = canon[key]
        else:
            canon[key] = name
    return rename


def dedupe_modules(text: str, top: str) -> tuple[str, int]:
    """Merge modules whose text is identical up to their names and port order.

    Amaranth writes one module per instance (256 copies of a PE for a 16 x 16 array). Since
    every flow synthesizes each module on its own (the hierarchy is kept), identical copies
    give identical results (Yosys's internal ``$auto$`` names, numbered across the file, are
    compared after renumbering them per module), and synthesizing one of them is exact and
    much faster; ``stat`` then counts the instances. Merging is bottom-up and exact: two
    modules merge only when their bodies are the same text once their submodules have been
    merged. Returns the new text and the number of modules removed.
    """
    removed = 0
    while True:
        mods = list(MODULE.finditer(text))
        rename = _duplicates(mods, top)
        if not rename:
            return text, removed
        removed += len(rename)
        pieces, last = [], 0
        for m in mods:
            if m.group(1) in rename:
                pieces.append(text[last : m.start()])
                last = m.end()
        pieces.append(text[last:])
        text = "".join(pieces)
        text = _ESCAPED.sub(lambda e, r=rename: r.get(e.group(0), e.group(0)), text)


def read_script(verilog: Path, top: str) -> str:
    """The Yosys commands that read the staged ``verilog`` with ``top`` as the top module."""
    return f"read_verilog {verilog.name}\nhierarchy -check -top {top}\n"


def stage(verilog: Path, workdir: Path, top: str) -> None:
    """Copy ``verilog`` into ``workdir`` (the tools see only relative paths), deduplicated."""
    workdir.mkdir(parents=True, exist_ok=True)
    text, n = dedupe_modules(verilog.read_text(), top)
    if n:
        log.debug("%s: merged %d duplicate modules", verilog.name, n)
    (workdir / verilog.name).write_text(text)


def find_top(netlist: dict, top: str) -> str:
    """The name of ``top`` in a Yosys JSON netlist (or the module marked ``top``)."""
    mods = netlist["modules"]
    if top in mods:
        return top
    for name, m in mods.items():
        if int(str(m.get("attributes", {}).get("top", "0")), 2):
            return name
    raise ToolError(f"top {top} not found in the flattened netlist")


@dataclass(frozen=True)
class Port:
    name: str
    direction: str
    width: int


def ports_of(verilog: Path, top: str, workdir: Path) -> list[Port]:
    """The top module's ports, read by Yosys (no guessing from the Verilog text)."""
    stage(verilog, workdir, top)
    run_yosys(
        f"read_verilog {verilog.name}\nhierarchy -top {top}\nproc\nselect -module {top}\n"
        "write_json -selected ports.json\n",
        workdir,
        "ports",
    )
    mods = json.loads((workdir / "ports.json").read_text())["modules"]
    m = mods[top] if top in mods else next(iter(mods.values()))
    ports = [Port(n, p["direction"], len(p["bits"])) for n, p in m["ports"].items()]
    (workdir / "ports.json").unlink()
    return ports


#: The fmax wrapper's module name.
WRAPPER = "fmax_wrapper"


def _connect(ports: list[Port], vector: str) -> list[str]:
    """Port connections to consecutive slices of ``vector``, lowest bits first."""
    conns, lo = [], 0
    for p in ports:
        conns.append(f".{p.name}({vector}[{lo + p.width - 1}:{lo}])")
        lo += p.width
    return conns


def wrapper_verilog(top: str, ports: list[Port]) -> str:
    """A wrapper with 4 pins that registers every input and output of ``top``.

    Inputs (all but ``clk``, including ``rst``) come from a shift register fed by ``din``;
    outputs are captured into a shift register loaded when ``load`` is high and read out on
    ``dout``. Every path of the unit is then register to register, and no input is constant
    (which would let Yosys simplify the unit).
    """
    ins = [p for p in ports if p.direction == "input" and p.name != "clk"]
    outs = [p for p in ports if p.direction == "output"]
    n_in = max(1, sum(p.width for p in ins))
    n_out = max(1, sum(p.width for p in outs))
    clk = [".clk(clk)"] if any(p.name == "clk" for p in ports) else []
    conns = clk + _connect(ins, "sin") + _connect(outs, "outs")
    shift_in = "{sin, din}" if n_in > 1 else "din"
    shift_out = f"load ? outs : {{sout[{n_out - 2}:0], 1'b0}}" if n_out > 1 else "outs"
    lines = [
        f"module {WRAPPER}(input clk, input din, input load, output dout);",
        f"  reg [{n_in - 1}:0] sin;",
        f"  always @(posedge clk) sin <= {shift_in};",
        f"  wire [{n_out - 1}:0] outs;",
        f"  {top} dut({', '.join(conns)});",
        f"  reg [{n_out - 1}:0] sout;",
        f"  always @(posedge clk) sout <= {shift_out};",
        f"  assign dout = sout[{n_out - 1}];",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"
