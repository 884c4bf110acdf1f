"""Powder-ring spots: peaks crowding on one scattering angle leave the peak list for the mask."""

from __future__ import annotations

import numpy as np
from _pipeline_frames import ListSource, ring_frame

from peaknet_gui.geometry import Geometry
from peaknet_gui.model.evaluate import FramePeaks, Scores
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.peaks.rings import (RingTest, equivalent_polar, equivalent_radius_px, mask_spots, powder_ring_peaks,
                                     ring_annuli, split_ring_peaks)
from peaknet_gui.pipeline.analyzer import FrameAnalyzer
from peaknet_gui.pipeline.run import run_analysis
from peaknet_gui.pipeline.settings import FinderSettings


def smooth_radii(rng, n, r0=50.0, r1=900.0):
    """Radii of peaks spread evenly over the area of an annulus (density grows with radius)."""
    return np.sqrt(rng.uniform(r0**2, r1**2, n))


def test_smoothly_spread_peaks_make_no_ring():
    rng = np.random.default_rng(11)
    false_rings = sum(powder_ring_peaks(smooth_radii(rng, n)).any() for n in [40, 300, 1500, 3000] * 50)
    assert false_rings == 0
    # a detector edge or a resolution cut-off (peaks only out to 600 px, many of them) is no ring
    r = np.concatenate([smooth_radii(rng, 2500, 50, 600), smooth_radii(rng, 50, 600, 900)])
    assert not powder_ring_peaks(r).any()


def test_the_spots_of_a_ring_are_found_among_bragg_peaks():
    rng = np.random.default_rng(12)
    bragg = smooth_radii(rng, 1500)
    ring = 500.0 + rng.normal(0.0, 0.6, 25)
    flags = powder_ring_peaks(np.concatenate([bragg, ring]))
    assert flags[-25:].all()
    # besides the ring's spots only peaks inside its annulus (a few pixels wide) go with it
    (lo, hi), = ring_annuli(np.concatenate([bragg, ring]))
    assert 490 < lo < 500 < hi < 510
    assert np.all(np.abs(bragg[flags[:-25]] - 500.0) <= 8.0)
    # two rings, few Bragg peaks
    two = np.concatenate([smooth_radii(rng, 60), 300 + rng.normal(0, 0.5, 8), 700 + rng.normal(0, 0.5, 12)])
    assert len(ring_annuli(two)) == 2 and powder_ring_peaks(two)[-20:].all()
    # too few spots to tell, or no radii at all: nothing
    assert not powder_ring_peaks(np.concatenate([bragg, 500.0 + rng.normal(0, 0.6, 5)])).any()
    assert powder_ring_peaks(None).shape == (0,)
    assert not powder_ring_peaks(np.array([np.nan] * 10)).any()


def calibrant_orders(rng, spacing=15.6, counts=(8, 4, 9, 11, 1), spread=0.3):
    """Radii and azimuths of a spotty calibrant: ring n at n * ``spacing`` px holds ``counts[n-1]``
    grains at random azimuths (the demo's silver-behenate frame, as v14 sees it)."""
    r = np.concatenate([n * spacing + rng.normal(0, spread, k) for n, k in enumerate(counts, start=1)])
    return r, rng.uniform(-np.pi, np.pi, len(r))


def test_close_calibrant_orders_hide_each_other_no_more():
    rng = np.random.default_rng(21)
    r, az = calibrant_orders(rng)
    r = np.concatenate([r, [22.5, 39.3]])  # two Bragg-like strays between the rings
    az = np.concatenate([az, [0.3, 2.0]])
    # the 2-px annulus alone (the test before): each ring's context holds its neighbours
    assert not powder_ring_peaks(r, RingTest(widths_px=(2.0,), max_rounds=1)).any()
    flags = powder_ring_peaks(r, azimuth=az)
    # rings n = 1, 3, 4 (8 + 9 + 11 spots) go; ring 2 (4 spots) and the strays stay
    assert flags[:8].all() and flags[12:32].all() and not flags[8:12].any() and not flags[32:].any()
    assert len(ring_annuli(r, azimuth=az)) == 3


def test_beside_a_ring_a_sparser_ring_is_a_ring_too():
    rng = np.random.default_rng(23)
    r, az = calibrant_orders(rng, counts=(8, 5, 9, 11, 5))  # v14s on the demo's calibrant frame
    assert powder_ring_peaks(r, azimuth=az).all()
    # five grains on one radius of a frame without another ring are too few to tell
    bragg = smooth_radii(rng, 60)
    lone = np.concatenate([bragg, 400.0 + rng.normal(0, 0.3, 5)])
    assert not powder_ring_peaks(lone, azimuth=rng.uniform(-np.pi, np.pi, len(lone))).any()


def zone_axis_still(rng, hmax=10, keep_sets=0.5, missing=0.2, a=79.1, wavelength=1.3, length_px=1000.0):
    """Radii and azimuths of a still at a tetragonal zone axis: the (h k 0) reflections come in
    sets of 4 or 8 symmetry equivalents at one radius, Friedel mates included; some missing."""
    r, az = [], []
    for h in range(hmax + 1):
        for k in range(h + 1):
            if (h, k) == (0, 0) or rng.random() > keep_sets:
                continue
            radius = length_px * np.tan(2 * np.arcsin(wavelength * np.hypot(h, k) / (2 * a)))
            for u, v in {(sh * h, sk * k) for sh in (1, -1) for sk in (1, -1)} | {(sk * k, sh * h) for sh in (1, -1) for sk in (1, -1)}:
                if rng.random() >= missing:
                    r.append(radius + rng.normal(0, 0.3))
                    az.append(np.arctan2(v, u) + rng.normal(0, 0.3 / radius))
    return np.array(r), np.array(az)


def test_a_zone_axis_still_is_no_powder_ring():
    rng = np.random.default_rng(22)
    stills = [zone_axis_still(rng) for _ in range(30)]
    # by radius alone many of these stills have a crowded annulus; its spots come in Friedel pairs
    assert sum(powder_ring_peaks(r).any() for r, _ in stills) >= 10
    assert not any(powder_ring_peaks(r, azimuth=az).any() for r, az in stills)
    # a ring of grains among such a still's peaks is still a ring
    r, az = stills[0]
    ring = 300.0 + rng.normal(0, 0.4, 10)
    flags = powder_ring_peaks(np.concatenate([r, ring]), azimuth=np.concatenate([az, rng.uniform(-np.pi, np.pi, 10)]))
    assert flags[-10:].all()


def test_equivalent_radius_is_the_scattering_angle_on_any_panel():
    flat = Geometry.single_panel((400, 500), 100e-6, 0.1, 240.0, 190.0)
    fs, ss = np.array([240.0, 340.0, 240.0]), np.array([190.0, 190.0, 90.0])
    np.testing.assert_allclose(equivalent_radius_px(fs, ss, flat), [0.0, 100.0, 100.0], atol=1e-6)
    r, az = equivalent_polar(fs, ss, flat)
    np.testing.assert_allclose(r, [0.0, 100.0, 100.0], atol=1e-6)
    assert abs(np.cos(az[1] - az[2])) < 1e-9  # one step along fs, one along ss: a quarter turn apart
    assert equivalent_polar(fs, ss, None) == (None, None)
    # two panels at 10 and 15 cm: points at the same scattering angle (tan 2theta = 0.1) on
    # either have the same equivalent radius (at the panels' median distance, 12.5 cm: 125 px)
    two = Geometry.single_panel((400, 500), 100e-6, 0.1, 240.0, 190.0)
    back = two.copy().panels[0]
    back.name, back.min_ss, back.max_ss, back.coffset = "p1", 400, 799, 0.05
    two.panels.append(back)
    r = equivalent_radius_px(np.array([340.0, 390.0]), np.array([190.0, 590.0]), two)
    np.testing.assert_allclose(r, [125.0, 125.0], rtol=1e-6)
    assert equivalent_radius_px(fs, ss, None) is None


def test_split_and_mask():
    rng = np.random.default_rng(13)
    geom = Geometry.single_panel((1000, 1000), 100e-6, 0.1, 500.0, 500.0)
    r = np.concatenate([smooth_radii(rng, 300, 30, 480), 300 + rng.normal(0, 0.4, 15)])
    phi = rng.uniform(0, 2 * np.pi, len(r))
    peaks = PeakList(fs=500 + r * np.cos(phi), ss=500 + r * np.sin(phi), npix=np.full(len(r), 9))
    kept, rings = split_ring_peaks(peaks, geom)
    assert len(kept) + len(rings) == len(peaks) and len(rings) >= 15
    assert np.all(np.abs(np.hypot(rings.fs - 500, rings.ss - 500) - 300) < 3)
    m = mask_spots(np.zeros((1000, 1000), bool), rings)
    assert m[np.rint(rings.ss).astype(int), np.rint(rings.fs).astype(int)].all()
    assert m.sum() <= len(rings) * np.pi * 3**2 * 1.5  # a disc of radius 2 + 1 px margin per spot
    assert split_ring_peaks(peaks, None)[1].fs.shape == (0,)


def test_analyzer_moves_ring_spots_into_the_auto_mask():
    rng = np.random.default_rng(14)
    frame, bragg, grains = ring_frame(rng)
    geom = Geometry.single_panel(frame.shape, 172e-6, 0.1, 300.0, 300.0, photon_energy_ev=12000.0)
    keep = FrameAnalyzer("peakfinder8", device="cpu", geometry=geom, finder=FinderSettings(drop_ring_spots=False))
    everything = keep.analyze([frame])[0]
    assert len(everything.peaks) == len(bragg) + len(grains) and len(everything.ring_spots) == 0
    an = FrameAnalyzer("peakfinder8", device="cpu", geometry=geom, finder=FinderSettings())
    res = an.analyze([frame])[0]
    assert len(res.ring_spots) == len(grains) and len(res.peaks) == len(bragg)
    d = np.hypot(res.ring_spots.fs[:, None] - grains[None, :, 1], res.ring_spots.ss[:, None] - grains[None, :, 0])
    assert d.min(axis=1).max() < 0.5
    iy, ix = np.rint(res.ring_spots.ss).astype(int), np.rint(res.ring_spots.fs).astype(int)
    assert res.artifact_mask[iy, ix].all() and not everything.artifact_mask.any()
    # without a geometry there is no beam centre: nothing is dropped
    assert len(FrameAnalyzer("peakfinder8", device="cpu").analyze([frame])[0].ring_spots) == 0
    # the run summary (peaknet find) reports them
    summary = run_analysis(ListSource([frame, frame]), an)
    assert summary.peaks == 2 * len(bragg) and summary.ring_spots == 2 * len(grains) and summary.frames_with_rings == 2
    assert f"{2 * len(grains)} powder-ring spots on 2 frames" in summary.format()


def test_evaluation_scores_the_peaks_the_program_keeps():
    rng = np.random.default_rng(15)
    r = np.concatenate([smooth_radii(rng, 100), 400 + rng.normal(0, 0.4, 12)])
    xy = np.stack([500 + r, np.full(len(r), 500.0)], 1)
    ref = xy[:100]  # the reference lists the Bragg peaks only
    peaks = FramePeaks("f", xy, np.ones(len(r)), ref, ring_radius=r)
    dropped, kept = Scores(), Scores()
    peaks.score(dropped)
    peaks.score(kept, drop_ring_spots=False)
    assert dropped.summary()["peak_fp"] == 0 and kept.summary()["peak_fp"] == 12
    assert dropped.summary()["peak_tp"] >= 95  # a Bragg peak that happens to sit in the annulus may go too
