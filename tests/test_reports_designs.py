"""The report's design matrix: fairness rules (equal accumulator width, baseline variants)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from amaranth.hdl import Fragment

from golden import FormatError, acc_width_for
from reports import designs
from reports.designs import DesignSpec


def test_equal_accumulator_width_at_every_level():
    by_level = defaultdict(set)
    for spec in designs.design_matrix():
        by_level[spec.level_label].add(spec.acc_width)
    assert all(len(w) == 1 for w in by_level.values())
    # the INT8 x INT8 width: the widest any registered format needs for the same K
    want = acc_width_for(designs.ACC_K_MAX, "int8", "int8")
    for fmt in designs.DEFAULT_FORMATS:
        assert acc_width_for(designs.ACC_K_MAX, "int8", fmt) <= want
    assert by_level["mac"] == {want}


def test_matrix_variants_and_names():
    specs = designs.design_matrix()
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    v = designs.variants()
    assert ("int8", "mul", False) in v and ("int8", "mul", True) in v
    assert ("int8", "shiftadd", False) not in v  # int8 has no two-term shift-add plan
    assert ("dint4", "shiftadd", False) in v and ("fp4_e2m1", "mul", False) in v
    assert all(not booth for f, _, booth in v if f != "int8")
    # the baseline is added even when not asked for
    only = designs.design_matrix(levels=("mac",), formats=("dint4",))
    assert {s.weight_format for s in only} == {"int8", "dint4"}


def test_macs_per_cycle_and_labels():
    assert DesignSpec("dot", 16, "dint4", "shiftadd").macs_per_cycle == 16
    s = DesignSpec("systolic", 8, "dint4_0.25", "mul", False)
    assert s.macs_per_cycle == 64 and s.level_label == "sys8x8"
    assert s.name == "sys8x8_dint4_0p25_mul"


def test_bad_specs_raise():
    with pytest.raises(ValueError, match="unknown level"):
        DesignSpec("fft", 1, "int8", "mul")
    with pytest.raises(FormatError):
        DesignSpec("mac", 1, "int3", "mul")
    with pytest.raises(ValueError, match="size"):
        DesignSpec("mac", 4, "int8", "mul")


@pytest.mark.parametrize("fmt", ["int8", "dint4"])
def test_built_mac_has_the_shared_width(fmt):
    spec = DesignSpec("mac", 1, fmt, "shiftadd" if fmt == "dint4" else "mul")
    mac = spec.build()
    Fragment.get(mac, None)  # it elaborates
    assert mac.acc_width == spec.acc_width
    assert mac.weight_format.name == fmt
