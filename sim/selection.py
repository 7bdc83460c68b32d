"""Which tasks a ``python -m sim`` run does, and where its summary goes.

Everything here is checked before anything is exported or built:

- ``--data-dir`` must be a directory holding layer tiles (``*.npz``); without the option the
  committed ``sim/data`` is used;
- every ``--only`` pattern (a glob, or a substring) must select at least one task: a pattern
  that matches nothing (a typo, a layer whose tile is not in the data directory, a formal
  proof with ``--simulator icarus`` and no ``--formal``) is an error, not a smaller run.

A run of every default task (no ``--only``, no ``--quick``, Verilator, the committed tiles)
writes ``summary.{md,json}``; any other run writes ``summary-<label>.{md,json}`` beside it
(:func:`summary_label`), so a partial run never replaces the full run's summary.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .configs import DATA_DIR, layer_data_files
from .errors import SimError

#: Longest summary label kept as is; longer ones are cut and given a hash of the whole.
MAX_LABEL = 60

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether task ``name`` is selected: no patterns selects all; a pattern with ``*?[`` is
    a glob, any other a substring."""
    if not patterns:
        return True
    return any(
        fnmatch.fnmatch(name, p) if any(ch in p for ch in "*?[") else p in name for p in patterns
    )


def data_dir(arg: str | None) -> Path:
    """The directory of real layer tiles: ``sim/data`` without ``--data-dir``; an explicit
    one must exist and hold at least one ``*.npz`` (else :class:`SimError`)."""
    if arg is None:
        return DATA_DIR
    path = Path(arg)
    fix = (
        "give the directory holding the layer tiles (*.npz written by `python -m quant "
        "export`), or leave --data-dir out for the committed sim/data"
    )
    if not path.exists():
        raise SimError(f"--data-dir {arg} does not exist; {fix}")
    if not path.is_dir():
        raise SimError(f"--data-dir {arg} is not a directory; {fix}")
    if not layer_data_files(path):
        raise SimError(f"--data-dir {arg} has no layer tiles (*.npz); {fix}")
    return path


@dataclass(frozen=True)
class Selection:
    """What a run was asked for: the ``--only`` patterns and every option that changes which
    tests run or how many vectors they drive."""

    only: tuple[str, ...] = ()
    quick: bool = False
    simulator: str = "verilator"
    formal: bool = False
    data_dir: Path = DATA_DIR

    @property
    def custom_data(self) -> bool:
        return Path(self.data_dir).resolve() != DATA_DIR.resolve()

    @property
    def full(self) -> bool:
        """Every default task with the full vector counts (the run ``summary.md`` is for)."""
        return not self.label

    @property
    def label(self) -> str:
        """A file-safe label of how this run differs from the full one ('' for the full run):
        the ``--only`` patterns, ``quick``, the simulator, ``data-<dir>``, joined by ``+``;
        e.g. ``requant-l4-_+quick`` for ``--only 'requant-l4-*' --quick``."""
        parts = [_safe(p) for p in self.only]
        if self.quick:
            parts.append("quick")
        if self.simulator != "verilator":
            parts.append(self.simulator + ("-formal" if self.formal else ""))
        if self.custom_data:
            parts.append("data-" + _safe(Path(self.data_dir).resolve().name))
        label = "+".join(parts)
        if len(label) > MAX_LABEL:
            digest = hashlib.sha256(label.encode()).hexdigest()[:8]
            label = f"{label[: MAX_LABEL - 9]}-{digest}"
        return label

    def describe(self) -> str:
        """The options that made this run partial, as typed (for the summary header)."""
        opts = [f"--only '{p}'" for p in self.only]
        opts += ["--quick"] if self.quick else []
        opts += [f"--simulator {self.simulator}"] if self.simulator != "verilator" else []
        opts += ["--formal"] if self.formal and self.simulator != "verilator" else []
        opts += [f"--data-dir {self.data_dir}"] if self.custom_data else []
        return " ".join(opts)

    def summary_stem(self) -> str:
        """``summary`` for the full run, ``summary-<label>`` for any other."""
        return "summary" if self.full else f"summary-{self.label}"


def _safe(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``.``, ``_``, ``-``
    replaced by one ``_`` (a glob's ``*`` too: ``mac-*`` -> ``mac-_``, apart from the
    substring pattern ``mac-``). The label always follows ``summary-``, so it never makes
    a hidden file or leaves the directory."""
    return _UNSAFE.sub("_", text) or "_"


def select(names: Sequence[str], selection: Selection, layer_names: Sequence[str]) -> list[str]:
    """The task names ``selection`` picks from ``names`` (in order).

    Raises :class:`SimError` for the first ``--only`` pattern that selects nothing, with a
    hint where one helps (the layer tasks there are, the formal proofs under Icarus).
    """
    for p in selection.only:
        if any(matches(n, [p]) for n in names):
            continue
        hint = ""
        if "layer" in p:
            hint = (
                f"; the layer tasks are {', '.join(layer_names)} (the random layer and one "
                f"per tile *.npz in {selection.data_dir})"
            )
        elif "formal" in p and selection.simulator != "verilator" and not selection.formal:
            hint = f"; with --simulator {selection.simulator} the formal proofs need --formal"
        raise SimError(
            f"--only '{p}' matches no task{hint}; `python -m sim --list` shows every task"
        )
    return [n for n in names if matches(n, selection.only)]
