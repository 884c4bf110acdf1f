"""Run sources on the real detector frames of ../shared/data/real (skipped when absent).

Expected values are those of the README there.  Beam centres: miniCBF ``Beam_xy`` and NeXus
``beam_center_x/y`` are detector coordinates whose origin is the first pixel's corner (dxtbx's
reading), so the program's pixel-index beam centre is the README value minus 0.5; the full imgCIF
axis model of the I03 file refers displacements to pixel centres and gives the README value as is.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import real_file
from peaknet_gui.errors import InputError
from peaknet_gui.geometry.crystfel_geom import read_geom
from peaknet_gui.sources import open_run
from peaknet_gui.sources.hdf5 import HDF5Source

HC = 12398.419843320026


def test_thaumatin_pilatus6m_cbf_bz2():
    path = real_file("thaumatin_grid/thau_3_2_0001.cbf.bz2")
    with open_run(path) as src:
        assert len(src) == 1 and src.frame_shape() == (2527, 2463) and src.raw_dtype() == "int32"
        fr = src[0]
        md = fr.metadata
    assert fr.data.shape == (2527, 2463) and fr.data.dtype == np.float32
    assert md.wavelength_a == pytest.approx(0.96859)
    assert md.detector_distance_m == pytest.approx(0.351)
    assert md.pixel_size_m == pytest.approx(172e-6)
    assert (md.beam_center_fs, md.beam_center_ss) == pytest.approx((1261.61 - 0.5, 1306.96 - 0.5))
    # Pilatus 6M: 5 x 12 modules of 195 x 487 with gaps of 7 (fs) and 17 (ss) pixels reading -1
    gap_col = 487  # first column of the first vertical gap
    gap_row = 195
    assert fr.bad[:, gap_col:gap_col + 7].all() and fr.bad[gap_row:gap_row + 17, :].all()
    assert not fr.bad[100:190, 100:480].all()
    assert (fr.data[fr.bad] == 0).all() and fr.data.min() >= 0


def test_thaumatin_series_from_directory():
    d = real_file("thaumatin_grid")
    with open_run(str(d)) as src:
        assert len(src) == 12
        assert src.event(0).path.endswith("thau_3_2_0001.cbf.bz2")
        assert src.event(11).path.endswith("thau_3_2_0017.cbf.bz2")
        assert src.metadata(11).wavelength_a == pytest.approx(0.96859)


def test_l_cysteine_pilatus2m_cbf():
    d = real_file("l_cysteine")
    with open_run(str(d / "l-cyst_01_0000*.cbf")) as src:
        assert len(src) == 2 and src.frame_shape() == (1679, 1475)
        fr = src[1]
        md = fr.metadata
    assert md.wavelength_a == pytest.approx(0.6889)
    assert md.detector_distance_m == pytest.approx(0.160)
    assert md.pixel_size_m == pytest.approx(172e-6)
    assert (md.beam_center_fs, md.beam_center_ss) == pytest.approx((730 - 0.5, 865 - 0.5))
    assert md.extra["detector_2theta_deg"] == 30.0
    assert md.extra["cif_detector_tilt_deg"] == pytest.approx(30.0)


def test_i03_full_imgcif_gz():
    path = real_file("image_examples/DLS_I03_smargon_0001.cbf.gz")
    with open_run(path) as src:
        assert src.frame_shape() == (2527, 2463)
        fr = src[0]
        md = fr.metadata
    assert md.wavelength_a == pytest.approx(0.97625)
    assert md.detector_distance_m == pytest.approx(0.29147)
    assert md.pixel_size_m == pytest.approx(172e-6)
    assert md.beam_center_fs == pytest.approx(1229.30, abs=0.01)
    assert md.beam_center_ss == pytest.approx(1200.47, abs=0.01)
    assert md.extra["geometry_source"] == "imgCIF axes"
    assert fr.bad.sum() > 400_000  # gaps of a 6M


def test_i23_pilatus12m_gz():
    path = real_file("image_examples/DLS_I23_P12M_thau_00001.cbf.gz")
    with open_run(path) as src:
        assert src.frame_shape() == (5071, 2463) and src.raw_dtype() == "int32"
        fr = src[0]
        md = fr.metadata
    assert md.wavelength_a == pytest.approx(2.7552)
    assert md.detector_distance_m == pytest.approx(0.010)  # the header's placeholder (README: 248.7 mm)
    assert "placeholder" in md.extra["metadata_notes"]
    assert (md.beam_center_fs, md.beam_center_ss) == pytest.approx((1080 - 0.5, 2595 - 0.5))
    assert fr.data.shape == (5071, 2463)


def test_eiger_master_metadata_without_its_data_files():
    path = real_file("image_examples/dectris_eiger_master.h5")
    with pytest.raises(InputError, match=r"dectris_eiger_data_000001\.h5.*missing"):
        open_run(path)
    src = HDF5Source(path, require_data=False)
    try:
        assert len(src) == 0 and src.frame_shape() == (3269, 3110)
        md = src.metadata(0)
        assert md.wavelength_a == pytest.approx(HC / 12650.0, rel=1e-5)
        assert md.detector_distance_m == pytest.approx(0.134255, rel=1e-6)
        assert md.pixel_size_m == pytest.approx(75e-6)
        assert md.beam_center_fs == pytest.approx(1607.415 - 0.5, abs=1e-3)
        assert md.beam_center_ss == pytest.approx(1586.4314 - 0.5, abs=1e-3)
        assert md.detector == "Dectris Eiger 9M"
        assert md.exposure_time_s == pytest.approx(0.00499)
    finally:
        src.close()


def test_cspad_raw_layout_with_its_geometry():
    path = real_file("thermolysin_cspad/idx-20130301060858401_rawlayout.h5")
    geom = read_geom(real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"))
    with open_run(path, geometry=geom) as src:
        assert src.dataset == "/data/data" and src.raw_dtype() == "int16"
        assert src.frame_shape() == (1480, 1552)
        assert src.geometry() is geom and len(geom.panels) == 64
        fr = src[0]
    assert fr.event.index is None
    assert fr.data.shape == (1480, 1552) and fr.data.dtype == np.float32
    assert fr.data.min() < 0  # dark-subtracted CSPAD values stay (not flagged bad)
    assert not fr.bad.any()
    assert fr.metadata.wavelength_a == pytest.approx(1.272607)


def test_agbh_nexus_nxsas():
    path = real_file("agbh_pilatus100k/AgBehenate_228.hdf5")
    with open_run(path) as src:
        assert src.dataset == "/entry/data/data" and src.frame_shape() == (195, 487)
        assert src.raw_dtype() == "int32"
        fr = src[0]
        md = fr.metadata
    assert md.wavelength_a == pytest.approx(0.73363, abs=1e-5)
    assert md.detector_distance_m == pytest.approx(0.5138)  # unit-less mm
    assert md.pixel_size_m == pytest.approx(172e-6)
    # What the file says: beam_center_x = 14.76792 mm -> 85.86 px along fs.  The README notes the
    # file's x/y labels are swapped (the true centre is fs -5.42, ss 85.86); we report the file.
    assert md.beam_center_fs == pytest.approx(85.86 - 0.5, abs=0.01)
    assert md.beam_center_ss == pytest.approx(-5.42 - 0.5, abs=0.01)
    assert "no units" in md.extra["metadata_notes"]
