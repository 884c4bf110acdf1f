"""ExportSession: every file from a run, incremental and atomic; interrupted runs leave valid files."""

from __future__ import annotations

import json
import os
import stat

import CFstreamparser
import h5py
import numpy as np
import pytest

from peaknet_gui.errors import ExportError
from peaknet_gui.export.cxi_reader import read_cxi_peaks
from peaknet_gui.export.lst import read_lst
from peaknet_gui.export.mask_h5 import read_mask_h5
from peaknet_gui.export.session import ExportSession
from peaknet_gui.export.stream_reader import read_stream, read_stream_file
from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.geometry.crystfel_geom import parse_geom_text, read_geom
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.pipeline.result import FrameResult

SHAPE = (30, 50)


def geometry() -> Geometry:
    panels = [Panel("a", 0, 24, 0, 29, corner_x=-26.0, corner_y=-15.0, res=10000.0, adu_per_photon=1.0),
              Panel("b", 25, 49, 0, 29, corner_x=1.0, corner_y=-15.0, res=10000.0, adu_per_photon=1.0)]
    g = Geometry(panels=panels, photon_energy_ev=10000.0, clen=0.05)
    g.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    return g


def make(i, n_peaks, src, hit=None, energy=10000.0, distance=None, shape=SHAPE):
    rng = np.random.default_rng(i)
    data = rng.poisson(4.0, shape).astype(np.float32)
    fs = 2.0 + 6.0 * np.arange(n_peaks) + 0.25 * i
    ss = np.full(n_peaks, 3.0 + i)
    peaks = PeakList(fs=fs, ss=ss, intensity=100.0 + np.arange(n_peaks), npix=np.full(n_peaks, 4))
    art = np.zeros(shape, dtype=bool)
    art[0, i] = True  # a different artifact pixel in every frame
    art[shape[0] - 1, shape[1] - 1] = True  # and one that is always masked
    bad = np.zeros(shape, dtype=bool)
    bad[shape[0] // 2, shape[1] // 2 - 1] = True  # a dead pixel the detector reports
    md = FrameMetadata(photon_energy_ev=energy, detector_distance_m=distance)
    ev = EventId(str(src), i)
    frame = Frame(data=data, event=ev, serial=i, metadata=md, bad=bad)
    res = FrameResult(serial=i, event=ev, peaks=peaks, hit=(n_peaks >= 3) if hit is None else hit, artifact_mask=art,
                      timings_ms={"read": 1.0, "model": 5.0}, algorithm="peaknet", device="cpu")
    return frame, res


N_PEAKS = [4, 1, 5, 0, 3, 2]  # hits: frames 0, 2, 4


def run_session(out, src, frames=None, **kw):
    pairs = frames or [make(i, n, src) for i, n in enumerate(N_PEAKS)]
    with ExportSession(out, geometry(), **kw) as s:
        for f, r in pairs:
            s.add(f, r)
    return pairs


def test_all_files_of_a_run(tmp_path):
    src = tmp_path / "data" / "run.cxi"
    out = tmp_path / "out"
    pairs = run_session(out, src)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["hits.cxi", "hits.geom", "hits.lst", "hits_source.lst", "mask.geom", "mask.h5", "peaks.geom",
                     "peaks.stream", "summary.json"]
    # stream: every frame, both parsers
    chunks = read_stream(out / "peaks.stream")
    assert [c.hit for c in chunks] == [n >= 3 for n in N_PEAKS]
    assert [c.filename for c in chunks] == ["../data/run.cxi"] * 6 and [c.event for c in chunks][:2] == ["//0", "//1"]
    for c, (f, r) in zip(chunks, pairs):
        np.testing.assert_allclose(c.peaks.fs, r.peaks.fs)
        np.testing.assert_allclose(c.peaks.ss, r.peaks.ss)
        assert c.peaks.panel.tolist() == geometry().panel_at(r.peaks.fs, r.peaks.ss).tolist()
    parsed = CFstreamparser.parse_stream_file(str(out / "peaks.stream"))
    assert [c.num_peaks for c in parsed.chunks] == N_PEAKS
    assert parsed.chunks[2].peaks[0].fs_px == pytest.approx(2.0 + 0.5 + 0.5)  # index 2.5 + half pixel
    assert {p.panel for c in parsed.chunks for p in c.peaks} == {"a", "b"}
    # lists: hits.cxi events (for peaks.geom) and the original events
    assert (out / "hits.lst").read_text() == "hits.cxi //0\nhits.cxi //1\nhits.cxi //2\n"
    assert read_lst(out / "hits_source.lst") == [EventId("../data/run.cxi", i) for i in (0, 2, 4)]
    # hits.cxi holds the hit frames, their masks and their peaks
    with h5py.File(out / "hits.cxi", "r") as f:
        np.testing.assert_array_equal(f["/entry_1/data_1/data"][1], pairs[2][0].data)
        m = f["/entry_1/data_1/mask"][1]
        assert sorted(map(tuple, np.argwhere(m))) == [(0, 2), (15, 24), (29, 49)]  # artifact + detector bad
        assert f["/entry_1/peaknet/source_index"][()].tolist() == [0, 2, 4]
    for k, i in enumerate((0, 2, 4)):
        got = read_cxi_peaks(out / "hits.cxi", k)
        np.testing.assert_array_equal(got.fs, pairs[i][1].peaks.fs)  # raw pixel indices
    g = read_geom(out / "peaks.geom")
    assert g.globals["peak_list"] == "/entry_1/result_1" and g.globals["peak_list_type"] == "cxi"
    assert g.photon_energy_ev == 10000.0 and g.clen == 0.05 and g.panels[0].mask == "/entry_1/data_1/mask"
    assert (out / "hits.geom").read_text() == (out / "peaks.geom").read_text()
    # run mask: pixels masked in >= half of the 6 frames
    run = read_mask_h5(out / "mask.h5")
    assert sorted(map(tuple, np.argwhere(run))) == [(15, 24), (29, 49)]
    mg = read_geom(out / "mask.geom")
    assert mg.panels[0].mask == "/mask" and mg.panels[0].mask_file == "mask.h5" and mg.panels[0].mask_bad == 1
    # summary
    doc = json.loads((out / "summary.json").read_text())
    assert doc["complete"] is True and doc["interrupted"] is False
    t = doc["totals"]
    assert (t["frames"], t["hits"], t["peaks"]) == (6, 3, sum(N_PEAKS)) and t["hit_rate"] == 0.5
    fr = doc["frames"][2]
    assert (fr["event"], fr["n_peaks"], fr["hit"], fr["cxi_index"]) == ("../data/run.cxi //2", 5, True, 1)
    assert fr["ms"] >= 6.0 and set(fr["timings_ms"]) == {"read", "model", "export"}
    assert "indexamajig -i hits.lst -g peaks.geom --peaks=cxi" in doc["crystfel_command"]
    # readable by others, no temporaries left
    assert all(stat.S_IMODE(os.stat(p).st_mode) & 0o044 for p in out.iterdir())
    assert not list(out.glob(".*"))


def test_keyboard_interrupt_leaves_complete_valid_files_for_the_frames_done(tmp_path):
    src = tmp_path / "run.cxi"
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with ExportSession(out, geometry()) as s:
            for i, n in enumerate(N_PEAKS):
                if i == 4:
                    raise KeyboardInterrupt
                s.add(*make(i, n, src))
    assert [c.serial for c in read_stream(out / "peaks.stream")] == [0, 1, 2, 3]
    assert len(CFstreamparser.parse_stream_file(str(out / "peaks.stream")).chunks) == 4
    assert (out / "hits.lst").read_text() == "hits.cxi //0\nhits.cxi //1\n"
    with h5py.File(out / "hits.cxi", "r") as f:
        assert f["/entry_1/data_1/data"].shape == (2,) + SHAPE and f["/entry_1/result_1/nPeaks"].shape == (2,)
    doc = json.loads((out / "summary.json").read_text())
    assert doc["interrupted"] is True and doc["complete"] is False and doc["totals"]["frames"] == 4
    assert read_mask_h5(out / "mask.h5").shape == SHAPE
    assert not list(out.glob(".*"))


def test_an_error_in_the_middle_keeps_the_frames_before_it(tmp_path):
    src = tmp_path / "run.cxi"
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="shape"):
        with ExportSession(out, geometry()) as s:
            s.add(*make(0, 4, src))
            s.add(*make(1, 5, src, shape=(10, 10)))  # a hit of another shape: the CXI refuses it
    assert [c.serial for c in read_stream(out / "peaks.stream")] == [0]
    assert read_lst(out / "hits.lst") == [EventId("hits.cxi", 0)]
    with h5py.File(out / "hits.cxi", "r") as f:
        assert f["/entry_1/data_1/data"].shape[0] == 1


def test_previous_outputs_stay_until_close_and_abort_keeps_them(tmp_path):
    src = tmp_path / "run.cxi"
    out = tmp_path / "out"
    run_session(out, src)
    before = (out / "peaks.stream").read_text()
    s = ExportSession(out, geometry())
    s.add(*make(0, 4, src))
    assert (out / "peaks.stream").read_text() == before  # the new stream is still a temporary
    s.abort()
    assert (out / "peaks.stream").read_text() == before and not list(out.glob(".*"))
    s = ExportSession(out, geometry())
    s.add(*make(0, 4, src))
    assert s.close() == s.close()  # idempotent
    assert len(read_stream(out / "peaks.stream")) == 1
    with pytest.raises(ExportError, match="closed"):
        s.add(*make(1, 4, src))


def test_stream_and_lst_only_list_the_original_events(tmp_path):
    src = tmp_path / "run.cxi"
    out = tmp_path / "out"
    run_session(out, src, formats={"stream", "lst"}, paths="absolute")
    assert sorted(p.name for p in out.iterdir()) == ["hits.lst", "peaks.stream", "summary.json"]
    assert read_lst(out / "hits.lst") == [EventId(str(src), i) for i in (0, 2, 4)]
    assert read_stream(out / "peaks.stream")[0].filename == str(src)


def test_per_frame_energy_and_camera_length_become_cxi_paths(tmp_path):
    src = tmp_path / "run.cxi"
    g = geometry()
    g.clen, g.clen_path = None, "/LCLS/detector_1/EncoderValue"  # values read per frame from the data files
    g.photon_energy_ev, g.photon_energy_path = None, "/LCLS/photon_energy_eV"
    pairs = [make(0, 4, src, energy=10000.0, distance=0.05), make(1, 4, src, energy=10100.0, distance=0.06)]
    out = tmp_path / "out"
    with ExportSession(out, g) as s:
        for f, r in pairs:
            s.add(f, r)
    lines = (out / "peaks.geom").read_text().splitlines()
    assert "photon_energy = /entry_1/instrument_1/source_1/photon_energy_eV" in lines
    assert "clen = /entry_1/instrument_1/detector_1/distance m" in lines
    with h5py.File(out / "hits.cxi", "r") as f:
        assert f["/entry_1/instrument_1/source_1/photon_energy_eV"][()].tolist() == [10000.0, 10100.0]
        assert f["/entry_1/instrument_1/detector_1/distance"][()].tolist() == [0.05, 0.06]
    chunks = read_stream_file(out / "peaks.stream").chunks
    assert [c.photon_energy_ev for c in chunks] == [10000.0, 10100.0]
    assert [c.camera_length_m for c in chunks] == [0.05, 0.06]
    # constant values are written as numbers
    out2 = tmp_path / "out2"
    with ExportSession(out2, g) as s:
        for i in range(2):
            s.add(*make(i, 4, src, energy=9000.0, distance=0.07))
    text = (out2 / "peaks.geom").read_text()
    assert "photon_energy = 9000\n" in text and "clen = 0.07\n" in text


def test_without_a_geometry(tmp_path, caplog):
    src = tmp_path / "run.cbf"
    frame, res = make(0, 4, src)
    frame = Frame(data=frame.data, event=EventId(str(src)), serial=0, metadata=FrameMetadata(
        photon_energy_ev=12000.0, detector_distance_m=0.2, pixel_size_m=172e-6, beam_center_fs=25.0, beam_center_ss=15.0))
    with ExportSession(tmp_path / "o1", None) as s:  # geometry from the file's metadata
        s.add(frame, res)
    c = read_stream(tmp_path / "o1" / "peaks.stream")[0]
    assert c.event == "//" and c.event_index is None and np.isfinite(c.peaks.resolution).all()
    assert (tmp_path / "o1" / "hits.lst").read_text() == "hits.cxi //0\n"
    assert (tmp_path / "o1" / "hits_source.lst").read_text() == "../run.cbf\n"  # single image: no event
    bare = Frame(data=frame.data, event=EventId(str(src)), serial=0)
    with ExportSession(tmp_path / "o2", None, formats={"stream"}) as s:  # nothing known: placeholder
        s.add(bare, res)
    sf = read_stream_file(tmp_path / "o2" / "peaks.stream")
    assert "PLACEHOLDER" in sf.geometry_text and "clen" not in sf.geometry_text
    assert sf.chunks[0].n_peaks == 4 and np.isnan(sf.chunks[0].peaks.resolution).all()
    assert np.isnan(sf.chunks[0].photon_energy_ev)
    assert "placeholder" in caplog.text and "photon energy unknown" in caplog.text


def test_no_frames_and_bad_arguments(tmp_path):
    with ExportSession(tmp_path / "empty", geometry()):
        pass
    assert read_stream(tmp_path / "empty" / "peaks.stream") == []
    assert (tmp_path / "empty" / "hits.lst").read_text() == ""
    with h5py.File(tmp_path / "empty" / "hits.cxi", "r") as f:
        assert f["/entry_1/data_1/data"].shape == (0,) + SHAPE
    parse_geom_text((tmp_path / "empty" / "peaks.geom").read_text())
    with pytest.raises(ValueError, match="unknown export format"):
        ExportSession(tmp_path / "x", geometry(), formats={"pdf"})
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="file"):
        ExportSession(tmp_path / "file" / "sub", geometry())


def test_lists_follow_hits_cxi_when_it_loses_frames(tmp_path, monkeypatch):
    import contextlib

    import peaknet_gui.export.cxi as cxi

    src = tmp_path / "run.cxi"
    out = tmp_path / "out"
    s = ExportSession(out, geometry())
    s.add(*make(0, 4, src))
    s._cxi._drain(wait_for=1)

    def broken(*a, **k):
        raise MemoryError("no memory for the chunk")

    monkeypatch.setattr(cxi, "_shuffle_deflate", broken)
    with contextlib.suppress(ExportError):
        for i in (2, 4):
            s.add(*make(i, 4, src))
    with contextlib.suppress(ExportError):
        s.close()
    assert (out / "hits.lst").read_text() == "hits.cxi //0\n"
    assert read_lst(out / "hits_source.lst") == [EventId("../run.cxi", 0)]
    with h5py.File(out / "hits.cxi", "r") as f:
        assert f["/entry_1/data_1/data"].shape[0] == 1


def test_the_geometry_energy_wins_over_the_file_header_as_in_crystfel(tmp_path):
    src = tmp_path / "run.cxi"
    with ExportSession(tmp_path / "out", geometry()) as s:  # geometry: photon_energy = 10000
        s.add(*make(0, 4, src, energy=9000.0))
    assert read_stream(tmp_path / "out" / "peaks.stream")[0].photon_energy_ev == 10000.0
