"""Small simulated frames, a deterministic stand-in "model" and an in-memory run source for the
pipeline tests (test_pipeline_*.py, test_cli_find.py)."""

from __future__ import annotations

import numpy as np
import torch

from peaknet_gui.errors import InputError
from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.sources.base import RunSource

SHAPE = (96, 128)


class ThresholdModel(torch.nn.Module):
    """A stand-in segmenter on normalised input: peak where x > 2.5, artifact where x < -2.5.

    Logits (0, k (x - 2.5), k (-x - 2.5)), so the argmax gives exactly those classes and the
    probabilities vary smoothly (re-thresholding has something to do).  Counts its calls.
    """

    def __init__(self, stride: int = 4):
        super().__init__()
        self.stride = stride
        self.k = torch.nn.Parameter(torch.tensor(3.0))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.cat([torch.zeros_like(x), self.k * (x - 2.5), self.k * (-x - 2.5)], dim=1)


def simulated_frame(rng, shape=SHAPE, n_spots=12, amplitude=400.0, dark_box=True, serial=0, path="sim.h5", metadata=None):
    """Poisson background 20 with Gaussian spots; a dark (0-valued) box acts as an artifact."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    signal = np.zeros(shape)
    centres = []
    while len(centres) < n_spots:
        cy, cx = rng.uniform(8, h - 8), rng.uniform(8, w - 8)
        if dark_box and cy > h - 30 and cx < 40:
            continue
        if any(np.hypot(cy - a, cx - b) < 9 for a, b in centres):
            continue
        centres.append((cy, cx))
        signal += amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.9**2))
    data = rng.poisson(20.0 + signal).astype(np.float32)
    if dark_box:
        data[h - 25 : h - 5, 5:35] = 0.0
    md = metadata or FrameMetadata()
    return Frame(data=data, event=EventId(path, serial), serial=serial, metadata=md), np.array(centres)


def ring_frame(rng, shape=(600, 600), centre=(300.0, 300.0), n_bragg=60, n_ring=24, ring_r=200.0):
    """Poisson background with Gaussian spots: Bragg-like ones spread over the frame and the
    grains of a powder ring at ``ring_r`` around the beam."""
    h, w = shape
    data = rng.poisson(20.0, shape).astype(np.float64)
    pos = []
    while len(pos) < n_bragg:
        y, x = rng.uniform(10, h - 10), rng.uniform(10, w - 10)
        if abs(np.hypot(y - centre[1], x - centre[0]) - ring_r) > 10 and all(np.hypot(y - a, x - b) > 8 for a, b in pos):
            pos.append((y, x))
    phi = np.linspace(0, 2 * np.pi, n_ring, endpoint=False) + rng.uniform(0, 0.1, n_ring)
    grains = [(centre[1] + ring_r * np.sin(p), centre[0] + ring_r * np.cos(p)) for p in phi]
    for y, x in pos + grains:
        y0, x0 = int(y), int(x)
        yy, xx = np.mgrid[y0 - 4:y0 + 5, x0 - 4:x0 + 5]
        data[y0 - 4:y0 + 5, x0 - 4:x0 + 5] += rng.poisson(400 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2.0))
    frame = Frame(data=data.astype(np.float32), event=EventId("ring.h5", 0), serial=0)
    return frame, np.array(pos), np.array(grains)


class ListSource(RunSource):
    """An in-memory run; ``broken`` indices raise InputError like a corrupt frame would."""

    def __init__(self, frames, broken=()):
        self.frames = list(frames)
        self.broken = set(broken)
        self.description = "in-memory test run"
        self.reads = 0

    def __len__(self):
        return len(self.frames)

    def event(self, index):
        return self.frames[index].event

    def _read(self, index):
        self.reads += 1
        if index in self.broken:
            raise InputError(f"{self.frames[index].event.path}: frame {index} is truncated")
        return self.frames[index]


class CollectingSink:
    """Records what the run loop hands over and whether it was closed."""

    def __init__(self):
        self.added = []
        self.closed = False

    def add(self, frame, result):
        assert not self.closed
        self.added.append((frame.serial, result))

    def close(self):
        self.closed = True
