"""Simulated frames against the real thaumatin Pilatus stills, measured by the same DIALS-like ruler."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.sim.detectors import get_detector
from peaknet_gui.sim.frame import simulate_frame
from peaknet_gui.sim.presets import thaumatin_like
from peaknet_gui.sim.realism import dispersion_spots, match_fraction, radial_stats, read_dials_spots

CROP = 1024


def _real_crop(real_data, name):
    import fabio

    img = fabio.open(str(real_data / "thaumatin_grid" / f"thau_3_2_{name}.cbf.bz2")).data.astype(np.float64)
    det = get_detector("pilatus-6m-crop")
    fs0 = int(round(1261.11 - CROP / 2))
    ss0 = int(round(1306.46 - CROP / 2))
    crop = img[ss0 : ss0 + CROP, fs0 : fs0 + CROP]
    dials = read_dials_spots(real_data / "thaumatin_grid" / f"thau_3_2_{name}.cbf.spots.csv")
    inside = (dials.fs >= fs0 + 4) & (dials.fs < fs0 + CROP - 4) & (dials.ss >= ss0 + 4) & (dials.ss < ss0 + CROP - 4)
    return crop, (crop < 0) | (crop > 100000), dials.fs[inside] - fs0, dials.ss[inside] - ss0, det


@pytest.fixture(scope="module")
def real_hit(real_data):
    return _real_crop(real_data, "0006")


@pytest.fixture(scope="module")
def sim_hits():
    det = get_detector("pilatus-6m-crop")
    return [simulate_frame(det, thaumatin_like(det, s)) for s in range(2)]


def test_dispersion_finder_reproduces_dials(real_hit):
    data, bad, dfs, dss, _ = real_hit
    sp = dispersion_spots(data, bad)
    assert len(dfs) > 200
    # DIALS 3.12's default (dispersion_extended + max_separation 2): measured 0.996 / 0.935
    assert match_fraction(dfs, dss, sp.fs, sp.ss) > 0.95  # DIALS' spots are found
    assert match_fraction(sp.fs, sp.ss, dfs, dss) > 0.9  # and few others
    assert 0.9 < len(sp) / len(dfs) < 1.15
    # the classic dispersion threshold (no separation filter) finds more than DIALS' default
    classic = dispersion_spots(data, bad, algorithm="dispersion", max_separation=None)
    assert len(classic) > len(sp)


def test_simulated_spots_and_background_like_real(real_hit, sim_hits):
    data, bad, _, _, det = real_hit
    real = dispersion_spots(data, bad)
    sims = [dispersion_spots(f.data.astype(float), f.bad) for f in sim_hits]
    s_int = np.concatenate([s.intensity_sum for s in sims])
    s_n = np.concatenate([s.n_signal for s in sims])
    s_max = np.concatenate([s.max_value for s in sims])
    # the DIALS-like finder sees the same brightness and size of spots, including the weak end
    for q in (10, 50, 90):
        assert 0.6 < np.percentile(s_int, q) / np.percentile(real.intensity_sum, q) < 1.6
        assert 0.6 < np.percentile(s_max, q) / np.percentile(real.max_value, q) < 1.6
    # as many spots per frame as the real hit (the middle radii are crowded: small mosaic domains)
    assert 0.6 < np.mean([len(sp) for sp in sims]) / len(real) < 1.5
    # strong pixels per spot (DIALS' n_signal; ~18 for the real spots with dispersion_extended)
    assert 0.75 < np.median(s_n) / np.median(real.n_signal) < 1.33
    # background level and Poisson noise between the spots
    bc = det.geometry.beam_center(0)
    r_real = radial_stats(data, ~bad, bc[0], bc[1], step=100, r_max=500)
    f = sim_hits[0]
    r_sim = radial_stats(f.data.astype(float), ~f.bad, bc[0], bc[1], step=100, r_max=500)
    ok = np.isfinite(r_real.median) & np.isfinite(r_sim.median)
    ok[0] = False  # beamstop
    assert np.all(np.abs(r_sim.median[ok] / r_real.median[ok] - 1) < 0.35)


def test_labels_are_what_a_dials_like_finder_finds(sim_hits):
    for f in sim_hits:
        sp = dispersion_spots(f.data.astype(float), f.bad)
        pk = f.peaks
        assert len(pk) > 50
        assert match_fraction(sp.fs, sp.ss, pk.fs, pk.ss) > 0.85
        both = np.r_[pk.fs, f.marginal_fs], np.r_[pk.ss, f.marginal_ss]
        assert match_fraction(sp.fs, sp.ss, *both) > 0.97
        assert match_fraction(pk.fs, pk.ss, sp.fs, sp.ss) > 0.8


def test_extended_threshold_on_synthetic_frames():
    from peaknet_gui.sim.realism import dispersion_extended_mask

    rng = np.random.default_rng(4)
    flat = rng.poisson(3.0, (200, 200)).astype(float)
    assert dispersion_extended_mask(flat)[0].sum() <= 2  # Poisson noise: (almost) nothing strong
    yy, xx = np.mgrid[0:200, 0:200]
    spot = 400 * np.exp(-0.5 * ((yy - 100.3) ** 2 + (xx - 60.6) ** 2) / 1.2**2)
    img = rng.poisson(3.0 + spot).astype(float)
    strong, mean = dispersion_extended_mask(img)
    sp = dispersion_spots(img)
    assert len(sp) == 1 and abs(sp.fs[0] - 60.6) < 0.3 and abs(sp.ss[0] - 100.3) < 0.3
    assert 5 <= strong.sum() <= 40 and abs(mean[100, 60] - 3.0) < 1.0  # background mean without the spot
    bad = np.zeros(img.shape, bool)
    bad[:, 55:66] = True  # a masked column over the spot: nothing found there
    assert not dispersion_extended_mask(img, bad)[0][:, 55:66].any()
