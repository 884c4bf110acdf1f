"""Spots on the edges of a multi-panel detector's panels: are the reference list's there Bragg
reflections?  And the program against the list with and without the edges.

    .venv/bin/python benchmarks/bench_edge_spots.py --lattice-work DIR [--set cspad] [--geom PATH]
        [--edge-px 2.5] [--weights W]

``DIR`` is the work folder of a lattice run on the set's frames (``peaknet evaluate --lattice CELL
--data ... --work-dir DIR``): its indexamajig streams hold the reflections each frame's lattice
predicts.  For every frame the reference spots (DIALS' lists in ``../shared/data/real``) within
``--edge-px`` of a panel edge are counted and checked against the lattice (a predicted reflection
within 2 px, whatever its strength), beside the spots inside the panels and the chance level
(random positions on the panels).  Then the program (as
``peaknet find`` runs it, :mod:`bench_real_frames`) is matched to the lists within 2 px, once with
every spot and once with neither list's spots near an edge.  On the LCLS CSPAD stills 47 of
DIALS' 283 spots lie within 2.5 px of an ASIC edge and none of them on the lattice, against 79 %
and 41 % of the spots inside (chance: 1 % and 0 %): they are edge artifacts, and a finder that leaves
them out is right.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_real_frames  # noqa: E402
from peaknet_gui.lattice.streamrefl import read_chunks  # noqa: E402
from peaknet_gui.peaks.matching import match_peaks  # noqa: E402
from peaknet_gui.pipeline.settings import FinderSettings  # noqa: E402


def edge_distance(xy: np.ndarray, geometry) -> np.ndarray:
    """Distance in pixels from each (fs, ss) position to the nearest edge of its panel (NaN
    outside every panel)."""
    out = np.full(len(xy), np.nan)
    for p in geometry.panels:
        x, y = xy[:, 0], xy[:, 1]
        inside = (x >= p.min_fs - 0.5) & (x <= p.max_fs + 0.5) & (y >= p.min_ss - 0.5) & (y <= p.max_ss + 0.5)
        d = np.minimum.reduce([x - p.min_fs, p.max_fs - x, y - p.min_ss, p.max_ss - y])
        out[inside] = np.maximum(d[inside], 0.0)
    return out


def random_positions(geometry, n: int = 20000, seed: int = 0) -> np.ndarray:
    """``n`` positions spread uniformly over the panels (the chance level of "on the lattice")."""
    rng = np.random.default_rng(seed)
    panels = geometry.panels
    area = np.array([(p.max_fs - p.min_fs + 1) * (p.max_ss - p.min_ss + 1) for p in panels], dtype=float)
    which = rng.choice(len(panels), size=n, p=area / area.sum())
    lo = np.array([[p.min_fs, p.min_ss] for p in panels], dtype=float)[which]
    hi = np.array([[p.max_fs, p.max_ss] for p in panels], dtype=float)[which]
    return lo + rng.uniform(size=(n, 2)) * (hi - lo)


def predicted_by_file(work: Path) -> dict:
    """{frame file name: (n, 2) predicted reflection positions} of the indexed frames of the
    streams in ``work`` (the first crystal of each)."""
    out = {}
    for stream in sorted(work.glob("*.stream")):
        for chunk in read_chunks(stream):
            if chunk.indexed:
                refl = chunk.crystals[0].reflections
                out[Path(chunk.filename).name] = np.stack([refl.fs, refl.ss], 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lattice-work", required=True, help="work folder of a peaknet evaluate --lattice run")
    ap.add_argument("--set", default="cspad", help="a multi-panel set of bench_real_frames (default: cspad)")
    ap.add_argument("--geom", help="geometry instead of the set's (e.g. the CSPAD with its gain stated)")
    ap.add_argument("--edge-px", type=float, default=2.5)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    inputs, spots, geom_path = bench_real_frames.sets()[args.set]
    predicted = predicted_by_file(Path(args.lattice_work))
    every = np.zeros(3)
    inner = np.zeros(3)
    for frame, _, found, ref, an in bench_real_frames.analysed_frames(inputs, spots, args.geom or geom_path, args.weights,
                                                                       FinderSettings()):
        name = Path(frame.event.path).name
        geometry = an.geometry
        near = edge_distance(ref, geometry) < args.edge_px
        line = f"{name}: reference spots {len(ref)}, within {args.edge_px:g} px of a panel edge {near.sum()}"
        pred = predicted.get(name)
        if pred is not None and len(pred):
            tree = cKDTree(pred)
            on = tree.query(ref)[0] <= 2.0
            line += (f"; on the lattice: near an edge {on[near].sum()} of {near.sum()}, inside {on[~near].mean():.2f}"
                     f" (chance: {np.mean(tree.query(random_positions(geometry))[0] <= 2.0):.2f})")
        else:
            line += "; not indexed in the lattice run"
        print(line)
        m = match_peaks(found, ref, 2.0)
        every += [m.tp, m.fp, m.fn]
        keep = ~(edge_distance(found, geometry) < args.edge_px)
        m = match_peaks(found[keep], ref[~near], 2.0)
        inner += [m.tp, m.fp, m.fn]
    for label, (tp, fp, fn) in [("every spot", every), (f"away from panel edges ({args.edge_px:g} px, both lists)", inner)]:
        print(f"program against the lists, {label}: recall {tp / max(tp + fn, 1):.3f} precision {tp / max(tp + fp, 1):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
