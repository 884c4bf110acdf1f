"""Evaluation figures: labelled runs, real frames with spot lists, the CLI."""

import json

import numpy as np
import pytest
import torch

from _model_data import make_labelled_run
from peaknet_gui.cli.main import main as cli
from peaknet_gui.model import PeakNet, PeakNetConfig
from peaknet_gui.model.evaluate import Scores, evaluate_labelled_runs, read_spots_csv
from peaknet_gui.model.weights import save_weights


class Oracle(torch.nn.Module):
    """A 'network' that returns the labels it was given for its input (for exact figures)."""

    stride = 1

    def __init__(self, labels):
        super().__init__()
        self.labels = labels
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        lab = torch.from_numpy(self.labels.astype(np.int64))[None]
        return torch.nn.functional.one_hot(lab, 3).permute(0, 3, 1, 2).float() * 10


def test_scores_by_hand():
    s = Scores()
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    lab = np.array([[0, 1, 0], [2, 255, 0]])
    s.add_pixels(pred, lab, np.ones(pred.shape, bool))
    d = s.summary()
    assert d["iou_peak"] == 0.5 and d["iou_artifact"] == 1.0 and d["iou_background"] == pytest.approx(2 / 3)
    s.add_peaks(np.array([[1.0, 1.0], [9.0, 9.0]]), np.array([[1.5, 1.0], [5.0, 5.0]]), np.array([10.0, 3.0]), 2.0)
    d = s.summary()
    assert (d["peak_tp"], d["peak_fp"], d["peak_fn"]) == (1, 1, 1)
    assert d["peak_recall_snr6"] == 1.0 and d["peak_f1_snr6"] == pytest.approx(2 * 0.5 / 1.5)


def test_perfect_predictions_score_one(tmp_path, monkeypatch):
    path = make_labelled_run(tmp_path / "r.cxi", n_frames=2, shape=(64, 64), n_peaks=5)
    import h5py

    with h5py.File(path) as f:
        labels = f["/entry_1/data_1/labels"][()]
    d0 = evaluate_labelled_runs(Oracle(labels[0]), [str(path)], max_frames=1)
    assert d0["iou_peak"] == 1.0 and d0["iou_background"] == 1.0
    assert d0["peak_recall"] >= 0.8 and d0["peak_precision"] >= 0.8  # centroids of labelled blobs
    assert d0["artifact_iou"] == 1.0


def test_evaluation_masks_the_runs_hot_pixels_as_the_program_does(tmp_path):
    """A stuck pixel (5000 counts in every frame of a Poisson background of 2) that the network
    calls a peak is a false positive unless the run's hot pixels are masked -- the program masks
    them (HotPixelTracker), so evaluation and the operating-point fit must too."""
    import h5py

    path = make_labelled_run(tmp_path / "r.cxi", n_frames=6, shape=(64, 64), n_peaks=3, ring=False)
    with h5py.File(path, "r+") as f:
        data = f["/entry_1/data_1/data"]
        stack = data[()]
        stack[:, 30, 40] = 5000.0
        data[...] = stack
        labels = f["/entry_1/data_1/labels"][0]
    assert labels[30, 40] == 0
    calls_it_a_peak = labels.copy()
    calls_it_a_peak[30, 40] = 1
    net = Oracle(calls_it_a_peak)
    raw = evaluate_labelled_runs(net, [str(path)], max_frames=1, hot_pixels=False)
    masked = evaluate_labelled_runs(net, [str(path)], max_frames=1)
    assert raw["peak_fp"] == masked["peak_fp"] + 1 and raw["peak_tp"] == masked["peak_tp"]

    from peaknet_gui.model.dataset import LabelledRun

    run = LabelledRun(path)
    try:
        assert not run.bad(0)[30, 40]
        assert run.mask_hot_pixels() == 1 and run.bad(0)[30, 40] and run.bad(0).sum() == 1
    finally:
        run.close()


def test_spots_csv_corner_convention_and_raw_columns(tmp_path):
    p = tmp_path / "a.spots.csv"
    p.write_text("panel,x_fast_px,y_slow_px,intensity_sum\n0,10.5,20.5,5\n0,1.0,2.0,3\n")
    assert read_spots_csv(p).tolist() == [[10.0, 20.0], [0.5, 1.5]]
    q = tmp_path / "b.spots.csv"
    q.write_text("panel,x_fast_px,y_slow_px,raw_x,raw_y\n21,134.826,183.219,716.826,553.219\n")
    assert np.allclose(read_spots_csv(q), [[716.326, 552.719]])


def test_cli_evaluate_json(tmp_path, capsys):
    run = make_labelled_run(tmp_path / "r.cxi", n_frames=2, shape=(64, 64))
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2))
    save_weights(net, tmp_path / "w.safetensors")
    assert cli(["evaluate", "--weights", str(tmp_path / "w.safetensors"), "--data", str(run), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    for k in ("iou_peak", "peak_precision", "peak_recall", "peak_f1", "peak_f1_snr6"):
        assert k in rep["labelled"]
    assert cli(["evaluate", "--weights", str(tmp_path / "missing.safetensors"), "--data", str(run)]) == 2


def test_found_marginal_spots_are_not_false_positives():
    s = Scores()
    found = np.array([[1.0, 1.0], [9.0, 9.0], [20.0, 20.0]])
    rec = s.add_peaks(found, np.array([[1.0, 1.0]]), None, 2.0, marginal_xy=np.array([[9.5, 9.0]]))
    assert (rec["tp"], rec["fp"], rec["marginal_found"]) == (1, 1, 1)
    d = s.summary()
    assert d["peak_fp"] == 1 and d["peak_marginal"] == 1 and d["peak_precision"] == 0.5


def test_found_faint_true_reflections_are_not_false_positives():
    """A simulated run's faint reflections (label 0, expected SNR >= 2) are "don't care" like its
    marginal spots: a peak found there is real, neither a hit nor a false positive."""
    from peaknet_gui.model.dataset import TruthPeaks

    t = TruthPeaks(np.array([1.0]), np.array([1.0]), marginal_fs=np.array([9.5]), marginal_ss=np.array([9.0]),
                   faint_fs=np.array([30.0]), faint_ss=np.array([31.0]))
    s = Scores()
    found = np.array([[1.0, 1.0], [9.0, 9.0], [30.5, 30.0], [50.0, 50.0]])
    rec = s.add_peaks(found, np.stack([t.fs, t.ss], 1), None, 2.0, marginal_xy=t.dont_care_xy())
    assert (rec["tp"], rec["fp"], rec["marginal_found"]) == (1, 1, 2)
    old = TruthPeaks(np.array([1.0]), np.array([1.0]))  # runs written before the faint list: nothing to ignore
    assert old.dont_care_xy().shape == (0, 2)
