"""The Liberty power data of a cell library, and Liberty Boolean functions
(:mod:`reports.power` computes energy with them; its docstring states the rules).

:func:`load_power` reads each cell's ``internal_power`` groups, leakage and units;
:func:`function`, :func:`probability` and :func:`sensitivity` evaluate the cells' Liberty
functions (the transition-density weights of :mod:`reports.power`).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import liberty
from .liberty import LibertyError, Library, Table

# ---- Liberty power data -------------------------------------------------------------------


@dataclass(frozen=True)
class InternalPower:
    """One ``internal_power`` group: energy (pJ) per rise / fall transition of ``pin``."""

    pin: str
    related_pin: str  # "" for an input pin's own (passive) power
    when: str
    rise: Table | None
    fall: Table | None

    def energy(self, load_pf: float, slew_rise_ns: float, slew_fall_ns: float) -> float:
        """Mean of the rise and fall energies (pJ) per toggle, each at its own input slew."""
        vals = [
            t(load_pf, s)
            for t, s in ((self.rise, slew_rise_ns), (self.fall, slew_fall_ns))
            if t is not None
        ]
        return sum(vals) / len(vals) if vals else 0.0


@dataclass(frozen=True)
class CellPower:
    name: str
    leakage_nw: float
    internal: dict[str, tuple[InternalPower, ...]]  # pin -> groups
    clock_pins: frozenset[str]


@dataclass(frozen=True)
class PowerLibrary:
    """The power view of a Liberty file, on top of its timing view :attr:`timing`."""

    timing: Library
    cells: dict[str, CellPower]
    voltage: float  # V
    energy_unit_pj: float  # one internal-power table unit, in pJ
    leakage_unit_nw: float
    units: dict[str, str] = field(default_factory=dict)  # the Liberty's own unit strings


_VOLT = {"v": 1.0, "mv": 1e-3}
_POWER_NW = {"w": 1e9, "mw": 1e6, "uw": 1e3, "nw": 1.0, "pw": 1e-3, "fw": 1e-6}


def _rescaled(t: Table | None, factor: float) -> Table | None:
    if t is None:
        return None
    return Table(t.load, t.slew, tuple(tuple(v * factor for v in row) for row in t.values))


def load_power(path: str | Path) -> PowerLibrary:
    """Read the power data of a Liberty file (see the module docstring for the rules)."""
    path = Path(path)
    timing = liberty.load(path)
    lib = liberty.parse(path.read_text(errors="replace"))
    a = lib.attrs
    volt_v = liberty._unit(str(a.get("voltage_unit", "1V")), _VOLT, "voltage_unit")
    leak_nw = liberty._unit(str(a.get("leakage_power_unit", "1nW")), _POWER_NW, "power unit")
    energy_pj = timing.cap_unit_pf * volt_v**2
    voltage = float(str(a.get("nom_voltage", "nan")))
    default_oc = str(a.get("default_operating_conditions", ""))
    for oc in lib.find("operating_conditions"):
        if oc.args and oc.args[0] == default_oc and "voltage" in oc.attrs:
            voltage = float(str(oc.attrs["voltage"]))
    voltage *= volt_v
    if not math.isfinite(voltage):
        raise LibertyError(f"{path}: no nom_voltage or operating-condition voltage")
    templates = {g.args[0]: g for g in lib.groups if g.kind.endswith("template") and g.args}
    # _table scales table values by the time unit (delay tables); energy wants its own unit
    scale = energy_pj / timing.time_unit_ns

    def table(g: liberty.Group | None) -> Table | None:
        if g is None:
            return None
        return _rescaled(
            liberty._table(g, templates, timing.cap_unit_pf, timing.time_unit_ns), scale
        )

    cells = {}
    for cg in lib.find("cell"):
        internal: dict[str, list[InternalPower]] = defaultdict(list)
        clocks = set()
        for pg in cg.find("pin") + [p for b in cg.find("bus") for p in b.find("pin")]:
            pin = pg.args[0]
            if str(pg.attrs.get("clock", "false")).lower() == "true":
                clocks.add(pin)
            for ig in pg.find("internal_power"):
                rise = next(iter(ig.find("rise_power")), None)
                fall = next(iter(ig.find("fall_power")), None)
                both = next(iter(ig.find("power")), None)
                internal[pin].append(
                    InternalPower(
                        pin,
                        str(ig.attrs.get("related_pin", "")),
                        str(ig.attrs.get("when", "")),
                        table(rise or both),
                        table(fall or both),
                    )
                )
        cells[cg.args[0]] = CellPower(
            cg.args[0],
            _leakage(cg, a) * leak_nw,
            {k: tuple(v) for k, v in internal.items()},
            frozenset(clocks),
        )
    units = {
        k: " ".join(v) if isinstance(v, tuple) else str(v)
        for k, v in a.items()
        if k.endswith("_unit")
    }
    return PowerLibrary(timing, cells, voltage, energy_pj, leak_nw, units)


def _leakage(cg: liberty.Group, lib_attrs) -> float:
    """The cell's leakage in ``leakage_power_unit`` (rule: module docstring)."""
    if "cell_leakage_power" in cg.attrs:
        return float(str(cg.attrs["cell_leakage_power"]))
    groups = cg.find("leakage_power")
    cond = [g for g in groups if "when" in g.attrs]
    if cond:
        return sum(
            float(str(g.attrs.get("value", 0))) * probability(str(g.attrs["when"])) for g in cond
        )
    if groups:
        return sum(float(str(g.attrs.get("value", 0))) for g in groups)
    return float(str(lib_attrs.get("default_cell_leakage_power", 0)))


# ---- Boolean functions (Liberty syntax) ---------------------------------------------------

_FTOK = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.\[\]]*|[01]|[!'^*&+|()])")


@dataclass(frozen=True)
class Function:
    """A Liberty Boolean ``function`` / ``when``: ``!``/``'`` NOT, ``^`` XOR, ``*``/``&``/space
    AND, ``+``/``|`` OR (in that precedence)."""

    text: str
    variables: tuple[str, ...]
    code: object

    def __call__(self, env: dict[str, bool]) -> bool:
        return bool(eval(self.code, {}, {"e": env}))  # our own translation: names are quoted


_FUNCTIONS: dict[str, Function] = {}


def function(text: str) -> Function:
    """Parse (and cache) a Liberty Boolean expression."""
    if text in _FUNCTIONS:
        return _FUNCTIONS[text]
    toks: list[str] = []
    pos = 0
    src = text.strip()
    while pos < len(src):
        m = _FTOK.match(src, pos)
        if not m:
            raise LibertyError(f"cannot parse Boolean function {text!r}")
        tok = m.group(1)
        ends = toks and (toks[-1] in (")", "'") or toks[-1][0].isalnum() or toks[-1][0] == "_")
        starts = tok in ("(", "!") or tok[0].isalnum() or tok[0] == "_"
        if ends and starts:
            toks.append("&")  # AND by juxtaposition
        toks.append(tok)
        pos = m.end()
    i = 0
    names: list[str] = []

    def peek() -> str | None:
        return toks[i] if i < len(toks) else None

    def binary(sub, ops, join):
        nonlocal i
        left = sub()
        while peek() in ops:
            i += 1
            left = f"({left} {join} {sub()})"
        return left

    def unary() -> str:
        nonlocal i
        tok = peek()
        if tok is None:
            raise LibertyError(f"Boolean function {text!r} ends early")
        i += 1
        if tok == "!":
            return f"(not {unary()})"
        if tok == "(":
            out = expr()
            if peek() != ")":
                raise LibertyError(f"unbalanced parentheses in {text!r}")
            i += 1
        elif tok in ("0", "1"):
            out = "True" if tok == "1" else "False"
        elif tok[0].isalpha() or tok[0] == "_":
            if tok not in names:
                names.append(tok)
            out = f"e[{tok!r}]"
        else:
            raise LibertyError(f"unexpected {tok!r} in Boolean function {text!r}")
        while peek() == "'":
            i += 1
            out = f"(not {out})"
        return out

    def expr() -> str:
        return binary(lambda: binary(lambda: binary(unary, ("^",), "!="), ("*", "&"), "and"),
                      ("+", "|"), "or")  # fmt: skip

    py = expr()
    if i != len(toks):
        raise LibertyError(f"cannot parse Boolean function {text!r} near {toks[i:]}")
    f = Function(text, tuple(names), compile(py, "<liberty function>", "eval"))
    _FUNCTIONS[text] = f
    return f


def _assignments(variables):
    for bits in itertools.product((False, True), repeat=len(variables)):
        yield dict(zip(variables, bits, strict=True))


@functools.cache
def probability(text: str) -> float:
    """P(expression is true) with independent variables at probability 0.5."""
    f = function(text)
    n = 0
    for env in _assignments(f.variables):
        n += f(env)
    return n / 2 ** len(f.variables)


@functools.cache
def sensitivity(text: str, pin: str) -> float:
    """P(∂f/∂pin): the probability, with the other variables at 0.5, that ``pin`` toggling
    toggles ``f`` (1.0 when ``f`` does not name ``pin``, e.g. a flip-flop's clock)."""
    f = function(text)
    if pin not in f.variables:
        return 1.0
    others = [v for v in f.variables if v != pin]
    n = 0
    for env in _assignments(others):
        n += f({**env, pin: False}) != f({**env, pin: True})
    return n / 2 ** len(others)
