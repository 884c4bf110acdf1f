"""Masks (True = masked): the model's auto-mask, static masks (files, geometry, gaps), run masks."""

from .automask import artifact_mask_from_probabilities, dilate, frame_mask  # noqa: F401
from .run_mask import RunMaskAccumulator  # noqa: F401
from .static import read_mask_file, static_mask  # noqa: F401
