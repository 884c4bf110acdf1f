"""Hot pixels end to end: ``peaknet find`` on the demo run (67 hot pixels, thousands of counts at
the same place in every frame) reports exactly the true hits of its crystal, blank, ring and
calibrant frames (the powder-ring test takes the silver-behenate grains), keeps blank frames
nearly empty, never reports a hot pixel as a peak and writes the hot pixels into the exported
``mask.h5``."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from peaknet_gui.cli.main import main
from peaknet_gui.sources.demo import demo_run_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_find(tmp_path_factory):
    demo = demo_run_path()
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["find", str(demo), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    return demo, out


def _demo_frames(demo_find):
    demo, out = demo_find
    with h5py.File(demo, "r") as f:
        kinds = [k.decode() if isinstance(k, bytes) else str(k) for k in f["entry_1/sim/kind"][:]]
        true_peaks = f["entry_1/result_1/nPeaks"][:]
    summary = json.loads((out / "summary.json").read_text())
    frames = sorted(summary["frames"], key=lambda r: r["index"])
    min_peaks = summary["settings"]["finder"]["min_peaks_for_hit"]
    return kinds, [int(n) >= min_peaks for n in true_peaks], frames, summary


def test_demo_crystal_hits_equal_truth_and_blanks_stay_empty(demo_find):
    kinds, truth, frames, summary = _demo_frames(demo_find)
    crystal_or_blank = [i for i, k in enumerate(kinds) if k in ("hit", "blank", "rings")]
    assert len(crystal_or_blank) == 23
    assert [frames[i]["hit"] for i in crystal_or_blank] == [truth[i] for i in crystal_or_blank]
    blanks = [r["n_peaks"] for r, k in zip(frames, kinds) if k == "blank"]
    assert blanks and max(blanks) <= 5


def test_demo_calibrant_frame_is_not_a_hit(demo_find):
    kinds, truth, frames, summary = _demo_frames(demo_find)
    assert kinds.count("calibrant") == 1
    i = kinds.index("calibrant")
    assert not truth[i] and not frames[i]["hit"]
    assert summary["totals"]["hits"] == sum(truth)


def test_demo_hot_pixels_masked_and_never_peaks(demo_find):
    demo, out = demo_find
    with h5py.File(demo, "r") as f:
        data = f["entry_1/data_1/data"][:8].astype(np.float32)  # eight frames are enough to see them
        n_hot = json.loads(f["entry_1/sim/personality"][0])["n_hot_pixels"]
    # the demo's hot pixels: the pixels standing 20x above the frame's median in every frame
    stuck = np.all(data > 20 * np.median(data[0]), axis=0)
    assert stuck.sum() == n_hot == 67
    with h5py.File(out / "mask.h5", "r") as f:
        mask = f["mask"][:]
    assert mask[stuck].all()  # CrystFEL polarity: 1 = bad
    from peaknet_gui.export.stream_reader import read_stream

    chunks = read_stream(out / "peaks.stream")  # back in pixel indices (the reader removes the +0.5)
    assert len(chunks) == 24
    for ch in chunks:
        pk = ch.peaks
        if pk is not None and len(pk):
            assert not stuck[np.rint(pk.ss).astype(int), np.rint(pk.fs).astype(int)].any()
