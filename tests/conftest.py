"""Fixtures shared by several test modules."""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture
def restore_environ():
    """The sim runner puts Verilator on PATH and sets OBJCACHE/MAKEFLAGS; undo that afterwards."""
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A work directory (the cwd) with a fake LLaMA model and two small texts."""
    model = tmp_path / "tiny-llama"
    model.mkdir()
    config = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64}
    (model / "config.json").write_text(json.dumps({**config, "intermediate_size": 96}))
    (tmp_path / "calib.txt").write_text("It is a truth universally acknowledged. " * 20)
    (tmp_path / "eval.txt").write_text("Sir Walter Elliot, of Kellynch Hall. " * 20)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a tokenizer or a model fails the test: every error must come before."""
    import quant.experiments
    import quant.session

    def loaded(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded before the error was found")

    for module in (quant.session, quant.experiments):
        monkeypatch.setattr(module, "load_model", loaded)
        monkeypatch.setattr(module, "load_tokenizer", loaded)
