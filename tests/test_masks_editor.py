"""The mask editor's core (peaknet_gui.masks.editor_ops / editor_io): shapes drawn on the assembled
image map back to exactly the panel pixels inside them, value / resolution / panel masks, undo and
redo, the .h5 (+ .geom, CrystFEL polarity) and .npy round trips, and ``peaknet find --mask``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from peaknet_gui.errors import ExportError, GeometryError, InputError
from peaknet_gui.geometry import Assembler, Geometry, Panel
from peaknet_gui.masks.editor_ops import (Circle, EditableMask, PixelCentres, Polygon, Rect, Stroke, panel_pixels,
                                          resolution_pixels, value_range_pixels)


def four_panels(n: int = 48, clen: float = 0.1) -> Geometry:
    """A 2n x 2n slab in four n x n panels with 4-pixel gaps; q2 turned by 90 and q3 by 180 degrees."""
    kw = dict(res=1.0 / 172e-6, clen=clen)
    panels = [
        Panel("q0", 0, n - 1, 0, n - 1, corner_x=-n - 2.0, corner_y=-n - 2.0, fs=(1, 0, 0), ss=(0, 1, 0), **kw),
        Panel("q1", n, 2 * n - 1, 0, n - 1, corner_x=2.0, corner_y=-n - 2.0, fs=(1, 0, 0), ss=(0, 1, 0), **kw),
        Panel("q2", 0, n - 1, n, 2 * n - 1, corner_x=-2.0, corner_y=2.0, fs=(0, 1, 0), ss=(-1, 0, 0), **kw),
        Panel("q3", n, 2 * n - 1, n, 2 * n - 1, corner_x=n + 2.0, corner_y=n + 2.0, fs=(-1, 0, 0), ss=(0, -1, 0), **kw),
    ]
    return Geometry(panels=panels, photon_energy_ev=12000.0, clen=clen)


def winding_inside(px, py, poly) -> np.ndarray:
    """An independent point-in-polygon test (winding number) for the checks."""
    wn = np.zeros(np.shape(px), dtype=int)
    for (xa, ya), (xb, yb) in zip(poly, poly[1:] + poly[:1]):
        cross = (xb - xa) * (py - ya) - (px - xa) * (yb - ya)
        wn += ((ya <= py) & (yb > py) & (cross > 0)).astype(int)
        wn -= ((ya > py) & (yb <= py) & (cross < 0)).astype(int)
    return wn != 0


POLY = [(10.3, 7.1), (80.2, 20.7), (60.4, 95.5), (33.3, 50.2), (5.5, 70.9)]  # concave, crosses all panels


def test_polygon_on_a_multi_panel_frame_masks_exactly_the_pixels_inside_it():
    geom = four_panels()
    shape = geom.data_shape
    asm = Assembler(geom, shape)
    centres = PixelCentres(shape, asm)
    sel = centres.select(Polygon(tuple(POLY)))
    # data side: each panel pixel whose centre (mapped to the display) is inside, and only those
    ss, fs = np.mgrid[0:shape[0], 0:shape[1]]
    row, col = asm.to_display(fs.astype(float), ss.astype(float))
    expect = winding_inside(col + 0.5, row + 0.5, POLY)
    assert np.array_equal(sel, expect)
    assert 0 < sel.sum() < sel.size
    assert all(sel[p.slices()].any() for p in geom.panels)  # the polygon reaches every panel
    # display side: the mask drawn back on the assembled image covers exactly the display pixels inside
    rr, cc = np.mgrid[0:asm.shape[0], 0:asm.shape[1]]
    inside_display = winding_inside(cc + 0.5, rr + 0.5, POLY) & asm.coverage
    assert np.array_equal(asm.assemble(sel), inside_display)
    # rotated panels: q2 (fs along +y) and q3 (180 degrees) are not simple copies of the display
    assert sel[geom.panels[2].slices()].sum() > 0 and sel[geom.panels[3].slices()].sum() > 0


def test_aligned_and_general_mappings_agree_and_turned_panels():
    """The fast path (display index map, aligned panels) and the general one (every pixel centre
    mapped) select the same pixels; a panel turned by 30 degrees takes the general path."""
    geom = four_panels()
    shape = geom.data_shape
    asm = Assembler(geom, shape)
    assert asm.pixel_aligned

    class Unaligned:  # the same layout, seen without the aligned shortcut
        to_display = staticmethod(asm.to_display)

    fast, general = PixelCentres(shape, asm), PixelCentres(shape, Unaligned())
    assert general.x is not None and fast.x is None
    shapes = (Polygon(tuple(POLY)), Rect(3.2, 40.0, 99.0, 60.5), Circle(50.0, 50.0, 30.3),
              Stroke(((5.0, 90.0), (90.0, 5.0), (95.0, 95.0)), 3.5), Rect(-20, -20, 500, 500))
    for sh in shapes:
        a, b = fast.select(sh), general.select(sh)
        assert np.array_equal(a, b) and a.any(), sh
    assert fast.select(Rect(-20, -20, 500, 500)).all()  # every panel pixel once
    c, s_ = np.cos(np.radians(30)), np.sin(np.radians(30))
    turned = Geometry(panels=[Panel("t", 0, 39, 0, 29, corner_x=-20.0, corner_y=-15.0, fs=(c, s_, 0), ss=(-s_, c, 0),
                                    res=1.0 / 172e-6, clen=0.1)], clen=0.1, photon_energy_ev=12000.0)
    tasm = Assembler(turned, turned.data_shape)
    assert not tasm.pixel_aligned
    tc = PixelCentres(turned.data_shape, tasm)
    poly = [(5.0, 5.0), (40.0, 8.0), (30.0, 40.0)]
    ss, fs = np.mgrid[0:30, 0:40]
    row, col = tasm.to_display(fs.astype(float), ss.astype(float))
    assert np.array_equal(tc.select(Polygon(tuple(poly))), winding_inside(col + 0.5, row + 0.5, poly))


def test_scanline_fill_equals_the_point_test_on_random_polygons():
    """The grid path fills polygons row by row; it must give the point-by-point even-odd test's
    pixels exactly, self-intersecting polygons and vertices on pixel centres included."""
    from peaknet_gui.masks.editor_ops import _inside_polygon

    shape = (50, 70)
    c = PixelCentres(shape)
    ss, fs = np.mgrid[0:shape[0], 0:shape[1]]
    rng = np.random.default_rng(7)
    for k in range(40):
        n = int(rng.integers(3, 9))
        pts = rng.uniform(-10, 80, (n, 2))
        if k % 4 == 0:
            pts = np.round(pts) + 0.5  # vertices on pixel centres, edges along rows
        got = c.select(Polygon(tuple(map(tuple, pts))))
        assert np.array_equal(got, _inside_polygon(fs + 0.5, ss + 0.5, pts)), pts


def test_rect_circle_stroke_on_the_data_array():
    shape = (40, 60)
    c = PixelCentres(shape)  # no geometry: scene = data array
    ss, fs = np.mgrid[0:shape[0], 0:shape[1]]
    x, y = fs + 0.5, ss + 0.5
    r = c.select(Rect(20.0, 30.0, 5.2, 10.0))  # corners in any order
    assert np.array_equal(r, (x >= 5.2) & (x <= 20) & (y >= 10) & (y <= 30))
    assert r.sum() == 15 * 20
    circ = c.select(Circle(30.0, 20.0, 7.5))
    assert np.array_equal(circ, (x - 30) ** 2 + (y - 20) ** 2 <= 7.5**2)
    st = c.select(Stroke(((5.0, 5.0), (25.0, 5.0)), 2.0))
    assert np.array_equal(st, (np.abs(y - 5) <= 2) & (x >= 5) & (x <= 25) | ((x - 5) ** 2 + (y - 5) ** 2 <= 4)
                          | ((x - 25) ** 2 + (y - 5) ** 2 <= 4))
    assert not c.select(Rect(-50, -50, -10, -10)).any()  # off the detector
    assert not c.select(Polygon(((1.0, 1.0), (5.0, 5.0)))).any()  # not a polygon yet
    # the same shapes through an identity-like geometry give the same pixels
    g = Geometry.single_panel(shape, 172e-6, 0.1, 30.0, 20.0, photon_energy_ev=12000.0)
    cg = PixelCentres(shape, Assembler(g, shape))
    for s in (Rect(20.0, 30.0, 5.2, 10.0), Circle(30.0, 20.0, 7.5), Polygon(tuple(POLY))):
        assert np.array_equal(cg.select(s), c.select(s))


def test_value_range_resolution_and_panel_masks():
    data = np.array([[0.0, 5.0, 50.0], [500.0, 5000.0, -3.0]], dtype=np.float32)
    assert value_range_pixels(data, (1.0, 600.0)).tolist() == [[True, False, False], [False, True, True]]
    # log scale: levels in log10; values below 1 are shown as 0, so they are outside only when lo > 0
    assert value_range_pixels(data, (0.5, 3.0), log_scale=True).tolist() == [[True, False, False], [False, True, True]]
    assert value_range_pixels(data, (0.0, 3.0), log_scale=True).tolist() == [[False, False, False], [False, True, False]]
    bad = np.zeros(data.shape, bool)
    bad[1, 2] = True
    assert not value_range_pixels(data, (1.0, 600.0), bad=bad)[1, 2]

    shape = (80, 100)
    g = Geometry.single_panel(shape, 172e-6, 0.1, 50.0, 40.0, photon_energy_ev=12000.0)
    ss, fs = np.mgrid[0:shape[0], 0:shape[1]]
    with np.errstate(divide="ignore"):
        d = 1.0 / g.resolution(fs.astype(float), ss.astype(float))
    lo, hi = np.percentile(d[np.isfinite(d)], [30, 60])
    m = resolution_pixels(g, shape, hi, lo)  # the order of the limits does not matter
    assert np.array_equal(m, (d >= lo) & (d <= hi))
    assert 0.25 < m.mean() < 0.35
    with pytest.raises(GeometryError, match="geometry"):
        resolution_pixels(None, shape, 2.0, 3.0)
    g.photon_energy_ev = None
    with pytest.raises(GeometryError, match="photon energy"):
        resolution_pixels(g, shape, 2.0, 3.0)

    geom = four_panels(16)
    pm = panel_pixels(geom, geom.data_shape, ["q2", 3])
    assert pm[16:, :].all() and not pm[:16, :].any()
    assert panel_pixels(None, (4, 5), [0]).all()
    with pytest.raises(GeometryError):
        panel_pixels(geom, geom.data_shape, [7])


def test_editable_mask_undo_redo():
    m = EditableMask((10, 10))
    a = np.zeros((10, 10), bool)
    a[2:5, 2:5] = True
    assert m.apply(a, True, "rect") == 9 and m.n_masked == 9
    assert m.apply(a, True) == 0 and m.undo_label == "rect"  # a no-op is not an edit
    b = np.zeros((10, 10), bool)
    b[4:8, 4:8] = True
    assert m.apply(b, False, "eraser") == 1  # only (4, 4) was masked
    assert m.n_masked == 8 and not m.mask[4, 4]
    r = m.revision
    assert m.undo() == "eraser" and m.mask[4, 4] and m.revision == r + 1
    assert m.undo() == "rect" and m.n_masked == 0 and not m.can_undo
    assert m.redo() == "rect" and m.n_masked == 9
    m.apply(b, True, "brush")
    assert not m.can_redo  # a new edit forgets what was undone
    assert m.invert() == 100 and m.n_masked == 100 - (9 + 16 - 1)
    m.undo()
    assert m.clear() == 24 and m.n_masked == 0
    with pytest.raises(ValueError):
        m.apply(np.zeros((3, 3), bool))
    with pytest.raises(ValueError):
        m.mask[0, 0] = True  # read-only view
    small = EditableMask((10, 10), max_history_pixels=20)
    for i in range(5):
        row = np.zeros((10, 10), bool)
        row[i] = True
        small.apply(row)
    assert sum(1 for _ in range(10) if small.undo()) == 2  # older edits were forgotten


def _some_mask(shape):
    m = np.zeros(shape, bool)
    m[3:9, 10:30] = True
    m[20, :] = True
    return m


def test_h5_round_trip_with_geom_lines_and_polarity(tmp_path):
    from peaknet_gui.geometry.crystfel_geom import read_geom
    from peaknet_gui.geometry.static_mask import geometry_bad_mask
    from peaknet_gui.masks.editor_io import load_user_mask, save_user_mask
    from peaknet_gui.masks.static import read_mask_file

    geom = four_panels()
    shape = geom.data_shape
    mask = _some_mask(shape)
    saved = save_user_mask(tmp_path / "static.h5", mask, geom)
    assert saved.geom_path == tmp_path / "static.geom" and saved.n_masked == mask.sum()
    with h5py.File(saved.path, "r") as f:
        ds = f["/mask"]
        assert ds.dtype == np.uint16 and np.array_equal(ds[()], mask.astype(np.uint16))  # 1 = bad
        assert ds.attrs["polarity"] == "bad_nonzero" and int(ds.attrs["mask_bad"]) == 1 and int(ds.attrs["mask_good"]) == 0
    text = saved.geom_path.read_text()
    for line in (f"mask_file = {saved.path}", "mask = /mask", "mask_good = 0x0", "mask_bad = 0x1"):
        assert line in text and line in saved.geom_lines
    assert "peaknet find --mask" in saved.text()
    # read back: by the editor, by the static-mask reader (auto polarity from the attribute), and by
    # the geometry's own mask lines with CrystFEL's rule (value & mask_bad) != 0
    assert np.array_equal(load_user_mask(saved.path, shape), mask)
    assert np.array_equal(read_mask_file(saved.path, polarity="auto"), mask)
    g2 = read_geom(saved.geom_path)
    assert np.array_equal(geometry_bad_mask(g2, shape), mask)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporaries left
    # a mask covering most of the detector keeps its meaning (the attribute decides, not the majority)
    big = ~mask
    save_user_mask(tmp_path / "big.h5", big, geom)
    assert np.array_equal(load_user_mask(tmp_path / "big.h5", shape), big)
    # a geometry that already uses mask 0 (its own file): ours goes to the next free slot, both apply
    own = np.zeros(shape, np.uint16)
    own[0, :] = 1
    with h5py.File(tmp_path / "own.h5", "w") as f:
        f["/m"] = own
    g0 = geom.copy()
    g0.globals.update({"mask": "/m", "mask_file": str(tmp_path / "own.h5"), "mask_good": "0x0", "mask_bad": "0x1"})
    saved = save_user_mask(tmp_path / "second.h5", mask, g0)
    assert saved.geom_lines[0] == "mask1_data = /mask" and "mask1_badbits = 0x1" in saved.geom_lines
    assert np.array_equal(geometry_bad_mask(read_geom(saved.geom_path), shape), mask | (own != 0))
    # without a geometry: only the lines, as comments explain
    saved = save_user_mask(tmp_path / "nogeom.h5", mask)
    assert "mask_bad = 0x1" in saved.geom_path.read_text() and "no detector geometry" in saved.geom_path.read_text()
    with pytest.raises(InputError, match="does not match"):
        load_user_mask(saved.path, (10, 10))


def test_npy_round_trip_and_errors(tmp_path):
    from peaknet_gui.masks.editor_io import load_user_mask, save_user_mask

    mask = _some_mask((40, 60))
    saved = save_user_mask(tmp_path / "m.npy", mask)
    assert saved.geom_path is None and "bad_nonzero" in saved.text()
    raw = np.load(saved.path)
    assert raw.dtype == np.uint8 and np.array_equal(raw, mask.astype(np.uint8))
    assert np.array_equal(load_user_mask(saved.path, mask.shape), mask)
    assert np.array_equal(load_user_mask(saved.path, mask.shape, polarity="bad_nonzero"), mask)
    with pytest.raises(ExportError, match="m.txt"):
        save_user_mask(tmp_path / "m.txt", mask)
    with pytest.raises(InputError, match="missing.npy"):
        load_user_mask(tmp_path / "missing.npy", mask.shape)
    (tmp_path / "afile").write_text("not a folder")  # a folder that cannot exist, even for root
    for name in ("m.npy", "m.h5"):
        with pytest.raises(ExportError, match="afile"):
            save_user_mask(tmp_path / "afile" / name, mask)


MASK_HARNESS_C = r"""
/* Prints the pixels libcrystfel marks bad for a geometry and an image: BAD panel fs ss. */
#include <stdio.h>
#include <image.h>
#include <datatemplate.h>
#include <detgeom.h>

int main(int argc, char *argv[])
{
    DataTemplate *dt;
    struct image *im;
    int pn;
    if ( argc < 4 ) return 2;
    dt = data_template_new_from_file(argv[1]);
    if ( dt == NULL ) { printf("GEOMFAIL\n"); return 1; }
#ifdef IMAGE_READ_5
    im = image_read(dt, argv[2], argv[3], 0, 0);
#else
    im = image_read(dt, argv[2], argv[3], 0, 0, NULL);
#endif
    if ( im == NULL ) { printf("IMAGEFAIL\n"); return 1; }
    for ( pn=0; pn<im->detgeom->n_panels; pn++ ) {
        struct detgeom_panel *p = &im->detgeom->panels[pn];
        int fs, ss;
        for ( ss=0; ss<p->h; ss++ )
            for ( fs=0; fs<p->w; fs++ )
                if ( im->bad[pn][fs + p->w*ss] ) printf("BAD %d %d %d\n", pn, fs, ss);
    }
    image_free(im);
    printf("END\n");
    return 0;
}
"""


def _crystfel_prefix():
    for p in filter(None, (os.environ.get("CRYSTFEL_PREFIX"), "/work/tools/prefix", "/work/tools/crystfel")):
        if (Path(p) / "include" / "crystfel" / "image.h").is_file():
            return Path(p)
    return None


def _mask_harness(tmp_path):
    """The C reader above built against the installed libcrystfel (0.10-0.12 signatures), or skip."""
    prefix = _crystfel_prefix()
    cc = shutil.which("cc") or shutil.which("gcc")
    if prefix is None or cc is None:
        pytest.skip("CrystFEL (headers and library) or a C compiler not found")
    libdirs = [d for d in (prefix / "lib" / "x86_64-linux-gnu", prefix / "lib") if any(d.glob("libcrystfel.so*"))]
    if not libdirs:
        pytest.skip("libcrystfel not found")
    (tmp_path / "cf.c").write_text(MASK_HARNESS_C)
    err = ""
    for flags in ([], ["-DIMAGE_READ_5"]):
        r = subprocess.run([cc, "-O1", *flags, "-o", str(tmp_path / "cf"), str(tmp_path / "cf.c"),
                            f"-I{prefix / 'include' / 'crystfel'}", f"-L{libdirs[0]}", "-lcrystfel",
                            f"-Wl,-rpath,{libdirs[0]}"], capture_output=True, text=True)
        if r.returncode == 0:
            return tmp_path / "cf"
        err = r.stderr
    pytest.skip(f"cannot build the libcrystfel harness: {err[-300:]}")


def test_libcrystfel_masks_the_same_pixels(tmp_path):
    """The saved mask.h5 + .geom read by libcrystfel (the reader indexamajig uses): the bad pixels
    it reports are exactly the drawn mask's, panel by panel (skips without CrystFEL)."""
    from peaknet_gui.masks.editor_io import save_user_mask

    exe = _mask_harness(tmp_path)
    geom = four_panels()
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    shape = geom.data_shape
    centres = PixelCentres(shape, Assembler(geom, shape))
    mask = centres.select(Polygon(tuple(POLY))) | centres.select(Circle(80.0, 80.0, 6.0))
    with h5py.File(tmp_path / "run.cxi", "w") as f:
        f["/entry_1/data_1/data"] = np.ones((1,) + shape, np.float32)
    saved = save_user_mask(tmp_path / "drawn.h5", mask, geom)
    out = subprocess.run([str(exe), str(saved.geom_path), "run.cxi", "//0"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stdout.rstrip().endswith("END"), out.stdout[-500:] + out.stderr[-500:]
    got = {tuple(int(v) for v in ln.split()[1:]) for ln in out.stdout.splitlines() if ln.startswith("BAD ")}
    expect = set()
    for i, p in enumerate(geom.panels):
        ss, fs = np.nonzero(mask[p.slices()])
        expect |= {(i, int(a), int(b)) for a, b in zip(fs, ss)}
    assert got == expect and len(got) == mask.sum()


def _indexamajig():
    """indexamajig from $CRYSTFEL_PREFIX/bin when set, else on PATH; None when neither."""
    if os.environ.get("CRYSTFEL_PREFIX"):
        exe = Path(os.environ["CRYSTFEL_PREFIX"]) / "bin" / "indexamajig"
        return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("indexamajig")


def _stream_peak_pixels(text: str) -> dict:
    """{event: set of (fs, ss) data-array pixels} from the peak-search lists of a CrystFEL stream."""
    out, event, in_peaks = {}, None, False
    for ln in text.splitlines():
        if ln.startswith("Event: //"):
            event = int(ln.split("//")[1])
            out.setdefault(event, set())
        elif ln.startswith("Peaks from peak search"):
            in_peaks = True
        elif ln.startswith("End of peak list"):
            in_peaks = False
        elif in_peaks and not ln.lstrip().startswith("fs/px"):
            fs, ss = (float(v) for v in ln.split()[:2])
            out[event].add((int(np.floor(fs)), int(np.floor(ss))))  # CrystFEL's corner convention: centre + 0.5
    return out


def test_indexamajig_masks_the_same_pixels(tmp_path):
    """The saved mask.h5 + .geom given to ``indexamajig`` itself: its peak search (peakfinder8)
    refuses exactly the drawn pixels.  25 frames put an isolated bright pixel on every 5th pixel
    along fs and ss (a different phase each), so together they probe once every pixel inside the
    panels' outermost rows and columns (where peakfinder8 never starts a peak); CrystFEL reports
    a peak at every probed pixel except the masked ones.  Skips when indexamajig is not on PATH."""
    from peaknet_gui.masks.editor_io import save_user_mask

    exe = _indexamajig()
    if exe is None:
        pytest.skip("CrystFEL's indexamajig not on PATH (nor in $CRYSTFEL_PREFIX/bin)")
    geom = four_panels()
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    shape = geom.data_shape
    centres = PixelCentres(shape, Assembler(geom, shape))
    # shapes on all four panels (two turned), away from the beam: peakfinder8's radial statistics
    # need some good pixels in every ring (a mask covering a ring but a few pixels starves them)
    mask = (centres.select(Polygon(((20.3, 3.1), (75.2, 12.7), (64.4, 30.5), (45.3, 20.2), (12.5, 33.9))))
            | centres.select(Circle(78.0, 78.0, 9.0)) | centres.select(Rect(3.0, 60.0, 20.0, 92.0)))
    interior = np.zeros(shape, bool)  # all but each panel's outermost rows and columns
    for p in geom.panels:
        inner = np.zeros(interior[p.slices()].shape, bool)
        inner[1:-1, 1:-1] = True
        interior[p.slices()] = inner
    rng = np.random.default_rng(3)
    ss, fs = np.mgrid[0:shape[0], 0:shape[1]]
    step = 5
    phases = [(a, b) for a in range(step) for b in range(step)]
    frames = rng.integers(5, 16, (len(phases),) + shape).astype(np.float32)  # noisy background ~10
    for k, (a, b) in enumerate(phases):
        frames[k][(ss % step == a) & (fs % step == b) & interior] = 1000.0
    with h5py.File(tmp_path / "run.cxi", "w") as f:
        f["/entry_1/data_1/data"] = frames
    saved = save_user_mask(tmp_path / "drawn.h5", mask, geom)
    (tmp_path / "files.lst").write_text("run.cxi\n")
    cmd = [exe, "-i", "files.lst", "-g", str(saved.geom_path), "-o", "out.stream", "-j", "1", "--indexing=none",
           "--peaks=peakfinder8", "--threshold=200", "--min-snr=1", "--min-pix-count=1", "--max-pix-count=10",
           "--local-bg-radius=2", "--min-res=0", "--max-res=5000"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and (tmp_path / "out.stream").is_file(), r.stderr[-1500:]
    found = _stream_peak_pixels((tmp_path / "out.stream").read_text())
    assert sorted(found) == list(range(len(phases))), sorted(found)
    got = np.zeros(shape, bool)
    for k, (a, b) in enumerate(phases):
        probed = (ss % step == a) & (fs % step == b) & interior
        pix = found[k]
        assert all(probed[y, x] for x, y in pix), f"frame {k}: a peak away from the probed pixels"
        for x, y in pix:
            got[y, x] = True
    refused = interior & ~got  # probed interior pixels where CrystFEL found no peak
    assert mask[interior].sum() > 500 and (~mask[interior]).sum() > 1000
    np.testing.assert_array_equal(refused, mask & interior)


def test_peaknet_find_mask_excludes_peaks_inside_it(tmp_path, capsys, monkeypatch):
    """``peaknet find --mask`` with a drawn mask (.h5 and .npy): no peak inside the mask, the
    others kept; the exported mask.h5 contains the drawn pixels."""
    from _pipeline_frames import simulated_frame

    from peaknet_gui.cli.main import main
    from peaknet_gui.export.stream_reader import read_stream
    from peaknet_gui.geometry.crystfel_geom import write_geom
    from peaknet_gui.masks.editor_io import save_user_mask

    monkeypatch.setenv("PEAKNET_CACHE_DIR", str(tmp_path / "cache"))
    shape = (96, 128)
    rng = np.random.default_rng(3)
    frames = [simulated_frame(rng, shape, n_spots=16, dark_box=False, serial=i)[0] for i in range(3)]
    run = tmp_path / "run.cxi"
    with h5py.File(run, "w") as f:
        f["/entry_1/data_1/data"] = np.stack([fr.data for fr in frames])
    geom = Geometry.single_panel(shape, 172e-6, 0.1, 64.0, 48.0, photon_energy_ev=12000.0)
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    write_geom(geom, tmp_path / "run.geom")
    drawn = PixelCentres(shape).select(Polygon(((0.0, 0.0), (70.0, 0.0), (40.0, 96.0), (0.0, 96.0))))

    def peaks(out, *extra):
        rc = main(["find", str(run), "--geom", str(tmp_path / "run.geom"), "--out", str(out), "--algorithm", "peakfinder8",
                   "--formats", "stream,mask", "--min-peaks", "1", "--no-progress", *extra])
        assert rc == 0, capsys.readouterr().err
        chunks = read_stream(out / "peaks.stream")
        fs = np.concatenate([c.peaks.fs for c in chunks])
        ss = np.concatenate([c.peaks.ss for c in chunks])
        return np.rint(fs).astype(int), np.rint(ss).astype(int)

    fs, ss = peaks(tmp_path / "plain")
    inside = drawn[ss, fs]
    assert inside.sum() >= 5 and (~inside).sum() >= 5
    save_user_mask(tmp_path / "drawn.h5", drawn, geom)
    save_user_mask(tmp_path / "drawn.npy", drawn)
    with h5py.File(tmp_path / "two.h5", "w") as f:  # a file with two masks: --mask-dataset picks one
        f["/masks/drawn"] = drawn.astype(np.uint8)
        f["/masks/other"] = np.zeros(shape, np.uint8)
    for name, extra in (("h5", ["--mask", str(tmp_path / "drawn.h5")]),
                        ("npy", ["--mask", str(tmp_path / "drawn.npy"), "--mask-polarity", "bad_nonzero"]),
                        ("dataset", ["--mask", str(tmp_path / "two.h5"), "--mask-dataset", "/masks/drawn"])):
        fs2, ss2 = peaks(tmp_path / name, *extra)
        assert not drawn[ss2, fs2].any(), f"{name}: peaks inside the mask"
        assert len(fs2) >= (~inside).sum() - 2  # the peaks outside stay
        with h5py.File(tmp_path / name / "mask.h5", "r") as f:
            assert (f["/mask"][()] != 0)[drawn].all()


def test_data_pixel_positions_are_to_display_of_every_pixel():
    c, s_ = np.cos(np.radians(3)), np.sin(np.radians(3))
    geom = four_panels(20)
    geom.panels[1].fs, geom.panels[1].ss = (c, s_, 0.0), (-s_, c, 0.0)  # slightly turned: not aligned
    asm = Assembler(geom, geom.data_shape)
    assert not asm.pixel_aligned
    row, col = asm.data_pixel_positions()
    ss, fs = np.mgrid[0:40, 0:40]
    r2, c2 = asm.to_display(fs.astype(float), ss.astype(float))
    np.testing.assert_allclose(row, r2, atol=1e-9)
    np.testing.assert_allclose(col, c2, atol=1e-9)
