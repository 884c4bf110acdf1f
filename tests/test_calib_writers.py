"""Calibrated geometry written as CrystFEL .geom and pyFAI .poni, and read back."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from peaknet_gui.calib.geometry_convert import to_pyfai
from peaknet_gui.calib.refine import calibrate
from peaknet_gui.calib.writers import (
    calibrated_geometry_for_file, geometry_from_poni, read_poni, write_calibrated_geom, write_poni, write_result_poni,
)
from peaknet_gui.errors import InputError
from peaknet_gui.geometry.crystfel_geom import parse_geom_text, read_geom
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.geometry.pixelmap import pixel_map
from peaknet_gui.sim.powder import simulate_calibrant_frame

PIX = 172e-6


@pytest.fixture(scope="module")
def result():
    true = Geometry.single_panel((195, 487), PIX, 0.5, -5.42, 85.86)
    frame = simulate_calibrant_frame(true, "AgBh", 0.73363, seed=4)
    start = parse_geom_text(
        "; beamline geometry\nphoton_energy = 16900\nclen = 0.46\ndata = /entry/data/data\n\n"
        "p0/min_fs = 0\np0/max_fs = 486\np0/min_ss = 0\np0/max_ss = 194\np0/corner_x = -20\np0/corner_y = -70\n"
        "p0/fs = +1x\np0/ss = +1y\np0/res = 5813.953488\n", source="start.geom")
    return calibrate(frame.data, start, "AgBh", 0.73363, bad=frame.bad)


def test_geom_written_and_read_back(result, tmp_path):
    path = write_calibrated_geom(result, tmp_path / "calibrated.geom")
    text = path.read_text()
    assert "calibrated on AgBh" in text and "data = /entry/data/data" in text
    g = read_geom(path)
    assert g.beam_center(0) == pytest.approx(result.beam_center, abs=1e-6)
    assert g.clen == pytest.approx(result.distance_m, rel=1e-9)
    assert g.photon_energy_ev == pytest.approx(12398.419843320026 / 0.73363)
    assert [p.name for p in tmp_path.iterdir()] == ["calibrated.geom"]  # no temporary files left


def test_poni_written_and_read_back(result, tmp_path):
    path = write_result_poni(result, tmp_path / "calibrated.poni")
    ai = read_poni(path)
    bc = result.beam_center
    assert ai.poni2 == pytest.approx((bc[0] + 0.5) * PIX, abs=1e-10)
    assert ai.poni1 == pytest.approx((bc[1] + 0.5) * PIX, abs=1e-10)
    assert ai.dist == pytest.approx(result.distance_m, rel=1e-9)
    assert ai.wavelength == pytest.approx(0.73363e-10)
    g = geometry_from_poni(path)
    assert g.beam_center(0) == pytest.approx(bc, abs=1e-6) and g.clen == pytest.approx(result.distance_m)
    # same pixel 2-theta from the .poni (pyFAI) as from the .geom (project)
    write_calibrated_geom(result, tmp_path / "c.geom")
    tth_geom = pixel_map(read_geom(tmp_path / "c.geom"), (195, 487)).twotheta
    np.testing.assert_allclose(ai.center_array((195, 487), unit="2th_rad", scale=False), tth_geom, atol=5e-8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.geom", "calibrated.poni"]


def test_energy_path_kept_in_geom(result, tmp_path):
    start = result.start_geometry.copy()
    start.photon_energy_ev, start.photon_energy_path = None, "/entry/instrument/monochromator/energy"
    g = calibrated_geometry_for_file(result, start)
    assert g.photon_energy_path == "/entry/instrument/monochromator/energy" and g.photon_energy_ev is None


def test_tilted_geometry_round_trip(tmp_path):
    g = Geometry.single_panel((120, 160), 100e-6, 0.2, 70.0, 60.0, photon_energy_ev=10000.0)
    rot = Rotation.from_euler("xyz", [2.0, -1.0, 0.0], degrees=True).as_matrix()
    g.panels[0].fs, g.panels[0].ss = tuple(rot @ [1, 0, 0]), tuple(rot @ [0, 1, 0])
    conv = to_pyfai(g, (120, 160))
    write_poni(conv, tmp_path / "t.poni")
    back = geometry_from_poni(tmp_path / "t.poni")
    np.testing.assert_allclose(pixel_map(back, (120, 160)).twotheta, pixel_map(g, (120, 160)).twotheta, atol=5e-8)


def test_multi_panel_poni_carries_its_detector(tmp_path):
    panels = [
        Panel("a", 0, 99, 0, 49, corner_x=-120.0, corner_y=-60.0, res=1 / PIX, clen=None),
        Panel("b", 0, 99, 50, 99, corner_x=-10.0, corner_y=5.0, res=1 / PIX, clen=None, coffset=0.002),
    ]
    g = Geometry(panels=panels, clen=0.1, photon_energy_ev=12000.0)
    write_poni(to_pyfai(g, (100, 100)), tmp_path / "m.poni")
    assert (tmp_path / "m_detector.h5").is_file()
    ai = read_poni(tmp_path / "m.poni")
    np.testing.assert_allclose(ai.center_array((100, 100), unit="2th_rad", scale=False), pixel_map(g).twotheta, atol=5e-8)


def test_bad_poni(tmp_path):
    with pytest.raises(InputError, match="no such"):
        read_poni(tmp_path / "missing.poni")
    (tmp_path / "bad.poni").write_text("Distance: banana\nPoni1: [\n")
    with pytest.raises(InputError, match="bad.poni"):
        read_poni(tmp_path / "bad.poni")
