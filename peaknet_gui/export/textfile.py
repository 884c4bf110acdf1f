"""A text file written incrementally into a hidden temporary file and renamed when done."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import WriteError
from .atomic import make_readable
from .transaction import os_error_message


class IncrementalText:
    """A text file written line by line into a hidden temporary file, renamed on commit."""

    def __init__(self, target: Path, display=None):
        self.target = target
        self.display = display if display is not None else target  # the path error messages name
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as e:
            raise WriteError(os_error_message(self.display, e)) from e
        self.tmp = Path(tmp)
        self.fh = os.fdopen(fd, "w", encoding="utf-8", newline="\n")

    def write(self, text: str) -> None:
        try:
            self.fh.write(text)
            self.fh.flush()
        except OSError as e:
            raise WriteError(os_error_message(self.display, e, need=len(text.encode()))) from e

    def rewrite(self, text: str) -> None:
        """Replace everything written so far with ``text``."""
        try:
            self.fh.seek(0)
            self.fh.truncate()
            self.fh.write(text)
            self.fh.flush()
        except OSError as e:
            raise WriteError(os_error_message(self.display, e, need=len(text.encode()))) from e

    def commit(self) -> None:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            make_readable(self.tmp)
            os.replace(self.tmp, self.target)
        except OSError as e:
            self.abort()
            raise WriteError(os_error_message(self.display, e)) from e

    def abort(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.fh.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()
