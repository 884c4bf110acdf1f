"""Message dialogs: every problem the user should know about goes through here.

Call these as ``dialogs.show_error(...)`` (module attribute), so tests can replace them with a
recorder.  In non-interactive mode (``--screenshot``) messages go to stderr instead of a box.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional

from ..errors import DeviceError, ExportError, GeometryError, InputError, ModelError, PeakNetError
from .qt import Qt, QtWidgets

log = logging.getLogger(__name__)

_noninteractive = False
messages: list = []  # (kind, title, text) of every message shown, newest last (bounded)


def set_noninteractive(flag: bool) -> None:
    global _noninteractive
    _noninteractive = bool(flag)


def _remember(kind: str, title: str, text: str) -> None:
    messages.append((kind, title, text))
    del messages[:-50]


def describe(context: str, exc: BaseException) -> tuple:
    """(title, text) for an exception: our errors carry their own message (file + problem)."""
    if isinstance(exc, ModelError):
        return ("Model weights", f"{exc}\n\nChoose other weights (Peak finding \u25b8 Weights\u2026) or switch the "
                                 "algorithm to peakfinder8.")
    if isinstance(exc, DeviceError):
        return "Compute device", str(exc)
    if isinstance(exc, GeometryError):
        return "Geometry", str(exc)
    if isinstance(exc, ExportError):
        return "Export", str(exc)
    if isinstance(exc, InputError):
        return "Input", str(exc)
    if isinstance(exc, PeakNetError):
        return "PeakNet", str(exc)
    if isinstance(exc, MemoryError):
        return "Out of memory", f"{context}: not enough memory ({exc})"
    if isinstance(exc, OSError):
        name = getattr(exc, "filename", None)
        return "File", f"{context}: {name + ': ' if name else ''}{exc.strerror or exc}"
    return "Unexpected error", f"{context}: {type(exc).__name__}: {exc}\n\n(This is a bug; the details are in the log.)"


def show_error(parent: Optional[QtWidgets.QWidget], title: str, text: str) -> None:
    """A modal error box naming the problem (stderr when non-interactive)."""
    _remember("error", title, text)
    log.error("%s: %s", title, text)
    if _noninteractive:
        print(f"peaknet-gui: {title}: {text}", file=sys.stderr)
        return
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Critical, title, text, QtWidgets.QMessageBox.Ok, parent)
    box.exec_()


def show_warning(parent: Optional[QtWidgets.QWidget], title: str, text: str) -> None:
    """A non-modal warning box (the window stays usable behind it)."""
    _remember("warning", title, text)
    log.warning("%s: %s", title, text)
    if _noninteractive:
        print(f"peaknet-gui: warning: {text}", file=sys.stderr)
        return
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Warning, title, text, QtWidgets.QMessageBox.Ok, parent)
    box.setModal(False)
    box.setAttribute(Qt.WA_DeleteOnClose, True)
    box.show()


def show_info(parent: Optional[QtWidgets.QWidget], title: str, text: str) -> None:
    _remember("info", title, text)
    if _noninteractive:
        print(f"peaknet-gui: {text}", file=sys.stderr)
        return
    QtWidgets.QMessageBox.information(parent, title, text)


def choose_dataset(parent: Optional[QtWidgets.QWidget], what: str, candidates: list) -> Optional[str]:
    """Ask which image dataset of an HDF5 file to use; None when cancelled."""
    if not candidates:
        return None
    items = []
    for c in candidates:
        shape = "\u00d7".join(str(s) for s in getattr(c, "shape", ()))
        items.append(f"{c.path}    [{shape} {getattr(c, 'dtype', '')}]")
    if _noninteractive:
        print(f"peaknet-gui: {what} holds several image datasets; give --dataset, one of: "
              + ", ".join(c.path for c in candidates), file=sys.stderr)
        return None
    item, ok = QtWidgets.QInputDialog.getItem(parent, "Choose the image dataset",
                                              f"{what} holds several image datasets.\nWhich one holds the frames?",
                                              items, 0, False)
    if not ok:
        return None
    return candidates[items.index(item)].path
