"""fabio image series (CBF incl. .gz/.bz2, EDF, TIFF, MarCCD, ADSC) on files written by the tests."""

from __future__ import annotations

import os

import fabio
import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.sources import open_run
from peaknet_gui.sources.fabio_series import FabioSeries

from _sources_files import minicbf_bytes, write_adsc, write_minicbf


def _img(shape=(30, 40), seed=0, lam=50.0):
    return np.random.default_rng(seed).poisson(lam, shape).astype(np.int32)


@pytest.mark.parametrize("compress", [None, "gz", "bz2"])
def test_minicbf_pixels_gaps_cutoff_and_header(tmp_path, compress):
    img = _img()
    img[:, 10] = -1  # module gap
    img[5, 5] = -2  # bad pixel
    img[6, 6] = 2_000_000  # hot pixel above Count_cutoff
    name = "x_0001.cbf" + {None: "", "gz": ".gz", "bz2": ".bz2"}[compress]
    path = write_minicbf(tmp_path / name, img, compress=compress, wavelength=0.97625, distance=0.29147,
                         beam=(20.5, 15.25), cutoff=1_000_000)
    with open_run(path) as src:
        assert len(src) == 1 and src.frame_shape() == (30, 40) and src.raw_dtype() == "int32"
        fr = src[0]
        assert fr.event.lst_line() == str(path) and fr.event.index is None
        assert fr.data.dtype == np.float32
        expect_bad = np.zeros(img.shape, bool)
        expect_bad[:, 10] = True
        expect_bad[5, 5] = expect_bad[6, 6] = True
        np.testing.assert_array_equal(fr.bad, expect_bad)
        np.testing.assert_array_equal(fr.data[~expect_bad], img[~expect_bad].astype(np.float32))
        assert (fr.data[expect_bad] == 0).all()
        md = src.metadata(0)
    assert md.photon_energy_ev == pytest.approx(12398.419843320026 / 0.97625)
    assert md.detector_distance_m == pytest.approx(0.29147)
    assert md.pixel_size_m == pytest.approx(172e-6)
    # Beam_xy is read as dxtbx does (origin at the first pixel's corner): index = Beam_xy - 0.5
    assert (md.beam_center_fs, md.beam_center_ss) == pytest.approx((20.0, 14.75))
    assert md.exposure_time_s == pytest.approx(0.019)
    assert md.detector.startswith("PILATUS3 6M")
    assert md.extra["count_cutoff"] == 1_000_000


def test_our_cbf_reader_agrees_with_fabio(tmp_path):
    img = _img((50, 70), seed=3, lam=3000.0)
    img[0, 0] = 70000  # needs the 16-bit escape of byte-offset
    img[0, 1] = -70000
    img[0, 2] = 2**31 - 1  # and the 32-bit escape
    path = write_minicbf(tmp_path / "big.cbf", img)
    ref = fabio.open(str(path)).data
    with open_run(path) as src:
        raw = src.read_raw(0)
    np.testing.assert_array_equal(raw, ref)
    np.testing.assert_array_equal(raw, img)


def test_series_from_list_glob_and_directory_in_natural_order(tmp_path):
    for k in (1, 2, 10, 11):
        write_minicbf(tmp_path / f"img_{k}.cbf", np.full((8, 12), k, np.int32))
    (tmp_path / "notes.txt").write_text("not an image")
    expect = [1, 2, 10, 11]
    with open_run(str(tmp_path)) as src:
        assert [float(src[i].data[0, 0]) for i in range(len(src))] == expect
    with open_run(str(tmp_path / "img_*.cbf")) as src:
        assert [float(src[i].data[0, 0]) for i in range(len(src))] == expect
        assert src.event(2).path.endswith("img_10.cbf")
    files = [tmp_path / "img_11.cbf", tmp_path / "img_1.cbf"]
    with open_run(files) as src:  # an explicit list keeps its order
        assert [float(src[i].data[0, 0]) for i in range(2)] == [11, 1]


def test_frames_of_different_shapes_in_one_series(tmp_path):
    write_minicbf(tmp_path / "a_1.cbf", _img((20, 30)))
    write_minicbf(tmp_path / "a_2.cbf", _img((20, 31)))
    with open_run(str(tmp_path)) as src:
        src[0]
        with pytest.raises(InputError, match=r"a_2\.cbf.*20x31.*20x30"):
            src[1]


def test_edf_with_esrf_keywords(tmp_path):
    img = _img().astype(np.float32)
    hdr = {"SampleDistance": "0.2", "WaveLength": "1e-10", "PSize_1": "7.5e-05", "PSize_2": "7.5e-05",
           "Center_1": "20.5", "Center_2": "10.5", "ExposureTime": "0.1"}
    fabio.edfimage.EdfImage(data=img, header=hdr).write(str(tmp_path / "f_0001.edf"))
    with open_run(tmp_path / "f_0001.edf") as src:
        fr = src[0]
        np.testing.assert_array_equal(fr.data, img)
        md = fr.metadata
    assert md.detector_distance_m == pytest.approx(0.2)
    assert md.photon_energy_ev == pytest.approx(12398.419843320026)
    assert md.pixel_size_m == pytest.approx(75e-6)
    assert (md.beam_center_fs, md.beam_center_ss) == (20.0, 10.0)
    assert md.exposure_time_s == pytest.approx(0.1)


def test_tiff_series_with_negative_gap_pixels(tmp_path):
    for k in range(3):
        img = _img(seed=k)
        img[:, 3] = -1
        fabio.tifimage.TifImage(data=img).write(str(tmp_path / f"t_{k:04d}.tif"))
    with open_run(str(tmp_path / "t_*.tif")) as src:
        assert len(src) == 3
        fr = src[2]
        assert fr.bad[:, 3].all() and fr.bad.sum() == 30
        np.testing.assert_array_equal(fr.data[:, 4], _img(seed=2)[:, 4].astype(np.float32))


def test_marccd(tmp_path):
    img = _img((64, 64)).astype(np.uint16)
    fabio.marccdimage.MarccdImage(data=img).write(str(tmp_path / "m_001.mccd"))
    with open_run(tmp_path / "m_001.mccd") as src:
        fr = src[0]
    np.testing.assert_array_equal(fr.data, img.astype(np.float32))
    assert not fr.bad.any()


def test_adsc_img_with_header_metadata(tmp_path):
    img = _img((24, 32)).astype(np.uint16)
    path = write_adsc(tmp_path / "a_001.img", img, wavelength=1.0, distance_mm=150.0, pixel_mm=0.1,
                      beam_x_mm=1.25, beam_y_mm=2.05)
    with open_run(path) as src:
        fr = src[0]
    np.testing.assert_array_equal(fr.data, img.astype(np.float32))
    md = fr.metadata
    assert md.detector_distance_m == pytest.approx(0.15)
    assert md.pixel_size_m == pytest.approx(1e-4)
    assert md.photon_energy_ev == pytest.approx(12398.419843320026)
    # ADSC BEAM_CENTER_X runs along the slow axis (dxtbx): fs from Y, ss from X, minus half a pixel
    assert (md.beam_center_fs, md.beam_center_ss) == pytest.approx((20.0, 12.0))


@pytest.mark.parametrize("compress", [None, "gz", "bz2"])
def test_truncated_cbf_names_the_file(tmp_path, compress):
    full = minicbf_bytes(_img((60, 80), lam=5000.0))
    cut = full[: len(full) // 2]
    import bz2
    import gzip

    data = {None: cut, "gz": gzip.compress(full)[:-200], "bz2": bz2.compress(full)[:-200]}[compress]
    name = "cut.cbf" + {None: "", "gz": ".gz", "bz2": ".bz2"}[compress]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError, match=rf"{name}.*(truncated|corrupt)"):
        src = open_run(tmp_path / name)
        src[0]


def test_corrupt_cbf_and_garbage_files(tmp_path):
    good = minicbf_bytes(_img((60, 80)))
    start = good.find(b"\x0c\x1a\x04\xd5") + 4
    bad = good[:start] + bytes(np.random.default_rng(0).integers(0, 256, len(good) - start, dtype=np.uint8))
    (tmp_path / "garbled.cbf").write_bytes(bad)
    with pytest.raises(InputError, match=r"garbled\.cbf"):
        src = open_run(tmp_path / "garbled.cbf")
        src[0]
    (tmp_path / "junk.cbf").write_bytes(b"this is not a CBF file at all\n" * 10)
    with pytest.raises(InputError, match=r"junk\.cbf.*not a CBF"):
        open_run(tmp_path / "junk.cbf")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match=r"junk\.tif"):
        open_run(tmp_path / "junk.tif")


def test_frames_are_cached_but_independent(tmp_path):
    write_minicbf(tmp_path / "c.cbf.bz2", _img(), compress="bz2")
    src = FabioSeries([str(tmp_path / "c.cbf.bz2")])
    a = src[0]
    a.data[:] = -5  # a consumer scribbling on its frame must not change the next one
    b = src[0]
    assert (b.data >= 0).all()
    os.remove(tmp_path / "c.cbf.bz2")
    assert src[0].data.shape == (30, 40)  # served from the cache


def test_next_frame_is_prefetched_in_the_background(tmp_path):
    files = [write_minicbf(tmp_path / f"p_{k}.cbf.gz", np.full((20, 30), k, np.int32), compress="gz")
             for k in range(4)]
    src = FabioSeries([str(f) for f in files])
    src[0]
    for _ in range(200):  # the background decode of frame 1 finishes
        if src._frames_cache.cached(1):
            break
        import time

        time.sleep(0.01)
    assert src._frames_cache.cached(1)
    os.remove(files[1])  # served from what was prefetched
    assert float(src[1].data[0, 0]) == 1.0
    src[3]
    src[2]  # stepping backwards prefetches frame 1 (cached) -- and nothing breaks when files vanish
    src.close()
    assert not src._frames_cache.cached(1) and src._frames_cache._executor is None


@pytest.mark.parametrize("cpus", [2, 8])
def test_truncated_large_bz2(tmp_path, monkeypatch, cpus):
    from peaknet_gui.sources import cbf as cbf_mod

    if cpus > 2 and cbf_mod._ibz2 is None:
        pytest.skip("indexed_bzip2 (extra 'fast') not installed")
    monkeypatch.setattr(cbf_mod.os, "cpu_count", lambda: cpus)  # 8: the parallel decoder's path
    img = np.random.default_rng(5).integers(0, 1 << 20, (700, 700)).astype(np.int32)
    import bz2

    blob = bz2.compress(minicbf_bytes(img))
    assert len(blob) > (1 << 20)
    (tmp_path / "whole.cbf.bz2").write_bytes(blob)
    with open_run(tmp_path / "whole.cbf.bz2") as src:
        np.testing.assert_array_equal(src.read_raw(0), img)
    (tmp_path / "big.cbf.bz2").write_bytes(blob[:-1000])
    with pytest.raises(InputError, match=r"big\.cbf\.bz2.*(corrupt|truncated)"):
        src = open_run(tmp_path / "big.cbf.bz2")
        src[0]


def test_multi_frame_edf_gives_one_frame_per_image(tmp_path):
    from fabio.edfimage import EdfFrame, EdfImage

    img = EdfImage(data=np.zeros((8, 10), np.float32))
    for k in (1, 2):
        img.append_frame(EdfFrame(data=np.full((8, 10), k, np.float32)))
    img.write(str(tmp_path / "multi.edf"))
    with open_run(tmp_path / "multi.edf") as src:
        assert len(src) == 3
        assert [float(src[i].data[0, 0]) for i in range(3)] == [0.0, 1.0, 2.0]
        assert src.event(2).lst_line() == f"{tmp_path / 'multi.edf'} //2"
