"""Shared checks of the bad-input tests (issue 14): run a CLI as a user does, and assert one
``error:`` line and that nothing under a directory was created or changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file (mode, mtime, bytes) and directory under ``root``."""
    files = {
        str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    dirs = {str(p.relative_to(root)) + "/": (0, 0, b"") for p in root.rglob("*") if p.is_dir()}
    return files | dirs


def run_module(args, cwd: Path, env=None, timeout=120) -> subprocess.CompletedProcess:
    """``python <args>`` in ``cwd`` with this checkout first on ``PYTHONPATH``."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line(err: str, *words: str) -> str:
    """``err`` is one line starting ``error: `` and containing every word; returns it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, err)
    return lines[0]


def one_error_line(r: subprocess.CompletedProcess, *words: str) -> str:
    """Exit status 2 and :func:`assert_one_line` on the process's stderr."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    return assert_one_line(r.stderr, *words)


def assert_quant_refuses(work: Path, capsys, argv: list[str], *words: str) -> None:
    """``python -m quant SUB ...`` (in process, on the ``work`` fixture's fake model and
    texts) exits 2 with one error line naming ``words`` and leaves ``work`` untouched."""
    from quant.__main__ import main

    before = snapshot(work)
    model = ["--model", str(work / "tiny-llama"), "--calib-text", "calib.txt"]
    try:
        status = main([*argv[:1], *model, "--eval-text", "eval.txt", *argv[1:]])
    except SystemExit as e:
        status = e.code
    assert status == 2
    assert_one_line(capsys.readouterr().err, *words)
    assert snapshot(work) == before
