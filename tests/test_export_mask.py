"""mask.h5 and its geometry lines: the stated polarity (1 = bad; goodbits 0x0, badbits 0x1)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.export.mask_h5 import mask_geom_lines, mask_geometry, read_mask_h5, write_mask_h5
from peaknet_gui.geometry import Geometry
from peaknet_gui.geometry.crystfel_geom import format_geom_text, parse_geom_text


def crystfel_bad(values, goodbits, badbits):
    """CrystFEL's rule (crystfel_geometry(5), image-hdf5.c): missing a good bit or having a bad bit."""
    values = values.astype(np.int64)
    return ((values & goodbits) != goodbits) | ((values & badbits) != 0)


def test_mask_file_polarity_is_explicit_and_matches_crystfels_rule(tmp_path):
    mask = np.zeros((20, 30), dtype=bool)
    mask[2, 3] = mask[10, 0:5] = True
    counts = mask.astype(np.uint32) * 7
    write_mask_h5(tmp_path / "mask.h5", mask, counts=counts, n_frames=10, fraction=0.5)
    with h5py.File(tmp_path / "mask.h5", "r") as f:
        ds = f["/mask"]
        assert ds.dtype == np.uint16 and ds.shape == (20, 30)
        assert ds.attrs["polarity"] == "bad_nonzero" and ds.attrs["mask_good"] == 0 and ds.attrs["mask_bad"] == 1
        values = ds[()]
        assert set(np.unique(values)) == {0, 1} and values[2, 3] == 1 and values[0, 0] == 0
        np.testing.assert_array_equal(crystfel_bad(values, 0x0, 0x1), mask)
        assert f["/counts"].attrs["n_frames"] == 10 and f["/counts"][2, 3] == 7
    np.testing.assert_array_equal(read_mask_h5(tmp_path / "mask.h5"), mask)


def test_the_program_static_mask_reader_gets_the_same_pixels(tmp_path):
    static = pytest.importorskip("peaknet_gui.masks.static")
    mask = np.zeros((20, 30), dtype=bool)
    mask[:15, :] = True  # a majority of bad pixels: only the attribute can tell the polarity
    write_mask_h5(tmp_path / "mask.h5", mask)
    np.testing.assert_array_equal(static.read_mask_file(tmp_path / "mask.h5"), mask)


def test_mask_geometry_lines_come_before_the_panels_and_keep_existing_masks():
    g = Geometry.single_panel((20, 30), 75e-6, 0.1, 15.0, 10.0, photon_energy_ev=9000.0)
    g.globals.update({"data": "/entry/data/data", "dim0": "%", "dim1": "ss", "dim2": "fs",
                      "mask": "/entry/instrument/detector/pixel_mask", "mask_file": "/det/pixel_mask.h5",
                      "mask_good": "0x1"})
    out, slot = mask_geometry(g, "mask.h5")
    assert slot == 1
    text = format_geom_text(out)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith(";")]
    first_panel = next(i for i, ln in enumerate(lines) if "/" in ln.split("=")[0])
    for expected in mask_geom_lines("/mask", "mask.h5", slot=1):
        assert expected in lines[:first_panel]
    assert mask_geom_lines("/mask", "mask.h5") == ["mask = /mask", "mask_file = mask.h5", "mask_good = 0x0",
                                                   "mask_bad = 0x1"]
    assert "mask = /entry/instrument/detector/pixel_mask" in lines  # the detector's own mask stays
    back = parse_geom_text(text)
    assert back.panels[0].extra["mask1_data"] == "/mask" and back.panels[0].extra["mask1_badbits"] == "0x1"
    plain = Geometry.single_panel((20, 30), 75e-6, 0.1, 15.0, 10.0)
    assert mask_geometry(plain, "m.h5")[1] == 0


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_mask_h5(tmp_path / "none.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="no dataset /mask"):
        read_mask_h5(tmp_path / "other.h5")
    from peaknet_gui.errors import ExportError

    with pytest.raises(ExportError, match="2-D"):
        write_mask_h5(tmp_path / "m.h5", np.zeros((2, 3, 4), bool))
