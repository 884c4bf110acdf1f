"""Directory / glob follow mode: files that appear become frames on refresh(); partial files wait."""

from __future__ import annotations

import os
import time

import fabio
import numpy as np
import pytest

from peaknet_gui.sources import open_run

from _sources_files import minicbf_bytes, write_cxi, write_minicbf


def _age(path, seconds=5.0):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_new_cbf_files_become_frames(tmp_path):
    for k in (1, 2):
        write_minicbf(tmp_path / f"run_{k:04d}.cbf", np.full((10, 12), k, np.int32))
    src = open_run(str(tmp_path))
    assert len(src) == 2 and src.refresh() == 0
    write_minicbf(tmp_path / "run_0003.cbf", np.full((10, 12), 3, np.int32))
    write_minicbf(tmp_path / "run_0004.cbf", np.full((10, 12), 4, np.int32))
    assert src.refresh() == 2
    assert [float(src[i].data[0, 0]) for i in range(4)] == [1, 2, 3, 4]
    assert src.event(3).path.endswith("run_0004.cbf")
    src.close()


def test_partially_written_cbf_is_ignored_until_complete(tmp_path):
    write_minicbf(tmp_path / "s_0001.cbf", np.ones((20, 30), np.int32))
    src = open_run(str(tmp_path / "s_*.cbf"))
    assert len(src) == 1
    img = np.random.default_rng(0).poisson(1000.0, (20, 30)).astype(np.int32)
    img[0, 0] = 2
    full = minicbf_bytes(img)
    cut = full.find(b"\x0c\x1a\x04\xd5") + 200  # header written, pixels half way
    part = tmp_path / "s_0002.cbf"
    with open(part, "wb") as fh:
        fh.write(full[:cut])
    assert src.refresh() == 0 and len(src) == 1
    with open(part, "ab") as fh:
        fh.write(full[cut:])
    assert src.refresh() == 1
    assert float(src[1].data[0, 0]) == 2.0
    src.close()


def test_young_compressed_file_waits_until_it_settles(tmp_path):
    write_minicbf(tmp_path / "z_0001.cbf.gz", np.ones((8, 8), np.int32), compress="gz")
    src = open_run(str(tmp_path), settle_s=2.0)
    assert len(src) == 1  # present when opened and readable: taken
    p = write_minicbf(tmp_path / "z_0002.cbf.gz", np.ones((8, 8), np.int32), compress="gz")
    assert src.refresh() == 0  # just written: may still be growing
    _age(p)
    assert src.refresh() == 1
    src.close()


def test_empty_directory_then_files_appear(tmp_path):
    src = open_run(str(tmp_path))
    assert len(src) == 0 and src.refresh() == 0
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = tmp_path / "f_1.edf"
    fabio.edfimage.EdfImage(data=img).write(str(p))
    _age(p)
    assert src.refresh() == 1
    np.testing.assert_array_equal(src[0].data, img)
    src.close()


def test_directory_of_hdf5_stacks(tmp_path):
    write_cxi(tmp_path / "r_0001.cxi", np.zeros((2, 8, 8), np.float32))
    src = open_run(str(tmp_path))
    assert len(src) == 2
    p = write_cxi(tmp_path / "r_0002.cxi", np.ones((3, 8, 8), np.float32))
    _age(p)
    assert src.refresh() == 3
    assert src.event(4).lst_line() == f"{p} //2"
    assert float(src[4].data[0, 0]) == 1.0
    src.close()


def test_glob_without_matches_is_an_empty_run(tmp_path):
    src = open_run(str(tmp_path / "later_*.cbf"))
    assert len(src) == 0
    write_minicbf(tmp_path / "later_1.cbf", np.zeros((4, 4), np.int32))
    assert src.refresh() == 1
    with pytest.raises(Exception, match="out of range"):
        src[1]
    src.close()
