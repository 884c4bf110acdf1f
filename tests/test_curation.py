"""Label curation core (peaknet_gui.curation): label operations on a simulated frame with known
truth change exactly the expected pixels; the curation file round-trips through the training
reader (LabelledRun), appends and replaces; a read-only folder is named; the fine-tune job's
log reader, failure and cancel."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from peaknet_gui.curation import store
from peaknet_gui.curation.finetune import FineTuneJob, FineTuneSettings, TrainLog, train_argv
from peaknet_gui.curation.labels import (ARTIFACT, BACKGROUND, PEAK, UNLABELLED, LabelEditor, disc_pixels,
                                         labels_from_prediction, local_threshold, peak_table)
from peaknet_gui.curation.store import CuratedFrame, ReadOnlyFolderError, read_index, save_frames, write_subset
from peaknet_gui.errors import InputError
from peaknet_gui.model.dataset import LabelledRun

SHAPE = (96, 112)
SPOTS = [(20.3, 15.6), (60.2, 30.7), (80.5, 70.1), (35.8, 75.4), (90.1, 20.2)]  # (fs, ss), well apart


def simulated_frame(seed=1):
    """Poisson background 10 photons, five Gaussian spots (sigma 0.9 px, 400 photons); truth
    labels: the pixels where a spot adds more than 3 background sigmas (3 sqrt(10) photons); a
    ring band labelled artifact;
    a bad column."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    lam = np.full(SHAPE, 10.0)
    truth = np.zeros(SHAPE, np.uint8)
    for fs, ss in SPOTS:
        spot = 400.0 * np.exp(-((xx - fs) ** 2 + (yy - ss) ** 2) / (2 * 0.9**2)) / (2 * np.pi * 0.81)
        lam += spot
        truth[spot > 3.0 * np.sqrt(10.0)] = PEAK
    ring = np.abs(np.hypot(xx - 56, yy - 48) - 44) < 1.5
    ring &= truth == 0
    truth[ring] = ARTIFACT
    data = rng.poisson(lam).astype(np.float32)
    bad = np.zeros(SHAPE, bool)
    bad[:, 100] = True
    return data, truth, bad


def _predicted(truth):
    """The 'model': finds spots 0-3 (spot 3 dropped by a filter), misses spot 4, sees the ring."""
    peak_mask = (truth == PEAK) & ~_near(*SPOTS[4], 4.0)
    kept = SPOTS[:3]
    return peak_mask, truth == ARTIFACT, [p[0] for p in kept], [p[1] for p in kept]


def _near(fs, ss, r=3.5):
    return disc_pixels(SHAPE, fs, ss, r)


def test_labels_from_prediction_and_edits_change_exactly_the_expected_pixels():
    data, truth, bad = simulated_frame()
    pm, am, pfs, pss = _predicted(truth)
    labels = labels_from_prediction(SHAPE, pm, am, pfs, pss, bad=bad)
    for k, (fs, ss) in enumerate(SPOTS):
        spot = (truth == PEAK) & _near(fs, ss) & ~bad
        want = PEAK if k < 3 else UNLABELLED if k == 3 else BACKGROUND
        assert (labels[spot] == want).all(), k
    assert (labels[bad] == UNLABELLED).all() and (labels[am & ~bad] == ARTIFACT).all()

    ed = LabelEditor(data, labels, bad)
    before = ed.labels.copy()
    # remove a false peak: a click 1 px off spot 1 clears exactly its component
    fs, ss = SPOTS[1]
    n = ed.remove_peak(fs + 1.0, ss - 0.7)
    comp = (truth == PEAK) & _near(fs, ss)
    assert n == comp.sum() and ((ed.labels != before) == comp).all() and (ed.labels[comp] == BACKGROUND).all()
    assert ed.remove_peak(5.0, 5.0) == 0  # nothing there

    # add the missed spot 4: the local threshold's pixels, connected to the click
    fs, ss = SPOTS[4]
    preview = ed.spot_at(fs + 1.2, ss + 0.4)
    thr, med, sigma, _ = local_threshold(data, fs, ss, bad)
    assert 5 < med < 15 and 2 < sigma < 6
    assert preview[int(round(ss)), int(round(fs))]  # the spot's centre pixel
    assert (data[preview] > thr).all() and (preview <= _near(fs, ss, 3.0)).all()
    true4 = (truth == PEAK) & _near(fs, ss)
    assert (preview & true4).sum() >= 0.7 * true4.sum() and (preview & true4).sum() >= 0.7 * preview.sum()
    before = ed.labels.copy()
    assert ed.add_peak(preview) == preview.sum()
    assert ((ed.labels != before) == preview).all() and (ed.labels[preview] == PEAK).all()
    assert not ed.spot_at(8.0, 50.0).any()  # plain background: nothing above the threshold

    # paint artifact pixels with a brush (the bad column stays unlabelled), then erase them
    brush = disc_pixels(SHAPE, 100.0, 10.0, 4.0)
    before = ed.labels.copy()
    n = ed.paint_artifact(brush)
    expect = brush & ~bad & (before != ARTIFACT)
    assert n == expect.sum() and ((ed.labels != before) == expect).all()
    assert (ed.labels[brush & bad] == UNLABELLED).all()
    painted = ed.labels.copy()
    n = ed.erase_artifact(disc_pixels(SHAPE, 100.0, 10.0, 2.0))
    erased = disc_pixels(SHAPE, 100.0, 10.0, 2.0) & ~bad & (painted == ARTIFACT)
    assert n == erased.sum() and ((ed.labels != painted) == erased).all() and (ed.labels[erased] == BACKGROUND).all()

    # undo walks back to the prediction, redo forward again
    while ed.undo():
        pass
    assert (ed.labels == labels).all()
    assert ed.redo() == "remove peak" and ed.counts()["peaks"] == 2  # spots 0 and 2 (3 is 255)


def _frame(src, labels, data, bad):
    return CuratedFrame(source=src, event=int(src.split("//")[1]), data=data, labels=labels, bad=bad)


def test_curation_file_round_trip_append_replace_and_split(tmp_path):
    data, truth, bad = simulated_frame()
    data2, truth2, _ = simulated_frame(seed=2)
    path = store.curation_path(str(tmp_path / "run_7.cxi"))
    assert path == tmp_path / "run_7.curation.cxi"
    out = save_frames(path, [_frame("run_7.cxi //3", truth, data, bad)])
    assert (out.n_frames, out.added, out.replaced, out.held_out) == (1, 1, 0, 0)
    out = save_frames(path, [_frame("run_7.cxi //5", truth2, data2, None)])
    assert (out.n_frames, out.added, out.held_out) == (2, 1, 1)

    run = LabelledRun(path)  # what peaknet train / evaluate read
    try:
        assert len(run) == 2 and run.frame_shape == SHAPE
        np.testing.assert_array_equal(run.data(0), data)
        want = truth.copy()
        want[bad] = UNLABELLED
        np.testing.assert_array_equal(run.labels(0), want)
        np.testing.assert_array_equal(run.labels(1), truth2)
        assert run.bad(0).sum() == bad.sum()
        t = run.truth(0)
        assert len(t.fs) == len(SPOTS)
        for fs, ss in SPOTS:
            assert np.min(np.hypot(t.fs - fs, t.ss - ss)) < 0.5
    finally:
        run.close()

    # append a third frame; save the first again with a peak removed: replaced, split kept
    save_frames(path, [_frame("run_7.cxi //9", truth, data, bad)])
    edited = truth.copy()
    edited[(truth == PEAK) & _near(*SPOTS[0])] = BACKGROUND
    out = save_frames(path, [_frame("run_7.cxi //3", edited, data, bad)])
    assert (out.n_frames, out.added, out.replaced) == (3, 0, 1)
    idx = read_index(path)
    assert idx.sources == ["run_7.cxi //3", "run_7.cxi //5", "run_7.cxi //9"] and idx.events == [3, 5, 9]
    assert idx.train == [0, 2] and idx.held_out == [1]
    assert store.saved_labels(path, "run_7.cxi //3")[int(SPOTS[0][1]), int(SPOTS[0][0])] == BACKGROUND
    assert store.saved_labels(path, "run_7.cxi //4") is None
    run = LabelledRun(path)
    assert len(run.truth(0).fs) == len(SPOTS) - 1 and len(run.truth(2).fs) == len(SPOTS)
    run.close()

    # the train / held-out parts are labelled runs too
    held = write_subset(path, idx.held_out, tmp_path / "ft" / "heldout.cxi")
    run = LabelledRun(held)
    assert len(run) == 1 and (run.labels(0) == truth2).all()
    run.close()

    # another detector shape is refused with the file named
    with pytest.raises(InputError, match="curation.cxi: holds frames of 112x96"):
        save_frames(path, [_frame("other.cxi //0", np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.float32), None)])
    fx, fy, npx = peak_table(truth, data)
    assert len(fx) == len(SPOTS) and (npx >= 5).all()


def test_read_only_folder_is_named(tmp_path, monkeypatch):
    data, truth, bad = simulated_frame()
    ro = tmp_path / "beamtime_raw"
    ro.mkdir()
    os.chmod(ro, 0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the folder read-only to the access check
        real = os.access
        monkeypatch.setattr(store.os, "access", lambda p, mode: False if str(p) == str(ro) else real(p, mode))
    path = store.curation_path(str(ro / "run.cxi"))
    with pytest.raises(ReadOnlyFolderError, match=r"beamtime_raw: read-only.*choose a folder"):
        save_frames(path, [_frame("run.cxi //0", truth, data, bad)])
    os.chmod(ro, 0o755)
    mine = store.curation_path(str(ro / "run.cxi"), folder=str(tmp_path / "mine"))
    (tmp_path / "mine").mkdir()
    assert save_frames(mine, [_frame("run.cxi //0", truth, data, bad)]).n_frames == 1
    with pytest.raises(ReadOnlyFolderError, match="choose one"):
        store.curation_path(None)


def test_train_log_reader_takes_complete_lines(tmp_path):
    p = tmp_path / "train_log.jsonl"
    log = TrainLog(p)
    assert log.poll() == []
    p.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')
    assert log.poll() == [{"step": 1, "loss": 0.5}]
    with open(p, "a") as fh:
        fh.write('ss": 0.4}\n')
    assert log.poll() == [{"step": 2, "loss": 0.4}] and log.poll() == []
    argv = train_argv(FineTuneSettings(curation="c.cxi", out="o", init="w.safetensors", steps=3, crop=64,
                                       batch_size=2), ["a.cxi", "b.cxi"], tmp_path / "t")
    i = argv.index("train")
    assert argv[i + 1:i + 3] == ["--init", "w.safetensors"] and argv[argv.index("--data") + 1:argv.index("--out")] == ["a.cxi", "b.cxi"]
    assert argv[argv.index("--steps") + 1] == "3" and argv[argv.index("--crop") + 1] == "64"


def _run_job(settings):
    events = []
    job = FineTuneJob(settings, lambda kind, payload: events.append((kind, payload))).start()
    return job, events


def test_fine_tune_job_needs_held_out_frames_and_cancels_its_process(tmp_path, monkeypatch):
    data, truth, bad = simulated_frame()
    path = tmp_path / "run.curation.cxi"
    save_frames(path, [_frame("run.cxi //0", truth, data, bad)])
    job, events = _run_job(FineTuneSettings(curation=str(path), out=str(tmp_path / "ft")))
    assert job.wait(30)
    assert events[-1][0] == "failed" and "no held-out curated frame" in events[-1][1]["text"]
    assert str(path) in events[-1][1]["text"]

    # a child process that would run for a minute: Cancel ends it (and the job) within seconds
    save_frames(path, [_frame("run.cxi //1", truth, data, bad)])
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time, sys\nprint('started', flush=True)\ntime.sleep(60)\n")
    import peaknet_gui.curation.finetune as ft

    monkeypatch.setattr(ft, "train_argv", lambda *a, **k: [sys.executable, str(sleeper)])
    job, events = _run_job(FineTuneSettings(curation=str(path), out=str(tmp_path / "ft2"), replay=[str(path)]))
    t0 = time.time()
    while job.pid is None and time.time() - t0 < 20:
        time.sleep(0.05)
    pid = job.pid
    assert pid is not None
    time.sleep(0.3)
    t0 = time.time()
    job.cancel()
    assert job.wait(15) and time.time() - t0 < 8
    assert events[-1][0] == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
