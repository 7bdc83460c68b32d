"""sim.configs and sim.export: what `python -m sim` verifies comes from the hw registry, real
layer tiles are read by golden.layerfile, and the exported sidecars are the registry's points
(no simulator needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import golden
import hw
from golden import layerfile
from sim import configs
from sim.export import designs_json, export_config

TILE = configs.DATA_DIR / "smollm2_layer0_q_proj_tile.npz"


def test_every_registry_point_is_verified_once_by_its_level_testbench():
    by_point = [c for c in configs.default_configs() if set(c.designs) == {"dut"}]
    assert [c.designs["dut"] for c in by_point] == hw.sim_points()
    for c in by_point:
        assert c.testbench == f"sim.tb_{c.designs['dut'].level}"
    names = [c.name for c in configs.default_configs()]
    assert len(names) == len(set(names))


def test_config_names_are_the_documented_ones():
    names = [c.name for c in configs.default_configs()]
    need = {f: golden.acc_width_for(hw.ACC_K, "int8", f) for f in golden.FORMATS}
    assert [n for n in names if n.startswith("mac-")] == [
        f"mac-{f}-{s}" for f in golden.FORMATS for s in hw.STYLES
    ] + [f"mac-{f}-{s}-a{need[f]}" for f in golden.FORMATS for s in hw.STYLES if f != "int8"]
    assert [n for n in names if n.startswith("dot-")] == [
        "dot-dint4-l16",
        "dot-dint4-l16-pipe",
        "dot-int8-l8",
        "dot-int4-l8-pipe",
        "dot-fp4_e2m1-l4",
        "dot-dint4_0.25-l8-mul",
    ]
    # Lean arrays name the architecture and options, then the style when it is not shared
    # (the lean default).
    lean = [
        name
        for arch in ("lean", "leancol")
        for name in (
            *(f"systolic-{f}-8x8-{arch}-l2" for f in golden.FORMATS),
            f"systolic-int8-8x8-{arch}-l2-mul",
        )
    ]
    options = [
        f"systolic-{f}-8x8-lean{o}"
        for o in ("", "-l4", "-l2-pipe", "-l2-r4")
        for f in ("int8", "dint4")
    ]
    assert [n for n in names if n.startswith(("systolic-", "requant-"))] == [
        "systolic-dint4-8x8",
        "systolic-dint4-4x8",
        "systolic-int8-8x4",
        "systolic-fp4_e2m1-8x8",
        *lean,
        "systolic-dint4-8x8-lean-l2-shiftadd",
        "systolic-int4-4x8-lean-shiftadd",
        *options,
        f"requant-l4-a{golden.acc_width_for(hw.ACC_K, 'int8', 'int8')}",
        "requant-l2-a48-pipe",
    ]


def test_lean_config_names_name_the_architecture_classic_names_do_not():
    for p in hw.sim_points():
        if p.level != "systolic":
            continue
        name = configs.config_name(p)
        tag = {"classic": None, "lean": "-lean", "lean-col": "-leancol"}[p.arch]
        assert ("-lean" in name) == (tag is not None), name
        if tag:
            assert f"{p.rows}x{p.columns}{tag}" in name
            assert name.endswith(f"-{p.style}") == (p.style != "shared")


def test_mac_widths_are_the_report_widths():
    # The equal-width rule: every format's MAC has the int8 x int8 width for ACC_K products,
    # the same width reports synthesize.
    width = golden.acc_width_for(hw.ACC_K, "int8", "int8")
    macs = [c.designs["dut"] for c in configs.default_configs() if c.name.startswith("mac-")]
    equal = [p for p in macs if p.acc_rule == "equal"]
    assert {(p.acc_width, p.k_max) for p in equal} == {(width, hw.ACC_K)}
    # Every MAC of the report, at both rules, is a simulated one.
    report_macs = {p.rtl_key() for p in hw.report_points(levels=("mac",))}
    assert report_macs <= {p.rtl_key() for p in macs}


def test_layer_runs_use_the_registry_layer_point_and_the_golden_tile_reader():
    random_cfg, tile_cfg = configs.layer_configs()
    assert random_cfg.name == "layer-dint4-random"
    sa, rq = hw.layer_point("dint4", configs.RANDOM_LAYER["K"])
    assert random_cfg.designs == {"sa": sa, "rq": rq}
    tile = layerfile.load(TILE).slice(layerfile.DEFAULT_TOKENS, layerfile.DEFAULT_OUTPUTS)
    t, k, n = tile.shape
    assert tile_cfg.name == f"layer-{TILE.stem}"
    assert tile_cfg.options == {"data": str(TILE)}
    assert tile_cfg.macs_hint == t * k * n
    sa, rq = hw.layer_point(tile.weight_format.name, k)
    assert tile_cfg.designs == {"sa": sa, "rq": rq}
    golden.check_acc_width(k, sa.acc_width, "int8", tile.weight_format)


def test_a_broken_layer_file_is_an_error_naming_the_field(tmp_path):
    with np.load(TILE, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["weight format"] = meta.pop("weight_format")  # the old second spelling
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(golden.FormatError, match="'weight_format' is missing"):
        configs.layer_configs(tmp_path)


def test_verified_points_lists_each_point_once():
    cfgs = configs.default_configs()
    points = configs.verified_points(cfgs + cfgs)
    assert len(points) == len(set(points))
    assert set(points) == {p for c in cfgs for p in c.designs.values()}


def test_exported_sidecar_is_the_registry_point(tmp_path):
    cfg = configs.point_config(hw.DesignPoint("mac", "int8", "mul"))
    meta = export_config(cfg, tmp_path)
    point = cfg.designs["dut"]
    assert (meta["acc_width"], meta["parameters"]["k_max"]) == (point.acc_width, point.k_max)
    assert designs_json(cfg)["dut"]["acc_width"] == point.acc_width
    assert json.loads((tmp_path / f"{cfg.top}.json").read_text())["sources"] == [f"{cfg.top}.v"]


def test_layer_export_is_a_wrapper_of_the_registry_array_and_requantizer(tmp_path):
    cfg = configs.layer_configs()[0]
    meta = export_config(cfg, tmp_path)
    assert meta["design"] == "wrapper"
    assert meta["sources"] == [f"{cfg.top}_sa.v", f"{cfg.top}_rq.v", f"{cfg.top}.v"]
    assert meta["parameters"]["sa"]["acc_width"] == cfg.designs["sa"].acc_width
    assert meta["parameters"]["rq"]["lanes"] == cfg.designs["sa"].columns
    assert {"sa_w_in", "sa_a_in", "sa_o", "rq_i", "rq_o"} <= set(meta["streams"])
