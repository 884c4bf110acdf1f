"""Azimuthal integration through pyFAI with the project's geometry (peaknet_gui.calib.integrate)."""

import numpy as np
import pytest

from peaknet_gui.calib.calibrants import ring_table
from peaknet_gui.calib.integrate import FrameIntegrator, integrate_frame
from peaknet_gui.errors import CalibrationError, InputError
from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.geometry.detector import Geometry
from peaknet_gui.sim.powder import simulate_calibrant_frame

PIX = 172e-6


@pytest.fixture(scope="module")
def calframe():
    g = Geometry.single_panel((256, 256), PIX, 0.25, 127.3, 130.8)
    return simulate_calibrant_frame(g, "AgBh", 1.0, peak_photons=300, seed=1)


def _peaks(x, y, n):
    from scipy.signal import find_peaks

    p, _ = find_peaks(np.nan_to_num(y), prominence=np.nanmax(y) * 0.05)
    return x[p][:n]


def test_profile_peaks_at_ring_q_2theta_d(calframe):
    integ = FrameIntegrator(calframe.geometry, calframe.data.shape, 1.0)
    prof = integ.profile(calframe.data, bad=calframe.bad, npt=600)
    table = ring_table("AgBh", 1.0)
    found = _peaks(prof.q, prof.intensity, 4)
    assert len(found) == 4
    np.testing.assert_allclose(found, table.q_inv_a[:4], atol=1.5 * np.diff(prof.q).mean())
    # the same bins on the other axes
    np.testing.assert_allclose(prof.d_a, 2 * np.pi / prof.q)
    np.testing.assert_allclose(prof.twotheta_rad, 2 * np.arcsin(prof.q / (4 * np.pi)))
    prof2 = integ.profile(calframe.data, bad=calframe.bad, npt=600, unit="2th_deg")
    found2 = _peaks(prof2.twotheta_deg, prof2.intensity, 4)
    np.testing.assert_allclose(found2, np.rad2deg(table.twotheta_rad[:4]), atol=1.5 * np.diff(prof2.radial).mean())


def test_masked_pixels_do_not_count(calframe):
    integ = FrameIntegrator(calframe.geometry, calframe.data.shape, 1.0)
    clean = integ.profile(calframe.data, npt=300)
    spoiled = calframe.data.copy()
    user_mask = np.zeros(spoiled.shape, bool)
    user_mask[:, :40] = True
    spoiled[user_mask] = 1e9
    spoiled[5, 200] = np.nan
    masked = integ.profile(spoiled, npt=300, mask=user_mask)
    assert np.nanmax(masked.intensity) < 1e5
    ok = np.isfinite(clean.intensity) & np.isfinite(masked.intensity) & (clean.count > 200)
    np.testing.assert_allclose(masked.intensity[ok], clean.intensity[ok], rtol=0.25)
    unmasked = integ.profile(spoiled, npt=300, bad=np.isnan(spoiled))
    assert np.nanmax(unmasked.intensity) > 1e6


def test_frame_input_uses_frame_bad_and_metadata(calframe):
    frame = Frame(calframe.data, EventId("sim.h5", 0), 0, FrameMetadata(photon_energy_ev=12398.419843320026),
                  bad=calframe.bad)
    prof = integrate_frame(frame, calframe.geometry, npt=300)
    assert prof.wavelength_a == pytest.approx(1.0)
    assert np.nanmax(prof.intensity) > 10


def test_errors(calframe):
    integ = FrameIntegrator(calframe.geometry, calframe.data.shape, 1.0)
    with pytest.raises(InputError, match="shape"):
        integ.profile(np.zeros((10, 10)))
    with pytest.raises(CalibrationError, match="masked"):
        integ.profile(calframe.data, mask=np.ones(calframe.data.shape, bool))
    with pytest.raises(CalibrationError, match="unit"):
        integ.profile(calframe.data, unit="furlongs")
    with pytest.raises(CalibrationError, match="wavelength"):
        FrameIntegrator(Geometry.single_panel((20, 20), PIX, 0.1, 10, 10))
