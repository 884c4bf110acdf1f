"""Whether a frame's background agrees with the gain its geometry states (peaks/gain_check.py), the
weights' operating point for an untrusted gain, and the analyser's choice between the two."""

import json

import numpy as np
import pytest

from conftest import real_file
from peaknet_gui.errors import InputError
from peaknet_gui.frame import EventId, Frame
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.model.operating_point import OperatingPoint, write_operating_point
from peaknet_gui.peaks.gain_check import UNDERSTATED_DISPERSION, background_dispersion, check_gain

SHAPE = (256, 256)


def _geometry(adu_per_photon=None, shape=SHAPE):
    panel = Panel("p", 0, shape[1] - 1, 0, shape[0] - 1, res=1 / 110e-6, clen=0.1, adu_per_photon=adu_per_photon)
    return Geometry(panels=[panel], photon_energy_ev=9500.0, clen=0.1)


def _background(rng, photons=0.5, gain=25.0, read_adu=3.0, offset=0.0, shape=SHAPE, spots=20):
    """A detector reading in ADU: Poisson photons of ``gain`` ADU each, Gaussian read noise, bright spots."""
    data = gain * rng.poisson(photons, shape) + rng.normal(offset, read_adu, shape)
    for y, x in rng.integers(4, shape[0] - 4, (spots, 2)):
        data[y, x] += gain * 200.0
    return data.astype(np.float32)


def test_the_stated_gain_is_trusted_only_where_the_background_agrees():
    rng = np.random.default_rng(3)
    ok = np.ones(SHAPE, bool)
    cspad = _background(rng)  # 25 ADU per photon, 0.5 photons per pixel
    right = check_gain(cspad, ok, _geometry(25.0))
    assert right.reliable and 0.8 < right.dispersion < 1.2 and right.stated_adu == 25.0
    wrong = check_gain(cspad, ok, _geometry(1.0))  # a geometry that says 1 ADU per photon
    assert not wrong.reliable and wrong.dispersion > 10 * UNDERSTATED_DISPERSION
    assert "1 ADU per photon" in wrong.message("run.h5") and "too small" in wrong.message("run.h5")
    counter = rng.poisson(3.0, SHAPE).astype(np.float32)  # a photon counter at 1 count per photon
    assert check_gain(counter, ok, _geometry(1.0)).reliable
    # a sparse background whose read noise stands out (0.05 photons, read noise 0.3 photon): still its gain
    sparse = _background(rng, photons=0.05, gain=10.0, read_adu=3.0, offset=0.0)
    assert check_gain(sparse, ok, _geometry(10.0)).reliable
    # no gain stated: the floor cannot be set, whatever the data
    none = check_gain(counter, ok, _geometry(None))
    assert not none.reliable and np.isnan(none.stated_adu) and "states no detector gain" in none.message("x.cbf")
    assert not check_gain(counter, ok, None).reliable


def test_frames_too_small_or_too_bad_to_measure_keep_the_stated_gain():
    rng = np.random.default_rng(4)
    small = _background(rng, shape=(64, 64))  # 64 blocks < MIN_BLOCKS
    assert np.isnan(background_dispersion(small, np.ones(small.shape, bool), 1.0))
    assert check_gain(small, np.ones(small.shape, bool), _geometry(1.0, small.shape)).reliable
    cspad = _background(rng)
    assert check_gain(cspad, np.zeros(SHAPE, bool), _geometry(1.0)).reliable  # nothing usable: no verdict


def test_real_cspad_with_its_converted_geometry_is_caught_and_the_others_pass():
    from peaknet_gui.geometry import read_geom
    from peaknet_gui.model.realframes import read_real_frames

    cases = [("thermolysin_cspad/idx-20130301060858401_rawlayout.h5", "thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom", False),
             ("cspad_tile/cxitut13_r10_32_cspad2x1.h5", "cspad_tile/cspad2x1.geom", True),
             ("thaumatin_grid/thau_3_2_0001.cbf.bz2", None, True)]
    for data_rel, geom_rel, expected in cases:
        path = real_file(data_rel)
        geom = read_geom(real_file(geom_rel)) if geom_rel else None
        _, data, bad, geometry = next(iter(read_real_frames(path, geom)))
        usable = np.ones(data.shape, bool) if bad is None else ~bad
        check = check_gain(data, usable, geometry)
        assert check.reliable is expected, (data_rel, check)
        if expected:
            assert 0.8 < check.dispersion < 1.2  # photons as the geometry states them
        else:
            assert 3.0 < check.dispersion < 8.0  # 1 ADU per photon stated; the detector gives ~25


def test_the_point_for_an_unreliable_gain_is_stored_beside_the_point(tmp_path):
    from peaknet_gui.model import PeakNet, PeakNetConfig
    from peaknet_gui.model.weights import load_weights, save_weights

    w = tmp_path / "w.safetensors"
    save_weights(PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2)), w)
    with pytest.raises(InputError, match="fit the operating point first"):
        write_operating_point(w, OperatingPoint(0.45, peak_min_pixel_snr=12), for_unreliable_gain=True)
    write_operating_point(w, OperatingPoint(0.0, peak_min_pixel_snr=6, peak_threshold=0.1, pixel_snr_photon_floor=True))
    write_operating_point(w, OperatingPoint(0.45, peak_min_pixel_snr=12), {"chosen": {"threshold": 0.45}},
                          for_unreliable_gain=True)
    op = OperatingPoint.from_metadata(load_weights(w)[1].metadata)
    assert (op.peak_min_pixel_snr, op.peak_threshold, op.pixel_snr_photon_floor) == (6, 0.1, True)
    fallback = op.when_gain_unreliable
    assert (fallback.peak_min_confidence, fallback.peak_min_pixel_snr, fallback.pixel_snr_photon_floor) == (0.45, 12, False)
    assert op.for_gain(True) is op and op.for_gain(False) is fallback and fallback.when_gain_unreliable is None
    # refitting the point keeps the fallback of the same weights
    write_operating_point(w, OperatingPoint(0.0, peak_min_pixel_snr=5, peak_threshold=0.3, pixel_snr_photon_floor=True))
    side = json.loads((tmp_path / "w.json").read_text())["metadata"]["operating_point"]
    assert side["peak_min_pixel_snr"] == 5 and side["when_gain_unreliable"]["peak_min_pixel_snr"] == 12
    assert OperatingPoint.from_metadata({"operating_point": {"when_gain_unreliable": "x"}}).when_gain_unreliable is None


def test_the_analyzer_uses_the_fallback_where_the_background_contradicts_the_gain(caplog):
    """Same frame, same weights: with the detector's gain stated the weights' point keeps the
    spots; with 1 ADU per photon stated the fallback (here: a pixel SNR no spot reaches) decides,
    the result says why, and the log says it once per geometry."""
    from _pipeline_frames import ThresholdModel

    from peaknet_gui.pipeline.analyzer import FrameAnalyzer

    rng = np.random.default_rng(8)
    data = _background(rng, photons=2.0, gain=25.0, read_adu=3.0, spots=0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for cy, cx in [(60.2, 70.4), (150.6, 40.3), (200.1, 190.8), (90.5, 210.2)]:
        data += (25.0 * 80 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.8**2))).astype(np.float32)
    frame = Frame(data=data, event=EventId("run.h5", 0), serial=0)
    an = FrameAnalyzer("peaknet", device="cpu", backend="torch", model=ThresholdModel())
    an.predictor.operating_point = OperatingPoint(0.0, when_gain_unreliable=OperatingPoint(0.0, peak_min_pixel_snr=1e5))
    results = {}
    for gain in (25.0, 1.0):
        geom = _geometry(gain)
        an.geometry_for = lambda fr, g=geom: g
        with caplog.at_level("WARNING"):
            results[gain] = [an.analyze([frame])[0] for _ in range(2)]
    right, wrong = results[25.0][0], results[1.0][0]
    assert len(right.peaks) >= 4 and right.gain_warning == ""
    assert len(wrong.peaks) == 0 and "1 ADU per photon" in wrong.gain_warning
    assert sum("1 ADU per photon" in r.getMessage() for r in caplog.records) == 1
    # settings the user gives still win over either point
    from peaknet_gui.pipeline.settings import FinderSettings

    assert an.min_pixel_snr(FinderSettings(min_pixel_snr=3.0), an.predictor.operating_point.when_gain_unreliable) == 3.0


def test_evaluate_judges_real_frames_as_the_program_does(capsys):
    """``peaknet evaluate`` on the real CSPAD still with its converted geometry (1 ADU/photon) uses the
    shipped weights' point for an unreliable gain, as ``peaknet find`` does; the command line's
    values still win."""
    from peaknet_gui.cli.main import main as cli
    from peaknet_gui.model.weights import load_weights

    data = real_file("thermolysin_cspad/idx-20130301060858401_rawlayout.h5")
    geom = real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom")
    op = OperatingPoint.from_metadata(load_weights()[1].metadata)
    if op.when_gain_unreliable is None:
        pytest.skip("the weights carry no point for an unreliable gain")
    args = ["evaluate", "--data", str(data), "--geom", str(geom), "--json"]
    assert cli(args) == 0
    fallback = json.loads(capsys.readouterr().out)["real"]["per_frame"][0]
    forced = [*args, "--min-confidence", str(op.peak_min_confidence), "--min-pixel-snr", str(op.peak_min_pixel_snr),
              "--peak-threshold", str(op.peak_threshold)]
    assert cli(forced) == 0
    main_point = json.loads(capsys.readouterr().out)["real"]["per_frame"][0]
    assert fallback["found"] < 200 < 2 * fallback["found"] < main_point["found"]
    assert fallback["precision"] > main_point["precision"] + 0.3


def test_find_reports_frames_judged_for_an_unreliable_gain(tmp_path, capsys, caplog):
    """``peaknet find`` on the CSPAD still with its converted geometry: the log warns once, the
    summary counts the frame and says why, in summary.json and on the terminal."""
    from peaknet_gui.cli.main import main as cli
    from peaknet_gui.model.weights import load_weights

    if OperatingPoint.from_metadata(load_weights()[1].metadata).when_gain_unreliable is None:
        pytest.skip("the weights carry no point for an unreliable gain")
    data = real_file("thermolysin_cspad/idx-20130301060858401_rawlayout.h5")
    geom = real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom")
    with caplog.at_level("WARNING"):
        assert cli(["find", str(data), "--geom", str(geom), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert sum("1 ADU per photon allows" in r.getMessage() for r in caplog.records) == 1
    totals = json.loads((tmp_path / "out" / "summary.json").read_text())["totals"]
    assert totals["gain_untrusted_frames"] == 1 and "too small" in totals["gain_warning"]
    assert "gain        1 frame(s) judged by the point for an unreliable gain" in capsys.readouterr().out


def test_the_warning_survives_the_compact_results_of_the_cluster_and_the_window_store():
    from peaknet_gui.cluster.compact import CompactResult
    from peaknet_gui.peaks.peaklist import PeakList
    from peaknet_gui.pipeline.result import FrameResult

    frame = Frame(data=np.zeros((8, 8), np.float32), event=EventId("a.h5", 3), serial=3)
    for warning in ("a.h5: the background varies more than 1 ADU per photon allows", ""):
        res = FrameResult(serial=3, event=frame.event, peaks=PeakList(), hit=False, gain_warning=warning)
        assert CompactResult.from_result(0, 3, frame, res).result().gain_warning == warning
