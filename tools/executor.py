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
this Python environment. A job on a remote cluster runs in the Python of the ``ray start``
that started its node: install the project and its extra there, or give a Ray runtime
environment as JSON in :data:`RUNTIME_ENV_VAR` (used only when connecting to an address, for
example ``{"working_dir": ".", "pip": ["amaranth==0.5.10", ...]}``).

Ray is imported only when ``executor="ray"``: this module stays importable without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .external import ToolError

#: The backends :func:`tools.run_jobs` knows.
EXECUTORS = ("local", "ray")
#: Environment variable naming the Ray cluster when ``address`` is not given (Ray's own).
ADDRESS_ENV = "RAY_ADDRESS"
#: Environment variable holding a Ray runtime environment (JSON) for a remote cluster.
RUNTIME_ENV_VAR = "DINTMAC_RAY_RUNTIME_ENV"
RAY_INSTALL = "pip install -e '.[cluster]'"

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
    ``executor="ray"``, a malformed address (or ``RAY_ADDRESS``), a malformed runtime
    environment, or Ray not installed.
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
    if address is not None:
        return check_address(address)
    env = os.environ.get(ADDRESS_ENV, "").strip()
    return check_address(env, f"the {ADDRESS_ENV} environment variable") if env else None


def runtime_env() -> dict | None:
    """The Ray runtime environment of :data:`RUNTIME_ENV_VAR` (JSON object), or None."""
    text = os.environ.get(RUNTIME_ENV_VAR, "").strip()
    if not text:
        return None
    try:
        env = json.loads(text)
    except json.JSONDecodeError as e:
        raise ToolError(f"{RUNTIME_ENV_VAR} is not JSON ({e}); give a JSON object") from None
    if not isinstance(env, dict):
        raise ToolError(f'{RUNTIME_ENV_VAR} must be a JSON object, e.g. {{"pip": [...]}}')
    return env


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
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        ray.init(address=address, runtime_env=runtime_env(), **quiet)
    else:
        # "local": a private instance even when another one runs on this machine.
        ray.init(address="local", num_cpus=max(1, workers), **quiet)
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
