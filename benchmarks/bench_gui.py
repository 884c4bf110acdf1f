"""GUI speed and memory: frame change -> image on screen, event-loop stalls during inference,
memory while browsing.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py [--browse 1000] [--stall-frames 4] [RUN]

Figures (1920 x 1920 frames of the demo run unless RUN is given):

1. display only: GUI-thread time to put a prepared frame on screen (``DetectorImageView.show_frame``
   plus the repaint) -- goal <= 30 ms;
2. frame change -> image on screen through the worker (read + assemble + level + scale in the
   reader thread, then the GUI), for a frame already read and for one read from the file, with
   the model thread idle and with the model analysing each new frame at the same time;
3. the longest gap of a 2 ms QTimer while the real model analyses frames (goal < 100 ms);
4. RSS while browsing ``--browse`` distinct frames (a run of that many frames made from the demo
   frames, each shifted differently), image on screen for every one -- must stay flat;
5. the whole run analysed in the background (the window's default; figures 1-4 run with it off):
   time from the run opened to every frame analysed, the longest event-loop stall meanwhile, the
   latency of frame changes the user makes while it runs (image on screen; peaks on screen for a
   frame the background had not reached), model runs per frame, and the compact store's size.
   ``--background-only`` measures this figure alone.
6. launch to first peaks (``--launch-only``): ``peaknet-gui`` started as a new process on the
   demo run (``--screenshot``: offscreen, exits after the picture) -- seconds from the process
   start to the window up, the first frame on screen and its peaks on screen; with the demo
   cached (goal: first peaks <= 5 s) and, with ``--launch-cold``, with an empty demo cache
   (the demo generated, its progress shown).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peaknet_gui.frame import EventId, Frame  # noqa: E402
from peaknet_gui.sources.base import RunSource  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def stats(ms) -> str:
    a = np.asarray(ms, dtype=float)
    return f"median {np.median(a):.1f} ms, p90 {np.percentile(a, 90):.1f} ms, max {a.max():.1f} ms (n={len(a)})"


class ShiftedRun(RunSource):
    """``n`` distinct frames from a few source frames (rolled by a different amount each), for
    browsing benchmarks on long runs without writing gigabytes."""

    def __init__(self, source, n: int, base: int = 6):
        self.src = source
        self.n = n
        self.base = [source[i] for i in range(min(base, len(source)))]
        self.description = f"{n} shifted frames of {source.description}"

    def __len__(self):
        return self.n

    def event(self, i):
        return EventId("shifted.h5", i)

    def _read(self, i):
        b = self.base[i % len(self.base)]
        shift = (7 * i) % 97
        data = np.roll(b.data, shift, axis=1)
        bad = None if b.bad is None else np.roll(b.bad, shift, axis=1)
        return Frame(data, self.event(i), i, b.metadata, bad)

    def geometry(self):
        return self.src.geometry()

    def refresh(self):
        return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="*", help="run to use (default: the demo run)")
    p.add_argument("--browse", type=int, default=1000, help="frames to browse for the memory figure")
    p.add_argument("--stall-frames", type=int, default=4, help="frames analysed while measuring stalls")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--only-browse", action="store_true", help="skip figures 1-3")
    p.add_argument("--tracemalloc", action="store_true", help="print the top Python allocations that grew while browsing")
    p.add_argument("--background-only", action="store_true", help="only figure 5 (whole-run analysis in the background)")
    p.add_argument("--user-every", type=float, default=3.0, help="figure 5: a frame change by the user every this many s")
    p.add_argument("--launch-only", action="store_true", help="only figure 6 (launch to first peaks on the demo)")
    p.add_argument("--launch-cold", action="store_true", help="figure 6: also with an empty demo cache")
    p.add_argument("--launch-repeats", type=int, default=3, help="figure 6: launches with the demo cached")
    p.add_argument("--launch-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.launch_child:
        return launch_child(args.launch_child)
    if args.launch_only:
        return launch_figure(args)

    from peaknet_gui.gui.memory import limit_heap_growth

    limit_heap_growth()  # as peaknet-gui does at start
    from peaknet_gui.gui.qt import QtCore, QtWidgets, ensure_app

    app = ensure_app()
    from peaknet_gui.gui.display import build_frame_view
    from peaknet_gui.gui.main_window import MainWindow
    from peaknet_gui.gui.runs import RunRequest
    from peaknet_gui.gui.settings import AppSettings

    tmp = tempfile.mkdtemp(prefix="bench_gui_")
    w = MainWindow(AppSettings(os.path.join(tmp, "settings.ini")), restore_layout=False)
    w.worker.set_background(False)  # figures 1-4: the frames asked for only (figure 5 turns it on)
    w.resize(1600, 1000)
    w.show()
    app.processEvents()

    def wait(pred, timeout=600.0):
        t_end = time.perf_counter() + timeout
        while not pred():
            app.processEvents(QtCore.QEventLoop.AllEvents, 5)
            if time.perf_counter() > t_end:
                raise TimeoutError("timed out")

    complete = set()
    shown = {}
    w.controller.frameComplete.connect(complete.add)
    w.controller.frameShown.connect(lambda v: shown.__setitem__(v.index, time.perf_counter()))
    req = RunRequest(inputs=args.run) if args.run else RunRequest(demo=True)
    t0 = time.perf_counter()
    w.open_request(req)
    wait(lambda: 0 in complete)
    print(f"run: {w.controller.run.description}, {w.state.n_frames} frames of {w.controller.run.shape}; "
          f"first frame analysed after {time.perf_counter() - t0:.1f} s (model load included)")
    print(f"device: {w.worker.analyzer.device_name}")

    if args.background_only:
        background_figure(app, w, req, wait, shown, complete, args)
        w.close()
        return 0

    if not args.only_browse:
        # 1. display only
        frames = [w.worker._frame(i) for i in range(min(4, w.state.n_frames))]
        geom = w.worker.analyzer.geometry_for(frames[0])
        views = [build_frame_view(i, f, geom) for i, f in enumerate(frames)]
        prep = [v.prepare_ms for v in views]
        view = w.image_view
        for v in views:
            view.show_frame(v)
            view.graphics.viewport().repaint()
        draw = []
        for k in range(args.repeats):
            v = views[k % len(views)]
            t = time.perf_counter()
            view.show_frame(v)
            view.graphics.viewport().repaint()
            draw.append(1e3 * (time.perf_counter() - t))
        print(f"1. display only (GUI thread, show_frame + repaint): {stats(draw)}   [goal <= 30 ms]")
        print(f"   worker-side preparation (assemble, log, levels, uint8): {stats(prep)}")

        # 2. through the worker: cached frame / frame read from the file
        def latency(index):
            shown.pop(index, None)
            t = time.perf_counter()
            w.controller.go(index, force=True)
            wait(lambda: index in shown)
            app.processEvents()
            w.image_view.graphics.viewport().repaint()
            return 1e3 * (time.perf_counter() - t)

        wait(lambda: not w.worker.busy(), timeout=600)
        n = w.state.n_frames

        def measure(k_max):
            cached, fresh = [], []
            for k in range(min(args.repeats, n - 1, k_max)):
                i = (k + 1) % n
                w.worker._frames.clear()
                w.worker._views.clear()
                fresh.append(latency(i))
                w.worker._views.clear()
                cached.append(latency(i))
            return cached, fresh

        import threading

        gate = threading.Event()
        w.worker.model.submit("current", lambda job: gate.wait(), context="benchmark: model held")
        wait(lambda: w.worker.model.running_job is not None)
        cached, fresh = measure(args.repeats)  # the model thread is held: display path alone
        steps = []
        w.controller.go(0, force=True)
        for i in range(1, min(args.repeats, n - 1) + 1):  # stepping forward like the Right key, 0.3 s apart
            t_pause = time.perf_counter() + 0.3
            wait(lambda: time.perf_counter() > t_pause)
            steps.append(latency(i))
        gate.set()
        print(f"2. frame change -> image on screen (model idle), frame in memory: {stats(cached)}")
        print(f"   frame change -> image on screen (model idle), read from the file: {stats(fresh)}")
        print(f"   stepping to the next frame (read ahead while the previous one was shown): {stats(steps)}")
        cached, fresh = measure(args.repeats)  # every frame change also starts the model on that frame
        print(f"   frame change -> image on screen while the model runs, frame in memory: {stats(cached)}")
        print(f"   frame change -> image on screen while the model runs, read from the file: {stats(fresh)}")

        # 3. stalls while the model works
        ticks = []
        timer = QtCore.QTimer()
        timer.setInterval(2)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        wait(lambda: not w.worker.busy(), timeout=600)
        w.worker._results.clear()
        complete.clear()
        timer.start()
        t_start = time.perf_counter()
        for k in range(args.stall_frames):
            i = (k + 5) % n
            w.controller.go(i)
            wait(lambda: i in complete)
        t_end = time.perf_counter()
        timer.stop()
        gaps = np.diff(np.array(ticks)) * 1e3
        per_frame = (t_end - t_start) / max(args.stall_frames, 1)
        top = ", ".join(f"{g:.0f}" for g in np.sort(gaps)[::-1][:5])
        print(f"3. {args.stall_frames} frames analysed, {per_frame:.2f} s per frame (image + model + overlays): "
              f"longest event-loop stall {gaps.max():.0f} ms (5 longest: {top} ms), p99 {np.percentile(gaps, 99):.0f} ms, "
              f"{len(ticks)} ticks of 2 ms   [goal < 100 ms]")

    # 4. memory while browsing many distinct frames
    src = w.worker._source
    shifted = ShiftedRun(src, args.browse)
    with w.worker._lock:
        w.worker._source = shifted
        w.worker._frames.clear()
        w.worker._views.clear()
        w.worker._results.clear()
    w.state.set_run(args.browse, 0)
    w.nav.set_range(args.browse)
    marks = []
    full_at = None  # (frame, RSS) when the frame and result caches are full: memory must not grow after it
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(10)
        snap0 = None
    # warm-up: the first frames analysed one by one fill the worker's bounded caches
    wk = w.worker
    for i in range(wk._results.size + 1):
        complete.discard(i)
        w.controller.go(i, force=True)
        wait(lambda: i in complete)
    full_at = (wk._results.size, rss_mb())
    t_browse = time.perf_counter()
    for i in range(args.browse):
        shown.pop(i, None)
        w.controller.go(i, force=True)
        wait(lambda: i in shown)
        if i % max(1, args.browse // 10) == 0 or i == args.browse - 1:
            app.processEvents()
            marks.append((i, rss_mb()))
            if args.tracemalloc and i >= args.browse // 5 and snap0 is None:
                snap0 = tracemalloc.take_snapshot()
    dt = time.perf_counter() - t_browse
    print(f"4. browsed {args.browse} distinct frames in {dt:.1f} s ({1e3 * dt / args.browse:.0f} ms per frame, image "
          f"on screen each time; the model analysed {len(w.state.summaries)} of them meanwhile)")
    print("   RSS (MB) at frame: " + ", ".join(f"{i}: {m:.0f}" for i, m in marks))
    print(f"   after the warm-up ({full_at[0] + 1} frames analysed one by one, caches full): {full_at[1]:.0f} MB; "
          f"growth over the {args.browse} frames browsed: {marks[-1][1] - full_at[1]:+.0f} MB, "
          f"largest value {max(m for _, m in marks):.0f} MB")
    if args.tracemalloc and snap0 is not None:
        for stat in tracemalloc.take_snapshot().compare_to(snap0, "traceback")[:8]:
            print(f"   {stat.size_diff / 2**20:+.1f} MB in {stat.count_diff:+d} blocks:")
            for line in stat.traceback.format()[-6:]:
                print("      " + line)
    if not args.only_browse:
        w.worker._source = src
        background_figure(app, w, req, wait, shown, complete, args)
    w.close()
    return 0


def background_figure(app, w, req, wait, shown, complete, args) -> None:
    """Figure 5: open the run again with the background analysis on and time it to the last frame."""
    from peaknet_gui.gui.qt import QtCore

    wk = w.worker
    wait(lambda: not wk.busy(), timeout=600)
    wk.set_background(True)
    ticks = []
    timer = QtCore.QTimer()
    timer.setInterval(2)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    opened = []
    w.controller.runOpened.connect(lambda info: opened.append(time.perf_counter()))
    analyses0 = wk.stats.analyses
    complete.clear()
    t0 = time.perf_counter()
    w.open_request(req)
    timer.start()
    wait(lambda: bool(opened), timeout=600)
    n = w.state.n_frames
    rng = np.random.default_rng(0)
    image_ms, peaks_ms, peaks_fresh_ms = [], [], []
    next_user = time.perf_counter() + args.user_every
    while len(wk.analysed()) < n:
        app.processEvents(QtCore.QEventLoop.AllEvents, 5)
        if time.perf_counter() > t0 + 1800:
            raise TimeoutError("background analysis did not finish in 30 min")
        if time.perf_counter() >= next_user:  # the user jumps to a frame meanwhile
            i = int(rng.integers(n))
            known = i in wk.analysed()
            shown.pop(i, None)
            complete.discard(i)
            t = time.perf_counter()
            w.controller.go(i, force=True)
            wait(lambda: i in shown, timeout=600)
            image_ms.append(1e3 * (time.perf_counter() - t))
            wait(lambda: i in complete, timeout=600)
            (peaks_ms if known else peaks_fresh_ms).append(1e3 * (time.perf_counter() - t))
            next_user = time.perf_counter() + args.user_every
    t_done = time.perf_counter()
    timer.stop()
    gaps = np.diff(np.array(ticks)) * 1e3
    top = ", ".join(f"{g:.0f}" for g in np.sort(gaps)[::-1][:5])
    runs = wk.stats.analyses - analyses0
    print(f"5. background analysis of all {n} frames: {t_done - opened[0]:.1f} s after the run opened "
          f"({(t_done - opened[0]) / n:.2f} s per frame; open {opened[0] - t0:.1f} s); {runs} model runs "
          f"({runs / n:.2f} per frame); compact store {wk.store.nbytes / 1024:.0f} kB")
    print(f"   event loop meanwhile: longest stall {gaps.max():.0f} ms (5 longest: {top} ms), "
          f"p99 {np.percentile(gaps, 99):.0f} ms, {len(ticks)} ticks of 2 ms   [goal < 100 ms]")
    if image_ms:
        print(f"   user frame changes meanwhile: image on screen {stats(image_ms)}")
    if peaks_ms:
        print(f"   peaks on screen, frame analysed before: {stats(peaks_ms)}")
    if peaks_fresh_ms:
        print(f"   peaks on screen, frame not reached yet (waits for at most the frame in the model): {stats(peaks_fresh_ms)}")


LAUNCH_MARK = "BENCH_LAUNCH"


def launch_child(out_png: str) -> int:
    """In the child process: ``peaknet-gui --screenshot OUT`` (its own main), printing when the
    window is up, the first frame is on screen and its peaks are (wall-clock times, so the
    parent can subtract the moment it started this process)."""
    from peaknet_gui.gui import main_window as mw

    orig = mw.MainWindow.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        from peaknet_gui.gui.qt import QtCore

        def mark(what):
            print(f"{LAUNCH_MARK} {what} {time.time():.4f}", flush=True)

        QtCore.QTimer.singleShot(0, lambda: mark("window"))  # the event loop runs: the window is up
        seen = set()

        def once(what):
            if what not in seen:
                seen.add(what)
                mark(what)

        self.controller.frameShown.connect(lambda v: once("image"))
        self.controller.frameComplete.connect(lambda i: once("peaks"))
        self.progress_bar.valueChanged.connect(lambda v: once("progress"))

    mw.MainWindow.__init__ = init
    from peaknet_gui.gui.app import main as gui_main

    return gui_main(["--screenshot", out_png, "--timeout", "900"])


def launch_figure(args) -> int:
    """Figure 6: launch to first peaks on the demo, as new processes."""
    import subprocess

    def launch(env_extra: dict) -> dict:
        tmp = tempfile.mkdtemp(prefix="bench_launch_")
        env = dict(os.environ, **env_extra)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        t0 = time.time()
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--launch-child", os.path.join(tmp, "s.png")],
                           env=env, capture_output=True, text=True, timeout=1800)
        t_exit = time.time() - t0
        marks = {}
        for ln in r.stdout.splitlines():
            if ln.startswith(LAUNCH_MARK):
                _, what, t = ln.split()
                marks[what] = float(t) - t0
        if r.returncode != 0 or "peaks" not in marks:
            raise SystemExit(f"launch failed (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        marks["exit"] = t_exit
        return marks

    from peaknet_gui.sources.demo import demo_cache_dir, demo_run_path

    t = time.perf_counter()
    demo_run_path()  # the cached demo (made here once if missing, outside the timings)
    print(f"demo cache: {demo_cache_dir()} (ready in {time.perf_counter() - t:.1f} s)")
    runs = [launch({}) for _ in range(args.launch_repeats)]

    def fmt(key):
        v = np.array([m[key] for m in runs])
        return f"{np.median(v):.1f} s (min {v.min():.1f}, max {v.max():.1f})"

    print(f"6. launch to first peaks, demo cached ({len(runs)} launches, median): window up {fmt('window')}, "
          f"first frame on screen {fmt('image')}, its peaks on screen {fmt('peaks')}; process exit after the "
          f"screenshot {fmt('exit')}   [goal: peaks <= 5 s]")
    if args.launch_cold:
        cold_dir = tempfile.mkdtemp(prefix="bench_demo_cold_")
        m = launch({"PEAKNET_DEMO_DIR": cold_dir})
        prog = f", demo progress shown from {m['progress']:.1f} s" if "progress" in m else ""
        print(f"   empty demo cache (the demo generated): window up {m['window']:.1f} s{prog}, "
              f"first frame on screen {m['image']:.1f} s, its peaks {m['peaks']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
