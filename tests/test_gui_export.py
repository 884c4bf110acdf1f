"""Exports started from the window's actions produce files the pipeline's readers accept."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import open_demo  # noqa: E402

pytestmark = pytest.mark.gui


def _export_via_action(qtbot, window, monkeypatch, recorder, options):
    """Press Ctrl+E and accept the dialog with ``options``; wait for the export to finish."""
    from peaknet_gui.gui import export_dialog
    from peaknet_gui.gui.qt import Qt, QtWidgets

    seen = {}

    def fake_exec(dialog):
        seen["n_frames"] = dialog._n_frames
        return QtWidgets.QDialog.Accepted

    monkeypatch.setattr(export_dialog.ExportDialog, "exec_", fake_exec)
    monkeypatch.setattr(export_dialog.ExportDialog, "options", lambda dialog: options)
    n_infos = len(recorder.infos)
    qtbot.keyClick(window, Qt.Key_E, Qt.ControlModifier)
    assert seen["n_frames"] == window.state.n_frames
    qtbot.waitUntil(lambda: len(recorder.infos) > n_infos or bool(recorder.errors), timeout=180000)
    assert not recorder.errors, recorder.errors
    return window._export_job.outcome


def test_export_frames_through_the_menu(qtbot, window, tmp_path, monkeypatch, recorder):
    import CFstreamparser

    from peaknet_gui.export.cxi_reader import read_cxi_peaks
    from peaknet_gui.export.lst import read_lst
    from peaknet_gui.export.mask_h5 import read_mask_h5
    from peaknet_gui.export.stream_reader import read_stream
    from peaknet_gui.gui.exports import ExportOptions

    open_demo(qtbot, window, 0)
    window.docks["peaks"].min_peaks.setValue(1)  # the export uses the window's settings
    qtbot.waitUntil(lambda: window.image_view.overlay.settings_version == window.worker.settings_version, timeout=30000)
    shown = window.image_view.overlay.result
    out = tmp_path / "export"
    outcome = _export_via_action(qtbot, window, monkeypatch, recorder,
                                 ExportOptions(str(out), "all", {"stream", "lst", "cxi", "mask"}, first=0, last=2))
    assert outcome.frames == 3 and not outcome.cancelled
    chunks = read_stream(out / "peaks.stream")
    assert [c.event_index for c in chunks] == [0, 1, 2]
    # the exported peaks of frame 0 are the ones the window draws (same settings, same model)
    np.testing.assert_allclose(np.sort(chunks[0].peaks.fs), np.sort(shown.peaks.fs), atol=0.01)
    np.testing.assert_allclose(np.sort(chunks[0].peaks.ss), np.sort(shown.peaks.ss), atol=0.01)
    parsed = CFstreamparser.parse_stream_file(str(out / "peaks.stream"))
    assert [c.num_peaks for c in parsed.chunks] == [c.n_peaks for c in chunks]
    hits = [c for c in chunks if c.hit]
    assert len(read_lst(out / "hits.lst")) == len(hits) == outcome.hits
    cxi = read_cxi_peaks(out / "hits.cxi")
    assert [len(p) for p in cxi] == [c.n_peaks for c in hits]
    if hits:  # CXI holds raw pixel indices, the stream the same peaks (+0.5 in the file)
        np.testing.assert_allclose(np.sort(cxi[0].fs), np.sort(hits[0].peaks.fs), atol=0.01)
    mask = read_mask_h5(out / "mask.h5")
    assert mask.shape == window.worker.cached_frame(0).shape
    assert any(line.split("=")[-1].strip() == "mask.h5" for line in (out / "mask.geom").read_text().splitlines()
               if line.startswith("mask") and "_file" in line)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["finder"]["min_peaks_for_hit"] == 1
    assert [f["n_peaks"] for f in summary["frames"]] == [c.n_peaks for c in chunks]


def test_export_current_frame_and_hits_only(qtbot, window, tmp_path, monkeypatch, recorder):
    from peaknet_gui.export.stream_reader import read_stream
    from peaknet_gui.gui.exports import ExportOptions

    open_demo(qtbot, window, 1)
    shown = window.image_view.overlay.result
    out = tmp_path / "current"
    outcome = _export_via_action(qtbot, window, monkeypatch, recorder, ExportOptions(str(out), "current", {"stream"}))
    assert outcome.frames == 1
    (chunk,) = read_stream(out / "peaks.stream")
    assert chunk.event_index == 1 and chunk.n_peaks == shown.n_peaks
    np.testing.assert_allclose(np.sort(chunk.peaks.fs), np.sort(shown.peaks.fs), atol=0.01)

    # hits only: with a criterion frame 1 fails, the stream has no chunk for it
    window.docks["peaks"].min_peaks.setValue(shown.n_peaks + 1)
    out2 = tmp_path / "hits"
    outcome = _export_via_action(qtbot, window, monkeypatch, recorder,
                                 ExportOptions(str(out2), "hits", {"stream", "lst"}, first=1, last=1))
    assert outcome.frames == 1 and outcome.hits == 0
    assert read_stream(out2 / "peaks.stream") == []


def test_export_cancel_leaves_valid_files(qtbot, window, tmp_path, monkeypatch, recorder):
    from peaknet_gui.export.stream_reader import read_stream
    from peaknet_gui.gui.exports import ExportOptions

    open_demo(qtbot, window, 0)
    out = tmp_path / "cancelled"
    window.start_export(ExportOptions(str(out), "all", {"stream", "lst"}))
    job = window._export_job
    job.progress.connect(lambda done, total, hits: job.cancel_event.set())  # Cancel after the first frame
    qtbot.waitUntil(lambda: job.outcome is not None or job.error is not None, timeout=120000)
    assert job.error is None
    assert job.outcome.cancelled and 1 <= job.outcome.frames < window.state.n_frames
    assert len(read_stream(out / "peaks.stream")) == job.outcome.frames


def test_export_mask_and_screenshot_actions(qtbot, window, tmp_path, monkeypatch, recorder):
    from peaknet_gui.export.mask_h5 import read_mask_h5
    from peaknet_gui.geometry.crystfel_geom import read_geom
    from peaknet_gui.gui.exports import frame_mask
    from peaknet_gui.gui.qt import QtGui, QtWidgets

    open_demo(qtbot, window, 0)
    window.docks["mask"].dilation.setValue(2)
    qtbot.waitUntil(lambda: window.image_view.overlay.settings_version == window.worker.settings_version, timeout=30000)
    target = tmp_path / "masks" / "frame0.h5"
    target.parent.mkdir()
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.actions_by_name["export_mask"].trigger()
    geom_path = target.with_suffix(".geom")
    qtbot.waitUntil(geom_path.exists, timeout=30000)
    expected = frame_mask(window.worker.cached_frame(0), window.image_view.overlay.result)
    got = read_mask_h5(target)
    assert got.shape == expected.shape and (got == expected).all() and got.any()
    g = read_geom(geom_path)
    slot = next(k[: -len("_file")] for k, v in g.globals.items() if k.endswith("_file") and v == str(target.resolve()))
    bad_key = "mask_bad" if slot == "mask" else f"{slot}_badbits"
    assert g.globals[bad_key] in ("0x1", "0x01")

    png = tmp_path / "window.png"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(png), ""))
    window.actions_by_name["screenshot"].trigger()
    img = QtGui.QImage(str(png))
    assert not img.isNull() and img.width() == window.width() and img.height() == window.height()
