"""Find and run external tools, with one error type and one message format.

A missing tool raises :class:`ToolError` with ``"<tool> not found: install with <how>"``; a
tool that fails raises it with the tool, the exit status, where the log is, and its last lines.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message says which and what to do."""


def find_tool(name: str, install: str, path: str | None = None) -> str:
    """Absolute path of executable ``name``: next to this Python first (an unactivated venv's
    console scripts), then on ``PATH`` (or the given ``path`` string).

    Raises :class:`ToolError` ``"<name> not found: install with <install>"``.
    """
    search = os.pathsep.join(
        [str(Path(sys.executable).parent), path if path is not None else os.environ.get("PATH", "")]
    )
    found = shutil.which(name, path=search)
    if found is None:
        raise ToolError(f"{name} not found: install with {install}")
    return found


@functools.cache
def tool_version(name: str, install: str) -> str:
    """``"<name> <version>"`` of a tool: its PyPI package version if it is one (a yowasp tool's
    package version pins the build exactly), else the first line of ``--version``."""
    exe = find_tool(name, install)
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        pass
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if "Preparing" not in ln]
    if out.returncode != 0 or not lines:
        raise ToolError(f"{name} --version failed (exit {out.returncode}); reinstall: {install}")
    return f"{name} {lines[0].strip()}"


def run_tool(
    name: str,
    args: Sequence[str],
    *,
    install: str,
    cwd: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    exe: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``name args`` (found with :func:`find_tool` unless ``exe`` is given).

    With ``log`` (relative to ``cwd``), stdout and stderr go to that file; otherwise they are
    captured as text on the result. With ``check``, a non-zero exit or a time-out raises
    :class:`ToolError` naming the tool, the status, the log and its last 15 lines.
    """
    cmd = [exe or find_tool(name, install), *map(str, args)]
    where = Path(cwd) if cwd is not None else Path.cwd()
    log_path = where / log if log is not None else None
    try:
        if log_path is not None:
            with open(log_path, "w") as f:
                proc = subprocess.run(
                    cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout
                )
        else:
            proc = subprocess.run(
                cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
            )
    except subprocess.TimeoutExpired as e:
        where_log = f"; log: {log_path}" if log_path else ""
        raise ToolError(f"{name} timed out after {timeout:.0f} s{where_log}") from e
    if check and proc.returncode != 0:
        if log_path is not None:
            text = log_path.read_text(errors="replace")
            where_log = f"; log: {log_path}"
        else:
            text = (proc.stdout or "") + (proc.stderr or "")
            where_log = ""
        tail = "\n".join(text.splitlines()[-15:])
        raise ToolError(f"{name} failed (exit {proc.returncode}) in {where}{where_log}\n{tail}")
    return proc
