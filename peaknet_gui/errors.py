"""Exceptions of peaknet_gui.

Every problem caused by what the user gave us (files, dataset paths, geometry, weights, devices)
raises a subclass of :class:`PeakNetError` whose message names the file or object and says what
is wrong.  The CLI prints the message and exits with status 2; the GUI shows it in a dialog.
"""

from __future__ import annotations


class PeakNetError(Exception):
    """Base class of all errors the application reports to the user."""


class InputError(PeakNetError):
    """Bad input data: missing/corrupt/truncated file, wrong dataset path, wrong shapes, ..."""


class GeometryError(InputError):
    """A detector geometry that does not parse or does not match the data."""


class ModelError(PeakNetError):
    """Missing, corrupt or incompatible model weights."""


class DeviceError(PeakNetError):
    """A compute device problem (CUDA unavailable, out of memory, ...)."""


class ExportError(PeakNetError):
    """An output file could not be written."""


class WriteError(ExportError):
    """Writing an output failed (no space left, I/O error, ...): the previous output is kept."""


class CalibrationError(PeakNetError):
    """A calibration that cannot be done (too few rings, wrong energy, ...)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, SLURM, batch systems) delivered to a command: handled like Ctrl-C
    (frames done kept, files closed); the command exits with 143 instead of 130."""
