"""Input normalisation of detector frames for PeakNet: the same network for every detector.

Frames reach the network in very different units: Pilatus/Eiger photon counts (integers,
background often < 1 photon/pixel, module gaps at -1), CSPAD ADUs (~25-30 ADU per photon,
pedestal-subtracted with per-ASIC residual offsets, read noise, negative values), Rayonix/CCD
ADUs with a baseline offset.  The network must see a peak of a given significance the same
way on all of them, so every panel is brought to *noise units* and then compressed:

1. ``usable`` = finite pixels that ``bad`` does not flag.  Bad pixels end up exactly 0.
2. **offset** ``b`` = median of the usable pixels of the panel (the lower median, i.e. the
   ``(n-1)//2``-th order statistic, so numpy and torch agree bit for bit).  On a sparse frame
   this is the background level; per panel it removes per-ASIC pedestal residuals.
3. **noise scale** ``s`` from horizontal neighbour differences ``d = x[i, j+1] - x[i, j]``
   (pairs of usable pixels), which are blind to smooth background (solvent, rings, gradients):
   ``s = max(S_MEAN * mean(|d| <= q98(|d|)), 0.5 * quantum)``, where the mean of ``|d|``
   excludes the top 2 % (peak edges, hot pixels; q98 is the ``floor(0.98 (n-1))``-th order
   statistic) and ``S_MEAN = sqrt(pi)/2/sqrt(2)`` makes it the Gaussian sigma.  ``quantum``
   = smallest non-zero ``|d|`` -- one count on an integer detector -- keeps ``s`` from
   collapsing on nearly empty photon-counting frames (e.g. Pilatus with 0.05 photon/pixel
   background, where most differences are 0): there one photon is 2 noise units.
   When nothing varies (constant panel) ``s = 1``.  Ties and zeros are judged with a tolerance
   of 1e-6 of the largest |value| so that float rounding of ``a x + c`` changes nothing.
4. ``z = (x - b) / s`` then the compressive ``asinh``: ``t = asinh(z)``; background noise stays
   linear (|z| < 1), strong and saturated peaks (z up to 1e5) become ~log(2z) ~ 12.

Every statistic is equivariant under ``x -> a x + c`` (a > 0), so ``normalize`` is invariant to
detector gain and offset (exactly, up to float rounding).  Statistics are estimated on every
``row_step``-th row (``clip(rows // 128, 1, 8)``) to keep a 1920x1920 frame near 30 ms.

``panels``: optional list of ``(slice_ss, slice_fs)`` regions normalised independently (one per
ASIC / module, from the geometry); pixels outside every panel are set to 0.  Without it the
frame is one panel.

:func:`normalize` (numpy) and :func:`normalize_torch` (torch, any device, batches) have the same
semantics; tests compare them.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

#: version tag stored with trained weights: a network only works with the normalisation it saw
NORMALIZATION = "panel-median/neighbour-diff-noise/asinh v1"
#: converts the mean absolute neighbour difference to a Gaussian sigma of one pixel
S_MEAN = math.sqrt(math.pi) / 2.0 / math.sqrt(2.0)
TRIM_QUANTILE = 0.98
QUANTUM_FRACTION = 0.5
#: differences within this fraction of the largest |value| count as ties / zero (float rounding)
ROUNDING_TOLERANCE = 1e-6

PanelSlices = Sequence[Tuple[slice, slice]]


def _row_step(nrows: int) -> int:
    return int(max(1, min(8, nrows // 128)))


def _lower_median_np(v: np.ndarray) -> float:
    k = (v.size - 1) // 2
    return float(np.partition(v, k)[k])


def panel_stats(data: np.ndarray, usable: np.ndarray) -> Tuple[float, float]:
    """Offset ``b`` and noise scale ``s`` of one panel (see the module docstring)."""
    step = _row_step(data.shape[0])
    sub = data[::step].astype(np.float64, copy=False)
    ok = usable[::step]
    vals = sub[ok]
    if vals.size == 0:
        vals = data[usable].astype(np.float64)
        if vals.size == 0:
            return 0.0, 1.0
    b = _lower_median_np(vals)
    pair = ok[:, 1:] & ok[:, :-1]
    d = np.abs(sub[:, 1:] - sub[:, :-1])[pair]
    if d.size == 0:
        return b, 1.0
    # tolerance for float rounding (ties at the trim threshold, "zero" differences)
    eps = ROUNDING_TOLERANCE * float(np.abs(vals).max())
    k = int(math.floor(TRIM_QUANTILE * (d.size - 1)))
    thr = float(np.partition(d, k)[k])
    s = S_MEAN * float(d[d <= thr + eps].mean())
    pos = d[d > eps]
    if pos.size:
        s = max(s, QUANTUM_FRACTION * float(pos.min()))
    if not s > 0 or not math.isfinite(s):
        s = 1.0
    return b, s


def normalize(data: np.ndarray, bad: Optional[np.ndarray] = None, *, panels: Optional[PanelSlices] = None) -> np.ndarray:
    """Normalised float32 copy of a 2-D frame (see the module docstring); bad pixels -> 0."""
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"normalize expects a 2-D frame, got shape {data.shape}")
    usable = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, dtype=bool)
    if bad is not None:
        bad = np.asarray(bad, dtype=bool)
        if bad.shape != data.shape:
            raise ValueError(f"bad-pixel mask shape {bad.shape} does not match the frame's {data.shape}")
        usable &= ~bad
    out = np.zeros(data.shape, dtype=np.float32)
    regions = panels if panels else [(slice(None), slice(None))]
    for sl in regions:
        d = data[sl]
        u = usable[sl]
        b, s = panel_stats(d, u)
        z = np.arcsinh((d.astype(np.float32) - np.float32(b)) * np.float32(1.0 / s))
        out[sl] = np.where(u, z, np.float32(0.0))
    return out


# ---------------------------------------------------------------------------------------------
# torch version (GPU-friendly; identical statistics)
# ---------------------------------------------------------------------------------------------
def _panel_stats_torch(data, usable):
    import torch

    step = _row_step(int(data.shape[0]))
    sub = data[::step].to(torch.float64)
    ok = usable[::step]
    vals = sub[ok]
    if vals.numel() == 0:
        vals = data[usable].to(torch.float64)
        if vals.numel() == 0:
            return 0.0, 1.0
    k = (vals.numel() - 1) // 2
    b = float(torch.kthvalue(vals, k + 1).values)
    pair = ok[:, 1:] & ok[:, :-1]
    d = (sub[:, 1:] - sub[:, :-1]).abs()[pair]
    if d.numel() == 0:
        return b, 1.0
    eps = ROUNDING_TOLERANCE * float(vals.abs().max())
    kk = int(math.floor(TRIM_QUANTILE * (d.numel() - 1)))
    thr = float(torch.kthvalue(d, kk + 1).values)
    s = S_MEAN * float(d[d <= thr + eps].mean())
    pos = d[d > eps]
    if pos.numel():
        s = max(s, QUANTUM_FRACTION * float(pos.min()))
    if not s > 0 or not math.isfinite(s):
        s = 1.0
    return b, s


def normalize_torch(data, bad=None, *, panels: Optional[PanelSlices] = None):
    """Torch version of :func:`normalize` for a (H, W), (B, H, W) or (B, 1, H, W) tensor.

    Statistics are per frame (and per panel); returns float32 of the input's shape on the
    input's device.
    """
    import torch

    x = torch.as_tensor(data)
    shape = x.shape
    if x.ndim == 2:
        frames = x[None]
    elif x.ndim == 3:
        frames = x
    elif x.ndim == 4 and x.shape[1] == 1:
        frames = x[:, 0]
    else:
        raise ValueError(f"normalize_torch expects (H, W), (B, H, W) or (B, 1, H, W), got {tuple(shape)}")
    if bad is not None:
        bad_t = torch.as_tensor(bad, device=frames.device).to(torch.bool)
        bad_t = bad_t.reshape(frames.shape) if bad_t.numel() == frames.numel() else None
        if bad_t is None:
            raise ValueError(f"bad-pixel mask shape {tuple(torch.as_tensor(bad).shape)} does not match the frame's {tuple(shape)}")
    out = torch.zeros(frames.shape, dtype=torch.float32, device=frames.device)
    regions = panels if panels else [(slice(None), slice(None))]
    for i in range(frames.shape[0]):
        f = frames[i]
        usable = torch.isfinite(f) if f.is_floating_point() else torch.ones_like(f, dtype=torch.bool)
        if bad is not None:
            usable = usable & ~bad_t[i]
        for sl in regions:
            d = f[sl]
            u = usable[sl]
            b, s = _panel_stats_torch(d, u)
            z = torch.asinh((d.to(torch.float32) - b) * (1.0 / s))
            out[i][sl] = torch.where(u, z, torch.zeros_like(z))
    return out.reshape(shape)
