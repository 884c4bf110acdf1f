"""``peaknet find tcp://...``: a stream analysed as it arrives; exports hold the frames themselves
and stay valid when the sender dies mid-series (localhost only)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from _stream_support import SenderThread, need_streams, spot_frames

need_streams()

from peaknet_gui.cli.main import main  # noqa: E402
from peaknet_gui.sources.stream_eiger.sender import ReplaySender  # noqa: E402

PF8 = ["--algorithm", "peakfinder8", "--pf8-threshold", "50", "--no-progress"]


def _find(args, frames, tmp_path, **series):
    sender = ReplaySender()
    st = SenderThread(sender, lambda s: s.series(frames, **series), delay_s=0.0).start()
    try:
        rc = main(["find", sender.url, "--out", str(tmp_path / "out"), *PF8, *args])
        st.join(60)
    finally:
        sender.close(linger_s=0)
    return rc, tmp_path / "out"


def _hits_cxi(out):
    with h5py.File(out / "hits.cxi", "r") as f:
        return f["/entry_1/data_1/data"][:], f["/entry_1/result_1/nPeaks"][:]


def test_find_until_series_end_writes_the_frames_themselves(tmp_path):
    frames = spot_frames(6, hits=(0, 2, 3))
    rc, out = _find(["--until-series-end"], frames, tmp_path, encoding="bslz4")
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] and len(s["frames"]) == 6
    data, npeaks = _hits_cxi(out)
    assert len(data) == 3 and all(n >= 10 for n in npeaks)
    for k, i in enumerate((0, 2, 3)):
        assert np.array_equal(data[k], frames[i].astype(np.float32))  # the pixels, not a pointer to a file
    assert (out / "hits.lst").read_text().splitlines() == ["hits.cxi //0", "hits.cxi //1", "hits.cxi //2"]
    stream = (out / "peaks.stream").read_text()
    assert stream.count("Image filename: hits.cxi") == 3 and stream.count("----- Begin chunk -----") == 6


def test_find_frames_n_stops_after_n(tmp_path):
    frames = spot_frames(8, shape=(64, 64), hits=())
    rc, out = _find(["--frames", "5"], frames, tmp_path, fmt="stream2")
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert len(s["frames"]) == 5


def test_sender_dies_mid_series_exports_stay_valid(tmp_path, capsys):
    frames = spot_frames(10, hits=(0, 1, 2, 3, 4))
    rc, out = _find(["--until-series-end", "--stream-timeout", "1.5"], frames, tmp_path, die_after=5)
    assert rc == 0
    assert "stopped: no frame for 1.5 s" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] and len(s["frames"]) == 5
    data, _ = _hits_cxi(out)
    assert len(data) == 5 and np.array_equal(data[4], frames[4].astype(np.float32))


@pytest.mark.slow
def test_drop_frames_counts_what_left_the_window(tmp_path, capsys):
    """A sender far faster than the analysis and a 2-frame window: with --drop-frames every frame
    is either analysed or counted as dropped; without it none is dropped."""
    frames = spot_frames(30, shape=(512, 512), hits=())
    rc, out = _find(["--until-series-end", "--drop-frames", "--stream-window", "2", "--stream-timeout", "5"],
                    frames, tmp_path, encoding="<")
    printed = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    dropped = int(printed.split("stream      ")[1].split(" frame(s) dropped")[0])
    assert len(s["frames"]) + dropped == 30
    assert rc == (3 if dropped else 0)
    rc, out = _find(["--until-series-end", "--stream-window", "2", "--stream-timeout", "5"], frames, tmp_path / "b",
                    encoding="<")
    assert rc == 0 and len(json.loads((out / "summary.json").read_text())["frames"]) == 30
