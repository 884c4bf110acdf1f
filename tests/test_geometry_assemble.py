"""Assembling multi-panel slabs into display images (peaknet_gui.geometry.assemble)."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.errors import GeometryError
from peaknet_gui.geometry import Assembler, Geometry, Panel, pixel_map
from peaknet_gui.geometry.crystfel_geom import read_geom
from tests.conftest import real_file

CSPAD_GEOM = "thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"
CSPAD_DATA = "thermolysin_cspad/idx-20130301060858401_rawlayout.h5"


def _panel(name, min_fs, max_fs, min_ss, max_ss, cx, cy, fs=(1.0, 0.0, 0.0), ss=(0.0, 1.0, 0.0)):
    return Panel(name=name, min_fs=min_fs, max_fs=max_fs, min_ss=min_ss, max_ss=max_ss, corner_x=cx, corner_y=cy,
                 fs=fs, ss=ss, res=10000.0, clen=0.1)


def synthetic_rotated() -> Geometry:
    """Four 30x20 panels in a 60x40 slab: identity, rotated 90, rotated 180, rotated 30 degrees."""
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    return Geometry(panels=[
        _panel("a", 0, 29, 0, 19, 0.0, 0.0),
        _panel("b", 30, 59, 0, 19, 100.0, 0.0, fs=(0.0, 1.0, 0.0), ss=(-1.0, 0.0, 0.0)),
        _panel("c", 0, 29, 20, 39, 60.0, 80.0, fs=(-1.0, 0.0, 0.0), ss=(0.0, -1.0, 0.0)),
        _panel("d", 30, 59, 20, 39, 120.0, 40.0, fs=(c, s, 0.0), ss=(-s, c, 0.0)),
    ], clen=0.1)


def test_trivial_single_panel_is_identity():
    geom = Geometry.single_panel((37, 53), 1e-4, 0.1, 20.3, 11.7)
    asm = Assembler(geom, (37, 53))
    assert asm.shape == (37, 53)
    data = np.random.default_rng(1).random((37, 53)).astype(np.float32)
    out = asm.assemble(data)
    np.testing.assert_array_equal(out, data)
    assert out is not data
    assert asm.to_panel(5.2, 7.9) == (0, pytest.approx(7.9), pytest.approx(5.2))
    assert asm.to_display(7.9, 5.2) == (pytest.approx(5.2), pytest.approx(7.9))
    assert asm.to_panel(-3, 0)[0] == -1


def test_rotated_panels_exact_positions():
    geom = synthetic_rotated()
    asm = Assembler(geom, (40, 60))
    data = np.arange(40 * 60, dtype=np.float64).reshape(40, 60)
    img = asm.assemble(data)
    # every data pixel of the axis-aligned panels a, b, c appears at its lab position
    for name in "abc":
        p = geom.panels[geom.panel_index(name)]
        ss, fs = np.mgrid[p.min_ss:p.max_ss + 1, p.min_fs:p.max_fs + 1]
        row, col = asm.to_display(fs.ravel(), ss.ravel())
        np.testing.assert_allclose(row, np.round(row), atol=1e-9)
        np.testing.assert_array_equal(img[np.round(row).astype(int), np.round(col).astype(int)], data[ss, fs].ravel())
    # panel b: fs runs along +y -> data row of panel b appears as a display column
    b = geom.panels[1]
    r0, c0 = asm.to_display(b.min_fs, b.min_ss)
    r1, c1 = asm.to_display(b.min_fs + 5, b.min_ss)
    assert c1 == pytest.approx(c0) and r1 == pytest.approx(r0 + 5)
    # outside every panel: NaN, and the display has no holes inside the rotated panel
    assert np.isnan(img).any()
    d = geom.panels[3]
    inside = asm.panel_map == 3
    assert inside.sum() == pytest.approx(d.width * d.height, rel=0.03)
    vals = img[inside]
    assert np.all((vals >= 0) & np.isin(vals % 60, np.arange(30, 60)))


def test_display_panel_round_trips():
    geom = synthetic_rotated()
    asm = Assembler(geom, (40, 60))
    rng = np.random.default_rng(7)
    # data -> display -> data for random continuous positions inside panels
    fs = rng.uniform(-0.49, 59.49, 2000)
    ss = rng.uniform(-0.49, 39.49, 2000)
    row, col = asm.to_display(fs, ss)
    panel, fs2, ss2 = asm.to_panel(row, col)
    expected = geom.panel_at(fs, ss)
    ok = panel == expected  # positions within half a display pixel of a panel edge may land on a neighbour/outside
    assert ok.mean() > 0.97
    np.testing.assert_allclose(fs2[ok], fs[ok], atol=1e-9)
    np.testing.assert_allclose(ss2[ok], ss[ok], atol=1e-9)
    # display -> panel -> display for every covered display pixel
    rows, cols = np.nonzero(asm.coverage)
    p, f, s = asm.to_panel(rows.astype(float), cols.astype(float))
    assert (p >= 0).all()
    r2, c2 = asm.to_display(f, s)
    np.testing.assert_allclose(r2, rows, atol=1e-9)
    np.testing.assert_allclose(c2, cols, atol=1e-9)
    # the assembled value at a display pixel is the data value at round(to_panel)
    data = np.arange(2400.0).reshape(40, 60)
    img = asm.assemble(data)
    np.testing.assert_array_equal(img[rows, cols], data[np.floor(s + 0.5).astype(int), np.floor(f + 0.5).astype(int)])


def test_dtypes_and_fill():
    geom = synthetic_rotated()
    asm = Assembler(geom, (40, 60))
    outside = ~asm.coverage
    assert outside.any()
    f = asm.assemble(np.ones((40, 60), np.float32))
    assert f.dtype == np.float32 and np.isnan(f[outside]).all() and (f[~outside] == 1).all()
    b = asm.assemble(np.ones((40, 60), bool))
    assert b.dtype == bool and not b[outside].any() and b[~outside].all()
    u = asm.assemble(np.full((40, 60), 7, np.uint8))
    assert u.dtype == np.uint8 and (u[outside] == 0).all() and (u[~outside] == 7).all()
    i = asm.assemble(np.full((40, 60), -3, np.int32), fill=-1)
    assert (i[outside] == -1).all()
    stack = asm.assemble(np.ones((2, 3, 40, 60), np.float32))
    assert stack.shape == (2, 3) + asm.shape
    with pytest.raises(GeometryError, match="does not match"):
        asm.assemble(np.ones((40, 61)))


def test_geometry_larger_than_data():
    geom = synthetic_rotated()
    geom.source = "four.geom"
    with pytest.raises(GeometryError, match=r"four\.geom.*40x60.*39x60"):
        Assembler(geom, (39, 60))


def test_assemble_real_cspad(real_data):
    import h5py

    geom = read_geom(real_file(CSPAD_GEOM))
    with h5py.File(real_file(CSPAD_DATA), "r") as f:
        data = f["/data/data"][()]
    asm = Assembler(geom, data.shape)
    img = asm.assemble(data.astype(np.float32))
    h, w = asm.shape
    assert 1650 < h < 1800 and 1650 < w < 1800  # CSPAD is ~1720 pixels across
    # all 64 panels show up, each with about its own number of pixels (small rotations)
    counts = np.bincount(asm.panel_map[asm.panel_map >= 0].ravel(), minlength=64)
    np.testing.assert_allclose(counts, 185 * 194, rtol=0.01)
    # the assembled picture contains the data's values and nothing else
    assert np.nanmax(img) == data.max()
    # the beam (lab 0,0) is in the central hole: the display pixel there is outside all panels
    x0, y0 = asm.origin
    centre = (int(-y0), int(-x0))
    assert asm.panel_map[centre] == -1
    # a display pixel maps back to a data pixel with the same value
    rows, cols = np.nonzero(asm.coverage)
    sel = np.random.default_rng(0).choice(rows.size, 5000, replace=False)
    p, fs, ss = asm.to_panel(rows[sel].astype(float), cols[sel].astype(float))
    np.testing.assert_array_equal(img[rows[sel], cols[sel]],
                                  data[np.floor(ss + 0.5).astype(int), np.floor(fs + 0.5).astype(int)])
    # display position agrees with the pixel map (lab x, y) within half a pixel
    pm = pixel_map(geom)
    r, c = asm.to_display(np.array([10.0, 700.0, 1500.0]), np.array([5.0, 600.0, 1400.0]))
    px = geom.panels[0].pixel_size
    np.testing.assert_allclose((c + 0.5 + x0) * px, pm.x[[5, 600, 1400], [10, 700, 1500]], atol=1e-9)
    np.testing.assert_allclose((r + 0.5 + y0) * px, pm.y[[5, 600, 1400], [10, 700, 1500]], atol=1e-9)


def test_aligned_multi_panel_fast_path_matches_gather():
    # two axis-aligned panels, one flipped: block copies must equal the general gather
    geom = Geometry(panels=[
        _panel("a", 0, 9, 0, 4, 0.0, 0.0),
        _panel("b", 0, 9, 5, 9, 10.0, 12.0, fs=(-1.0, 0.0, 0.0), ss=(0.0, -1.0, 0.0)),
    ], clen=0.1)
    asm = Assembler(geom, (10, 10))
    assert asm._blocks is not None
    data = np.arange(100.0).reshape(10, 10)
    fast = asm.assemble(data)
    asm._blocks = None
    asm._build_gather()
    slow = asm.assemble(data)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast[7:12], data[5:10][::-1, ::-1])
    assert np.isnan(fast[5:7]).all()
