"""Load a script of ``benchmarks/`` as a module (they are scripts, not a package), for the
tests of their scoring logic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str):
    """The module of ``benchmarks/<name>.py`` (registered in ``sys.modules`` under ``name``)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
