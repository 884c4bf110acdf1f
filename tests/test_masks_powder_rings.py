"""Whole powder rings: a ring the network saw in part is masked along all of its visible arc."""

from __future__ import annotations

import numpy as np
import pytest
from _pipeline_frames import ThresholdModel

from peaknet_gui.frame import EventId, Frame
from peaknet_gui.geometry import Geometry
from peaknet_gui.masks.powder_rings import (RingProfileTest, annuli_from_mask, follow_rings, merge_annuli,
                                            ring_maps, ring_profile, ring_profile_mask)
from peaknet_gui.model.evaluate import program_classes
from peaknet_gui.peaks.components import peaks_from_mask
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.peaks.rings import equivalent_length_px, equivalent_radius_px
from peaknet_gui.pipeline.analyzer import FrameAnalyzer
from peaknet_gui.pipeline.result import FrameResult
from peaknet_gui.pipeline.settings import FinderSettings, MaskSettings

SHAPE = (700, 700)
CENTRE = (350.0, 340.0)  # fs, ss of the beam
BG = 10.0  # photons per pixel


def geometry():
    return Geometry.single_panel(SHAPE, 100e-6, 0.1, CENTRE[0], CENTRE[1], photon_energy_ev=12000.0)


def polar():
    ss, fs = np.indices(SHAPE, dtype=np.float64)
    return np.hypot(fs - CENTRE[0], ss - CENTRE[1]), np.degrees(np.arctan2(ss - CENTRE[1], fs - CENTRE[0]))


def ring_scatter(radius=250.0, sigma=1.2, amp_sigma=1.6, arc=(20.0, 140.0)):
    """Expected photons of a smooth ring arc ``amp_sigma`` noise sigma high at its crest."""
    r, phi = polar()
    inside = (phi >= arc[0]) & (phi <= arc[1])
    return amp_sigma * np.sqrt(BG) * np.exp(-0.5 * ((r - radius) / sigma) ** 2) * inside


def test_a_faint_arc_is_followed_from_the_piece_the_network_saw():
    rng = np.random.default_rng(21)
    ring = ring_scatter()
    data = rng.poisson(BG + ring).astype(np.float32)
    truth = ring >= np.sqrt(BG)  # the labels' rule: scatter of at least one noise sigma
    r, phi = polar()
    seen = truth & (phi > 60) & (phi < 80)  # the network caught 20 degrees of the 120-degree arc
    maps = ring_maps(geometry(), SHAPE)
    annuli = annuli_from_mask(seen, maps)
    assert len(annuli) == 1 and annuli[0, 0] < 250 < annuli[0, 1] and annuli[0, 1] - annuli[0, 0] < 8
    mask = ring_profile_mask(data, None, maps, annuli, exclude=seen)
    recall = (mask & truth).sum() / truth.sum()
    assert recall > 0.8
    # nothing away from the ring, nothing outside the arc beyond one sector of slack (a sector the
    # arc's end half fills is decided as a whole)
    assert not (mask & (np.abs(r - 250) > 5)).any()
    sector_deg = np.degrees(RingProfileTest().arc_px / 250.0)
    assert not (mask & ((phi < 20 - sector_deg) | (phi > 140 + sector_deg))).any()
    # the same through the program's auto-mask of a class map with those pixels
    pred = np.where(seen, 2, 0).astype(np.uint8)
    classes = program_classes(pred, data, None, geometry(), None)
    assert ((classes == 2) & truth).sum() / truth.sum() > 0.8
    np.testing.assert_array_equal(program_classes(pred, data, None, geometry(), None, whole_rings=False), pred)


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_no_ring_no_mask(seed):
    """Noise alone, Bragg spots beside the annulus and a sloping background mask nothing."""
    rng = np.random.default_rng(seed)
    r, _ = polar()
    expected = BG * (1.5 - r / 700.0)  # falls with radius, as water scatter does
    data = rng.poisson(expected).astype(np.float32)
    spots = np.zeros(SHAPE, bool)
    for _ in range(40):  # bright spots near the annulus, excluded as the peak pixels they are
        y, x = rng.integers(60, 640, 2)
        data[y - 2:y + 3, x - 2:x + 3] += 300
        spots[y - 3:y + 4, x - 3:x + 4] = True
    maps = ring_maps(geometry(), SHAPE)
    mask = ring_profile_mask(data, None, maps, np.array([[230.0, 236.0], [300.0, 302.0]]), exclude=spots)
    annulus = (np.abs(r - 233) < 8) | (np.abs(r - 301) < 8)
    assert mask.sum() <= 0.002 * annulus.sum()


def test_only_ring_shaped_masks_give_annuli():
    maps = ring_maps(geometry(), SHAPE)
    r, phi = polar()
    assert len(annuli_from_mask(np.zeros(SHAPE, bool), maps)) == 0
    beamstop = r < 30
    streak = (np.abs(phi - 45) < 1.0) & (r > 40)  # a jet streak: radial
    kapton = (r > 200) & (r < 320) & (phi > 0) & (phi < 90)  # broad arc
    assert len(annuli_from_mask(beamstop | streak | kapton, maps)) == 0
    arc = (np.abs(r - 180) < 1.5) & (phi > -40) & (phi < 10)
    (lo, hi), = annuli_from_mask(beamstop | streak | arc, maps)
    assert lo < 180 < hi and hi - lo < 6
    np.testing.assert_array_equal(merge_annuli(np.array([[10.0, 14.0]]), None, np.array([[13.0, 20.0], [30, 31]])),
                                  [[10.0, 20.0], [30.0, 31.0]])
    assert merge_annuli(None, np.zeros((0, 2))).shape == (0, 2)


def test_ring_maps_follow_the_geometry():
    geom = geometry()
    maps = ring_maps(geom, SHAPE)
    r, phi = polar()
    np.testing.assert_allclose(maps.radius, r, atol=1e-3)
    assert ring_maps(geom, SHAPE) is maps  # cached
    moved = geom.copy()
    moved.panels[0].corner_x -= 10.0  # the beam centre moves by 10 px: new maps
    assert ring_maps(moved, SHAPE) is not maps
    idx = maps.annulus(99.5, 100.5)
    assert np.all(np.abs(maps.radius.reshape(-1)[idx] - 100) <= 0.5) and len(idx) > 500
    # without a camera length the radius is the in-plane distance from the beam, as for ring spots
    no_clen = geom.copy()
    no_clen.clen = None
    for p in no_clen.panels:
        p.clen = None
    assert np.isnan(equivalent_length_px(no_clen))
    np.testing.assert_allclose(ring_maps(no_clen, SHAPE).radius, r, atol=1e-3)
    np.testing.assert_allclose(ring_maps(no_clen, SHAPE).azimuth, np.radians(phi), atol=1e-5)


def test_analyzer_masks_the_whole_ring_of_its_ring_spots():
    """Grains on a faint ring (the peakfinder8 path: no network) give the ring's radius; the
    auto-mask then holds the ring's arc, unless whole rings are switched off."""
    rng = np.random.default_rng(41)
    ring = ring_scatter(radius=220.0, arc=(-170.0, 170.0))
    data = rng.poisson(BG + ring).astype(np.float64)
    phi = np.radians(np.linspace(-160, 160, 20))
    for p in phi:  # grains on the ring
        x, y = CENTRE[0] + 220 * np.cos(p), CENTRE[1] + 220 * np.sin(p)
        yy, xx = np.mgrid[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5]
        data[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5] += rng.poisson(400 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2.0))
    frame = Frame(data=data.astype(np.float32), event=EventId("ring.h5", 0), serial=0)
    truth = ring >= np.sqrt(BG)
    results = {}
    for whole in (True, False):
        an = FrameAnalyzer("peakfinder8", device="cpu", geometry=geometry(), finder=FinderSettings(),
                           mask=MaskSettings(whole_rings=whole))
        results[whole] = an.analyze([frame])[0]
    assert len(results[True].ring_spots) >= 15
    with_ring, spots_only = results[True].artifact_mask, results[False].artifact_mask
    assert (spots_only & truth).sum() < 0.3 * truth.sum()
    assert (with_ring & truth).sum() > 0.8 * truth.sum()
    r, _ = polar()
    assert not (with_ring & ~spots_only & (np.abs(r - 220) > 5)).any()


def test_nothing_to_follow_leaves_the_mask_alone():
    data = np.random.default_rng(5).poisson(BG, SHAPE).astype(np.float32)
    some = np.zeros(SHAPE, bool)
    some[10:20, 10:20] = True
    assert follow_rings(some, data, None, geometry(), None, PeakList()) is some
    np.testing.assert_array_equal(follow_rings(some, data, None, geometry(), some, PeakList()), some)
    # a shadow that fills an annulus has no ring scatter to trim it by: the network's pixels stay
    r, phi = polar()
    shadow = (np.abs(r - 200) <= 2) & (phi > 0) & (phi < 90)
    dim = np.where(shadow, data * 0.5, data)
    np.testing.assert_array_equal(follow_rings(shadow, dim, None, geometry(), shadow, PeakList()), shadow)
    assert RingProfileTest().k_pixel < 1.0 < RingProfileTest().arc_px


def test_no_ring_at_the_beam():
    """Artifact pixels round the direct beam make no ring to follow: the beamstop's edge and the
    beam's halo are not powder rings."""
    rng = np.random.default_rng(6)
    r, _ = polar()
    data = rng.poisson(BG + 200.0 * np.exp(-r / 8.0)).astype(np.float32)
    halo = (r > 5) & (r < 12)
    maps = ring_maps(geometry(), SHAPE)
    assert len(annuli_from_mask(halo, maps))  # it is ring-shaped ...
    assert np.array_equal(follow_rings(halo, data, None, geometry(), halo, PeakList()), halo)  # ... but no ring


def test_ring_maps_agree_with_the_ring_spot_radius_on_panels_at_two_distances():
    two = Geometry.single_panel((400, 500), 100e-6, 0.1, 240.0, 190.0)
    back = two.copy().panels[0]
    back.name, back.min_ss, back.max_ss, back.coffset = "p1", 400, 799, 0.05
    two.panels.append(back)
    maps = ring_maps(two, (800, 500))
    rng = np.random.default_rng(3)
    fs, ss = rng.integers(0, 500, 300), rng.integers(0, 800, 300)
    np.testing.assert_allclose(maps.radius[ss, fs], equivalent_radius_px(fs.astype(float), ss.astype(float), two), rtol=1e-5)
    # the same scattering angle on either panel: the same equivalent radius (125 px at 12.5 cm)
    np.testing.assert_allclose([maps.radius[190, 340], maps.radius[590, 390]], [125.0, 125.0], rtol=1e-5)


def test_evaluation_scores_the_mask_the_analyzer_makes():
    """peaknet evaluate's auto-mask (program_classes) is the analyzer's: same class
    probabilities in, same masked pixels out (ring-spot discs and whole rings included)."""
    rng = np.random.default_rng(51)
    r, phi = polar()
    ring = ring_scatter(radius=230.0, arc=(-120.0, 100.0))
    data = rng.poisson(BG + ring).astype(np.float64)
    peak = np.zeros(SHAPE, bool)
    for p in np.radians(np.linspace(-110, 90, 16)):  # grains on the ring ...
        x, y = CENTRE[0] + 230 * np.cos(p), CENTRE[1] + 230 * np.sin(p)
        data[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] += 200
        peak[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = True
    for y, x in rng.integers(40, 660, (30, 2)):  # ... and Bragg peaks off it
        if abs(np.hypot(x - CENTRE[0], y - CENTRE[1]) - 230) > 10:
            data[y - 1:y + 2, x - 1:x + 2] += 200
            peak[y - 1:y + 2, x - 1:x + 2] = True
    frame = Frame(data=data.astype(np.float32), event=EventId("ring.h5", 0), serial=0)
    art = (ring >= np.sqrt(BG)) & (phi > 0) & (phi < 30)  # the network saw 30 degrees of the arc
    peak_prob = np.where(peak, 0.9, 0.05).astype(np.float16)
    artifact_prob = np.where(art, 0.9, 0.05).astype(np.float16)
    cached = FrameResult(serial=0, event=frame.event, peaks=PeakList(), hit=False, peak_prob=peak_prob,
                         artifact_prob=artifact_prob)
    an = FrameAnalyzer("peaknet", device="cpu", backend="torch", model=ThresholdModel(), geometry=geometry())
    res = an.rethreshold(cached, frame, FinderSettings(min_confidence=0.0), MaskSettings())
    pred = np.where(peak, 1, np.where(art, 2, 0)).astype(np.uint8)
    found = peaks_from_mask(frame.data, pred == 1, score=peak_prob.astype(np.float32))
    classes = program_classes(pred, frame.data, None, geometry(), found)
    assert len(res.ring_spots) == 16 and (res.artifact_mask & ~art).sum() > 2 * art.sum()
    np.testing.assert_array_equal(res.artifact_mask, classes == 2)


def test_a_ring_drawn_too_wide_is_trimmed_to_its_scatter_but_spots_and_peaks_are_kept():
    rng = np.random.default_rng(61)
    ring = ring_scatter(radius=260.0, amp_sigma=6.0, arc=(-180.0, 180.0))
    data = rng.poisson(BG + ring).astype(np.float32)
    truth = ring >= np.sqrt(BG)
    r, _ = polar()
    wide = np.abs(r - 260) <= 5  # the network's ring: twice as wide as its scatter
    disc = np.zeros(SHAPE, bool)
    disc[int(CENTRE[1]) - 2:int(CENTRE[1]) + 3, int(CENTRE[0]) + 255:int(CENTRE[0]) + 266] = True  # a ring spot's disc
    peak = np.zeros(SHAPE, bool)
    peak[int(CENTRE[1]) + 258:int(CENTRE[1]) + 262, int(CENTRE[0]) - 2:int(CENTRE[0]) + 2] = True  # a Bragg peak on it
    wide &= ~peak  # the network's classes do not overlap
    out = follow_rings(wide | disc, data, None, geometry(), wide, PeakList(), peak_pixels=peak, fixed=disc)
    assert (out & truth & ~peak).sum() > 0.95 * (truth & ~peak).sum()
    assert (out & wide & ~truth & ~disc).sum() < 0.1 * (wide & ~truth & ~disc).sum()  # trimmed
    assert out[disc].all() and not out[peak].any()
    ring_px, decided = ring_profile(data, None, ring_maps(geometry(), SHAPE), np.array([[258.0, 262.0]]))
    assert decided.sum() > ring_px.sum() > 0 and not (ring_px & ~decided).any()


def test_half_pixel_radial_bins_follow_a_thin_ring_wherever_its_crest_falls():
    """A ring of 1 px sigma drawn with its crest at four sub-pixel radii: the default half-pixel
    bins match the labels' width better on average than whole-pixel bins."""
    r, _ = polar()
    maps = ring_maps(geometry(), SHAPE)
    iou = {1.0: [], RingProfileTest().bin_px: []}
    for k, radius in enumerate((250.0, 250.25, 250.5, 250.75)):
        ring = ring_scatter(radius=radius, sigma=1.0, amp_sigma=4.0, arc=(-180.0, 180.0))
        data = np.random.default_rng(40 + k).poisson(BG + ring).astype(np.float32)
        truth = ring >= np.sqrt(BG)
        annuli = annuli_from_mask(truth, maps)
        for width in iou:
            mask = ring_profile_mask(data, None, maps, annuli, test=RingProfileTest(bin_px=width))
            iou[width].append((mask & truth).sum() / (mask | truth).sum())
    assert RingProfileTest().bin_px == 0.5
    assert np.mean(iou[0.5]) > np.mean(iou[1.0]) + 0.03 and min(iou[0.5]) > 0.8
