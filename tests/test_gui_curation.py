"""The label curation dock and the fine-tune loop on a small simulated run, offscreen with the
real analyzer and model: remove a peak and add one back by clicks on the image, save two frames
(one trains, one is held out), fine-tune 3 steps as a child process (progress to 100 %, the loss
curve, before/after figures), switch the window to the new weights and back; Cancel ends the
process; a failed training is a dialog with its last lines."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import close_window, make_window, shared_predictor, wait_complete  # noqa: E402
from test_gui_workbench_masks import _click  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    from peaknet_gui.cli.main import main

    d = tmp_path_factory.mktemp("curation_run")
    path = d / "sim.cxi"
    assert main(["simulate", "--frames", "2", "--crop", "160x160", "--mix", "hits", "--seed", "5", "--out",
                 str(path), "--no-progress"]) == 0
    return path


def weights_factory(**kwargs):
    """The window's analyzer: the shared (shipped) model, or the weights the window asks for."""
    from peaknet_gui.inference.predictor import Predictor
    from peaknet_gui.pipeline.analyzer import FrameAnalyzer

    if kwargs.get("weights"):
        if kwargs.get("predictor") is None:
            kwargs["predictor"] = Predictor(kwargs["weights"], device="cpu")
    else:
        kwargs["predictor"] = shared_predictor()
    return FrameAnalyzer(kwargs["finder"].algorithm, **kwargs)


@pytest.fixture
def cwindow(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path, factory=weights_factory)
    yield w
    close_window(w)


def _open(qtbot, window, path, index=0):
    wait_complete(qtbot, window, index, lambda: window.open_paths([path], event=index), timeout=120000)
    dock = window.docks["curation"]
    window.actions_by_name["curation"].trigger()
    assert dock.isVisible()
    qtbot.waitUntil(lambda: dock.editor is not None, timeout=20000)
    return dock


def _go(qtbot, window, dock, index):
    wait_complete(qtbot, window, index, lambda: window.controller.go(index), timeout=120000)
    qtbot.waitUntil(lambda: dock.editor is not None and dock.view.index == index, timeout=20000)


def _scene(window, fs, ss):
    x, y = window.image_view.data_to_scene(fs, ss)
    return float(np.asarray(x)), float(np.asarray(y))


def _save(qtbot, dock):
    with qtbot.waitSignal(dock.saved, timeout=20000) as blocker:
        dock.save_button.click()
    return blocker.args[0]


def test_curate_save_fine_tune_compare_and_switch(qtbot, cwindow, sim_run, recorder, tmp_path):
    from peaknet_gui.curation.labels import PEAK, peak_component
    from peaknet_gui.curation.store import read_index
    from peaknet_gui.model.dataset import LabelledRun

    window = cwindow
    dock = _open(qtbot, window, sim_run)
    ed = dock.editor
    result = window.image_view.overlay.result
    assert len(result.peaks) >= 3
    start = ed.labels.copy()
    assert ed.counts()["peaks"] >= len(result.peaks) - 1

    # remove a peak: a click on it with the Remove tool clears exactly its component
    k = int(np.argmax(result.peaks.intensity)) if hasattr(result.peaks, "intensity") else 0
    fs, ss = float(result.peaks.fs[k]), float(result.peaks.ss[k])
    comp = peak_component(start, fs, ss)
    assert comp.any()
    dock.set_tool("remove")
    _click(qtbot, window, *_scene(window, fs, ss))
    assert ((dock.editor.labels != start) == comp).all() and (dock.editor.labels[comp] == 0).all()
    assert "not saved" in dock.info.text()

    # add it back by a click with the Add tool: the preview first, Enter accepts it
    dock.set_tool("add")
    _click(qtbot, window, *_scene(window, fs + 0.4, ss - 0.3))
    assert dock.preview is not None and dock.preview[int(round(ss)), int(round(fs))]
    assert dock.accept_button.isEnabled() and dock.overlay.codes is not None and (dock.overlay.codes == 3).any()
    before = dock.editor.labels.copy()
    dock.accept_button.click()
    added = dock.editor.labels != before
    assert added.any() and (dock.editor.labels[added] == PEAK).all() and dock.preview is None

    # paint a few artifact pixels with the brush (a click is one dab)
    dock.set_tool("paint")
    _click(qtbot, window, *_scene(window, 10.0, 10.0))
    assert (dock.editor.labels == 2).sum() > (before == 2).sum()
    labels0 = dock.editor.labels.copy()

    out = _save(qtbot, dock)
    path = out.path
    assert path == str(sim_run.with_name("sim.curation.cxi")) and out.n_frames == 1
    assert "saved" in dock.info.text() and "not saved" not in dock.info.text()

    _go(qtbot, window, dock, 1)
    out = _save(qtbot, dock)
    assert (out.n_frames, out.held_out) == (2, 1)
    run = LabelledRun(path)
    np.testing.assert_array_equal(run.labels(0), labels0)  # bad pixels are 255 in both
    run.close()
    assert read_index(path).held_out == [1]

    # fine-tune: 3 steps, crop 64, batch 2, as a child process
    panel = dock.finetune
    panel.options.update(crop=64, batch_size=2, device="cpu", threads=1, replay_frames=2, replay_crop=64,
                         replay_cache=str(tmp_path / "replay"), out=str(tmp_path / "ft"))
    panel.steps.setValue(3)
    with qtbot.waitSignal(panel.finished, timeout=400000) as blocker:
        panel.start_button.click()
        qtbot.waitUntil(lambda: panel.job is not None and panel.job.pid is not None, timeout=60000)
        assert os.getpid() != panel.job.pid and not panel.start_button.isEnabled()
    res = blocker.args[0]
    assert recorder.errors == []
    assert panel.bar.value() == panel.bar.maximum() == 3 and panel.progress_value == (3, 3)
    assert [s for s, _ in panel.losses] == [1, 2, 3]
    fig = res["figures"]
    for name in ("before", "after"):
        assert fig[name]["frames"] == 1 and 0.0 <= fig[name]["peak_f1"] <= 1.0
    assert "before" in panel.figures.text() and "after" in panel.figures.text() and "F1" in panel.figures.text()
    assert os.path.exists(res["weights"]) and panel.switch_button.isEnabled()

    # switch the window to the new weights and back, one click each
    from peaknet_gui.model.weights import sha256_file

    new_sha = sha256_file(res["weights"])
    with qtbot.waitSignal(window.controller.frameComplete, timeout=120000):
        panel.switch_button.click()
    assert window.worker._model_settings.weights == res["weights"] and panel.using_new
    assert window.worker.analyzer.model_info.get("sha256") == new_sha
    assert panel.switch_button.text() == "Back to previous weights"
    with qtbot.waitSignal(window.controller.frameComplete, timeout=120000):
        panel.switch_button.click()
    assert window.worker._model_settings.weights is None and not panel.using_new
    assert window.worker.analyzer.predictor is shared_predictor()


def test_fine_tune_cancel_and_failure(qtbot, cwindow, sim_run, recorder, tmp_path):
    from peaknet_gui.curation.store import CuratedFrame, save_frames
    from peaknet_gui.model.dataset import LabelledRun

    # a curation file of two frames (the run's own labels) in a folder of the user's choice
    run = LabelledRun(sim_run)
    cur = tmp_path / "mine" / "sim.curation.cxi"
    cur.parent.mkdir()
    save_frames(cur, [CuratedFrame(f"sim.cxi //{i}", i, run.data(i), run.labels(i), run.bad(i)) for i in range(2)])
    run.close()
    window = cwindow
    dock = _open(qtbot, window, sim_run)
    dock.folder = str(cur.parent)
    panel = dock.finetune
    panel.options.update(crop=64, batch_size=2, device="cpu", threads=1, out=str(tmp_path / "ft_cancel"))
    panel.replay.setText(str(sim_run))
    panel.steps.setValue(5000)

    panel.start()
    qtbot.waitUntil(lambda: panel.job.pid is not None, timeout=60000)
    pid = panel.job.pid
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.stage.text() == "Cancelled", timeout=20000)
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    # a training that fails: a dialog with the error's last lines (the missing replay run named)
    panel.replay.setText(str(tmp_path / "missing_replay.cxi"))
    panel.options["out"] = str(tmp_path / "ft_fail")
    panel.steps.setValue(3)
    t0 = time.time()
    panel.start()
    qtbot.waitUntil(lambda: panel.stage.text() == "Failed", timeout=120000)
    assert recorder.errors and recorder.errors[-1][0] == "Fine-tune failed"
    assert "missing_replay.cxi" in recorder.errors[-1][1] and "not found" in recorder.errors[-1][1]
    assert time.time() - t0 < 120
