"""The Austen reader: R lazy-load database layers on bytes built here, and the real package."""

import gzip
import struct
import zlib

import numpy as np
import pytest
import rdata

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
    monkeypatch.setenv("DINTMAC_CACHE", str(tmp_path))
    monkeypatch.setattr(text, "INSTALLED_DIR", tmp_path / "nowhere")
    with pytest.raises(text.TextError) as e:
        text.find_austen_data(auto_fetch=False)
    msg = str(e.value)
    assert "apt-get download r-cran-janeaustenr" in msg and "dpkg -x" in msg


def _real_data():
    try:
        return text.find_austen_data(auto_fetch=False)
    except text.TextError:
        return None


@pytest.mark.skipif(_real_data() is None, reason="r-cran-janeaustenr not extracted here")
def test_real_package_novels():
    """Runs where the Debian package (or its cache) exists; the tests above don't need it."""
    d = _real_data()
    lines = text.austen_lines("persuasion", d)
    assert len(lines) == 8328 and lines[0] == "Persuasion"
    assert len(text.austen_text("prideprejudice", d)) == 684767
