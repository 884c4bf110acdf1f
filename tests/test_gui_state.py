"""The GUI's Qt-free layer: browser state, display preparation, overlays, read-out, export helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.gui.display import (
    MASK_AUTO, MASK_STATIC, build_frame_view, build_overlay, log_image, mapper_for, mask_codes, peak_diameters,
    percentile_levels, readout, resolution_rings, scale_to_uint8,
)
from peaknet_gui.gui.exports import ExportOptions, HitsOnly, frame_mask
from peaknet_gui.gui.runs import RunRequest
from peaknet_gui.gui.state import BrowserState, DisplaySettings
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.pipeline.result import FrameResult
from peaknet_gui.pipeline.settings import FinderSettings


def two_panel_geometry():
    """Two 40 x 60 panels of one 40 x 120 slab: the left one as stored, the right one rotated
    by 90 degrees and placed with a gap (CSPAD-like)."""
    a = Panel("a", 0, 59, 0, 39, corner_x=-70.0, corner_y=-20.0, res=10000.0, clen=0.1)
    b = Panel("b", 60, 119, 0, 39, corner_x=30.0, corner_y=-30.0, fs=(0.0, 1.0, 0.0), ss=(-1.0, 0.0, 0.0),
              res=10000.0, clen=0.1)
    return Geometry([a, b], photon_energy_ev=12000.0, clen=0.1)


def frame_of(data, bad=None, serial=0):
    return Frame(np.asarray(data, np.float32), EventId("run.h5", serial), serial, FrameMetadata(), bad)


# --- state -----------------------------------------------------------------------------------------
def test_navigation_clamps_and_steps():
    s = BrowserState()
    assert s.set_run(10, index=42) == 9
    assert s.go(-3) == 0 and s.step(4) == 4 and s.step(100) == 9
    assert s.at_end and s.next_play_index() is None
    s.go(3)
    assert s.next_play_index() == 4
    assert s.grow(12) and s.n_frames == 12 and not s.grow(11)
    s.set_run(0)
    assert s.go(5) == 0


def test_hits_follow_the_current_criterion():
    s = BrowserState(finder=FinderSettings(min_peaks_for_hit=10))
    s.set_run(100, 50)
    for i, n in ((10, 25), (40, 3), (60, 12), (80, 9)):
        s.record(i, n, n >= 10)
    assert s.next_hit() == 60 and s.prev_hit() == 10
    assert s.n_hits == 2 and s.hit_rate == pytest.approx(0.5)
    s.set_finder(FinderSettings(min_peaks_for_hit=5))
    assert s.next_hit() == 60 and s.next_hit(60) == 80 and s.n_hits == 3
    s.set_finder(FinderSettings(min_peaks_for_hit=100))
    assert s.next_hit() is None and s.prev_hit() is None
    assert s.first_unanalysed_after(59) == 61


def test_settings_versions_and_rolling_hit_rate():
    s = BrowserState()
    v = s.settings_version
    assert not s.set_finder(FinderSettings())
    assert s.set_finder(FinderSettings(peak_threshold=0.3)) and s.settings_version == v + 1
    s.set_run(10)
    for i in range(6):
        s.record(i, 20 if i % 2 else 0, bool(i % 2))
    idx, rate = s.rolling_hit_rate(window=2)
    assert idx.tolist() == list(range(6))
    np.testing.assert_allclose(rate, [0, 50, 50, 50, 50, 50])
    _, peaks, hits = s.series()
    assert peaks.tolist() == [0, 20, 0, 20, 0, 20] and hits.sum() == 3


def test_display_settings_round_trip():
    d = DisplaySettings(colormap="viridis", log_scale=False, percentiles=(2.0, 98.0), show_rings=False)
    e = DisplaySettings.from_dict(d.as_dict())
    assert e == d
    r = RunRequest(inputs=["/a/b.h5", "/a/c.h5"], dataset="/d", start_index=3)
    assert RunRequest.from_dict(r.as_dict()) == r and r.label() == "b.h5 (+1 more)"


# --- display image -------------------------------------------------------------------------------------
def test_levels_log_and_scaling():
    img = np.arange(10000, dtype=np.float32).reshape(100, 100)
    lo, hi = percentile_levels(img, (1, 99))
    assert lo == pytest.approx(99.99, abs=1) and hi == pytest.approx(9899, abs=2)
    li = log_image(np.array([[0.0, 1.0, 10.0, np.nan]], np.float32))
    np.testing.assert_allclose(li[0, :3], [0, 0, 1])
    assert np.isnan(li[0, 3])
    s = scale_to_uint8(np.array([[-5, 0, 50, 100, 500, np.nan]], np.float32), (0, 100))
    assert s.tolist() == [[1, 1, 128, 255, 255, 0]]  # 0 is reserved for "no data"


def test_multi_panel_frame_view_and_mapping():
    g = two_panel_geometry()
    data = np.arange(40 * 120, dtype=np.float32).reshape(40, 120)
    bad = np.zeros(data.shape, bool)
    bad[5, 7] = True
    v = build_frame_view(0, frame_of(data, bad), g, log_scale=False)
    m = v.mapper
    assert not m.identity and v.image.shape == m.shape
    # every data pixel lands on the display where the geometry says, and maps back
    ss, fs = np.mgrid[0:40:7, 0:120:9]
    x, y = m.data_to_scene(fs.ravel(), ss.ravel())
    for xi, yi, f, s in zip(x, y, fs.ravel(), ss.ravel()):
        panel, f2, s2 = m.scene_to_data(xi, yi)
        assert panel == (0 if f < 60 else 1) and (round(f2), round(s2)) == (f, s)
        if (s, f) != (5, 7):
            assert v.image[int(yi), int(xi)] == data[s, f]
    assert np.isnan(v.image[m.data_to_scene(7, 5)[1].astype(int), m.data_to_scene(7, 5)[0].astype(int)])
    # the beam is at lab (0, 0): the panels' corners are relative to it
    bx, by = v.beam
    assert (bx, by) == pytest.approx((70.0, 30.0))
    # read-out: value, panel name, resolution from the geometry
    r = readout(v, *m.data_to_scene(80, 10))
    assert (r.panel, r.fs, r.ss, r.value) == ("b", 80, 10, data[10, 80])
    inv_d = g.resolution(np.array([80.0]), np.array([10.0]))[0]
    assert r.d_a == pytest.approx(1 / inv_d) and r.twotheta_deg > 0
    assert readout(v, -5.0, -5.0) is None


def test_resolution_rings_are_at_their_d_spacing():
    g = Geometry.single_panel((1000, 1000), 100e-6, 0.1, 500.0, 480.0, photon_energy_ev=12000.0)
    frame = frame_of(np.ones((1000, 1000)))
    v = build_frame_view(0, frame, g)
    assert 2 <= len(v.rings) <= 5
    bx, by = v.beam
    assert (bx, by) == pytest.approx((500.5, 480.5))  # pixel centre (500, 480) is at scene + 0.5
    for ring in v.rings:
        a = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        fs, ss = bx - 0.5 + ring.radius * np.cos(a), by - 0.5 + ring.radius * np.sin(a)  # data positions on the ring
        on = (fs >= 0) & (fs <= 999) & (ss >= 0) & (ss <= 999)
        assert on.any()
        d = 1.0 / g.resolution(fs[on], ss[on])
        np.testing.assert_allclose(d, ring.d_a, rtol=1e-3)
    assert resolution_rings(None, v.mapper, 1.0, (0, 0)) == []


def test_overlay_positions_sizes_and_mask_codes():
    g = two_panel_geometry()
    data = np.zeros((40, 120), np.float32)
    bad = np.zeros(data.shape, bool)
    bad[0, :] = True
    auto = np.zeros(data.shape, bool)
    auto[10:12, 70:75] = True
    auto[0, 3] = True  # also bad: drawn as static
    static = np.zeros(data.shape, bool)
    static[30, 30] = True
    frame = frame_of(data, bad)
    peaks = PeakList(fs=[10.0, 90.0], ss=[20.0, 5.0], npix=[4, 40])
    res = FrameResult(0, frame.event, peaks, True, artifact_mask=auto)
    view = build_frame_view(0, frame, g)
    ov = build_overlay(0, frame, res, view.mapper, static)
    x, y = view.mapper.data_to_scene(peaks.fs, peaks.ss)
    np.testing.assert_allclose(ov.peak_x, x)
    np.testing.assert_allclose(ov.peak_y, y)
    assert ov.peak_diameter[1] > ov.peak_diameter[0] >= 10
    assert (np.diff(peak_diameters([1, 10, 100, 1000])) >= 0).all()
    codes = mask_codes(frame, auto, static)
    assert codes[10, 72] == MASK_AUTO and codes[0, 3] == MASK_STATIC and codes[30, 30] == MASK_STATIC
    assert (codes[20:25, 20:25] == 0).all()
    # the display code image is the assembled data code image
    r, c = view.mapper.data_to_scene(72, 10)
    assert ov.mask_code[int(c), int(r)] == MASK_AUTO
    assert (ov.mask_code == MASK_AUTO).sum() == 10


def test_export_helpers():
    opts = ExportOptions("/tmp/x", "all", first=2, last=5)
    assert opts.indices(4) == [2, 3] and ExportOptions("/tmp/x").indices(3) == [0, 1, 2]
    data = np.zeros((4, 4), np.float32)
    bad = np.zeros((4, 4), bool)
    bad[0, 0] = True
    auto = np.zeros((4, 4), bool)
    auto[3, 3] = True
    f = frame_of(data, bad)
    m = frame_mask(f, FrameResult(0, f.event, PeakList(), False, artifact_mask=auto))
    assert m.sum() == 2 and m[0, 0] and m[3, 3]
    assert frame_mask(f, None).sum() == 1

    class Sink:
        def __init__(self):
            self.added, self.closed = [], False

        def add(self, frame, result):
            self.added.append(result.serial)

        def close(self):
            self.closed = True

    s = Sink()
    h = HitsOnly(s)
    for i, hit in enumerate([True, False, True]):
        h.add(f, FrameResult(i, f.event, PeakList(), hit))
    h.close()
    assert s.added == [0, 2] and s.closed


def test_mapper_cache_and_bad_geometry():
    g = two_panel_geometry()
    assert mapper_for(g, (40, 120)) is mapper_for(g, (40, 120))
    v = build_frame_view(0, frame_of(np.ones((20, 20))), g)  # the panels need a larger frame
    assert v.mapper.identity and v.geometry is None and "40x120" in v.geometry_error
    assert math.isfinite(v.levels[0])


# --- whole-run analysis in the background (Qt-free parts) ------------------------------------------
def _result(frame, n_peaks, hit_min=10):
    fs = np.arange(n_peaks, dtype=np.float32)
    peaks = PeakList(fs=fs, ss=fs, intensity=np.ones(n_peaks, np.float32), npix=np.ones(n_peaks, np.int32))
    return FrameResult(serial=frame.serial, event=frame.event, peaks=peaks, hit=n_peaks >= hit_min,
                       artifact_mask=np.eye(*frame.shape, dtype=bool), hot_pixels=3)


def test_result_store_keys_on_what_makes_the_peaks():
    from peaknet_gui.gui.background import ResultStore, analysis_fingerprint, result_of
    from peaknet_gui.pipeline.settings import MaskSettings

    f, m = FinderSettings(), MaskSettings()
    fp = analysis_fingerprint(f, m)
    # the hit criterion is decided again when a result is read: not part of the fingerprint
    assert analysis_fingerprint(FinderSettings(min_peaks_for_hit=3), m) == fp
    assert analysis_fingerprint(FinderSettings(peak_threshold=0.4), m) != fp
    assert analysis_fingerprint(f, MaskSettings(dilation=2)) != fp
    frame = frame_of(np.zeros((6, 8)), bad=np.zeros((6, 8), bool), serial=4)
    store = ResultStore()
    store.put(4, (1, "peaknet"), fp, frame, _result(frame, 5))
    assert store.get(4, (1, "peaknet"), fp) is not None and store.nbytes > 0
    assert store.get(4, (2, "peaknet"), fp) is None  # another run, geometry, mask or weights
    assert store.get(4, (1, "peaknet"), analysis_fingerprint(FinderSettings(peak_threshold=0.4), m)) is None
    r = result_of(store.get(4, (1, "peaknet"), fp), min_peaks_for_hit=5)
    assert r.n_peaks == 5 and r.hit and r.hot_pixels == 3 and r.peak_prob is None
    assert np.array_equal(r.artifact_mask, np.eye(6, 8, dtype=bool))
    assert not result_of(store.get(4, (1, "peaknet"), fp), min_peaks_for_hit=6).hit
    assert store.done((1, "peaknet"), fp) == {4}
    assert list(store.snapshot((1, "peaknet"), fp)) == ["run.h5 //4"]


def test_background_order_reads_ahead_then_back():
    from peaknet_gui.gui.background import BackgroundPlan, reading_order

    assert list(reading_order(6, 2)) == [2, 3, 4, 5, 1, 0]
    plan, done = BackgroundPlan(), set()
    order = []
    while (i := plan.next(6, 2, done.__contains__)) is not None:
        order.append(i)
        done.add(i)
    assert order == [2, 3, 4, 5, 1, 0]
    done = {0, 1}
    assert plan.next(6, 4, done.__contains__) == 4  # the user moved: ahead of the new frame first
    plan.skipped.add(5)
    done.add(4)
    assert plan.next(6, 4, done.__contains__) == 3  # an unreadable frame is not tried again
    assert plan.next(8, 4, done.__contains__) == 6  # the run grew (follow live)


def test_overview_series_break_at_frames_never_analysed():
    from peaknet_gui.gui.state import with_gaps

    s = BrowserState(finder=FinderSettings(min_peaks_for_hit=10))
    s.set_run(10)
    for i in (0, 1, 2, 6, 7):
        s.record(i, 20, True)
    idx, rate = s.rolling_hit_rate()
    x, y = with_gaps(idx, rate)
    assert np.isnan(y).sum() == 1 and 2 < x[np.isnan(y)][0] < 6  # no line across frames 3-5
    assert s.analysed_mask().tolist() == [True] * 3 + [False] * 3 + [True] * 2 + [False] * 2
    # new thresholds: the counts stay plotted, but no longer count as analysed with these settings
    s.set_finder(FinderSettings(min_peaks_for_hit=10, peak_threshold=0.3))
    assert s.n_analysed == 5 and s.n_current == 0 and not s.analysed_mask().any()
    s.record(6, 4, False, fingerprint=s.fingerprint)
    assert s.n_current == 1
    # the hit criterion alone changes nothing analysed
    s.set_finder(FinderSettings(min_peaks_for_hit=3, peak_threshold=0.3))
    assert s.n_current == 1


def test_spot_levels_keep_the_background_dark():
    from peaknet_gui.gui.display import background_stats, spot_levels

    rng = np.random.default_rng(1)
    data = rng.poisson(3.0, (400, 400)).astype(np.float32)  # a Pilatus-like background, ~3 photons
    data[100:103, 100:103] = 400.0  # a spot
    med, sigma = background_stats(data)
    assert med == pytest.approx(3.0, abs=1) and 1.5 <= sigma <= 3.5
    lo, hi = spot_levels(data, log_scale=True)
    assert lo == pytest.approx(math.log10(med)) and 1.3 < hi < 2.0
    scaled = scale_to_uint8(log_image(data.copy()), (lo, hi))
    assert np.median(scaled) <= 40 and scaled[101, 101] == 255  # dark background, white spot
    plo, phi = percentile_levels(log_image(data.copy()), (1.0, 99.7))
    assert np.median(scale_to_uint8(log_image(data.copy()), (plo, phi))) > 100  # the old look: grey noise
    lo, hi = spot_levels(data, log_scale=False)
    assert lo == pytest.approx(med - sigma) and hi == pytest.approx(med + 15 * sigma)


def test_export_reuses_stored_results_and_analyses_the_rest():
    from peaknet_gui.cluster.compact import CompactResult
    from peaknet_gui.gui.exports import ReusingAnalyzer

    class Inner:
        finder = FinderSettings(min_peaks_for_hit=2)

        def __init__(self):
            self.seen = []

        def prepare(self, frame):
            return ("prepared", frame.serial)

        def analyze(self, frames, prepared=None):
            self.seen += [f.serial for f in frames]
            return [_result(f, 7) for f in frames]

    frames = [frame_of(np.zeros((6, 8)), serial=i) for i in range(4)]
    cached = {frames[i].event.lst_line(): CompactResult.from_result(0, i, frames[i], _result(frames[i], 1 + i))
              for i in (0, 2)}
    inner = Inner()
    an = ReusingAnalyzer(inner, cached)
    prepared = [an.prepare(f) for f in frames]
    out = an.analyze(frames, prepared)
    assert inner.seen == [1, 3] and an.reused == 2 and an.analysed == 2
    assert [r.n_peaks for r in out] == [1, 7, 3, 7]
    assert [r.hit for r in out] == [False, False, True, False]  # hits by the export's criterion (2)
    assert an.finder is inner.finder  # everything else is the inner analyzer's


def test_demo_generation_reports_progress(tmp_path, monkeypatch):
    """The first start shows the demo being made frame by frame (the window's status bar)."""
    from peaknet_gui.gui.runs import RunRequest, open_run_request

    monkeypatch.setenv("PEAKNET_DEMO_DIR", str(tmp_path / "demo"))
    import peaknet_gui.sources.demo as demo

    monkeypatch.setattr(demo, "DEMO_FRAMES", 2)
    monkeypatch.setattr(demo.demo_run_path, "__defaults__", (2, demo.DEMO_SEED, None))
    seen = []
    source, info = open_run_request(RunRequest(demo=True), progress=lambda done, total: seen.append((done, total)))
    source.close()
    assert info.n_frames == 2 and seen == [(1, 2), (2, 2)]
    seen.clear()
    source, _ = open_run_request(RunRequest(demo=True), progress=lambda done, total: seen.append((done, total)))
    source.close()
    assert seen == []  # cached: nothing to make
