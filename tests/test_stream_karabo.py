"""European XFEL's Karabo bridge as a live run, against the karabo-bridge package's own servers
(ServerInThread fed with our trains; its simulated AGIPD); localhost only."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from _stream_support import need_streams, wait_until

need_streams()
pytest.importorskip("karabo_bridge")

from peaknet_gui.errors import InputError  # noqa: E402
from peaknet_gui.sources import open_run  # noqa: E402
from peaknet_gui.sources.stream_karabo import parse_karabo_url  # noqa: E402
from peaknet_gui.sources.stream_karabo.trains import pulses_first  # noqa: E402

NOWAIT = {"wait_first_s": 0}


def _port() -> int:
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_url_parsing():
    assert parse_karabo_url("karabo-bridge://exflong:4545") == ("tcp://exflong:4545", None, "REQ")
    assert parse_karabo_url("karabo-bridge://10.0.0.1:4545/SPB_DET_AGIPD1M-1/CAL/APPEND_CORRECTED?sock=sub") == (
        "tcp://10.0.0.1:4545", "SPB_DET_AGIPD1M-1/CAL/APPEND_CORRECTED", "SUB")
    with pytest.raises(InputError, match="karabo-bridge://HOST:PORT"):
        parse_karabo_url("karabo-bridge://nohost")


def test_axis_orders():
    online = np.zeros((16, 128, 512, 64))  # modules, fs, ss, pulses
    assert pulses_first(online, 64, "x").shape == (64, 16, 512, 128)
    assert pulses_first(np.zeros((64, 16, 512, 128)), 64, "x").shape == (64, 16, 512, 128)
    assert pulses_first(np.zeros((128, 512, 10)), 10, "x").shape == (10, 1, 512, 128)


def test_frames_received_equal_trains_fed():
    from karabo_bridge import ServerInThread

    port = _port()
    srv = ServerInThread(f"tcp://127.0.0.1:{port}", maxlen=4)
    srv.start()
    rng = np.random.default_rng(0)
    sent = []
    run = open_run(f"karabo-bridge://127.0.0.1:{port}/SPB_DET/DET/x", stream_options=NOWAIT)
    try:
        for t in range(3):
            arr = rng.integers(0, 60000, (4, 2, 64, 32)).astype(np.uint16)  # pulses, modules, ss, fs
            sent.append(arr)
            srv.feed({"SPB_DET/DET/x": {"image.data": arr, "image.pulseId": np.arange(4, dtype=np.uint64) + 8,
                                        "image.trainId": np.full(4, 1000 + t, np.uint64)},
                      "OTHER/MOTOR/y": {"position": 1.0}})
        assert wait_until(lambda: len(run.ring) == 12)
        run.refresh()
        for t in range(3):
            for p in range(4):
                assert np.array_equal(run.read_raw(4 * t + p), sent[t][p].reshape(128, 32))
        md = run[5].metadata.extra
        assert (md["train_id"], md["pulse_id"], md["karabo_source"]) == (1001, 9, "SPB_DET/DET/x")
        assert run.frame_shape() == (128, 32) and run.geometry() is None
    finally:
        run.close()
        srv.stop()


def test_simulated_agipd_assembles_with_extra_geom():
    pytest.importorskip("extra_geom")
    from karabo_bridge.server import SimServerInThread

    port = _port()
    # online axis order; zeros: a train of random numbers takes the simulator seconds to make
    srv = SimServerInThread(f"tcp://127.0.0.1:{port}", detector="AGIPD", datagen="zeros", debug=False)
    srv.start()
    # one train is enough (268 MB each): the window of 64 pulses stops the requests
    run = open_run(f"karabo-bridge://127.0.0.1:{port}", stream_options={"capacity": 64, "every_frame": True, **NOWAIT})
    try:
        assert wait_until(lambda: len(run.ring) >= 64, timeout=30)
        run.refresh()
        f = run[3]
        assert f.shape == (16 * 512, 128) and f.metadata.extra["pulse_id"] == 3
        assert f.metadata.extra["train_id"] >= 10000000000
        assert f.data.dtype == np.float32 and not f.data.any()
        g = run.geometry()
        assert g is not None and len(g.panels) == 128
        g.check_data_shape(f.shape, "AGIPD slab")
    finally:
        run.close()
        srv.stop()


def test_server_gone_reports_and_close_is_quick():
    from karabo_bridge import ServerInThread

    port = _port()
    srv = ServerInThread(f"tcp://127.0.0.1:{port}")
    srv.start()
    run = open_run(f"karabo-bridge://127.0.0.1:{port}", stream_options={"stall_s": 0.5, **NOWAIT})
    try:
        srv.feed({"D/E/T": {"image.data": np.ones((2, 8, 8), np.float32)}})
        assert wait_until(lambda: len(run.ring) == 2)
        srv.stop()
        assert wait_until(lambda: run.status().state in ("stalled", "reconnecting"), timeout=5)
    finally:
        run.close()
