"""Live streams: frames per second received and decoded, with analysis, and the window's event-loop
stall while a stream arrives at 100 Hz.

    nice -n 10 .venv/bin/python benchmarks/bench_streams.py [--frames 200] [--shape 2167x2070]
        [--analysis-frames 8] [--gui-seconds 5] [--rate 100] [--skip-gui] [--device cpu]

Frames: an Eiger 4M (2167 x 2070 uint32, 4.5 Mpixel) of Poisson background (~1 count) with
~300 Gaussian spots, bitshuffle-LZ4 compressed once by hdf5plugin (the detector's HDF5 framing),
sent by the project's replay sender (legacy SIMPLON, one PUSH socket on 127.0.0.1).

* receive only: the receiver thread's rate (messages into the window, still compressed);
* receive + decode: a reader decoding every frame as it arrives (``read_raw``, dectris-compression);
* with analysis: ``peaknet find``'s loop (:func:`peaknet_gui.pipeline.live.run_stream_analysis`,
  every frame, no export) with peakfinder8 and PeakNet;
* the window (offscreen): ``peaknet-gui tcp://...`` at ``--rate`` Hz for ``--gui-seconds``; the
  longest gap between 10 ms timer ticks of the GUI thread, and percentiles (target: none > 100 ms).

Sender and receiver share this machine's cores, so the rates are lower bounds of what a
receiver alone would do.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_frames(n_distinct: int, shape: tuple, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_distinct):
        img = rng.poisson(1.0, shape).astype(np.uint32)
        ys = rng.integers(8, shape[0] - 8, 300)
        xs = rng.integers(8, shape[1] - 8, 300)
        for y, x in zip(ys, xs):
            img[y - 1:y + 2, x - 1:x + 2] += rng.integers(50, 2000, (3, 3)).astype(np.uint32)
        out.append(img)
    return out


def encoded(frames: list, n: int) -> list:
    from peaknet_gui.sources.stream_eiger.sender import legacy_image_parts

    parts = [legacy_image_parts(f, 1, 0, "bslz4") for f in frames]
    out = []
    for i in range(n):
        p = list(parts[i % len(parts)])
        import json

        p[0] = json.dumps({"htype": "dimage-1.0", "series": 1, "frame": i, "hash": ""}).encode()
        out.append(p)
    return out


def open_pair(every_frame: bool = False, capacity: int = 1000):
    from peaknet_gui.sources import open_run
    from peaknet_gui.sources.stream_eiger.sender import ReplaySender

    sender = ReplaySender()
    run = open_run(sender.url, stream_options={"wait_first_s": 0, "every_frame": every_frame, "capacity": capacity})
    return sender, run


def bench_receive(frames, n: int, decode: bool) -> float:
    sender, run = open_pair(capacity=n + 10)
    msgs = encoded(frames, n)
    t_first = []
    th = threading.Thread(target=lambda: sender.series(frames[:1] * n, pre_encoded=msgs), daemon=True)
    th.start()
    done = 0
    run.wait(1, 60)
    t0 = time.perf_counter()
    while done < n:
        if decode:
            if run.wait(done + 1, 30):
                run.read_raw(done)
                done += 1
            else:
                break
        else:
            if not run.wait(n, 60):
                break
            done = n
    dt = time.perf_counter() - t0
    th.join(30)
    run.close()
    sender.close(linger_s=0)
    return (done - 1) / dt if dt > 0 else float("nan")


def bench_analysis(frames, n: int, algorithm: str, device: str) -> tuple:
    from peaknet_gui.pipeline.analyzer import FrameAnalyzer
    from peaknet_gui.pipeline.live import run_stream_analysis

    sender, run = open_pair(every_frame=True, capacity=16)
    msgs = encoded(frames, n)
    analyzer = FrameAnalyzer(algorithm, device=device, hot_pixels=False)
    if algorithm == "peaknet":
        analyzer.predictor
    th = threading.Thread(target=lambda: sender.series(frames[:1] * n, pre_encoded=msgs), daemon=True)
    th.start()
    run.wait(1, 60)
    s = run_stream_analysis(run, analyzer, None, frames=n, idle_timeout_s=60)
    th.join(60)
    run.close()
    sender.close(linger_s=0)
    return s.frames / s.wall_s, s.dropped, s.mean_stage_ms()


def bench_gui(frames, seconds: float, rate: float) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from peaknet_gui.gui.main_window import MainWindow
    from peaknet_gui.gui.qt import QtCore, ensure_app
    from peaknet_gui.gui.settings import AppSettings
    from peaknet_gui.gui.stream_live import attach_stream_live
    from peaknet_gui.sources.stream_eiger.sender import ReplaySender

    app = ensure_app()
    tmp = tempfile.TemporaryDirectory()
    w = MainWindow(AppSettings(os.path.join(tmp.name, "s.ini")), restore_layout=False)
    live = attach_stream_live(w)
    w.resize(1400, 900)
    w.show()
    n = int(seconds * rate)
    msgs = encoded(frames, n + 1)
    sender = ReplaySender()
    gaps = []
    last = [None]

    def tick():
        now = time.perf_counter()
        if last[0] is not None:
            gaps.append(1e3 * (now - last[0]))
        last[0] = now

    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    opened = threading.Event()
    w.controller.runOpened.connect(lambda info: opened.set())
    state = {}

    def send():
        sender.series(frames[:1], pre_encoded=msgs[:1])  # opens the run
        while not opened.is_set():
            time.sleep(0.05)
        time.sleep(2.0)  # let the first frame be shown and analysed
        state["t0"] = time.perf_counter()
        sender.series(frames[:1] * n, series=2, rate_hz=rate, pre_encoded=msgs[1:])
        state["t1"] = time.perf_counter()

    th = threading.Thread(target=send, daemon=True)
    th.start()
    w.open_paths([sender.url])
    deadline = time.perf_counter() + 120
    while "t0" not in state and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.005)
    timer.start()
    while "t1" not in state and time.perf_counter() < deadline:
        app.processEvents(QtCore.QEventLoop.AllEvents, 5)
        time.sleep(0.001)
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:
        app.processEvents(QtCore.QEventLoop.AllEvents, 5)
        time.sleep(0.001)
    timer.stop()
    st = live.last_status
    out = {"frames sent": n, "send s": state.get("t1", 0) - state.get("t0", 0), "frames in run": w.state.n_frames,
           "shown": w.state.index, "status": st.line() if st else "?",
           "max stall ms": max(gaps) if gaps else float("nan"),
           "p99 ms": float(np.percentile(gaps, 99)) if gaps else float("nan"),
           "median tick ms": float(np.median(gaps)) if gaps else float("nan"),
           "ticks > 100 ms": int(sum(g > 100 for g in gaps))}
    w.close()
    sender.close(linger_s=0)
    app.processEvents()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--shape", default="2167x2070")
    p.add_argument("--analysis-frames", type=int, default=8)
    p.add_argument("--gui-seconds", type=float, default=5.0)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-gui", action="store_true")
    p.add_argument("--skip-peaknet", action="store_true")
    a = p.parse_args()
    shape = tuple(int(v) for v in a.shape.lower().split("x"))
    frames = make_frames(8, shape)
    from peaknet_gui.sources.stream_eiger.sender import hdf5_chunk

    size = np.mean([len(hdf5_chunk(f, "bslz4")) for f in frames[:2]])
    print(f"frames: {shape[0]} x {shape[1]} uint32 ({shape[0] * shape[1] / 1e6:.1f} Mpixel), bitshuffle-LZ4 "
          f"{size / 1e6:.2f} MB each ({4 * shape[0] * shape[1] / size:.1f}x); cpus {os.cpu_count()}")
    print(f"receive only            {bench_receive(frames, a.frames, decode=False):8.1f} frames/s  ({a.frames} frames)")
    print(f"receive + decode        {bench_receive(frames, a.frames, decode=True):8.1f} frames/s  ({a.frames} frames)")
    fps, dropped, stages = bench_analysis(frames, max(a.analysis_frames, 4) * 4, "peakfinder8", a.device)
    print(f"with peakfinder8        {fps:8.2f} frames/s  (every frame, dropped {dropped}; ms/frame "
          + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()) + ")")
    if not a.skip_peaknet:
        fps, dropped, stages = bench_analysis(frames, a.analysis_frames, "peaknet", a.device)
        print(f"with PeakNet ({a.device:4s})     {fps:8.2f} frames/s  (every frame, dropped {dropped}; ms/frame "
              + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()) + ")")
    if not a.skip_gui:
        r = bench_gui(frames, a.gui_seconds, a.rate)
        print(f"window at {a.rate:g} Hz for {a.gui_seconds:g} s: max event-loop stall {r['max stall ms']:.0f} ms, "
              f"p99 {r['p99 ms']:.0f} ms, median tick {r['median tick ms']:.1f} ms, {r['ticks > 100 ms']} gaps > 100 ms; "
              f"sent {r['frames sent']} in {r['send s']:.1f} s, run has {r['frames in run']}, showing {r['shown']}; "
              f"{r['status']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
