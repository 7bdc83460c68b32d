"""sim.build around the simulator: what a build leaves on disk and what a failed one says.

cocotb's runner is replaced by a stand-in that writes what a Verilator build writes (a
model and two precompiled headers) or fails the way make does on a full disk (an empty
log), so these run without Verilator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import SimError, build

pytest.importorskip("cocotb_tools.runner", reason="needs the sim extra (cocotb)")


class _Runner:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.log = __import__("logging").getLogger("fake-runner")

    def build(self, *, build_dir: str, log_file: str, **_: object) -> None:
        out = Path(build_dir)
        Path(log_file).write_text("")
        if self.fail:
            raise RuntimeError("Command failed with return code: 2")
        (out / "Vtop__pch.h.fast.gch").write_bytes(b"x" * 100)
        (out / "Vtop__pch.h.slow.gch").write_bytes(b"x" * 100)
        (out / "top").write_bytes(b"model")


@pytest.fixture
def fake_runner(monkeypatch, restore_environ):
    import cocotb_tools.runner

    def use(fail: bool) -> None:
        monkeypatch.setattr(cocotb_tools.runner, "get_runner", lambda _sim: _Runner(fail))

    return use


def _build(tmp_path: Path) -> bool:
    src = tmp_path / "top.v"
    src.write_text("module top; endmodule\n")
    return build.build(
        "top", [src], tmp_path / "out", simulator="icarus", jobs=1, waves=False, opt_fast="-O1"
    )


def test_a_built_model_keeps_no_precompiled_headers(tmp_path, fake_runner):
    fake_runner(fail=False)
    assert _build(tmp_path) is True
    out = tmp_path / "out"
    assert (out / "top").read_bytes() == b"model"
    assert not list(out.glob("*.gch"))  # 2 x 74 MB per design for a real Verilator build
    assert (out / "build.stamp").is_file()
    assert _build(tmp_path) is False  # the stamp still says it is built


def test_a_failed_build_with_an_empty_log_names_the_disk(tmp_path, fake_runner):
    fake_runner(fail=True)
    with pytest.raises(SimError) as e:
        _build(tmp_path)
    msg = str(e.value)
    assert "icarus build failed (Command failed with return code: 2)" in msg
    assert "build.log is empty" in msg and "GB free on" in msg and "full disk" in msg
    assert not (tmp_path / "out" / "build.stamp").exists()
