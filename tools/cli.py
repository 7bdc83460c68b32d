"""The command-line convention every ``python -m`` entry point follows on bad input.

A CLI checks all of its arguments, files and formats before any expensive step. On a known
error it prints ONE line to stderr, ``error: <what was wrong>; <what to do>``, and exits with
status 2; nothing is written. A traceback is printed only for a bug (an unexpected exception
type), or for any error when the user passes ``--debug``.

Use :func:`run` around a CLI's body::

    def main(argv=None) -> int:
        return tools.cli.run(_main, argv, errors=(ValueError, ToolError))

and :func:`require` at the top of a package's ``__main__`` to turn a missing optional extra
into one line naming the extra to install.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from .executor import (
    EXECUTORS,
    PROJECT,
    RUNTIME_ENV_VAR,
    check_executor,
    project_runtime_env,
)
from .external import ToolError

#: Exit status of a CLI on bad input (argparse uses the same).
USAGE_STATUS = 2
#: Exit status of a CLI stopped with Ctrl-C (128 + SIGINT, what a shell reports).
INTERRUPTED_STATUS = 130


class CliError(Exception):
    """Bad input found by a CLI itself (not by a library): the message is the whole line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors follow the convention: one line ``error: <message>; see
    <prog> --help`` and exit status 2 (``SystemExit``, as argparse's own), not a usage block."""

    def error(self, message: str):
        fail(f"{message}; see {self.prog} --help")
        raise SystemExit(USAGE_STATUS)


def one_line(message: str) -> str:
    """The first line of an error message (details such as a tool's log tail follow it)."""
    return str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"


def fail(message: str, stream=None) -> int:
    """Print ``error: <message>`` (its first line) to stderr; return :data:`USAGE_STATUS`."""
    print(f"error: {one_line(message)}", file=stream or sys.stderr)
    return USAGE_STATUS


def run(
    body: Callable[[list[str]], int | None],
    argv: Sequence[str] | None = None,
    errors: tuple[type[BaseException], ...] = (ValueError, ToolError, OSError),
) -> int:
    """Run ``body(argv)``; a :class:`CliError` or one of ``errors`` becomes one line and
    status 2 (with ``--debug`` in argv, the traceback instead). ``--debug`` is removed
    before ``body`` sees the arguments. Output piped into a reader that stops early
    (``| head``) ends the command quietly, with status 1; Ctrl-C is one line, ``interrupted``,
    and status 130 (as a shell reports SIGINT), not a traceback from wherever the command was
    waiting (a pool, a Ray call, a tool)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        status = body(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        # Nothing more can be shown; point stdout at /dev/null so that Python's own flush at
        # exit does not complain about the closed pipe either.
        with contextlib.suppress(OSError, ValueError):  # stdout may not be a file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except (CliError, *errors) as e:
        if debug:
            raise
        return fail(str(e))
    return 0 if status is None else int(status)


def require(module: str, extra: str, prog: str) -> None:
    """Exit with one line naming the extra when ``module`` cannot be imported.

    ``prog`` is the command (``python -m quant``), ``extra`` the pip extra (``quant``).
    """
    try:
        importlib.import_module(module)
    except ImportError:
        fail(
            f"{prog} needs {module}, which is not installed; "
            f"install the {extra} extra with: pip install -e '.[{extra}]'"
        )
        raise SystemExit(USAGE_STATUS) from None


def add_executor_args(
    parser: argparse.ArgumentParser, extra: str, ship: Sequence[str] = ()
) -> None:
    """``--executor local|ray``, ``--address ADDR`` and ``--runtime-env``: where a sweep's
    jobs run (:func:`tools.run_jobs`) and, on Ray, in what environment (``project``: this
    checkout with the dependencies of ``extra``, and the installed packages ``ship``: see
    :func:`tools.executor.project_runtime_env`); check them with :func:`check_executor_args`."""
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: this machine's process pool (default); ray: Ray tasks on a local "
        "instance with --jobs CPUs, or on the cluster at --address (pip install -e "
        "'.[cluster]')",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster for --executor ray: auto (started with ray start on this machine), "
        "HOST:PORT or ray://HOST:PORT (default: $RAY_ADDRESS, else a local instance)",
    )
    shipped = f", with the installed {', '.join(ship)} as it is here" if ship else ""
    parser.add_argument(
        "--runtime-env",
        metavar="ENV",
        help="for --executor ray: 'project' ships this checkout to every node and pip-installs "
        f"the {extra} extra there{shipped} (a node needs only ray and virtualenv), or a Ray "
        f"runtime environment as JSON (default: ${RUNTIME_ENV_VAR}, else each node's installed "
        "Python)",
    )
    parser.set_defaults(executor_extra=extra, executor_ship=tuple(ship))


def check_executor_args(args: argparse.Namespace) -> None:
    """Check ``--executor`` / ``--address`` (and Ray's presence) before any work; raises
    :class:`ToolError` (one line, status 2 under :func:`run`).

    ``--runtime-env`` (else :data:`RUNTIME_ENV_VAR`) is checked and left in
    :data:`RUNTIME_ENV_VAR` for :func:`tools.executor.ray_instance`, ``project`` resolved
    to :func:`tools.executor.project_runtime_env` of the command's extra.
    """
    spec = args.runtime_env
    if spec is not None and args.executor != "ray":
        raise ToolError("--runtime-env needs --executor ray; add --executor ray or drop it")
    spec = (spec if spec is not None else os.environ.get(RUNTIME_ENV_VAR, "")).strip()
    if args.executor == "ray" and spec:
        if spec == PROJECT:
            spec = json.dumps(project_runtime_env(args.executor_extra, args.executor_ship))
        os.environ[RUNTIME_ENV_VAR] = spec
    check_executor(args.executor, args.address)
