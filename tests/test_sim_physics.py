"""Simulator physics: lattices, orientations, Ewald excitation, projection through the geometry."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.geometry.detector import HC_EV_A, Geometry
from peaknet_gui.sim.detectors import cspad_geometry, get_detector
from peaknet_gui.sim.lattice import UnitCell, centring_allowed, miller_indices, random_cell
from peaknet_gui.sim.orientation import axis_angle_matrix, random_rotation
from peaknet_gui.sim.projection import directions_from_angles, project_directions
from peaknet_gui.sim.reflections import CrystalParams, excite


def test_cell_d_spacings_and_volume():
    cubic = UnitCell(40.0, 40.0, 40.0)
    assert cubic.d_spacing([2, 0, 0]) == pytest.approx(20.0)
    assert cubic.d_spacing([1, 1, 1]) == pytest.approx(40.0 / np.sqrt(3))
    hexa = UnitCell(50.0, 50.0, 80.0, 90, 90, 120)
    # hexagonal: 1/d^2 = 4/3 (h^2 + hk + k^2)/a^2 + l^2/c^2
    assert hexa.d_spacing([1, 0, 0]) == pytest.approx(1 / np.sqrt(4 / 3 / 2500))
    assert hexa.volume == pytest.approx(50 * 50 * 80 * np.sin(np.deg2rad(120)))
    mono = UnitCell(30.0, 40.0, 50.0, 90, 105, 90)
    hkl = np.array([[1, 2, 3]])
    # independent route: d = 1/|h . G*| with the metric tensor
    G = mono.direct_matrix() @ mono.direct_matrix().T
    gstar = np.linalg.inv(G)
    assert mono.d_spacing(hkl)[0] == pytest.approx(1 / np.sqrt(hkl[0] @ gstar @ hkl[0]))
    with pytest.raises(InputError):
        UnitCell(10, 10, 10, centering="Q")
    with pytest.raises(InputError):
        UnitCell(10, 10, 10, 10, 10, 170)


def test_centring_absences_and_enumeration():
    hkl = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [2, 0, 0], [1, 0, 1]])
    assert centring_allowed(hkl, "I").tolist() == [False, True, False, True, True]
    assert centring_allowed(hkl, "F").tolist() == [False, False, True, True, False]
    assert centring_allowed(hkl, "C").tolist() == [False, True, True, True, False]
    cell = UnitCell(20.0, 25.0, 30.0, centering="I")
    got = miller_indices(cell, 4.1)
    assert len(got) and np.all(cell.d_spacing(got) >= 4.1 - 1e-9)
    assert np.all((got.sum(axis=1) % 2) == 0) and not np.any(np.all(got == 0, axis=1))
    # brute force over a generous box
    r = np.arange(-8, 9)
    box = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    box = box[np.any(box != 0, axis=1)]
    want = box[(cell.d_spacing(box) >= 4.1) & centring_allowed(box, "I")]
    assert sorted(map(tuple, got)) == sorted(map(tuple, want))


def test_random_cells_and_rotations():
    rng = np.random.default_rng(1)
    for _ in range(30):
        c = random_cell(rng)
        assert c.volume > 0
    mats = np.array([random_rotation(rng) for _ in range(2000)])
    assert np.allclose(mats @ mats.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(mats), 1.0)
    # uniform on SO(3): the rotated z axis is uniform on the sphere (mean ~0, <z^2> = 1/3)
    z = mats[:, :, 2]
    assert np.abs(z.mean(axis=0)).max() < 0.05
    assert np.mean(z[:, 2] ** 2) == pytest.approx(1 / 3, abs=0.03)


def _bragg_setup(distance=0.1, pixel=100e-6, wavelength=1.0, hkl=(2, 0, 0), a=40.0):
    """A cubic crystal turned so that ``hkl`` lies exactly on the Ewald sphere, in the x-z plane."""
    cell = UnitCell(a, a, a)
    d = cell.d_spacing(hkl)
    sin_t = wavelength / (2 * d)
    alpha = np.arcsin(sin_t)
    # q = (1/d)(cos a, 0, -sin a): rotate +x (where (h00) points) about y by +alpha
    U = axis_angle_matrix([0, 1, 0], alpha)
    q = U @ cell.reciprocal_matrix() @ np.array(hkl, float)
    assert q[2] == pytest.approx(-sin_t / d)
    two_theta = 2 * alpha
    geom = Geometry.single_panel((256, 256), pixel, distance, 100.0, 120.0, HC_EV_A / wavelength)
    fs_expected = 100.0 + distance * np.tan(two_theta) / pixel
    return cell, U, geom, fs_expected, 120.0


def test_reflection_lands_where_bragg_and_geometry_put_it():
    cell, U, geom, fs_exp, ss_exp = _bragg_setup()
    # hand numbers: d = 20 A, lambda = 1 A -> 2theta = 2 asin(1/40) = 2.8651 deg; 100 mm, 0.1 mm px
    assert fs_exp == pytest.approx(100.0 + 100.0 * np.tan(np.deg2rad(2.86510)) / 0.1, abs=1e-3)
    crystal = CrystalParams(cell=cell, rotation=U.tolist(), mosaicity_deg=0.01, domain_size_um=2.0,
                            b_factor=0.0, d_limit_a=10.0, strength=1000.0)
    refl = excite(crystal, 1.0, 1e-4, 10.0, np.random.default_rng(0))
    i = [tuple(h) for h in refl.hkl].index((2, 0, 0))
    # on the sphere a still records sigma_S / sigma of the reflection (hand numbers: |q| = 0.05 /A)
    sig_r2 = (0.5 / 2e4) ** 2 + (0.05 * np.deg2rad(0.01)) ** 2
    sig_s2 = (0.5 * 0.05**2 * 1.0 * 1e-4) ** 2 + 1e-12
    assert refl.partiality[i] == pytest.approx(np.sqrt(sig_s2 / (sig_r2 + sig_s2)), rel=1e-6)
    # a horizontally divergent beam (x) thickens the shell by k sin(2theta) div for this x-z reflection
    div = 2e-4
    refl_d = excite(crystal, 1.0, 1e-4, 10.0, np.random.default_rng(0), divergence=(div, 0.0))
    j = [tuple(h) for h in refl_d.hkl].index((2, 0, 0))
    sig_s2d = sig_s2 + (np.sin(2 * np.arcsin(1 / 40.0)) * div) ** 2
    assert refl_d.partiality[j] == pytest.approx(np.sqrt(sig_s2d / (sig_r2 + sig_s2d)), rel=1e-6)
    assert refl.twotheta[i] == pytest.approx(2 * np.arcsin(1 / 40.0), rel=1e-9)
    proj = project_directions(geom, refl.direction[i : i + 1])
    assert proj.panel[0] == 0
    assert proj.fs[0] == pytest.approx(fs_exp, abs=1e-6)
    assert proj.ss[0] == pytest.approx(ss_exp, abs=1e-6)
    # off the sphere -> partial, and the partiality falls as the Gaussian of the excitation error
    tilt = axis_angle_matrix([0, 1, 0], np.deg2rad(0.02)) @ U
    refl2 = excite(CrystalParams(**{**crystal.__dict__, "rotation": tilt.tolist()}), 1.0, 1e-4, 10.0,
                   np.random.default_rng(0), min_partiality=1e-6)
    j = [tuple(h) for h in refl2.hkl].index((2, 0, 0))
    assert 0 < refl2.partiality[j] < 0.9 * refl.partiality[i]


def test_projection_multi_panel_roundtrip():
    geom = cspad_geometry(distance_m=0.1, photon_energy_ev=9500.0)
    rng = np.random.default_rng(3)
    d = directions_from_angles(rng.uniform(0.02, 0.6, 4000), rng.uniform(-np.pi, np.pi, 4000))
    proj = project_directions(geom, d)
    assert 0.3 < proj.hit.mean() < 0.95  # central hole, gaps and the outside miss
    x, y, z = geom.lab_xyz(proj.fs[proj.hit], proj.ss[proj.hit])
    back = np.stack([x, y, z], 1)
    back /= np.linalg.norm(back, axis=1)[:, None]
    assert np.allclose(back, d[proj.hit], atol=1e-9)
    assert np.array_equal(geom.panel_at(proj.fs[proj.hit], proj.ss[proj.hit]), proj.panel[proj.hit])
    # Jacobian: moving the ray by a small 2-theta step moves the spot by jac_r * step
    k = np.flatnonzero(proj.hit)[:50]
    tth = np.arccos(d[k, 2])
    phi = np.arctan2(d[k, 1], d[k, 0])
    p2 = project_directions(geom, directions_from_angles(tth + 1e-6, phi))
    ok = p2.panel == proj.panel[k]
    step = np.stack([p2.fs - proj.fs[k], p2.ss - proj.ss[k]], 1)[ok] / 1e-6
    assert np.allclose(step, proj.jac_r[k][ok], rtol=1e-3, atol=1e-2)


def test_cspad_layout_like_real_metrology(real_data):
    from peaknet_gui.geometry.crystfel_geom import read_geom

    real = read_geom(real_data / "thermolysin_cspad" / "cspad_rawlayout_from_dxtbx.geom")
    ours = cspad_geometry()
    assert [p.name for p in ours.panels] == [p.name for p in real.panels]
    for a, b in zip(ours.panels, real.panels):
        assert (a.min_fs, a.max_fs, a.min_ss, a.max_ss) == (b.min_fs, b.max_fs, b.min_ss, b.max_ss)
        assert np.allclose(a.fs[:2], b.fs[:2], atol=0.02) and np.allclose(a.ss[:2], b.ss[:2], atol=0.02)
        assert abs(a.corner_x - b.corner_x) < 20 and abs(a.corner_y - b.corner_y) < 20  # quadrants differ by ~13 px


def test_builtin_detectors_shapes_and_gaps():
    pil = get_detector("pilatus-6m")
    assert pil.shape == (2527, 2463)
    assert pil.geometry.beam_center(0) == pytest.approx((1261.11, 1306.46))
    assert pil.gap_mask.sum() == 2527 * 2463 - 60 * 195 * 487
    crop = get_detector("pilatus-6m-crop")
    assert crop.shape == (1024, 1024)
    # the crop sees the same lab positions as the full detector
    fs0, ss0 = crop.geometry.beam_center(0)
    assert fs0 == pytest.approx(1261.11 - round(1261.11 - 512), abs=1e-9)
    cs = get_detector("cspad")
    assert cs.shape == (1480, 1552) and len(cs.geometry.panels) == 64 and cs.dtype == "int16"
    with pytest.raises(InputError):
        get_detector("no-such-detector")


def test_divergence_elongates_spots_along_its_direction():
    from peaknet_gui.sim.frame import spot_covariances
    from peaknet_gui.sim.params import SpotShape

    cell, U, geom, fs_exp, _ = _bragg_setup()
    crystal = CrystalParams(cell=cell, rotation=U.tolist(), mosaicity_deg=0.0, domain_size_um=2.0, b_factor=0.0,
                            d_limit_a=10.0, strength=1.0)
    refl = excite(crystal, 1.0, 0.0, 10.0, np.random.default_rng(0))
    refl = refl.select(np.array([tuple(h) == (2, 0, 0) for h in refl.hkl]))
    proj = project_directions(geom, refl.direction)
    shape = SpotShape(sigma_px=0.0, sigma_jitter=0.0, elongation=1.0)
    # 1 mrad of horizontal divergence at 100 mm on 0.1 mm pixels moves the spot by ~1 px RMS along fs
    cov = spot_covariances(shape, refl, proj, 0.0, np.random.default_rng(0), divergence=(1e-3, 0.0))[0]
    assert cov[0, 0] == pytest.approx(1.0, rel=0.02)
    assert abs(cov[1, 1]) < 1e-6 and abs(cov[0, 1]) < 1e-6
    cov_v = spot_covariances(shape, refl, proj, 0.0, np.random.default_rng(0), divergence=(0.0, 1e-3))[0]
    assert cov_v[1, 1] == pytest.approx(1.0, rel=0.02) and abs(cov_v[0, 0]) < 1e-6


def _second_moment(img: np.ndarray) -> float:
    ss, fs = np.indices(img.shape)
    w = np.clip(img, 0, None)
    c = (w * fs).sum() / w.sum()
    return float((w * (fs - c) ** 2).sum() / w.sum())


def test_ccd_point_spread_blurs_a_spot_once():
    """A rendered spot already holds the CCD's point spread (frame.spot_covariances): read_out
    must not blur it again, while the diffuse photons are blurred (and a run's XFEL CCD
    personality draws a sharp taper)."""
    import dataclasses

    from peaknet_gui.sim.noise import draw_personality, read_out
    from peaknet_gui.sim.run import RunSpec, plan_run
    from peaknet_gui.sim.params import SimRanges

    det = get_detector("rayonix-mx340").cropped_around_beam(64, 64, name="rx64")
    pers = dataclasses.replace(draw_personality(det, np.random.default_rng(1)), psf_sigma_px=0.8, read_noise_adu=0.0,
                               hot_pixels=[], dead_pixels=[], gain_spread=0.0, offset_adu=0.0)
    ss, fs = np.indices(det.shape)
    sigma = 0.8  # the spot's profile: a point source seen through the 0.8 px point spread
    spot = 2e4 * np.exp(-((fs - 32) ** 2 + (ss - 32) ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    once, _ = read_out(spot.astype(np.float32), det, pers, np.random.default_rng(2), spread=spot.astype(np.float32))
    twice, _ = read_out(spot.astype(np.float32), det, pers, np.random.default_rng(2))
    m_once, m_twice = _second_moment(once.astype(float)), _second_moment(twice.astype(float))
    assert m_once == pytest.approx(sigma**2, rel=0.1)  # the profile sampled at pixel centres
    assert m_twice == pytest.approx(2 * sigma**2, rel=0.1)
    spec = RunSpec(detector="rayonix-mx340", n_frames=1, seed=3, ranges=SimRanges(xfel=True), crop="128x128")
    _, xfel_pers, _ = plan_run(spec)
    assert 0.1 <= xfel_pers.psf_sigma_px <= 0.6
