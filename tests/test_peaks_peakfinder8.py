"""The peakfinder8-style classical finder on simulated frames."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.peaks.peakfinder8 import Peakfinder8Settings, peakfinder8, radial_statistics
from peaknet_gui.pipeline.settings import FinderSettings

SHAPE = (256, 256)


def frame_with_spots(rng, n_spots=40, amplitude=150.0, shape=SHAPE, centre=(128, 128)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - centre[0], xx - centre[1])
    background = 5.0 + 30.0 * np.exp(-r / 60.0)  # radially falling water-ring-free background
    data = rng.poisson(background).astype(np.float32)
    cy = rng.uniform(10, shape[0] - 10, n_spots)
    cx = rng.uniform(10, shape[1] - 10, n_spots)
    g = np.zeros(shape)
    for y, x in zip(cy, cx):
        sl = np.s_[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5]
        g[sl] += amplitude * np.exp(-((yy[sl] - y) ** 2 + (xx[sl] - x) ** 2) / 2.0)
    data += rng.poisson(g).astype(np.float32)
    return data, np.stack([cy, cx], axis=1), background


def geometry(shape=SHAPE, centre=(128, 128)):
    return Geometry.single_panel(shape, 100e-6, 0.1, centre[1], centre[0], photon_energy_ev=10000.0)


def well_separated(centres, min_dist=6.0):
    d = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1) > min_dist


def test_finds_strong_spots_with_accurate_centroids():
    rng = np.random.default_rng(0)
    data, centres, _ = frame_with_spots(rng)
    peaks = peakfinder8(data, geometry=geometry())
    d = np.hypot(peaks.ss[:, None] - centres[None, :, 0], peaks.fs[:, None] - centres[None, :, 1])
    isolated = well_separated(centres)
    found = d.min(axis=0) < 1.0
    assert found[isolated].all()
    assert (d.min(axis=1) < 1.5).all()  # no false peaks
    assert np.median(d.min(axis=0)[isolated]) < 0.15
    assert (peaks.snr >= 5.0).all() and (peaks.npix >= 2).all()
    # the brightest pixel's SNR against the same local noise: above the per-pixel threshold, below the total's
    assert (peaks.max_snr >= 5.0).all() and (peaks.max_snr <= peaks.snr).all()
    assert (peaks.panel == 0).all()
    assert np.allclose(peaks.resolution, geometry().resolution(peaks.fs, peaks.ss))


def test_nothing_on_flat_noise():
    rng = np.random.default_rng(1)
    data, _, background = frame_with_spots(rng, n_spots=0)
    assert len(peakfinder8(data, geometry=geometry())) == 0
    flat = rng.normal(1000.0, 20.0, SHAPE).astype(np.float32)
    assert len(peakfinder8(flat, geometry=geometry())) == 0


def test_adc_threshold_and_pixel_limits():
    rng = np.random.default_rng(2)
    data, centres, _ = frame_with_spots(rng, n_spots=20, amplitude=150.0)
    n_default = len(peakfinder8(data, geometry=geometry()))
    assert n_default >= 15
    # spots peak at ~150 + background: an ADC threshold of 10000 leaves nothing
    assert len(peakfinder8(data, geometry=geometry(), settings=Peakfinder8Settings(adc_threshold=1e4))) == 0
    # spots have ~5-15 pixels above threshold: at most 3 pixels allowed leaves (almost) none
    few = peakfinder8(data, geometry=geometry(), settings=Peakfinder8Settings(max_pix_count=3))
    assert len(few) < n_default / 3
    capped = peakfinder8(data, geometry=geometry(), settings=Peakfinder8Settings(max_num_peaks=5))
    assert len(capped) == 5


def test_bad_pixels_and_no_index_panels_are_skipped():
    rng = np.random.default_rng(3)
    data, centres, _ = frame_with_spots(rng, n_spots=10)
    bad = np.zeros(SHAPE, dtype=bool)
    y, x = np.rint(centres[0]).astype(int)
    bad[y - 5 : y + 6, x - 5 : x + 6] = True
    peaks = peakfinder8(data, bad=bad, geometry=geometry())
    assert not (np.hypot(peaks.ss - centres[0, 0], peaks.fs - centres[0, 1]) < 3).any()
    # split into two panels (left/right halves); mark the left one no_index
    p0 = Panel("l", 0, 127, 0, 255, corner_x=-128.0, corner_y=-128.0, res=1e4, clen=0.1)
    p1 = Panel("r", 128, 255, 0, 255, corner_x=0.0, corner_y=-128.0, res=1e4, clen=0.1, no_index=True)
    g = Geometry(panels=[p0, p1], photon_energy_ev=10000.0, clen=0.1)
    peaks = peakfinder8(data, geometry=g)
    assert len(peaks) > 0 and (peaks.fs < 127.5).all() and (peaks.panel == 0).all()


def test_radial_statistics_clip_outliers():
    rng = np.random.default_rng(4)
    values = rng.normal(100.0, 10.0, 20000)
    values[:50] = 5000.0  # bright outliers
    rbin = np.zeros(values.size, dtype=np.int32)
    st = radial_statistics(values, rbin, 1, Peakfinder8Settings(min_snr=5.0))
    assert st.offset[0] == pytest.approx(100.0, abs=0.5)
    assert st.sigma[0] == pytest.approx(10.0, rel=0.05)
    assert st.threshold[0] == pytest.approx(st.offset[0] + 5.0 * st.sigma[0])


def test_settings_from_finder_settings():
    f = FinderSettings(pf8_adc_threshold=200.0, pf8_min_snr=4.0, pf8_min_pixels=3, pf8_max_pixels=50, max_peaks=100)
    s = Peakfinder8Settings.from_finder(f)
    assert (s.adc_threshold, s.min_snr, s.min_pix_count, s.max_pix_count, s.max_num_peaks) == (200.0, 4.0, 3, 50, 100)


def test_bad_input_shapes():
    with pytest.raises(InputError):
        peakfinder8(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(InputError):
        peakfinder8(np.zeros((8, 8), np.float32), bad=np.zeros((4, 4), bool))
