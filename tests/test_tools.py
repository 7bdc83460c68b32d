"""The tools layer: atomic writes, cache directory, external tools, Debian files, the pool."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

import tools
from tools import DebianFile, Job, ToolError


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_gives_ordinary_permissions(tmp_path, umask022):
    p = tmp_path / "sub" / "x.v"
    tools.atomic_write(p, "module x; endmodule\n")
    assert p.read_text() == "module x; endmodule\n" and _mode(p) == 0o644
    p.chmod(0o600)  # a successful overwrite must not keep (or produce) 0600
    tools.atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01" and _mode(p) == 0o644
    tools.atomic_write(p, lambda f: f.write(b"abc"))
    assert p.read_bytes() == b"abc"


def test_atomic_write_respects_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        tools.atomic_write(tmp_path / "private", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private") == 0o600


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("good")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        tools.atomic_write(p, broken)
    assert p.read_text() == "good"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_write_set_is_all_or_none(tmp_path):
    a, b = tmp_path / "a.v", tmp_path / "a.json"
    a.write_text("old v")

    def broken(f):
        raise OSError("no space")

    with pytest.raises(OSError, match="no space"):
        tools.atomic_write_set({a: "new v", b: broken})
    assert a.read_text() == "old v" and not b.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.v"]
    tools.atomic_write_set({a: "new v", b: "{}"})
    assert (a.read_text(), b.read_text()) == ("new v", "{}")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DINTMAC_CACHE", str(tmp_path / "override"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tools.cache_dir() == tmp_path / "override"
    monkeypatch.setenv("DINTMAC_CACHE", "")
    assert tools.cache_dir() == tmp_path / "xdg" / "dintmac"
    monkeypatch.delenv("DINTMAC_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tools.cache_dir() == tmp_path / "home" / ".cache" / "dintmac"


def test_missing_tool_says_how_to_install():
    with pytest.raises(
        ToolError, match=r"^no-such-tool-xyz not found: install with pip install xyz$"
    ):
        tools.find_tool("no-such-tool-xyz", "pip install xyz")


def test_run_tool_failure_names_the_tool_status_and_log(tmp_path):
    script = "import sys; print('line one'); print('the reason'); sys.exit(3)"
    with pytest.raises(ToolError) as e:
        tools.run_tool(
            "python", ["-c", script], install="-", cwd=tmp_path, log="t.log", exe=sys.executable
        )
    msg = str(e.value)
    assert "python failed (exit 3)" in msg and "t.log" in msg and "the reason" in msg
    ok = tools.run_tool("python", ["-c", "print(42)"], install="-", exe=sys.executable)
    assert ok.stdout.strip() == "42"


def _python(code: str, **kw):
    return tools.run_tool("python", ["-c", code], install="-", exe=sys.executable, **kw)


def test_run_tool_limits_cpu_time_not_time_on_the_clock(tmp_path):
    # a tool that computes runs out of its CPU time, with its log named
    with pytest.raises(tools.ToolTimeout, match=r"python used up its 1 s of CPU time; log: "):
        _python("while True: pass", cpu_limit=1, cwd=tmp_path, log="spin.log", timeout=60)
    # one that waits (as a tool on a busy machine does) is not stopped by its CPU limit
    done = _python("import time; time.sleep(1.5); print('done')", cpu_limit=1, timeout=60)
    assert done.stdout.strip() == "done"
    # the wall-clock limit still ends a tool that hangs
    with pytest.raises(tools.ToolTimeout, match=r"python timed out after 1 s"):
        _python("import time; time.sleep(30)", timeout=1)
    assert issubclass(tools.ToolTimeout, ToolError)


def test_debian_file_prefers_the_cache_then_explains(monkeypatch, tmp_path):
    monkeypatch.setenv("DINTMAC_CACHE", str(tmp_path))
    spec = DebianFile("no-such-package-xyz", "usr/share/xyz/data.txt")
    with pytest.raises(ToolError, match="no-such-package-xyz not found") as e:
        tools.debian_file(spec, fetch=False)
    assert "apt-get download no-such-package-xyz" in str(e.value)
    cached = tmp_path / "no-such-package-xyz" / "usr/share/xyz/data.txt"
    cached.parent.mkdir(parents=True)
    cached.write_text("x")
    assert tools.debian_file(spec, fetch=False) == cached


def _square(x):
    return x * x


def _fail():
    raise ValueError("bad job")


@pytest.mark.parametrize("workers", [1, 2])
def test_run_jobs_keeps_order_and_failures(workers):
    import functools

    jobs = [Job(f"j{i}", functools.partial(_square, i), cost=i) for i in range(5)]
    jobs.insert(2, Job("broken", _fail, cost=100))
    seen = []
    out = tools.run_jobs(
        jobs,
        workers,
        on_error=lambda job, exc: f"error: {exc}",
        on_done=lambda job, r: seen.append(job.name),
        progress=False,
    )
    assert out == [0, 1, "error: bad job", 4, 9, 16]
    assert sorted(seen) == sorted(j.name for j in jobs)
    if workers == 1:  # in-process: the costliest job runs first
        assert seen == ["broken", "j4", "j3", "j2", "j1", "j0"]


def _nap():
    import time

    time.sleep(0.3)  # longer than tqdm's 0.1 s between refreshes


def test_progress_counts_jobs_and_weights_the_time_left_by_cost(capsys):
    jobs = [Job("big", _nap, cost=9), Job("small", _nap, cost=1)]
    assert tools.pool.job_weights(jobs) == [9.0, 1.0]
    assert tools.pool.job_weights([*jobs, Job("unknown", _nap)]) == [1.0, 1.0, 1.0]
    tools.run_jobs(jobs, 1, on_error=lambda job, exc: None, desc="sweep")
    shown = capsys.readouterr().err.replace("\r", "\n")
    assert "sweep:  90%" in shown and ", 1/2 jobs, big]" in shown  # the big job is 90% of it
    assert "sweep: 100%" in shown and ", 2/2 jobs, small]" in shown
    assert "| ," not in shown  # tqdm's ", " before the postfix follows the times


def _interrupted(argv: list[str]) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_is_one_line_and_status_130(capsys):
    assert tools.cli.run(_interrupted, []) == tools.cli.INTERRUPTED_STATUS == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", "interrupted\n")
    with pytest.raises(KeyboardInterrupt):  # --debug shows where it was
        tools.cli.run(_interrupted, ["--debug"])
