"""One table, three backends: numpy encode, torch encode and the RTL decoder agree.

For every registered format, every code and every rounding midpoint (and the floats
just either side of it) goes through the numpy encoder (golden), the torch encoder
(quant) and the generated hardware decoder (hw, simulated with amaranth.sim); the
decoded integer times 2**-frac_bits must equal the value the numpy encoder chose.
"""

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

import golden
from hw.decoder import WeightDecoder
from quant.qlinear import grid_of


def rtl_decode(fmt: golden.Format, codes: list[int]) -> list[int]:
    dut = WeightDecoder(fmt)
    out: list[int] = []

    async def tb(ctx):
        for code in codes:
            ctx.set(dut.code, code)
            out.append(ctx.get(dut.value))

    sim = Simulator(dut)  # combinational: no clock
    sim.add_testbench(tb)
    sim.run()
    return out


@pytest.mark.parametrize("name", sorted(golden.FORMATS))
def test_numpy_torch_rtl_agree(name):
    fmt = golden.get(name)
    sv, _, mid, _ = fmt.grid
    x = np.concatenate(
        [
            fmt.decode(np.arange(2**fmt.bits)),
            mid,
            np.nextafter(mid, -np.inf),
            np.nextafter(mid, np.inf),
        ]
    )
    np_codes = fmt.encode(x)
    torch_codes = grid_of(fmt).encode(torch.tensor(x, dtype=torch.float64)).numpy()
    assert np.array_equal(np_codes, torch_codes)
    all_codes = list(range(2**fmt.bits))
    rtl_ints = rtl_decode(fmt, all_codes)
    assert rtl_ints == list(fmt.ints)
    # what the hardware computes with, for each encoded value, is the value chosen
    rtl_values = np.asarray(rtl_ints, dtype=np.float64)[np_codes.astype(int)] * 2.0**-fmt.frac_bits
    assert np.array_equal(rtl_values, fmt.decode(np_codes))
    # and a value on the grid decodes to itself through the hardware
    on_grid = (
        np.asarray(rtl_ints, dtype=np.float64)[fmt.encode(sv).astype(int)] * 2.0**-fmt.frac_bits
    )
    assert np.array_equal(on_grid, sv)
