"""peaknet_gui: browse serial-crystallography runs with PeakNet peak finding and auto-masking.

The package is split into a Qt-free core (``sources``, ``geometry``, ``sim``, ``model``,
``inference``, ``peaks``, ``masks``, ``export``, ``calib``, ``pipeline``, ``cli``) and a thin
Qt layer in ``peaknet_gui.gui``.  Nothing outside ``gui`` imports Qt.

Coordinate convention used everywhere inside the program: **pixel indices**. The centre of the
first pixel of a data array is at (fs, ss) = (0, 0); ``fs`` is the fast-scan (column) index and
``ss`` the slow-scan (row) index of the array as stored in the file.  CrystFEL's corner
convention (centre of the first pixel at 0.5, 0.5) appears only inside the exporters and
readers in :mod:`peaknet_gui.export`.
"""

import os as _os

# HDF5 file locking off for the whole process, before h5py loads the library: the run sources
# read files that other programs are still writing (a reader's lock makes a non-SWMR writer
# fail), and HDF5 refuses to open one file twice in a process with different locking flags.
# See peaknet_gui/sources/h5util.py.  A user's explicit setting is kept.
_os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

__version__ = "0.1.0"
