"""Each distinct module synthesized once, alone, and cached: the engine of the ASIC flows.

Synthesized inside a whole design, a module's mapping depends on the rest of the design
(ABC and Yosys see cells in the order their names were created), so the same Booth INT8
multiplier came out 10.3k, 11.9k or 12.4k um^2 in different designs. Here a module's result
depends only on its own text:

1. **Identity** (:func:`split_design`). The exported Verilog is split into its modules. A
   module's canonical text is its own text with its name replaced by a placeholder, its
   header's ports sorted (Amaranth lists them in any order and connects them by name), the
   modules it instantiates named by their identities, and Yosys's file-global
   ``$auto$...$N`` names numbered per module; its identity is the SHA-256 of that text and
   its canonical name ``m_<first 16 hex digits>``. Identical modules (Amaranth writes one
   per instance: 256 PEs in a 16 x 16 array) share one identity, within a design and across
   designs: the MAC's decoder is the dot product's.
2. **Synthesis** (:func:`synthesize`). Each identity missing from the cache is synthesized
   alone, in its own Yosys process (Yosys's name counters and name table start empty, so
   nothing synthesized before can change the mapping; ``design -reset`` in one process is not
   enough: the multiplier above maps to 10,318 um^2 alone and to 12,373 after six other
   modules): its canonical text, its submodules
   as blackboxes (their canonical texts read with ``read_verilog -lib``: the same ports),
   ``synth -top m_... -noabc [-booth]`` and the target's mapping commands
   (:class:`Recipe`), which also measure the mapped module (:class:`ModuleResult`).
3. **Cache**: ``<cache>/<target>/<key>.v`` (the mapped netlist, ``write_verilog
   -noattr``, written first) and ``<key>.json`` (the result), where the key hashes the
   identity, the target, ``booth``, ``clock_gate`` and the recipe's settings (Liberty
   SHA-256, Yosys version, the flow code's revision). The cache directory is shared by all
   designs of a report run (``<out>/module-cache``) and by its parallel jobs: two jobs that
   synthesize the same module at once each write complete files atomically
   (:func:`tools.atomic_write`), so a reader sees one of two equal results, never a torn
   file.

The flows (:mod:`reports.asic`) then roll the module results up over the design's
hierarchy (:mod:`reports.hierarchy`) and, for ``stat`` and timing, read the mapped modules
back as one design (``assembly`` of :func:`synthesize`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tools
from tools import ToolError

from .hierarchy import register_role
from .netlist import MODULE, canonical_body
from .toolchain import run_yosys

#: A line's first identifier: a module name there starts an instance.
_LINE_START = re.compile(r"^([ \t]*)(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)(?=\s)", re.M)
_PLACEHOLDER = "__module__"


@dataclass(frozen=True, eq=False)
class Module:
    """One module of a design: its exported name, identity and canonical text."""

    name: str  # hierarchical name as exported, without a leading backslash
    ident: str  # canonical name, m_<16 hex digits>
    digest: str  # SHA-256 of the canonical text (with the placeholder name)
    text: str  # canonical Verilog: module ``ident``, submodules by their identities
    children: dict[str, int]  # submodule name -> instances


@dataclass(frozen=True, eq=False)
class Design:
    """The modules reachable from ``top``, by exported name, in file order."""

    top: str
    modules: dict[str, Module]
    bottom_up: tuple[str, ...]  # the module names, every submodule before its parents

    def distinct(self) -> dict[str, Module]:
        """One module per identity (the first in file order), by identity."""
        out: dict[str, Module] = {}
        for m in self.modules.values():
            out.setdefault(m.ident, m)
        return out

    @property
    def top_ident(self) -> str:
        """The canonical name of the top module."""
        return self.modules[self.top].ident

    def tree(self) -> dict[str, dict[str, int]]:
        """Module name -> {submodule name: instances} (for :func:`reports.hierarchy.rollup`)."""
        return {n: dict(m.children) for n, m in self.modules.items()}


def _norm(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def _ports(header: str) -> str:
    """A header's port list, sorted (ANSI headers, which declare directions, kept as is)."""
    if re.search(r"\b(?:input|output|inout)\b", header):
        return header
    names = sorted(p.strip() for p in header.split(",") if p.strip())
    return ", ".join(f"{p} " if p.startswith("\\") else p for p in names)


def split_design(text: str, top: str) -> Design:
    """Split Verilog ``text`` into the modules under ``top`` with their identities (module
    docstring). Modules are found by their ``module NAME(ports); ... endmodule`` text (what
    Amaranth and Yosys write); a header this does not read raises :class:`ToolError`."""
    found = {_norm(m.group(1)): m for m in MODULE.finditer(text)}
    declared = len(re.findall(r"^[ \t]*module\b", text, re.M))
    if declared != len(found):
        raise ToolError(
            f"found {len(found)} of {declared} modules: a module header is not of the form "
            "'module NAME(port, ...);' (parameters and ANSI headers with '#(' are not read)"
        )
    top = _norm(top)
    if top not in found:
        raise ToolError(f"top module {top!r} not in the Verilog (have {sorted(found)[:8]}...)")
    children: dict[str, dict[str, int]] = {}
    for name, m in found.items():
        kids: dict[str, int] = {}
        for tok in _LINE_START.finditer(m.group(3)):
            if _norm(tok.group(2)) in found:
                kids[_norm(tok.group(2))] = kids.get(_norm(tok.group(2)), 0) + 1
        children[name] = kids
    modules: dict[str, Module] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in modules:
            return
        if name in path:
            raise ToolError(f"module {name} instantiates itself through {' -> '.join(path)}")
        for kid in children[name]:
            visit(kid, (*path, name))
        rename = {k: modules[k].ident for k in children[name]}
        m = found[name]

        def sub(tok: re.Match) -> str:
            return tok.group(1) + rename.get(_norm(tok.group(2)), tok.group(2))

        body = canonical_body(_LINE_START.sub(sub, m.group(3)))
        canon = f"module {_PLACEHOLDER}({_ports(m.group(2))});\n{body}endmodule\n"
        digest = hashlib.sha256(canon.encode()).hexdigest()
        ident = f"m_{digest[:16]}"
        own = canon.replace(f"module {_PLACEHOLDER}(", f"module {ident}(", 1)
        modules[name] = Module(name, ident, digest, own, children[name])

    visit(top, ())
    order = [n for n in found if n in modules]  # file order
    return Design(top, {n: modules[n] for n in order}, tuple(modules))


@dataclass
class ModuleResult:
    """What a target measured for one module alone (its own cells, not its submodules')."""

    area: float
    seq_area: float  # flip-flops (of the module's logic; the clock gates are apart)
    registers: dict[str, float]  # flip-flop area by role (reports.hierarchy.register_role)
    clock_gates: int = 0
    seconds: float = 0.0
    netlist: Path | None = field(default=None, compare=False)  # the mapped module (cache)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("netlist")
        return d


@dataclass(frozen=True)
class Recipe:
    """How one target maps a module alone and measures it.

    ``commands`` are the Yosys commands after ``synth`` (``{m}`` is the module's canonical
    name); they must leave the mapped module in the design. ``measure(m, workdir, netlist)``
    reads what they wrote (``netlist``: the module from ``write_json``). ``blackboxes`` is
    Verilog read as blackboxes before the module (e.g. a clock-gate cell the commands
    instantiate). ``settings`` name everything else that decides the result (the cache key).
    """

    target: str
    booth: bool
    commands: str
    measure: Callable[[str, Path, dict], ModuleResult]
    settings: dict[str, object]
    blackboxes: str = ""

    def key(self, module: Module) -> str:
        parts = {"module": module.digest, "target": self.target, "booth": self.booth}
        parts.update(self.settings)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def register_roles(netlist: dict, sequential: dict[str, tuple[str, ...]], area) -> dict:
    """Flip-flop area by role in one module of a ``write_json`` netlist.

    ``sequential`` maps each flip-flop cell type to its output pins, ``area(type)`` gives its
    area; a flip-flop's role comes from the public names of the nets on its outputs
    (:func:`reports.hierarchy.register_role`).
    """
    names: dict[int, list[str]] = {}
    for net, info in netlist.get("netnames", {}).items():
        if not int(info.get("hide_name", 0)):
            for b in info["bits"]:
                if isinstance(b, int):
                    names.setdefault(b, []).append(net)
    roles: dict[str, float] = {}
    for cell in netlist.get("cells", {}).values():
        pins = sequential.get(cell["type"])
        if pins is None:
            continue
        nets = [n for p in pins for b in cell["connections"].get(p, []) for n in names.get(b, [])]
        role = register_role(nets)
        roles[role] = roles.get(role, 0.0) + area(cell["type"])
    return roles


def _script(design: Design, module: Module, recipe: Recipe, workdir: Path) -> str:
    """The Yosys script that synthesizes ``module`` alone (its files written to
    ``workdir``), leaving ``<m>.mapped.v``, ``<m>.json`` and what the recipe writes."""
    m = module.ident
    subs = {design.modules[k].ident: design.modules[k].text for k in module.children}
    (workdir / f"{m}.v").write_text(module.text)
    script = ""
    lib = recipe.blackboxes + "".join(subs[k] for k in sorted(subs))
    if lib:
        (workdir / f"{m}.lib.v").write_text(lib)
        script += f"read_verilog -lib {m}.lib.v\n"
    return script + (
        f"read_verilog {m}.v\nhierarchy -check -top {m}\n"
        f"synth -top {m} -noabc{' -booth' if recipe.booth else ''}\n"
        + recipe.commands.format(m=m)
        + f"write_verilog -noattr {m}.mapped.v\nwrite_json {m}.json\n"
    )


def _assembly_script(design: Design, results: dict[str, ModuleResult], workdir: Path, read: str):
    """Write the mapped netlists of every module but the top into ``design_mapped.v``; the
    Yosys commands that read them, the top's ``<top>.mapped.v`` and ``read``, with the
    top module as the top."""
    top = design.top_ident
    parts = [results[i].netlist.read_text() for i in design.distinct() if i != top]
    (workdir / "design_mapped.v").write_text("".join(parts))
    files = f"design_mapped.v {top}.mapped.v" if parts else f"{top}.mapped.v"
    return f"{read}read_verilog {files}\nhierarchy -check -top {top}\n"


def synthesize(
    design: Design,
    recipe: Recipe,
    workdir: Path,
    cache: Path,
    assembly: tuple[str, str] | None = None,
) -> dict[str, ModuleResult]:
    """The result of every distinct module of ``design`` (by identity): from the cache
    ``cache/<target>/``, or synthesized alone in ``workdir`` and added to the cache.

    ``assembly`` = (``read``, ``commands``): afterwards, read every mapped module back as one
    design (``read`` first, e.g. ``read_liberty -lib``; the top module as the top) and run
    ``commands`` on it (e.g. ``stat``, ``flatten``, ``write_json``). Modules are synthesized
    bottom up, so when the top is not cached the assembly runs in the top's Yosys process,
    after its result is written (``design -reset``): one process less per design.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    where = cache / recipe.target
    results: dict[str, ModuleResult] = {}
    distinct = design.distinct()
    top = design.top_ident
    for ident in dict.fromkeys(design.modules[n].ident for n in design.bottom_up):
        module = distinct[ident]
        key = recipe.key(module)
        entry, netlist = where / f"{key}.json", where / f"{key}.v"
        if entry.is_file() and netlist.is_file():
            results[ident] = ModuleResult(**json.loads(entry.read_text()), netlist=netlist)
            continue
        t0 = time.monotonic()
        script = _script(design, module, recipe, workdir)
        if ident == top and assembly is not None:
            read, commands = assembly
            script += "design -reset\n" + _assembly_script(design, results, workdir, read)
            script += commands
            assembly = None
        run_yosys(script, workdir, ident)
        nl_path = workdir / f"{ident}.json"
        nl = json.loads(nl_path.read_text())["modules"][ident]
        nl_path.unlink()  # large for a big array's top; the mapped Verilog stays
        res = recipe.measure(ident, workdir, nl)
        res.seconds = time.monotonic() - t0
        # The netlist first: an entry whose .json exists is complete.
        tools.atomic_write(netlist, (workdir / f"{ident}.mapped.v").read_text())
        tools.atomic_write(entry, json.dumps(res.to_json(), indent=1, sort_keys=True))
        res.netlist = netlist
        results[ident] = res
    if assembly is not None:  # the top came from the cache
        read, commands = assembly
        shutil.copyfile(results[top].netlist, workdir / f"{top}.mapped.v")
        run_yosys(_assembly_script(design, results, workdir, read) + commands, workdir, "assemble")
    return results
