"""One writer per output: an ``fcntl`` lock on a hidden lock file beside the output.

``.NAME.lock`` lives in the output's parent directory (not inside the output, which a
transaction replaces as a whole), so every process that writes ``NAME`` -- a ``peaknet find
--out NAME``, a ``peaknet simulate --out NAME``, a GUI export -- takes the same lock.  The lock
is released when the process ends however it ends (the kernel drops ``flock`` locks with the
file descriptor), so a killed run never leaves a stale lock behind (only an empty, unlocked
file that the next run takes).  A normal release removes the lock file; a process that locked
a file just removed sees that its inode is no longer the path's and tries again.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Optional

from ..errors import ExportError


def lock_path(target) -> Path:
    target = Path(os.path.abspath(os.fspath(target)))
    return target.parent / f".{target.name}.lock"


class OutputLock:
    """An exclusive, non-blocking lock for writing ``target`` (see the module doc).

    ``acquire`` raises :class:`ExportError` naming the output when another process holds it.
    """

    def __init__(self, target):
        self.target = Path(os.path.abspath(os.fspath(target)))
        self.path = lock_path(self.target)
        self._fd: Optional[int] = None

    def acquire(self) -> "OutputLock":
        for _ in range(20):
            fd = self._try_lock()
            try:
                st, now = os.fstat(fd), os.stat(self.path)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # the holder removed the file between our open and lock: again
        else:
            raise ExportError(f"{self.target}: cannot lock {self.path.name} (it keeps being replaced)")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass  # the pid is only a courtesy for the message above
        self._fd = fd
        return self

    def _try_lock(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise ExportError(f"{self.target}: cannot create the lock file {self.path.name} "
                              f"({e.strerror or e})") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            except OSError:
                pass
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise ExportError(f"{self.target}: another run is writing this output{who}; wait for it to finish "
                              "or choose another output") from None
        return fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)  # still locked: nobody can hold the file being removed
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
