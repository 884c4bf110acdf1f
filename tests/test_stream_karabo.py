"""European XFEL's Karabo bridge as a live run, against the karabo-bridge package's own servers
(ServerInThread fed with our trains and with a JUNGFRAU 4M's per-module sources; its simulated
AGIPD and LPD); EXtra-geom's nominal layouts checked pixel by pixel and assembled; localhost only."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _simulated_bridge(detector: str, datagen: str, frames: int):
    """The karabo-bridge package's simulator for ``detector`` and our run on it, holding a window of
    ``frames`` pulses, filled and refreshed; both stopped afterwards."""
    from karabo_bridge.server import SimServerInThread

    port = _port()
    srv = SimServerInThread(f"tcp://127.0.0.1:{port}", detector=detector, datagen=datagen, debug=False)
    srv.start()
    run = open_run(f"karabo-bridge://127.0.0.1:{port}", stream_options={"capacity": frames, "every_frame": True, **NOWAIT})
    try:
        assert wait_until(lambda: len(run.ring) >= frames, timeout=30)
        run.refresh()
        yield run
    finally:
        run.close()
        srv.stop()


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
    # online axis order; zeros: a train of random numbers takes the simulator seconds to make;
    # one train is enough (268 MB each): the window of 64 pulses stops the requests
    with _simulated_bridge("AGIPD", "zeros", 64) as run:
        f = run[3]
        assert f.shape == (16 * 512, 128) and f.metadata.extra["pulse_id"] == 3
        assert f.metadata.extra["train_id"] >= 10000000000
        assert f.data.dtype == np.float32 and not f.data.any()
        g = run.geometry()
        assert g is not None and len(g.panels) == 128
        g.check_data_shape(f.shape, "AGIPD slab")


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


# --- LPD-1M and JUNGFRAU 4M: recognised from the bridge data, EXtra-geom's nominal layouts ---------


def _extra_geom_nominal(name):
    """EXtra-geom's own geometry of the nominal layout (its documented example positions)."""
    import extra_geom

    from peaknet_gui.sources.stream_karabo.geometry import jf4m_module_positions

    if name == "AGIPD-1M":
        return extra_geom.AGIPD_1MGeometry.from_quad_positions(
            quad_pos=[(-525, 625), (-550, -10), (520, -160), (542.5, 475)])
    if name == "LPD-1M":
        return extra_geom.LPD_1MGeometry.from_quad_positions([(11.4, 299), (-11.5, 8), (254.5, -16), (278.5, 275)])
    pos, orient = jf4m_module_positions()
    return extra_geom.JUNGFRAUGeometry.from_module_positions(pos, orientations=orient)


def _assert_assembles_like_extra_geom(geom, name, modules, frame):
    """The window's assembly of ``frame`` (the modules stacked) equals EXtra-geom's of ``modules``."""
    from peaknet_gui.geometry.assemble import Assembler

    ours = Assembler(geom, frame.shape).assemble(frame)
    theirs, _ = _extra_geom_nominal(name).position_modules(modules.astype(np.float32))
    assert ours.shape == theirs.shape
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.array_equal(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)])


@pytest.mark.parametrize("name", ["AGIPD-1M", "LPD-1M", "JUNGFRAU 4M"])
def test_nominal_layouts_put_every_pixel_where_extra_geom_does(name, caplog):
    pytest.importorskip("extra_geom")
    from peaknet_gui.sources.stream_karabo.geometry import NOMINAL, default_geometry

    nominal = next(n for n in NOMINAL if n.name == name)
    g = default_geometry(nominal.slab_shape, "test", "DET/x")
    assert "approximate" in caplog.text and name in caplog.text
    eg = _extra_geom_nominal(name)
    pos = eg.get_pixel_positions()  # (modules, ss, fs, xyz), pixel centres, metres
    m, ss, fs = np.meshgrid(np.arange(nominal.modules), np.arange(0, nominal.module_shape[0], 7),
                            np.arange(0, nominal.module_shape[1], 5), indexing="ij")
    x, y, z = g.lab_xyz(fs.ravel(), (m * nominal.module_shape[0] + ss).ravel())
    assert np.allclose(x, pos[m, ss, fs, 0].ravel(), atol=1e-9) and np.allclose(y, pos[m, ss, fs, 1].ravel(), atol=1e-9)
    assert np.allclose(z, nominal.clen_m)
    assert default_geometry((2 * 512, 1024), "test", "SPB_IRDA_JF4M/DET/JNGFR01:daqOutput") is None  # no JF1M layout
    assert "no nominal layout" in caplog.text


def test_module_sources_grouped_in_module_order():
    from peaknet_gui.sources.stream_karabo.modules import module_of, select_modules

    assert module_of("SPB_DET_AGIPD1M-1/DET/0CH0:xtdf") == ("SPB_DET_AGIPD1M-1/DET", 0)  # numbered from 0
    assert module_of("SPB_IRDA_JF4M/DET/JNGFR03:daqOutput") == ("SPB_IRDA_JF4M/DET", 2)  # numbered from 1
    assert module_of("SPB_DET_AGIPD1M-1/CAL/APPEND_CORRECTED") is None
    jf = [f"SPB_IRDA_JF4M/DET/JNGFR{i:02d}:daqOutput" for i in (3, 1, 2)]
    group, slots = select_modules(jf + ["SPB_EXP_ZYLA/CAM/1:daqOutput"], None)
    assert group == "SPB_IRDA_JF4M/DET" and len(slots) == 8  # the name says 4M: 8 modules
    assert slots[:4] == sorted(jf) + [None]
    assert select_modules(jf, "SPB_IRDA_JF4M/DET/JNGFR*")[0] == "SPB_IRDA_JF4M/DET"
    assert select_modules(jf, "SPB_IRDA_JF4M")[0] == "SPB_IRDA_JF4M/DET"
    assert select_modules(jf, "MID_DET_AGIPD1M-1") is None
    corr = [n.replace("/DET/", "/CORR/").replace("daqOutput", "output") for n in jf]
    assert select_modules(jf + corr, None)[0] == "SPB_IRDA_JF4M/CORR"  # corrected before raw
    # a JF500K's one module keeps its facility number: one slot, not three
    jf500k = "HED_IA1_JF500K3/DET/JNGFR03:daqOutput"
    assert select_modules([jf500k], None)[1] == [jf500k]


def test_a_given_geometry_skips_the_nominal_layout(caplog):
    """With --geom the feed builds no nominal layout and does not warn about one."""
    pytest.importorskip("extra_geom")
    from peaknet_gui.sources.live.messages import SeriesHeader
    from peaknet_gui.sources.stream_karabo import KaraboFeed

    class OneTrain:
        def next(self):
            return {"FXE_DET_LPD1M-1/CAL/APPEND_CORRECTED": {
                "image.data": np.zeros((16, 256, 256, 2), np.float32), "image.pulseId": np.arange(2)}}, {}

    for given in (False, True):
        caplog.clear()
        feed = KaraboFeed("karabo-bridge://127.0.0.1:1", default_layout=not given)
        feed._client = OneTrain()
        header, *images = feed.receive(0.1)
        assert isinstance(header, SeriesHeader) and len(images) == 2 and header.shape == (4096, 256)
        assert (header.geometry is None) == given and ("approximate" in caplog.text) != given


def test_simulated_lpd_frames_and_layout(monkeypatch, caplog):
    """The karabo-bridge package's simulated LPD-1M (its CAL/APPEND_CORRECTED source, online axis
    order (modules, fs, ss, pulses)), 4 pulses a train instead of its 300 (1.3 GB a train)."""
    pytest.importorskip("extra_geom")
    from karabo_bridge import simulation

    made = []  # what the simulator generated, train by train (ids from 10000000000)

    def recording_random(det):
        arr = simulation.Detector.random(det)
        made.append(arr.copy())
        return arr

    monkeypatch.setattr(simulation.LPD, "pulses", 4)
    monkeypatch.setattr(simulation.LPD, "random", recording_random)
    with _simulated_bridge("LPD", "random", 8) as run:
        assert run.frame_shape() == (16 * 256, 256)
        g = run.geometry()
        assert g is not None and len(g.panels) == 256 and "LPD-1M" in caplog.text and "approximate" in caplog.text
        for i in range(8):  # read_raw and metadata: no frame handed on yet, the receiver waits
            md = run.metadata(i).extra
            assert md["karabo_source"] == "FXE_DET_LPD1M-1/CAL/APPEND_CORRECTED" and md["pulse_id"] == i % 4
            sent = made[md["train_id"] - 10000000000][..., i % 4]  # (modules, fs, ss) of this pulse
            modules = sent.transpose(0, 2, 1)  # (modules, ss, fs)
            assert np.array_equal(run.read_raw(i), modules.reshape(16 * 256, 256))
        f = run[7]
        assert np.array_equal(f.data, modules.reshape(16 * 256, 256))
        _assert_assembles_like_extra_geom(g, "LPD-1M", modules, f.data)


def test_jungfrau_4m_one_source_per_module(caplog):
    """The karabo-bridge simulator has no JUNGFRAU: ServerInThread fed what a bridge forwarding the
    module pipelines sends (``karabo-bridge-serve-run --include 'SPB_IRDA_JF4M/DET/JNGFR*:daqOutput'``):
    eight sources ``SPB_IRDA_JF4M/DET/JNGFR01..08:daqOutput``, ``data.adc`` (cells, 512, 1024)
    uint16 as in the files, ``data.memoryCell``, the train id in the metadata; one module missing
    from the second train."""
    pytest.importorskip("extra_geom")
    from karabo_bridge import ServerInThread

    port = _port()
    srv = ServerInThread(f"tcp://127.0.0.1:{port}", maxlen=4)
    srv.start()
    rng = np.random.default_rng(1)
    cells = 2
    sent = []
    run = open_run(f"karabo-bridge://127.0.0.1:{port}/SPB_IRDA_JF4M", stream_options=NOWAIT)
    try:
        for t in range(2):
            mods = rng.integers(0, 16000, (8, cells, 512, 1024)).astype(np.uint16)
            if t == 1:
                mods[4] = 0  # JNGFR05 does not come: its rows read 0
            sent.append(mods)
            data, meta = {}, {}
            for m in (3, 0, 7, 1, 6, 2, 5, 4):  # the bridge's order is not the modules'
                if t == 1 and m == 4:
                    continue
                name = f"SPB_IRDA_JF4M/DET/JNGFR{m + 1:02d}:daqOutput"
                data[name] = {"data.adc": mods[m], "data.memoryCell": np.array([4, 9], np.uint8)[:cells],
                              "data.frameNumber": np.arange(cells, dtype=np.uint64) + 100 * t}
                meta[name] = {"source": name, "timestamp.tid": 2000 + t}
            xgm = "SPB_XTD9_XGM/XGM/DOOCS:output"
            data[xgm] = {"data.intensityTD": np.ones(1000, np.float32)}
            meta[xgm] = {"source": xgm, "timestamp.tid": 2000 + t}
            srv.feed(data, meta)
        assert wait_until(lambda: len(run.ring) == 2 * cells)
        run.refresh()
        assert run.frame_shape() == (8 * 512, 1024)
        g = run.geometry()
        assert g is not None and len(g.panels) == 64 and "JUNGFRAU 4M" in caplog.text and "approximate" in caplog.text
        for t in range(2):
            for c in range(cells):
                f = run[cells * t + c]
                assert np.array_equal(run.read_raw(cells * t + c), sent[t][:, c].reshape(8 * 512, 1024))
                md = f.metadata.extra
                assert (md["train_id"], md["cell_id"]) == (2000 + t, (4, 9)[c])
                assert md["karabo_source"] == "SPB_IRDA_JF4M/DET"
                assert md["karabo_modules"] == (8 if t == 0 else 7)
        _assert_assembles_like_extra_geom(g, "JUNGFRAU 4M", sent[0][:, 1], run[1].data)
    finally:
        run.close()
        srv.stop()
