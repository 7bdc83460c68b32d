"""A tiny compile cache for Verilator's design-independent runtime objects.

Every Verilator build compiles the same runtime sources (``verilated.cpp``,
``verilated_vpi.cpp``, ...: about 14 CPU-seconds) next to the few design
files. Verilator's makefile prefixes each compile with ``$(OBJCACHE)``; the
runner points ``OBJCACHE`` at a wrapper that runs ``python -m sim.objcache
c++ ARGS...``. For a source file inside the Verilator include directory the
object and its ``-MMD`` dependency file are looked up by a hash of the compile
command, the compiler version and the source text; every other compile (the
design, cocotb's ``verilator.cpp``) runs unchanged.

Usage: ``python -m sim.objcache CACHE_DIR CXX ARGS...``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _parse(args: list[str]) -> tuple[Path | None, Path | None]:
    """The ``-o`` output and the single ``.cpp`` source of a ``-c`` compile, else Nones."""
    if "-c" not in args or "-o" not in args:
        return None, None
    out = Path(args[args.index("-o") + 1])
    sources = [a for a in args if a.endswith((".cpp", ".cc"))]
    if len(sources) != 1:
        return None, None
    return out, Path(sources[0])


def _key(cxx: str, args: list[str], source: Path) -> str:
    h = hashlib.sha256()
    h.update(subprocess.run([cxx, "--version"], capture_output=True, check=False).stdout)
    h.update("\0".join(args).encode())
    h.update(source.read_bytes())
    return h.hexdigest()[:32]


def main(argv: list[str]) -> int:
    """Compile, or copy the cached object of a runtime source; returns the exit status."""
    cache_dir, cxx, *args = argv
    out, source = _parse(args)
    include = os.environ.get("SIM_OBJCACHE_INCLUDE", "")
    cacheable = (
        out is not None
        and source is not None
        and include
        and source.is_absolute()
        and source.resolve().is_relative_to(Path(include).resolve())
    )
    if not cacheable:
        return subprocess.call([cxx, *args])
    key = _key(cxx, args, source)
    entry = Path(cache_dir) / key
    dep = out.with_suffix(".d")
    if (entry / "obj").is_file():
        shutil.copyfile(entry / "obj", out)
        if (entry / "dep").is_file():
            shutil.copyfile(entry / "dep", dep)
        return 0
    status = subprocess.call([cxx, *args])
    if status == 0:
        # Publish atomically: two builds may compile the same runtime file at once. The
        # entry is a directory (object + dependency file) renamed into place as one, and a
        # build that loses the race drops its copy: a cache protocol, not a file write, so it
        # does not go through tools.atomic_write.
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-"))
        shutil.copyfile(out, tmp / "obj")
        if dep.is_file():
            shutil.copyfile(dep, tmp / "dep")
        try:
            os.replace(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another build published it first
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
