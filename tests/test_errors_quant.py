"""Bad input to ``python -m quant`` (issue 14): one line ``error: ...``, status 2, nothing
written, and found before any model is loaded. One test per row of the issue's table.

No real model is needed: a "model" here is a directory holding only ``config.json`` (or a
tiny GGUF written by ``gguf.GGUFWriter``) and the loaders are replaced by functions that
fail the test, so an error found after the model would load shows up as a failure.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from clicheck import assert_one_line, snapshot

import quant.checkpoint
import quant.experiments
import quant.session
from quant import QuantError
from quant.__main__ import main
from quant.calibrate import CalibrationError
from quant.checkpoint import DEFAULT_MODEL, ModelError, find_checkpoint
from quant.experiments import TableSettings, run_table
from quant.scaling import ScalingError
from quant.session import DataSettings, Session
from quant.text import TextError

ROOT = Path(__file__).resolve().parents[1]


# ---- helpers ------------------------------------------------------------------------------


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``python -m quant`` in-process: (exit status, stderr)."""
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _every_error_before_a_model_loads(no_model_load):
    """Every test here: loading a model fails it (the fixture is in conftest.py)."""


def model_args(work: Path) -> list[str]:
    model = str(work / "tiny-llama")
    return ["--model", model, "--calib-text", "calib.txt", "--eval-text", "eval.txt"]


def write_gguf(path: Path, arch: str) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(96)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ---- row 1: table --formats int4,dint5 -----------------------------------------------------


def _previous_results(out: Path) -> None:
    out.mkdir(parents=True)
    (out / "results.md").write_text("# a good table from an earlier run\n")
    (out / "results.json").write_text('{"rows": ["good"]}\n')


@pytest.mark.parametrize("formats", ["int4,dint5", "dint5", "int4,,dint4"])
def test_table_unknown_format_fails_first_and_keeps_results(work, capsys, formats):
    out = work / "build" / "quant"
    _previous_results(out)
    before = snapshot(work)
    status, err = cli(["table", "--formats", formats, "--out", str(out), *model_args(work)], capsys)
    assert status == 2
    line = assert_one_line(err, "--formats", "unknown format")
    assert re.search(r"unknown format '(dint5|)'", line)
    assert snapshot(work) == before


def test_table_unknown_format_as_a_command(tmp_path):
    """The real entry point, default --out: build/quant/results.{md,json} stay as they were."""
    _previous_results(tmp_path / "build" / "quant")
    before = snapshot(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "quant", "table", "--formats", "int4,dint5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert_one_line(r.stderr, "unknown format 'dint5'")
    assert r.stdout == ""
    assert snapshot(tmp_path) == before


def test_failing_table_run_writes_beside_the_previous_results(tmp_path, monkeypatch):
    """A run that fails in its second job (the int4 rows, after one row) leaves the rows of
    the jobs that finished (FP) in results-partial.{md,json} and the old table."""
    out = tmp_path / "out"
    _previous_results(out)
    before = snapshot(out)
    rows = iter(range(2))

    def run_one(session, config, calib_seqlen, **kw):
        next(rows)  # the third row fails like a real error would
        row = {"method": kw.get("label") or config.method, "weight_format": "dint4"}
        row |= {"acts": config.acts, "calib_seqlen": None, "ppl": 30.0, "mode": "fake"}
        row |= {"eval_tokens": 511, "eval_windows": 1, "mean_alpha": None}
        return row, None

    monkeypatch.setattr(Session, "open", classmethod(lambda cls, *args: None))
    monkeypatch.setattr(Session, "check", staticmethod(lambda *args: None))
    monkeypatch.setattr(quant.experiments, "run_one", run_one)
    with pytest.raises(StopIteration):
        run_table(TableSettings(integer_check_windows=0), out)
    partial = json.loads((out / "results-partial.json").read_text())
    assert [r["method"] for r in partial["rows"]] == ["FP"]
    assert (out / "results-partial.md").is_file()
    now = snapshot(out)
    assert {k: now[k] for k in before} == before


# ---- row 2: missing or empty texts ---------------------------------------------------------


@pytest.mark.parametrize("flag", ["--calib-text", "--eval-text"])
@pytest.mark.parametrize(
    "problem,word", [("missing", "nor an existing text file"), ("empty", "is empty")]
)
def test_run_missing_or_empty_text(work, capsys, flag, problem, word):
    text = work / f"{problem}.txt"
    if problem == "empty":
        text.write_text(" \n\n")
    before = snapshot(work)
    argv = ["run", *model_args(work), flag, str(text), "--json", "row.json"]
    status, err = cli(argv, capsys)
    assert status == 2
    assert_one_line(err, flag, word)
    assert snapshot(work) == before


def test_text_too_short_is_found_before_the_model_loads(work, monkeypatch):
    """Window counts are checked with the tokenizer only (the model would load after)."""

    def tokenizer(_ckpt):
        return lambda text, **kw: {"input_ids": list(range(len(text.split())))}

    monkeypatch.setattr(quant.session, "load_tokenizer", tokenizer)
    data = DataSettings("calib.txt", "eval.txt", eval_seqlen=512, eval_windows=8)
    with pytest.raises(CalibrationError, match=r"need 8 windows of 512 tokens but evaluation"):
        Session.open(str(work / "tiny-llama"), data)
    data = DataSettings("calib.txt", "eval.txt", eval_seqlen=16, eval_windows=1)
    with pytest.raises(CalibrationError, match=r"calibration text 'calib.txt' has 120 tokens"):
        Session.open(str(work / "tiny-llama"), data, calib_seqlens=(512,))


# ---- row 3: unsupported or missing models --------------------------------------------------


def _bad_model(work: Path, kind: str) -> Path:
    if kind == "gemma3-gguf":
        return write_gguf(work / "gemma-3.gguf", "gemma3")
    if kind == "gemma3-dir":
        (work / "gemma-3").mkdir()
        (work / "gemma-3" / "config.json").write_text('{"model_type": "gemma3_text"}')
        return work / "gemma-3"
    if kind == "truncated-gguf":
        path = work / "cut.gguf"
        path.write_bytes(write_gguf(work / "whole.gguf", "llama").read_bytes()[:40])
        return path
    if kind == "not-gguf":
        (work / "model.bin").write_bytes(b"\0" * 64)
        return work / "model.bin"
    if kind == "no-config":
        (work / "empty-dir").mkdir()
        return work / "empty-dir"
    return work / "missing-model"


@pytest.mark.parametrize(
    "kind,words",
    [
        ("gemma3-gguf", ["unsupported architecture 'gemma3'", "general.architecture", "llama"]),
        ("gemma3-dir", ["unsupported architecture 'gemma3_text'", "model_type", "opt"]),
        ("truncated-gguf", ["truncated"]),
        ("not-gguf", ["not a .gguf"]),
        ("no-config", ["no config.json"]),
        ("missing", ["not found", DEFAULT_MODEL]),
    ],
)
def test_run_bad_model_fails_before_loading(work, capsys, kind, words):
    """The ``no_model_load`` fixture fails the test if a tokenizer or model is loaded."""
    model = _bad_model(work, kind)
    before = snapshot(work)
    status, err = cli(["run", *model_args(work), "--model", str(model)], capsys)
    assert status == 2
    assert_one_line(err, *words)
    assert snapshot(work) == before


def _counting_open(monkeypatch) -> dict[str, int]:
    """Count the bytes quant.checkpoint reads from every file it opens."""
    counts: dict[str, int] = {}

    class Counting(io.BufferedReader):
        def read(self, n=-1):
            data = super().read(n)
            counts[self.name] = counts.get(self.name, 0) + len(data)
            return data

    def counting_open(path, mode="r", *args, **kwargs):
        assert mode == "rb", mode
        return Counting(io.FileIO(str(path), "rb"))

    monkeypatch.setattr(quant.checkpoint, "open", counting_open, raising=False)
    return counts


def test_gguf_header_is_read_without_the_tensors(tmp_path, monkeypatch):
    path = tmp_path / "big.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(96)
    # A large metadata array (like a tokenizer's) and 8 MB of tensor data after the keys.
    writer.add_token_list([f"token{i}" for i in range(20000)])
    writer.add_tensor("blk.0.weight", np.zeros((2048, 1024), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    counts = _counting_open(monkeypatch)
    ckpt = find_checkpoint(path)
    assert (ckpt.arch, ckpt.n_layers, ckpt.in_features) == ("llama", 2, (64, 96))
    assert ckpt.load_kwargs == {"gguf_file": "big.gguf"}
    size = path.stat().st_size
    assert size > 8 << 20
    assert 0 < counts[str(path)] < 4096, (counts, size)  # the first keys only


# ---- row 4: numeric flags, and combinations checked before the model -----------------------


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--threads", "0", "run"], "--threads"),
        (["run", "--calib-seqlen", "0"], "--calib-seqlen"),
        (["run", "--eval-windows", "0"], "--eval-windows"),
        (["run", "--eval-seqlen", "1"], "--eval-seqlen"),
        (["run", "--calib-tokens", "-5"], "--calib-tokens"),
        (["run", "--group-size", "0"], "--group-size"),
        (["run", "--alpha", "1.5"], "--alpha"),
        (["run", "--alpha", "nan"], "--alpha"),
        (["run", "--search-tokens", "0"], "--search-tokens"),
        (["run", "--gptq-damp", "1"], "--gptq-damp"),
        (["run", "--weights", "dint5"], "--weights"),
        (["table", "--short-seqlen", "1"], "--short-seqlen"),
        (["table", "--integer-check-windows", "-1"], "--integer-check-windows"),
        (["table", "--eval-windows", "x"], "--eval-windows"),
        (["slac", "--seqlens", "abc"], "--seqlens"),
        (["slac", "--seqlens", "32,1"], "--seqlens"),
        (["slac", "--tokens", "0"], "--tokens"),
        (["export", "--tokens", "0"], "--tokens"),
        (["export", "--outputs", "0"], "--outputs"),
    ],
)
def test_bad_number_is_one_argparse_line(work, capsys, argv, flag):
    before = snapshot(work)
    status, err = cli(argv, capsys)
    assert status == 2
    assert_one_line(err, f"argument {flag}:", "--help")
    assert snapshot(work) == before


@pytest.mark.parametrize(
    "argv,words",
    [
        (["run", "--mode", "integer", "--group-size", "32"], ["integer mode"]),
        (["run", "--method", "fp"], ["acts 'fp'"]),
        (["run", "--json", "."], ["is a directory"]),
        (["table", "--out", "calib.txt"], ["is a file"]),
        (["export", "--tile", "t.npz"], ["exactly one layer"]),
        (["export", "--layer", "layers.2.mlp.up_proj"], ["unknown layers", "layers 0..1"]),
        (["export", "--layer", "layers.0.fc1"], ["unknown layers"]),
        (["export", "--acts", "int8-token"], ["int8-static"]),
        (["run", "--calib-text", "eval.txt"], ["both use"]),
    ],
)
def test_bad_combination_is_found_before_the_model(work, capsys, argv, words):
    before = snapshot(work)
    status, err = cli([*argv[:1], *model_args(work), *argv[1:]], capsys)
    assert status == 2
    assert_one_line(err, *words)
    assert snapshot(work) == before


# ---- row 12: no quant extra ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["run", "--model", "x"]])
def test_without_the_quant_extra(tmp_path, argv):
    """A ``torch`` that cannot be imported stands in for an environment without torch."""
    fake = tmp_path / "no-torch"
    fake.mkdir()
    (fake / "torch.py").write_text("raise ImportError('No module named torch')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}
    r = subprocess.run(
        [sys.executable, "-m", "quant", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert_one_line(r.stderr, "needs torch", "quant extra", "pip install -e '.[quant]'")
    assert r.stdout == ""


# ---- --debug, the exception type, README -----------------------------------------------


def test_debug_shows_the_traceback(work, capsys):
    argv = ["run", *model_args(work), "--model", "missing-model"]
    with pytest.raises(ModelError, match="not found") as e:
        main(["--debug", *argv])
    assert e.traceback  # the exception propagates: Python prints its traceback
    status, err = cli(argv, capsys)
    assert status == 2 and "Traceback" not in err


def test_one_exception_type():
    for error in (ModelError, TextError, CalibrationError, ScalingError):
        assert issubclass(error, QuantError)
    assert issubclass(QuantError, ValueError)


def test_readme_paths_work_anywhere_and_keep_the_committed_tile():
    readme = (ROOT / "quant" / "README.md").read_text()
    assert not re.search(r"(?<![\w.])/(work|home|Users|tmp)/", readme), "absolute path"
    assert not re.search(r"--(tile|out)\s+sim/data", readme), "an example overwrites sim/data"
    assert re.search(r"--tile\s+build/", readme)
