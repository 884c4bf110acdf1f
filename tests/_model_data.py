"""Small labelled CXI runs for the model tests (generated on the fly, never stored)."""

from __future__ import annotations

import h5py
import numpy as np


def make_labelled_run(path, n_frames=6, shape=(128, 128), seed=0, bg=2.0, ring=True, n_peaks=12, gain=1.0):
    """Poisson background, Gaussian peaks (label 1 where the peak adds > 1 photon) and an
    optional ring (label 2), in the CXI layout the simulator writes; truth peaks with SNR."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.zeros((n_frames, h, w), np.float32)
    labels = np.zeros((n_frames, h, w), np.uint8)
    maxp = max(1, n_peaks)
    px = np.zeros((n_frames, maxp), np.float32)
    py = np.zeros((n_frames, maxp), np.float32)
    snr = np.zeros((n_frames, maxp), np.float32)
    npk = np.zeros(n_frames, np.int32)
    for f in range(n_frames):
        lam = np.full(shape, bg, np.float64)
        lab = np.zeros(shape, np.uint8)
        if ring and f % 2 == 0:
            r = np.hypot(yy - h / 2, xx - w / 2)
            r0 = rng.uniform(0.25, 0.4) * min(h, w)
            ring_img = 8 * bg * np.exp(-0.5 * ((r - r0) / 1.5) ** 2)
            lam += ring_img
            lab[ring_img > 0.5 * bg] = 2
        k = 0
        for _ in range(n_peaks):
            cy, cx = rng.uniform(6, h - 6), rng.uniform(6, w - 6)
            if lab[int(cy), int(cx)] == 2:
                continue
            amp = rng.uniform(20, 200)
            spot = amp * np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / 0.8**2) / (2 * np.pi * 0.64)
            lam += spot
            lab[spot > 1.0] = 1
            px[f, k], py[f, k] = cx, cy
            snr[f, k] = amp / np.sqrt(amp + 9 * bg)
            k += 1
        npk[f] = k
        data[f] = rng.poisson(lam) * gain
        labels[f] = lab
    with h5py.File(path, "w") as fh:
        fh.create_dataset("/entry_1/data_1/data", data=data, chunks=(1, h, w), compression="gzip")
        fh.create_dataset("/entry_1/data_1/labels", data=labels, chunks=(1, h, w), compression="gzip")
        fh.create_dataset("/entry_1/result_1/nPeaks", data=npk)
        fh.create_dataset("/entry_1/result_1/peakXPosRaw", data=px)
        fh.create_dataset("/entry_1/result_1/peakYPosRaw", data=py)
        fh.create_dataset("/entry_1/result_1/peakSNR", data=snr)
    return path
