"""Eiger (DECTRIS SIMPLON) streams: legacy JSON and stream2 CBOR, from our replay sender and from
ALBA's eiger-simulator; localhost only, every sender and receiver stops itself."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import h5py
import numpy as np
import pytest
from _stream_support import SenderThread, need_streams, spot_frames, wait_until
from conftest import real_file

need_streams()

from peaknet_gui.errors import InputError  # noqa: E402
from peaknet_gui.sources import open_run  # noqa: E402
from peaknet_gui.sources.stream_eiger.sender import ReplaySender, detector_config  # noqa: E402

NOWAIT = {"wait_first_s": 0}  # open at once (the sender starts after)


def _receive(frames, *, fmt="legacy", encoding="bslz4", pixel_mask=None, config=None, capacity=1000, **kw):
    sender = ReplaySender()
    run = open_run(sender.url, stream_options={"capacity": capacity, "wait_first_s": 0})
    try:
        st = SenderThread(sender, lambda s: s.series(frames, fmt=fmt, encoding=encoding, pixel_mask=pixel_mask,
                                                      config=config, **kw), delay_s=0.05).start()
        st.join()
        assert wait_until(lambda: run.series_ended >= 1, 10)
        run.refresh()
    except BaseException:
        run.close()
        raise
    finally:
        sender.close()
    return run


@pytest.mark.parametrize("fmt,encoding,dtype", [
    ("legacy", "bslz4", np.uint32), ("legacy", "bslz4", np.uint16), ("legacy", "lz4<", np.uint32),
    ("legacy", "<", np.uint16), ("stream2", "bslz4", np.uint32), ("stream2", "lz4", np.uint16),
    ("stream2", "<", np.uint32),
])
def test_frames_received_equal_frames_sent(fmt, encoding, dtype):
    frames = spot_frames(4, shape=(48, 80), dtype=dtype, seed=3)
    mask = np.zeros((48, 80), bool)
    mask[7, 11] = True
    run = _receive(frames, fmt=fmt, encoding=encoding, pixel_mask=mask)
    try:
        assert len(run) == 4
        for i, sent in enumerate(frames):
            got = run.read_raw(i)
            assert got.dtype == sent.dtype and np.array_equal(got, sent)
        f = run[1]
        assert f.bad[7, 11] and f.bad.sum() == 1  # the header's pixel mask
        assert f.event.lst_line() == f"{run.url} //1" and f.metadata.extra["stream_frame"] == 1
        st = run.status()
        assert st.state == "series ended" and st.received == 4 and st.bad_messages == 0
        g = run.geometry()
        assert g is not None and g.panels[0].pixel_size == pytest.approx(75e-6)
        assert f.metadata.photon_energy_ev == pytest.approx(12398.42, abs=0.01)
        assert f.metadata.beam_center_fs == pytest.approx(40 - 0.5)  # DECTRIS pixel corner origin -> index
    finally:
        run.close()


def test_marker_value_is_bad_and_user_geometry_wins(tmp_path):
    frames = spot_frames(2, shape=(40, 60), dtype=np.uint16)
    frames[0][3, 4] = 0xFFFF
    from peaknet_gui.geometry.detector import Geometry

    g = Geometry.single_panel(shape=(40, 60), pixel_size_m=172e-6, distance_m=0.3, beam_center_fs=1, beam_center_ss=2)
    sender = ReplaySender()
    run = open_run(sender.url, geometry=g, stream_options=NOWAIT)
    try:
        SenderThread(sender, lambda s: s.series(frames), delay_s=0.05).start().join()
        assert wait_until(lambda: run.series_ended >= 1)
        run.refresh()
        assert run[0].bad[3, 4] and run[0].data[3, 4] == 0
        assert run.geometry() is g
    finally:
        run.close()
        sender.close()


def test_window_keeps_the_last_frames_and_the_hits():
    frames = spot_frames(10, shape=(32, 32), hits=())
    sender = ReplaySender()
    run = open_run(sender.url, stream_options={"capacity": 3, "wait_first_s": 0})
    try:
        def send(s):
            s.series(frames[:3])
            assert wait_until(lambda: len(run.ring) == 3)
            run.keep(1)  # a hit: kept after it leaves the recent window
            s.series(frames[3:], series=2)
        SenderThread(sender, send, delay_s=0.05).start().join()
        assert wait_until(lambda: run.series_ended >= 2)
        assert run.refresh() == 10
        assert np.array_equal(run.read_raw(1), frames[1])
        assert [run.available(i) for i in range(10)] == [False, True, False, False, False, False, False, True, True, True]
        with pytest.raises(InputError, match="left the in-memory window"):
            run[0]
        assert run.series_end_after(0) == 3 and run.series_end_after(3) == 10
    finally:
        run.close()
        sender.close()


def test_every_frame_window_holds_until_the_consumer_releases():
    """An every-frame stream (peaknet find without --drop-frames) reads no further than the window
    has room for; reading a frame (its shape, its metadata) does not let it go -- only release()
    does -- so no frame leaves the window unanalysed however the threads are scheduled."""
    frames = spot_frames(6, shape=(32, 32), hits=())
    sender = ReplaySender()
    run = open_run(sender.url, stream_options={"capacity": 2, "every_frame": True, "wait_first_s": 0})
    try:
        t = SenderThread(sender, lambda s: s.series(frames), delay_s=0.05).start()
        assert wait_until(lambda: len(run.ring) == 2)
        run.refresh()
        assert np.array_equal(run[0].data, frames[0]) and np.array_equal(run[1].data, frames[1])
        time.sleep(0.5)
        assert len(run.ring) == 2 and run.available(0) and run.available(1)  # still held: nothing released
        for k in range(1, 7):
            run.release(k)
            assert wait_until(lambda: len(run.ring) >= min(k + 2, 6))
        t.join()
        assert len(run.ring) == 6 and run.ring.evicted == 4
        assert np.array_equal(run.read_raw(5), frames[5])
    finally:
        run.close()
        sender.close()


def test_window_size_from_the_window_request():
    """``peaknet-gui tcp://... --stream-window N``: the window's run request carries N to the stream
    run (the last N frames stay readable); without it the source's default window."""
    from peaknet_gui.gui.runs import RunRequest, open_source

    frames = spot_frames(5, shape=(24, 32), hits=())
    sender = ReplaySender()
    try:
        st = SenderThread(sender, lambda s: s.series(frames), delay_s=0.05).start()
        run, inputs = open_source(RunRequest(inputs=[sender.url], stream_window=2))
        st.join()
        assert inputs == [sender.url] and run.ring.capacity == 2
        assert wait_until(lambda: run.series_ended >= 1)
        run.refresh()
        assert len(run) == 5 and run.status().left_window == 3
        assert [run.available(i) for i in range(5)] == [False, False, False, True, True]
        assert np.array_equal(run.read_raw(4), frames[4])
        run.close()
    finally:
        sender.close()
    sender = ReplaySender()
    try:
        st = SenderThread(sender, lambda s: s.series(frames[:1]), delay_s=0.05).start()
        run, _ = open_source(RunRequest(inputs=[sender.url]))
        st.join()
        assert run.ring.capacity == 1000
        run.close()
    finally:
        sender.close()


def test_garbage_messages_are_skipped_not_fatal():
    sender = ReplaySender()
    run = open_run(sender.url, stream_options=NOWAIT)
    try:
        frames = spot_frames(2, shape=(32, 32), hits=())

        def send(s):
            s.send(b"\x00not a detector message")
            s.send([json.dumps({"htype": "dimage-1.0", "series": 1, "frame": 0}).encode()])  # parts missing
            s.series(frames)
        SenderThread(sender, send, delay_s=0.05).start().join()
        assert wait_until(lambda: run.series_ended >= 1)
        run.refresh()
        assert len(run) == 2 and run.status().bad_messages == 2
    finally:
        run.close()
        sender.close()


def test_no_sender_is_waiting_and_close_returns_fast():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    run = open_run(f"tcp://127.0.0.1:{port}", stream_options=NOWAIT)
    assert not run.wait(1, 0.3)
    assert run.status().state == "waiting" and len(run) == 0
    t = time.monotonic()
    run.close()
    assert time.monotonic() - t < 2 and run.status().state == "closed"


def test_open_waits_for_the_first_frame_then_names_the_problem():
    port = _free_port()
    t = time.monotonic()
    with pytest.raises(InputError, match=r"no frame arrived within 0.3 s \(waiting"):
        open_run(f"tcp://127.0.0.1:{port}", stream_options={"wait_first_s": 0.3})
    assert time.monotonic() - t < 3
    frames = spot_frames(2, shape=(32, 32), hits=())
    sender = ReplaySender()
    st = SenderThread(sender, lambda s: s.series(frames), delay_s=0.2).start()
    run = open_run(sender.url)  # the window's way: returns once a frame is there
    try:
        assert len(run) >= 1 and np.array_equal(run.read_raw(0), frames[0])
        st.join()
    finally:
        run.close()
        sender.close()


def test_bad_address_names_the_problem():
    with pytest.raises(InputError, match="tcp://HOST:PORT"):
        open_run("tcp://nohost")


@pytest.mark.slow
def test_pilatus_size_frames_bitshuffle_and_same_peaks_as_files():
    """Real Pilatus 2M frames (1679 x 1475 int32, module gaps -1) as bs32-lz4: bitwise the
    file's pixels, the same bad pixels, and PeakNet finds the same peaks as on the files."""
    from peaknet_gui.pipeline.analyzer import FrameAnalyzer

    files = [real_file("l_cysteine/l-cyst_01_00001.cbf"), real_file("l_cysteine/l-cyst_01_00002.cbf")]
    src = open_run([str(f) for f in files])
    raws = [src.read_raw(i) for i in range(len(src))]
    md = src.metadata(0)
    config = detector_config(raws[0].shape, pixel_size_m=md.pixel_size_m, distance_m=md.detector_distance_m,
                             beam_center=(md.beam_center_fs + 0.5, md.beam_center_ss + 0.5),
                             wavelength_a=md.wavelength_a)
    run = _receive(raws, config=config)
    try:
        assert len(run) == 2
        for i in range(2):
            assert np.array_equal(run.read_raw(i), raws[i])
            a, b = src[i], run[i]
            assert np.array_equal(a.data, b.data) and np.array_equal(a.bad, b.bad)
        assert run[0].metadata.beam_center_fs == pytest.approx(md.beam_center_fs)
        assert run[0].metadata.photon_energy_ev == pytest.approx(md.photon_energy_ev)
        geom = src.geometry()
        analyzer = FrameAnalyzer("peaknet", device="cpu", geometry=geom, hot_pixels=False)  # no run state
        for i in (0,):
            pa = analyzer.analyze_one(src[i]).peaks
            pb = analyzer.analyze_one(run[i]).peaks
            assert len(pa) > 0 and len(pa) == len(pb)
            assert np.array_equal(pa.fs, pb.fs) and np.array_equal(pa.ss, pb.ss)
            assert np.array_equal(pa.intensity, pb.intensity)
    finally:
        run.close()
        src.close()


def _free_port() -> int:
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


@pytest.mark.parametrize("compression", ["lz4", "bslz4"])
def test_alba_eiger_simulator(tmp_path, compression):
    """A third-party sender: ALBA's eiger-simulator (its Detector, driven without its web server)."""
    web = pytest.importorskip("eigersim.web")
    frames = spot_frames(4, shape=(64, 96), dtype=np.uint16, seed=5)
    data = tmp_path / "sim.h5"
    with h5py.File(data, "w") as f:
        f.create_dataset("entry/data/data_000001", data=np.stack(frames))
    port = _free_port()
    run = open_run(f"tcp://127.0.0.1:{port}", stream_options=NOWAIT)

    async def acquire():
        det = web.Detector(zmq_bind=f"tcp://127.0.0.1:{port}", dataset=str(data))
        for key, value in (("x_pixels_in_detector", 96), ("y_pixels_in_detector", 64), ("compression", compression),
                           ("nimages", 4), ("count_time", 0.005)):
            det.config[key]["value"] = value
        await det.initialize()
        try:
            await det.arm()
            await det.trigger()
            for _ in range(100):  # the series end is sent by a task the acquisition's end starts
                if run.series_ended:
                    break
                await asyncio.sleep(0.05)
        finally:
            det.zmq.close()

    try:
        asyncio.run(asyncio.wait_for(acquire(), 30))
        run.refresh()
        assert len(run) == 4 and run.series_ended == 1
        for i in range(4):
            assert np.array_equal(run.read_raw(i), frames[i])
        md = run[0].metadata
        assert md.detector_distance_m == pytest.approx(0.12696) and md.pixel_size_m == pytest.approx(75e-6)
        assert md.detector == "Dectris Eiger 9M"
    finally:
        run.close()
