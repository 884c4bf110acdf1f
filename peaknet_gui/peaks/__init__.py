"""Peaks: the :class:`PeakList` type, peak extraction from class maps, classical finder."""

from .peaklist import PeakList  # noqa: F401
