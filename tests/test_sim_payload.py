"""sim.sidecar: batch payload packing against the real sidecars hw exports (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from hw import DesignPoint, export_verilog, pack_fields, unpack_fields
from sim.sidecar import Payload, Sidecar, SidecarError


@pytest.fixture(scope="module")
def sidecars(tmp_path_factory):
    d = tmp_path_factory.mktemp("exports")
    out = {}
    for name, point in {
        "systolic": DesignPoint("systolic", "dint4", "shiftadd", size=4, cols=3, k_max=64),
        "dot": DesignPoint("dot", "fp4_e2m1", size=4, k_max=64),
        "requant": DesignPoint("requant", size=2, acc_width_fixed=40),
    }.items():
        export_verilog(point.build(), f"t_{name}", d / f"t_{name}.v")
        out[name] = Sidecar.load(d / f"t_{name}.json")
    return out


def _random_fields(payload: Payload, n: int, rng) -> dict[str, np.ndarray]:
    values = {}
    for g in payload.groups.values():
        cols = []
        for leaf in g.leaves:
            lo, hi = (
                (-(1 << (leaf.width - 1)), (1 << (leaf.width - 1)) - 1)
                if leaf.signed
                else (
                    0,
                    leaf.mask,
                )
            )
            col = rng.integers(lo, hi, n, endpoint=True)
            col[0], col[-1] = lo, hi  # both ends of every field
            cols.append(col)
        values[g.name] = np.stack(cols, axis=1) if g.is_array else cols[0]
    return values


@pytest.mark.parametrize(
    "design,port",
    [
        ("systolic", "a_in__payload"),
        ("systolic", "w_in__payload"),
        ("systolic", "o__payload"),
        ("dot", "i__payload"),
        ("requant", "i__payload"),
    ],
)
def test_pack_matches_hw_pack_fields_and_round_trips(sidecars, design, port):
    sc = sidecars[design]
    payload = sc.payload(port)
    rng = np.random.default_rng(1)
    n = 50
    values = _random_fields(payload, n, rng)
    words = payload.pack(n, **values)
    fields = sc.port(port)["fields"]
    for i in range(n):
        by_path = {}
        for g in payload.groups.values():
            for j, leaf in enumerate(g.leaves):
                by_path[leaf.path] = int(values[g.name][i, j] if g.is_array else values[g.name][i])
        assert words[i] == pack_fields(fields, by_path)  # hw's reference packer
        assert unpack_fields(fields, words[i]) == by_path
    for name, arr in values.items():
        assert np.array_equal(payload.unpack(words, name), arr)
        assert payload.unpack(words, name).dtype == np.int64


def test_word_packing_matches_int_packing(sidecars):
    sc = sidecars["systolic"]
    payload = sc.payload("a_in__payload")
    rng = np.random.default_rng(2)
    n = 40
    values = _random_fields(payload, n, rng)
    words = payload.pack_words(n, **values)
    assert words.shape == (n, payload.n_words) and words.dtype == np.uint32
    ints = payload.pack(n, **values)
    for i in range(n):
        assert sum(int(w) << (32 * k) for k, w in enumerate(words[i])) == ints[i]
    for name, arr in values.items():
        assert np.array_equal(payload.unpack_words(words, name), arr)


def test_out_of_range_value_names_the_field(sidecars):
    payload = sidecars["dot"].payload("i__payload")
    with pytest.raises(SidecarError, match=r"field a\[0\]"):
        payload.pack(1, a=np.array([[128, 0, 0, 0]]))
    with pytest.raises(SidecarError, match="no field 'psum'"):
        payload.pack(1, psum=np.zeros((1, 4)))


def test_wide_fields_unpack_as_python_ints():
    port = {
        "name": "x",
        "width": 80,
        "signed": False,
        "fields": [
            {"path": "[0]", "offset": 0, "width": 70, "signed": True},
            {"path": "[1]", "offset": 70, "width": 10, "signed": False},
        ],
    }
    p = Payload.from_port(port)
    v = [-(2**69), 2**69 - 1, -1]
    words = p.pack_root(np.array([[0, 5]] * 3, dtype=np.int64))  # int64 path for narrow values
    assert p.unpack(words)[:, 1].tolist() == [5, 5, 5]
    raw = [(x & (2**70 - 1)) | (7 << 70) for x in v]
    got = p.unpack(raw)
    assert got[:, 0].tolist() == v and got[:, 1].tolist() == [7, 7, 7]


def test_missing_sidecar_says_how_to_make_one(tmp_path):
    with pytest.raises(SidecarError, match="export_verilog"):
        Sidecar.load(tmp_path / "nope.json")
