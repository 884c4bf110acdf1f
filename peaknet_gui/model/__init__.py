"""PeakNet model (Qt-free): network, input normalisation, weights I/O, loss, data, training,
evaluation.  ``from peaknet_gui.model import PeakNet, PeakNetConfig``."""

from .unet import CLASS_NAMES, NUM_CLASSES, PeakNet, PeakNetConfig, forward_padded, pad_to_stride  # noqa: F401
