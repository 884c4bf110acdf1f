"""HDF5 / CXI / Cheetah / NeXus-Eiger run sources on files written by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import hdf5plugin
import numpy as np
import pytest

from peaknet_gui.errors import GeometryError, InputError
from peaknet_gui.geometry.crystfel_geom import parse_geom_text
from peaknet_gui.sources import AmbiguousDatasetError, list_image_datasets, open_run
from peaknet_gui.sources.hdf5 import HDF5Source

from _sources_files import write_cxi, write_eiger_pair


def _stack(n=4, shape=(32, 48), seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.poisson(20.0, (n,) + shape).astype(dtype)


def test_cxi_stack_frames_events_and_metadata(tmp_path):
    data = _stack()
    path = write_cxi(tmp_path / "run.cxi", data, energy_ev=9500.0, distance_m=[0.1, 0.11, 0.12, 0.13])
    with open_run(str(path)) as src:
        assert len(src) == 4
        assert src.dataset == "/entry_1/data_1/data"  # not the labels stack beside it
        assert src.frame_shape() == (32, 48) and src.raw_dtype() == "float32"
        fr = src[2]
        assert fr.data.dtype == np.float32 and fr.data.shape == (32, 48)
        np.testing.assert_array_equal(fr.data, data[2])
        assert fr.event.lst_line() == f"{path} //2" and fr.serial == 2
        assert src[-1].event.index == 3
        assert [f.serial for f in src] == [0, 1, 2, 3]
        md = src.metadata(1)
        assert md.photon_energy_ev == pytest.approx(9500.0)
        assert md.detector_distance_m == pytest.approx(0.11)
        assert md.pixel_size_m == pytest.approx(75e-6)
        assert (md.beam_center_fs, md.beam_center_ss) == (40.0, 30.0)  # pixel-index convention attribute
        geom = src.geometry()
        assert geom.globals["data"] == "/entry_1/data_1/data" and geom.globals["dim0"] == "%"
        assert geom.beam_center(0) == pytest.approx((40.0, 30.0))


def test_cxi_energy_in_joules_only(tmp_path):
    path = write_cxi(tmp_path / "run.cxi", _stack(2), energy_ev=7000.0)
    with h5py.File(path, "a") as f:
        del f["/entry_1/instrument_1/source_1/photon_energy_eV"]
    with open_run(path) as src:
        assert src.metadata(0).photon_energy_ev == pytest.approx(7000.0)


def test_cxi_mask_dataset_marks_bad_pixels(tmp_path):
    data = _stack(3)
    mask = np.zeros(data.shape, np.uint8)
    mask[1, 5, 6] = 1
    mask[:, 0, 0] = 1
    mask[2, 7, 7] = 2  # other bits are not "bad"
    path = write_cxi(tmp_path / "m.cxi", data, mask=mask)
    with open_run(path) as src:
        b1, b2 = src[1].bad, src[2].bad
    assert b1[5, 6] and b1[0, 0] and b1.sum() == 2
    assert b2[0, 0] and not b2[7, 7] and b2.sum() == 1


def test_cheetah_single_image_data_data_and_lcls_metadata(tmp_path):
    img = (np.arange(40 * 50).reshape(40, 50) % 300 - 20).astype(np.int16)  # negative values are real (dark-subtracted)
    path = tmp_path / "LCLS_2013_r0014_c00.h5"
    with h5py.File(path, "w") as f:
        f["/data/data"] = img
        f["/LCLS/photon_energy_eV"] = np.array([9742.5])
        f["/LCLS/detector_1/EncoderValue"] = np.array([-450.0])
    with open_run(path) as src:
        assert len(src) == 1 and src.dataset == "/data/data"
        fr = src[0]
        assert fr.event.index is None and fr.event.lst_line() == str(path)
        np.testing.assert_array_equal(fr.data, img.astype(np.float32))
        assert not fr.bad.any()
        md = fr.metadata
        assert md.photon_energy_ev == pytest.approx(9742.5)
        assert md.extra["clen_encoder_mm"] == -450.0


def test_geometry_reading_clen_and_energy_from_the_file(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["/data/data"] = np.ones((20, 30), np.float32)
        f["/LCLS/photon_energy_eV"] = np.array([8000.0])
        f["/LCLS/detector_1/EncoderValue"] = np.array([125.0])
    geom = parse_geom_text(textwrap.dedent("""\
        photon_energy = /LCLS/photon_energy_eV
        clen = /LCLS/detector_1/EncoderValue
        res = 9097.52
        data = /data/data
        dim0 = ss
        dim1 = fs
        p0/min_fs = 0
        p0/max_fs = 29
        p0/min_ss = 0
        p0/max_ss = 19
        p0/corner_x = -15
        p0/corner_y = -10
        p0/fs = +1x
        p0/ss = +1y
        """), source="c.geom")
    with open_run(path, geometry=geom) as src:
        md = src.metadata(0)
        assert md.photon_energy_ev == pytest.approx(8000.0)
        assert md.extra["clen_m"] == pytest.approx(0.125)  # CrystFEL: a clen path without unit is mm
        assert src.geometry() is geom


def test_dataset_by_option_and_ambiguous_detection(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["/run/a/images"] = _stack(3)
        f["/run/b/images"] = _stack(5, seed=2)
        f["/run/b/scalar"] = 3.0
    with pytest.raises(AmbiguousDatasetError) as info:
        open_run(path)
    assert str(path) in str(info.value) and "--dataset" in str(info.value)
    assert sorted(c.path for c in info.value.candidates) == ["/run/a/images", "/run/b/images"]
    assert isinstance(info.value, InputError)
    with open_run(path, dataset="/run/b/images") as src:
        assert len(src) == 5
        np.testing.assert_array_equal(src[4].data, _stack(5, seed=2)[4])
    infos = list_image_datasets(path)
    assert {(d.path, d.shape, d.dtype) for d in infos} == {("/run/a/images", (3, 32, 48), "float32"),
                                                           ("/run/b/images", (5, 32, 48), "float32")}


def test_unique_stack_is_detected_beside_a_mask(tmp_path):
    path = tmp_path / "u.h5"
    with h5py.File(path, "w") as f:
        f["/exp/frames"] = _stack(2)
        f["/exp/mask"] = np.zeros((32, 48), np.uint8)
    with open_run(path) as src:
        assert src.dataset == "/exp/frames" and len(src) == 2


@pytest.mark.parametrize("filt", [
    hdf5plugin.Bitshuffle(nelems=0, cname="lz4"),
    hdf5plugin.LZ4(),
    {"compression": "gzip", "compression_opts": 1},
    {"compression": "gzip", "compression_opts": 4, "shuffle": True},
], ids=["bitshuffle-lz4", "lz4", "gzip", "shuffle-gzip"])
def test_compressed_stacks(tmp_path, filt):
    data = _stack(3, dtype=np.uint16)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=data, chunks=(1, 32, 48), **dict(filt))
    with open_run(path) as src:
        for i in range(3):
            np.testing.assert_array_equal(src[i].data, data[i].astype(np.float32))


def test_nan_and_inf_pixels_become_bad_zeros(tmp_path, caplog):
    data = _stack(2)
    data[0, 3, 4] = np.nan
    data[0, 5, 6] = np.inf
    data[1] = np.nan
    path = write_cxi(tmp_path / "nan.cxi", data)
    with open_run(path) as src:
        fr = src[0]
        assert fr.bad[3, 4] and fr.bad[5, 6] and fr.bad.sum() == 2
        assert fr.data[3, 4] == 0 and fr.data[5, 6] == 0 and np.isfinite(fr.data).all()
        with pytest.raises(InputError, match=r"nan\.cxi.*frame 1.*NaN"):
            src[1]


def test_geometry_data_path_is_used_and_shape_checked(tmp_path):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        f["/instrument/detector/data"] = _stack(2, shape=(20, 30))
        f["/other/frames"] = _stack(2, shape=(20, 30))
    text = "data = /instrument/detector/data\ndim0 = %\ndim1 = ss\ndim2 = fs\nres = 5000\nclen = 0.1\n" \
           "p0/min_fs = 0\np0/max_fs = 29\np0/min_ss = 0\np0/max_ss = 19\np0/corner_x = 0\np0/corner_y = 0\n" \
           "p0/fs = +1x\np0/ss = +1y\n"
    geom = parse_geom_text(text, source="good.geom")
    with open_run(path, geometry=geom) as src:
        assert src.dataset == "/instrument/detector/data" and len(src) == 2
    big = parse_geom_text(text.replace("max_fs = 29", "max_fs = 39"), source="big.geom")
    with pytest.raises(GeometryError, match=r"big\.geom.*20x40.*20x30"):
        open_run(path, geometry=big)


def test_swmr_reader_sees_frames_appended_by_a_writer(tmp_path):
    """A separate process appends frames in SWMR mode; refresh() picks them up."""
    path = tmp_path / "live.cxi"
    writer = textwrap.dedent(f"""
        import sys, h5py, numpy as np
        f = h5py.File({str(path)!r}, "w", libver="latest")
        ds = f.create_dataset("/entry_1/data_1/data", shape=(2, 16, 24), maxshape=(None, 16, 24),
                              chunks=(1, 16, 24), dtype="f4")
        ds[0] = 0; ds[1] = 1
        en = f.create_dataset("/entry_1/instrument_1/source_1/photon_energy_eV", data=[9000.0, 9001.0], maxshape=(None,))
        f.swmr_mode = True
        f.flush()
        print("ready", flush=True)
        for line in sys.stdin:
            k = int(line)
            n = ds.shape[0]
            ds.resize((n + k, 16, 24)); en.resize((n + k,))
            for i in range(n, n + k):
                ds[i] = i; en[i] = 9000.0 + i
            ds.flush(); en.flush()
            print("done", flush=True)
        f.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        src = open_run(path)
        assert len(src) == 2 and src.refresh() == 0
        proc.stdin.write("3\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"
        assert src.refresh() == 3
        assert len(src) == 5
        assert float(src[4].data[0, 0]) == 4.0
        assert src.metadata(4).photon_energy_ev == 9004.0
        src.close()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_refresh_of_a_file_appended_without_swmr_while_open(tmp_path):
    """A writer without SWMR appends while the run is open: the reader must not lock it out, and
    refresh() re-opens the changed file to see the new frames."""
    path = write_cxi(tmp_path / "grow.cxi", _stack(2), maxshape=(None, 32, 48))
    src = open_run(path)
    assert len(src) == 2
    code = textwrap.dedent(f"""
        import h5py
        with h5py.File({str(path)!r}, "a") as f:
            ds = f["/entry_1/data_1/data"]
            ds.resize((5, 32, 48))
            ds[2:] = 7
    """)
    # the writer is another program: it locks files as HDF5 does by default
    env = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)
    assert src.refresh() == 3
    assert len(src) == 5 and float(src[4].data[0, 0]) == 7.0
    np.testing.assert_array_equal(src[1].data, _stack(2)[1])
    assert src.refresh() == 0
    src.close()


def test_eiger_master_with_external_links(tmp_path):
    master, arrays = write_eiger_pair(tmp_path, frames=(3, 2))
    with open_run(master) as src:
        assert len(src) == 5
        assert src.frame_shape() == (40, 60) and src.raw_dtype() == "uint16"
        fr = src[4]
        assert fr.event.path.endswith("series_7_data_000002.h5") and fr.event.index == 1
        expect = arrays[1][1].astype(np.float32)
        assert fr.bad[1, 2] and fr.bad[3, 4] and fr.bad.sum() == 2  # pixel_mask + 16-bit marker
        expect[1, 2] = expect[3, 4] = 0
        np.testing.assert_array_equal(fr.data, expect)
        assert src.event(2).lst_line().endswith("series_7_data_000001.h5 //2")
        md = src.metadata(0)
        assert md.photon_energy_ev == pytest.approx(12650.0, rel=1e-4)
        assert md.detector_distance_m == pytest.approx(0.125)
        assert md.pixel_size_m == pytest.approx(75e-6)
        assert (md.beam_center_fs, md.beam_center_ss) == pytest.approx((30.0, 19.75))  # NeXus pixels - 0.5
        assert md.exposure_time_s == pytest.approx(0.004)
        assert md.detector == "Dectris EIGER2 test"
        assert md.extra["master_file"] == str(master)


def test_eiger_master_with_a_missing_data_file_that_appears_later(tmp_path):
    master, _ = write_eiger_pair(tmp_path, frames=(3, 2))
    (tmp_path / "series_7_data_000002.h5").unlink()
    src = open_run(master)  # the frames that are there, with a warning naming the missing file
    assert len(src) == 3 and "series_7_data_000002.h5" in src.warnings[0]
    assert src.refresh() == 0
    (tmp_path / "later").mkdir()
    write_eiger_pair(tmp_path / "later", frames=(3, 2))  # the detector writes the second data file
    (tmp_path / "later" / "series_7_data_000002.h5").rename(tmp_path / "series_7_data_000002.h5")
    assert src.refresh() == 2 and len(src) == 5
    assert src.event(4).lst_line().endswith("series_7_data_000002.h5 //1")
    src.close()
    for k in (1, 2):
        (tmp_path / f"series_7_data_00000{k}.h5").unlink()
    with pytest.raises(InputError, match=r"series_7_master\.h5: the linked data files series_7_data_000001\.h5 "
                                         r".*series_7_data_000002\.h5 .*are missing"):
        open_run(master)
    meta = HDF5Source(master, require_data=False)
    assert len(meta) == 0 and meta.frame_shape() == (40, 60)
    assert meta.metadata(0).detector_distance_m == pytest.approx(0.125)
    meta.close()


def test_several_single_image_files_make_one_run(tmp_path):
    imgs = [np.full((12, 16), k, np.float32) for k in range(4)]
    for k, img in enumerate(imgs):
        with h5py.File(tmp_path / f"shot_{k + 1}.h5", "w") as f:
            f["/data/data"] = img
    with open_run(str(tmp_path / "shot_*.h5")) as src:
        assert len(src) == 4
        assert [float(src[i].data[0, 0]) for i in range(4)] == [0, 1, 2, 3]
        assert src.event(3).lst_line().endswith("shot_4.h5")
    with h5py.File(tmp_path / "shot_5.h5", "w") as f:
        f["/data/data"] = np.zeros((10, 16), np.float32)
    with open_run([str(tmp_path / f"shot_{k}.h5") for k in (1, 5)]) as src:
        with pytest.raises(InputError, match=r"shot_5\.h5.*10x16.*12x16"):
            src[1]


def test_list_of_stacks_concatenates(tmp_path):
    a = write_cxi(tmp_path / "a.cxi", _stack(2, seed=3))
    b = write_cxi(tmp_path / "b.cxi", _stack(3, seed=4))
    with open_run([a, b]) as src:
        assert len(src) == 5
        assert src.event(3).lst_line() == f"{b} //1"
        np.testing.assert_array_equal(src[3].data, _stack(3, seed=4)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
def test_gzip_fast_path_matches_h5py_and_falls_back_for_unwritten_chunks(tmp_path, dtype):
    from peaknet_gui.sources.h5direct import direct_reader

    data = _stack(3, dtype=dtype)
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("/entry_1/data_1/data", shape=(4, 32, 48), dtype=dtype, chunks=(1, 32, 48),
                              compression="gzip", shuffle=True, fillvalue=3)
        ds[:3] = data  # frame 3 never written: its chunk is unallocated
    with open_run(path) as src:
        reader = src.blocks[0].fast_read
        assert reader is not None  # isal is an install requirement
        np.testing.assert_array_equal(reader(1), data[1])
        assert reader(3) is None  # unallocated: h5py gives the fill value
        assert (src[3].data == 3).all()
        np.testing.assert_array_equal(src[2].data, data[2].astype(np.float32))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        ds = f.create_dataset("x", data=data, chunks=(1, 16, 48), compression="gzip")
        assert direct_reader(ds) is None  # chunks smaller than a frame: h5py reads it


def test_negative_int32_pixels_are_bad_but_int16_are_data(tmp_path):
    img = np.full((10, 12), 5, np.int32)
    img[:, 4] = -1  # Pilatus module gap written into an HDF5 file
    img[2, 2] = -2
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["/entry/data/data"] = img
        f["/cspad/data"] = img.astype(np.int16)
    with open_run(tmp_path / "p.h5") as src:
        fr = src[0]
    assert fr.bad[:, 4].all() and fr.bad[2, 2] and fr.bad.sum() == 11 and (fr.data[fr.bad] == 0).all()
    with open_run(tmp_path / "p.h5", dataset="/cspad/data") as src:
        fr = src[0]
    assert not fr.bad.any() and fr.data[2, 2] == -2


def test_geom_file_beside_the_data_is_used_when_it_fits(tmp_path):
    path = write_cxi(tmp_path / "sim.cxi", _stack(2, shape=(20, 30)))
    text = ("clen = 0.2\nres = 5000\nphoton_energy = 9000\ndata = /entry_1/data_1/data\ndim0 = %\ndim1 = ss\n"
            "dim2 = fs\np0/min_fs = 0\np0/max_fs = 29\np0/min_ss = 0\np0/max_ss = 19\np0/corner_x = -15\n"
            "p0/corner_y = -10\np0/fs = +1x\np0/ss = +1y\n")
    (tmp_path / "sim.geom").write_text(text)
    with open_run(path) as src:
        geom = src.geometry()
        assert src.geometry_origin == "beside" and geom.source.endswith("sim.geom") and geom.clen == 0.2
    (tmp_path / "sim.geom").write_text(text.replace("max_fs = 29", "max_fs = 59"))  # another detector
    with open_run(path) as src:
        geom = src.geometry()
        assert src.geometry_origin == "headers" and geom.clen == pytest.approx(0.1)


def test_refresh_on_one_thread_while_another_reads(tmp_path):
    """The GUI refreshes on one worker thread while another reads frames."""
    import threading

    data = np.random.default_rng(0).poisson(9.0, (40, 32, 48)).astype(np.float32)
    path = write_cxi(tmp_path / "t.cxi", data, compression={"compression": "gzip", "compression_opts": 1},
                     maxshape=(None, 32, 48))
    src = open_run(path)
    errors = []

    def reader():
        try:
            for rep in range(3):
                for i in range(len(src)):
                    np.testing.assert_array_equal(src[i].data, data[i])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    th = threading.Thread(target=reader)
    th.start()
    for _ in range(30):
        src.refresh()
        src._stat = (0, 0)  # pretend the file changed: forces the close-and-reopen path
        src.refresh()
    th.join(timeout=60)
    assert not th.is_alive() and not errors, errors
    src.close()
