"""The Austen reader: R lazy-load database layers on bytes built here, and the real package."""

import gzip
import shutil
import struct
import zlib

import numpy as np
import pytest
import rdata

import tools
from quant import text


def _serialize(obj) -> bytes:
    r = rdata.conversion.convert_python_to_r_data(obj, file_type="rds")
    return rdata.unparser.unparse_data(r, file_format="xdr", file_type="rds")


def _write_db(directory, objects: dict[str, np.ndarray], compression: int = 1) -> None:
    """A tiny Rdata.rdx/Rdata.rdb pair in R's lazy-load layout."""
    rdb = b""
    variables = {}
    for name, obj in objects.items():
        payload = _serialize(obj)
        if compression == 1:
            chunk = struct.pack(">I", len(payload)) + zlib.compress(payload)
        else:  # bzip2-style layout: length, method tag, data ("0" = stored)
            chunk = struct.pack(">I", len(payload)) + b"0" + payload
        variables[name] = np.array([len(rdb), len(chunk)], dtype=np.int32)
        rdb += chunk
    index = {
        "variables": variables,
        "references": {},
        "compressed": np.array([True]) if compression == 1 else np.array([compression]),
    }
    (directory / "Rdata.rdb").write_bytes(rdb)
    (directory / "Rdata.rdx").write_bytes(gzip.compress(_serialize(index)))


NOVEL_A = np.array(["PERSUASION", "", "by Jane Austen", "Chapter 1", "Sir Walter Elliot"])
NOVEL_B = np.array(["PRIDE AND PREJUDICE", "It is a truth universally acknowledged"])


@pytest.mark.parametrize("compression", [1, 3])
def test_reader_on_built_database(tmp_path, compression):
    _write_db(tmp_path, {"persuasion": NOVEL_A, "prideprejudice": NOVEL_B}, compression)
    variables, comp = text.read_index(tmp_path / "Rdata.rdx")
    assert sorted(variables) == ["persuasion", "prideprejudice"]
    assert comp == compression
    assert variables["persuasion"][0] == 0
    assert text.austen_lines("persuasion", tmp_path) == list(NOVEL_A)
    assert text.austen_lines("prideprejudice", tmp_path) == list(NOVEL_B)
    assert text.read_text("austen:prideprejudice", tmp_path) == "\n".join(NOVEL_B)


def test_reader_layers_reject_corrupt_bytes(tmp_path):
    with pytest.raises(text.TextError, match="neither gzip"):
        text.decompress_index(b"not compressed at all")
    payload = _serialize(NOVEL_B)
    chunk = struct.pack(">I", len(payload) + 1) + zlib.compress(payload)
    with pytest.raises(text.TextError, match="length mismatch"):
        text.decompress_object(chunk)
    with pytest.raises(text.TextError, match="R serialization"):
        text._parse_r(b"PK\x03\x04 zip file")
    _write_db(tmp_path, {"persuasion": NOVEL_A})
    with pytest.raises(text.TextError, match="no object 'emma'"):
        text.read_lazyload(tmp_path, "emma")
    with pytest.raises(text.TextError, match="unknown novel"):
        text.austen_lines("ulysses", tmp_path)


def test_plain_text_file_and_split(tmp_path):
    p = tmp_path / "book.txt"
    p.write_text("Call me Ishmael.\n", encoding="utf-8")
    assert text.read_text(p) == "Call me Ishmael.\n"
    with pytest.raises(text.TextError, match="neither an Austen novel"):
        text.read_text(tmp_path / "missing.txt")
    text.check_split("prideprejudice", "persuasion")
    with pytest.raises(text.TextError, match="both use"):
        text.check_split("austen:persuasion", "persuasion")


def test_missing_data_error_names_the_commands(tmp_path, monkeypatch):
    """Not installed, not cached, not fetched: tools' error names the commands that fix it."""
    monkeypatch.setenv("DINTMAC_CACHE", str(tmp_path))
    # A data path that no installed package has, in the real package's name.
    missing = tools.DebianFile(text.AUSTEN_DATA.package, "nowhere/janeaustenr/data")
    monkeypatch.setattr(text, "AUSTEN_DATA", missing)
    with pytest.raises(tools.ToolError) as e:
        text.find_austen_data(auto_fetch=False)
    msg = str(e.value)
    assert "apt-get download r-cran-janeaustenr" in msg and "dpkg -x" in msg
    assert str(tmp_path / "r-cran-janeaustenr") in msg  # where it would be extracted


def test_package_without_database_is_a_text_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DINTMAC_CACHE", str(tmp_path))
    monkeypatch.setattr(text, "AUSTEN_DATA", tools.DebianFile("r-cran-x", "nowhere/data"))
    (tmp_path / "r-cran-x" / "nowhere" / "data").mkdir(parents=True)
    (tmp_path / "r-cran-x" / "nowhere" / "data" / "Rdata.rdx").write_bytes(b"")
    with pytest.raises(text.TextError, match="has no Rdata.rdb"):
        text.find_austen_data(auto_fetch=False)


def test_real_package_novels():
    """The real package: installed, cached, or extracted into the cache by tools.debian_file.

    Skips only where it is absent and cannot be fetched because apt-get or dpkg is missing;
    with apt-get present, a failed fetch is a failure (CI fetches the package).
    """
    spec = text.AUSTEN_DATA
    have = spec.installed.exists() or spec.cached.exists()
    if not have and not (shutil.which("apt-get") and shutil.which("dpkg")):
        pytest.skip(f"{spec.package} is not installed or cached, and apt-get/dpkg are missing")
    d = text.find_austen_data()
    lines = text.austen_lines("persuasion", d)
    assert len(lines) == 8328 and lines[0] == "Persuasion"
    assert len(text.austen_text("prideprejudice", d)) == 684767
