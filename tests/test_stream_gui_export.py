"""Exporting from the window while the run is a live Eiger stream: the export the Export dialog
starts (MainWindow.start_export, without the modal dialog) reads the window's own connection (a second
one would wait for frames already sent) and leaves it open, writes the streamed frames themselves
into the CXI file -- there is no file to point back to -- and the .lst and .stream name them
(offscreen; the project's replay sender on localhost)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from _stream_support import SenderThread, need_streams, spot_frames

need_streams()
pytest.importorskip("pytestqt")

from _gui_support import make_window  # noqa: E402

from peaknet_gui.gui.exports import ExportOptions  # noqa: E402
from peaknet_gui.gui.stream_live import attach_stream_live  # noqa: E402
from peaknet_gui.sources.stream_eiger.sender import ReplaySender  # noqa: E402

pytestmark = pytest.mark.gui

HITS = (0, 2, 3)


def test_export_from_the_window_on_a_stream_writes_the_frames(qtbot, tmp_path, recorder):
    from peaknet_gui.export.stream_reader import read_stream

    frames = spot_frames(5, shape=(192, 256), hits=HITS)
    w = make_window(qtbot, tmp_path)
    attach_stream_live(w)
    sender = ReplaySender()
    try:
        st = SenderThread(sender, lambda s: s.series(frames, encoding="bslz4"), delay_s=0.0).start()
        with qtbot.waitSignal(w.controller.runOpened, timeout=60000):
            w.open_paths([sender.url])
        qtbot.waitUntil(lambda: w.state.n_frames == len(frames), timeout=30000)
        st.join()
        out = tmp_path / "export"
        n_infos = len(recorder.infos)
        job = w.start_export(ExportOptions(str(out), "all", {"stream", "lst", "cxi"}))
        assert job is not None
        qtbot.waitUntil(lambda: len(recorder.infos) > n_infos or bool(recorder.errors), timeout=60000)
        assert not recorder.errors, recorder.errors
        outcome = w._export_job.outcome
        sender_url = sender.url
        assert outcome.frames == len(frames) and not outcome.cancelled and not outcome.errors
        # the export read the window's own connection and left it open: the window follows on
        SenderThread(sender, lambda s: s.series(frames[:2], series=2), delay_s=0.0).start().join()
        qtbot.waitUntil(lambda: w.state.n_frames == len(frames) + 2, timeout=30000)
    finally:
        sender.close(linger_s=0)
        w.close()
    # the stream: a chunk per frame, in order; a hit names its CXI entry, a blank frame the stream's event
    chunks = read_stream(out / "peaks.stream")
    assert [c.serial for c in chunks] == list(range(len(frames)))
    hits = [i for i, c in enumerate(chunks) if c.hit]
    assert set(HITS) <= set(hits) and len(hits) == outcome.hits  # the frames with 25 spots at least
    k = 0
    for i, c in enumerate(chunks):
        if c.hit:
            assert (c.filename, c.event) == ("hits.cxi", f"//{k}") and c.n_peaks >= 10
            k += 1
        else:
            assert (c.filename, c.event) == (sender_url, f"//{i}")
    # the CXI file holds the pixels themselves, in frame order, with the peaks of the stream
    with h5py.File(out / "hits.cxi", "r") as f:
        data = f["/entry_1/data_1/data"][:]
        n_peaks = f["/entry_1/result_1/nPeaks"][:]
    assert len(data) == len(hits)
    for k, i in enumerate(hits):
        assert np.array_equal(data[k], frames[i].astype(data.dtype)), f"CXI frame {k} is not stream frame {i}"
    assert list(n_peaks) == [chunks[i].n_peaks for i in hits]
    # the lists: CrystFEL's names the CXI entries, the source list the stream's frames
    assert (out / "hits.lst").read_text().splitlines() == [f"hits.cxi //{k}" for k in range(len(hits))]
    assert (out / "hits_source.lst").read_text().splitlines() == [f"{sender_url} //{i}" for i in hits]
