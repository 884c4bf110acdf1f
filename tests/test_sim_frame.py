"""Simulated frames: labels versus the true peaks, determinism, blanks, artifacts, detector models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from peaknet_gui.sim.artifacts import Beamstop, RingArtifact
from peaknet_gui.sim.detectors import get_detector
from peaknet_gui.sim.frame import simulate_frame
from peaknet_gui.sim.labels import LabelRule, spot_stats
from peaknet_gui.sim.lattice import UnitCell
from peaknet_gui.sim.orientation import random_rotation
from peaknet_gui.sim.params import draw_frame_params
from peaknet_gui.sim.reflections import CrystalParams
from peaknet_gui.sim.spots import SpotPatches


@pytest.fixture(scope="module")
def small_ccd():
    return get_detector("rayonix-mx340-bin2").cropped_around_beam(320, 320, name="ccd-small")


@pytest.fixture(scope="module")
def small_pad():
    # a corner of the Pilatus 6M with gaps, beam inside
    return get_detector("pilatus-6m").cropped(1000, 1000, 400, 520, name="pad-small")


def _clean(params):
    """No artifacts, no beamstop."""
    return dataclasses.replace(params, rings=[], streaks=[], kapton=[], calibrant=None, beamstop=None)


def _strong_hit(det, seed=0, strength=3000.0, cell=UnitCell(60.0, 70.0, 80.0)):
    p = _clean(draw_frame_params("hit", det, seed))
    rng = np.random.default_rng(seed)
    c = CrystalParams(cell=cell, rotation=random_rotation(rng).tolist(), mosaicity_deg=0.1, domain_size_um=0.5,
                      b_factor=10.0, d_limit_a=2.0, strength=strength)
    p.crystals = [c]
    p.background = dataclasses.replace(p.background, scale=1.0, water=2.0, air=1.0, saxs=0.0, flat=0.1)
    p.spot = dataclasses.replace(p.spot, sigma_px=1.0, elongation=1.0)
    return p


def test_same_seed_same_frame(small_ccd):
    a = simulate_frame(small_ccd, draw_frame_params("hit", small_ccd, 11))
    b = simulate_frame(small_ccd, draw_frame_params("hit", small_ccd, 11))
    c = simulate_frame(small_ccd, draw_frame_params("hit", small_ccd, 12))
    assert np.array_equal(a.data, b.data) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.peaks.fs, b.peaks.fs) and a.params.to_json() == b.params.to_json()
    assert not np.array_equal(a.data, c.data)


def test_labels_agree_with_true_peaks(small_ccd):
    f = simulate_frame(small_ccd, _strong_hit(small_ccd, seed=3))
    pk = f.peaks
    assert len(pk) >= 20
    assert set(np.unique(f.labels)) <= {0, 1, 255}  # nothing asked for label 2
    # every true peak sits on label-1 pixels
    on = f.labels[np.rint(pk.ss).astype(int), np.rint(pk.fs).astype(int)] == 1
    assert on.mean() >= 0.97
    # every label-1 blob holds at least one true peak
    comp, n = ndimage.label(f.labels == 1, structure=np.ones((3, 3)))
    has = np.zeros(n + 1, bool)
    has[comp[np.rint(pk.ss).astype(int), np.rint(pk.fs).astype(int)]] = True
    assert has[1:].all()
    # label-1 pixel counts match the peak list, and the true positions are within the spots
    assert (f.labels == 1).sum() == pytest.approx(pk.npix.sum(), rel=0.05)
    assert np.all(np.hypot(pk.fs - pk.fs_true, pk.ss - pk.ss_true) < 3.0)
    assert np.all(pk.snr > 0) and np.all(pk.photons > 0)
    # the measured spot signal (data - background) matches the true intensities
    blank = simulate_frame(small_ccd, dataclasses.replace(f.params, crystals=[]), f.personality)
    diff = f.data.astype(float) - blank.data.astype(float)
    measured = ndimage.sum(diff, comp, index=np.arange(1, n + 1)).sum()
    truth = pk.intensity.sum()
    assert measured == pytest.approx(truth, rel=0.15)


def test_label_rule_hand_cases():
    # spots on 5-pixel patches, noise variance 4 photons^2 -> sigma 2: strong >= 6, weak >= 4, sharp >= 12 photons
    val = np.array([
        [7, 7, 7, 1, 0],  # three strong pixels -> visible
        [7, 7, 1, 1, 0],  # two strong pixels, not sharp -> marginal (255)
        [1, 1, 0.5, 0, 0],  # nothing stands out -> invisible (0)
        [13, 7, 1, 0, 0],  # two strong pixels, one sharp -> visible (DIALS min_spot_size 2)
        [5, 5, 5, 1, 0],  # no strong but three weak pixels -> marginal
        [5, 5, 1, 1, 1],  # two weak pixels only -> invisible
    ], dtype=np.float32)
    n = len(val)
    idx = np.arange(5 * n).reshape(n, 5)
    var = np.full(5 * n, 4.0, np.float32)
    no_disp = LabelRule(sigma_background=0.0)
    stats = spot_stats(SpotPatches.from_arrays(idx, val), var, np.ones(5 * n, bool), 5, no_disp)
    assert stats.cls.tolist() == [1, 255, 0, 1, 255, 0]
    assert stats.n_strong.tolist() == [3, 2, 0, 2, 0, 0]
    # extent: >= max(2 sqrt(4) = 4, 0.15 max, 1 photon)
    assert stats.npix.tolist() == [3, 2, 0, 2, 3, 2]
    assert stats.snr[0] == pytest.approx(21 / np.sqrt(21 + 12))
    assert stats.fs[0] == pytest.approx(1.0) and stats.ss[0] == pytest.approx(0.0)  # centroid of pixels 0, 1, 2
    # unusable pixels never count
    usable = np.ones(5 * n, bool)
    usable[0] = False
    assert spot_stats(SpotPatches.from_arrays(idx, val), var, usable, 5, no_disp).cls[0] == 255
    # DIALS' dispersion test: 21 photons over a 7x7 box of mean 4 -> index (4 + 21/49 + var) / (4 + 21/49) ~ 1.2,
    # below 1 + 7 sqrt(2/48) ~ 2.43: not visible; with brighter pixels (3 x 30 photons) it passes
    assert spot_stats(SpotPatches.from_arrays(idx, val), var, np.ones(5 * n, bool), 5).cls[0] == 255
    bright = val.copy()
    bright[0, :3] = 30
    assert spot_stats(SpotPatches.from_arrays(idx, bright), var, np.ones(5 * n, bool), 5).cls[0] == 1
    # a looser rule makes the second spot visible
    loose = LabelRule(min_strong_pixels=2, sigma_background=0.0)
    assert spot_stats(SpotPatches.from_arrays(idx, val), var, np.ones(5 * n, bool), 5, loose).cls[1] == 1


def test_blank_has_no_peak_labels(small_ccd, small_pad):
    for det in (small_ccd, small_pad):
        for seed in range(3):
            f = simulate_frame(det, draw_frame_params("blank", det, seed))
            assert len(f.peaks) == 0 and len(f.marginal_fs) == 0
            assert not np.any(f.labels == 1)


def test_artifacts_only_where_asked(small_ccd):
    p = _strong_hit(small_ccd, seed=5)
    f = simulate_frame(small_ccd, p)
    assert not np.any(f.labels == 2)
    wl = 12398.419843320026 / p.photon_energy_ev
    ring = RingArtifact(material="aluminium", d_spacings=[4.0], intensities=[100], peak_photons=40.0, fwhm_px=2.0,
                        granularity=0.0, speckles=0, seed=1)
    g = simulate_frame(small_ccd, dataclasses.replace(p, rings=[ring]))
    lab2 = g.labels == 2
    assert lab2.sum() > 200
    # the ring's pixels are at its 2-theta
    ss, fs = np.nonzero(lab2)
    tth = np.arctan2(np.hypot(*small_ccd.geometry.lab_xyz(fs, ss)[:2]), small_ccd.geometry.lab_xyz(fs, ss)[2])
    assert np.abs(tth - 2 * np.arcsin(wl / 8.0)).max() < np.deg2rad(0.5)
    # same spots either way away from the ring (the ring is added, the crystal untouched; spots
    # on it merge into the ring's strong pixels, as with DIALS, and become "don't care")
    def off_ring(pk):
        x, y, z = small_ccd.geometry.lab_xyz(pk.fs, pk.ss)
        return np.abs(np.arctan2(np.hypot(x, y), z) - 2 * np.arcsin(wl / 8.0)) > np.deg2rad(1.0)

    assert off_ring(g.peaks).sum() >= 0.95 * off_ring(f.peaks).sum() > 20
    # a beamstop shadow is an artifact only when asked
    bs = Beamstop(radius_px=10.0, arm_width_px=6.0, arm_angle_deg=30.0, transmission=0.01)
    h = simulate_frame(small_ccd, dataclasses.replace(p, beamstop=bs))
    assert (h.labels == 2).sum() > 100  # where the shadow is visible (test_beamstop_shadow_rule)
    k = simulate_frame(small_ccd, dataclasses.replace(p, beamstop=bs, beamstop_is_artifact=False))
    assert not np.any(k.labels == 2)
    cy, cx = (int(round(v)) for v in small_ccd.geometry.beam_center(0)[::-1])
    assert h.data[cy, cx] < np.median(h.data)  # shadowed


def test_counting_detector_gaps_and_saturation(small_pad):
    p = _strong_hit(small_pad, seed=2, strength=5e7)
    f = simulate_frame(small_pad, p)
    assert f.data.dtype == np.int32
    gaps = small_pad.gap_mask
    assert gaps.any() and np.all(f.data[gaps] == -1) and np.all(f.bad[gaps])
    assert np.all(f.labels[gaps] == 255)
    assert f.data.max() == small_pad.saturation_adu  # the brightest spots saturate
    assert len(f.peaks) > 0


def test_ccd_and_cspad_readout():
    ccd = get_detector("rayonix-mx340-bin2").cropped_around_beam(128, 128)
    p = _clean(draw_frame_params("blank", ccd, 1))
    f = simulate_frame(ccd, p)
    assert f.data.dtype == np.uint16
    assert np.median(f.data) > f.personality.offset_adu - 1  # baseline offset
    cs = get_detector("cspad-quad")
    p = _clean(draw_frame_params("blank", cs, 4))
    p.background = dataclasses.replace(p.background, scale=0.0)  # dark frame: pedestals + noise only
    f = simulate_frame(cs, p)
    assert f.data.dtype == np.int16 and len(cs.geometry.panels) == 16
    med = np.array([np.median(f.data[pn.slices()]) for pn in cs.geometry.panels])
    assert med.std() > 1.0  # per-ASIC pedestal residuals / common mode
    def robust_sigma(v):
        v = v.astype(float).ravel()
        v = v[np.abs(v - np.median(v)) < 40]  # without hot pixels
        return v.std()

    noise = np.array([robust_sigma(f.data[pn.slices()]) for pn in cs.geometry.panels])
    assert np.median(noise) == pytest.approx(np.hypot(f.personality.read_noise_adu, 12**-0.5), rel=0.1)


def test_faint_true_reflections_are_listed_and_read_back(small_ccd, tmp_path):
    """Reflections below the label threshold but of expected SNR >= 2 are listed (evaluation: a
    finder that reports one found a real, weak reflection) -- never a label-1 peak, never noise."""
    from peaknet_gui.model.dataset import LabelledRun
    from peaknet_gui.sim.run_writer import CxiRunWriter

    f = simulate_frame(small_ccd, _strong_hit(small_ccd, seed=4, strength=600.0))
    sp = f.extra["spots"]
    assert len(f.faint_fs) == len(f.faint_ss) > 5
    # each faint spot is a real reflection of SNR 2-6: its label is 0 (or the 255 band), never 1
    lab = f.labels[np.clip(np.rint(f.faint_ss).astype(int), 0, f.labels.shape[0] - 1),
                   np.clip(np.rint(f.faint_fs).astype(int), 0, f.labels.shape[1] - 1)]
    assert not np.any(lab == 1)
    faint_snr = sp["snr"][(sp["cls"] == 0) & (sp["snr"] >= 2.0) & (sp["npix"] > 0)]
    assert len(faint_snr) == len(f.faint_fs) and np.all(faint_snr < LabelRule().snr_peak)
    # fewer than the true peaks' positions: no faint spot is a listed peak
    d = np.hypot(f.faint_fs[:, None] - f.peaks.fs[None], f.faint_ss[:, None] - f.peaks.ss[None])
    assert d.min() > 0.5
    out = tmp_path / "faint.cxi"
    with CxiRunWriter(out, small_ccd, 1) as w:
        w.add(f)
    run = LabelledRun(out)
    t = run.truth(0)
    assert np.allclose(t.faint_fs, f.faint_fs, atol=1e-3) and np.allclose(t.faint_ss, f.faint_ss, atol=1e-3)
    assert len(t.dont_care_xy()) == len(f.marginal_fs) + len(f.faint_fs)
    run.close()
