"""The exporters checked with CrystFEL itself (skipped when CrystFEL is not installed).

* a small C program linked to libcrystfel reads our stream (``stream_read_chunk``), our CXI
  peak lists (``image_read_peaks``) and our masks (``image_read``'s bad-pixel map), so the
  coordinates and mask polarity are checked with CrystFEL's own code;
* ``indexamajig --peaks=cxi --indexing=xgandalf -p cell`` indexes frames whose peaks are the
  true Bragg positions of a known lattice (computed here from the cell, a random orientation,
  the Ewald sphere and a 4-panel detector with rotated panels), exported through
  ExportSession exactly as ``peaknet find`` does, and finds that cell.

CrystFEL is looked up in $CRYSTFEL_PREFIX/bin when that is set, else on PATH and in
/work/tools/crystfel/bin (CRYSTFEL_PREFIX=/nonexistent runs the file as on a machine without it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from peaknet_gui.export.cellfile import UnitCell
from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.geometry.crystfel_geom import write_geom
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.pipeline.result import FrameResult

HC_EV_A = 12398.419843320026
LYSOZYME = UnitCell(79.1, 79.1, 37.9, 90.0, 90.0, 90.0, lattice_type="tetragonal", centering="P", unique_axis="c")


# --- a known lattice on a 4-panel detector -------------------------------------------------------
def four_panel_geometry(photon_energy_ev: float = 12000.0, clen: float = 0.1) -> Geometry:
    """A 512x512 slab cut into four 256x256 panels around the beam, with 4-pixel gaps; panel
    q2 is turned by 90 degrees and q3 by 180 degrees, so slab and lab coordinates differ."""
    res = 1.0 / 172e-6
    kw = dict(res=res, adu_per_photon=1.0)
    panels = [
        Panel("q0", 0, 255, 0, 255, corner_x=-258.0, corner_y=-258.0, fs=(1, 0, 0), ss=(0, 1, 0), **kw),
        Panel("q1", 256, 511, 0, 255, corner_x=2.0, corner_y=-258.0, fs=(1, 0, 0), ss=(0, 1, 0), **kw),
        Panel("q2", 0, 255, 256, 511, corner_x=-2.0, corner_y=2.0, fs=(0, 1, 0), ss=(-1, 0, 0), **kw),
        Panel("q3", 256, 511, 256, 511, corner_x=258.0, corner_y=258.0, fs=(-1, 0, 0), ss=(0, -1, 0), **kw),
    ]
    g = Geometry(panels=panels, photon_energy_ev=photon_energy_ev, clen=clen)
    g.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    return g


def random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def bragg_spots(cell: UnitCell, geom: Geometry, rotation: np.ndarray, *, d_min=2.0, excitation=0.0012):
    """Pixel-index positions (fs, ss) and panels of the reflections of an orthogonal ``cell``
    on the Ewald sphere (beam along +z, CrystFEL's lab frame), and their hkl."""
    assert cell.alpha == cell.beta == cell.gamma == 90.0
    lam = geom.wavelength_a()
    hmax = [int(np.ceil(L / d_min)) for L in (cell.a, cell.b, cell.c)]
    h, k, l = np.meshgrid(*[np.arange(-m, m + 1) for m in hmax], indexing="ij")
    hkl = np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1)
    hkl = hkl[np.any(hkl != 0, axis=1)]
    q = (rotation @ (hkl / np.array([cell.a, cell.b, cell.c])).T).T  # 1/A
    keep = np.linalg.norm(q, axis=1) < 1.0 / d_min
    q, hkl = q[keep], hkl[keep]
    k_out = q + np.array([0.0, 0.0, 1.0 / lam])
    on_sphere = np.abs(np.linalg.norm(k_out, axis=1) - 1.0 / lam) < excitation
    k_out, hkl = k_out[on_sphere], hkl[on_sphere]
    forward = k_out[:, 2] > 0
    k_out, hkl = k_out[forward], hkl[forward]
    x_px = geom.clen * k_out[:, 0] / k_out[:, 2] * geom.panels[0].res
    y_px = geom.clen * k_out[:, 1] / k_out[:, 2] * geom.panels[0].res
    fs = np.full(len(x_px), np.nan)
    ss = np.full(len(x_px), np.nan)
    panel = np.full(len(x_px), -1, dtype=np.int32)
    for i, p in enumerate(geom.panels):
        f, s = p.fs_ss_from_lab(x_px, y_px)
        inside = (f >= p.min_fs + 3) & (f <= p.max_fs - 3) & (s >= p.min_ss + 3) & (s <= p.max_ss - 3)
        fs[inside], ss[inside], panel[inside] = f[inside], s[inside], i
    ok = panel >= 0
    return fs[ok], ss[ok], panel[ok], hkl[ok]


def render(shape, fs, ss, amplitude, rng, background=5.0, sigma=0.9) -> np.ndarray:
    img = np.full(shape, background, dtype=np.float64)
    for f, s, a in zip(fs, ss, amplitude):
        r0, r1 = int(max(0, np.floor(s) - 4)), int(min(shape[0], np.floor(s) + 5))
        c0, c1 = int(max(0, np.floor(f) - 4)), int(min(shape[1], np.floor(f) + 5))
        yy, xx = np.mgrid[r0:r1, c0:c1]
        img[r0:r1, c0:c1] += a / (2 * np.pi * sigma**2) * np.exp(-((yy - s) ** 2 + (xx - f) ** 2) / (2 * sigma**2))
    return rng.poisson(img).astype(np.float32)


def lattice_run(tmp_path: Path, n_crystals: int = 4, n_blank: int = 2, seed: int = 7):
    """A CXI run file of ``n_crystals`` lysozyme frames and ``n_blank`` empty ones, with the
    (Frame, FrameResult) pairs whose peaks are the true spot positions."""
    rng = np.random.default_rng(seed)
    geom = four_panel_geometry()
    shape = geom.data_shape
    frames, results, truths = [], [], []
    order = ["x"] * n_crystals + ["-"] * n_blank
    rng.shuffle(order)
    datas = []
    for i, kind in enumerate(order):
        if kind == "x":
            fs, ss, panel, hkl = bragg_spots(LYSOZYME, geom, random_rotation(rng))
            amp = rng.uniform(300, 3000, size=len(fs))
        else:
            fs = ss = amp = np.zeros(0)
            panel = np.zeros(0, dtype=np.int32)
        data = render(shape, fs, ss, amp, rng)
        datas.append(data)
        ev = EventId(str(tmp_path / "run.cxi"), i)
        frame = Frame(data=data, event=ev, serial=i, metadata=FrameMetadata(photon_energy_ev=12000.0, detector_distance_m=0.1))
        peaks = PeakList(fs=fs, ss=ss, intensity=amp, max_intensity=amp / (2 * np.pi * 0.81), npix=np.full(len(fs), 9),
                         snr=np.full(len(fs), 20.0), panel=panel)
        bad = np.zeros(shape, dtype=bool)
        results.append(FrameResult(serial=i, event=ev, peaks=peaks, hit=len(fs) >= 10, artifact_mask=bad, algorithm="truth"))
        frames.append(frame)
        truths.append(kind == "x")
    with h5py.File(tmp_path / "run.cxi", "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=np.stack(datas), chunks=(1,) + shape, compression="gzip")
    write_geom(geom, tmp_path / "run.geom")
    return geom, frames, results, truths


# --- CrystFEL on this machine ----------------------------------------------------------------------
def _crystfel_bin():
    """$CRYSTFEL_PREFIX/bin when set (only there), else indexamajig on PATH, else /work/tools/crystfel."""
    if os.environ.get("CRYSTFEL_PREFIX"):
        candidates = [Path(os.environ["CRYSTFEL_PREFIX"]) / "bin"]
    else:
        found = shutil.which("indexamajig")
        candidates = ([Path(found).resolve().parent] if found else []) + [Path("/work/tools/crystfel/bin")]
    for c in candidates:
        if (c / "indexamajig").is_file() and os.access(c / "indexamajig", os.X_OK):
            return c
    return None


def _crystfel_version(bindir) -> tuple:
    """(major, minor) of ``indexamajig --version`` ("CrystFEL: 0.10.2"); (0, 0) if it does not say."""
    if bindir is None:
        return (0, 0)
    r = subprocess.run([str(bindir / "indexamajig"), "--version"], capture_output=True, text=True, timeout=60)
    m = re.search(r"CrystFEL:\s*(\d+)\.(\d+)", r.stdout + r.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


CRYSTFEL_BIN = _crystfel_bin()
needs_crystfel = pytest.mark.skipif(CRYSTFEL_BIN is None, reason="CrystFEL (indexamajig) not installed")

HARNESS_C = r"""
/* Reads files through libcrystfel and prints what CrystFEL sees. */
#include <stdio.h>
#include <string.h>
#include <image.h>
#include <stream.h>
#include <datatemplate.h>
#include <detgeom.h>

static void print_features(ImageFeatureList *fl)
{
    int i;
    if ( fl == NULL ) { printf("NOPEAKS\n"); return; }
    for ( i=0; i<image_feature_count(fl); i++ ) {
        struct imagefeature *f = image_get_feature(fl, i);
        if ( f != NULL ) printf("PEAK %d %.4f %.4f %.4f\n", f->pn, f->fs, f->ss, f->intensity);
    }
}

int main(int argc, char *argv[])
{
    if ( argc >= 3 && strcmp(argv[1], "stream") == 0 ) {
        Stream *st = stream_open_for_read(argv[2]);
        struct image *im;
        if ( st == NULL ) { printf("OPENFAIL\n"); return 1; }
        while ( (im = stream_read_chunk(st, STREAM_PEAKS)) != NULL ) {
            printf("CHUNK %s|%s|%d|%.9e\n", im->filename, im->ev, im->serial, im->lambda);
            print_features(im->features);
            image_free(im);
        }
        stream_close(st);
        printf("END\n");
        return 0;
    }
    if ( argc >= 5 && strcmp(argv[1], "image") == 0 ) {
        DataTemplate *dt = data_template_new_from_file(argv[2]);
        struct image *im;
        int pn;
        if ( dt == NULL ) { printf("GEOMFAIL\n"); return 1; }
        if ( argc < 6 ) print_features(image_read_peaks(dt, argv[3], argv[4], 1));
#ifdef CF_IMAGE_READ_5_ARGS
        im = image_read(dt, argv[3], argv[4], 0, 0);  /* CrystFEL 0.10 */
#else
        im = image_read(dt, argv[3], argv[4], 0, 0, NULL);
#endif
        if ( im == NULL ) { printf("IMAGEFAIL\n"); return 1; }
        printf("LAMBDA %.9e\n", im->lambda);
        for ( pn=0; pn<im->detgeom->n_panels; pn++ ) {
            struct detgeom_panel *p = &im->detgeom->panels[pn];
            int fs, ss, nbad = 0;
            double sum = 0.0;
            printf("PANEL %d %s %d %d %.9e\n", pn, p->name, p->w, p->h, p->cnz * p->pixel_pitch);
            for ( ss=0; ss<p->h; ss++ ) {
                for ( fs=0; fs<p->w; fs++ ) {
                    sum += im->dp[pn][fs + p->w*ss];
                    if ( im->bad[pn][fs + p->w*ss] ) {
                        nbad++;
                        printf("BAD %d %d %d\n", pn, fs, ss);
                    }
                }
            }
            printf("SUM %d %.6e %d\n", pn, sum, nbad);
        }
        image_free(im);
        printf("END\n");
        return 0;
    }
    return 2;
}
"""


def _image_read_defines(header: Path) -> list:
    """``-DCF_IMAGE_READ_5_ARGS`` where libcrystfel's ``image_read`` takes 5 arguments (CrystFEL 0.10;
    0.11 on added a sixth)."""
    m = re.search(r"struct image \*image_read\s*\(([^)]*)\)", header.read_text())
    return ["-DCF_IMAGE_READ_5_ARGS"] if m and m.group(1).count(",") == 4 else []


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The C reader above, compiled against the installed libcrystfel (skip if impossible)."""
    if CRYSTFEL_BIN is None:
        pytest.skip("CrystFEL not installed")
    prefix = CRYSTFEL_BIN.parent
    inc = prefix / "include" / "crystfel"
    libdirs = [d for d in (prefix / "lib" / "x86_64-linux-gnu", prefix / "lib", prefix / "lib64")
               if any(d.glob("libcrystfel.so*"))]
    cc = shutil.which("cc") or shutil.which("gcc")
    if not (inc / "image.h").is_file() or not libdirs or cc is None:
        pytest.skip("libcrystfel headers/library or a C compiler not found")
    d = tmp_path_factory.mktemp("cfharness")
    (d / "cfcheck.c").write_text(HARNESS_C)
    exe = d / "cfcheck"
    r = subprocess.run([cc, "-O1", "-o", str(exe), str(d / "cfcheck.c"), f"-I{inc}", f"-L{libdirs[0]}", "-lcrystfel",
                        f"-Wl,-rpath,{libdirs[0]}", *_image_read_defines(inc / "image.h")], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build the libcrystfel harness: {r.stderr[-500:]}")
    return exe


def run_harness(exe, *args, cwd):
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("END"), f"{args}: {r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r.stdout.splitlines()


def parse_peaks(lines):
    return np.array([[float(v) for v in ln.split()[1:]] for ln in lines if ln.startswith("PEAK ")]).reshape(-1, 4)


def export_session(tmp_path, geom, frames, results, **kw):
    from peaknet_gui.export.session import ExportSession

    out = tmp_path / "out"
    with ExportSession(out, geom, **kw) as s:
        for f, r in zip(frames, results):
            s.add(f, r)
    return out


# --- tests -----------------------------------------------------------------------------------------
def known_frames(tmp_path, geom):
    """Two frames with peaks at chosen pixels on every panel, and a few masked pixels."""
    shape = geom.data_shape
    rng = np.random.default_rng(1)
    frames, results = [], []
    for i in range(2):
        data = rng.poisson(3.0, shape).astype(np.float32)
        fs = np.array([10.0, 300.25, 40.0, 400.0]) + i
        ss = np.array([20.0, 100.0, 300.5, 450.75]) + i
        peaks = PeakList(fs=fs, ss=ss, intensity=[100.0, 200.0, 300.0, 400.0])
        mask = np.zeros(shape, dtype=bool)
        mask[5, 7] = mask[300 + i, 260] = True  # panel q0 (fs 7, ss 5) and q3 (slab 260, 300+i)
        bad = np.zeros(shape, dtype=bool)
        bad[500, 3] = True  # a detector gap pixel (Frame.bad) on q2
        ev = EventId(str(tmp_path / "run.cxi"), i)
        frames.append(Frame(data=data, event=ev, serial=i, metadata=FrameMetadata(photon_energy_ev=12000.0), bad=bad))
        results.append(FrameResult(serial=i, event=ev, peaks=peaks, hit=True, artifact_mask=mask))
    with h5py.File(tmp_path / "run.cxi", "w") as f:
        f["/entry_1/data_1/data"] = np.stack([fr.data for fr in frames])
    return frames, results


@needs_crystfel
def test_libcrystfel_reads_the_stream_peaks_at_index_plus_half_in_file_coordinates(tmp_path, harness):
    geom = four_panel_geometry()
    frames, results = known_frames(tmp_path, geom)
    out = export_session(tmp_path, geom, frames, results, formats={"stream"})
    lines = run_harness(harness, "stream", out / "peaks.stream", cwd=out)
    chunks = [ln for ln in lines if ln.startswith("CHUNK ")]
    assert len(chunks) == 2
    assert chunks[1].split(" ", 1)[1].split("|")[:3] == ["../run.cxi", "//1", "1"]
    assert float(chunks[0].split("|")[3]) == pytest.approx(HC_EV_A / 12000.0 * 1e-10, rel=1e-6)
    got = parse_peaks(lines)[:4]  # chunk 0: panel-relative positions as libcrystfel holds them
    pk = results[0].peaks
    panels = geom.panel_at(pk.fs, pk.ss)
    assert got[:, 0].tolist() == panels.tolist() == [0, 1, 2, 3]
    min_fs = np.array([geom.panels[p].min_fs for p in panels])
    min_ss = np.array([geom.panels[p].min_ss for p in panels])
    np.testing.assert_allclose(got[:, 1], pk.fs + 0.5 - min_fs, atol=0.006)
    np.testing.assert_allclose(got[:, 2], pk.ss + 0.5 - min_ss, atol=0.006)
    np.testing.assert_allclose(got[:, 3], pk.intensity)


@needs_crystfel
def test_libcrystfel_reads_cxi_peaks_data_and_mask_polarity(tmp_path, harness):
    geom = four_panel_geometry()
    frames, results = known_frames(tmp_path, geom)
    out = export_session(tmp_path, geom, frames, results, formats={"cxi", "lst", "mask"})
    lines = run_harness(harness, "image", "peaks.geom", "hits.cxi", "//1", cwd=out)
    pk = results[1].peaks
    got = parse_peaks(lines)
    panels = geom.panel_at(pk.fs, pk.ss)
    assert got[:, 0].tolist() == panels.tolist()
    min_fs = np.array([geom.panels[p].min_fs for p in panels])
    min_ss = np.array([geom.panels[p].min_ss for p in panels])
    np.testing.assert_allclose(got[:, 1], pk.fs + 0.5 - min_fs, atol=1e-4)  # CrystFEL added the half pixel
    np.testing.assert_allclose(got[:, 2], pk.ss + 0.5 - min_ss, atol=1e-4)
    assert float(next(ln for ln in lines if ln.startswith("LAMBDA")).split()[1]) == pytest.approx(HC_EV_A / 12000 * 1e-10, rel=1e-6)
    bad = sorted(tuple(int(v) for v in ln.split()[1:]) for ln in lines if ln.startswith("BAD "))
    # (panel, panel fs, panel ss): artifact mask at slab (fs 7, ss 5) and (260, 301), gap pixel (3, 500)
    assert bad == sorted([(0, 7, 5), (3, 260 - 256, 301 - 256), (2, 3, 500 - 256)])
    sums = {int(ln.split()[1]): float(ln.split()[2]) for ln in lines if ln.startswith("SUM ")}
    data = frames[1].data
    for i, p in enumerate(geom.panels):
        assert sums[i] == pytest.approx(float(data[p.slices()].sum()), rel=1e-6)
    # the run mask through mask.geom: the pixels masked in both frames (fraction 0.5 -> >= 1 of 2)
    lines = run_harness(harness, "image", "mask.geom", "../run.cxi", "//0", "nopeaks", cwd=out)
    bad = sorted(tuple(int(v) for v in ln.split()[1:]) for ln in lines if ln.startswith("BAD "))
    assert bad == sorted([(0, 7, 5), (3, 4, 44), (3, 4, 45), (2, 3, 244)])


@needs_crystfel
@pytest.mark.slow
def test_indexamajig_indexes_exported_true_peaks_with_the_right_cell(tmp_path):
    """The issue's command, run in the output directory with no edits."""
    import CFstreamparser

    from peaknet_gui.export.cellfile import write_cell_file
    from peaknet_gui.export.cxi_reader import read_cxi_peaks
    from peaknet_gui.export.stream_reader import read_stream

    geom, frames, results, truths = lattice_run(tmp_path, n_crystals=3, n_blank=2)
    out = export_session(tmp_path, geom, frames, results, cell=LYSOZYME)
    write_cell_file(LYSOZYME, out / "cell.cell")
    assert (out / "hits.lst").read_text().splitlines() == ["hits.cxi //0", "hits.cxi //1", "hits.cxi //2"]
    cmd = [str(CRYSTFEL_BIN / "indexamajig"), "-i", "hits.lst", "-g", "peaks.geom", "--peaks=cxi",
           "--indexing=xgandalf", "--xgandalf-fast-execution", "-p", "cell.cell", "-o", "indexed.stream", "-j", "2",
           "--int-radius=3,4,5"]
    r = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 indexable" in r.stderr, r.stderr[-3000:]
    chunks = read_stream(out / "indexed.stream")  # our reader on indexamajig's stream
    assert len(chunks) == 3 and all(c.indexed_by.startswith("xgandalf") for c in chunks)
    for c in chunks:
        assert len(c.crystals) == 1
        np.testing.assert_allclose(c.crystals[0].cell, LYSOZYME.parameters, rtol=0.005)
        # indexamajig's peak list is the one we exported (half pixel added by CrystFEL, not twice)
        ours = read_cxi_peaks(out / "hits.cxi", c.event_index)
        assert c.n_peaks >= 0.8 * len(ours)
        d = np.hypot(c.peaks.fs[:, None] - ours.fs[None, :], c.peaks.ss[:, None] - ours.ss[None, :]).min(axis=1)
        assert np.all(d < 0.01)
    # predicted spot positions of the refined crystals sit on our true positions (+0.5 in CrystFEL's
    # convention) on all four panels, rotated ones included: no half-pixel or panel error anywhere
    parsed = CFstreamparser.parse_stream_file(str(out / "indexed.stream"))
    names = [p.name for p in geom.panels]
    for ch in parsed.chunks:
        ours = read_cxi_peaks(out / "hits.cxi", ch.event)
        tf, ts = ours.fs + 0.5, ours.ss + 0.5
        offsets, panels = [], []
        for refl in ch.crystals[0].reflections:
            dist = np.hypot(tf - refl.fs_px, ts - refl.ss_px)
            j = int(np.argmin(dist))
            if dist[j] < 1.5:
                offsets.append((refl.fs_px - tf[j], refl.ss_px - ts[j]))
                panels.append(names.index(refl.panel))
        offsets = np.array(offsets)
        assert len(offsets) > 100 and set(panels) == {0, 1, 2, 3}
        if _crystfel_version(CRYSTFEL_BIN) >= (0, 11):
            assert np.all(np.abs(offsets.mean(axis=0)) < 0.05), offsets.mean(axis=0)
            assert np.all(np.abs(offsets) <= 0.2)
        else:  # 0.10's refined predictions scatter by 0.3-0.6 px (panel means up to 0.3): a half pixel still shows
            assert np.all(np.abs(offsets.mean(axis=0)) < 0.25), offsets.mean(axis=0)
            assert np.median(np.hypot(*offsets.T)) < 0.4


@needs_crystfel
def test_libcrystfel_reads_per_frame_energy_and_camera_length_from_hits_cxi(tmp_path, harness):
    geom = four_panel_geometry()
    geom.clen, geom.clen_path = None, "/LCLS/detector_1/EncoderValue"  # both read per frame from the data files
    geom.photon_energy_ev, geom.photon_energy_path = None, "/LCLS/photon_energy_eV"
    frames, results = known_frames(tmp_path, geom)
    for f, (e, d) in zip(frames, [(12000.0, 0.1), (12100.0, 0.11)]):
        f.metadata.photon_energy_ev, f.metadata.detector_distance_m = e, d
    out = export_session(tmp_path, geom, frames, results, formats={"cxi", "lst"})
    text = (out / "peaks.geom").read_text()
    assert "clen = /entry_1/instrument_1/detector_1/distance m" in text
    for k, (e, d) in enumerate([(12000.0, 0.1), (12100.0, 0.11)]):
        lines = run_harness(harness, "image", "peaks.geom", "hits.cxi", f"//{k}", cwd=out)
        assert float(next(ln for ln in lines if ln.startswith("LAMBDA")).split()[1]) == pytest.approx(HC_EV_A / e * 1e-10, rel=1e-6)
        clens = [float(ln.split()[5]) for ln in lines if ln.startswith("PANEL ")]
        assert clens == pytest.approx([d] * 4, rel=1e-6)  # metres, not mm


def _chunk_texts(path):
    text = Path(path).read_text()
    return [c.split("----- End chunk -----")[0] for c in text.split("----- Begin chunk -----\n")[1:]]


@needs_crystfel
def test_our_chunks_are_what_indexamajig_writes_for_the_same_peaks(tmp_path):
    """indexamajig --indexing=none on hits.cxi writes the same chunk lines as peaks.stream, up
    to the file name / event (hits.cxi vs the original file) and float32 rounding in the last
    digit (CrystFEL reads positions and intensities as float)."""
    from peaknet_gui.export.lst import read_lst

    geom, frames, results, _ = lattice_run(tmp_path, n_crystals=2, n_blank=1, seed=3)
    out = export_session(tmp_path, geom, frames, results)
    cmd = [str(CRYSTFEL_BIN / "indexamajig"), "-i", "hits.lst", "-g", "peaks.geom", "--peaks=cxi", "--no-revalidate",
           "--indexing=none", "-o", "none.stream", "-j", "1"]
    r = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    theirs = _chunk_texts(out / "none.stream")
    ours = _chunk_texts(out / "peaks.stream")
    sources = read_lst(out / "hits_source.lst")
    assert len(theirs) == len(sources) == 2
    for k, text in enumerate(theirs):
        mine = ours[sources[k].index].splitlines()
        their = text.splitlines()
        assert their[0:2] == ["Image filename: hits.cxi", f"Event: //{k}"]
        assert mine[0:2] == [f"Image filename: {sources[k].path}", f"Event: //{sources[k].index}"]
        assert len(mine) == len(their) > 100
        for a, b in zip(mine[3:], their[3:]):
            if a.startswith("peak_resolution"):
                qa, qb = float(a.split()[2]), float(b.split()[2])
                assert qa == pytest.approx(qb, abs=1e-4)
            elif a[:1] == " " and a.split()[-1] in ("q0", "q1", "q2", "q3"):
                va, vb = a.split(), b.split()
                assert va[-1] == vb[-1]
                np.testing.assert_allclose([float(v) for v in va[:4]], [float(v) for v in vb[:4]], atol=0.0101)
            else:
                assert a == b


# --- real frames: thermolysin on a CSPAD (64 panels), DIALS spots as the peak list ----------------
THERMOLYSIN = UnitCell(93.0, 93.0, 130.6, 90.0, 90.0, 120.0, lattice_type="hexagonal", centering="P", unique_axis="c")


def thermolysin_frame(name="idx-20130301060858401"):
    from conftest import real_file

    from peaknet_gui.geometry.crystfel_geom import read_geom

    h5 = real_file(f"thermolysin_cspad/{name}_rawlayout.h5")
    csv = real_file(f"thermolysin_cspad/{name}.cbf.spots.csv")
    geom = read_geom(real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"))
    with h5py.File(h5, "r") as f:
        data = f["/data/data"][()].astype(np.float32)
    spots = np.genfromtxt(csv, delimiter=",", names=True)
    # raw_x/raw_y: slab coordinates in the corner convention -> pixel indices
    peaks = PeakList(fs=spots["raw_x"] - 0.5, ss=spots["raw_y"] - 0.5, intensity=spots["intensity_sum"],
                     npix=spots["n_signal"].astype(int), panel=spots["panel"].astype(int))
    ev = EventId(str(h5), None)  # a single-image file
    frame = Frame(data=data, event=ev, serial=0, metadata=FrameMetadata())
    return geom, frame, FrameResult(serial=0, event=ev, peaks=peaks, hit=True, artifact_mask=np.zeros(data.shape, bool))


@needs_crystfel
@pytest.mark.slow
def test_real_cspad_frame_exported_with_dials_spots_indexes_as_thermolysin(tmp_path, harness):
    from peaknet_gui.export.cellfile import write_cell_file
    from peaknet_gui.export.stream_reader import read_stream

    geom, frame, result = thermolysin_frame()
    out = export_session(tmp_path, geom, [frame], [result])
    assert (out / "hits_source.lst").read_text().strip().endswith("_rawlayout.h5")  # no event: single image
    # libcrystfel reads our stream back: every DIALS spot on its panel, at the panel-relative position
    lines = run_harness(harness, "stream", out / "peaks.stream", cwd=out)
    got = parse_peaks(lines)
    pk = result.peaks
    assert len(got) == len(pk) and got[:, 0].tolist() == pk.panel.tolist()
    min_fs = np.array([geom.panels[p].min_fs for p in pk.panel])
    np.testing.assert_allclose(got[:, 1], pk.fs + 0.5 - min_fs, atol=0.006)
    write_cell_file(THERMOLYSIN, out / "cell.cell")
    cmd = [str(CRYSTFEL_BIN / "indexamajig"), "-i", "hits.lst", "-g", "peaks.geom", "--peaks=cxi",
           "--indexing=xgandalf", "--xgandalf-fast-execution", "-p", "cell.cell", "-o", "indexed.stream", "-j", "2",
           "--int-radius=3,4,5"]
    r = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (c,) = read_stream(out / "indexed.stream")
    assert len(c.crystals) == 1, r.stderr[-2000:]
    np.testing.assert_allclose(c.crystals[0].cell, THERMOLYSIN.parameters, rtol=0.015)
