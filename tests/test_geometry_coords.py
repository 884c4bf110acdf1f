"""One coordinate convention: pixel indices, centre of the first pixel at (0, 0).

Resolution, 2-theta and lab positions are checked against hand computations; data -> lab -> data
round trips; geometry from file-header metadata.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from peaknet_gui.errors import GeometryError
from peaknet_gui.frame import FrameMetadata
from peaknet_gui.geometry import Geometry, geometry_from_metadata, pixel_map, read_geom
from tests.conftest import real_file

HC = 12398.419843320026
# thaumatin Pilatus 6M frame (README of the real data): 0.96859 A, 351.0 mm, 0.172 mm, beam (1261.61, 1306.96)
PIL = dict(shape=(2527, 2463), pixel_size_m=172e-6, distance_m=0.351, beam_center_fs=1261.61,
           beam_center_ss=1306.96, photon_energy_ev=HC / 0.96859)


def pilatus() -> Geometry:
    return Geometry.single_panel(**PIL)


@functools.lru_cache(maxsize=1)
def pilatus_map():
    return pixel_map(pilatus())


def hand_inv_d(fs, ss):
    dx = (fs - PIL["beam_center_fs"]) * 172e-6
    dy = (ss - PIL["beam_center_ss"]) * 172e-6
    twotheta = math.atan(math.hypot(dx, dy) / 0.351)
    return 2 * math.sin(twotheta / 2) / 0.96859, twotheta


def test_beam_centre_pixel_has_resolution_zero():
    g = pilatus()
    assert g.resolution(1261.61, 1306.96) == pytest.approx(0.0, abs=1e-12)
    assert g.beam_center() == pytest.approx((1261.61, 1306.96))
    x, y, z = g.lab_xyz(1261.61, 1306.96)
    assert (float(x), float(y), float(z)) == pytest.approx((0.0, 0.0, 0.351), abs=1e-15)
    # the pixel whose centre is nearest to the beam has the smallest radius in the pixel map
    pm = pilatus_map()
    ss, fs = np.unravel_index(np.argmin(pm.radius), pm.radius.shape)
    assert (fs, ss) == (1262, 1307)


@pytest.mark.parametrize("fs, ss", [(0, 0), (2462, 2526), (2000, 100), (1261, 50), (700.25, 2400.5)])
def test_resolution_and_twotheta_by_hand(fs, ss):
    g = pilatus()
    inv_d, tth = hand_inv_d(fs, ss)
    assert float(g.resolution(fs, ss)) == pytest.approx(inv_d, rel=1e-12)
    if float(fs).is_integer() and float(ss).is_integer():
        pm = pilatus_map()
        assert pm.inv_d[int(ss), int(fs)] == pytest.approx(inv_d, rel=1e-12)
        assert pm.twotheta[int(ss), int(fs)] == pytest.approx(tth, rel=1e-12)
        assert pm.resolution_a[int(ss), int(fs)] == pytest.approx(1 / inv_d, rel=1e-12)


def test_corner_pixel_numbers():
    # the first data pixel's centre is 1261.61 pixels left of and 1306.96 above the beam
    g = pilatus()
    pm = pilatus_map()
    assert pm.x[0, 0] == pytest.approx(-1261.61 * 172e-6)
    assert pm.y[0, 0] == pytest.approx(-1306.96 * 172e-6)
    assert g.panels[0].corner_x == pytest.approx(-1262.11)  # CrystFEL corner = centre - 0.5 pixel
    # a detector edge 2-theta at this geometry: max about 35 degrees at the far corner
    assert math.degrees(np.nanmax(pm.twotheta)) == pytest.approx(
        math.degrees(math.atan(math.hypot(1261.61, 1306.96) * 172e-6 / 0.351)), rel=1e-9)


def test_data_lab_data_round_trip_rotated_tilted():
    g = read_geom_text_rotated()
    rng = np.random.default_rng(3)
    for p in g.panels:
        fs = rng.uniform(p.min_fs - 0.5, p.max_fs + 0.5, 500)
        ss = rng.uniform(p.min_ss - 0.5, p.max_ss + 0.5, 500)
        x, y, _ = p.lab_xyz(fs, ss, g.clen)
        fs2, ss2 = p.fs_ss_from_lab(x * p.res, y * p.res)
        np.testing.assert_allclose(fs2, fs, atol=1e-9)
        np.testing.assert_allclose(ss2, ss, atol=1e-9)


def read_geom_text_rotated() -> Geometry:
    from peaknet_gui.geometry import parse_geom_text

    return parse_geom_text("""
photon_energy = 9000
clen = 0.2
res = 5000
a/min_fs = 0
a/max_fs = 63
a/min_ss = 0
a/max_ss = 31
a/corner_x = -70.2
a/corner_y = 10.5
a/fs = +0.8660254x +0.5y
a/ss = -0.5x +0.8660254y
b/min_fs = 0
b/max_fs = 63
b/min_ss = 32
b/max_ss = 63
b/corner_x = 40
b/corner_y = -20
b/fs = -0.0x -1.0y +0.1z
b/ss = +1.0x +0.0y
b/coffset = 0.01
""")


def test_rotated_panel_hand_position_and_distance():
    g = read_geom_text_rotated()
    a, b = g.panels
    # centre of pixel (fs=2, ss=3) of panel a: corner + 2.5*fs + 3.5*ss (pixels), z = clen
    x, y, z = a.lab_xyz(2, 3, g.clen)
    assert float(x) * 5000 == pytest.approx(-70.2 + 2.5 * 0.8660254 - 3.5 * 0.5)
    assert float(y) * 5000 == pytest.approx(10.5 + 2.5 * 0.5 + 3.5 * 0.8660254)
    assert float(z) == pytest.approx(0.2)
    # panel b is tilted (fs has a z component) and offset by coffset
    x, y, z = b.lab_xyz(10, 40, g.clen)
    assert float(x) * 5000 == pytest.approx(40 + 8.5)
    assert float(y) * 5000 == pytest.approx(-20 - 10.5)
    assert float(z) == pytest.approx(0.21 + 10.5 * 0.1 / 5000)


def test_real_cspad_resolution_by_hand(real_data):
    g = read_geom(real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"))
    p = g.panels[0]  # q0a0, pixel (fs=100, ss=50) of the slab
    u, v = 100 - p.min_fs + 0.5, 50 - p.min_ss + 0.5
    x = (p.corner_x + u * p.fs[0] + v * p.ss[0]) / p.res
    y = (p.corner_y + u * p.fs[1] + v * p.ss[1]) / p.res
    tth = math.atan2(math.hypot(x, y), 0.130107)
    lam = HC / 9742.54
    assert float(g.resolution(100, 50)) == pytest.approx(2 * math.sin(tth / 2) / lam, rel=1e-12)
    assert pixel_map(g).inv_d[50, 100] == pytest.approx(2 * math.sin(tth / 2) / lam, rel=1e-12)


def test_geometry_from_metadata():
    meta = FrameMetadata(photon_energy_ev=12660.0, detector_distance_m=0.2, pixel_size_m=75e-6,
                         beam_center_fs=1030.2, beam_center_ss=1100.7, detector="Eiger2 X 4M\nfirmware")
    g = geometry_from_metadata(meta, (2167, 2070), source="run_0001.h5")
    assert g.data_shape == (2167, 2070) and g.photon_energy_ev == 12660.0
    assert g.beam_center() == pytest.approx((1030.2, 1100.7))
    assert g.panels[0].res == pytest.approx(1 / 75e-6) and g.mean_camera_length() == 0.2
    assert g.resolution(1030.2, 1100.7) == pytest.approx(0.0, abs=1e-12)
    assert g.comments == ["; Eiger2 X 4M firmware, geometry from the file header"]
    assert g.panels[0].adu_per_photon == 1.0  # a counting detector: one count is one photon
    # energy is optional unless required
    g2 = geometry_from_metadata(FrameMetadata(detector_distance_m=0.2, pixel_size_m=75e-6, beam_center_fs=1.0,
                                              beam_center_ss=2.0), (10, 10))
    assert g2.photon_energy_ev is None
    assert g2.panels[0].adu_per_photon is None  # no detector named: the gain is unknown
    with pytest.raises(GeometryError, match="photon energy is unknown"):
        g2.resolution(0, 0)


@pytest.mark.parametrize("name, counting", [("PILATUS3 6M, S/N 60-0119", True), ("Dectris EIGER2 X 16M", True),
                                            ("pilatus 2M", True), ("Rayonix MX340-HS", False), ("CSPAD", False),
                                            ("JUNGFRAU 4M", False), (None, False)])
def test_photon_counting_detectors_by_name(name, counting):
    from peaknet_gui.geometry.from_metadata import counts_photons

    assert counts_photons(name) is counting
    meta = FrameMetadata(detector_distance_m=0.2, pixel_size_m=75e-6, beam_center_fs=1.0, beam_center_ss=2.0,
                         detector=name)
    assert geometry_from_metadata(meta, (10, 10)).panels[0].adu_per_photon == (1.0 if counting else None)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(pixel_size_m=None), ["run.cbf", "missing pixel size"]),
        (dict(detector_distance_m=None, beam_center_ss=None),
         ["missing detector distance, beam centre (slow-scan)"]),
        (dict(pixel_size_m=-1e-4), ["invalid pixel size = -0.0001"]),
        (dict(detector_distance_m=float("nan")), ["invalid detector distance"]),
    ],
)
def test_geometry_from_metadata_errors(kwargs, words):
    base = dict(photon_energy_ev=12000.0, detector_distance_m=0.2, pixel_size_m=75e-6, beam_center_fs=5.0,
                beam_center_ss=5.0)
    base.update(kwargs)
    with pytest.raises(GeometryError) as ei:
        geometry_from_metadata(FrameMetadata(**base), (10, 10), source="run.cbf")
    for w in words:
        assert w in str(ei.value)
    assert ".geom" in str(ei.value)


def test_geometry_from_metadata_requires_energy_when_asked():
    meta = FrameMetadata(detector_distance_m=0.2, pixel_size_m=75e-6, beam_center_fs=5.0, beam_center_ss=5.0)
    with pytest.raises(GeometryError, match="missing photon energy"):
        geometry_from_metadata(meta, (10, 10), require_energy=True)
    with pytest.raises(GeometryError, match="shape"):
        geometry_from_metadata(meta, (10,))


def test_per_frame_values_from_data_file_paths():
    from peaknet_gui.geometry import parse_geom_text

    g = parse_geom_text("clen = /LCLS/detector_1/EncoderValue\nphoton_energy = /LCLS/photon_energy_eV\n"
                        "res = 5000\np/min_fs = 0\np/max_fs = 9\np/min_ss = 0\np/max_ss = 9\n"
                        "p/corner_x = -5\np/corner_y = -5\np/coffset = 0.01\n", source="lcls.geom")
    with pytest.raises(GeometryError, match=r"lcls\.geom: camera length .* /LCLS/detector_1/EncoderValue"):
        pixel_map(g)
    with pytest.raises(GeometryError, match="photon energy is unknown"):
        g.wavelength_a()
    r = g.with_values(clen=0.09, photon_energy_ev=9000.0)
    assert g.clen_path == "/LCLS/detector_1/EncoderValue"  # the original is untouched
    x, y, z = r.lab_xyz(9, 9)
    assert float(z) == pytest.approx(0.1)  # clen + coffset
    # centre of pixel 9: corner -5 + 9.5 pixels = 4.5 pixels = 0.9 mm from the beam in x and y
    tth = math.atan(math.hypot(4.5, 4.5) / 5000 / 0.1)
    assert float(r.resolution(9, 9)) == pytest.approx(2 * math.sin(tth / 2) / (HC / 9000.0), rel=1e-12)
