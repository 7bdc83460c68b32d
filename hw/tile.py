"""The accelerator tile: a lean systolic array, K-tile accumulation and the requantizer behind
four AXI4-Stream ports, to drop into an FPGA or SoC design as one module.

Ports (besides ``clk`` and ``rst``, synchronous, active high), each with ``tdata``,
``tvalid``, ``tready`` and ``tlast``, byte-aligned ``tdata``:

- ``s_axis_weights``: one beat per array row, ``cols`` weight codes (column c at bits
  ``[c*b, (c+1)*b)``, zero-padded to whole bytes); ``rows`` beats load a pass; ``tlast`` on
  the last beat of a job's **last** pass (0 on the other passes' beats);
- ``s_axis_act``: one beat per token, ``rows`` int8 activations (row r in byte r);
  ``tlast`` on the pass's last token;
- ``s_axis_params``: one beat per column, ``M`` (uint32, bits 0..31) and ``sh`` (uint8, bits
  32..39) of ``golden.requantize``; ``cols`` beats per job (``tlast`` on the last);
- ``m_axis_out``: one beat per token of a job, ``cols`` int8 outputs (column c in byte c),
  ``tlast`` on the job's last token.

A **job** is one tile of outputs (``cols`` of them) for up to ``depth`` tokens: its params,
then one **pass** per K-tile of ``rows`` inputs (weights, then the tokens' activations). The
first pass of a job writes each token's tile sum into the accumulator memory (``depth``
entries of ``cols`` accumulators of ``acc_width`` bits), the later passes add to it, and the
last pass (the one whose weights carry ``tlast``) sends ``accumulator + tile sum`` through the
requantizer instead. ``golden.schedule`` turns a linear layer into exactly this stream of
beats (and gives the expected outputs); the protocol is described there once.

Flow control: weights are taken only between passes (once a pass's ``rows`` beats are in,
``s_axis_weights_tready`` stays low until its last token is in and the array has drained,
``array latency`` cycles later: a pass costs ``rows + tokens + latency`` cycles at full
rate), activations only while a pass is loaded, params only while the params bank is free
(one bank, freed when the job's last token enters the requantizer: with short jobs and
``cols`` above ``rows + latency`` the params beats set the pace). A pass longer than
``depth`` tokens ends at ``depth`` tokens (the next beats belong to the next pass). A job's
last pass waits for its params. Any gap pattern of ``tvalid``/``tready`` gives the same
outputs. ``m_axis_out_tready`` reaches every input ``tready`` combinationally (through the
requantizer's and the array's global advance, as AXI4-Stream allows); put a register slice
on the ports if that path limits the clock.

Inside: :class:`hw.lean.LeanSystolicArray` (the efficient default: per-row psum widths, K
summed outside, shared row multiples, ``hw.DEFAULT_LANES`` weights per PE), then one
accumulate stage reading the memory (a synchronous read port: block RAM on an FPGA), then
:class:`hw.requant.Requantizer`. Latency from an activation beat of the last pass to its
output: the array's latency + 2.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import Format
from golden.contract import M_BITS, SH_BITS

from .lean import DEFAULT_ARCH, LeanSystolicArray
from .params import (
    HwError,
    act_format_of,
    check_count,
    constructing,
    resolve_acc_width,
    weight_format_of,
)
from .requant import OUT_WIDTH, Requantizer

#: The AXI4-Stream ports of the tile, in the order the sidecar lists them: name -> direction
#: seen from the tile.
AXIS_PORTS = {
    "s_axis_weights": "in",
    "s_axis_act": "in",
    "s_axis_params": "in",
    "m_axis_out": "out",
}
#: Tokens per pass (entries of the accumulator memory) by default: one 512-token window.
DEFAULT_DEPTH = 512
#: Width of the params beat's fields (M as uint32, sh as uint8: byte-aligned).
PARAM_M_BITS, PARAM_SH_BITS = 32, 8


def _bytes(bits: int) -> int:
    return -(-bits // 8)


class Tile(wiring.Component):
    """The tile (see the module docstring): ``rows`` x ``cols`` array + accumulators + requant.

    Args:
        rows, cols: the array (``rows`` = K inputs per pass, ``cols`` = outputs per job).
        weight_format, act_format: formats (activations: int8).
        depth: tokens per pass (accumulator memory entries).
        acc_width / k_max: the K-tile accumulators' width, or the largest K they must hold
            (``golden.acc_width_for``), as for the other blocks.
        style, lanes: the array's PE style and weights per PE (lean defaults).
    """

    design = "tile"

    def __init__(
        self,
        rows: int = 8,
        cols: int = 8,
        weight_format: Format | str = "dint4",
        act_format: Format | str = "int8",
        depth: int = DEFAULT_DEPTH,
        acc_width: int | None = None,
        k_max: int | None = None,
        style: str | None = None,
        lanes: int | None = None,
    ):
        with constructing(self):
            self.rows = check_count("rows", rows, maximum=256)
            self.cols = check_count("cols", cols, maximum=256)
            self.weight_format = weight_format_of(weight_format)
            self.act_format = act_format_of(act_format)
            if self.act_format.bits != 8:
                raise HwError(
                    f"the tile's s_axis_act carries int8 activations (a byte per row); "
                    f"got {self.act_format.name}: use int8"
                )
            self.depth = check_count("depth (tokens per pass)", depth, maximum=65536)
            wf, af = self.weight_format, self.act_format
            self.acc_width = resolve_acc_width(acc_width, k_max, af, wf, rows, "one pass (rows)")
            self.k_max = k_max
            # Built here so that its parameter checks (style, lanes) run before anything else.
            self.array = LeanSystolicArray(
                rows, cols, wf, af, arch=DEFAULT_ARCH, style=style, lanes=lanes
            )
            if self.array.acc_width > self.acc_width:
                raise HwError(
                    f"acc_width={self.acc_width} cannot hold one pass's tile sum "
                    f"({self.array.acc_width} bits for rows={rows}); widen it or raise k_max"
                )
            self.requant = Requantizer(cols, self.acc_width)
            self.latency = self.array.latency + 1 + self.requant.latency
        b = wf.bits
        w_bits = 8 * _bytes(cols * b)
        w_fields = {"w": data.ArrayLayout(unsigned(b), cols)}
        if w_bits > cols * b:
            w_fields["pad"] = unsigned(w_bits - cols * b)
        self.layouts = {
            "s_axis_weights": data.StructLayout(w_fields),
            "s_axis_act": data.StructLayout({"a": data.ArrayLayout(signed(8), rows)}),
            "s_axis_params": data.StructLayout(
                {"M": unsigned(PARAM_M_BITS), "sh": unsigned(PARAM_SH_BITS)}
            ),
            "m_axis_out": data.StructLayout({"y": data.ArrayLayout(signed(OUT_WIDTH), cols)}),
        }
        members = {}
        for name, direction in AXIS_PORTS.items():
            fwd, back = (In, Out) if direction == "in" else (Out, In)
            members[f"{name}_tdata"] = fwd(self.layouts[name])
            members[f"{name}_tvalid"] = fwd(1)
            members[f"{name}_tready"] = back(1)
            members[f"{name}_tlast"] = fwd(1)
        super().__init__(members)

    # ---- what the sidecar says ---------------------------------------------------------

    def parameters(self) -> dict:
        return {
            "rows": self.rows,
            "cols": self.cols,
            "depth": self.depth,
            "acc_width": self.acc_width,
            "k_max": self.k_max,
            "array": self.array.parameters(),
            "array_latency": self.array.latency,
            "requant_latency": self.requant.latency,
            "axis": self.axis_layout(),
        }

    def stream_ports(self) -> dict:
        """The sidecar's ``streams``: AXI4-Stream port names (with ``last``) by stream."""
        return {
            name: {
                "direction": direction,
                "valid": f"{name}_tvalid",
                "ready": f"{name}_tready",
                "payload": f"{name}_tdata",
                "last": f"{name}_tlast",
            }
            for name, direction in AXIS_PORTS.items()
        }

    def axis_layout(self) -> dict:
        """Byte layout and beat counts of every stream, for an integrator (also in the sidecar)."""
        b, R, C = self.weight_format.bits, self.rows, self.cols
        return {
            "s_axis_weights": {
                "tdata_bytes": _bytes(C * b),
                "layout": f"code of column c at bits [{b}*c, {b}*c+{b}), c = 0..{C - 1}"
                + (", zero padding above" if _bytes(C * b) * 8 > C * b else ""),
                "beats": f"{R} per pass (beat r = K index k0 + r)",
                "tlast": f"on beat {R - 1} of a job's last pass only",
            },
            "s_axis_act": {
                "tdata_bytes": R,
                "layout": f"int8 activation of K index k0 + r in byte r, r = 0..{R - 1}",
                "beats": f"one per token, at most {self.depth} per pass",
                "tlast": "on the pass's last token",
            },
            "s_axis_params": {
                "tdata_bytes": (PARAM_M_BITS + PARAM_SH_BITS) // 8,
                "layout": "M (uint32, < 2**31) in bytes 0..3, sh (uint8, 1..63) in byte 4",
                "beats": f"{C} per job (column 0 first)",
                "tlast": f"on beat {C - 1}",
            },
            "m_axis_out": {
                "tdata_bytes": C,
                "layout": f"int8 output of column c in byte c, c = 0..{C - 1}",
                "beats": "one per token of a job",
                "tlast": "on the job's last token",
            },
        }

    # ---- hardware ----------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        R, C, D, A = self.rows, self.cols, self.depth, self.acc_width
        array, rq = self.array, self.requant
        m.submodules.array, m.submodules.requant = array, rq

        # ---- params bank: a shift register of C (M, sh) pairs ---------------------------
        bank_M = [Signal(unsigned(M_BITS), name=f"bank_M_{c}") for c in range(C)]
        bank_sh = [Signal(unsigned(SH_BITS), name=f"bank_sh_{c}") for c in range(C)]
        p_count = Signal(range(C + 1))
        p_full = Signal()
        release = Signal()
        m.d.comb += [p_full.eq(p_count == C), self.s_axis_params_tready.eq(~p_full)]
        p_take = Signal()
        m.d.comb += p_take.eq(self.s_axis_params_tvalid & ~p_full)
        with m.If(p_take):
            m.d.sync += [
                bank_M[C - 1].eq(self.s_axis_params_tdata.M[:M_BITS]),
                bank_sh[C - 1].eq(self.s_axis_params_tdata.sh[:SH_BITS]),
                p_count.eq(p_count + 1),
            ]
            for c in range(C - 1):
                m.d.sync += [bank_M[c].eq(bank_M[c + 1]), bank_sh[c].eq(bank_sh[c + 1])]
        with m.If(release):
            m.d.sync += p_count.eq(0)

        # ---- weights: R beats load a pass; the last one's tlast marks the job's last pass --
        w_row = Signal(range(R), name="w_row")
        loaded = Signal()  # a pass's weights are in; its activations are being taken
        next_first = Signal(init=1)  # the next pass starts a job
        pass_first, pass_last = Signal(), Signal()
        m.d.comb += [
            array.w_in.payload.eq(self.s_axis_weights_tdata.w),
            array.w_in.valid.eq(self.s_axis_weights_tvalid & ~loaded),
            self.s_axis_weights_tready.eq(array.w_in.ready & ~loaded),
        ]
        w_take = Signal()
        m.d.comb += w_take.eq(array.w_in.valid & array.w_in.ready)
        with m.If(w_take):
            m.d.sync += w_row.eq(Mux(w_row == R - 1, 0, w_row + 1))
            with m.If(w_row == R - 1):
                last = self.s_axis_weights_tlast
                m.d.sync += [
                    loaded.eq(1),
                    pass_first.eq(next_first),
                    pass_last.eq(last),
                    next_first.eq(last),
                ]

        # ---- activations: taken while a pass is loaded; tlast (or depth) ends the pass -----
        t_in = Signal(range(D), name="t_in")
        t_end = Signal(range(D), name="t_end")  # index of the pass's last token
        ended = Signal()  # the pass's last token is in (its outputs may still be in flight)
        m.d.comb += [
            array.a_in.payload.a.eq(self.s_axis_act_tdata.a),
            array.a_in.valid.eq(self.s_axis_act_tvalid & loaded),
            self.s_axis_act_tready.eq(array.a_in.ready & loaded),
        ]
        a_take = Signal()
        m.d.comb += a_take.eq(array.a_in.valid & array.a_in.ready)
        with m.If(a_take):
            m.d.sync += t_in.eq(t_in + 1)
            with m.If(self.s_axis_act_tlast | (t_in == D - 1)):
                m.d.sync += [loaded.eq(0), ended.eq(1), t_end.eq(t_in), t_in.eq(0)]

        # ---- array outputs: token index, and whether it is the pass's last --------------
        t_out = Signal(range(D), name="t_out")
        out_last = Signal()
        m.d.comb += out_last.eq(ended & (t_out == t_end))
        s_advance = Signal()
        m.d.comb += array.o.ready.eq(s_advance)
        o_take = Signal()
        m.d.comb += o_take.eq(array.o.valid & s_advance)
        with m.If(o_take):
            m.d.sync += t_out.eq(t_out + 1)
            with m.If(out_last):
                m.d.sync += [t_out.eq(0), ended.eq(0)]

        # ---- accumulate stage: memory read issued with the beat, added a cycle later -----
        acc_shape = data.ArrayLayout(signed(A), C)
        mem = Memory(shape=acc_shape, depth=D, init=[])
        m.submodules.acc_mem = mem
        wp = mem.write_port()
        rp = mem.read_port(domain="sync")
        s_valid = Signal()
        s_sum = Signal(data.ArrayLayout(signed(array.acc_width), C))
        s_t = Signal(range(D))
        s_first, s_emit, s_last_token = Signal(), Signal(), Signal()
        m.d.comb += [rp.addr.eq(t_out), rp.en.eq(s_advance)]
        with m.If(s_advance):
            m.d.sync += [
                s_valid.eq(array.o.valid),
                s_sum.eq(array.o.payload),
                s_t.eq(t_out),
                s_first.eq(pass_first),
                s_emit.eq(pass_last),
                s_last_token.eq(out_last),
            ]
        acc = Signal(acc_shape)
        for c in range(C):
            m.d.comb += acc[c].eq(Mux(s_first, 0, rp.data[c]) + s_sum[c])
        rq_take = Signal()
        m.d.comb += [
            s_advance.eq(~s_valid | ~s_emit | (rq.i.ready & p_full)),
            wp.addr.eq(s_t),
            wp.data.eq(acc),
            wp.en.eq(s_valid & ~s_emit),
            rq.i.valid.eq(s_valid & s_emit & p_full),
            rq_take.eq(rq.i.valid & rq.i.ready),
            release.eq(rq_take & s_last_token),
        ]
        for c in range(C):
            m.d.comb += [
                rq.i.payload.acc[c].eq(acc[c]),
                rq.i.payload.M[c].eq(bank_M[c]),
                rq.i.payload.sh[c].eq(bank_sh[c]),
            ]

        # ---- output: the requantizer's register, and tlast beside it --------------------
        y_last = Signal()
        with m.If(rq.i.ready):  # the requantizer's own advance (latency 1, no pipeline)
            m.d.sync += y_last.eq(s_last_token)
        m.d.comb += [
            self.m_axis_out_tdata.y.eq(rq.o.payload),
            self.m_axis_out_tvalid.eq(rq.o.valid),
            rq.o.ready.eq(self.m_axis_out_tready),
            self.m_axis_out_tlast.eq(y_last),
        ]
        return m
