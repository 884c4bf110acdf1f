"""The pattern_sim evaluation set's truth rule and the sensitivity scorer (benchmarks/), on
synthetic frames: no CrystFEL needed."""

from __future__ import annotations

import numpy as np
import pytest
from _bench_modules import load_benchmark

mk = load_benchmark("make_patternsim_set")
bs = load_benchmark("bench_sensitivity")


def test_one_pixel_spot_snr_and_size():
    var = np.full((40, 40), 4.0)  # sigma 2 photons
    spots = np.zeros((40, 40))
    spots[10, 12] = 24.0  # 12 sigma in one pixel
    rows = mk.frame_truth(spots, var)
    assert len(rows) == 1
    r = rows[0]
    assert (r["fs"], r["ss"]) == (12.0, 10.0)
    assert r["snr"] == pytest.approx(12.0) and r["n_pixels"] == 1 and r["n_region"] == 1


def test_best_aperture_ignores_faint_wings_and_sizes_count_3_sigma_pixels():
    var = np.full((30, 30), 1.0)
    spots = np.zeros((30, 30))
    spots[5, 5:8] = [4.0, 9.0, 4.0]  # 3 pixels >= 3 sigma
    spots[4:7, 4] = 0.2  # wings that only add noise
    rows = mk.frame_truth(spots, var)
    assert len(rows) == 1 and rows[0]["n_pixels"] == 3
    assert rows[0]["snr"] == pytest.approx(17.0 / np.sqrt(3.0))
    assert rows[0]["fs"] == pytest.approx((4 * 5 + 9 * 6 + 4 * 7 + 0.6 * 4) / 17.6)


def test_spots_below_snr_2_are_not_listed():
    var = np.full((20, 20), 100.0)
    spots = np.zeros((20, 20))
    spots[3, 3] = 15.0  # SNR 1.5
    assert mk.frame_truth(spots, var) == []


def test_hkl_at_inverts_the_diffraction_geometry():
    wl, dist = 1.3, 0.15
    fs, ss = 1500.0, 400.0
    x, y = (fs + 0.5 - mk.N / 2) * mk.PIXEL_M, (ss + 0.5 - mk.N / 2) * mk.PIXEL_M
    r = np.sqrt(x * x + y * y + dist * dist)
    q = np.array([x / r, y / r, dist / r - 1.0]) / (wl * 1e-10)  # k_out - k_in, m^-1
    hkl = np.array([3, -2, 1])
    recip0 = np.diag([1 / 79.1e-10, 1 / 79.1e-10, 1 / 37.9e-10])
    v = recip0.T @ hkl
    a, b = v / np.linalg.norm(v), q / np.linalg.norm(q)  # rotate the lattice so that hkl diffracts at (fs, ss)
    c = np.cross(a, b)
    k = np.array([[0, -c[2], c[1]], [c[2], 0, -c[0]], [-c[1], c[0], 0]])
    rot = np.eye(3) + k + k @ k / (1 + a @ b)
    recip = np.linalg.norm(q) / np.linalg.norm(v) * recip0 @ rot.T
    assert np.allclose(recip.T @ hkl, q)
    assert mk.hkl_at([fs], [ss], recip, dist, wl)[0].tolist() == hkl.tolist()


def test_geom_text_describes_the_stack():
    g = mk.geom_text(0.15, 9500, "/entry_1/data_1/data", True, adu_per_photon=2.5)
    assert "dim0 = %" in g and "peak_list = /entry_1/result_1" in g and "adu_per_photon = 2.5" in g
    assert "p0/corner_x = -960" in g and "clen = 0.15" in g


def test_scorer_bins_recall_and_counts_faint_true_spots_as_correct():
    truth = {0: np.array([[10, 10, 8.0, 1], [50, 50, 30.0, 2], [90, 90, 100.0, 12], [130, 130, 3.0, 1]])}
    found = {0: np.array([[10.5, 10.5], [90, 91.5], [130, 130], [200, 200]])}
    s = bs.score(found, truth, 1)
    assert s["found"] == 4 and s["precision"] == pytest.approx(3 / 4)  # the SNR-3 spot is real
    assert s["recall"] == pytest.approx(2 / 3)  # SNR >= 6 only
    assert s["snr_bins"]["6-10"] == [1, 1] and s["snr_bins"]["20-40"] == [0, 1] and s["snr_bins"]["40-inf"] == [1, 1]
    assert s["size_bins"]["1-1"] == [1, 1] and s["size_bins"]["2-2"] == [0, 1] and s["size_bins"]["10-1000000000"] == [1, 1]


def test_peaks_cxi_for_indexamajig(tmp_path):
    import h5py

    frames = tmp_path / "run.cxi"
    with h5py.File(frames, "w") as f:
        f["/entry_1/data_1/data"] = np.zeros((2, 8, 8), np.uint16)
    out = tmp_path / "peaks.cxi"
    bs.write_peaks_cxi(out, frames, {1: np.array([[1.0, 2.0], [3.0, 4.0]])}, 2)
    with h5py.File(out, "r") as f:
        assert f["/entry_1/data_1/data"].shape == (2, 8, 8)  # through the external link
        assert f["/entry_1/result_1/nPeaks"][()].tolist() == [0, 2]
        assert f["/entry_1/result_1/peakXPosRaw"][1].tolist() == [1.0, 3.0]
        assert f["/entry_1/result_1/peakYPosRaw"][1].tolist() == [2.0, 4.0]
