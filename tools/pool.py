"""One way to run every sweep: costliest job first, progress shown, failures kept.

A :class:`Job` is a name, a picklable zero-argument callable and a cost hint. :func:`run_jobs`
runs them on ``workers`` processes (in this process when ``workers <= 1``), or as tasks on a
Ray cluster (``executor="ray"``, :mod:`tools.executor`), starting with the costliest so the
last job to finish is a short one, and returns each job's result in the order given. A job
that raises does not stop the others: its result is ``on_error(job, exc)``.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .executor import check_executor, ray_completions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One unit of work: a label, a picklable callable, and a cost hint (larger runs first)."""

    name: str
    fn: Callable[[], Any]
    cost: float = 0.0


def job_weights(jobs: Sequence[Job]) -> list[float]:
    """How much of the work each job is, for the estimated time left: its cost hint, or 1
    each when any job has none (a sweep's jobs differ by 100x and more, and the costliest
    run first, so counting jobs would misjudge it)."""
    if all(j.cost > 0 for j in jobs):
        return [float(j.cost) for j in jobs]
    return [1.0] * len(jobs)


class _Progress:
    """A tqdm bar of jobs done / total whose percentage and time left are weighted by
    :func:`job_weights`."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"

    def __init__(self, jobs: Sequence[Job], desc: str, enabled: bool):
        from tqdm import tqdm

        self.weight = dict(zip((j.name for j in jobs), job_weights(jobs), strict=True))
        self.done, self.total = 0, len(jobs)
        self.bar = tqdm(
            total=sum(self.weight.values()),
            desc=desc,
            bar_format=self.FORMAT,
            postfix=f"0/{self.total} jobs",
            disable=not enabled,
        )

    def finished(self, job: Job) -> None:
        self.done += 1
        self.bar.set_postfix_str(f"{self.done}/{self.total} jobs, {job.name}", refresh=False)
        self.bar.update(self.weight[job.name])

    def close(self) -> None:
        self.bar.close()


def run_jobs(
    jobs: Sequence[Job],
    workers: int = 2,
    *,
    on_error: Callable[[Job, BaseException], Any],
    on_done: Callable[[Job, Any], None] | None = None,
    desc: str = "jobs",
    progress: bool = True,
    executor: str = "local",
    address: str | None = None,
) -> list[Any]:
    """Run ``jobs`` (costliest first) and return their results in the order of ``jobs``.

    ``on_error(job, exc)`` turns a failing job into its result (it is logged too);
    ``on_done(job, result)`` is called in this process as each job finishes. Progress is a
    tqdm bar of jobs done / total with the estimated time left, which weights each job by its
    cost hint (:func:`job_weights`).

    ``executor="ray"`` runs each job as a Ray task (:mod:`tools.executor`): on the cluster at
    ``address`` (``"auto"``, ``HOST:PORT``; default ``RAY_ADDRESS``), or on a local instance
    with ``workers`` CPUs started for this call. Results, their order and the callbacks are
    the same as with the local pool.
    """
    ray_address = check_executor(executor, address)
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("run_jobs: job names must be unique")
    results: dict[str, Any] = {}
    order = sorted(jobs, key=lambda j: -j.cost)
    bar = _Progress(jobs, desc, progress)

    def finish(job: Job, get: Callable[[], Any]) -> None:
        try:
            results[job.name] = get()
        except Exception as e:  # one bad job must not lose the other results
            log.error("%s failed: %s", job.name, e)
            results[job.name] = on_error(job, e)
        if on_done is not None:
            on_done(job, results[job.name])
        bar.finished(job)

    try:
        if executor == "ray":
            for job, get in ray_completions(order, workers, ray_address):
                finish(job, get)
        elif workers <= 1 or len(jobs) <= 1:
            for job in order:
                finish(job, job.fn)
        else:
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(job.fn): job for job in order}
                for fut in concurrent.futures.as_completed(futures):
                    finish(futures[fut], fut.result)
    finally:
        bar.close()
    return [results[j.name] for j in jobs]
