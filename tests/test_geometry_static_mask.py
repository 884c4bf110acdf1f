"""Bad pixels from the geometry (peaknet_gui.geometry.static_mask), CrystFEL 0.12 semantics."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from peaknet_gui.errors import GeometryError
from peaknet_gui.geometry import geometry_bad_mask, parse_geom_text, read_geom
from tests.conftest import real_file

SINGLE = """\
photon_energy = 9000
clen = 0.1
res = 10000
p/min_fs = 0
p/max_fs = 19
p/min_ss = 0
p/max_ss = 14
p/corner_x = -5.5
p/corner_y = -5.5
p/fs = +1.0x +0.0y
p/ss = +0.0x +1.0y
"""


def test_xy_region_uses_pixel_corners_strictly():
    geom = parse_geom_text(SINGLE + "bad_bs/min_x = -2\nbad_bs/max_x = 2\nbad_bs/min_y = -2\nbad_bs/max_y = 2\n")
    bad = geometry_bad_mask(geom, (15, 20))
    # corner of pixel fs is at x = fs - 5.5; strictly inside (-2, 2) for fs = 4..7, same for ss
    expected = np.zeros((15, 20), bool)
    expected[4:8, 4:8] = True
    np.testing.assert_array_equal(bad, expected)


def test_fsss_region_no_index_and_uncovered_pixels():
    text = SINGLE.replace("p/max_ss = 14", "p/max_ss = 9") + """\
q/min_fs = 0
q/max_fs = 19
q/min_ss = 10
q/max_ss = 14
q/corner_x = -5.5
q/corner_y = 10
q/no_index = 1
bad_col/panel = p
bad_col/min_fs = 3
bad_col/max_fs = 3
bad_col/min_ss = 2
bad_col/max_ss = 7
"""
    geom = parse_geom_text(text)
    bad = geometry_bad_mask(geom, (17, 22))  # data larger than the geometry
    assert bad[10:15, 0:20].all()  # no_index panel q
    assert bad[15:, :].all() and bad[:, 20:].all()  # no panel covers these
    expected_p = np.zeros((10, 20), bool)
    expected_p[2:8, 3] = True
    np.testing.assert_array_equal(bad[0:10, 0:20], expected_p)


def test_mask_file_good_and_bad_bits(tmp_path):
    values = np.array([[0, 1, 2, 3, 4, 6]] * 15, dtype=np.uint16)
    values = np.tile(values, (1, 4))[:, :20]
    with h5py.File(tmp_path / "mask.h5", "w") as f:
        f["/m/pixels"] = values
    text = "mask_file = mask.h5\nmask = /m/pixels\nmask_good = 0x2\nmask_bad = 0x1\n" + SINGLE
    gpath = tmp_path / "det.geom"
    gpath.write_text(text)
    geom = read_geom(gpath)
    bad = geometry_bad_mask(geom, (15, 20))
    # bad when (v & good) != good or (v & bad): 0 bad, 1 bad, 2 good, 3 bad, 4 bad, 6 good
    lut = {0: True, 1: True, 2: False, 3: True, 4: True, 6: False}
    np.testing.assert_array_equal(bad, np.vectorize(lut.get)(values))
    # include_masks=False ignores the file
    assert not geometry_bad_mask(geom, (15, 20), include_masks=False).any()
    # CrystFEL 0.9 style: mask_good/mask_bad at the end of the file apply to all panels
    gpath.write_text("mask_file = mask.h5\nmask = /m/pixels\n" + SINGLE + "mask_good = 0x2\nmask_bad = 0x1\n")
    np.testing.assert_array_equal(geometry_bad_mask(read_geom(gpath), (15, 20)), bad)


def test_mask_in_data_file_per_frame(tmp_path):
    masks = np.zeros((3, 15, 20), np.uint8)
    masks[1, 4, 5] = 1
    with h5py.File(tmp_path / "run.cxi", "w") as f:
        f["/entry_1/data_1/mask"] = masks
    geom = parse_geom_text("mask = /entry_1/data_1/mask\nmask_bad = 0x1\n" + SINGLE)
    assert not geometry_bad_mask(geom, (15, 20)).any()  # no data file: per-frame masks skipped
    bad = geometry_bad_mask(geom, (15, 20), data_file=tmp_path / "run.cxi", event=1)
    assert bad.sum() == 1 and bad[4, 5]
    assert not geometry_bad_mask(geom, (15, 20), data_file=tmp_path / "run.cxi", event=0).any()
    with pytest.raises(GeometryError, match="a frame index is needed"):
        geometry_bad_mask(geom, (15, 20), data_file=tmp_path / "run.cxi")
    with pytest.raises(GeometryError, match="frame 5 out of range"):
        geometry_bad_mask(geom, (15, 20), data_file=tmp_path / "run.cxi", event=5)


def test_mask_errors(tmp_path):
    geom = parse_geom_text("mask_file = nowhere.h5\nmask = /m\n" + SINGLE, source=str(tmp_path / "g.geom"))
    with pytest.raises(GeometryError, match=r"nowhere\.h5: file not found"):
        geometry_bad_mask(geom, (15, 20))
    with h5py.File(tmp_path / "small.h5", "w") as f:
        f["/m"] = np.zeros((5, 5), np.uint8)
        f["/g"] = np.zeros(3)
    geom = parse_geom_text(f"mask_file = {tmp_path / 'small.h5'}\nmask = /m\n" + SINGLE, source="g.geom")
    with pytest.raises(GeometryError, match=r"g\.geom: mask .*small\.h5:/m has shape \(5, 5\), too small for panel p"):
        geometry_bad_mask(geom, (15, 20))
    geom = parse_geom_text(f"mask_file = {tmp_path / 'small.h5'}\nmask = /nope\n" + SINGLE, source="g.geom")
    with pytest.raises(GeometryError, match="no dataset /nope"):
        geometry_bad_mask(geom, (15, 20))
    geom = parse_geom_text("mask_file = x.h5\nmask_bad = 0x1\n" + SINGLE, source="g.geom")
    with pytest.raises(GeometryError, match="mask file x.h5 given but no mask dataset"):
        geometry_bad_mask(geom, (15, 20))
    # bits without any mask (common in old files) are harmless
    geom = parse_geom_text("mask_good = 0x0\nmask_bad = 0xffff\n" + SINGLE, source="g.geom")
    assert not geometry_bad_mask(geom, (15, 20)).any()
    geom = parse_geom_text(SINGLE, source="g.geom")
    with pytest.raises(GeometryError, match=r"g\.geom.*15x20"):
        geometry_bad_mask(geom, (10, 20))


def test_real_cspad_has_no_static_bad_pixels(real_data):
    geom = read_geom(real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"))
    bad = geometry_bad_mask(geom, (1480, 1552))
    assert bad.shape == (1480, 1552) and not bad.any()
    geom.panels[5].no_index = True
    bad = geometry_bad_mask(geom, (1480, 1552))
    assert bad.sum() == 185 * 194 and bad[geom.panels[5].slices()].all()
