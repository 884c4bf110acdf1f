"""Crystal orientations: rotations uniform on SO(3) and small misorientations."""

from __future__ import annotations

import numpy as np


def quaternion_to_matrix(q) -> np.ndarray:
    """3x3 rotation matrix of a (w, x, y, z) quaternion (normalised here)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly (Haar measure) from SO(3): a normalised 4-D Gaussian
    is uniform on the unit quaternion sphere, which covers SO(3) uniformly (twice)."""
    return quaternion_to_matrix(rng.normal(size=4))


def axis_angle_matrix(axis, angle_rad: float) -> np.ndarray:
    """Rotation by ``angle_rad`` about ``axis`` (right hand)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    half = 0.5 * angle_rad
    return quaternion_to_matrix(np.concatenate([[np.cos(half)], np.sin(half) * axis]))


def small_rotation(rng: np.random.Generator, sigma_rad: float) -> np.ndarray:
    """A random rotation about a random axis by an angle ~ N(0, sigma_rad)."""
    return axis_angle_matrix(rng.normal(size=3), rng.normal(0.0, sigma_rad))
