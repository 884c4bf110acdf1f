"""``peaknet simulate`` runs: CXI layout, read-back through the run sources, .geom, determinism."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from peaknet_gui.cli.main import main
from peaknet_gui.errors import InputError
from peaknet_gui.geometry.crystfel_geom import read_geom
from peaknet_gui.sim.detectors import get_detector
from peaknet_gui.sim.run import RunSpec, frame_kinds, parse_mix, plan_run, simulate_run
from peaknet_gui.sim.run_writer import CxiRunWriter
from peaknet_gui.sources import open_run


def test_parse_mix():
    assert parse_mix("hits,blanks") == {"hit": 0.5, "blank": 0.5}
    m = parse_mix("hits=0.6,blanks=0.2,rings=0.2")
    assert m == pytest.approx({"hit": 0.6, "blank": 0.2, "rings": 0.2})
    assert sum(parse_mix(None).values()) == pytest.approx(1.0)
    for bad in ("hits=x", "unicorns", "hits=-1", "hits=0"):
        with pytest.raises(InputError):
            parse_mix(bad)
    kinds = frame_kinds({"hit": 0.6, "blank": 0.2, "rings": 0.2}, 10, np.random.default_rng(0))
    assert sorted(kinds) == sorted(["hit"] * 6 + ["blank"] * 2 + ["rings"] * 2)


def test_cli_run_reads_back_with_metadata(tmp_path):
    out = tmp_path / "run.cxi"
    rc = main(["simulate", "--frames", "5", "--out", str(out), "--seed", "7", "--detector", "pilatus-6m",
               "--crop", "192x256", "--mix", "hits=3,blanks=1,rings=1", "--no-progress"])
    assert rc == 0 and out.exists() and out.with_suffix(".geom").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    det = get_detector("pilatus-6m")
    with h5py.File(out, "r", locking=False) as f:
        bcx = f["entry_1/instrument_1/detector_1/beam_center_x"][3]
        data = f["entry_1/data_1/data"][3]
        labels = f["entry_1/data_1/labels"]
        assert labels.dtype == np.uint8 and labels.shape == (5, 192, 256)
        assert labels.attrs["classes"].startswith("0 background")
        kinds = [k.decode() if isinstance(k, bytes) else k for k in f["entry_1/sim/kind"][:]]
        npk = f["entry_1/result_1/nPeaks"][:]
        lab = labels[:]
        for i, k in enumerate(kinds):
            if k == "blank":
                assert npk[i] == 0 and not np.any(lab[i] == 1)
            x = f["entry_1/result_1/peakXPosRaw"][i, : npk[i]]
            y = f["entry_1/result_1/peakYPosRaw"][i, : npk[i]]
            if npk[i]:
                assert np.mean(lab[i][np.rint(y).astype(int), np.rint(x).astype(int)] == 1) > 0.9
        assert sorted(set(kinds)) == ["blank", "hit", "rings"]
        mask = f["entry_1/data_1/mask"][3]
    src = open_run(str(out))
    try:
        assert len(src) == 5
        md = src.metadata(3)
        assert md.photon_energy_ev == pytest.approx(det.photon_energy_ev)
        assert md.wavelength_a == pytest.approx(0.96859, rel=1e-6)
        assert md.detector_distance_m == pytest.approx(0.351)
        assert md.pixel_size_m == pytest.approx(172e-6)
        assert md.beam_center_fs == pytest.approx(bcx)  # the crop's beam centre, pixel indices
        assert 0 < md.beam_center_fs < 256
        frame = src[3]
        assert frame.data.shape == (192, 256)
        good = ~frame.bad
        assert np.array_equal(frame.data[good], data[good].astype(np.float32))
        assert np.all(frame.bad[data == -1]) and np.all(mask[data == -1] == 1)
    finally:
        src.close()
    geom = read_geom(out.with_suffix(".geom"))
    assert geom.globals["data"] == "/entry_1/data_1/data" and geom.globals["dim0"] == "%"
    assert geom.photon_energy_ev == pytest.approx(det.photon_energy_ev)
    assert geom.beam_center(0) == pytest.approx((md.beam_center_fs, md.beam_center_ss))
    assert geom.panels[0].distance(geom.clen) == pytest.approx(0.351)


def test_same_seed_same_run(tmp_path):
    spec = RunSpec(n_frames=3, seed=5, detector="cspad-quad", mix={"hit": 1.0})
    a = simulate_run(spec, tmp_path / "a.cxi")
    b = simulate_run(spec, tmp_path / "b.cxi")
    with h5py.File(a, "r", locking=False) as fa, h5py.File(b, "r", locking=False) as fb:
        for name in ("entry_1/data_1/data", "entry_1/data_1/labels", "entry_1/result_1/peakXPosRaw"):
            assert np.array_equal(fa[name][:], fb[name][:])
        assert fa["entry_1/data_1/data"].dtype == np.int16
        assert fa["entry_1/result_1/nPeaks"][:].sum() > 0
    geom = read_geom(a.with_suffix(".geom"))
    assert len(geom.panels) == 16
    src = open_run(str(a), geometry=geom)
    try:
        assert src[0].data.shape == (1480, 388)
    finally:
        src.close()


def test_writer_is_atomic(tmp_path):
    det, pers, params = plan_run(RunSpec(n_frames=2, seed=1, detector="rayonix-mx340-bin2", crop="64x64"))
    from peaknet_gui.sim.frame import simulate_frame

    out = tmp_path / "x.cxi"
    with pytest.raises(RuntimeError):
        with CxiRunWriter(out, det, 2) as w:
            w.add(simulate_frame(det, params[0], pers))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    # Ctrl-C after one frame keeps a valid, shorter run
    with pytest.raises(KeyboardInterrupt):
        with CxiRunWriter(out, det, 2) as w:
            w.add(simulate_frame(det, params[0], pers))
            raise KeyboardInterrupt
    with h5py.File(out, "r", locking=False) as f:
        assert f["entry_1/data_1/data"].shape[0] == 1 and f["entry_1/result_1/nPeaks"].shape == (1,)


def test_cli_errors(tmp_path, capsys):
    assert main(["simulate", "--frames", "2", "--out", str(tmp_path / "r.cxi"), "--detector", "nope"]) == 2
    assert "unknown detector" in capsys.readouterr().err
    assert main(["simulate", "--frames", "0", "--out", str(tmp_path / "r.cxi")]) == 2
    assert main(["simulate", "--frames", "2", "--out", str(tmp_path / "r.cxi"), "--mix", "hits=oops"]) == 2
    assert main(["simulate", "--frames", "2", "--out", str(tmp_path / "r.cxi"), "--crop", "big"]) == 2
    assert main(["simulate", "--list-detectors"]) == 0
    assert "pilatus-6m" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_run(tmp_path):
    from peaknet_gui.sim.demo import demo_kinds, make_demo_run

    p = make_demo_run(tmp_path / "demo.cxi", frames=4, seed=1)
    src = open_run(str(p))
    try:
        assert len(src) == 4 and src[0].data.shape == (1920, 1920)
        assert src.metadata(0).wavelength_a == pytest.approx(1.30, rel=1e-6)
    finally:
        src.close()
    with h5py.File(p, "r", locking=False) as f:
        assert f["entry_1/result_1/nPeaks"][0] > 20  # the first demo frame is a clear hit
    assert demo_kinds(24).count("calibrant") == 1 and demo_kinds(48).count("calibrant") == 1


def test_cli_preset_and_background(tmp_path):
    out = tmp_path / "p.cxi"
    assert main(["simulate", "--frames", "3", "--out", str(out), "--detector", "pilatus-6m", "--crop", "256x256",
                 "--preset", "thaumatin", "--mix", "hits", "--no-progress"]) == 0
    with h5py.File(out, "r", locking=False) as f:
        import json

        params = [json.loads(p) for p in f["entry_1/sim/parameters"][:]]
        assert all(abs(p["crystals"][0]["cell"]["c"] - 150.0) < 1e-6 for p in params)  # thaumatin
        assert f["entry_1/sim"].attrs["preset"] == "thaumatin"
    out2 = tmp_path / "b.cxi"
    assert main(["simulate", "--frames", "3", "--out", str(out2), "--detector", "pilatus-6m", "--crop", "256x256",
                 "--background", "3,5", "--mix", "blanks", "--no-progress"]) == 0
    with h5py.File(out2, "r", locking=False) as f:
        data, mask = f["entry_1/data_1/data"][:], f["entry_1/data_1/mask"][:]
    # the frame (here the crop) has its median expected background in 3-5 photons (Poisson medians are integers)
    for d, m in zip(data, mask):
        assert 2.0 <= np.median(d[m == 0]) <= 6.0
    assert main(["simulate", "--frames", "1", "--out", str(out2), "--background", "5"]) == 2


def test_strict_peak_labels_only_turn_dont_care_spots_into_background(tmp_path):
    args = ["simulate", "--frames", "3", "--seed", "11", "--detector", "pilatus-6m", "--crop", "384x384",
            "--preset", "thaumatin", "--no-progress", "--labels", "observed"]
    assert main(args + ["--out", str(tmp_path / "a.cxi")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.cxi"), "--strict-peak-labels"]) == 0
    with h5py.File(tmp_path / "a.cxi", "r") as a, h5py.File(tmp_path / "b.cxi", "r") as b:
        np.testing.assert_array_equal(a["entry_1/data_1/data"][:], b["entry_1/data_1/data"][:])
        la, lb = a["entry_1/data_1/labels"][:], b["entry_1/data_1/labels"][:]
        changed = la != lb
        assert changed.sum() > 20  # spots DIALS' test misses on these frames
        assert np.all(la[changed] == 255) and np.all(lb[changed] == 0)
        assert np.array_equal(la == 1, lb == 1) and np.array_equal(la == 2, lb == 2)
    # strict labels are a variant of the DIALS-based rule only
    assert main(args[:-2] + ["--out", str(tmp_path / "c.cxi"), "--strict-peak-labels"]) == 2


def test_cli_ranges_overrides_draw_sharper_xfel_spots(tmp_path, capsys):
    base = ["simulate", "--frames", "6", "--seed", "5", "--detector", "eiger-4m-crop", "--xfel-spots", "--mix", "hits",
            "--no-progress"]
    sharp = '{"xfel_sigma_px": [0.1, 0.2], "xfel_p_small": 1.0, "xfel_domain_size_um": [1.0, 3.0]}'
    assert main(base + ["--out", str(tmp_path / "a.cxi")]) == 0
    assert main(base + ["--out", str(tmp_path / "b.cxi"), "--ranges", sharp]) == 0
    import json

    def spots(path):
        with h5py.File(path, "r", locking=False) as f:
            params = [json.loads(p) for p in f["entry_1/sim/parameters"][:]]
            n = f["entry_1/result_1/nPeaks"][:]
            npix = np.concatenate([f["entry_1/result_1/peakNPixels"][i, : n[i]] for i in range(len(n))])
            snr = np.concatenate([f["entry_1/result_1/peakSNR"][i, : n[i]] for i in range(len(n))])
        return [p["spot"]["sigma_px"] for p in params], npix[snr >= 6]

    sig_a, npix_a = spots(tmp_path / "a.cxi")
    sig_b, npix_b = spots(tmp_path / "b.cxi")
    assert all(0.1 <= s <= 0.2 for s in sig_b)  # every frame's spot width from the given range
    assert max(sig_a) > 0.2
    assert len(npix_b) > 50 and np.mean(npix_b <= 3) > np.mean(npix_a <= 3) + 0.1  # more 1-3 px spots


@pytest.mark.parametrize("ranges, says", [
    ("{oops", "is not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"sigma_pix": [1, 2]}', "no range called 'sigma_pix'"),
    ('{"xfel_sigma_px": [0.1]}', "xfel_sigma_px wants 2 numbers"),
    ('{"xfel_p_small": "most"}', "xfel_p_small wants a number"),
    ('{"xfel": 1}', "xfel wants true or false"),
])
def test_cli_ranges_bad_overrides_name_the_field(tmp_path, capsys, ranges, says):
    assert main(["simulate", "--frames", "1", "--out", str(tmp_path / "r.cxi"), "--ranges", ranges]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "r.cxi").exists()
