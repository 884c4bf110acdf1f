"""A transaction over files that live beside each other in a directory the user owns.

``peaknet simulate --out RUN.cxi`` writes RUN.cxi and RUN.geom, the GUI's mask export M.h5 and
M.geom: the files are staged in ``.RUN.cxi.staging-*`` beside them, under the lock of the main
file, and renamed into place one by one at commit (the main file last), so a crash leaves either
the previous files or the new ones -- never a half-written file.  See :mod:`.transaction`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from ..errors import ExportError, WriteError
from .transaction import STAGING_TAG, OutputTransaction, clean_stale, os_error_message


class FileSetTransaction(OutputTransaction):
    """Files that live beside each other in a directory the user owns (``peaknet simulate
    --out RUN.cxi`` writes RUN.cxi and RUN.geom): staged in ``.RUN.cxi.staging-*``, each
    renamed into place at commit (``main`` last), under the lock of ``main``."""

    def __init__(self, main, others: Iterable = ()):
        super().__init__(main)
        self.others = [Path(os.path.abspath(os.fspath(o))) for o in others]

    def begin(self) -> Path:
        if self.target.is_dir():
            raise ExportError(f"{self.target}: is a directory, expected a file name")
        self.in_place = True
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"{self.target.parent}: cannot create the directory ({e.strerror or e})") from e
        self.lock.acquire()
        try:
            clean_stale(self.target)
            self.stage = Path(tempfile.mkdtemp(prefix=f".{self.target.name}{STAGING_TAG}{os.getpid()}-",
                                               dir=self.target.parent))
            self._make_reserve()
        except OSError as e:
            self.abort()
            raise WriteError(os_error_message(self.target, e)) from e
        except BaseException:
            self.abort()
            raise
        return self.stage

    def staged(self, path) -> Path:
        """Where to write ``path`` (one of the set's files) until the commit."""
        return self.stage / Path(path).name

    def _commit_in_place(self) -> None:
        from .atomic import make_readable

        for final in [*self.others, self.target]:
            p = self.stage / final.name
            if p.exists():
                make_readable(p)
                os.replace(p, final)
        shutil.rmtree(self.stage, ignore_errors=True)
