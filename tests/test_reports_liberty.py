"""Liberty parser, NLDM table look-up and static timing on hand-made libraries and netlists."""

from __future__ import annotations

import math

import pytest

from reports import liberty, sta

TINY_LIB = r"""
/* a two-cell library with round numbers */
library(tiny) {
  time_unit : "1ns";
  capacitive_load_unit (1,pf);
  lu_table_template(delay2) {
    variable_1 : total_output_net_capacitance;
    variable_2 : input_net_transition;
    index_1 ("1000, 1001");
    index_2 ("1000, 1001");
  }
  lu_table_template(setup2) {
    variable_1 : related_pin_transition;
    variable_2 : constrained_pin_transition;
    index_1 ("1000, 1001");
    index_2 ("1000, 1001");
  }
  cell (INV) {
    area : 2;
    pin(A) { direction : input; capacitance : 0.01; }
    pin(Y) {
      direction : output;
      function : "(!A)";
      timing() {
        related_pin : "A";
        timing_sense : negative_unate;
        cell_rise(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ( \
            "1.0, 2.0", \
            "3.0, 4.0"); }
        cell_fall(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.5, 0.6", "0.7, 0.8"); }
        rise_transition(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.1, 0.1", "0.1, 0.1"); }
        fall_transition(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.1, 0.1", "0.1, 0.1"); }
      }
    }
  }
  cell (BUF) {
    area : 3;
    pin(A) { direction : input; capacitance : 0.01; }
    pin(Y) {
      direction : output;
      function : "A";
      timing() {
        related_pin : "A";
        timing_sense : positive_unate;
        cell_rise(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.2, 0.2", "0.3, 0.3"); }
        cell_fall(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.2, 0.2", "0.3, 0.3"); }
        rise_transition(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.1, 0.1", "0.1, 0.1"); }
        fall_transition(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.1, 0.1", "0.1, 0.1"); }
      }
    }
  }
  cell (DFF) {
    area : 10;
    ff (IQ, IQN) { next_state : "D"; clocked_on : "CLK"; }
    pin(CLK) { direction : input; capacitance : 0.01; clock : true; }
    pin(D) {
      direction : input;
      capacitance : 0.01;
      timing() {
        related_pin : "CLK";
        timing_type : setup_rising;
        rise_constraint(setup2) { index_1 ("0.1, 0.2"); index_2 ("0.1, 0.2");
          values ("0.2, 0.2", "0.2, 0.2"); }
        fall_constraint(setup2) { index_1 ("0.1, 0.2"); index_2 ("0.1, 0.2");
          values ("0.25, 0.25", "0.25, 0.25"); }
      }
    }
    pin(Q) {
      direction : output;
      function : "IQ";
      timing() {
        related_pin : "CLK";
        timing_type : rising_edge;
        cell_rise(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.3, 0.3", "0.3, 0.3"); }
        cell_fall(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.3, 0.3", "0.3, 0.3"); }
        rise_transition(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.1, 0.1", "0.1, 0.1"); }
        fall_transition(delay2) { index_1 ("0.01, 0.02"); index_2 ("0.1, 0.2");
          values ("0.1, 0.1", "0.1, 0.1"); }
      }
    }
  }
}
"""


@pytest.fixture
def lib(tmp_path):
    p = tmp_path / "tiny.lib"
    p.write_text(TINY_LIB)
    return liberty.load(p)


def test_cells_areas_pins(lib):
    assert set(lib.cells) == {"INV", "BUF", "DFF"}
    assert lib.cells["INV"].area == 2.0
    assert lib.cells["DFF"].sequential and not lib.cells["INV"].sequential
    assert lib.cells["INV"].inputs == {"A": 0.01}
    assert lib.cells["DFF"].outputs == ("Q",)
    assert lib.buffer.name == "BUF"
    assert lib.stage_load_pf == 0.02


def test_table_lookup_grid_midpoint_and_extrapolation(lib):
    t = lib.cells["INV"].arcs["Y"][0].cell_rise
    assert t(0.01, 0.1) == 1.0 and t(0.02, 0.2) == 4.0  # grid points are the entries
    assert t(0.015, 0.15) == pytest.approx((1.0 + 2.0 + 3.0 + 4.0) / 4)  # bilinear centre
    assert t(0.03, 0.1) == pytest.approx(5.0)  # linear beyond the last load
    assert t(0.01, 0.3) == pytest.approx(3.0)  # and beyond the last slew


def _netlist(cells, ports):
    return {"modules": {"top": {"attributes": {"top": "1"}, "ports": ports, "cells": cells}}}


def test_critical_path_input_inv_dff(lib):
    # a -> INV -> DFF.D; DFF.Q -> q. Net ids: a=2, n1=3, clk=4, q=5.
    net = _netlist(
        {
            "inv": {"type": "INV", "connections": {"A": [2], "Y": [3]}},
            "ff": {"type": "DFF", "connections": {"D": [3], "CLK": [4], "Q": [5]}},
        },
        {
            "a": {"direction": "input", "bits": [2]},
            "clk": {"direction": "input", "bits": [4]},
            "q": {"direction": "output", "bits": [5]},
        },
    )
    rep = sta.critical_path(net, lib, input_slew_ns=0.1)
    # INV drives one D pin (0.01 pF): rise 1.0 (from the input's fall), fall 0.5; the D pin's
    # setup adds 0.2 (rise) / 0.25 (fall): max(1.2, 0.75) = 1.2. Q's clock-to-Q is 0.3.
    assert rep.critical_path_ns == pytest.approx(1.2)
    assert rep.startpoint == "a" and rep.endpoint == "ff.D"
    assert rep.levels == 1 and rep.endpoints == 2 and rep.buffers == 0


def test_high_fanout_net_gets_a_buffer_tree(lib):
    n = 40  # 40 D pins: 0.4 pF, twenty times what a BUF stage may drive
    cells = {"inv": {"type": "INV", "connections": {"A": [2], "Y": [3]}}}
    for i in range(n):
        cells[f"ff{i}"] = {"type": "DFF", "connections": {"D": [3], "CLK": [4], "Q": [10 + i]}}
    ports = {
        "a": {"direction": "input", "bits": [2]},
        "clk": {"direction": "input", "bits": [4]},
    }
    rep = sta.critical_path(_netlist(cells, ports), lib)
    assert rep.buffers > 0
    unbuffered_inv = lib.cells["INV"].arcs["Y"][0].cell_rise(n * 0.01, 0.1)
    assert rep.critical_path_ns < unbuffered_inv  # buffering beats driving 0.4 pF directly
    assert math.isfinite(rep.critical_path_ns)


def test_unknown_cell_and_loop_raise(lib):
    bad = _netlist(
        {"x": {"type": "NAND9", "connections": {"A": [2], "Y": [3]}}},
        {"a": {"direction": "input", "bits": [2]}},
    )
    with pytest.raises(liberty.LibertyError, match="NAND9"):
        sta.critical_path(bad, lib)
    loop = _netlist(
        {
            "i1": {"type": "INV", "connections": {"A": [3], "Y": [4]}},
            "i2": {"type": "INV", "connections": {"A": [4], "Y": [3]}},
        },
        {"y": {"direction": "output", "bits": [3]}},
    )
    with pytest.raises(liberty.LibertyError, match="loop"):
        sta.critical_path(loop, lib)


def test_not_a_liberty_file(tmp_path):
    p = tmp_path / "x.lib"
    p.write_text("module foo; endmodule")
    with pytest.raises(liberty.LibertyError):
        liberty.load(p)


def test_falling_edge_endpoint_needs_half_a_cycle(tmp_path):
    """A falling-edge flip-flop (a clock gate's enable capture) samples half a cycle after
    the rising edge that launched its data: its endpoint time is doubled."""
    dffn = TINY_LIB[TINY_LIB.index("  cell (DFF) {") : TINY_LIB.rindex("}")]
    dffn = dffn.replace("cell (DFF)", "cell (DFFN)").replace(
        'clocked_on : "CLK"', 'clocked_on : "!CLK"'
    )
    dffn = dffn.replace("setup_rising", "setup_falling").replace("rising_edge", "falling_edge")
    p = tmp_path / "tiny_n.lib"
    p.write_text(TINY_LIB[: TINY_LIB.rindex("}")] + dffn + "}\n")
    lib_n = liberty.load(p)
    assert {a.kind for a in lib_n.cells["DFFN"].arcs["D"]} == {"setup_falling"}
    net = _netlist(
        {
            "inv": {"type": "INV", "connections": {"A": [2], "Y": [3]}},
            "ff": {"type": "DFFN", "connections": {"D": [3], "CLK": [4], "Q": [5]}},
        },
        {
            "a": {"direction": "input", "bits": [2]},
            "clk": {"direction": "input", "bits": [4]},
        },
    )
    rep = sta.critical_path(net, lib_n, input_slew_ns=0.1)
    # as test_critical_path_input_inv_dff (1.2 ns to the D pin, setup included), doubled
    assert rep.critical_path_ns == pytest.approx(2 * 1.2)
    assert rep.endpoint == "ff.D" and rep.endpoints == 1
