"""Calibration and evaluation text: Jane Austen's novels, or any plain text file.

The novels come from the Debian package ``r-cran-janeaustenr``: an R lazy-load
database, ``data/Rdata.rdx`` (the index) and ``data/Rdata.rdb`` (the objects).

- ``Rdata.rdx`` is a gzip (or zlib) compressed R serialization of a list with
  ``variables`` (name -> integer pair ``(offset, length)`` into the ``.rdb``),
  ``references`` and ``compressed`` (TRUE = zlib, 2 = bzip2, 3 = xz).
- each object in ``Rdata.rdb`` is ``length`` bytes at ``offset``: a 4-byte
  big-endian uncompressed length, then (for bzip2/xz only) a one-byte method
  tag, then the compressed R serialization of the object (a character vector
  of lines for each novel).

R serialization itself is parsed by the PyPI library ``rdata``.

The data directory is :data:`AUSTEN_DATA`, found by ``tools.debian_file``: an
installed copy (``/usr/lib/R/site-library/janeaustenr/data``), else a copy extracted
into ``tools.cache_dir()/r-cran-janeaustenr``, else (where apt-get and dpkg exist) it
is extracted there with ``apt-get download`` + ``dpkg -x``; otherwise
``tools.ToolError`` gives the exact commands. Malformed data is a :class:`TextError`.

Split: calibration uses *Pride and Prejudice* (``prideprejudice``); evaluation
uses *Persuasion* (``persuasion``). They never share a novel (checked).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

import tools

from .errors import QuantError

#: The R lazy-load database of the novels, inside the Debian package that ships it.
AUSTEN_DATA = tools.DebianFile("r-cran-janeaustenr", "usr/lib/R/site-library/janeaustenr/data")
NOVELS = (
    "emma",
    "mansfieldpark",
    "northangerabbey",
    "persuasion",
    "prideprejudice",
    "sensesensibility",
)
CALIBRATION_NOVEL = "prideprejudice"
EVALUATION_NOVEL = "persuasion"


class TextError(QuantError):
    """Text data is missing or malformed; the message says what to do."""


def find_austen_data(auto_fetch: bool = True) -> Path:
    """Directory holding ``Rdata.rdx`` and ``Rdata.rdb`` of janeaustenr (see module doc).

    Raises ``tools.ToolError`` (with the commands that provide it) if the package is neither
    installed nor cached and cannot be fetched, :class:`TextError` if it lacks the database.
    """
    directory = tools.debian_file(AUSTEN_DATA, fetch=auto_fetch)
    missing = [n for n in ("Rdata.rdx", "Rdata.rdb") if not (directory / n).is_file()]
    if missing:
        raise TextError(
            f"{directory} has no {' or '.join(missing)}; is {AUSTEN_DATA.package} intact?"
        )
    return directory


# ---- R lazy-load database --------------------------------------------------------


def _parse_r(data: bytes):
    """Convert one R serialization (uncompressed bytes) to Python with ``rdata``."""
    import rdata

    if not data.startswith((b"X\n", b"A\n", b"B\n")):
        raise TextError("not an R serialization (expected an 'X\\n', 'A\\n' or 'B\\n' header)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata warns that a bare serialization is "RDS"
        parsed = rdata.parser.parse_data(data)
    return rdata.conversion.convert(parsed)


def decompress_index(raw: bytes) -> bytes:
    """Decompress an ``.rdx`` file: gzip, or a 4-byte length + zlib stream."""
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if len(raw) > 4:
        try:
            return zlib.decompress(raw[4:])
        except zlib.error:
            pass
    raise TextError("R lazy-load index is neither gzip nor length+zlib compressed")


def read_index(rdx: Path | bytes) -> tuple[dict[str, tuple[int, int]], int]:
    """Parse an ``.rdx`` index: ``({name: (offset, length)}, compression)``.

    ``compression`` is 1 (zlib), 2 (bzip2) or 3 (xz), R's ``compressed`` field.
    """
    raw = rdx if isinstance(rdx, bytes) else Path(rdx).read_bytes()
    index = _parse_r(decompress_index(raw))
    if not isinstance(index, dict) or "variables" not in index:
        raise TextError("R lazy-load index has no 'variables' entry")
    variables = {
        str(k): (int(np.asarray(v).reshape(-1)[0]), int(np.asarray(v).reshape(-1)[1]))
        for k, v in index["variables"].items()
    }
    comp = np.asarray(index.get("compressed", True)).reshape(-1)
    compression = int(comp[0]) if comp.size else 1
    return variables, compression


def decompress_object(chunk: bytes, compression: int = 1) -> bytes:
    """One ``.rdb`` object: 4-byte big-endian length, [method tag], compressed payload."""
    if len(chunk) < 5:
        raise TextError(f"R lazy-load object of {len(chunk)} bytes is truncated")
    (n,) = struct.unpack(">I", chunk[:4])
    body = chunk[4:]
    if compression in (2, 3):
        tag, body = body[:1], body[1:]
        if tag == b"0":
            out = body
        elif tag == b"2":
            out = bz2.decompress(body)
        elif tag == b"X":
            out = lzma.decompress(body)
        elif tag == b"Z":
            out = zlib.decompress(body)
        else:
            raise TextError(f"unknown R compression tag {tag!r}")
    else:
        out = zlib.decompress(body)
    if len(out) != n:
        raise TextError(f"R object length mismatch: header says {n} bytes, got {len(out)}")
    return out


def read_lazyload(directory: Path, name: str, db: str = "Rdata"):
    """Read object ``name`` from the R lazy-load database ``db.rdx``/``db.rdb`` in directory."""
    directory = Path(directory)
    variables, compression = read_index(directory / f"{db}.rdx")
    if name not in variables:
        raise TextError(f"no object {name!r} in {directory}/{db}.rdx; it has {sorted(variables)}")
    off, length = variables[name]
    with open(directory / f"{db}.rdb", "rb") as f:
        f.seek(off)
        chunk = f.read(length)
    return _parse_r(decompress_object(chunk, compression))


def austen_lines(novel: str, directory: Path | None = None) -> list[str]:
    """Lines of one novel (e.g. ``"persuasion"``) as a list of strings (NA lines -> "")."""
    if novel not in NOVELS:
        raise TextError(f"unknown novel {novel!r}; choose one of {', '.join(NOVELS)}")
    directory = directory if directory is not None else find_austen_data()
    obj = read_lazyload(Path(directory), novel)
    return ["" if (s is None or s is np.nan) else str(s) for s in np.asarray(obj).tolist()]


def austen_text(novel: str, directory: Path | None = None) -> str:
    """One novel as a single string, lines joined with newlines."""
    return "\n".join(austen_lines(novel, directory))


def _novel(source: str | Path) -> str | None:
    """The novel a source names (``austen:<novel>`` or a bare novel name), else None."""
    s = str(source)
    novel = s.split(":", 1)[1] if s.startswith("austen:") else s
    return novel if novel in NOVELS else None


def read_text_file(path: str | Path) -> str:
    """A plain UTF-8 text file that exists and holds more than white space."""
    path = Path(path)
    if not path.is_file():
        raise TextError(
            f"text source {str(path)!r} is neither an Austen novel ({', '.join(NOVELS)}, "
            "optionally prefixed 'austen:') nor an existing text file; give one of those"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TextError(f"text file {str(path)!r} is not UTF-8 ({e.reason}); convert it") from e
    if not text.strip():
        raise TextError(f"text file {str(path)!r} is empty; give a file with text in it")
    return text


def check_source(source: str | Path) -> None:
    """Raise :class:`TextError` unless ``source`` names a novel or a non-empty text file.

    Cheap: a novel is checked by name only (its data is read later), a file is read.
    """
    if _novel(source) is None:
        read_text_file(source)


def read_text(source: str | Path, directory: Path | None = None) -> str:
    """Text of ``austen:<novel>`` (or a bare novel name) or of a plain UTF-8 text file."""
    novel = _novel(source)
    return austen_text(novel, directory) if novel else read_text_file(source)


def _source_key(source: str | Path) -> str:
    return _novel(source) or str(Path(source).resolve())


def check_split(calibration: str | Path, evaluation: str | Path) -> None:
    """Raise unless calibration and evaluation texts are different sources."""
    if _source_key(calibration) == _source_key(evaluation):
        raise TextError(
            f"calibration and evaluation both use {str(calibration)!r}; use different novels "
            f"(default: calibrate on {CALIBRATION_NOVEL}, evaluate on {EVALUATION_NOVEL})"
        )
