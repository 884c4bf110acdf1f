"""A worker's frame reader: frames by (file, event), from the shared filesystem.

Each file is opened once (``open_run`` on the file alone, as the driver's run opened it, with the
same dataset and geometry) and kept open for the next frames of the same file; a frame past the
known end of a growing HDF5 file makes the source look again (follow mode).  The frame comes back
with the driver's event id and serial, so the exports name it exactly as a local run would.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

from ..errors import InputError
from ..frame import Frame
from .spec import FrameTask


class FrameReader:
    """Reads :class:`FrameTask` s; ``max_open`` files stay open (least recently used closed)."""

    def __init__(self, dataset: Optional[str] = None, geometry=None, max_open: int = 8):
        self.dataset = dataset
        self.geometry = geometry
        self.max_open = max(1, int(max_open))
        self._open: "OrderedDict[str, object]" = OrderedDict()

    def _source(self, path: str):
        src = self._open.pop(path, None)
        if src is None:
            from ..sources import open_run

            src = open_run(path, dataset=self.dataset, geometry=self.geometry)
        self._open[path] = src
        while len(self._open) > self.max_open:
            _p, old = self._open.popitem(last=False)
            old.close()
        return src

    def read(self, task: FrameTask) -> Frame:
        """The frame of ``task`` (InputError naming the file when it cannot be read)."""
        src = self._source(task.path)
        local = 0 if task.event.index is None else int(task.event.index)
        if local >= len(src):
            src.refresh()  # a file still being written
        if local >= len(src):
            raise InputError(f"{task.event.lst_line()}: no such frame on this worker "
                             f"({task.path} holds {len(src)} frame(s))")
        frame = src.frame(local)
        if task.event.index is not None and frame.event.index is not None and frame.event.index != task.event.index:
            raise InputError(f"{task.event.lst_line()}: {task.path} gives event //{frame.event.index} at that index")
        frame.event = task.event
        frame.serial = task.index
        return frame

    def close(self) -> None:
        while self._open:
            _p, src = self._open.popitem()
            src.close()
