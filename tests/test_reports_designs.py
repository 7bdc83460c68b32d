"""The report's designs: the registry's points, built, have the widths the fairness rule says.

The accumulator width is checked on what is built (the exported Verilog of every MAC, the
output ports of every dot product and systolic array), not on the registry's arithmetic, and
the expected width comes from golden: a registry that ignored its rule, or a generator that
ignored the width it was given, fails here.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

import golden
import hw
from reports import flows, runner, scope
from reports.__main__ import parse_sizes

#: DESIGN's equal-width rule: every format gets the INT8 x INT8 accumulator for K = ACC_K.
EQUAL_WIDTH = golden.acc_width_for(hw.ACC_K, "int8", "int8")


def _built(point: hw.DesignPoint):
    """``point``'s component, not elaborated (a 16 x 16 array takes ~40 s to elaborate), so
    Amaranth's "created but never used" warning is silenced on it, as hw.params does."""
    block = point.build()
    block._MustUse__silence = True
    return block


def _output_width(component) -> int:
    """Width of what a block accumulates: its ``acc`` port, or the elements of stream ``o``."""
    members = component.signature.members
    if "acc" in members:
        return Shape.cast(members["acc"].shape).width
    payload = members["o"].signature.members["payload"].shape
    elem = payload.elem_shape if isinstance(payload, data.ArrayLayout) else payload
    return Shape.cast(elem).width


def test_every_exported_mac_has_the_equal_width(tmp_path):
    points = hw.report_points(levels=("mac",))
    assert {p.weight_format for p in points} == set(hw.REPORT_FORMATS)
    assert {p.acc_rule for p in points} == set(hw.ACC_RULES)  # both rules, side by side
    for point in [p for p in points if p.acc_rule == "equal"]:
        verilog, top = runner.export(point, tmp_path / point.name)
        m = re.search(r"output\s+(?:signed\s+)?\[(\d+):0\]\s+acc;", verilog.read_text())
        assert m is not None, f"{top}: no acc output in the Verilog"
        assert int(m.group(1)) + 1 == EQUAL_WIDTH, point.name
        sidecar = verilog.with_suffix(".json").read_text()
        assert f'"acc_width": {EQUAL_WIDTH},' in sidecar, point.name


@pytest.mark.parametrize("level", ["dot", "systolic"])
def test_every_array_is_built_with_the_equal_width(level):
    points = hw.report_points(levels=(level,))
    assert {p.size for p in points} == set(hw.REPORT_SIZES[level])
    for point in points:
        block = _built(point)
        if point.sums_k_outside:  # a lean array's output is the tile sum, by need
            want = golden.min_acc_width(point.rows, "int8", point.weight_format)
            assert _output_width(block) == want == block.parameters()["acc_width"], point.name
            continue
        assert _output_width(block) == EQUAL_WIDTH, point.name
        assert block.parameters()["acc_width"] == EQUAL_WIDTH, point.name


def test_the_width_comes_from_the_rule():
    """A dint4 MAC sized by need is narrower; INT8 needs exactly the equal width."""
    for fmt in hw.REPORT_FORMATS:
        need = replace(hw.DesignPoint("mac", fmt), acc_rule="need")
        want = golden.acc_width_for(hw.ACC_K, "int8", fmt)
        assert _output_width(_built(need)) == want
        assert want <= EQUAL_WIDTH  # the equal width holds every format's sum
    dint4 = replace(hw.DesignPoint("mac", "dint4", "shiftadd"), acc_rule="need")
    assert _output_width(_built(dint4)) < EQUAL_WIDTH
    int8 = replace(hw.DesignPoint("mac", "int8"), acc_rule="need")
    assert _output_width(_built(int8)) == EQUAL_WIDTH


def test_multiplier_unit_has_the_product_width():
    for point in hw.report_points(levels=("mul",)):
        block = _built(point)
        want = golden.product_width(point.act_format, point.weight_format)
        assert Shape.cast(block.signature.members["product"].shape).width == want


def test_report_names_are_unique_and_include_the_baseline():
    points = hw.report_points()
    names = [p.name for p in points]
    assert len(names) == len(set(names))  # work dirs and pool jobs are keyed by name
    only = hw.report_points(levels=("mac",), formats=("dint4",))
    assert {p.weight_format for p in only} == {hw.BASELINE_FORMAT, "dint4"}


def test_default_scope():
    assert set(scope.DEFAULT_TARGET_LEVELS) == set(flows.TARGETS)
    assert set(scope.KEY_FORMATS) <= set(hw.REPORT_FORMATS)
    labels = list(dict.fromkeys(p.level_label for p in hw.report_points()))
    assert list(scope.ALL_LEVELS) == labels
    for levels in scope.DEFAULT_TARGET_LEVELS.values():
        assert set(levels) <= set(labels)
    mac = hw.DesignPoint("mac", "dint4_0.25", "shiftadd")
    assert scope.default_targets(mac, flows.TARGETS) == ("cmos", "osu018")  # FPGA: key only
    big = hw.DesignPoint("systolic", "dint4", "shiftadd", size=max(hw.REPORT_SIZES["systolic"]))
    assert scope.default_targets(big, flows.TARGETS) == ("cmos", "osu018")
    big_variant = replace(big, weight_format="dint4_0.75")
    assert scope.default_targets(big_variant, flows.TARGETS) == ()


def test_sizes_argument():
    assert parse_sizes(["dot=8", "systolic=4,8"]) == {"dot": (8,), "systolic": (4, 8)}
    with pytest.raises(ValueError, match="unknown level 'fft'"):
        parse_sizes(["fft=4"])
    with pytest.raises(ValueError, match="LEVEL=N"):
        parse_sizes(["dot"])
