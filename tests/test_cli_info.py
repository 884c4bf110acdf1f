"""``peaknet info``: frame count, shape, dtype, panels, metadata and geometry of a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import real_file
from peaknet_gui.cli.main import main

from _sources_files import write_cxi, write_eiger_pair, write_minicbf


def _json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_info_cxi_text_and_json(tmp_path, capsys):
    path = write_cxi(tmp_path / "r.cxi", np.zeros((12, 16, 20), np.float32), energy_ev=9000.0,
                     distance_m=np.linspace(0.1, 0.111, 12))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Frames:      12" in out and "16 x 20 (ss x fs)" in out and "float32" in out
    assert "file headers" in out and f"{path} //4" in out and f"{path} //5" not in out
    rc, info = _json(capsys, ["info", str(path), "--json", "--frames", "2"])
    assert rc == 0
    assert info["frames"] == 12 and info["frame_shape"] == [16, 20] and info["dtype"] == "float32"
    assert info["dataset"] == "/entry_1/data_1/data"
    assert len(info["metadata"]) == 2 and info["metadata"][1]["event"] == f"{path} //1"
    assert info["metadata"][0]["photon_energy_ev"] == pytest.approx(9000.0)
    assert info["summary"]["detector_distance_m"]["max"] == pytest.approx(0.111)
    assert info["geometry"]["panels"] == 1 and info["geometry"]["camera_length_m"] == pytest.approx(0.1)
    assert info["panels"][0]["max_fs"] == 19


def test_info_cbf_series_with_geom(tmp_path, capsys):
    for k in range(3):
        write_minicbf(tmp_path / f"x_{k}.cbf", np.zeros((10, 14), np.int32))
    geom = tmp_path / "two.geom"
    geom.write_text("clen = 0.2\nres = 5814\nphoton_energy = 12000\n"
                    "a/min_fs = 0\na/max_fs = 6\na/min_ss = 0\na/max_ss = 9\na/corner_x = -7\na/corner_y = -5\n"
                    "a/fs = +1x\na/ss = +1y\n"
                    "b/min_fs = 7\nb/max_fs = 13\nb/min_ss = 0\nb/max_ss = 9\nb/corner_x = 1\nb/corner_y = -5\n"
                    "b/fs = +1x\nb/ss = +1y\n")
    rc, info = _json(capsys, ["info", str(tmp_path), "--geom", str(geom), "--json"])
    assert rc == 0 and info["frames"] == 3 and info["dtype"] == "int32"
    assert info["geometry"]["from"].endswith("(--geom)") and [p["name"] for p in info["panels"]] == ["a", "b"]
    assert info["metadata"][0]["beam_xy_header"] == "40.5, 30.25"


def test_info_errors_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.cxi")]) == 2
    assert "none.cxi: no such file" in capsys.readouterr().err
    path = write_cxi(tmp_path / "r.cxi", np.zeros((2, 16, 20), np.float32))
    bad = tmp_path / "bad.geom"
    bad.write_text("res = 5000\nclen = 0.1\np0/min_fs = 0\np0/max_fs = 99\np0/min_ss = 0\np0/max_ss = 15\n"
                   "p0/corner_x = 0\np0/corner_y = 0\np0/fs = +1x\np0/ss = +1y\n")
    assert main(["info", str(path), "--geom", str(bad)]) == 2
    assert "bad.geom: does not match the data" in capsys.readouterr().err


def test_info_eiger_master_with_missing_data(tmp_path, capsys):
    master, _ = write_eiger_pair(tmp_path, frames=(2,))
    (tmp_path / "series_7_data_000001.h5").unlink()
    rc, info = _json(capsys, ["info", str(master), "--json"])
    assert rc == 1
    assert info["frames"] == 0 and info["frame_shape"] == [40, 60]
    assert info["metadata"][0]["detector_distance_m"] == pytest.approx(0.125)
    assert any("series_7_data_000001.h5" in w and "missing" in w for w in info["warnings"])


def test_info_real_cspad_with_geometry(capsys):
    path = real_file("thermolysin_cspad/idx-20130301060858401_rawlayout.h5")
    geom = real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom")
    assert main(["info", str(path), "--geom", str(geom)]) == 0
    out = capsys.readouterr().out
    assert "1480 x 1552" in out and "int16" in out and "64 panel(s)" in out and "more panels" in out
