"""Read the JSON sidecar ``hw.export_verilog`` writes, and pack/unpack stream payloads.

The sidecar lists every port; a structured port (a stream payload) carries
``fields``: one leaf per struct field / array element, ``{"path", "offset",
"width", "signed"}``, with ``path`` like ``"a[3]"``, ``"first"`` or ``"[0]"``.
Leaves are grouped by the path before the last ``[i]``: ``"a[3]"`` is element 3
of group ``"a"``; a top-level array (``"[0]"``) is group ``""``.

Packing works on whole batches of vectors with precomputed offsets, so a
testbench turns its golden vectors into payload integers once, before the
simulation loop, and only assigns integers while simulating.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SimError

_ELEMENT = re.compile(r"^(?P<group>.*)\[(?P<index>\d+)\]$")


class SidecarError(SimError):
    """The sidecar does not describe what the testbench needs; the message says what is missing."""


@dataclass(frozen=True)
class Leaf:
    """One scalar field of a payload: bits ``[offset, offset + width)`` of the port."""

    path: str
    offset: int
    width: int
    signed: bool

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


@dataclass(frozen=True)
class Group:
    """The leaves of one struct field: an array (``count`` elements, in index order) or a scalar."""

    name: str
    leaves: tuple[Leaf, ...]
    is_array: bool

    @property
    def count(self) -> int:
        return len(self.leaves)


@dataclass(frozen=True)
class Payload:
    """Bit layout of one port: its groups, by name, and its total width.

    A plain (unstructured) port is one scalar group named ``""``.
    """

    port: str
    width: int
    signed: bool
    groups: dict[str, Group]

    @classmethod
    def from_port(cls, port: dict) -> Payload:
        name, width, signed = port["name"], int(port["width"]), bool(port["signed"])
        if "fields" not in port:
            return cls(name, width, signed, {"": Group("", (Leaf("", 0, width, signed),), False)})
        by_group: dict[str, dict[int, Leaf]] = {}
        scalars: dict[str, Leaf] = {}
        for f in port["fields"]:
            leaf = Leaf(f["path"], int(f["offset"]), int(f["width"]), bool(f["signed"]))
            if leaf.offset < 0 or leaf.offset + leaf.width > width:
                raise SidecarError(
                    f"port {name}: field {leaf.path} bits [{leaf.offset}, "
                    f"{leaf.offset + leaf.width}) lie outside the {width}-bit port"
                )
            m = _ELEMENT.match(leaf.path)
            if m:
                by_group.setdefault(m["group"], {})[int(m["index"])] = leaf
            else:
                scalars[leaf.path] = leaf
        groups: dict[str, Group] = {}
        for g, elems in by_group.items():
            if sorted(elems) != list(range(len(elems))):
                raise SidecarError(f"port {name}: array {g!r} has indices {sorted(elems)}")
            groups[g] = Group(g, tuple(elems[i] for i in range(len(elems))), True)
        for s, leaf in scalars.items():
            if s in groups:
                raise SidecarError(f"port {name}: {s!r} is both a scalar and an array")
            groups[s] = Group(s, (leaf,), False)
        return cls(name, width, signed, groups)

    def group(self, name: str) -> Group:
        try:
            return self.groups[name]
        except KeyError:
            raise SidecarError(
                f"port {self.port} has no field {name!r}; it has {sorted(self.groups)}"
            ) from None

    def pack(self, n: int, **values) -> list[int]:
        """Payload integers of ``n`` beats.

        Each keyword is a group name (``""`` via ``pack_root``) with an array of shape
        ``[n, count]`` (arrays) or ``[n]`` (scalars) of integer values; signed values are
        stored in two's complement. Groups not given are 0. Values outside a field's
        range raise, naming the field.
        """
        total = np.zeros(n, dtype=object)
        total[:] = 0
        for name, arr in values.items():
            g = self.group(name)
            arr = np.asarray(arr, dtype=np.int64)
            arr = arr.reshape(n, g.count) if g.is_array else arr.reshape(n, 1)
            for i, leaf in enumerate(g.leaves):
                col = arr[:, i]
                lo, hi = (
                    (-(1 << (leaf.width - 1)), (1 << (leaf.width - 1)) - 1)
                    if leaf.signed
                    else (
                        0,
                        leaf.mask,
                    )
                )
                if n and (col.min() < lo or col.max() > hi):
                    raise SidecarError(
                        f"port {self.port}: field {leaf.path} ({leaf.width} bits, "
                        f"{'signed' if leaf.signed else 'unsigned'}) cannot hold values in "
                        f"[{col.min()}, {col.max()}]"
                    )
                if leaf.width < 63:
                    bits = (col & leaf.mask).astype(object)
                else:  # the mask does not fit int64: two's complement via Python ints
                    bits = np.array([int(x) & leaf.mask for x in col], dtype=object)
                total += bits * (1 << leaf.offset)
        return [int(x) for x in total]

    def pack_root(self, arr) -> list[int]:
        """Pack a port whose payload is a top-level array or a plain value (group ``""``)."""
        arr = np.asarray(arr)
        return self.pack(arr.shape[0], **{"": arr})

    @property
    def n_words(self) -> int:
        """32-bit words of the port (Verilator's ``VlWide`` / ``IData`` layout, LSW first)."""
        return -(-self.width // 32)

    def _word_leaves(self, g: Group):
        for leaf in g.leaves:
            if leaf.width > 32:
                raise SidecarError(
                    f"port {self.port}: field {leaf.path} is {leaf.width} bits; the word "
                    "packer handles fields up to 32 bits (use pack/unpack)"
                )
            yield leaf, leaf.offset // 32, leaf.offset % 32

    def pack_words(self, n: int, **values) -> np.ndarray:
        """Like :meth:`pack`, vectorised into ``uint32[n, n_words]`` (fields up to 32 bits)."""
        out = np.zeros((n, self.n_words + 1), np.uint64)  # one spare word for straddling
        for name, arr in values.items():
            g = self.group(name)
            arr = np.asarray(arr, dtype=np.int64).reshape(n, g.count if g.is_array else 1)
            for i, (leaf, w0, sh) in enumerate(self._word_leaves(g)):
                bits = (arr[:, i] & leaf.mask).astype(np.uint64) << np.uint64(sh)
                out[:, w0] |= bits & np.uint64(0xFFFFFFFF)
                out[:, w0 + 1] |= bits >> np.uint64(32)
        return out[:, : self.n_words].astype(np.uint32)

    def unpack_words(self, words: np.ndarray, name: str = "") -> np.ndarray:
        """Like :meth:`unpack`, from ``uint32[n, n_words]`` (fields up to 32 bits), int64."""
        g = self.group(name)
        w = np.zeros((len(words), self.n_words + 1), np.uint64)
        w[:, : self.n_words] = words
        cols = []
        for leaf, w0, sh in self._word_leaves(g):
            v = ((w[:, w0] | (w[:, w0 + 1] << np.uint64(32))) >> np.uint64(sh)) & np.uint64(
                leaf.mask
            )
            v = v.astype(np.int64)
            if leaf.signed:
                v = np.where(v >= (1 << (leaf.width - 1)), v - (1 << leaf.width), v)
            cols.append(v)
        out = np.stack(cols, axis=-1)
        return out if g.is_array else out.reshape(len(words))

    def unpack(self, words, name: str = "") -> np.ndarray:
        """Values of group ``name`` in a list of payload integers: ``[n, count]`` or ``[n]``.

        Signed leaves are sign-extended. Results are int64 when every leaf is at most 63
        bits, Python ints (object array) otherwise.
        """
        g = self.group(name)
        w = np.array([int(x) for x in words], dtype=object)
        cols = []
        for leaf in g.leaves:
            v = (w >> leaf.offset) & leaf.mask
            if leaf.signed:
                v = np.where(v >= (1 << (leaf.width - 1)), v - (1 << leaf.width), v)
            cols.append(v)
        out = np.stack(cols, axis=-1) if cols and len(w) else np.zeros((len(w), g.count), object)
        if all(leaf.width <= 63 for leaf in g.leaves):
            out = out.astype(np.int64)
        return out if g.is_array else out.reshape(len(w))


@dataclass(frozen=True)
class Stream:
    """Port names of one stream (``valid``, ``ready``, ``payload``; ``last``: the ``tlast``
    port of an AXI4-Stream, ``""`` for the blocks' own streams) and its payload layout."""

    name: str
    direction: str
    valid: str
    ready: str
    payload: Payload
    last: str = ""


@dataclass(frozen=True)
class Sidecar:
    """The parts of an export's sidecar that testbenches use."""

    path: Path
    data: dict

    @classmethod
    def load(cls, path: str | Path) -> Sidecar:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise SidecarError(
                f"sidecar {path} not found; export the design with hw.export_verilog"
            ) from None
        for key in ("top", "ports", "design"):
            if key not in data:
                raise SidecarError(f"sidecar {path} has no {key!r}; is it from hw.export_verilog?")
        return cls(path, data)

    @property
    def top(self) -> str:
        return self.data["top"]

    @property
    def design(self) -> str:
        return self.data["design"]

    @property
    def verilog(self) -> Path:
        return self.path.parent / self.data["verilog"]

    @property
    def acc_width(self) -> int:
        return int(self.data["acc_width"])

    @property
    def latency(self) -> int:
        return int(self.data.get("latency") or 0)

    @property
    def parameters(self) -> dict:
        return dict(self.data.get("parameters") or {})

    @property
    def weight_format_name(self) -> str:
        wf = self.data.get("weight_format")
        if not wf:
            raise SidecarError(f"sidecar {self.path} names no weight format")
        return wf["name"]

    def port(self, name: str) -> dict:
        for p in self.data["ports"]:
            if p["name"] == name:
                return p
        raise SidecarError(
            f"{self.top}: no port {name!r}; ports are {[p['name'] for p in self.data['ports']]}"
        )

    def payload(self, port: str) -> Payload:
        return Payload.from_port(self.port(port))

    def stream(self, name: str) -> Stream:
        streams = self.data.get("streams") or {}
        if name not in streams:
            raise SidecarError(f"{self.top}: no stream {name!r}; streams are {sorted(streams)}")
        s = streams[name]
        return Stream(
            name,
            s["direction"],
            s["valid"],
            s["ready"],
            self.payload(s["payload"]),
            s.get("last", ""),
        )
