"""Every stream block's ``latency`` attribute (exported in the sidecar) is the measured one."""

from __future__ import annotations

import pytest

from hw.designs import build_design
from hw.testing import simulate

CASES = [
    ("dot", {"lanes": 2, "pipeline": False}),
    ("dot", {"lanes": 2, "pipeline": True}),
    ("requant", {"lanes": 1, "pipeline": False}),
    ("requant", {"lanes": 2, "pipeline": True}),
    ("systolic", {"rows": 1, "cols": 1, "arch": "classic"}),
    ("systolic", {"rows": 2, "cols": 3, "arch": "classic"}),
    ("systolic", {"rows": 3, "cols": 1, "arch": "classic"}),
    ("systolic", {"rows": 2, "cols": 3, "arch": "lean"}),
    ("systolic", {"rows": 3, "cols": 2, "arch": "lean-col"}),
]


@pytest.mark.parametrize("design, sizes", CASES)
def test_latency_matches_attribute(design, sizes):
    width = {} if sizes.get("arch") == "lean" else {"k_max": 8}  # lean: the tile sum
    dut = build_design(design, "dint4", **width, **sizes)
    inp = dut.a_in if design == "systolic" else dut.i
    seen = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        if design == "dot":
            ctx.set(inp.payload.last, 1)
        if design == "requant":
            for lane in range(sizes["lanes"]):
                ctx.set(inp.payload.sh[lane], 1)
        ctx.set(inp.valid, 1)
        if hasattr(dut, "psum_in"):
            ctx.set(dut.psum_in.valid, 1)
        for cycle in range(40):
            _, _, ready, out_valid = await ctx.tick().sample(inp.ready, dut.o.valid)
            if out_valid:
                seen["out"] = cycle
                return
            if ready and "in" not in seen:
                seen["in"] = cycle
                ctx.set(inp.valid, 0)

    simulate(dut, tb)
    assert seen["out"] - seen["in"] == dut.latency
