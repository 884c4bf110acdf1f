"""The default label rule: a peak is a spot of expected integrated SNR >= 6, whatever its size."""

from __future__ import annotations

import numpy as np

from peaknet_gui.sim.frame import simulate_frame
from peaknet_gui.sim.labels import IGNORE, PEAK, LabelRule, snr_classes, spot_stats
from peaknet_gui.sim.params import SimRanges
from peaknet_gui.sim.realism import match_fraction
from peaknet_gui.sim.run import RunSpec, plan_run
from peaknet_gui.sim.spots import SpotPatches


def test_snr_rule_hand_cases():
    # 10x10 frame, background noise variance 1 per pixel; spots as 1-pixel or 2x2 patches;
    # SNR against the background = photons / sqrt(pixels)
    fs_n = 10
    idx = np.array([[0, -1, -1, -1], [4, -1, -1, -1], [40, 41, 50, 51], [80, -1, -1, -1], [60, 61, 70, 71]])
    val = np.array([[6.0, 0, 0, 0],    # one pixel, 6 photons: SNR 6 -> peak (1 px is no reason to ignore it)
                    [5.0, 0, 0, 0],    # SNR 5 -> 255 (a noise draw decides)
                    [2.5, 2.5, 2.5, 2.5],  # four pixels of 2.5 sigma: SNR 10 / 2 = 5 -> 255
                    [3.0, 0, 0, 0],    # SNR 3 -> background
                    [3.5, 3.5, 3.5, 3.5]], np.float32)  # SNR 14 / 2 = 7 -> peak
    patches = SpotPatches.from_arrays(idx, val)
    rule = LabelRule()
    assert rule.mode == "snr"
    stats = spot_stats(patches, np.ones(100, np.float32), np.ones(100, bool), fs_n, rule)
    cls, merged = snr_classes(patches, stats, rule, (10, 10))
    assert cls.tolist() == [PEAK, IGNORE, IGNORE, 0, PEAK] and not merged.any()
    # two peaks whose pixels touch are one component: the fainter is merged into the brighter
    both = SpotPatches.from_arrays(np.array([[0, -1], [1, -1], [30, -1]]), np.array([[7.0, 0], [9.0, 0], [8.0, 0]], np.float32))
    st = spot_stats(both, np.ones(100, np.float32), np.ones(100, bool), fs_n, rule)
    cls, merged = snr_classes(both, st, rule, (10, 10))
    assert cls.tolist() == [IGNORE, PEAK, PEAK] and merged.tolist() == [True, False, False]


def test_snr_labels_keep_small_faint_spots_that_dials_misses():
    """XFEL-like frames on a CSPAD: every label-1 spot has expected SNR >= 6 and every
    unmerged spot of SNR >= 6 is a peak; many are 1-3 pixel spots that the DIALS-based rule left
    out; the written frame and its noise draw are the same whatever the rule."""
    det, pers, params = plan_run(RunSpec(n_frames=4, seed=11, detector="cspad", mix={"hit": 1.0}))
    small, total, dials, found = 0, 0, 0, 0.0
    for p in params:
        f = simulate_frame(det, p, pers)
        obs = simulate_frame(det, p, pers, rule=LabelRule(mode="observed"))
        assert np.array_equal(f.data, obs.data)
        sp = f.extra["spots"]
        vis = sp["cls"] == PEAK
        assert np.all(sp["snr_det"][vis] >= 6.0)
        strong = (sp["snr_det"] >= 6.0) & (sp["npix"] > 0) & ~sp["merged"]
        assert np.count_nonzero(strong) == len(f.peaks)
        small += int(np.sum(f.peaks.npix <= 3))
        total += len(f.peaks)
        dials += len(obs.peaks)
        # the labelled pixels of the peaks are label 1
        ss, fs = np.rint(f.peaks.ss).astype(int), np.rint(f.peaks.fs).astype(int)
        assert np.all(f.labels[ss, fs] == PEAK) or np.mean(f.labels[ss, fs] == PEAK) > 0.95
        if len(obs.peaks):  # DIALS' spots are mostly SNR >= 6 peaks too (the rest: 255 or chance)
            found += match_fraction(obs.peaks.fs, obs.peaks.ss, f.peaks.fs, f.peaks.ss) * len(obs.peaks)
    print(f"peaks {total}, of 1-3 px {small}, DIALS rule {dials}, of them SNR-rule peaks {found:.0f}")
    assert total >= 30 and small / total > 0.25 and found > 0.8 * dials
    assert total > 1.1 * dials  # the SNR rule teaches spots that DIALS' default test does not report
