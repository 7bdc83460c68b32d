"""Fixtures shared by several test modules."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def restore_environ():
    """The sim runner puts Verilator on PATH and sets OBJCACHE/MAKEFLAGS; undo that afterwards."""
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)
