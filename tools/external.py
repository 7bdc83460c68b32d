"""Find and run external tools, with one error type and one message format.

A missing tool raises :class:`ToolError` with ``"<tool> not found: install with <how>"``; a
tool that fails raises it with the tool, the exit status, where the log is, and its last lines;
a tool that runs out of its time raises :class:`ToolTimeout`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message says which and what to do."""


class ToolTimeout(ToolError):
    """A tool did not finish within its wall-clock ``timeout`` or its CPU time
    (``cpu_limit``) in :func:`run_tool`."""


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
    cpu_limit: float | None = None,
    check: bool = True,
    exe: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``name args`` (found with :func:`find_tool` unless ``exe`` is given).

    With ``log`` (relative to ``cwd``), stdout and stderr go to that file; otherwise they are
    captured as text on the result. With ``check``, a non-zero exit raises
    :class:`ToolError` naming the tool, the status, the log and its last 15 lines.

    ``timeout`` is wall-clock seconds; ``cpu_limit`` is CPU seconds (the kernel's
    ``RLIMIT_CPU`` on the tool's process, set as it starts). How long a tool takes on the
    clock depends on what else the machine runs (2-4x here under load), its CPU time hardly
    does: where a result depends on whether the tool finished in time (a fallback, a
    retry), limit its CPU time, so that a busy machine, an idle one and a cluster node give
    the same result, and keep a generous ``timeout`` only for a tool that hangs. Running out
    of either raises :class:`ToolTimeout`.
    """
    cmd = [exe or find_tool(name, install), *map(str, args)]
    where = Path(cwd) if cwd is not None else Path.cwd()
    log_path = where / log if log is not None else None
    where_log = f"; log: {log_path}" if log_path else ""
    with open(log_path, "w") if log_path is not None else contextlib.nullcontext() as f:
        out = f if f is not None else subprocess.PIPE
        err = subprocess.STDOUT if f is not None else subprocess.PIPE
        with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True) as child:
            if cpu_limit is not None:
                _limit_cpu(child.pid, cpu_limit)
            try:
                stdout, stderr = child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                raise ToolTimeout(f"{name} timed out after {timeout:.0f} s{where_log}") from None
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    if cpu_limit is not None and proc.returncode == -signal.SIGXCPU:
        raise ToolTimeout(f"{name} used up its {cpu_limit:.0f} s of CPU time{where_log}")
    if check and proc.returncode != 0:
        text = (
            log_path.read_text(errors="replace")
            if log_path is not None
            else (proc.stdout or "") + (proc.stderr or "")
        )
        tail = "\n".join(text.splitlines()[-15:])
        raise ToolError(f"{name} failed (exit {proc.returncode}) in {where}{where_log}\n{tail}")
    return proc


def _limit_cpu(pid: int, seconds: float) -> None:
    """Let process ``pid`` use ``seconds`` of CPU time: SIGXCPU ends it then (SIGKILL 10 s
    later if it ignores that)."""
    soft = max(1, math.ceil(seconds))
    try:
        resource.prlimit(pid, resource.RLIMIT_CPU, (soft, soft + 10))
    except ProcessLookupError:
        pass  # it has already finished
