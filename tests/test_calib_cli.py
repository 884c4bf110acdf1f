"""``peaknet calibrate`` end to end on simulated files and the real Pilatus 100K AgBh frame."""

import json

import h5py
import numpy as np
import pytest

from tests.conftest import real_file
from peaknet_gui.cli.main import main
from peaknet_gui.geometry.crystfel_geom import read_geom
from peaknet_gui.geometry.detector import Geometry
from peaknet_gui.sim.powder import simulate_calibrant_frame

PIX = 172e-6


@pytest.fixture(scope="module")
def agbh_h5(tmp_path_factory):
    true = Geometry.single_panel((195, 487), PIX, 0.45, -8.3, 97.4)
    frame = simulate_calibrant_frame(true, "AgBh", 0.8, seed=9, peak_photons=500)
    path = tmp_path_factory.mktemp("cal") / "agbh.h5"
    with h5py.File(path, "w") as f:
        f["entry/data/data"] = np.where(frame.bad, -1, frame.data).astype(np.int32)
        f["entry/instrument/monochromator/wavelength"] = [0.8]
    return path, true


def test_calibrate_h5(agbh_h5, tmp_path, capsys):
    path, true = agbh_h5
    out = tmp_path / "out"
    rc = main(["calibrate", str(path), "--calibrant", "AgBh", "--distance", "420", "--beam-center", "10", "80",
               "--pixel-size", "0.172", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "beam centre" in text and "distance" in text and "residual" in text and "rings used" in text
    summary = json.loads((out / "calibration.json").read_text())
    assert summary["wavelength_a"] == pytest.approx(0.8)  # from the NeXus file
    assert abs(summary["beam_center_fs"] - true.beam_center()[0]) < 0.5
    assert abs(summary["beam_center_ss"] - true.beam_center()[1]) < 0.5
    assert summary["distance_mm"] == pytest.approx(450.0, rel=0.005)
    g = read_geom(out / "calibrated.geom")
    assert g.beam_center() == pytest.approx((summary["beam_center_fs"], summary["beam_center_ss"]))
    assert (out / "calibrated.poni").is_file()


def test_calibrate_cbf_with_geom_and_tilt(tmp_path, capsys):
    import fabio.cbfimage

    true = Geometry.single_panel((256, 240), PIX, 0.2, 118.4, 131.2)
    frame = simulate_calibrant_frame(true, "AgBh", 1.0, seed=3)
    cbf = tmp_path / "agbh_0001.cbf"
    fabio.cbfimage.CbfImage(data=frame.data.astype(np.int32)).write(str(cbf))
    start = Geometry.single_panel((256, 240), PIX, 0.21, 128.0, 120.0)
    from peaknet_gui.geometry.crystfel_geom import write_geom

    write_geom(start, tmp_path / "start.geom")
    rc = main(["calibrate", str(cbf), "--energy", "12.398419843320026", "--geom", str(tmp_path / "start.geom"),
               "--fit-tilt", "--out", str(tmp_path / "o")])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "PONI (pyFAI)" in text and "direct-beam centre" in text and "rot1" in text
    s = json.loads((tmp_path / "o" / "calibration.json").read_text())
    # --fit-tilt keeps the refined tilt even where the rings barely determine it (said so)
    assert s["tilt_status"].startswith("fitted") and s["uncertainty"]["sigma_tilt_deg"] > 0
    assert set(s["uncertainty"]["refined"]) == {"dist", "poni1", "poni2", "rot1", "rot2"}
    assert abs(s["beam_center_fs"] - 118.4) < 0.5 and abs(s["beam_center_ss"] - 131.2) < 0.5


def test_too_few_rings_message(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "blank.h5"
    with h5py.File(path, "w") as f:
        f["data/data"] = rng.poisson(4.0, size=(128, 128)).astype(np.int32)
    rc = main(["calibrate", str(path), "--wavelength", "1.0", "--distance", "200", "--pixel-size", "0.172",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "blank.h5" in err and "ring" in err
    assert not (tmp_path / "o" / "calibrated.geom").exists()


def test_missing_inputs_messages(agbh_h5, tmp_path, capsys):
    path, _ = agbh_h5
    assert main(["calibrate", str(tmp_path / "nope.h5"), "--wavelength", "1", "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["calibrate", str(path), "--beam-center", "0", "80", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--pixel-size" in err and "--distance" in err
    assert main(["calibrate", str(path), "--energy", "8.45", "--distance", "450", "--pixel-size", "0.172",
                 "--beam-center", "-8", "97", "--out", str(tmp_path)]) == 2
    assert "energy" in capsys.readouterr().err


def test_real_pilatus100k_agbh(tmp_path, capsys):
    """README: lambda 0.73363 A, 513.8 mm, 0.172 mm, beam centre (fs, ss) = (-5.42, 85.86), off the detector."""
    path = real_file("agbh_pilatus100k/AgBehenate_228.hdf5")
    rc = main(["calibrate", str(path), "--wavelength", "0.73363", "--distance", "470", "--beam-center", "20", "60",
               "--pixel-size", "0.172", "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr()
    s = json.loads((tmp_path / "calibration.json").read_text())
    assert abs(s["beam_center_fs"] - (-5.42)) < 0.5 and abs(s["beam_center_ss"] - 85.86) < 0.5
    assert s["distance_mm"] == pytest.approx(513.8, rel=0.005)
    assert s["residual_px"] < 0.3 and len(s["rings_used"]) >= 8
