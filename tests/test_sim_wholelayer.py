"""sim.wholelayer (``layer-smollm2-full``): the packing of a schedule's beats for the C++
driver, where the layer data comes from, and (slow) the committed sample of SmolLM2 layer 0
through a small exported tile, passing, and failing with a broken decoder."""

from __future__ import annotations

import numpy as np
import pytest

import golden
import hw
from sim import cxxdriver, wholelayer
from sim.export import FAULT_ENV
from sim.sidecar import Sidecar


@pytest.fixture(scope="module")
def tile_sidecar(tmp_path_factory):
    d = tmp_path_factory.mktemp("tile")
    hw.export_verilog(hw.Tile(4, 4, "dint4", depth=8, k_max=64), "t", d / "t.v")
    return Sidecar.load(d / "t.json")


def test_pack_phases_packs_every_phase_like_the_sidecar(tile_sidecar):
    """One packing call per stream over the distinct phases gives, for every phase in order,
    the words of packing that phase alone (activation blocks repeat once per N-tile)."""
    rng = np.random.default_rng(5)
    fmt = golden.get("dint4")
    a = rng.integers(-127, 128, (19, 10))
    w = rng.integers(0, 16, (9, 10))
    M, sh = golden.requant_constants(rng.uniform(1e-3, 1e-1, 9))
    sched = golden.schedule(a, w, M, sh, golden.TileGeometry(4, 4, 8, fmt))
    got = wholelayer.pack_phases(tile_sidecar, sched)
    assert len(got) == len(sched.phases)
    ports = dict(zip(("params", "weights", "act"), wholelayer.INPUTS, strict=True))
    for (index, words), ph in zip(got, sched.phases, strict=True):
        st = tile_sidecar.stream(ports[ph.stream])
        assert wholelayer.INPUTS[index] == st.name
        alone = cxxdriver.beat_words(st, st.payload.pack_words(ph.beats, **ph.fields), ph.last)
        assert np.array_equal(words, alone)
    # the tlast column is the schedule's
    acts = [w for (i, w), ph in zip(got, sched.phases, strict=True) if ph.stream == "act"]
    assert all(w[-1, -1] == 1 and not w[:-1, -1].any() for w in acts)


def test_find_layer_falls_back_to_the_committed_sample(tmp_path):
    data = wholelayer.find_layer(tmp_path / "none", log=print, allow_export=False)
    assert data.kind == "sample" and data.directory == wholelayer.SAMPLE_DIR
    assert len(data.files) == 7 and "SAMPLE" in data.describe()
    names = [golden.layerfile.load(f).meta["layer"].split(".")[-1] for f in data.files]
    assert sorted(names) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


def test_read_layer_names_a_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        wholelayer.read_layer(tmp_path, "export")


@pytest.mark.slow
def test_sample_layer_through_the_tile_passes_and_a_broken_decoder_fails(
    tmp_path, monkeypatch, restore_environ
):
    from sim.build import prepare_env

    monkeypatch.setattr(wholelayer, "TILE_SIZE", 4)
    monkeypatch.setattr(wholelayer, "TILE_DEPTH", 32)
    prepare_env("verilator", tmp_path)
    missing = tmp_path / "no-export"
    ok = wholelayer.run(tmp_path / "good", 2, export_dir=missing, allow_export=False)
    assert [r.passed for r in ok] == [True], ok[0].message
    r = ok[0]
    assert r.macs == sum(
        int(np.prod(golden.layerfile.load(f).shape))
        for f in wholelayer.find_layer(missing, allow_export=False).files
    )
    assert r.extra["data"] == "sample" and len(r.extra["linears"]) == 7
    monkeypatch.setenv(FAULT_ENV, "dint4:3:5")
    bad = wholelayer.run(tmp_path / "bad", 2, export_dir=missing, allow_export=False)
    assert not bad[0].passed and "mismatch at output beat" in bad[0].message
    assert bad[0].macs == 0
