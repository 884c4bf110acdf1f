"""The run loop: prefetch, batches, progress, cancellation, Ctrl-C, unreadable frames."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from _pipeline_frames import CollectingSink, ListSource, ThresholdModel, simulated_frame

from peaknet_gui.errors import InputError
from peaknet_gui.pipeline.analyzer import FrameAnalyzer
from peaknet_gui.pipeline.run import run_analysis
from peaknet_gui.pipeline.settings import FinderSettings


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PEAKNET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def run_frames():
    rng = np.random.default_rng(0)
    frames = []
    for i in range(10):
        n = 12 if i % 3 else 2  # every third frame is a miss
        frames.append(simulated_frame(rng, n_spots=n, serial=i, dark_box=False)[0])
    return frames


def make_analyzer(algorithm="peaknet"):
    finder = FinderSettings(min_peaks_for_hit=5, min_pixels=2)
    return FrameAnalyzer(algorithm, device="cpu", backend="torch", model=ThresholdModel(), finder=finder)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_all_frames_in_order_to_the_sink(run_frames, batch_size):
    sink = CollectingSink()
    seen = []
    an = make_analyzer()
    summary = run_analysis(ListSource(run_frames), an, sink, batch_size=batch_size, progress=seen.append)
    assert sink.closed
    assert [s for s, _ in sink.added] == list(range(10))
    assert summary.frames == 10 and summary.hits == 6 and summary.hit_rate == pytest.approx(0.6)
    assert summary.peaks == sum(r.n_peaks for _, r in sink.added)
    assert summary.mean_peaks == pytest.approx(summary.peaks / 10)
    assert [p.done for p in seen] == list(range(1, 11)) and seen[-1].hits == 6
    assert an.predictor.net.calls == (10 + batch_size - 1) // batch_size
    stages = summary.mean_stage_ms()
    assert {"read", "normalise", "model", "postprocess", "export"} <= set(stages)
    assert summary.ms_per_frame > 0 and "cpu" in summary.device
    assert "hit rate 60.0 %" in summary.format()


def test_keyboard_interrupt_from_progress_closes_the_sink(run_frames):
    sink = CollectingSink()

    def progress(p):
        if p.done == 3:
            raise KeyboardInterrupt

    summary = run_analysis(ListSource(run_frames), make_analyzer(), sink, progress=progress)
    assert summary.interrupted and sink.closed
    assert summary.frames == 3 and len(sink.added) == 3


def test_cancel_flag_stops_between_batches(run_frames):
    sink = CollectingSink()
    cancel = threading.Event()

    def progress(p):
        if p.done == 4:
            cancel.set()

    summary = run_analysis(ListSource(run_frames), make_analyzer(), sink, progress=progress, cancel=cancel, batch_size=2)
    assert summary.cancelled and not summary.interrupted and sink.closed
    assert summary.frames == 4
    # a callable works as a flag too
    summary = run_analysis(ListSource(run_frames), make_analyzer(), CollectingSink(), cancel=lambda: True)
    assert summary.cancelled and summary.frames == 0


def test_unreadable_frames_are_skipped_and_reported(run_frames):
    sink = CollectingSink()
    src = ListSource(run_frames, broken={2, 7})
    summary = run_analysis(src, make_analyzer("peakfinder8"), sink, indices=range(10))
    assert summary.frames == 8 and len(summary.errors) == 2
    assert "truncated" in summary.errors[0][1] and summary.errors[0][0].endswith("//2")
    assert [s for s, _ in sink.added] == [0, 1, 3, 4, 5, 6, 8, 9]
    with pytest.raises(InputError):
        run_analysis(ListSource(run_frames, broken={1}), make_analyzer("peakfinder8"), CollectingSink(), on_error="raise")


def test_subset_of_indices_and_no_sink(run_frames):
    summary = run_analysis(ListSource(run_frames), make_analyzer("peakfinder8"), None, indices=[9, 0])
    assert summary.frames == 2 and summary.algorithm == "peakfinder8"


def test_run_mask_accumulates_every_frame(run_frames):
    from peaknet_gui.masks import RunMaskAccumulator

    from dataclasses import replace

    frames = [replace(f, bad=np.zeros(f.shape, dtype=bool)) for f in run_frames[:4]]
    frames[0].bad[0, :] = True
    for f in frames[:3]:
        f.bad[5, 5] = True
    acc = RunMaskAccumulator(fraction=0.5)
    run_analysis(ListSource(frames), make_analyzer("peakfinder8"), None, run_mask=acc)
    assert acc.n_frames == 4
    m = acc.mask()
    assert m[5, 5] and not m[0, 7] and acc.mask(0.25)[0, 7]
