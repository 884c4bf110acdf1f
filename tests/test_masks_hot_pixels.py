"""Hot and dead pixels from the run's own statistics, and the one-frame fallback."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.frame import EventId, Frame
from peaknet_gui.masks.hot_pixels import HotPixelSettings, HotPixelTracker, lone_pixels
from peaknet_gui.pipeline.analyzer import FrameAnalyzer
from peaknet_gui.pipeline.settings import FinderSettings

SHAPE = (160, 200)
HOT = [(20, 30), (100, 150), (140, 10)]
DEAD = (60, 60)


def _spot(img, ss, fs, photons, sigma=0.6):
    y, x = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    g = np.exp(-0.5 * ((x - fs) ** 2 + (y - ss) ** 2) / sigma**2)
    img += photons * g / g.sum()


def _frame(k: int, hot=True, spots=8, background=48.0, gain=1.0):
    """A counting-detector frame with ~48 photons of background, Bragg spots at new places each
    frame, hot pixels at the same places (43,152 counts) and one dead pixel (0)."""
    rng = np.random.default_rng(100 + k)
    expected = np.full(SHAPE, background)
    for _ in range(spots):
        _spot(expected, rng.uniform(5, SHAPE[0] - 5), rng.uniform(5, SHAPE[1] - 5), rng.uniform(300, 3000))
    data = rng.poisson(expected).astype(np.float32) * gain
    if hot:
        for ss, fs in HOT:
            data[ss, fs] = 43152
        data[DEAD] = 0
    return Frame(data=data, event=EventId("run.h5", k), serial=k)


def test_tracker_finds_hot_and_dead_pixels_not_bragg_spots():
    t = HotPixelTracker()
    for k in range(4):
        t.update(_frame(k).data, key=("run", k))
    assert t.run_mask() is None and not t.ready  # fewer than min_frames: the run cannot decide
    for k in range(4, 12):
        t.update(_frame(k).data, key=("run", k))
    t.update(_frame(3).data, key=("run", 3))  # seen before: not counted again
    assert t.frames == 12
    m = t.run_mask()
    assert m is not None
    flagged = set(zip(*np.nonzero(m)))
    assert flagged == set(HOT) | {DEAD}
    rep = t.report()
    assert (rep.hot, rep.dead, rep.frames) == (3, 1, 12)


def test_tracker_is_gain_free():
    t = HotPixelTracker()
    for k in range(8):
        f = _frame(k, gain=25.0)
        f.data[tuple(np.array(HOT).T)] = 43152 * 25.0
        t.update(f.data + 1000.0, key=k)  # gain 25 and an offset
    assert set(zip(*np.nonzero(t.run_mask()))) == set(HOT) | {DEAD}


def test_one_frame_fallback_masks_lone_hot_pixel_keeps_sharp_spot():
    f = _frame(0, spots=0)
    _spot(f.data, 80.3, 90.2, 20000.0, sigma=0.35)  # a bright, sharp Bragg spot (Poisson-free here)
    m = HotPixelTracker().mask_for(f.data)
    assert m is not None
    assert set(zip(*np.nonzero(m))) == set(HOT)  # the dead pixel needs a run; the spot is not lone
    # one frame's lone-pixel test cannot tell such a spot from a hot pixel; the run can: the spot
    # is in one frame of eight, the hot pixels in all
    assert lone_pixels(f.data, np.ones(SHAPE, bool), 8.0, 0.25)[80, 90]
    t = HotPixelTracker()
    t.update(f.data, key="spot")
    for k in range(1, 8):
        t.update(_frame(k).data, key=k)
    assert not t.run_mask()[80, 90] and all(t.run_mask()[h] for h in HOT)


def test_no_flags_on_clean_run():
    t = HotPixelTracker()
    for k in range(10):
        t.update(_frame(k, hot=False).data, key=k)
    assert not t.run_mask().any()
    assert t.mask_for(_frame(20, hot=False).data) is None


def test_analyzer_never_reports_hot_pixels_and_masks_them():
    """peakfinder8 (no model needed) on frames with hot pixels: after the run's statistics, no
    peak sits on a hot pixel and the auto-mask holds them; without the tracker they are peaks."""
    frames = [_frame(k) for k in range(8)]
    finder = FinderSettings(min_peaks_for_hit=1, pf8_min_pixels=1)
    off = FrameAnalyzer(algorithm="peakfinder8", finder=finder, hot_pixels=False)
    res_off = off.analyze([_frame(0)])[0]
    near = lambda r: [(round(s), round(f)) for f, s in zip(r.peaks.fs, r.peaks.ss)]
    assert set(HOT) & set(near(res_off))  # the classical finder takes hot pixels for peaks
    on = FrameAnalyzer(algorithm="peakfinder8", finder=finder)
    results = on.analyze(frames)
    for r in results:
        assert not set(HOT) & set(near(r))
        for ss, fs in HOT:
            assert r.artifact_mask[ss, fs]
    # the same frames found again later carry the run's decision, dead pixel included
    again = on.analyze([_frame(3)])[0]
    assert again.artifact_mask[DEAD]
    assert on.hot_pixels.report().hot == 3
    on.reset_hot_pixels()
    assert on.hot_pixels.frames == 0


@pytest.mark.parametrize("min_frames", [3, 5])
def test_settings_min_frames(min_frames):
    t = HotPixelTracker(HotPixelSettings(min_frames=min_frames))
    for k in range(min_frames - 1):
        t.update(_frame(k).data, key=k)
    assert not t.ready
    t.update(_frame(99).data, key=99)
    assert t.ready


def test_sampling_after_warmup_and_decision_refresh():
    t = HotPixelTracker()
    t.warmup_frames, t.sample_every = 6, 4
    data = _frame(0).data
    counted = [t.update(data + k, key=k) for k in range(14)]
    # the first 6 counted, then every 4th frame offered (offers 8 and 12)
    assert counted == [True] * 6 + [False, True, False, False, False, True, False, False]
    assert t.frames == 8
    first = t.run_mask()
    assert t.report().frames == 8
    t.warmup_frames = 100
    for k in range(14, 30):
        t.update(_frame(k).data, key=k)
    assert t.run_mask() is not first and t.report().frames == 24  # remade as the run grew


def test_rotation_series_reflection_on_one_pixel_is_not_hot():
    """A sharp reflection that sits on one pixel through a rotation series, rising and fading as
    it crosses the Ewald sphere, is lone-bright in most frames but not steady: not hot."""
    t = HotPixelTracker()
    rise = [20, 60, 200, 800, 3000, 5000, 2500, 600, 100, 30]
    for k, a in enumerate(rise):
        f = _frame(k, hot=True, spots=0)
        f.data[70, 70] = 48 + a
        t.update(f.data, key=k)
    m = t.run_mask()
    assert not m[70, 70]
    assert set(zip(*np.nonzero(m))) == set(HOT) | {DEAD}


def test_snapshot_keeps_the_decision_and_learns_nothing():
    t = HotPixelTracker()
    for k in range(6):
        t.update(_frame(k).data, key=k)
    snap = t.snapshot()
    before = snap.run_mask().copy()
    assert not snap.update(_frame(50, hot=False).data, key=50)
    assert np.array_equal(snap.run_mask(), before) and snap.report().hot == 3
    assert HotPixelTracker().snapshot().run_mask() is None  # nothing decided yet: stays undecided


@pytest.mark.parametrize("k_flat", [None, 4.0])
def test_lone_pixels_equal_the_rule_pixel_by_pixel(k_flat):
    """The vectorised search (neighbour maxima first) keeps exactly the pixels the rule names, checked
    one pixel at a time: lone pixels in the middle, on the edges and corners, beside unusable
    pixels, a spread spot, a pair of equal bright pixels, a plateau."""
    rng = np.random.default_rng(7)
    data = rng.poisson(40.0, (40, 50)).astype(np.float32)
    usable = np.ones(data.shape, bool)
    for y, x in ((5, 5), (0, 0), (0, 20), (39, 49), (20, 0), (12, 30)):
        data[y, x] += 900.0
    usable[11, 30] = usable[12, 31] = False  # unusable neighbours of (12, 30)
    data[30, 10] += 900.0
    data[30, 11] += 500.0  # a spread spot: not lone
    data[25, 40] += 900.0
    data[25, 41] += 900.0  # two equal pixels: neither is a strict maximum
    data[2:5, 40:43] += 600.0  # a plateau
    data[33, 33] = np.nan
    s = 6.0
    got = lone_pixels(data, usable, 8.0, 0.1, k_flat=k_flat, noise=s)
    want = np.zeros(data.shape, bool)
    x = np.where(usable & np.isfinite(data), data, np.nan)
    floor = np.nanmin(x) + 8.0 * s
    for y in range(data.shape[0]):
        for c in range(data.shape[1]):
            v = x[y, c]
            if not np.isfinite(v) or v <= floor:
                continue
            nb = [x[y + dy, c + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                  if (dy or dx) and 0 <= y + dy < data.shape[0] and 0 <= c + dx < data.shape[1]]
            nb = np.array([n for n in nb if np.isfinite(n)])
            if len(nb) == 0:
                continue
            med, top = np.median(nb), nb.max()
            ok = v - top > 8.0 * s and top - med <= 0.1 * (v - med)
            if k_flat is not None:
                ok = ok and top - med <= k_flat * s
            want[y, c] = ok
    assert want[5, 5] and want[0, 0] and want[39, 49] and want[12, 30] and not want[30, 10] and not want[25, 40]
    np.testing.assert_array_equal(got, want)


def test_priming_sample_spreads_over_the_run():
    """The frames a run's hot pixels are decided from (the program's priming and the evaluation's):
    first and last included, evenly spread, never more than asked, all of a short run."""
    from peaknet_gui.masks.hot_pixels import PRIME_FRAMES, spread_sample

    take = spread_sample(1000)
    assert len(take) == PRIME_FRAMES and take[0] == 0 and take[-1] == 999
    assert np.ptp(np.diff(take)) <= 1
    assert spread_sample(5, 16).tolist() == [0, 1, 2, 3, 4]
    assert spread_sample(0).size == 0 and spread_sample(10, 0).size == 0
