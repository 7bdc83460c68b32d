"""Files of Debian packages the project reads as data (a Liberty file, the Austen novels).

Installing such a package with ``apt-get install`` drags in heavy dependencies; the files
alone are enough. :func:`debian_file` looks for an installed copy, then for a copy extracted
into the cache, and otherwise (where ``apt-get`` and ``dpkg`` exist) extracts the package
there with ``apt-get download`` + ``dpkg -x``. When none works it raises
:class:`~tools.external.ToolError` with the exact command that provides the file.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .external import ToolError
from .files import cache_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DebianFile:
    """A file (or directory) ``relpath`` inside Debian package ``package``."""

    package: str
    relpath: str

    @property
    def installed(self) -> Path:
        """Where ``apt-get install`` puts it."""
        return Path("/") / PurePosixPath(self.relpath)

    def cache_root(self) -> Path:
        """The directory the package is extracted into: ``cache_dir()/<package>``."""
        return cache_dir() / self.package

    @property
    def cached(self) -> Path:
        return self.cache_root() / PurePosixPath(self.relpath)

    def command(self) -> str:
        """The shell command that provides the file in the cache."""
        return (
            f"apt-get update && cd $(mktemp -d) && apt-get download {self.package} && "
            f"dpkg -x {self.package}_*.deb {self.cache_root()}"
        )


def debian_file(spec: DebianFile, fetch: bool = True) -> Path:
    """Path of ``spec``: installed copy, else cached copy, else extract it (when ``fetch``).

    Raises :class:`ToolError` naming both places looked at and the command that provides it.
    """
    for candidate in (spec.installed, spec.cached):
        if candidate.exists():
            return candidate
    if fetch and shutil.which("apt-get") and shutil.which("dpkg"):
        _extract(spec)
        if spec.cached.exists():
            return spec.cached
    raise ToolError(
        f"{spec.package} not found (looked at {spec.installed} and {spec.cached}): "
        f"install with: {spec.command()}"
    )


def _extract(spec: DebianFile) -> None:
    dest = spec.cache_root()
    log.info("extracting %s into %s", spec.package, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        dl = subprocess.run(
            ["apt-get", "download", spec.package],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = sorted(Path(tmp).glob(f"{spec.package}_*.deb"))
        if dl.returncode != 0 or not debs:
            raise ToolError(
                f"apt-get download {spec.package} failed ({dl.stderr.strip()[-300:]}): "
                f"install with: {spec.command()}"
            )
        staging = Path(tmp) / "x"
        x = subprocess.run(
            ["dpkg", "-x", str(debs[0]), str(staging)], capture_output=True, text=True
        )
        if x.returncode != 0 or not (staging / PurePosixPath(spec.relpath)).exists():
            raise ToolError(f"{debs[0].name} does not contain {spec.relpath} ({x.stderr.strip()})")
        # The cache appears complete or not at all.
        if dest.exists():
            shutil.rmtree(dest)
        staging.replace(dest)
