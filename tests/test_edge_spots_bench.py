"""benchmarks/bench_edge_spots.py: distances to panel edges and the chance positions, on a
two-panel geometry (no data, no CrystFEL needed)."""

from __future__ import annotations

import numpy as np
from _bench_modules import load_benchmark

from peaknet_gui.geometry import Geometry

eb = load_benchmark("bench_edge_spots")


def _two_panels():
    """Panels p0 (rows 0-99) and p1 (rows 100-299) of a 300 x 50 slab."""
    geom = Geometry.single_panel((100, 50), 100e-6, 0.1, 25.0, 50.0)
    lower = geom.copy().panels[0]
    lower.name, lower.min_ss, lower.max_ss = "p1", 100, 299
    geom.panels.append(lower)
    return geom


def test_edge_distance_is_to_the_nearest_edge_of_the_own_panel():
    geom = _two_panels()
    xy = np.array([[0.0, 50.0], [25.0, 99.0], [25.0, 101.0], [25.0, 200.0], [49.0, 299.0], [80.0, 10.0]])
    d = eb.edge_distance(xy, geom)
    # the first column; the last row of p0; a row above p1's first; p1's middle (25 px from a side);
    # p1's corner; outside both panels
    np.testing.assert_allclose(d[:5], [0.0, 0.0, 1.0, 24.0, 0.0])
    assert np.isnan(d[5])


def test_chance_positions_cover_the_panels_by_area():
    geom = _two_panels()
    xy = eb.random_positions(geom, n=30000, seed=3)
    d = eb.edge_distance(xy, geom)
    assert np.isfinite(d).all()  # every position on a panel
    in_p1 = (xy[:, 1] >= 100).mean()
    assert abs(in_p1 - 2.0 / 3.0) < 0.02  # p1 has twice p0's area
