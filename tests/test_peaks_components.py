"""Peaks from a peak mask: connected components, centroids, background, panels, resolution."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.peaks.components import label_components, peaks_from_mask
from peaknet_gui.peaks.detmaps import detector_maps


def gaussian_spots(shape, centres, amplitude=500.0, sigma=1.0, half=5):
    """Noise-free Gaussian spots; returns the signal image."""
    img = np.zeros(shape, dtype=np.float64)
    for cy, cx in centres:
        iy, ix = int(round(cy)), int(round(cx))
        ys, xs = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
        img[ys, xs] += amplitude * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
    return img


def grid_centres(rng, n_side, spacing, offset=20):
    centres = []
    for i in range(n_side):
        for j in range(n_side):
            centres.append((offset + i * spacing + rng.uniform(-0.5, 0.5), offset + j * spacing + rng.uniform(-0.5, 0.5)))
    return np.array(centres)


def match_to(peaks, centres):
    d = np.hypot(peaks.ss[:, None] - centres[None, :, 0], peaks.fs[:, None] - centres[None, :, 1])
    return d.min(axis=1), d.argmin(axis=1)


def test_noise_free_centroid_is_the_weighted_centre_of_the_component():
    rng = np.random.default_rng(1)
    centres = grid_centres(rng, 5, 30)
    signal = gaussian_spots((180, 180), centres)
    data = (signal + 10.0).astype(np.float32)  # flat background 10
    mask = signal > 0.05 * 500
    peaks = peaks_from_mask(data, mask)
    assert len(peaks) == len(centres)
    labels, _ = label_components(mask)
    for k in range(len(peaks)):
        lab = labels[int(round(peaks.ss[k])), int(round(peaks.fs[k]))]
        ys, xs = np.nonzero(labels == lab)
        w = signal[ys, xs]
        assert peaks.fs[k] == pytest.approx((w * xs).sum() / w.sum(), abs=1e-4)
        assert peaks.ss[k] == pytest.approx((w * ys).sum() / w.sum(), abs=1e-4)
        assert peaks.intensity[k] == pytest.approx(w.sum(), rel=1e-4)  # background removed exactly
        assert peaks.max_intensity[k] == pytest.approx(w.max(), rel=1e-4)
        assert peaks.npix[k] == len(ys)


def test_centroid_with_poisson_noise_within_0_05_px_of_true_centre():
    rng = np.random.default_rng(2)
    centres = grid_centres(rng, 8, 24)
    signal = gaussian_spots((220, 220), centres, amplitude=2000.0, sigma=1.0)
    data = rng.poisson(signal + 10.0).astype(np.float32)
    mask = signal > 0.01 * 2000
    peaks = peaks_from_mask(data, mask)
    assert len(peaks) == len(centres)
    dist, _ = match_to(peaks, centres)
    assert dist.max() < 0.05, dist.max()
    # background sigma of Poisson(10) is ~3.2, SNR = total / sigma
    assert np.median(peaks.snr) == pytest.approx(np.median(peaks.intensity) / np.sqrt(10.0), rel=0.15)
    # total intensity of a 2-D Gaussian = 2 pi sigma^2 A, most of it inside the 1% contour
    assert np.median(peaks.intensity) == pytest.approx(2 * np.pi * 2000.0, rel=0.08)


def test_diagonal_neighbours_merge_and_gaps_separate():
    data = np.ones((20, 20), dtype=np.float32)
    mask = np.zeros((20, 20), dtype=bool)
    mask[5, 5] = mask[6, 6] = mask[7, 7] = True  # diagonal chain: one peak
    mask[5, 12] = mask[5, 14] = True  # one-pixel gap: two peaks
    data[mask] = 50
    peaks = peaks_from_mask(data, mask)
    assert len(peaks) == 3
    assert sorted(peaks.npix.tolist()) == [1, 1, 3]
    chain = peaks.select(peaks.npix == 3)
    assert chain.fs[0] == pytest.approx(6.0) and chain.ss[0] == pytest.approx(6.0)


def two_panel_geometry():
    # two 40x50 panels side by side in the data array (fs 0-49 and 50-99), placed apart in the lab
    p0 = Panel("a", 0, 49, 0, 39, corner_x=-60.0, corner_y=-20.0, res=1 / 100e-6, clen=0.1)
    p1 = Panel("b", 50, 99, 0, 39, corner_x=10.0, corner_y=-20.0, res=1 / 100e-6, clen=0.1)
    return Geometry(panels=[p0, p1], photon_energy_ev=12000.0, clen=0.1)


def test_components_do_not_cross_panel_boundaries():
    geom = two_panel_geometry()
    data = np.full((40, 100), 2.0, dtype=np.float32)
    mask = np.zeros((40, 100), dtype=bool)
    mask[18:22, 47:53] = True  # straddles fs 49 | 50
    data[mask] = 100.0
    peaks = peaks_from_mask(data, mask, geometry=geom)
    assert len(peaks) == 2
    order = np.argsort(peaks.fs)
    assert peaks.panel[order].tolist() == [0, 1]
    assert peaks.fs[order][0] == pytest.approx(48.0)  # pixels 47..49
    assert peaks.fs[order][1] == pytest.approx(51.0)  # pixels 50..52
    assert peaks.npix.tolist() == [12, 12]
    # without the geometry it is a single component
    assert len(peaks_from_mask(data, mask)) == 1


def test_pixels_outside_panels_are_ignored_and_resolution_comes_from_geometry():
    geom = two_panel_geometry()
    geom.panels[1].max_ss = 29  # rows 30-39 of fs 50-99 belong to no panel
    data = np.full((40, 100), 1.0, dtype=np.float32)
    mask = np.zeros((40, 100), dtype=bool)
    mask[34:36, 70:72] = True  # outside every panel
    mask[10:12, 20:22] = True
    data[mask] = 30.0
    peaks = peaks_from_mask(data, mask, geometry=geom)
    assert len(peaks) == 1
    expected = geom.resolution(peaks.fs, peaks.ss)
    assert peaks.resolution[0] == pytest.approx(expected[0], rel=1e-9)
    # energy override changes 1/d proportionally
    peaks2 = peaks_from_mask(data, mask, geometry=geom, photon_energy_ev=6000.0)
    assert peaks2.resolution[0] == pytest.approx(expected[0] / 2, rel=1e-9)


def test_resolution_is_nan_without_energy():
    geom = two_panel_geometry()
    geom.photon_energy_ev = None
    data = np.ones((40, 100), dtype=np.float32)
    mask = np.zeros((40, 100), dtype=bool)
    mask[10, 10] = True
    data[10, 10] = 9
    peaks = peaks_from_mask(data, mask, geometry=geom)
    assert len(peaks) == 1 and np.isnan(peaks.resolution[0]) and peaks.panel[0] == 0
    nogeom = peaks_from_mask(data, mask)
    assert nogeom.panel[0] == -1 and np.isnan(nogeom.resolution[0])


def test_min_max_pixels_and_bad_pixels():
    data = np.ones((30, 30), dtype=np.float32)
    mask = np.zeros((30, 30), dtype=bool)
    mask[2, 2] = True  # 1 px
    mask[10:13, 10:13] = True  # 9 px
    mask[20:26, 20:26] = True  # 36 px
    data[mask] = 10
    assert sorted(peaks_from_mask(data, mask).npix.tolist()) == [1, 9, 36]
    assert sorted(peaks_from_mask(data, mask, min_pixels=2, max_pixels=20).npix.tolist()) == [9]
    bad = np.zeros_like(mask)
    bad[10:13, 10] = True  # one column of the 9-px peak is bad
    peaks = peaks_from_mask(data, mask, bad=bad, min_pixels=2, max_pixels=20)
    assert peaks.npix.tolist() == [6]
    assert peaks.fs[0] == pytest.approx(11.5)


def test_background_ignores_neighbouring_peak_and_bad_pixels():
    rng = np.random.default_rng(3)
    data = rng.normal(100.0, 5.0, (60, 60)).astype(np.float32)
    mask = np.zeros((60, 60), dtype=bool)
    mask[29:32, 29:32] = True
    data[mask] += 400.0
    data[26, 34] += 5000.0  # an unlabelled hot pixel inside the annulus
    bad = np.zeros_like(mask)
    bad[33, 25:35] = True
    data[bad] = -1e6  # bad pixels hold garbage
    peaks = peaks_from_mask(data, mask, bad=bad)
    assert len(peaks) == 1
    assert peaks.intensity[0] == pytest.approx(9 * 400.0, abs=60.0)
    # the noise is that of the annulus around the peak without the hot and the bad pixels
    yy, xx = np.mgrid[:60, :60]
    r = np.hypot(yy - 30, xx - 30)
    ring = (r >= 3) & (r <= 6) & ~bad
    ring[26, 34] = False
    sigma = data[ring].std()
    assert peaks.snr[0] == pytest.approx(peaks.intensity[0] / sigma, rel=0.1)
    assert 3.0 < sigma < 7.0


def test_empty_and_bad_shapes():
    data = np.zeros((10, 12), dtype=np.float32)
    assert len(peaks_from_mask(data, np.zeros((10, 12), bool))) == 0
    with pytest.raises(InputError):
        peaks_from_mask(data, np.zeros((10, 11), bool))
    with pytest.raises(InputError):
        peaks_from_mask(data, np.zeros((10, 12), bool), bad=np.zeros((3, 3), bool))


def test_detector_maps_cache_follows_geometry_edits():
    geom = two_panel_geometry()
    m1 = detector_maps(geom, (40, 100))
    assert detector_maps(geom, (40, 100)) is m1
    geom.panels[0].corner_x -= 5.0
    m2 = detector_maps(geom, (40, 100))
    assert m2 is not m1
    assert m2.radius_px[0, 0] != m1.radius_px[0, 0]
    assert (m2.panel[:, :50] == 0).all() and (m2.panel[:, 50:] == 1).all()


def test_many_peaks_match_scipy_labels():
    from scipy import ndimage

    rng = np.random.default_rng(4)
    data = rng.poisson(5.0, (512, 512)).astype(np.float32)
    mask = np.zeros(data.shape, dtype=bool)
    ys = rng.integers(3, 509, 1500)
    xs = rng.integers(3, 509, 1500)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            mask[ys + dy, xs + dx] = True
    data[mask] += 100
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    peaks = peaks_from_mask(data, mask)
    assert len(peaks) == n
    assert peaks.npix.sum() == mask.sum()
    # every centroid lies inside its own component's bounding box
    lab = labels[np.rint(peaks.ss).astype(int), np.rint(peaks.fs).astype(int)]
    assert (lab > 0).mean() > 0.95


def test_long_streak_gets_a_local_background():
    rng = np.random.default_rng(6)
    data = rng.normal(50.0, 2.0, (300, 300)).astype(np.float32)
    mask = np.zeros(data.shape, dtype=bool)
    mask[149:152, 20:280] = True  # a 260 px streak: the annulus radius is capped
    data[mask] += 30.0
    peaks = peaks_from_mask(data, mask)
    assert len(peaks) == 1 and peaks.npix[0] == 780
    assert peaks.intensity[0] == pytest.approx(780 * 30.0, rel=0.05)
    assert np.isfinite(peaks.snr[0]) and peaks.snr[0] > 100


def test_pixel_snr_is_the_brightest_pixel_over_the_local_noise_whatever_the_gain():
    """``max_snr``: background-subtracted maximum over the annulus' sigma, the same for a
    counting detector and for one with gain 25 and an offset (no gain is assumed)."""
    rng = np.random.default_rng(11)
    centres = np.array([(20.0, 20.0), (20.0, 60.0), (60.0, 40.0)])
    extra = (40.0, 12.0, 4.0)  # photons added to each spot's centre pixel
    counts = rng.poisson(9.0, (80, 80)).astype(np.float64)  # background sigma 3
    mask = np.zeros((80, 80), bool)
    for (y, x), e in zip(centres.astype(int), extra):
        counts[y, x] += e
        mask[y - 1 : y + 2, x - 1 : x + 2] = True
    seen = []
    for gain, offset in ((1.0, 0.0), (25.0, 300.0)):
        peaks = peaks_from_mask(counts * gain + offset, mask)
        order = np.argsort(peaks.fs + 100 * peaks.ss)  # (20,20), (20,60), (60,40)
        snr = peaks.max_snr[order]
        assert snr[0] == pytest.approx(peaks.max_intensity[order][0] / (peaks.intensity[order][0] / peaks.snr[order][0]))
        assert 9.0 < snr[0] < 19.0 and 2.0 < snr[1] < 7.0 and snr[2] < snr[1]
        kept = peaks_from_mask(counts * gain + offset, mask, min_pixel_snr=8.0)
        assert len(kept) == 1 and kept.ss[0] == pytest.approx(20.0, abs=0.5) and kept.fs[0] == pytest.approx(20.0, abs=0.5)
        seen.append(snr)
    np.testing.assert_allclose(seen[0], seen[1], rtol=1e-6)


def _counting_frame(gain: float = 25.0, read_noise: float = 3.0, seed: int = 3):
    """A nearly empty CSPAD-like frame (0.03 photons per pixel, 25 ADU per photon, read noise 3 ADU)
    with one stray photon at (20, 20) and a 12-photon one-pixel spot at (60, 60)."""
    rng = np.random.default_rng(seed)
    photons = rng.poisson(0.03, (96, 96)).astype(np.float64)
    photons[16:25, 16:25] = 0
    photons[56:65, 56:65] = 0
    photons[20, 20] = 1
    photons[60, 60] = 12
    data = photons * gain + rng.normal(0, read_noise, photons.shape) + 10.0
    mask = np.zeros(data.shape, bool)
    mask[20, 20] = mask[60, 60] = True
    return data, mask


@pytest.mark.parametrize("adu_per_photon, adu_per_ev", [(25.0, None), (None, 25.0 / 9500.0)])
def test_photon_floor_one_photon_is_no_spot(adu_per_photon, adu_per_ev):
    """Against the read noise alone a stray photon stands ~8 sigmas high; against at least one
    photon (the simulator's truth rule) it stands 1, while a 12-photon spot keeps 12."""
    data, mask = _counting_frame()
    panel = Panel("p", 0, 95, 0, 95, res=1 / 110e-6, clen=0.1, adu_per_photon=adu_per_photon, adu_per_ev=adu_per_ev)
    geom = Geometry(panels=[panel], photon_energy_ev=9500.0, clen=0.1)
    plain = peaks_from_mask(data, mask, geometry=geom)
    floored = peaks_from_mask(data, mask, geometry=geom, photon_floor=True)
    order = np.argsort(plain.max_intensity)
    stray, spot = order
    assert plain.max_snr[stray] > 5 and floored.max_snr[stray] == pytest.approx(1.0, abs=0.3)
    assert floored.max_snr[spot] == pytest.approx(12.0, abs=1.0) and plain.max_snr[spot] > 50
    np.testing.assert_allclose(floored.snr, plain.snr)  # peakfinder8's SNR is unchanged
    kept = peaks_from_mask(data, mask, geometry=geom, photon_floor=True, min_pixel_snr=5.0)
    assert len(kept) == 1 and kept.fs[0] == pytest.approx(60.0, abs=0.1)


def test_photon_floor_needs_the_gain():
    """No gain in the geometry (or no geometry): the local sigma alone, as before."""
    data, mask = _counting_frame()
    geom = Geometry(panels=[Panel("p", 0, 95, 0, 95, res=1 / 110e-6, clen=0.1)], photon_energy_ev=9500.0, clen=0.1)
    plain = peaks_from_mask(data, mask, geometry=geom)
    np.testing.assert_allclose(peaks_from_mask(data, mask, geometry=geom, photon_floor=True).max_snr, plain.max_snr)
    np.testing.assert_allclose(peaks_from_mask(data, mask, photon_floor=True).max_snr, plain.max_snr)


def _two_spots(rng, sep=5.0, bg=20.0):
    """A frame with two Gaussian spots ``sep`` px apart on a Poisson background, their true
    centres, a low-threshold mask that joins them and the two cores above a higher level."""
    yy, xx = np.mgrid[0:40, 0:40].astype(np.float64)
    centres = np.array([[17.3, 20.2], [17.3 + sep, 20.6]])  # (fs, ss)
    model = np.full((40, 40), bg)
    for fs, ss in centres:
        model += 800.0 * np.exp(-((xx - fs) ** 2 + (yy - ss) ** 2) / (2 * 1.0**2))
    data = rng.poisson(model).astype(np.float32)
    signal = model - bg
    return data, centres, signal > 2.0, signal > 200.0


def test_a_component_with_two_cores_is_split_between_them():
    rng = np.random.default_rng(31)
    data, centres, low, cores = _two_spots(rng)
    whole = peaks_from_mask(data, low)
    assert len(whole) == 1  # the low mask joins the spots: one centroid between them
    assert np.hypot(whole.fs[0] - centres[:, 0], whole.ss[0] - centres[:, 1]).min() > 2.0
    split = peaks_from_mask(data, low, cores=cores)
    assert len(split) == 2
    d = np.hypot(split.fs[:, None] - centres[None, :, 0], split.ss[:, None] - centres[None, :, 1])
    assert d.min(axis=1).max() < 0.3 and sorted(d.argmin(axis=1)) == [0, 1]
    assert split.npix.sum() == whole.npix[0]  # every pixel goes to one of the two
    # one core, or none (a faint spot only the low mask reaches): the component stays whole
    one = peaks_from_mask(data, low, cores=cores & (np.arange(40)[None, :] < 20))
    assert len(one) == 1 and one.npix[0] == whole.npix[0]
    assert len(peaks_from_mask(data, low, cores=np.zeros_like(low))) == 1
    with pytest.raises(InputError, match="core mask"):
        peaks_from_mask(data, low, cores=cores[:10])


def test_split_components_stay_on_their_panel():
    from peaknet_gui.peaks.components import split_at_cores

    labels = np.zeros((6, 8), dtype=np.int32)
    labels[1:5, 1:7] = 1
    cores = np.zeros((6, 8), dtype=bool)
    cores[2, 2] = cores[3, 5] = cores[2, 3] = True  # two separate cores (the first two pixels touch)
    out, n = split_at_cores(labels, 1, cores)
    assert n == 2 and set(np.unique(out)) == {0, 1, 2}
    assert out[2, 2] == out[2, 3] != out[3, 5]
    assert (out > 0).sum() == 24
