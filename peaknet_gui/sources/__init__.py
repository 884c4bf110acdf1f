"""Run sources: ordered, lazily read frames from HDF5/CXI, NeXus/Eiger and fabio image series.

``open_run(inputs, dataset=None, geometry=None)`` is the entry point (see :mod:`.detect`);
``list_image_datasets(h5path)`` lists an HDF5 file's image datasets for a chooser.
"""

from .base import RunSource
from .detect import open_run
from .h5util import AmbiguousDatasetError, DatasetInfo, list_image_datasets

__all__ = ["RunSource", "open_run", "list_image_datasets", "AmbiguousDatasetError", "DatasetInfo"]
