"""hits.cxi (Cheetah/CrystFEL CXI layout) and the peaks.geom that points CrystFEL at it."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from peaknet_gui.errors import ExportError, InputError
from peaknet_gui.export.cxi import MAXPEAKS, CxiFrameInfo, CxiHitWriter
from peaknet_gui.export.cxi_reader import read_cxi_peaks
from peaknet_gui.export.geom_export import cxi_geometry, mask_slots_in_use
from peaknet_gui.geometry import Geometry
from peaknet_gui.geometry.crystfel_geom import format_geom_text, parse_geom_text
from peaknet_gui.peaks.peaklist import PeakList

SHAPE = (40, 60)


def info(i, energy=9500.0, dist=0.12):
    return CxiFrameInfo(source_file="../run.h5", source_index=i, serial=10 + i, photon_energy_ev=energy,
                        distance_m=dist, beam_center_fs=30.0, beam_center_ss=20.0)


def frame_data(i):
    return np.arange(SHAPE[0] * SHAPE[1], dtype=np.float32).reshape(SHAPE) + 1000 * i


def test_layout_values_and_raw_pixel_indices(tmp_path):
    w = CxiHitWriter(tmp_path / "hits.cxi", pixel_size_m=75e-6)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3, 4] = True
    peaks = PeakList(fs=[12.0, 7.5], ss=[3.0, 30.25], intensity=[100.0, 50.0], npix=[5, 3],
                     max_intensity=[40.0, 20.0], snr=[8.0, np.nan])
    assert w.append(frame_data(0), mask, peaks, info(0)) == 0
    assert w.append(frame_data(1), None, PeakList(), info(1, energy=None)) == 1
    assert not (tmp_path / "hits.cxi").exists()  # only after close
    assert w.close() == tmp_path / "hits.cxi"
    assert not list(tmp_path.glob(".*.tmp"))
    with h5py.File(tmp_path / "hits.cxi", "r") as f:
        assert f["/cxi_version"][()] == 150
        d = f["/entry_1/data_1/data"]
        assert d.shape == (2,) + SHAPE and d.dtype == np.float32 and d.chunks == (1,) + SHAPE
        assert d.compression == "gzip"
        np.testing.assert_array_equal(d[1], frame_data(1))
        assert f["/entry_1/instrument_1/detector_1/data"].shape == d.shape  # soft link
        m = f["/entry_1/data_1/mask"]
        assert m.dtype == np.uint16 and m.attrs["polarity"] == "bad_nonzero"
        assert m.attrs["mask_bad"] == 1 and m.attrs["mask_good"] == 0
        assert np.argwhere(m[0]).tolist() == [[3, 4]] and m[0, 3, 4] == 1 and not m[1].any()
        r = f["/entry_1/result_1"]
        assert r["nPeaks"].dtype == np.int32 and r["nPeaks"][()].tolist() == [2, 0]
        for name in ("peakXPosRaw", "peakYPosRaw", "peakTotalIntensity", "peakNPixels", "peakMaximumValue", "peakSNR"):
            assert r[name].shape == (2, MAXPEAKS) and r[name].dtype == np.float32
        # raw pixel indices (no half pixel), zero padding beyond nPeaks as Cheetah
        assert r["peakXPosRaw"][0, :3].tolist() == [12.0, 7.5, 0.0]
        assert r["peakYPosRaw"][0, :3].tolist() == [3.0, 30.25, 0.0]
        assert r["peakTotalIntensity"][0, :2].tolist() == [100.0, 50.0]
        assert r["peakNPixels"][0, :2].tolist() == [5.0, 3.0]
        assert r["peakSNR"][0, :2].tolist() == [8.0, 0.0]  # unknown -> 0
        assert not r["peakXPosRaw"][1].any()
        src = f["/entry_1/instrument_1/source_1"]
        assert src["photon_energy_eV"][0] == 9500.0 and math.isnan(src["photon_energy_eV"][1])
        assert src["energy"][0] == pytest.approx(9500.0 * 1.602176634e-19)
        det = f["/entry_1/instrument_1/detector_1"]
        assert det["distance"][()].tolist() == [0.12, 0.12]
        assert det["x_pixel_size"][()] == det["y_pixel_size"][()] == 75e-6
        assert det["beam_center_x"][0] == 30.0 and det["beam_center_y"].attrs["convention"].startswith("pixel index")
        assert [s.decode() for s in f["/entry_1/peaknet/source_file"][()]] == ["../run.h5"] * 2
        assert f["/entry_1/peaknet/source_index"][()].tolist() == [0, 1]


def test_reader_round_trip_and_panels(tmp_path):
    g = Geometry.single_panel(SHAPE, 75e-6, 0.12, 30.0, 20.0, photon_energy_ev=9500.0)
    w = CxiHitWriter(tmp_path / "hits.cxi")
    peaks = PeakList(fs=[12.0, 7.5], ss=[3.0, 30.25], intensity=[100.0, 50.0], npix=[5, 3])
    w.append(frame_data(0), None, peaks, info(0))
    w.close()
    got = read_cxi_peaks(tmp_path / "hits.cxi", 0, geometry=g)
    np.testing.assert_array_equal(got.fs, peaks.fs)
    np.testing.assert_array_equal(got.ss, peaks.ss)
    assert got.npix.tolist() == [5, 3] and got.panel.tolist() == [0, 0]
    np.testing.assert_allclose(got.resolution, g.resolution(peaks.fs, peaks.ss, 9500.0))
    assert len(read_cxi_peaks(tmp_path / "hits.cxi")) == 1
    with pytest.raises(InputError, match="out of range"):
        read_cxi_peaks(tmp_path / "hits.cxi", 5)
    with pytest.raises(InputError, match="not found"):
        read_cxi_peaks(tmp_path / "none.cxi", 0)


def test_more_peaks_than_maxpeaks_widen_the_arrays(tmp_path):
    w = CxiHitWriter(tmp_path / "hits.cxi", max_peaks=4)
    w.append(frame_data(0), None, PeakList(fs=[1.0], ss=[1.0], intensity=[1.0]), info(0))
    many = PeakList(fs=np.arange(6.0), ss=np.arange(6.0), intensity=np.ones(6))
    w.append(frame_data(1), None, many, info(1))
    w.close()
    with h5py.File(tmp_path / "hits.cxi", "r") as f:
        assert f["/entry_1/result_1/peakXPosRaw"].shape == (2, 6)
        assert f["/entry_1/result_1/peakXPosRaw"][1].tolist() == list(range(6))
    assert len(read_cxi_peaks(tmp_path / "hits.cxi", 1)) == 6


def check_frames(path, n):
    with h5py.File(path, "r") as f:
        for name in ("/entry_1/data_1/data", "/entry_1/data_1/mask", "/entry_1/result_1/nPeaks",
                     "/entry_1/result_1/peakXPosRaw", "/entry_1/instrument_1/detector_1/distance",
                     "/entry_1/peaknet/source_file"):
            assert f[name].shape[0] == n, name
        for i in range(n):
            np.testing.assert_array_equal(f["/entry_1/data_1/data"][i], frame_data(i))
        assert f["/entry_1/result_1/nPeaks"][()].tolist() == [1] * n


def test_bad_frames_are_refused_before_anything_is_written(tmp_path):
    w = CxiHitWriter(tmp_path / "hits.cxi")
    w.append(frame_data(0), None, PeakList(fs=[1.0], ss=[2.0], intensity=[3.0]), info(0))
    with pytest.raises(ExportError, match="shape"):
        w.append(np.zeros((10, 10), np.float32), None, PeakList(), info(1))
    with pytest.raises(ExportError, match="mask of frame"):
        w.append(frame_data(1), np.zeros((3, 3), bool), PeakList(), info(1))
    w.close()
    check_frames(tmp_path / "hits.cxi", 1)


def test_a_write_failing_half_way_leaves_the_frames_before_it(tmp_path, monkeypatch):
    w = CxiHitWriter(tmp_path / "hits.cxi", background=False)
    one = PeakList(fs=[1.0], ss=[2.0], intensity=[3.0])
    w.append(frame_data(0), None, one, info(0))
    real = h5py.Dataset.__setitem__

    def failing(self, key, value):
        if self.name == "/entry_1/data_1/mask":
            raise OSError("disk full")
        return real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing)
    with pytest.raises(ExportError, match="disk full"):
        w.append(frame_data(1), None, one, info(1))  # the data was written, the mask was not
    monkeypatch.undo()
    w.close()
    check_frames(tmp_path / "hits.cxi", 1)


def test_a_background_compression_failure_keeps_the_frames_before_it(tmp_path, monkeypatch):
    import contextlib

    import peaknet_gui.export.cxi as cxi

    w = CxiHitWriter(tmp_path / "hits.cxi", background=True)
    one = PeakList(fs=[1.0], ss=[2.0], intensity=[3.0])
    w.append(frame_data(0), None, one, info(0))
    w._drain(wait_for=1)  # frame 0 stored

    def broken(*a, **k):
        raise MemoryError("no memory for the chunk")

    monkeypatch.setattr(cxi, "_shuffle_deflate", broken)
    with contextlib.suppress(ExportError):  # seen at the next append or at close
        w.append(frame_data(1), None, one, info(1))
        w.append(frame_data(2), None, one, info(2))
        w.append(frame_data(3), None, one, info(3))
    w.close()
    assert w.n_frames == 1
    check_frames(tmp_path / "hits.cxi", 1)


def test_no_frames_gives_an_empty_valid_file_when_the_shape_is_known(tmp_path):
    assert CxiHitWriter(tmp_path / "a.cxi").close() is None and not (tmp_path / "a.cxi").exists()
    CxiHitWriter(tmp_path / "b.cxi").close(shape=SHAPE)
    with h5py.File(tmp_path / "b.cxi", "r") as f:
        assert f["/entry_1/data_1/data"].shape == (0,) + SHAPE


# --- peaks.geom --------------------------------------------------------------------------------
SOURCE_GEOM = """photon_energy = /LCLS/photon_energy_eV
clen = /LCLS/detector_1/EncoderValue
adu_per_eV = 0.001
res = 9097.52
data = /data/rawdata
dim0 = %
dim1 = ss
dim2 = fs
mask = /data/mask
mask_good = 0x0
mask_bad = 0x1
mask1_data = /bad
mask1_file = /masks/detector_bad.h5
mask1_badbits = 0x1
saturation_map = /data/sat

q0/min_fs = 0
q0/max_fs = 29
q0/min_ss = 0
q0/max_ss = 39
q0/corner_x = -30
q0/corner_y = -20
q0/fs = x
q0/ss = y

q1/min_fs = 30
q1/max_fs = 59
q1/min_ss = 0
q1/max_ss = 39
q1/corner_x = 2
q1/corner_y = 20
q1/fs = -x
q1/ss = -y
q1/coffset = 0.001
"""


def geom_lines(text):
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(";")]


def test_peaks_geom_points_crystfel_at_hits_cxi():
    src = parse_geom_text(SOURCE_GEOM)
    g = cxi_geometry(src, photon_energy_ev=9500.0, clen=0.12)
    text = format_geom_text(g)
    lines = geom_lines(text)
    first_panel = next(i for i, ln in enumerate(lines) if ln.startswith("q0/"))
    top = lines[:first_panel]
    for expected in ("data = /entry_1/data_1/data", "dim0 = %", "dim1 = ss", "dim2 = fs",
                     "peak_list = /entry_1/result_1", "peak_list_type = cxi",
                     "photon_energy = 9500", "clen = 0.12",
                     # our per-frame mask replaces the one in the original data file ...
                     "mask = /entry_1/data_1/mask", "mask_good = 0x0", "mask_bad = 0x1",
                     # ... a mask in a separate file is kept
                     "mask1_data = /bad", "mask1_file = /masks/detector_bad.h5"):
        assert expected in top, (expected, top)
    assert "mask = /data/mask" not in text and "/data/rawdata" not in text and "/LCLS/" not in text
    assert "saturation_map" not in text  # it pointed into the original data file
    assert not any(ln.startswith(("q0/data", "q0/mask", "q1/dim", "q1/mask")) for ln in lines)
    back = parse_geom_text(text)
    assert [p.name for p in back.panels] == ["q0", "q1"]
    assert back.panels[1].fs == (-1.0, 0.0, 0.0) and back.panels[1].coffset == pytest.approx(0.001)
    assert back.photon_energy_ev == 9500.0 and back.clen == 0.12
    assert back.panels[0].mask == "/entry_1/data_1/mask" and back.panels[0].mask_bad == 1
    assert back.panels[0].adu_per_ev == pytest.approx(0.001)


def test_peaks_geom_per_frame_paths_carry_crystfel_units():
    src = parse_geom_text(SOURCE_GEOM)
    g = cxi_geometry(src, photon_energy_path="/entry_1/instrument_1/source_1/photon_energy_eV",
                     clen_path="/entry_1/instrument_1/detector_1/distance m")
    lines = geom_lines(format_geom_text(g))
    assert "photon_energy = /entry_1/instrument_1/source_1/photon_energy_eV" in lines  # eV without unit
    assert "clen = /entry_1/instrument_1/detector_1/distance m" in lines  # unit-less would mean mm


def test_mask_slots():
    src = parse_geom_text(SOURCE_GEOM)
    assert mask_slots_in_use(src) == {0, 1}
    assert mask_slots_in_use(cxi_geometry(src, photon_energy_ev=1.0, clen=1.0)) == {0, 1}
    plain = Geometry.single_panel(SHAPE, 75e-6, 0.1, 30, 20)
    assert mask_slots_in_use(plain) == set()
