"""The shared tools layer (standard library only, plus the project's base dependency tqdm).

Used by ``hw``, ``sim``, ``quant`` and ``reports``; depends on nothing of ours.

- :mod:`tools.files` — :func:`atomic_write` (one file) and :func:`atomic_write_set` (several
  files, all or none), mode 0644 under the umask; :func:`cache_dir`; :func:`tree_hash` (a
  cache key of a source directory).
- :mod:`tools.external` — :func:`find_tool` / :func:`run_tool` with one error type,
  :class:`ToolError`, and one message format (``"X not found: install with ..."``).
- :mod:`tools.debian` — :func:`debian_file`: a file of a Debian package, installed, cached
  or extracted into the cache with ``apt-get download`` + ``dpkg -x``.
- :mod:`tools.cli` — the CLI convention on bad input: one line ``error: ...; ...``, exit 2,
  a traceback only for bugs or with ``--debug``; :func:`tools.cli.require` for a missing extra.
- :mod:`tools.pool` — :func:`run_jobs`: a process pool that runs the costliest job first,
  shows progress and turns a failing job into an error record instead of losing the rest.
- :mod:`tools.executor` — where :func:`run_jobs` runs its jobs: ``executor="local"`` (the
  pool) or ``"ray"`` (Ray tasks on a cluster or a local instance; imported only then);
  :func:`tools.cli.add_executor_args` gives a CLI ``--executor``, ``--address`` and
  ``--runtime-env`` (``project``: :func:`tools.executor.project_runtime_env` ships the checkout).
"""

from . import cli, executor
from .debian import DebianFile, debian_file
from .external import ToolError, ToolTimeout, find_tool, run_tool, tool_version
from .files import (
    CACHE_ENV,
    atomic_write,
    atomic_write_set,
    cache_dir,
    check_writable,
    file_mode,
    tree_hash,
)
from .pool import Job, run_jobs

__all__ = [
    "CACHE_ENV",
    "DebianFile",
    "Job",
    "ToolError",
    "ToolTimeout",
    "atomic_write",
    "cli",
    "executor",
    "atomic_write_set",
    "cache_dir",
    "check_writable",
    "debian_file",
    "file_mode",
    "find_tool",
    "run_jobs",
    "run_tool",
    "tool_version",
    "tree_hash",
]
