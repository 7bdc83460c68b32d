"""Synthetic synthesis records shared by the reports tests (tables, plots)."""

from __future__ import annotations

#: How sim covers each synthetic design (the real reasons come from hw.verified_by).
NOT_EXACT = {"dot8_dint4_shiftadd": "same generator verified at dot16; synthesized only"}


def _rec(target, level, size, fmt, style, area, delay, booth=False, breakdown=None, macs=None):
    label = {"dot": f"dot{size}", "systolic": f"sys{size}x{size}"}.get(level, level)
    macs = macs if macs is not None else {"dot": size, "systolic": size * size}.get(level, 1)
    return {
        "design": f"{label}_{fmt}_{style}{'_booth' if booth else ''}",
        "spec": {
            "level": level,
            "size": size,
            "weight_format": fmt,
            "style": style,
            "booth": booth,
        },
        "level": level,
        "size": size,
        "level_label": label,
        "variant": f"{fmt}/{style}" + ("+booth" if booth else ""),
        "macs_per_cycle": macs,
        "acc_width": 25,
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
