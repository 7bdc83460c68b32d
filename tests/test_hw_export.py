"""Verilog export: the CLI example, the sidecar layout, Verilator lint and the Yosys check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.lib import data

import golden
from hw import (
    VERILATOR_ALLOWED_WARNINGS,
    export_verilog,
    pack_fields,
    unpack_fields,
    verilator_env,
    verilator_lint,
    verilator_warnings,
    yosys_check,
)
from hw.designs import DESIGNS, build_design
from hw.dot import DotProduct
from hw.lean import ARCHS, LEAN_STYLES

REPO = Path(__file__).resolve().parents[1]


def _verilog_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    """{name: (direction, width)} of the top module's port declarations."""
    body = text[text.index(f"module {top}(") :]
    body = body[: body.index("endmodule")]
    ports = {}
    for direction, rng, name in re.findall(
        r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M
    ):
        ports[name] = (direction, int(rng) + 1 if rng else 1)
    return ports


def test_cli_documented_mac_example(tmp_path):
    out = tmp_path / "build" / "mac_dint4.v"
    cmd = [sys.executable, "-m", "hw", "verilog", "mac", "--weight", "dint4", "--acc-width", "24"]
    cmd += ["--name", "mac_dint4", "-o", "build/mac_dint4.v"]
    r = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**verilator_env(), "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stderr
    ports = _verilog_ports(out.read_text(), "mac_dint4")
    assert ports == {
        "clk": ("input", 1),
        "rst": ("input", 1),
        "en": ("input", 1),
        "clear": ("input", 1),
        "a": ("input", 8),
        "w": ("input", 4),
        "acc": ("output", 24),
    }
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["top"] == "mac_dint4" and meta["design"] == "mac"
    assert meta["acc_width"] == 24 and meta["latency"] == 1
    assert meta["frac_bits"] == 1 and meta["weight_format"]["ints"] == list(
        golden.get("dint4").ints
    )
    assert {p["name"]: (p["direction"], p["width"], p["signed"]) for p in meta["ports"]} == {
        "clk": ("in", 1, False),
        "rst": ("in", 1, False),
        "en": ("in", 1, False),
        "clear": ("in", 1, False),
        "a": ("in", 8, True),
        "w": ("in", 4, False),
        "acc": ("out", 24, True),
    }


def test_cli_rejects_bad_input_before_writing(tmp_path):
    cmd = [sys.executable, "-m", "hw", "verilog", "mac", "--weight", "dint9", "--acc-width", "24"]
    cmd += ["--name", "m", "-o", str(tmp_path / "m.v")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "unknown format 'dint9'" in r.stderr
    cmd = [sys.executable, "-m", "hw", "verilog", "mac", "--acc-width", "8", "--name", "m", "-o"]
    r = subprocess.run(cmd + [str(tmp_path / "m.v")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "acc_width >= 12" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_sidecar_fields_pack_like_amaranth(tmp_path):
    """Packing a payload from the sidecar's field offsets gives Amaranth's own bit pattern."""
    dut = DotProduct(3, "fp4_e2m1", acc_width=20)
    meta = export_verilog(dut, "dot3", tmp_path / "dot3.v")
    port = next(p for p in meta["ports"] if p["name"] == "i__payload")
    assert meta["streams"]["i"] == {
        "direction": "in",
        "valid": "i__valid",
        "ready": "i__ready",
        "payload": "i__payload",
    }
    value = {"a": [-128, 5, 127], "w": [15, 0, 9], "first": 1, "last": 0}
    flat = {
        "a[0]": -128,
        "a[1]": 5,
        "a[2]": 127,
        "w[0]": 15,
        "w[1]": 0,
        "w[2]": 9,
        "first": 1,
        "last": 0,
    }
    packed = pack_fields(port["fields"], flat)
    layout = data.Layout.cast(dut.i.payload.shape())
    assert packed == layout.const(value).as_value().value
    assert port["width"] == layout.size == sum(f["width"] for f in port["fields"])
    assert [f["signed"] for f in port["fields"] if f["path"].startswith("a")] == [True] * 3
    assert unpack_fields(port["fields"], packed) == flat
    with pytest.raises(ValueError, match="outside"):
        pack_fields(port["fields"], {**flat, "w[1]": 16})


@pytest.mark.parametrize(
    "design, kwargs, match",
    [
        ("mac", {"lanes": 4}, "mac does not take lanes"),
        ("dot", {"rows": 2}, "dot does not take rows"),
        ("systolic", {"pipeline": True, "arch": "classic"}, "classic array takes neither"),
        ("systolic", {"style": "shared", "arch": "classic"}, "needs a lean array"),
        ("systolic", {"lanes": 3, "rows": 4}, "must divide rows"),
        ("requant", {"style": "mul"}, "requant does not take style"),
        ("fft", {}, "unknown design"),
        ("requant", {}, "acc-width"),
    ],
)
def test_build_design_rejects_options_that_do_not_apply(design, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_design(design, "dint4", **kwargs)


def test_export_refuses_bad_name_without_writing(tmp_path):
    dut = DotProduct(2, "dint4", acc_width=20)
    with pytest.raises(ValueError, match="identifier"):
        export_verilog(dut, "1bad-name", tmp_path / "x.v")
    assert list(tmp_path.iterdir()) == []
    export_verilog(dut, "good", tmp_path / "good.v")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json", "good.v"]


def _cases():
    for design in DESIGNS:
        if design == "requant":
            for pipeline in (False, True):
                yield design, "dint4", None, pipeline, None
            continue
        if design == "tile":  # the lean array inside: its styles
            for weight in ("dint4", "int8"):
                for style in LEAN_STYLES:
                    yield design, weight, style, False, None
            continue
        for weight in ("dint4", "int8"):
            for style in ("mul", "shiftadd"):
                for pipeline in (False, True) if design == "dot" else (False,):
                    yield design, weight, style, pipeline, None
    for arch in ARCHS:
        for weight in ("dint4", "int8"):
            for style in LEAN_STYLES if arch != "classic" else ("shiftadd",):
                yield "systolic", weight, style, False, arch


@pytest.mark.parametrize("design, weight, style, pipeline, arch", list(_cases()))
def test_every_design_lints_clean(tmp_path, design, weight, style, pipeline, arch):
    top = f"{design}_{weight}_{style}_{int(pipeline)}_{(arch or '').replace('-', '_')}"
    # 3 rows: the weight-load row counter is 2 bits wide (a 1-bit counter hid a lint warning)
    sizes = {"mul": {}, "mac": {}, "dot": {"lanes": 3}, "systolic": {"rows": 3, "cols": 3}}
    sizes["requant"] = {"lanes": 2}
    sizes["tile"] = {"rows": 3, "cols": 3, "depth": 5}
    extra = {"pipeline": pipeline} if design in ("dot", "requant") else {}
    if design != "requant":
        extra["style"] = style
    if design == "systolic":
        extra["arch"] = arch or "classic"
    # the multiplier alone has no accumulator; a lean array's output is the tile sum
    if design != "mul" and (arch or "classic") in ("classic", "lean-col"):
        extra["k_max"] = 6
    if design == "tile":  # K-tile accumulators for K = 7 (three passes of 3 rows)
        extra["k_max"] = 7
    dut = build_design(design, weight, **sizes[design], **extra)
    meta = export_verilog(dut, top, tmp_path / f"{top}.v")
    assert meta["top"] == top and meta["latency"] == dut.latency
    if design != "requant":  # int8 has no shift-add plan: the generic multiplier is built
        built = "shiftadd" if style == "shiftadd" and weight != "int8" else "mul"
        built = "shared" if style == "shared" else built
        params = meta["parameters"]["array"] if design == "tile" else meta["parameters"]
        assert params["multiplier"] == built
    verilator_lint(tmp_path / f"{top}.v", top)  # raises on any error or other warning
    yosys_check(tmp_path / f"{top}.v", top)  # raises on multiple drivers / comb loops


def test_allow_list_is_needed_and_sufficient(tmp_path):
    """Without waivers, the designs raise exactly the allow-listed warnings: none is spare."""
    seen = set()
    for design in ("systolic", "dot", "requant", "mac"):
        top = f"raw_{design}"
        sizes = {"mac": {}, "dot": {"lanes": 2}, "systolic": {"rows": 2, "cols": 2}}
        sizes["systolic"]["arch"] = "classic"
        sizes["requant"] = {"lanes": 2, "pipeline": True}
        dut = build_design(design, "dint4", k_max=4, **sizes[design])
        export_verilog(dut, top, tmp_path / f"{top}.v")
        seen |= verilator_warnings(tmp_path / f"{top}.v", top, allowed=())
    assert seen == set(VERILATOR_ALLOWED_WARNINGS)
