"""``layer-smollm2-full``: every linear of a real decoder layer through the exported tile.

The seven linears of SmolLM2-135M layer 0 (q, k, v, o, gate, up, down) for one 512-token
window of *Persuasion*, as ``quant`` exports them (``golden.layerfile`` tiles and a
``manifest.json``), run through the Verilog of :class:`hw.Tile` (the registry's
``hw.tile_point``: an 8 x 8 lean array, 512 tokens per pass, K-tile accumulators for the
layer's largest K) with the generated Verilator C++ driver (:mod:`sim.cxxdriver`):

1. ``golden.schedule`` turns each linear into the tile's stream of beats (params, weights,
   activations) and the expected output beats (``golden.linear_int8``);
2. the beats are packed by the sidecar's field offsets (the published byte layout) and
   streamed with random ``tvalid`` gaps and ``tready`` back-pressure (:data:`P_VALID`,
   :data:`P_READY` per mille);
3. every output beat (and its ``tlast``) is compared with ``==``, and the assembled ``y`` with
   the tile file's own ``expected()``; ``quant`` checked at export that the same int8 equals
   its integer mode (the manifest's ``integer_check``).

Data, in order of preference: the whole layer exported into ``build/layers/smollm2-layer0``
(``python -m quant export --decoder-layer 0 ...``: :data:`EXPORT_COMMAND`), exported on the
fly when ``quant`` and the model are installed; otherwise the committed compact sample
``sim/data/smollm2_layer0`` (the same seven linears, sliced), and the result says so.

"Verified MACs/s" = useful MACs (T x K x N of every linear) over the wall time of packing,
simulation, reading and comparing (builds and the export excluded; their times are reported).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import golden
import hw
from golden import layerfile

from . import cxxdriver
from .configs import DATA_DIR, TESTBENCHES, SimConfig
from .export import export_config
from .report import Result
from .sidecar import Sidecar

#: The task name (``python -m sim --only layer-smollm2-full``).
TASK = "layer-smollm2-full"
#: The committed compact sample (no torch needed).
SAMPLE_DIR = DATA_DIR / "smollm2_layer0"
#: Where the whole-layer export goes (relative to the working directory, like ``build/``).
EXPORT_DIR = Path("build") / "layers" / "smollm2-layer0"
#: The command that writes it (run with this interpreter when ``quant`` is importable).
EXPORT_COMMAND = [
    "-m",
    "quant",
    "export",
    "--decoder-layer",
    "0",
    "--tokens",
    "512",
    "--method",
    "aqas+gptq",
    "--weights",
    "dint4",
    "--acts",
    "int8-static",
    "--calib-seqlen",
    "512",
]
#: The tile that runs the layer: rows = cols and tokens per pass.
TILE_SIZE, TILE_DEPTH = 8, 512
#: Input streams in the driver's order, and the output.
INPUTS = ("s_axis_params", "s_axis_weights", "s_axis_act")
OUTPUT = "m_axis_out"
#: Rough MACs of the task (orders the work queue: it starts first).
MACS_HINT = 1_800_000_000
#: Per-mille probabilities of an offered beat (tvalid) and of tready on the output.
P_VALID, P_READY = 950, 950


@dataclass(frozen=True)
class LayerData:
    """Where the layer's tiles are, and what they are (``kind``: ``export`` or ``sample``)."""

    directory: Path
    kind: str
    files: tuple[Path, ...]
    manifest: dict

    def describe(self) -> str:
        what = (
            "whole layer, exported by quant"
            if self.kind == "export"
            else "committed compact SAMPLE (install the quant extra and the model, or run "
            "`nox -s layer`, for the whole layer)"
        )
        return f"{self.directory} ({what})"


def quant_available() -> bool:
    """Whether this interpreter can run ``python -m quant export`` (torch and the model)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def read_layer(directory: Path, kind: str) -> LayerData:
    """The tiles a ``manifest.json`` in ``directory`` lists (``python -m quant export
    --decoder-layer`` writes it: ``layers[i]["file"]``, ``golden.layerfile`` files)."""
    path = Path(directory) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: export the layer with quant") from None
    files = tuple(Path(directory) / e["file"] for e in manifest.get("layers", []))
    missing = [str(f) for f in files if not f.exists()]
    if not files or missing:
        raise FileNotFoundError(f"{path}: lists no tiles or missing files {missing}")
    return LayerData(Path(directory), kind, files, manifest)


def find_layer(export_dir: Path = EXPORT_DIR, log=print, allow_export: bool = True) -> LayerData:
    """The whole layer if exported (or exportable now, unless ``allow_export`` is False:
    ``--quick``), else the committed sample."""
    export_dir = Path(export_dir)
    if not (export_dir / "manifest.json").exists() and allow_export and quant_available():
        log(f"{TASK}: exporting the layer with quant into {export_dir} (a few minutes) ...")
        cmd = [sys.executable, *EXPORT_COMMAND, "--out", str(export_dir)]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    if (export_dir / "manifest.json").exists():
        return read_layer(export_dir, "export")
    return read_layer(SAMPLE_DIR, "sample")


def tile_config(k_max: int, weight_format: str) -> SimConfig:
    point = hw.tile_point(weight_format, TILE_SIZE, TILE_SIZE, k_max=k_max, depth=TILE_DEPTH)
    return SimConfig(TASK, TESTBENCHES["tile"], {"dut": point})


def _key(phase) -> tuple:
    """Identity of a phase's beats: the schedule's phases are views of the padded layer, so
    equal (address, shape, strides) of every field means equal beats (an activation block is
    streamed once per N-tile: packed once here)."""
    return (
        (phase.stream,)
        + tuple(
            (f, v.__array_interface__["data"][0], v.shape, v.strides)
            for f, v in phase.fields.items()
        )
        + ((phase.last.__array_interface__["data"][0], phase.last.shape),)
    )


def pack_phases(sc: Sidecar, sched: golden.Schedule) -> list[tuple[int, np.ndarray]]:
    """The driver's phases: every phase's beats packed by the sidecar's fields, with one
    packing call per stream for the distinct phases (a whole-layer linear has ~30,000 phases,
    most of them an activation block repeated for each N-tile)."""
    ports = dict(zip(("params", "weights", "act"), INPUTS, strict=True))
    index = {s: i for i, s in enumerate(ports)}
    packed: dict[tuple, np.ndarray] = {}
    for stream, port in ports.items():
        unique = {}
        for p in sched.phases_of(stream):
            unique.setdefault(_key(p), p)
        if not unique:
            continue
        phases = list(unique.values())
        st = sc.stream(port)
        fields = {f: np.concatenate([p.fields[f] for p in phases]) for f in phases[0].fields}
        last = np.concatenate([p.last for p in phases])
        words = cxxdriver.beat_words(st, st.payload.pack_words(len(last), **fields), last)
        cuts = np.cumsum([p.beats for p in phases])[:-1]
        packed.update(zip(unique, np.split(words, cuts), strict=True))
    return [(index[p.stream], packed[_key(p)]) for p in sched.phases]


def run_linear(sc: Sidecar, exe: Path, tile: layerfile.LayerTile, work: Path, seed: int) -> dict:
    """One linear through the driver; a dict with the outcome and its timings."""
    t0 = time.perf_counter()
    params = sc.parameters
    geo = golden.TileGeometry(
        params["rows"], params["cols"], params["depth"], tile.weight_format, "int8"
    )
    sched = golden.schedule(tile.a, tile.w_codes, tile.M, tile.sh, geo)
    work.mkdir(parents=True, exist_ok=True)
    in_path, out_path = work / "beats.bin", work / "out.bin"
    cxxdriver.write_input(in_path, pack_phases(sc, sched))
    t_pack = time.perf_counter() - t0
    n_out = len(sched.expected_out)
    r = subprocess.run(
        [str(exe), str(in_path), str(out_path), str(P_VALID), str(P_READY), str(seed), str(n_out)],
        capture_output=True,
        text=True,
        check=False,
    )
    name = tile.meta["layer"]
    macs = int(sched.macs)
    out = {"layer": name, "T": sched.T, "K": sched.K, "N": sched.N, "macs": macs}
    if r.returncode != 0 or not r.stdout.strip():
        return {**out, "ok": False, "message": f"{name}: C++ driver: {r.stderr.strip()[-500:]}"}
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    t1 = time.perf_counter()
    o = sc.stream(OUTPUT)
    words = cxxdriver.read_output(out_path, cxxdriver.stream_words(o))
    got = o.payload.unpack_words(words[:, : o.payload.n_words], "y")
    got_last = words[:, -1] == 1
    msg = ""
    if got.shape != sched.expected_out.shape:
        msg = f"{name}: expected {n_out} output beats, got {len(got)}"
    elif not np.array_equal(got, sched.expected_out):
        beat, col = (int(x) for x in np.argwhere(got != sched.expected_out)[0])
        msg = (
            f"{name}: mismatch at output beat {beat}, column {col}: expected "
            f"{int(sched.expected_out[beat, col])}, got {int(got[beat, col])}"
        )
    elif not np.array_equal(got_last, sched.expected_last):
        beat = int(np.argwhere(got_last != sched.expected_last)[0][0])
        msg = f"{name}: tlast of output beat {beat} is {int(got_last[beat])}, expected the other"
    elif not np.array_equal(sched.assemble(got), tile.expected()):
        msg = f"{name}: assembled y differs from the tile's golden.linear_int8 output"
    t_check = time.perf_counter() - t1
    return {
        **out,
        "ok": not msg,
        "message": msg,
        "cycles": int(stats["cycles"]),
        "sim_seconds": stats["seconds"],
        "pack_seconds": round(t_pack, 2),
        "check_seconds": round(t_check, 2),
        "array_utilization": round(sched.array_macs / (stats["cycles"] * geo.rows * geo.cols), 3),
    }


def run(
    build_root: Path,
    jobs: int = 2,
    export_dir: Path = EXPORT_DIR,
    log=print,
    allow_export: bool = True,
) -> list[Result]:
    """The whole-layer task: one :class:`Result` (MACs checked, MACs/s, pass)."""
    t_start = time.perf_counter()
    data = find_layer(export_dir, log, allow_export)
    t_export = time.perf_counter() - t_start
    tiles = [layerfile.load(f) for f in data.files]
    formats = {t.weight_format.name for t in tiles}
    if len(formats) != 1:
        raise ValueError(f"{data.directory}: the linears mix weight formats {sorted(formats)}")
    k_max = max(t.shape[1] for t in tiles)
    config = tile_config(k_max, formats.pop())
    cdir = Path(build_root).resolve() / TASK
    t0 = time.perf_counter()
    meta = export_config(config, cdir / "src")
    sc = Sidecar.load(cdir / "src" / f"{config.top}.json")
    exe = cxxdriver.build_driver(sc, list(INPUTS), OUTPUT, cdir / "cxx", jobs=jobs)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Largest linears first, so that the driver processes finish together.
    order = sorted(range(len(tiles)), key=lambda i: -int(np.prod(tiles[i].shape)))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = dict(
            zip(
                order,
                pool.map(
                    lambda i: run_linear(
                        sc, exe, tiles[i], cdir / "run" / f"linear{i}", seed=11 + i
                    ),
                    order,
                ),
                strict=True,
            )
        )
    outcomes = [done[i] for i in range(len(tiles))]
    wall = time.perf_counter() - t0
    failed = [o for o in outcomes if not o["ok"]]
    macs = sum(o["macs"] for o in outcomes)
    shapes = ", ".join(f"{o['layer'].split('.')[-1]} {o['K']}->{o['N']}" for o in outcomes)
    desc = (
        f"{data.describe()}: {len(tiles)} linears x {tiles[0].shape[0]} tokens ({shapes}); "
        f"{meta['top']} = {config.designs['dut'].name}, {jobs} driver processes, "
        f"valid/ready {P_VALID / 10:g}%/{P_READY / 10:g}%"
    )
    return [
        Result(
            "whole_layer",
            TASK,
            not failed,
            cycles=sum(o.get("cycles", 0) for o in outcomes),
            macs=macs if not failed else 0,
            seconds=round(wall, 3),
            message="; ".join(o["message"] for o in failed),
            extra={
                "layer": desc,
                "data": data.kind,
                "integer_check": data.manifest.get("integer_check", "not recorded"),
                "export_seconds": round(t_export, 1),
                "build_seconds": round(t_build, 1),
                "linears": outcomes,
            },
        )
    ]
