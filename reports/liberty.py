"""Liberty cell libraries: a small parser and the library model (cells, pins, NLDM tables).

:func:`load` reads what the flows need from a ``.lib`` file: cell areas, input-pin
capacitances, output functions and timing arcs with their non-linear delay model (NLDM)
tables, normalised to ns and pF (:class:`Table` interpolates them bilinearly and extrapolates
at the edges). Static timing on top of it is :mod:`reports.sta`.
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


_TABLE_KINDS = (
    "cell_rise",
    "cell_fall",
    "rise_transition",
    "fall_transition",
    "rise_constraint",
    "fall_constraint",
)


def _arc(tg: Group, templates: dict[str, Group], cap_pf: float, time_ns: float) -> Arc:
    """One ``timing()`` group of a pin as an :class:`Arc` (its tables in ns and pF)."""
    tables = {
        sub.kind: _table(sub, templates, cap_pf, time_ns)
        for sub in tg.groups
        if sub.kind in _TABLE_KINDS
    }
    return Arc(
        related_pin=str(tg.attrs.get("related_pin", "")),
        sense=str(tg.attrs.get("timing_sense", "non_unate")),
        kind=str(tg.attrs.get("timing_type", "combinational")),
        **tables,
    )


def _cell(cg: Group, templates: dict[str, Group], cap_pf: float, time_ns: float) -> Cell:
    """One ``cell()`` group: area, pin capacitances, output functions, timing arcs."""
    inputs: dict[str, float] = {}
    outputs: list[str] = []
    functions: dict[str, str] = {}
    arcs: dict[str, list[Arc]] = defaultdict(list)
    for pg in cg.find("pin") + [p for b in cg.find("bus") for p in b.find("pin")]:
        pname = pg.args[0]
        direction = str(pg.attrs.get("direction", ""))
        if direction == "input":
            inputs[pname] = float(str(pg.attrs.get("capacitance", "0"))) * cap_pf
        elif direction == "output":
            outputs.append(pname)
            if "function" in pg.attrs:
                functions[pname] = str(pg.attrs["function"]).strip()
        arcs[pname] += [_arc(tg, templates, cap_pf, time_ns) for tg in pg.find("timing")]
    return Cell(
        cg.args[0],
        float(str(cg.attrs.get("area", "0"))),
        inputs,
        tuple(outputs),
        {k: tuple(v) for k, v in arcs.items() if v},
        bool(cg.find("ff") or cg.find("latch") or cg.find("ff_bank")),
        functions,
    )


def _cap_unit_pf(lib: Group) -> float:
    cap = lib.attrs.get("capacitive_load_unit", ("1", "pf"))
    if isinstance(cap, str):
        cap = tuple(cap.split())
    cap_pf = float(cap[0]) * {"pf": 1.0, "ff": 1e-3}.get(str(cap[1]).lower(), math.nan)
    if math.isnan(cap_pf):
        raise LibertyError(f"unsupported capacitive_load_unit {cap}")
    return cap_pf


def load(path: str | Path) -> Library:
    """Read a Liberty file: cell areas, pin capacitances, timing arcs (NLDM tables)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise LibertyError(f"cannot read Liberty file {path}: {e}") from e
    lib = parse(text)
    time_ns = _unit(str(lib.attrs.get("time_unit", "1ns")), {"ns": 1.0, "ps": 1e-3}, "time_unit")
    cap_pf = _cap_unit_pf(lib)
    templates = {g.args[0]: g for g in lib.groups if g.kind.endswith("template") and g.args}
    cells = {cg.args[0]: _cell(cg, templates, cap_pf, time_ns) for cg in lib.find("cell")}
    if not cells:
        raise LibertyError(f"{path}: no cells found")
    return Library(str(lib.args[0]) if lib.args else path.stem, cells, time_ns, cap_pf)
