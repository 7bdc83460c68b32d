"""The results table writers (Markdown, JSON, plot) on made-up rows."""

import json
import stat
import types

import tools
from quant import experiments
from quant.experiments import TableSettings, results_figure, results_markdown, table_configs
from quant.outputs import png_bytes


def _rows():
    rows = [
        {
            "method": "FP",
            "weight_format": "fp",
            "acts": "fp",
            "acts_label": "FP",
            "calib_seqlen": None,
            "ppl": 30.0,
            "gap_to_fp": 0.0,
            "mode": "fake",
            "eval_tokens": 511,
            "eval_windows": 1,
            "mean_alpha": None,
        }
    ]
    for i, (label, cfg, L) in enumerate(table_configs(TableSettings())):
        rows.append(
            {
                "method": label,
                "weight_format": cfg.weight_format,
                "acts": cfg.acts,
                "acts_label": "W4A8",
                "calib_seqlen": L,
                "ppl": 31.0 + i,
                "gap_to_fp": 1.0 + i,
                "mode": "fake",
                "eval_tokens": 511,
                "eval_windows": 1,
                "mean_alpha": 0.5 if "AQAS" in label else None,
            }
        )
    return rows


def test_markdown_has_every_row_and_the_fp_note():
    md = results_markdown(_rows(), TableSettings(), "python -m quant table")
    assert "already Q4_1" in md and "`python -m quant table`" in md
    assert md.count("\n| ") == 1 + len(_rows())  # header + rows
    assert "| AQAS+SLAC+GPTQ | fp4_e2m1 | W4A8 | 512 | 1 |" in md
    png = png_bytes(results_figure(_rows()))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_table_grid_covers_methods_and_formats():
    cfgs = table_configs(TableSettings())
    assert {c.weight_format for _, c, _ in cfgs} == {"int4", "dint4", "fp4_e2m1"}
    labels = {label for label, _, _ in cfgs}
    assert labels == {
        "RTN",
        "SmoothQuant",
        "AQAS",
        "AQAS+SLAC",
        "AQAS+SLAC+GPTQ",
        "AQAS+SLAC+GPTQ+act-order+MSE",
    }
    improved = [(c, L) for label, c, L in cfgs if label.endswith("+act-order+MSE")]
    assert len(improved) == 6 and {L for _, L in improved} == {512}
    for c, _ in improved:
        assert (c.method, c.weight_clip, c.act_order) == ("aqas+gptq", "mse", True)
        assert c.rotate_groups == ("qkv", "o", "gate/up", "down")
    modes = {c.act_mode for c, _ in improved}
    assert modes == {
        "static+qkv,o,gate/up,down-hadamard",
        "per-token+qkv,o,gate/up,down-hadamard",
    }
    assert not [c for _, c, _ in table_configs(TableSettings(improved=False)) if c.act_order]
    slac = [L for label, _, L in cfgs if label == "AQAS+SLAC"]
    short = [L for label, _, L in cfgs if label == "AQAS"]
    assert set(slac) == {512} and set(short) == {64}


def test_run_table_writes_md_json_png_as_a_set(tmp_path, monkeypatch):
    """run_table's file handling, with the model runs replaced by made-up rows."""
    made = iter(_rows())

    def fake_run_one(session, config, calib_seqlen, **kw):
        row = {k: v for k, v in next(made).items() if k not in ("gap_to_fp", "acts_label")}
        return row, types.SimpleNamespace(scales={})

    monkeypatch.setattr(experiments.Session, "open", classmethod(lambda cls, *args: None))
    monkeypatch.setattr(experiments.Session, "check", staticmethod(lambda *args: None))
    monkeypatch.setattr(experiments, "run_one", fake_run_one)
    seen = []
    settings = TableSettings(integer_check_windows=0)
    out = tmp_path / "out"
    rows = experiments.run_table(settings, out, command="cmd", on_row=seen.append)
    assert len(rows) == len(seen) == len(_rows())
    names = ["cache", "results.json", "results.md", "results.png"]
    assert sorted(p.name for p in out.iterdir()) == names
    for p in [*out.glob("results.*"), *(out / "cache").iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) == tools.file_mode()
    assert json.loads((out / "results.json").read_text())["rows"] == rows
    assert (out / "results.md").read_text() == results_markdown(rows, settings, "cmd")
    assert (out / "results.png").read_bytes().startswith(b"\x89PNG")


def test_a_second_table_run_takes_its_jobs_from_the_cache(tmp_path, monkeypatch):
    """Rows come back from out/cache unless --no-cache or a source file changed; the files
    written are the same."""
    calls = []

    def fake_run_one(session, config, calib_seqlen, **kw):
        calls.append(kw.get("label"))
        row = {"method": kw.get("label") or config.method, "weight_format": config.weight_format}
        row |= {"acts": config.acts, "act_mode": config.act_mode, "calib_seqlen": calib_seqlen}
        row |= {"ppl": 30.0 + len(calls), "mode": "fake", "eval_tokens": 511}
        row |= {"eval_windows": 1, "mean_alpha": None}
        return row, types.SimpleNamespace(scales={})

    monkeypatch.setattr(experiments.Session, "open", classmethod(lambda cls, *args: None))
    monkeypatch.setattr(experiments.Session, "check", staticmethod(lambda *args: None))
    monkeypatch.setattr(experiments, "run_one", fake_run_one)
    settings = TableSettings(integer_check_windows=0, formats=("dint4",))
    out = tmp_path / "out"
    first = experiments.run_table(settings, out, command="cmd")
    n = len(calls)
    assert n == len(first) == 1 + len(table_configs(settings))
    assert len(list((out / "cache").glob("*.json"))) == 3  # FP, dint4, dint4-improved
    md = (out / "results.md").read_text()
    again = experiments.run_table(settings, out, command="cmd")
    assert len(calls) == n and again == first  # nothing ran: every job from the cache
    assert (out / "results.md").read_text() == md
    experiments.run_table(settings, out, command="cmd", use_cache=False)
    assert len(calls) == 2 * n  # --no-cache runs every job again
    monkeypatch.setattr(experiments.JobCache, "key", lambda self, name, *a: f"changed-{name}")
    experiments.run_table(settings, out, command="cmd")
    assert len(calls) == 3 * n  # another key (e.g. a source edit): run again
