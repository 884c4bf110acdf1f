"""Self-check of a weights file: the class map of a fixed synthetic frame, recorded beside the
weights when they are shipped and compared at test time (or by a user after installation).

The reference frame is generated deterministically (numpy PCG64 with a fixed seed): Poisson
background, a dozen Gaussian spots and an artifact ring.  The recorded class map is stored as a
zlib-compressed, base64-encoded uint8 array in the sidecar's ``metadata["reference_check"]``.
"""

from __future__ import annotations

import base64
import zlib
from typing import Optional

import numpy as np

REFERENCE_SHAPE = (128, 160)
REFERENCE_SEED = 20230517


def reference_frame(shape=REFERENCE_SHAPE, seed: int = REFERENCE_SEED) -> np.ndarray:
    """The fixed synthetic test frame (float32 photon counts)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    lam = 2.0 + 0.5 * np.cos(xx / 23.0)
    r = np.hypot(yy - h * 0.9, xx - w * 0.1)
    lam += 25.0 * np.exp(-0.5 * ((r - 0.6 * h) / 2.0) ** 2)  # ring
    for _ in range(12):
        cy, cx = rng.uniform(8, h - 8), rng.uniform(8, w - 8)
        amp, sig = rng.uniform(60, 600), rng.uniform(0.6, 1.4)
        lam += amp * np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / sig**2) / (2 * np.pi * sig**2)
    return rng.poisson(lam).astype(np.float32)


def class_map(net, frame: Optional[np.ndarray] = None) -> np.ndarray:
    from .evaluate import predict_classes

    frame = reference_frame() if frame is None else frame
    return predict_classes(net, frame)


def encode(classes: np.ndarray) -> dict:
    return {
        "shape": list(classes.shape),
        "seed": REFERENCE_SEED,
        "classmap_zlib_b64": base64.b64encode(zlib.compress(classes.astype(np.uint8).tobytes(), 9)).decode("ascii"),
        "class_counts": np.bincount(classes.ravel(), minlength=3).tolist(),
    }


def decode(record: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(record["classmap_zlib_b64"]))
    return np.frombuffer(raw, dtype=np.uint8).reshape(record["shape"])


def mismatch_fraction(net, record: dict) -> float:
    """Fraction of pixels whose class differs from the recorded map."""
    got = class_map(net, reference_frame(tuple(record["shape"]), int(record["seed"])))
    return float(np.mean(got != decode(record)))
