"""Whole-decoder-layer export (issue 15): every linear of one layer as a layer tile plus a
manifest, each tile shown equal to quant's integer mode, on the tiny LLaMA (no download)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from clicheck import assert_one_line, snapshot

import golden
import quant.__main__
import quant.experiments
import quant.layerexport
import quant.session
from quant import QuantError
from quant.__main__ import main
from quant.export import integer_check, integer_mode_run, layer_tile
from quant.layerexport import MANIFEST, decoder_layer_names, run_decoder_layer_export
from quant.models import LINEARS, decoder_layers, model_info
from quant.pipeline import QuantConfig, quantized_linears
from quant.session import DataSettings, Session
from quant.testing import VOCAB, tiny_llama

SEQLEN = 32
#: The best table row's recipe (AQAS+SLAC+GPTQ, dint4, int8 static), sized for the tiny model.
CONFIG = QuantConfig("aqas+gptq", "dint4", "int8-static", search_tokens=64)


def _session(tmp_path) -> Session:
    gen = torch.Generator().manual_seed(7)
    model = tiny_llama()
    data = DataSettings(
        str(tmp_path / "calib.txt"), str(tmp_path / "eval.txt"), SEQLEN, 1, 4 * SEQLEN
    )
    return Session(
        model,
        model_info(model, "tiny-llama"),
        torch.randint(0, VOCAB, (6 * SEQLEN,), generator=gen),
        torch.randint(0, VOCAB, (2 * SEQLEN,), generator=gen),
        data,
    )


def _export(session, out, **kw):
    kw = {"tokens": SEQLEN, "progress": False, **kw}
    return run_decoder_layer_export(session, CONFIG, SEQLEN, kw.pop("layer", 0), out, **kw)


def _tiles(out) -> dict[str, golden.layerfile.LayerTile]:
    return {p.stem: golden.layerfile.load(p) for p in sorted(out.glob("*.npz"))}


def test_decoder_layer_export_writes_seven_checked_tiles_and_a_manifest(tmp_path):
    session = _session(tmp_path)
    out = tmp_path / "layer0"
    paths, manifest = _export(session, out, command="test")
    names = decoder_layer_names("llama", 0)
    assert len(names) == len(LINEARS["llama"]) == 7
    stems = [n.replace(".", "_") for n in names]
    assert sorted(p.name for p in paths) == sorted([*(s + ".npz" for s in stems), MANIFEST])
    assert json.loads((out / MANIFEST).read_text()) == manifest
    assert [e["name"] for e in manifest["layers"]] == names
    assert manifest["recipe"]["method"] == "aqas+gptq" and manifest["sample"] is None
    assert manifest["quantized_layers"] == "0..0 of 2"
    tiles = _tiles(out)
    assert sorted(tiles) == sorted(stems)
    for entry in manifest["layers"]:
        tile = tiles[entry["file"][: -len(".npz")]]
        t, k, n = tile.shape
        assert (t, k, n) == (entry["T"], entry["K"], entry["N"]) and t == SEQLEN
        assert tile.meta["layer"] == entry["name"] and tile.meta["method"] == "aqas+gptq"
        check = tile.meta["integer_check"]
        assert check == entry["integer_check"]
        assert check["result"] == "pass" and check["tokens"] == t and check["outputs"] == n
        assert 0 <= check["max_error_lsb"] <= 0.5 + 1e-6
    # q/k/v share their input, gate/up theirs; o and down see the layer's own outputs
    q, k, v = (tiles[f"layers_0_self_attn_{x}_proj"] for x in "qkv")
    assert np.array_equal(q.a, k.a) and np.array_equal(q.a, v.a)
    assert tiles["layers_0_mlp_down_proj"].shape[1] == 96  # intermediate size


def test_restricting_quantization_to_the_layer_gives_the_same_tiles(tmp_path):
    """Only layers 0..I are quantized; a whole-model quantization gives identical tiles."""
    session = _session(tmp_path)
    for layer in (0, 1):
        _, fast = _export(session, tmp_path / f"fast{layer}", layer=layer)
        _, whole = _export(session, tmp_path / f"whole{layer}", layer=layer, all_layers=True)
        assert fast["quantized_layers"] == f"0..{layer} of 2"
        assert whole["quantized_layers"] == "0..1 of 2"
        a, b = _tiles(tmp_path / f"fast{layer}"), _tiles(tmp_path / f"whole{layer}")
        assert sorted(a) == sorted(b) and len(a) == 7
        for stem in a:
            for name in golden.layerfile.ARRAYS:
                np.testing.assert_array_equal(getattr(a[stem], name), getattr(b[stem], name))
            assert a[stem].meta == b[stem].meta


def test_sample_is_the_slice_of_the_checked_export(tmp_path):
    session = _session(tmp_path)
    _export(session, tmp_path / "full")
    _, manifest = _export(session, tmp_path / "sample", sample=(8, 16))
    full, sample = _tiles(tmp_path / "full"), _tiles(tmp_path / "sample")
    assert manifest["sample"]["tokens"] == 8 and manifest["window"]["tokens"] == [0, 8]
    assert set(manifest["sample"]["full_integer_check"]) == set(decoder_layer_names("llama", 0))
    for stem, tile in sample.items():
        want = full[stem].slice(8, 16)
        assert tile.shape == (8, want.shape[1], 16)
        for name in golden.layerfile.ARRAYS:
            np.testing.assert_array_equal(getattr(tile, name), getattr(want, name))
        assert tile.meta["integer_check"]["tokens"] == 8
        np.testing.assert_array_equal(tile.expected(), full[stem].expected()[:8, :16])


def test_integer_check_fails_on_a_corrupted_tile(tmp_path):
    session = _session(tmp_path)
    model, _ = session.quantized(CONFIG, SEQLEN, False, output_ranges=True, n_layers=1)
    name = "layers.0.self_attn.o_proj"
    q = quantized_linears(model)[name]
    stop = decoder_layers(model, session.info)[0]
    a, acc = integer_mode_run(model, {name: q}, session.eval_windows(1), stop)[name]
    assert all(m.mode == "fake" and m.last_acc is None for m in quantized_linears(model).values())
    tile = layer_tile(q, a, {"model": "tiny"})
    assert integer_check(tile, q, a, acc)["result"] == "pass"
    bad_m = replace(tile, M=tile.M // 2)  # still a valid file, but a different layer
    with pytest.raises(QuantError, match=r"expected\(\) differs .* M, sh or codes are wrong"):
        integer_check(bad_m, q, a, acc)
    bad_a = tile.a.copy()
    bad_a[3, 5] = 0 if bad_a[3, 5] else 1
    with pytest.raises(QuantError, match=r"int8 inputs differ .* \(first at \[3, 5\]\)"):
        integer_check(replace(tile, a=bad_a), q, a, acc)
    bad_w = tile.w_codes.copy()
    bad_w[0, 0] ^= 1
    with pytest.raises(QuantError, match="weight codes are not the layer's"):
        integer_check(replace(tile, w_codes=bad_w), q, a, acc)


def test_a_failing_check_writes_nothing(tmp_path, monkeypatch):
    real = quant.layerexport.layer_tile

    def corrupted(*args, **kw):
        tile = real(*args, **kw)
        return replace(tile, M=tile.M // 2) if "down_proj" in tile.meta["layer"] else tile

    monkeypatch.setattr(quant.layerexport, "layer_tile", corrupted)
    out = tmp_path / "layer0"
    with pytest.raises(QuantError, match="layers.0.mlp.down_proj: tile.expected"):
        _export(_session(tmp_path), out)
    assert not out.exists()


def test_bad_decoder_layer_is_refused_before_quantizing(tmp_path):
    session = _session(tmp_path)
    with pytest.raises(
        QuantError, match=r"decoder layer 99 does not exist in tiny-llama \(layers 0..1\)"
    ):
        _export(session, tmp_path / "x", layer=99)
    with pytest.raises(QuantError, match="tokens <= 32"):
        _export(session, tmp_path / "x", tokens=33)
    assert not (tmp_path / "x").exists()


def test_cli_decoder_layer_export(tmp_path, monkeypatch, capsys):
    """``python -m quant export --decoder-layer 0``: the model directory is a real tiny
    checkpoint's header; the session (no tokenizer on the tiny model) is the test's."""
    model_dir = tmp_path / "tiny-llama"
    tiny_llama().save_pretrained(model_dir)
    (tmp_path / "calib.txt").write_text("calibration text\n")
    (tmp_path / "eval.txt").write_text("evaluation text\n")
    session = _session(tmp_path)
    monkeypatch.setattr(quant.__main__.Session, "open", classmethod(lambda cls, *a: session))
    monkeypatch.chdir(tmp_path)
    argv = [
        *("export", "--model", str(model_dir), "--calib-text", "calib.txt"),
        *("--eval-text", "eval.txt", "--eval-seqlen", "32", "--calib-tokens", "128"),
        *("--calib-seqlen", "32", "--method", "aqas+gptq", "--search-tokens", "64"),
        *("--decoder-layer", "1", "--tokens", "32", "--sample", "16x8"),
    ]
    assert main(argv) == 0
    out = tmp_path / "build" / "layers" / "tiny-llama-layer1"  # the default directory
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["decoder_layer"] == 1 and manifest["command"].endswith("--sample 16x8")
    assert manifest["sample"]["of"].startswith("the same export without --sample: 32 tokens")
    assert len(_tiles(out)) == 7 and all(t.shape[0] == 16 for t in _tiles(out).values())
    text = capsys.readouterr().out
    assert text.count("integer check pass") == 7 and "in all" in text


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--decoder-layer", "99"], ["decoder layer 99 does not exist", "layers 0..1"]),
        (["--decoder-layer", "-1"], ["argument --decoder-layer:", "--help"]),
        (["--decoder-layer", "0", "--layer", "layers.0.mlp.up_proj"], ["drop --layer"]),
        (["--decoder-layer", "0", "--tokens", "600"], ["600 tokens", "--tokens <= 512"]),
        (["--decoder-layer", "0", "--tokens", "16", "--sample", "32x32"], ["sample of 32"]),
        (["--decoder-layer", "0", "--sample", "32"], ["argument --sample:", "32x32"]),
        (["--sample", "32x32"], ["add --decoder-layer"]),
        (["--all-layers"], ["add --decoder-layer"]),
    ],
)
def test_cli_bad_decoder_layer_export_is_one_line_before_the_model(
    work, monkeypatch, capsys, argv, words
):
    def loaded(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded before the error was found")

    for module in (quant.session, quant.experiments):
        monkeypatch.setattr(module, "load_model", loaded)
        monkeypatch.setattr(module, "load_tokenizer", loaded)
    before = snapshot(work)
    texts = ["--calib-text", "calib.txt", "--eval-text", "eval.txt"]
    try:
        status = main(["export", "--model", str(work / "tiny-llama"), *texts, *argv])
    except SystemExit as e:
        status = e.code
    assert status == 2
    assert_one_line(capsys.readouterr().err, *words)
    assert snapshot(work) == before


def test_searching_scales_in_the_gptq_run_equals_reusing_the_aqas_rows():
    """The table's AQAS+SLAC+GPTQ row reuses the AQAS+SLAC row's scales; the export searches
    them in its own aqas+gptq run: the same scales, so the same quantized layers."""
    session = _session(Path("/nonexistent"))
    _, aqas = session.quantized(QuantConfig("aqas", "dint4", search_tokens=64), SEQLEN, False)
    reused, _ = session.quantized(CONFIG, SEQLEN, False, aqas.scales, output_ranges=True)
    searched, report = session.quantized(CONFIG, SEQLEN, False, output_ranges=True)
    for key, s in aqas.scales.items():
        assert torch.equal(report.scales[key], s), key
    a, b = quantized_linears(reused), quantized_linears(searched)
    for name, q in a.items():
        assert torch.equal(q.w_codes, b[name].w_codes) and torch.equal(q.w_scale, b[name].w_scale)
        assert (q.a_scale, q.out_absmax) == (b[name].a_scale, b[name].out_absmax)


def test_committed_sample_is_a_checked_decoder_layer():
    """``sim/data/smollm2_layer0``: the seven linears of SmolLM2 layer 0, 32 tokens x 32
    outputs, as listed by its manifest (numpy only: readable without torch)."""
    root = Path(__file__).resolve().parents[1] / "sim" / "data" / "smollm2_layer0"
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["sample"] == {**manifest["sample"], "tokens": 32, "outputs": 32}
    assert manifest["recipe"]["method"] == "aqas+gptq" and manifest["model"] == "smollm2-135m"
    names = decoder_layer_names("llama", 0)
    assert [e["name"] for e in manifest["layers"]] == names
    assert set(manifest["sample"]["full_integer_check"]) == set(names)
    for entry in manifest["layers"]:
        tile = golden.layerfile.load(root / entry["file"])
        assert tile.shape == (32, entry["K"], 32) and tile.meta["layer"] == entry["name"]
        assert tile.meta["integer_check"]["result"] == "pass"
        assert tile.expected().shape == (32, 32)
    assert sum(p.stat().st_size for p in root.iterdir()) < 200_000
