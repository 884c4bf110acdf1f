"""Geometry speed figures: .geom parsing, pixel maps, panel assembly, static masks.

    .venv/bin/python benchmarks/bench_geometry.py

Uses the real CSPAD geometry/frame from ../shared/data/real when present, else a synthetic
64-panel rotated geometry of the same size.  Prints medians of repeated runs.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.geometry import (  # noqa: E402
    Assembler, Geometry, Panel, format_geom_text, geometry_bad_mask, parse_geom_text, pixel_map, read_geom,
)

REAL = REPO.parent / "shared" / "data" / "real" / "thermolysin_cspad"


def timeit(fn, repeat=20):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def synthetic_cspad() -> Geometry:
    rng = np.random.default_rng(0)
    panels = []
    for q in range(4):
        for a in range(16):
            ang = np.radians(90 * q + rng.normal(0, 0.3))
            c, s = np.cos(ang), np.sin(ang)
            panels.append(Panel(f"q{q}a{a}", q * 388 + (a % 2) * 194, q * 388 + (a % 2) * 194 + 193,
                                (a // 2) * 185, (a // 2) * 185 + 184, corner_x=rng.uniform(-850, 650),
                                corner_y=rng.uniform(-850, 650), fs=(c, s, 0.0), ss=(-s, c, 0.0), res=9097.5))
    return Geometry(panels=panels, photon_energy_ev=9500.0, clen=0.13)


def main() -> None:
    geom_file = REAL / "cspad_rawlayout_from_dxtbx.geom"
    if geom_file.exists():
        import h5py

        geom = read_geom(geom_file)
        with h5py.File(REAL / "idx-20130301060858401_rawlayout.h5", "r") as f:
            data = f["/data/data"][()].astype(np.float32)
        label = "real CSPAD (64 panels, 1480x1552)"
    else:
        geom = synthetic_cspad()
        data = np.random.default_rng(1).random((1480, 1552), dtype=np.float32)
        label = "synthetic CSPAD-like (64 rotated panels, 1480x1552)"
    text = format_geom_text(geom)
    print(f"# {label}")
    print(f"parse .geom text            {timeit(lambda: parse_geom_text(text)):8.2f} ms")
    print(f"format .geom text           {timeit(lambda: format_geom_text(geom)):8.2f} ms")
    print(f"pixel_map                   {timeit(lambda: pixel_map(geom), 5):8.2f} ms")
    print(f"Assembler() build           {timeit(lambda: Assembler(geom, data.shape), 5):8.2f} ms")
    asm = Assembler(geom, data.shape)
    out = np.empty(asm.shape, np.float32)
    print(f"assemble float32 -> {asm.shape[0]}x{asm.shape[1]} {timeit(lambda: asm.assemble(data)):8.2f} ms")
    print(f"assemble float32 (out=)     {timeit(lambda: asm.assemble(data, out=out)):8.2f} ms")
    mask = data > np.median(data)
    print(f"assemble bool               {timeit(lambda: asm.assemble(mask)):8.2f} ms")
    print(f"assemble uint8              {timeit(lambda: asm.assemble(mask.view(np.uint8))):8.2f} ms")
    print(f"geometry_bad_mask           {timeit(lambda: geometry_bad_mask(geom, data.shape), 5):8.2f} ms")

    pil = Geometry.single_panel((2527, 2463), 172e-6, 0.351, 1261.61, 1306.96, photon_energy_ev=12800.0)
    frame = np.random.default_rng(2).random((2527, 2463), dtype=np.float32)
    print("# single panel Pilatus 6M (2527x2463)")
    print(f"Assembler() build           {timeit(lambda: Assembler(pil, frame.shape), 5):8.2f} ms")
    asm = Assembler(pil, frame.shape)
    out = np.empty(asm.shape, np.float32)
    print(f"assemble float32            {timeit(lambda: asm.assemble(frame)):8.2f} ms")
    print(f"assemble float32 (out=)     {timeit(lambda: asm.assemble(frame, out=out)):8.2f} ms")
    print(f"pixel_map                   {timeit(lambda: pixel_map(pil), 3):8.2f} ms")


if __name__ == "__main__":
    main()
