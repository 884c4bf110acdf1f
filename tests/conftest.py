"""Shared test fixtures.

Real detector frames live in ``../shared/data/real`` beside the checkout (never in the repo);
tests that need them take the ``real_data`` fixture and skip cleanly when the folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import peaknet_gui  # noqa: F401  (first: turns HDF5 file locking off before any test module loads h5py)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("PEAKNET_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real detector frames not found at {REAL_DATA}")
    return REAL_DATA


def real_file(relpath: str) -> Path:
    """Path of one real file, skipping the test when it is absent."""
    p = REAL_DATA / relpath
    if not p.exists():
        pytest.skip(f"real data file not found: {p}")
    return p


@pytest.fixture
def recorder(monkeypatch):
    """GUI tests: the dialog functions record (title, text) instead of blocking on a box."""
    from _gui_support import Recorder

    return Recorder().install(monkeypatch)


@pytest.fixture
def window(qtbot, tmp_path, recorder):
    """GUI tests: a main window with the real analyzer and shared model (skips without weights)."""
    from _gui_support import make_window

    w = make_window(qtbot, tmp_path)
    yield w
    w.close()
