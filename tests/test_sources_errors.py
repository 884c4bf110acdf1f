"""Bad input to the run sources: each problem is an InputError naming the file and the problem."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.sources import list_image_datasets, open_run

from _sources_files import write_cxi, write_minicbf


def test_missing_paths(tmp_path):
    with pytest.raises(InputError, match=r"nope\.h5: no such file"):
        open_run(tmp_path / "nope.h5")
    with pytest.raises(InputError, match=r"nope\.cbf: no such file.*directory .*gone does not exist"):
        open_run(tmp_path / "gone" / "nope.cbf")
    with pytest.raises(InputError, match=r"missing\.cbf: no such file"):
        open_run([tmp_path / "missing.cbf", tmp_path / "missing2.cbf"])
    with pytest.raises(InputError, match="no input files"):
        open_run([])
    with pytest.raises(InputError, match=r"img_\*\.cbf: no such directory .*gone"):
        open_run(str(tmp_path / "gone" / "img_*.cbf"))


def test_empty_garbage_and_truncated_hdf5(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.h5.*empty file"):
        open_run(tmp_path / "empty.h5")
    (tmp_path / "text.h5").write_text("hello\n" * 100)
    with pytest.raises(InputError, match=r"text\.h5.*not an HDF5 file"):
        open_run(tmp_path / "text.h5")
    good = write_cxi(tmp_path / "good.cxi", np.ones((6, 64, 64), np.float32))
    content = good.read_bytes()
    for frac in (0.3, 0.9):
        cut = tmp_path / f"cut{int(frac * 10)}.cxi"
        cut.write_bytes(content[: int(len(content) * frac)])
        with pytest.raises(InputError, match=rf"cut{int(frac * 10)}\.cxi.*(corrupt|truncated)"):
            src = open_run(cut)
            for i in range(len(src)):
                src[i]


def test_corrupt_chunk_in_hdf5(tmp_path):
    data = np.random.default_rng(0).poisson(9.0, (3, 64, 64)).astype(np.float32)
    path = write_cxi(tmp_path / "z.cxi", data, compression={"compression": "gzip", "compression_opts": 1}, labels=False)
    with h5py.File(path, "r") as f:
        off = f["/entry_1/data_1/data"].id.get_chunk_info(1).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(off + 10)
        fh.write(b"\xff" * 64)
    src = open_run(path)
    np.testing.assert_array_equal(src[0].data, data[0])
    with pytest.raises(InputError, match=r"z\.cxi:/entry_1/data_1/data.*(corrupt|decompress)"):
        src[1]
    src.close()


def test_dataset_not_found_and_not_an_image(tmp_path):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["/images/stack"] = np.zeros((2, 16, 16), np.float32)
        f["/scalar"] = 1.0
        f["/line"] = np.zeros(100)
        f["/four"] = np.zeros((2, 2, 16, 16))
        f["/text"] = np.array([b"a", b"b"])
        f.create_group("/grp")
    with pytest.raises(InputError, match=r"d\.h5: dataset /nothing/here not found.*/images/stack"):
        open_run(path, dataset="/nothing/here")
    with pytest.raises(InputError, match=r"d\.h5:/scalar: is a scalar \(0-d\)"):
        open_run(path, dataset="/scalar")
    with pytest.raises(InputError, match=r"d\.h5:/line: is a 1-d array"):
        open_run(path, dataset="/line")
    with pytest.raises(InputError, match=r"d\.h5:/four: is 4-d .*not an image"):
        open_run(path, dataset="/four")
    with pytest.raises(InputError, match=r"d\.h5:/text: holds .*not pixel intensities"):
        open_run(path, dataset="/text")
    with pytest.raises(InputError, match=r"d\.h5: /grp is a group"):
        open_run(path, dataset="/grp")


def test_file_without_any_image(tmp_path):
    path = tmp_path / "noimg.h5"
    with h5py.File(path, "w") as f:
        f["/x"] = np.zeros(10)
    with pytest.raises(InputError, match=r"noimg\.h5: no image dataset"):
        open_run(path)
    assert list_image_datasets(path) == []


def test_event_index_out_of_range(tmp_path):
    path = write_cxi(tmp_path / "r.cxi", np.zeros((3, 8, 8), np.float32))
    with open_run(path) as src:
        for bad in (3, 10, -4):
            with pytest.raises(InputError, match=rf"r\.cxi: event index {bad} is out of range \(run has 3 frames\)"):
                src[bad]
        with pytest.raises(InputError, match="out of range"):
            src.event(3)
    write_minicbf(tmp_path / "one.cbf", np.zeros((8, 8), np.int32))
    with open_run(tmp_path / "one.cbf") as src:
        with pytest.raises(InputError, match=r"one\.cbf: event index 1 is out of range"):
            src[1]


def test_all_nan_frame(tmp_path):
    path = write_cxi(tmp_path / "allnan.cxi", np.full((1, 8, 8), np.nan, np.float32))
    with open_run(path) as src:
        with pytest.raises(InputError, match=r"allnan\.cxi.*every pixel.*NaN"):
            src[0]


def test_mixed_hdf5_and_cbf_inputs(tmp_path):
    a = write_cxi(tmp_path / "a.cxi", np.zeros((1, 8, 8), np.float32))
    b = write_minicbf(tmp_path / "b.cbf", np.zeros((8, 8), np.int32))
    with pytest.raises(InputError, match="mixes HDF5 files"):
        open_run([a, b])


def test_dataset_option_with_cbf(tmp_path):
    b = write_minicbf(tmp_path / "b.cbf", np.zeros((8, 8), np.int32))
    with pytest.raises(InputError, match="--dataset applies to HDF5 files only"):
        open_run(b, dataset="/data/data")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    b = write_minicbf(tmp_path / "locked.cbf", np.zeros((8, 8), np.int32))
    b.chmod(0)
    with pytest.raises(InputError, match=r"locked\.cbf: permission denied"):
        open_run(b)


def test_unreadable_file_reported(tmp_path, monkeypatch):
    """Permission problems (simulated: root can read anything) are named, not raised as OSError."""
    b = write_minicbf(tmp_path / "locked.cbf", np.zeros((8, 8), np.int32))
    h = write_cxi(tmp_path / "locked.cxi", np.zeros((1, 8, 8), np.float32))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).startswith(str(tmp_path)) else real_access(p, mode))
    for p in (b, h):
        with pytest.raises(InputError, match=rf"{p.name}: permission denied"):
            open_run(p)
