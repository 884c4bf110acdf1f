"""Simulator labels (``observed`` mode): peaks from DIALS' test on the written frame, CSPAD spot sizes, shadow and
artifact ignore bands."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from peaknet_gui.sim.artifacts import Beamstop, RingArtifact
from peaknet_gui.sim.detectors import get_detector
from peaknet_gui.sim.frame import simulate_frame
from peaknet_gui.sim.labels import IGNORE, PEAK, LabelRule, paint_spot_labels, spot_stats
from peaknet_gui.sim.noise import draw_personality
from peaknet_gui.sim.observed import observed_classes, observed_strong, panel_slices, photon_image
from peaknet_gui.sim.params import SimRanges, draw_frame_params, draw_spot_shape
from peaknet_gui.sim.presets import thaumatin_like
from peaknet_gui.sim.realism import dispersion_spots, label_groups, match_fraction
from peaknet_gui.sim.run import RunSpec, plan_run
from peaknet_gui.sim.spots import SpotPatches


OBSERVED = LabelRule(mode="observed")  # the DIALS-based rule these tests are about (the default is "snr")


@pytest.fixture(scope="module")
def pad_crop():
    return get_detector("pilatus-6m").cropped(1050, 1000, 512, 512, name="pad-512")


@pytest.fixture(scope="module")
def thaumatin_frames(pad_crop):
    """Thaumatin-like hits, labelled both ways from the same parameters (same noise draw)."""
    out = []
    for seed in range(3):
        p = thaumatin_like(pad_crop, seed, strength_scale=0.8)
        out.append((simulate_frame(pad_crop, p, rule=OBSERVED), simulate_frame(pad_crop, p, rule=LabelRule(mode="expected"))))
    return out


def _finder(f, cspad=False):
    img = photon_image(f.data, f.detector, f.personality)
    return dispersion_spots(img, f.bad, negative_ok=True, min_spot_size=2 if cspad else 3,
                            global_threshold=4.0 if cspad else 0.0, panels=panel_slices(f.detector))


def test_observed_labels_follow_dials_finder_on_written_frame(thaumatin_frames):
    gained = []
    for obs, exp in thaumatin_frames:
        assert np.array_equal(obs.data, exp.data)  # labels never change the frame
        sp = _finder(obs)
        pk = obs.peaks
        assert len(pk) > 20
        # every label-1 spot is found by the finder, and finder spots are label-1 spots (or merged /
        # ignored ones)
        assert match_fraction(pk.fs, pk.ss, sp.fs, sp.ss) > 0.95
        assert match_fraction(sp.fs, sp.ss, np.r_[pk.fs, obs.marginal_fs], np.r_[pk.ss, obs.marginal_ss]) > 0.95
        # each label-1 blob holds a strong group of >= 3 pixels of the written frame
        rule = LabelRule().for_detector(obs.detector.kind)
        strong = observed_strong(obs.data, obs.bad, obs.detector, obs.personality, rule)
        comp, n = ndimage.label(strong, structure=np.ones((3, 3)))
        size = np.bincount(comp.ravel())
        good = size >= 3
        good[0] = False
        blobs, nb = ndimage.label(obs.labels == 1, structure=np.ones((3, 3)))
        has = np.zeros(nb + 1, bool)
        sel = good[comp] & (blobs > 0)
        has[blobs[sel]] = True
        assert has[1:].all()
        # spots visible in expectation that this draw does not pass are 255, marginal ones that fail 0
        ex = obs.extra["spots"]
        assert np.all(ex["cls"][(ex["cls_expected"] == 0) & (ex["snr"] < 6)] != IGNORE)
        # ... and an expected-invisible spot of SNR >= 6 that does not pass (broad) is 255, never 0
        assert np.all(ex["cls"][(ex["snr"] >= 6) & (ex["npix"] > 0)] != 0)
        assert np.all(ex["cls"][(ex["cls_expected"] == 1) & (ex["cls"] != 1)] == IGNORE)
        found_obs = match_fraction(pk.fs, pk.ss, sp.fs, sp.ss)
        gained.append(found_obs - match_fraction(exp.peaks.fs, exp.peaks.ss, sp.fs, sp.ss))
    # the expected-value rule lists spots this noise draw hides; the observed rule does not
    assert np.mean(gained) > 0.02


def test_observed_classes_hand_cases():
    # four spots on a 10x10 frame, each a 2x2 patch; noise variance 1
    fs_n = 10
    idx = np.array([[0, 1, 10, 11], [4, 5, 14, 15], [40, 41, 50, 51], [80, 81, 90, 91]])
    val = np.full((4, 4), 20.0, np.float32)
    patches = SpotPatches.from_arrays(idx, val)
    rule = LabelRule(sigma_background=0.0)
    stats = spot_stats(patches, np.ones(100, np.float32), np.ones(100, bool), fs_n, rule)
    assert stats.cls.tolist() == [1, 1, 1, 1] and stats.npix.tolist() == [4] * 4
    strong = np.zeros((10, 10), bool)
    strong.flat[[0, 1, 10]] = True  # spot 0: 3 strong pixels -> passes
    strong.flat[[4, 5]] = True  # spot 1: 2 -> passes only with min_spot_size 2 (CSPAD)
    strong.flat[[51, 62, 73]] = True  # spot 2: 1 pixel inside, 3 in the group (noise next to it)
    cls, merged = observed_classes(patches, stats, strong, rule)
    assert cls.tolist() == [1, 255, 1, 255] and not merged.any()
    # strict labels: what DIALS' test misses on the written frame is background, however visible
    assert observed_classes(patches, stats, strong, rule.strict())[0].tolist() == [1, 0, 1, 0]
    cls2, _ = observed_classes(patches, stats, strong, dataclasses.replace(rule, min_spot_size=2))
    assert cls2.tolist() == [1, 1, 1, 255]
    # a group shared by two spots: the fainter one is merged into the brighter
    val2 = val.copy()
    val2[1] = 10
    both = SpotPatches.from_arrays(np.array([[0, 1, 10, 11], [1, 2, 11, 12]]), val2[:2])
    st = spot_stats(both, np.ones(100, np.float32), np.ones(100, bool), fs_n, rule)
    s2 = np.zeros((10, 10), bool)
    s2.flat[[0, 1, 2, 11]] = True
    cls, merged = observed_classes(both, st, s2, rule)
    assert cls.tolist() == [1, 255] and merged.tolist() == [False, True]  # DIALS reports the group once
    # an expected-invisible spot stays 0 when not passing, unless its expected SNR is >= 6
    st.cls[:] = 0
    none = np.zeros((10, 10), bool)
    assert observed_classes(both, st, none, dataclasses.replace(rule, unobserved_strong_snr=0))[0].tolist() == [0, 0]
    st.snr[:] = [8.0, 3.0]
    assert observed_classes(both, st, none, rule)[0].tolist() == [255, 0]
    assert observed_classes(both, st, none, rule.strict())[0].tolist() == [0, 0]


def test_photon_image_removes_offset_gain_and_stabilises_read_noise():
    cs = get_detector("cspad-quad")
    p = draw_frame_params("blank", cs, 4)
    p = dataclasses.replace(p, rings=[], streaks=[], kapton=[], beamstop=None)
    p.background = dataclasses.replace(p.background, scale=0.0)
    p.background.flat, p.background.scale = 1.0, 1.0
    f = simulate_frame(cs, p, keep_expected=True)
    img = photon_image(f.data, cs, f.personality)
    g = f.personality.adu_per_photon
    for i, pn in enumerate(cs.geometry.panels[:8]):
        v = img[pn.slices()][~f.bad[pn.slices()]]
        v = v[np.abs(v - np.median(v)) < 10]
        rn2 = (f.personality.read_noise_adu * f.personality.panel_noise[i] / g) ** 2
        e = float(np.median(f.expected[pn.slices()]))
        # mean = expected photons + read-noise variance (+ the frame's common-mode offset), and the
        # variance matches the mean, as the dispersion test assumes
        assert v.mean() == pytest.approx(e + rn2, abs=0.1 + 3 * f.personality.common_mode_adu / g)
        assert v.var() == pytest.approx(e + rn2, rel=0.15)


def test_cspad_spot_shapes_mostly_sharp():
    cs, ccd = get_detector("cspad"), get_detector("rayonix-mx340")
    rng = np.random.default_rng(0)
    r = SimRanges()
    sig = np.array([draw_spot_shape(rng, r, cs).sigma_px for _ in range(400)])
    assert 0.7 < np.mean(sig < r.xfel_sigma_px[1]) < 0.9 and sig.min() >= r.xfel_sigma_px[0] and sig.max() <= 1.2
    assert np.mean([draw_spot_shape(rng, r, ccd).sigma_px < 0.55 for _ in range(400)]) < 0.1
    assert draw_frame_params("hit", cs, 1).divergence_mrad[0] <= r.xfel_divergence_mrad[1]


def test_cspad_spots_small_and_two_pixel_spots_labelled():
    det, pers, params = plan_run(RunSpec(n_frames=4, seed=5, detector="cspad-quad", mix={"hit": 1.0}))
    npix, nsig, two = [], [], 0
    rule = LabelRule().for_detector(det.kind)
    assert rule.min_spot_size == 2
    for p in params:
        f = simulate_frame(det, p, pers, rule=OBSERVED)
        npix.append(f.peaks.npix)
        comp, _ = label_groups(observed_strong(f.data, f.bad, det, pers, rule), panel_slices(det))
        size = np.bincount(comp.ravel())
        size[0] = 0
        two += np.sum(size[comp[np.rint(f.peaks.ss).astype(int), np.rint(f.peaks.fs).astype(int)]] == 2)
        sp = _finder(f, cspad=True)
        nsig.append(sp.n_signal)
        if len(f.peaks) >= 10:
            assert match_fraction(f.peaks.fs, f.peaks.ss, sp.fs, sp.ss) > 0.9
    npix, nsig = np.concatenate(npix), np.concatenate(nsig)
    assert len(npix) > 100
    # real thermolysin CSPAD DIALS spots: n_signal 2-7 px, median 2-3
    assert np.median(npix) <= 7 and np.median(nsig) <= 6
    assert np.mean(nsig <= 3) > 0.2
    # some label-1 spots are found through a 2-pixel group (DIALS min_spot_size 2 on the CSPAD)
    assert np.any(nsig == 2) and two >= 5


def test_beamstop_shadow_rule():
    det = get_detector("rayonix-mx340-bin2").cropped_around_beam(160, 160)
    pers = draw_personality(det, np.random.default_rng(3))
    bs = Beamstop(radius_px=15.0, arm_width_px=8.0, arm_angle_deg=30.0, transmission=0.01, edge_px=2.0)
    base = dataclasses.replace(draw_frame_params("blank", det, 2), rings=[], streaks=[], kapton=[], crystals=[])
    for scale in (1e-3, 0.05, 1.0, 30.0):
        p = dataclasses.replace(base, background=dataclasses.replace(base.background, scale=scale))
        free = simulate_frame(det, dataclasses.replace(p, beamstop=None), pers, keep_expected=True)
        f = simulate_frame(det, dataclasses.replace(p, beamstop=bs), pers, keep_expected=True)
        blocked = free.expected - f.expected
        sd = np.sqrt(free.expected + pers.read_noise_photons2)
        lab2 = blocked >= np.maximum(sd, 0.5)
        band = ~lab2 & (blocked >= np.maximum(0.3 * sd, 0.15))
        ok = ~f.bad
        assert np.mean((f.labels == 2)[ok] == lab2[ok]) > 0.999
        assert np.mean((f.labels == 255)[ok] == band[ok]) > 0.999
        if scale <= 1e-3:
            assert not np.any(f.labels == 2)  # nothing behind the shadow: invisible, not an artifact
        if scale >= 30:
            assert (f.labels == 2).sum() > np.pi * 14**2


def test_artifact_ring_ignore_band():
    det = get_detector("rayonix-mx340-bin2").cropped_around_beam(256, 256)
    pers = draw_personality(det, np.random.default_rng(1))
    p = dataclasses.replace(draw_frame_params("blank", det, 5), rings=[], streaks=[], kapton=[], crystals=[],
                            beamstop=None)
    ring = RingArtifact(material="aluminium", d_spacings=[4.0, 6.0], intensities=[100, 30], peak_photons=6.0,
                        fwhm_px=3.0, granularity=0.0, speckles=0, seed=1)
    free = simulate_frame(det, p, pers, keep_expected=True)
    f = simulate_frame(det, dataclasses.replace(p, rings=[ring]), pers, keep_expected=True)
    a = f.expected - free.expected
    sd = np.sqrt(free.expected + pers.read_noise_photons2)
    lab2 = a >= np.maximum(sd, 0.5)
    band = ~lab2 & (a >= np.maximum(0.3 * sd, 0.15))
    assert lab2.sum() > 100 and band.sum() > 100
    assert np.mean((f.labels == 2) == lab2) > 0.999
    assert np.mean((f.labels == 255) == band) > 0.999
    # no bands when asked for none
    g = simulate_frame(det, dataclasses.replace(p, rings=[ring]), pers, rule=LabelRule(artifact_band_k=0.0))
    assert not np.any(g.labels[~g.bad] == 255) and np.array_equal(g.labels == 2, f.labels == 2)


def test_peak_ignore_band_hand_case():
    # noise variance 4 (sigma 2): extent >= max(4, 0.15 max, 1); band >= max(2, 0.5) outside the extent
    val = np.array([[30, 30, 30, 3, 1]], np.float32)
    patches = SpotPatches.from_arrays(np.arange(5)[None], val)
    stats = spot_stats(patches, np.full(5, 4.0, np.float32), np.ones(5, bool), 5, LabelRule(sigma_background=0.0))
    assert stats.cls.tolist() == [PEAK]
    labels = np.zeros(5, np.uint8)
    paint_spot_labels(labels, patches, stats)
    assert labels.tolist() == [1, 1, 1, 255, 0]
    stats = spot_stats(patches, np.full(5, 4.0, np.float32), np.ones(5, bool), 5,
                       LabelRule(sigma_background=0.0, peak_band_k=0.0))
    labels[:] = 0
    paint_spot_labels(labels, patches, stats)
    assert labels.tolist() == [1, 1, 1, 0, 0]
