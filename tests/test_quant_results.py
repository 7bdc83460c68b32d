"""The results table writers (Markdown, JSON, plot) on made-up rows."""

from quant.experiments import TableSettings, plot_results, results_markdown, table_configs


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


def test_markdown_has_every_row_and_the_fp_note(tmp_path):
    md = results_markdown(_rows(), TableSettings(), "python -m quant table")
    assert "already Q4_1" in md and "`python -m quant table`" in md
    assert md.count("\n| ") == 1 + len(_rows())  # header + rows
    assert "| AQAS+SLAC+GPTQ | fp4_e2m1 | W4A8 | 512 | 1 |" in md
    plot_results(_rows(), tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_table_grid_covers_methods_and_formats():
    cfgs = table_configs(TableSettings())
    assert {c.weight_format for _, c, _ in cfgs} == {"int4", "dint4", "fp4_e2m1"}
    labels = {label for label, _, _ in cfgs}
    assert labels == {"RTN", "SmoothQuant", "AQAS", "AQAS+SLAC", "AQAS+SLAC+GPTQ"}
    slac = [L for label, _, L in cfgs if label == "AQAS+SLAC"]
    short = [L for label, _, L in cfgs if label == "AQAS"]
    assert set(slac) == {512} and set(short) == {64}
