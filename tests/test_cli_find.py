"""``peaknet find`` end to end on a small simulated CXI run: files, summary, Ctrl-C."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from _pipeline_frames import ring_frame, simulated_frame

from peaknet_gui.cli.main import main
from peaknet_gui.geometry import Geometry

if not hasattr(pytest.importorskip("peaknet_gui.sources"), "open_run"):
    pytest.skip("run sources (open_run) not built yet", allow_module_level=True)
pytest.importorskip("peaknet_gui.export.session", reason="ExportSession not built yet")

N_FRAMES = 6
SHAPE = (96, 128)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PEAKNET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def run_file(tmp_path):
    """A CXI run (layout of CONTRACTS.md) with a .geom beside it; frames 0, 2, 4 are hits."""
    from peaknet_gui.geometry.crystfel_geom import write_geom

    rng = np.random.default_rng(0)
    frames = [simulated_frame(rng, SHAPE, n_spots=14 if i % 2 == 0 else 2, dark_box=False, serial=i)[0] for i in range(N_FRAMES)]
    path = tmp_path / "run.cxi"
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=np.stack([fr.data for fr in frames]), chunks=(1,) + SHAPE, compression="gzip")
        f["/entry_1/instrument_1/source_1/photon_energy_eV"] = np.full(N_FRAMES, 12000.0)
        f["/entry_1/instrument_1/source_1/energy"] = np.full(N_FRAMES, 12000.0 * 1.602176634e-19)
        f["/entry_1/instrument_1/detector_1/distance"] = np.full(N_FRAMES, 0.1)
        f["/entry_1/instrument_1/detector_1/x_pixel_size"] = 172e-6
        f["/entry_1/instrument_1/detector_1/y_pixel_size"] = 172e-6
    geom = Geometry.single_panel(SHAPE, 172e-6, 0.1, 64.0, 48.0, photon_energy_ev=12000.0)
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    write_geom(geom, tmp_path / "run.geom")
    return path


def check_outputs(out, n_frames_done, hits):
    """The files CrystFEL reads: the stream parses, the lst lists the hits, the CXI holds them."""
    from peaknet_gui.export.stream_reader import read_stream

    chunks = read_stream(out / "peaks.stream")
    assert len(chunks) == n_frames_done
    lst = (out / "hits.lst").read_text().split("\n")
    lst = [line for line in lst if line.strip()]
    assert len(lst) == hits and all("//" in line for line in lst)
    with h5py.File(out / "hits.cxi", "r") as f:
        assert f["/entry_1/data_1/data"].shape[0] == hits
        assert f["/entry_1/result_1/nPeaks"].shape[0] == hits
    assert (out / "peaks.geom").is_file()


def test_find_with_peakfinder8_writes_all_files(run_file, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["find", str(run_file), "--geom", str(tmp_path / "run.geom"), "--out", str(out), "--algorithm", "peakfinder8",
               "--min-peaks", "8", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "frames      6" in text and "hits        3" in text and "hit rate 50.0 %" in text and "device" in text
    check_outputs(out, N_FRAMES, 3)
    assert (out / "mask.h5").is_file() and (out / "summary.json").is_file()


def test_find_with_a_peaknet_model(run_file, tmp_path, capsys):
    from peaknet_gui.model import PeakNet, PeakNetConfig
    from peaknet_gui.model.weights import save_weights

    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2, name="tiny"))
    save_weights(net, tmp_path / "tiny.safetensors")
    out = tmp_path / "out_pn"
    rc = main(["find", str(run_file), "--out", str(out), "--weights", str(tmp_path / "tiny.safetensors"), "--device", "cpu",
               "--formats", "stream,lst", "--min-peaks", "1", "--batch-size", "2", "--no-progress"])
    assert rc == 0
    assert "frames      6" in capsys.readouterr().out
    assert (out / "peaks.stream").is_file() and (out / "hits.lst").is_file()
    assert not (out / "hits.cxi").exists()


def test_ctrl_c_leaves_valid_files_for_the_frames_done(run_file, tmp_path, monkeypatch, capsys):
    import peaknet_gui.cli.find as find

    def interrupt_at_4(self, p):
        if p.done == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(find._Progress, "__call__", interrupt_at_4)
    out = tmp_path / "out_int"
    rc = main(["find", str(run_file), "--geom", str(tmp_path / "run.geom"), "--out", str(out), "--algorithm", "peakfinder8",
               "--min-peaks", "8"])
    assert rc == 130
    assert "(interrupted)" in capsys.readouterr().out
    check_outputs(out, 4, 2)


def test_bad_inputs_are_reported_not_raised(tmp_path, capsys):
    assert main(["find", str(tmp_path / "missing.cxi"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "missing.cxi" in capsys.readouterr().err


def test_powder_ring_spots_are_masked_unless_kept(tmp_path, capsys):
    """A frame with the grains of a powder ring: ``peaknet find`` leaves them out of the stream and
    puts them in the exported mask; ``--keep-ring-spots`` keeps them as peaks."""
    import json

    from peaknet_gui.export.stream_reader import read_stream
    from peaknet_gui.geometry.crystfel_geom import write_geom

    frame, bragg, grains = ring_frame(np.random.default_rng(16))
    path = tmp_path / "ring.h5"
    with h5py.File(path, "w") as f:
        f["/entry_1/data_1/data"] = frame.data[None]
    geom = Geometry.single_panel(frame.shape, 172e-6, 0.1, 300.0, 300.0, photon_energy_ev=12000.0)
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    write_geom(geom, tmp_path / "ring.geom")
    counts = {}
    for extra in ([], ["--keep-ring-spots"]):
        out = tmp_path / ("kept" if extra else "dropped")
        rc = main(["find", str(path), "--geom", str(tmp_path / "ring.geom"), "--out", str(out), "--algorithm", "peakfinder8",
                   "--formats", "stream,mask", "--min-peaks", "1", "--no-progress", *extra])
        assert rc == 0
        (chunk,) = read_stream(out / "peaks.stream")
        summary = json.loads((out / "summary.json").read_text())
        with h5py.File(out / "mask.h5", "r") as f:
            bad = f["/mask"][()] != 0  # CrystFEL's polarity: 1 = bad
        iy, ix = np.rint(grains[:, 0]).astype(int), np.rint(grains[:, 1]).astype(int)
        counts[bool(extra)] = (len(chunk.peaks), summary, bad[iy, ix])
    assert counts[False][0] == len(bragg) and counts[True][0] == len(bragg) + len(grains)
    assert counts[False][1]["totals"]["ring_spots"] == len(grains) and counts[True][1]["totals"]["ring_spots"] == 0
    assert counts[False][1]["frames"][0]["ring_spots"] == len(grains)
    assert counts[False][2].all() and not counts[True][2].any()  # the grains are in the exported mask
    assert f"{len(grains)} powder-ring spots on 1 frames" in capsys.readouterr().out
