"""Detector tilt: refined from zero tilt, the direct-beam centre, uncertainties, the tilt in the
written .poni and .geom (CrystFEL's 2-theta = pyFAI's for every pixel), pyFAI's own
GeometryRefinement on our control points as an anchor, rigid multi-panel fits with per-panel
residuals, and the real Pilatus 100K AgBh frame (peaknet_gui.calib.refine)."""

import numpy as np
import pytest

from tests.conftest import real_file
from peaknet_gui.calib.geometry_convert import fit2d_parameters, geometry_from_fit2d, to_pyfai
from peaknet_gui.calib.refine import calibrate
from peaknet_gui.calib.writers import read_poni, write_calibrated_geom, write_result_poni
from peaknet_gui.geometry.crystfel_geom import read_geom
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.sim.powder import simulate_calibrant_frame

PIX_UM = 172.0


def _truth(shape, dist_mm, beam, tilt, tpr):
    """Single panel from Fit2D parameters; ``beam``: the direct-beam centre in pixel indices."""
    return geometry_from_fit2d(dist_mm, beam[0] + 0.5, beam[1] + 0.5, shape, PIX_UM, tilt_deg=tilt,
                               tilt_plan_rotation_deg=tpr)


def _rough(shape, dist_mm, beam):
    """The targets' start: no tilt, beam centre 20 px off in both directions, distance 5 % long."""
    return geometry_from_fit2d(dist_mm * 1.05, beam[0] + 20.5, beam[1] - 19.5, shape, PIX_UM)


# (calibrant, wavelength A, distance mm, tilt deg, tilt plane rotation deg, frame options)
CASES = [
    ("CeO2", 0.5, 110.0, 0.0, 0.0, {}),
    ("CeO2", 0.5, 110.0, 3.0, 60.0, {}),
    ("AgBh", 1.0, 100.0, 1.5, -120.0, dict(peak_photons=2000)),
    ("AgBh", 1.0, 100.0, 3.0, 30.0, dict(peak_photons=2000)),
]
SHAPE = (340, 360)
BEAM = (170.3, 160.7)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-tilt{c[3]:g}")
def fitted(request):
    cal, wl, dist, tilt, tpr, opts = request.param
    true = _truth(SHAPE, dist, BEAM, tilt, tpr)
    frame = simulate_calibrant_frame(true, cal, wl, seed=21, **opts)
    res = calibrate(frame.data, _rough(SHAPE, dist, BEAM), cal, wl, bad=frame.bad)
    return request.param, true, res


@pytest.mark.slow
def test_targets_direct_beam_distance_tilt(fitted):
    (cal, wl, dist, tilt, tpr, _), true, res = fitted
    f2d = fit2d_parameters(true)
    assert res.tilt_status == "fitted", res.warnings
    err = np.subtract(res.beam_center, (f2d["centerX"] - 0.5, f2d["centerY"] - 0.5))
    assert np.all(np.abs(err) <= 0.3), f"direct-beam centre error {err} px"
    assert abs(res.distance_m * 1e3 / f2d["directDist"] - 1) <= 0.002
    assert abs(res.tilt_deg - tilt) <= 0.05
    if tilt > 0:
        assert abs((res.tilt_plane_rotation_deg - tpr + 180) % 360 - 180) < 5.0
    # the reported beam centre is pyFAI's own Fit2D direct-beam centre of the refined geometry
    mine = fit2d_parameters(res.geometry, SHAPE)
    assert res.beam_center == pytest.approx((mine["centerX"] - 0.5, mine["centerY"] - 0.5), abs=1e-6)
    assert res.distance_m * 1e3 == pytest.approx(mine["directDist"], rel=1e-9)
    # uncertainties: finite, small, and consistent with the actual errors (5 sigma, floor 0.02 px)
    u = res.uncertainty
    assert set(u.free) == {"dist", "poni1", "poni2", "rot1", "rot2"}
    assert 0 < u.sigma_tilt_deg < 0.05 and all(0 < s < 0.3 for s in u.sigma_beam_px)
    assert np.all(np.abs(err) <= 5 * np.maximum(u.sigma_beam_px, 0.02))
    assert {r.ring for r in res.ring_residuals} == set(res.rings_used)
    assert all(r.rms_px < 1.0 for r in res.ring_residuals)
    assert "tilt" in res.summary() and "+/-" in res.summary()


@pytest.mark.slow
def test_pyfai_geometry_refinement_on_our_points_agrees(fitted):
    """pyFAI's GeometryRefinement, from the same rough start and zero tilt, on our control points."""
    from pyFAI.geometryRefinement import GeometryRefinement

    from peaknet_gui.calib.calibrants import load_calibrant

    (cal, wl, dist, tilt, tpr, _), true, res = fitted
    start = to_pyfai(_rough(SHAPE, dist, BEAM), SHAPE, wl).params
    det = res.pyfai.integrator.detector
    gr = GeometryRefinement(data=res.control_points.points.copy(), calibrant=load_calibrant(cal, wl), detector=det,
                            wavelength=wl * 1e-10, dist=start[0], poni1=start[1], poni2=start[2], rot1=0.0, rot2=0.0,
                            rot3=0.0)
    gr.refine2(maxiter=1_000_000, fix=["wavelength", "rot3"])
    theirs, truth = gr.getFit2D(), fit2d_parameters(true)
    assert abs(theirs["centerX"] - truth["centerX"]) <= 0.3 and abs(theirs["centerY"] - truth["centerY"]) <= 0.3
    assert abs(theirs["directDist"] / truth["directDist"] - 1) <= 0.002
    assert abs(theirs["tilt"] - tilt) <= 0.05
    # and both fits agree with each other to well within the targets
    assert abs(theirs["centerX"] - 0.5 - res.beam_center[0]) <= 0.15
    assert abs(theirs["tilt"] - res.tilt_deg) <= 0.03


def _crystfel_twotheta(geom: Geometry, fs: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """2-theta of data pixels as CrystFEL computes it (libcrystfel detgeom): position in pixels
    ``cn + f * fs_vec + s * ss_vec`` with panel coordinates ``f, s`` measured from the corner of
    the panel's first pixel (so its centre is at 0.5), ``cnz = (clen + coffset) * res``."""
    out = np.full(fs.shape, np.nan)
    for p in geom.panels:
        m = (fs >= p.min_fs) & (fs <= p.max_fs) & (ss >= p.min_ss) & (ss <= p.max_ss)
        f = fs[m] - p.min_fs + 0.5
        s = ss[m] - p.min_ss + 0.5
        cnz = ((p.clen if p.clen is not None else geom.clen) + p.coffset) * p.res
        x = p.corner_x + f * p.fs[0] + s * p.ss[0]
        y = p.corner_y + f * p.fs[1] + s * p.ss[1]
        z = cnz + f * p.fs[2] + s * p.ss[2]
        out[m] = np.arctan2(np.hypot(x, y), z)
    return out


def test_written_geom_and_poni_give_the_same_twotheta(tmp_path):
    """A tilted fit written as .geom and .poni: CrystFEL's and pyFAI's 2-theta on a pixel grid."""
    shape = (260, 280)
    true = _truth(shape, 90.0, (120.4, 140.2), 2.5, -40.0)
    frame = simulate_calibrant_frame(true, "CeO2", 0.5, seed=3)
    res = calibrate(frame.data, true, "CeO2", 0.5, bad=frame.bad, coarse=False, fit_tilt="fit")
    assert res.tilt_deg == pytest.approx(2.5, abs=0.1)
    write_calibrated_geom(res, tmp_path / "c.geom")
    write_result_poni(res, tmp_path / "c.poni")
    g = read_geom(tmp_path / "c.geom")
    assert any(abs(p.fs[2]) > 1e-3 or abs(p.ss[2]) > 1e-3 for p in g.panels), "tilt not in the .geom"
    ss, fs = np.mgrid[0:shape[0]:7, 0:shape[1]:7]
    ours = _crystfel_twotheta(g, fs.astype(float), ss.astype(float))
    ai = read_poni(tmp_path / "c.poni")
    assert np.rad2deg(np.hypot(ai.rot1, ai.rot2)) == pytest.approx(res.tilt_deg, abs=0.05)
    # pyFAI's per-pixel function in double precision: the same to rounding
    np.testing.assert_allclose(ours, ai.tth(ss.ravel(), fs.ravel()).reshape(ss.shape), atol=1e-11, rtol=0)
    # pyFAI's cached array (its pixel positions are single precision: ~3e-8 rad)
    np.testing.assert_allclose(ours, ai.twoThetaArray(shape)[ss, fs], atol=5e-8, rtol=0)
    # the .geom's direct-beam centre is the reported one
    assert g.beam_center(0) == pytest.approx(res.beam_center, abs=1e-6)


def _two_panels(shift_px=0.0):
    p = 1e6 / PIX_UM
    panels = [
        Panel("top", 0, 219, 0, 109, corner_x=-100.5, corner_y=-114.0, res=p, clen=None),
        Panel("bottom", 0, 219, 110, 219, corner_x=-102.0 + shift_px, corner_y=0.0, res=p, clen=None, coffset=0.0005),
    ]
    return Geometry(panels=panels, clen=0.09)


def test_multi_panel_rigid_tilt_and_per_panel_residuals(tmp_path):
    from scipy.spatial.transform import Rotation

    true = _two_panels()
    rot = Rotation.from_euler("xyz", [1.2, -0.8, 0.0], degrees=True).as_matrix()
    for p in true.panels:  # tilt the assembly rigidly about the beam axis point at clen
        c = rot @ np.array([p.corner_x / p.res, p.corner_y / p.res, p.distance(true.clen) - true.clen])
        p.corner_x, p.corner_y = c[0] * p.res, c[1] * p.res
        p.coffset = c[2]
        p.fs, p.ss = tuple(rot @ np.asarray(p.fs)), tuple(rot @ np.asarray(p.ss))
    frame = simulate_calibrant_frame(true, "CeO2", 0.5, seed=8)
    start = _two_panels()
    for p in start.panels:
        p.corner_x -= 6.0
        p.corner_y += 4.0
    res = calibrate(frame.data, start, "CeO2", 0.5, bad=frame.bad, fit_tilt="fit")
    assert res.pyfai.kind == "corners"
    assert np.abs(np.subtract(res.beam_center, true.beam_center(0))).max() < 0.3
    ss, fs = np.mgrid[0:220:5, 0:220:5]
    np.testing.assert_allclose(_crystfel_twotheta(res.geometry, fs * 1.0, ss * 1.0),
                               _crystfel_twotheta(true, fs * 1.0, ss * 1.0), atol=1e-4)
    assert [q.panel for q in res.panel_residuals] == ["top", "bottom"]
    assert not any(q.flagged for q in res.panel_residuals)
    # rigid: the panels keep their relative placement
    d = np.subtract(res.geometry.panels[1].fs, res.geometry.panels[0].fs)
    assert np.allclose(d, 0, atol=1e-12)
    # a .poni (with its detector file) written from the multi-panel fit gives the same 2-theta
    write_result_poni(res, tmp_path / "m.poni")
    write_calibrated_geom(res, tmp_path / "m.geom")
    ai = read_poni(tmp_path / "m.poni")
    g = read_geom(tmp_path / "m.geom")
    v = np.isfinite(_crystfel_twotheta(g, fs * 1.0, ss * 1.0))
    np.testing.assert_allclose(_crystfel_twotheta(g, fs * 1.0, ss * 1.0)[v],
                               ai.twoThetaArray((220, 220))[ss, fs][v], atol=5e-8)


def _three_panels(shift_px=0.0):
    p = 1e6 / PIX_UM
    panels = [Panel(f"q{i}", 0, 219, 80 * i, 80 * i + 79, corner_x=-110.5 + (shift_px if i == 2 else 0.0),
                    corner_y=-120.0 + 80 * i, res=p, clen=None) for i in range(3)]
    return Geometry(panels=panels, clen=0.07)


def test_misplaced_panel_is_flagged():
    true = _three_panels(shift_px=2.0)  # the last panel really sits 2 px further along x
    frame = simulate_calibrant_frame(true, "CeO2", 0.5, seed=4)
    res = calibrate(frame.data, _three_panels(), "CeO2", 0.5, bad=frame.bad, fit_tilt="fixed")
    by = {q.panel: q for q in res.panel_residuals}
    assert by["q2"].flagged and not by["q0"].flagged, res.summary()
    assert by["q2"].shift_px[0] == pytest.approx(2.0, abs=0.3) and abs(by["q2"].shift_px[1]) < 0.3
    assert "off?" in res.summary()
    ok = calibrate(frame.data, true, "CeO2", 0.5, bad=frame.bad, fit_tilt="fixed")
    assert not any(q.flagged for q in ok.panel_residuals), ok.summary()


def test_tilt_fixed_by_request_and_bad_mode():
    true = _truth((200, 210), 80.0, (100.2, 95.8), 0.0, 0.0)
    frame = simulate_calibrant_frame(true, "CeO2", 0.5, seed=5)
    res = calibrate(frame.data, true, "CeO2", 0.5, bad=frame.bad, fit_tilt=False, coarse=False)
    assert res.tilt_status == "fixed" and not res.tilt_fitted and res.tilts_deg == (0.0, 0.0, 0.0)
    assert set(res.uncertainty.free) == {"dist", "poni1", "poni2"} and res.tilt_decision is None
    assert "not refined" in res.tilt_text()
    from peaknet_gui.errors import CalibrationError

    with pytest.raises(CalibrationError, match="fit_tilt"):
        calibrate(frame.data, true, "CeO2", 0.5, fit_tilt="sometimes")


def test_real_pilatus_100k_agbh_tilt_undetermined():
    """The shared AgBh frame: the beam sits off the small detector's edge, the rings are arcs at
    small angles -- the tilt must come out undetermined (kept at 0, said so, with the free fit's
    value and uncertainty), and the result consistent with the file's metadata."""
    import h5py

    path = real_file("agbh_pilatus100k/AgBehenate_228.hdf5")
    with h5py.File(path, "r") as f:
        data = f["entry/data/data"][()].astype(np.float32)
    start = Geometry.single_panel(data.shape, PIX_UM * 1e-6, 0.47, 20.0, 60.0)
    res = calibrate(data, start, "AgBh", 0.73363, bad=data < 0)
    assert res.tilt_status == "undetermined" and res.tilt_deg == 0.0
    d = res.tilt_decision
    assert not d.determined and np.isfinite(d.tilt_deg) and d.sigma_tilt_deg > 0
    # half a ring at most, and the tilt all but degenerate with the centre (correlations ~0.99999)
    assert d.coverage_deg < 180 and d.inflation > 200
    assert "tilt not determined" in " ".join(res.warnings) and "undetermined" in res.summary()
    # the file's README: beam centre (-5.42, 85.86) px, 513.8 mm
    assert abs(res.beam_center[0] + 5.42) < 1.0 and abs(res.beam_center[1] - 85.86) < 1.0
    assert res.distance_m == pytest.approx(0.5138, rel=0.005)
    assert all(np.isfinite(res.uncertainty.sigma_beam_px))


def test_tilt_decision_rule():
    """decide_tilt: sigma <= 0.02 deg is enough; up to 0.1 deg only for a tilt of 5 sigma or more;
    too few rings, too little azimuth or a tilt degenerate with the centre never are."""
    from peaknet_gui.calib.uncertainty import FitUncertainty, decide_tilt

    conv = to_pyfai(_truth((100, 100), 100.0, (50.0, 50.0), 0.0, 0.0), (100, 100), 1.0)
    ang = np.linspace(-np.pi, np.pi, 72, endpoint=False)
    fs, ss = 50 + 40 * np.cos(ang), 50 + 40 * np.sin(ang)  # points all around the beam

    def decide(sigma, tilt, inflation=10.0, n_rings=4, fs=fs, ss=ss):
        u = FitUncertainty(("dist",), np.eye(1), np.eye(1), 1.0, 100, 1e-5, sigma_tilt_deg=sigma,
                           tilt_inflation=inflation)
        return decide_tilt(u, conv, conv.params, fs, ss, n_rings, tilt=(tilt, 0.0))

    assert decide(0.015, 0.03).determined  # precise: whatever the tilt
    assert not decide(0.03, 0.08).determined  # 0.08 +/- 0.03: could be a flat detector
    assert "below 5 sigma" in decide(0.03, 0.08).reason
    assert decide(0.03, 1.0).determined  # 1.0 +/- 0.03: a real tilt, better kept than zeroed
    assert not decide(0.2, 3.0).determined
    assert not decide(0.01, 1.0, inflation=500).determined
    assert "ring" in decide(0.01, 1.0, n_rings=2).reason
    half = ang[:15]  # 150 degrees of azimuth
    assert "azimuth" in decide(0.01, 1.0, fs=50 + 40 * np.cos(half), ss=50 + 40 * np.sin(half)).reason


def test_model_twotheta_is_pyfai_s():
    """TthModel's numpy 2-theta equals pyFAI's compiled calc_tth for flat and corner detectors."""
    from pyFAI.ext import _geometry

    from peaknet_gui.calib.model import TthModel

    rng = np.random.default_rng(0)
    for g, shape in ((_two_panels(), (220, 220)), (_truth((260, 280), 90.0, (120.4, 140.2), 2.5, -40.0), (260, 280))):
        conv = to_pyfai(g, shape, 0.5)
        d1, d2 = rng.integers(0, shape[0], 300).astype(float), rng.integers(0, shape[1], 300).astype(float)
        m = TthModel(conv.integrator.detector, d1, d2)
        p = (0.09, 0.002, -0.003, 0.02, -0.01, 0.03)
        p1, p2, p3 = m._positions()
        theirs = _geometry.calc_tth(p[0], p[3], p[4], p[5], p1 - p[1], p2 - p[2], p3)
        np.testing.assert_allclose(m.tth(p), theirs, atol=1e-14, rtol=0)
