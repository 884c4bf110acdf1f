"""The weights' operating point: per-peak confidence, its fit on validation runs, its storage."""

import json

import h5py
import numpy as np
import pytest
import torch

from _model_data import make_labelled_run
from peaknet_gui.cli.main import main as cli
from peaknet_gui.model import PeakNet, PeakNetConfig
from peaknet_gui.model.evaluate import evaluate_labelled_runs
from peaknet_gui.model.operating_point import OperatingPoint, fit_operating_point, write_operating_point
from peaknet_gui.model.weights import load_weights, save_weights, sha256_file
from peaknet_gui.peaks.components import peaks_from_mask

FALSE_PROB = 0.45  # peak probability of the oracle's invented peaks


class UnsureOracle(torch.nn.Module):
    """Returns the given labels with certainty, plus invented 3x3 'peaks' on background whose peak
    probability is only ``fake_prob`` (FALSE_PROB: they still win the argmax)."""

    stride = 1

    def __init__(self, labels, fake_centres, fake_prob=FALSE_PROB):
        super().__init__()
        self.fake_centres = list(fake_centres)
        logits = np.zeros((3,) + labels.shape, np.float32)
        for c in range(3):
            logits[c][labels == c] = 10.0
        # background 0.40, peak 0.45, artifact 0.15 -> log-probabilities as logits
        for y, x in fake_centres:
            sl = (slice(y - 1, y + 2), slice(x - 1, x + 2))
            bg, art = (0.40, 0.15) if fake_prob == FALSE_PROB else ((1.0 - fake_prob) / 2,) * 2
            logits[0][sl], logits[1][sl], logits[2][sl] = np.log(bg), np.log(fake_prob), np.log(art)
        self.logits = torch.from_numpy(logits)[None]
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits


def _oracle_run(tmp_path, fake_prob=FALSE_PROB):
    path = make_labelled_run(tmp_path / "r.cxi", n_frames=1, shape=(64, 64), n_peaks=6, ring=False, seed=3)
    with h5py.File(path) as f:
        labels = f["/entry_1/data_1/labels"][0]
    free = np.argwhere(labels == 0)
    rng = np.random.default_rng(0)
    fakes = []
    for y, x in free[rng.permutation(len(free))]:
        if 3 <= y < 61 and 3 <= x < 61 and not (labels[y - 4 : y + 5, x - 4 : x + 5] != 0).any():
            if all(abs(y - a) > 6 or abs(x - b) > 6 for a, b in fakes):
                fakes.append((int(y), int(x)))
        if len(fakes) == 4:
            break
    assert len(fakes) == 4
    return path, UnsureOracle(labels, fakes, fake_prob)


def test_components_carry_their_confidence_and_low_ones_are_dropped():
    data = np.zeros((20, 20), np.float32)
    mask = np.zeros((20, 20), bool)
    score = np.zeros((20, 20), np.float32)
    for (y, x), p in (((5, 5), 0.9), ((14, 14), 0.5)):
        data[y - 1 : y + 2, x - 1 : x + 2] = 10
        mask[y - 1 : y + 2, x - 1 : x + 2] = True
        score[y - 1 : y + 2, x - 1 : x + 2] = p / 2
        score[y, x] = p
    peaks = peaks_from_mask(data, mask, score=score)
    assert sorted(np.round(peaks.confidence, 3).tolist()) == [0.5, 0.9]
    kept = peaks_from_mask(data, mask, score=score, min_score=0.6)
    assert len(kept) == 1 and kept.fs[0] == pytest.approx(5.0) and kept.confidence[0] == pytest.approx(0.9)
    assert np.isnan(peaks_from_mask(data, mask).confidence).all()  # no score map: unknown
    with pytest.raises(Exception, match="score map"):
        peaks_from_mask(data, mask, score=score[:5])


def test_fit_finds_the_confidence_that_drops_the_unsure_peaks(tmp_path):
    path, net = _oracle_run(tmp_path)
    all_peaks = evaluate_labelled_runs(net, [str(path)])
    assert all_peaks["peak_fp"] >= 4  # the invented peaks count against argmax
    op, rep = fit_operating_point(net, [str(path)])
    assert FALSE_PROB < op.peak_min_confidence <= 0.9
    kept = evaluate_labelled_runs(net, [str(path)], min_confidence=op.peak_min_confidence)
    assert kept["peak_fp"] == all_peaks["peak_fp"] - 4 and kept["peak_tp"] == all_peaks["peak_tp"]
    assert rep["chosen"]["mean_f1"] > rep["argmax"]["mean_f1"]
    assert op.fitted_on == ["r.cxi"]


def test_fit_finds_the_pixel_snr_that_drops_sure_peaks_on_flat_background(tmp_path):
    """The network is as sure (0.99995) of four 'peaks' where the frame holds only Poisson background:
    no confidence separates them from the true peaks, the brightest pixel's SNR does."""
    path, net = _oracle_run(tmp_path, fake_prob=0.99995)
    all_peaks = evaluate_labelled_runs(net, [str(path)])
    assert all_peaks["peak_fp"] >= 4
    op, rep = fit_operating_point(net, [str(path)], grid=(0.0, 0.5, 0.95), snr_grid=(0.0, 3.0, 6.0, 9.0))
    assert op.peak_min_pixel_snr in (3.0, 6.0) and op.peak_min_confidence == 0.0
    kept = evaluate_labelled_runs(net, [str(path)], min_pixel_snr=op.peak_min_pixel_snr)
    assert kept["peak_fp"] == all_peaks["peak_fp"] - 4
    assert kept["peak_recall_snr6"] == all_peaks["peak_recall_snr6"] == 1.0
    assert rep["chosen"]["mean_f1"] > rep["argmax"]["mean_f1"]
    assert {(c["threshold"], c["pixel_snr"]) for c in rep["curve"]} == {(t, s) for t in (0.0, 0.5, 0.95)
                                                                         for s in (0.0, 3.0, 6.0, 9.0)}


class FaintOracle(torch.nn.Module):
    """Under-confident, as a focal-loss network is on faint spots: every true peak pixel gets a peak
    probability of only 0.3 (background 0.6 wins the argmax), four invented 3x3 spots 0.12."""

    stride = 1

    def __init__(self, labels, fake_centres):
        super().__init__()
        probs = np.zeros((3,) + labels.shape, np.float32)
        probs[0], probs[1], probs[2] = 0.98, 0.01, 0.01
        probs[:, labels == 1] = np.array([0.6, 0.3, 0.1], np.float32)[:, None]
        for y, x in fake_centres:
            probs[:, y - 1 : y + 2, x - 1 : x + 2] = np.array([0.78, 0.12, 0.1], np.float32)[:, None, None]
        self.logits = torch.from_numpy(np.log(probs))[None]
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits


def test_fit_lowers_the_segmentation_threshold_for_an_under_confident_network(tmp_path):
    """argmax finds none of the faint true peaks; the fitted segmentation threshold (between the
    invented spots' 0.12 and the peaks' 0.3) finds all of them and none of the invented ones."""
    path, oracle = _oracle_run(tmp_path)
    with h5py.File(path) as f:
        labels = f["/entry_1/data_1/labels"][0]
    net = FaintOracle(labels, oracle.fake_centres)
    argmax = evaluate_labelled_runs(net, [str(path)])
    assert argmax["peak_tp"] == 0
    op, rep = fit_operating_point(net, [str(path)], snr_grid=(0.0,))
    assert 0.12 < op.peak_threshold <= 0.3 and op.segmentation_threshold == op.peak_threshold
    kept = evaluate_labelled_runs(net, [str(path)], peak_threshold=op.segmentation_threshold,
                                  min_confidence=op.peak_min_confidence)
    assert kept["peak_recall"] == 1.0 and kept["peak_fp"] == 0
    lower = evaluate_labelled_runs(net, [str(path)], peak_threshold=0.1)
    assert lower["peak_fp"] >= 4  # below the invented spots' probability they come back
    assert rep["chosen"]["mean_f1"] == 1.0 and rep["argmax"]["mean_f1"] == 0.0
    assert OperatingPoint.from_metadata({"operating_point": op.as_dict()}).peak_threshold == op.peak_threshold


def test_operating_point_is_stored_in_the_sidecar_without_touching_the_weights(tmp_path):
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2))
    w = tmp_path / "w.safetensors"
    save_weights(net, w, metadata={"note": "kept"})
    digest = sha256_file(w)
    write_operating_point(w, OperatingPoint(0.6, ["val.cxi"], "test", peak_min_pixel_snr=7.0),
                          {"chosen": {"threshold": 0.6}})
    _, info = load_weights(w)  # checksum still verified
    assert info.verified and sha256_file(w) == digest
    assert info.metadata["note"] == "kept"
    assert OperatingPoint.from_metadata(info.metadata).peak_min_confidence == 0.6
    assert OperatingPoint.from_metadata(info.metadata).peak_min_pixel_snr == 7.0
    side = json.loads((tmp_path / "w.json").read_text())
    assert side["metadata"]["operating_point"]["fit"]["chosen"]["threshold"] == 0.6


@pytest.mark.parametrize("raw", [None, {}, {"operating_point": {"peak_min_confidence": "x"}},
                                 {"operating_point": {"peak_min_confidence": 1.5}}])
def test_missing_or_bad_operating_point_means_argmax(raw):
    assert OperatingPoint.from_metadata(raw).peak_min_confidence == 0.0
    assert OperatingPoint.from_metadata(raw).segmentation_threshold is None
    assert OperatingPoint.from_metadata(raw).peak_min_pixel_snr == 0.0


def test_photon_floor_only_where_the_sidecar_says_so():
    """Sidecars fitted before the photon floor (no key) keep the pixel SNR of their fit."""
    assert OperatingPoint.from_metadata({"operating_point": {"peak_min_pixel_snr": 7}}).pixel_snr_photon_floor is False
    assert OperatingPoint.from_metadata({"operating_point": {"pixel_snr_photon_floor": "yes"}}).pixel_snr_photon_floor is False
    assert OperatingPoint.from_metadata({"operating_point": {"pixel_snr_photon_floor": True}}).pixel_snr_photon_floor is True


@pytest.mark.parametrize("value", ["x", -1, float("inf"), None])
def test_bad_pixel_snr_in_the_sidecar_means_no_test(value):
    op = OperatingPoint.from_metadata({"operating_point": {"peak_min_confidence": 0.5, "peak_min_pixel_snr": value}})
    assert op.peak_min_confidence == 0.5 and op.peak_min_pixel_snr == 0.0


def test_cli_fit_writes_and_evaluate_uses_it(tmp_path, capsys):
    run = make_labelled_run(tmp_path / "r.cxi", n_frames=2, shape=(64, 64))
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2))
    w = tmp_path / "w.safetensors"
    save_weights(net, w)
    assert cli(["evaluate", "--weights", str(w), "--data", str(run), "--fit-operating-point", "--write", "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    chosen = fit["operating_point"]["peak_min_confidence"]
    chosen_snr = fit["operating_point"]["peak_min_pixel_snr"]
    assert chosen == fit["chosen"]["threshold"] and chosen_snr == fit["chosen"]["pixel_snr"] and len(fit["curve"]) > 10
    assert cli(["evaluate", "--weights", str(w), "--data", str(run), "--fit-operating-point"]) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.strip().startswith("pixel SNR")]
    assert len(rows) == len({c["pixel_snr"] for c in fit["curve"]}) and all("worst blank frame" in r for r in rows)
    assert f"peak_min_confidence {chosen:g}, peak_min_pixel_snr {chosen_snr:g}" in text and "not written" in text
    assert cli(["evaluate", "--weights", str(w), "--data", str(run), "--json"]) == 0
    used = json.loads(capsys.readouterr().out)
    assert used["min_confidence"] == chosen and used["min_pixel_snr"] == chosen_snr
    assert cli(["evaluate", "--weights", str(w), "--data", str(run), "--json", "--min-confidence", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["min_confidence"] == 0.0
    with pytest.raises(SystemExit) as bad:  # a usage error, like peaknet find's
        cli(["evaluate", "--weights", str(w), "--data", str(run), "--min-confidence", "1.2"])
    assert bad.value.code == 2
    assert "a confidence is in [0, 1), not 1.2" in capsys.readouterr().err
    assert cli(["evaluate", "--weights", str(w), "--data", str(run), "--json", "--min-pixel-snr", "6.5"]) == 0
    assert json.loads(capsys.readouterr().out)["min_pixel_snr"] == 6.5
    with pytest.raises(SystemExit) as bad:
        cli(["evaluate", "--weights", str(w), "--data", str(run), "--min-pixel-snr", "-2"])
    assert bad.value.code == 2
    assert "a pixel SNR is a number >= 0, not -2" in capsys.readouterr().err


def test_objective_uses_every_truth_peak_when_labels_follow_the_snr_rule(tmp_path):
    import json as _json

    import h5py

    from peaknet_gui.model.operating_point import _f1, labelled_by_snr_rule

    for mode in ("snr", "observed"):
        with h5py.File(tmp_path / f"{mode}.cxi", "w") as f:
            f.create_group("entry_1/sim").attrs["label_rule"] = _json.dumps({"mode": mode})
    assert labelled_by_snr_rule(tmp_path / "snr.cxi")
    assert not labelled_by_snr_rule(tmp_path / "observed.cxi")
    assert not labelled_by_snr_rule(tmp_path / "missing.cxi")
    summary = {"peak_f1": 0.7, "peak_f1_snr6": 0.9}
    assert _f1(summary, complete_truth=True) == 0.7 and _f1(summary) == 0.9


def test_fit_keeps_blank_frames_blank(monkeypatch):
    """F1 alone prefers keeping five unsure noise peaks on a blank frame (they cost less precision
    than the four unsure true peaks of the hit are worth); the blank-frame constraint does not."""
    import peaknet_gui.model.operating_point as opm
    from peaknet_gui.model.evaluate import FramePeaks

    truth = np.array([[10.0 + 12 * k, 20.0] for k in range(10)])
    hit = FramePeaks("val.cxi//0", truth.copy(), np.array([0.9] * 6 + [0.5] * 4), truth, np.full(10, 10.0),
                     np.zeros((0, 2)))
    noise = np.array([[15.0 + 20 * k, 60.0] for k in range(5)])
    blank = FramePeaks("val.cxi//1", noise, np.full(5, 0.5), np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)))
    assert opm.is_blank(blank) and not opm.is_blank(hit)
    monkeypatch.setattr(opm, "collect_frames", lambda *a, **k: {0.0: [(0, hit), (0, blank)]})
    kw = dict(grid=(0.0, 0.55), snr_grid=(0.0,), peak_thresholds=(0.0,))
    free, rep_free = fit_operating_point(None, ["val.cxi"], max_blank_peaks=None, **kw)
    assert free.peak_min_confidence == 0.0 and rep_free["chosen"]["blank_peaks"] == 5.0
    assert rep_free["chosen"]["mean_f1"] == pytest.approx(0.8) and rep_free["blank_constraint"] == "none"
    held, rep = fit_operating_point(None, ["val.cxi"], max_blank_peaks=2.0, **kw)
    assert held.peak_min_confidence == 0.55 and rep["chosen"]["blank_peaks"] == 0.0
    assert rep["chosen"]["mean_f1"] == pytest.approx(0.75) and rep["blank_constraint"].startswith("held")
    assert "blank frame" in held.objective
    assert held.pixel_snr_photon_floor is True and held.as_dict()["pixel_snr_photon_floor"] is True
    none_fits, rep_none = fit_operating_point(None, ["val.cxi"], max_blank_peaks=2.0, grid=(0.0,), snr_grid=(0.0,),
                                              peak_thresholds=(0.0,))
    assert none_fits.peak_min_confidence == 0.0 and rep_none["blank_constraint"].startswith("no point")


def test_blank_constraint_holds_on_every_blank_frame_not_on_the_mean(monkeypatch):
    """Three clean blank frames and one with six unsure noise peaks average 1.5 peaks per blank,
    yet the fourth frame reads as a hit: the constraint binds on the worst blank frame."""
    import peaknet_gui.model.operating_point as opm
    from peaknet_gui.model.evaluate import FramePeaks

    truth = np.array([[10.0 + 12 * k, 20.0] for k in range(10)])
    hit = FramePeaks("val.cxi//0", truth.copy(), np.array([0.9] * 6 + [0.5] * 4), truth, np.full(10, 10.0),
                     np.zeros((0, 2)))
    none = np.zeros((0, 2))
    clean = [FramePeaks(f"val.cxi//{k}", none, np.zeros(0), none, np.zeros(0), none) for k in (1, 2, 3)]
    noise = np.array([[15.0 + 20 * k, 60.0] for k in range(6)])
    noisy = FramePeaks("val.cxi//4", noise, np.full(6, 0.5), none, np.zeros(0), none)
    records = [(0, hit)] + [(0, b) for b in clean] + [(0, noisy)]
    monkeypatch.setattr(opm, "collect_frames", lambda *a, **k: {0.0: records})
    op, rep = fit_operating_point(None, ["val.cxi"], max_blank_peaks=5.0, grid=(0.0, 0.55), snr_grid=(0.0,),
                                  peak_thresholds=(0.0,))
    assert op.peak_min_confidence == 0.55
    assert rep["chosen"]["blank_peaks_max"] == 0 and rep["blank_constraint"].startswith("held")
    argmax = rep["argmax"]
    assert argmax["blank_peaks"] == pytest.approx(1.5) and argmax["blank_peaks_max"] == 6
