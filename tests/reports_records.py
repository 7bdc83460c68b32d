"""Synthetic synthesis records shared by the reports tests (tables, plots)."""

from __future__ import annotations

import hw

#: How sim covers each synthetic design (the real reasons come from hw.verified_by).
NOT_EXACT = {"dot8_dint4_shiftadd": "same generator verified at dot16; synthesized only"}


#: The option fields of a record's spec (hw.DesignPoint.to_json) and their defaults.
OPTIONS = {"arch": "classic", "pe_lanes": 1, "a_reg_every": None, "pipeline": False}
OPTIONS["acc_rule"] = "equal"


def _rec(
    target,
    level,
    size,
    fmt,
    style,
    area,
    delay,
    booth=False,
    breakdown=None,
    macs=None,
    acc_width=25,
    **opts,
):
    """One record; ``opts`` are the spec's option fields (:data:`OPTIONS`; a lean array has
    ``hw.DEFAULT_LANES`` weights per PE unless given)."""
    if opts.get("arch", "classic") != "classic":
        opts.setdefault("pe_lanes", hw.DEFAULT_LANES)
    opts = {**OPTIONS, **opts}
    label = {"dot": f"dot{size}", "systolic": f"sys{size}x{size}"}.get(level, level)
    macs = macs if macs is not None else {"dot": size, "systolic": size * size}.get(level, 1)
    suffix = "".join(f"_{k}{v}" for k, v in opts.items() if v != OPTIONS[k] and k != "arch") + (
        "" if opts["arch"] == "classic" else "_" + opts["arch"]
    )
    return {
        "design": f"{label}_{fmt}_{style}{'_booth' if booth else ''}{suffix}",
        "spec": {
            "level": level,
            "size": size,
            "weight_format": fmt,
            "style": style,
            "booth": booth,
            **opts,
        },
        "level": level,
        "size": size,
        "level_label": label,
        "variant": f"{fmt}/{style}" + ("+booth" if booth else ""),
        "macs_per_cycle": macs,
        "acc_width": acc_width,
        "verified": NOT_EXACT.get(f"{label}_{fmt}_{style}", "exact"),
        "target": target,
        "result": {
            "area": area,
            "area_unit": "um^2",
            "delay_ns": delay,
            "fmax_mhz": [],
            "breakdown": breakdown or {},
            "extra": {},
            "seconds": 1.0,
        },
    }


def legacy(record: dict) -> dict:
    """``record`` as written before the architecture fields existed (no option fields)."""
    spec = {k: v for k, v in record["spec"].items() if k not in OPTIONS}
    return {**record, "spec": spec}


def _bd(mult: float, rest: float) -> dict:
    """A breakdown: ``mult`` in multipliers, ``rest`` split over psum adders and registers."""
    return {"multiplier": mult, "psum adders": rest / 2, "psum registers": rest / 2}


def arrays_8x8(lean_dint4=(340_000.0, 4.4), col_dint4=(650_000.0, 4.8)) -> list[dict]:
    """8x8 arrays on osu018: classic, lean and lean-col (every INT8 of each, dINT4 shared
    and shiftadd) and the lean option l4 (4 weights per PE); ``lean_dint4``/``col_dint4`` =
    the dINT4 shared arrays' (area, delay)."""
    out = []
    for arch, int8, dint4 in (
        ("classic", {"mul": 1_800_000.0, "booth": 1_600_000.0}, {"shiftadd": (1_200_000.0, 4.5)}),
        (
            "lean",
            {"mul": 900_000.0, "booth": 800_000.0, "shared": 700_000.0},
            {"shared": lean_dint4, "shiftadd": (lean_dint4[0] * 1.2, 4.5)},
        ),
        (
            "lean-col",
            {"mul": 1_200_000.0, "booth": 1_100_000.0, "shared": 1_000_000.0},
            {"shared": col_dint4},
        ),
    ):
        for style, area in int8.items():
            booth = style == "booth"
            out.append(
                _rec(
                    "osu018",
                    "systolic",
                    8,
                    "int8",
                    "mul" if booth else style,
                    area,
                    4.6,
                    booth=booth,
                    breakdown=_bd(area / 2, area / 2),
                    arch=arch,
                )
            )
        for style, (area, delay) in dint4.items():
            bd = _bd(area / 4, area * 3 / 4)
            out.append(
                _rec("osu018", "systolic", 8, "dint4", style, area, delay, breakdown=bd, arch=arch)
            )
    for fmt, style, area in (("int8", "shared", 650_000.0), ("dint4", "shared", 300_000.0)):
        out.append(_rec("osu018", "systolic", 8, fmt, style, area, 4.5, arch="lean", pe_lanes=4))
    return out


RECORDS = [
    _rec(
        "osu018",
        "mac",
        1,
        "int8",
        "mul",
        24000.0,
        5.0,
        breakdown={"multiplier": 14000.0, "accumulator": 7600.0, "registers": 2400.0},
    ),
    _rec(
        "osu018",
        "mac",
        1,
        "int8",
        "mul",
        20000.0,
        5.5,
        booth=True,
        breakdown={"multiplier": 10000.0, "accumulator": 7600.0, "registers": 2400.0},
    ),
    _rec(
        "osu018",
        "mac",
        1,
        "dint4",
        "shiftadd",
        12500.0,
        4.0,
        breakdown={
            "decoder": 300.0,
            "multiplier": 2200.0,
            "accumulator": 7600.0,
            "registers": 2400.0,
        },
    ),
    _rec("osu018", "mac", 1, "dint4", "mul", 16000.0, 4.5),
    _rec("osu018", "dot", 8, "int8", "mul", 100000.0, 7.0),
    _rec("osu018", "dot", 8, "int8", "mul", 110000.0, 7.0, booth=True),
    _rec("osu018", "dot", 8, "dint4", "shiftadd", 40000.0, 7.0),
    _rec("cmos", "mac", 1, "int8", "mul", 7000.0, None),
    _rec("cmos", "mac", 1, "dint4", "shiftadd", 3500.0, None),
]
