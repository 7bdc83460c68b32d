"""What one synthesis flow measured for one design (:class:`FlowResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class FlowResult:
    """What one flow measured for one design.

    ``area`` is in ``area_unit`` (transistors, um^2 or LUT4s); ``breakdown`` splits it by
    category (:data:`reports.hierarchy.CATEGORIES`: logic by module, flip-flops by role,
    clock gates); ``modules`` is the per-module table (instances, own area; ASIC flows: one
    entry per distinct module, under its first name, with its canonical ``module`` name);
    ``delay_ns`` is the critical path (Liberty STA) or ``1000/fmax`` (FPGA, median over seeds).
    """

    target: str
    top: str
    area: float
    area_unit: str
    breakdown: dict[str, float]
    modules: dict[str, dict[str, float]]
    delay_ns: float | None = None
    fmax_mhz: list[float] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> FlowResult:
        return cls(**d)
