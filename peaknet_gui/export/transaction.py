"""Output sets as transactions: a run's files appear together or not at all.

::

    txn = OutputTransaction("run0042_peaks", set_names={"peaks.stream", "hits.cxi", ...})
    stage = txn.begin()          # lock, clean what killed runs left, make the staging directory
    ... write every file into stage ...
    txn.commit()                 # the staging directory replaces run0042_peaks as a whole
    # or txn.abort()             # nothing replaced; the previous set is intact

* **Lock**: :class:`.lock.OutputLock` on ``.NAME.lock`` beside the output: a second run into the
  same output is refused with a clear message.
* **Staging**: ``.NAME.staging-PID-XXXX`` beside the output, i.e. in the same directory and
  on the same file system, at the same depth (relative paths written into the files hold for
  the final place too).
* **Commit** swaps the two directories with one ``renameat2(RENAME_EXCHANGE)`` (Linux), so the
  output is at every instant either the complete old set or the complete new one; where the
  file system cannot exchange, two renames (the old set parked as ``.NAME.old-...`` for the
  instant between them; the next run puts it back if a crash fell in between).
* **In place**: an output directory that holds files that are not part of a set (the current
  directory, a mount point, a folder of the user's own files) is never moved: the new files
  are renamed into it one by one, the old manifest removed first and the new one written last.
* **Stale files**: staging directories and hidden ``.NAME.*.tmp`` files left by killed runs are
  removed by the next run (under the lock, so never a live run's).
* **Disk space**: :meth:`OutputTransaction.ensure_space` refuses a write that would not fit (an
  :class:`~peaknet_gui.errors.ExportError` naming the path, the bytes needed and the bytes free)
  before HDF5 meets ENOSPC (the library crashes when a file it cannot flush is closed), and a
  small reserve file in the staging directory is given up on failure so that files already
  open can still be closed.
* :func:`manifest` lists every file of the set with its size and sha256 (``summary.json``).

Files that live beside each other in a folder of the user's (``RUN.cxi`` + ``RUN.geom``) are a
:class:`.fileset.FileSetTransaction`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional

from ..errors import ExportError, WriteError
from .atomic import _UMASK
from .lock import OutputLock

log = logging.getLogger(__name__)

STAGING_TAG = ".staging-"
OLD_TAG = ".old-"
RESERVE_NAME = ".peaknet-reserve"
RESERVE_BYTES = 64 << 10
MARGIN_BYTES = 64 << 10
SUMMARY = "summary.json"


@dataclass
class ManifestEntry:
    name: str
    size: int
    sha256: str

    def as_dict(self) -> dict:
        return asdict(self)


def sha256_of(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def manifest(folder, exclude: Iterable[str] = (SUMMARY,)) -> list:
    """:class:`ManifestEntry` of every visible file in ``folder`` (sorted by name)."""
    folder = Path(folder)
    skip = set(exclude)
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in skip or not p.is_file():
            continue
        try:
            out.append(ManifestEntry(p.name, p.stat().st_size, sha256_of(p)))
        except OSError as e:
            raise ExportError(f"{p}: cannot read back the file written ({e.strerror or e})") from e
    return out


def free_bytes(path) -> int:
    """Bytes an unprivileged process may still write on the file system of ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def os_error_message(path, e: OSError, need: Optional[int] = None) -> str:
    """One line for a failed write: the path, what happened, the bytes needed when known."""
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        what = "no space left on the device" if e.errno == errno.ENOSPC else "disk quota exceeded"
        free = None
        with contextlib.suppress(OSError):
            free = free_bytes(Path(path).parent)
        more = f" ({need} bytes needed" + (f", {free} free)" if free is not None else ")") if need else (
            f" ({free} bytes free)" if free is not None else "")
        return f"{path}: {what}{more}"
    if e.errno == errno.EIO:
        return f"{path}: input/output error while writing (the device reports a hardware or network fault)"
    return f"{path}: cannot write ({e.strerror or e})"


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where not supported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


class OutputTransaction:
    """Write the output directory ``target`` as a whole (see the module doc).

    ``set_names``: the file names a set of this kind may hold (with the previous manifest's
    names they tell a replaceable set from a folder of the user's files).
    """

    def __init__(self, target, set_names: Iterable[str] = ()):
        self.target = Path(os.path.abspath(os.fspath(target)))
        self.set_names = set(set_names) | {SUMMARY}
        self.lock = OutputLock(self.target)
        self.stage: Optional[Path] = None
        self.in_place = False
        self._reserve: Optional[Path] = None
        self.done = False

    # --- start ------------------------------------------------------------------------------
    def begin(self) -> Path:
        if self.target.exists() and not self.target.is_dir():
            raise ExportError(f"{self.target}: exists and is not a directory")
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"{self.target.parent}: cannot create the directory ({e.strerror or e})") from e
        self.lock.acquire()
        try:
            clean_stale(self.target)
            self.in_place = self.target.is_dir() and not self._replaceable()
            self.stage = Path(tempfile.mkdtemp(prefix=f".{self.target.name}{STAGING_TAG}{os.getpid()}-",
                                               dir=self.target.parent))
            os.chmod(self.stage, 0o777 & ~_UMASK)
            self._make_reserve()
        except OSError as e:
            self.abort()
            raise WriteError(os_error_message(self.target, e)) from e
        except BaseException:
            self.abort()
            raise
        return self.stage

    def _replaceable(self) -> bool:
        """True when ``target`` may be swapped as a whole: it holds only files of a set."""
        t = self.target
        try:
            if os.path.ismount(t):
                return False
            cwd = Path(os.getcwd()).resolve()
            if cwd == t.resolve() or t.resolve() in cwd.parents:
                return False
            names = set(os.listdir(t))
        except OSError:
            return False
        allowed = self.set_names | set(previous_manifest_names(t))
        return all(n in allowed or (n.startswith(".") and n.endswith(".tmp")) for n in names)

    def _make_reserve(self) -> None:
        p = self.stage / RESERVE_NAME
        try:
            with open(p, "wb") as fh:
                try:
                    os.posix_fallocate(fh.fileno(), 0, RESERVE_BYTES)
                except (OSError, AttributeError):
                    fh.write(b"\0" * RESERVE_BYTES)
            self._reserve = p
        except OSError as e:
            with contextlib.suppress(OSError):
                p.unlink()
            raise WriteError(os_error_message(self.target, e, need=RESERVE_BYTES)) from e

    def release_reserve(self) -> None:
        """Give the reserved bytes back (before closing files after a failed write)."""
        if self._reserve is not None:
            with contextlib.suppress(OSError):
                self._reserve.unlink()
            self._reserve = None

    def ensure_space(self, nbytes: int, what=None) -> None:
        """Raise ExportError when ``nbytes`` (plus a margin) would not fit beside the staging dir."""
        if self.stage is None:
            return
        try:
            free = free_bytes(self.stage)
        except OSError:
            return
        if free < nbytes + MARGIN_BYTES:
            name = what if what is not None else self.target
            raise WriteError(f"{name}: no space left on the device ({nbytes + MARGIN_BYTES} bytes needed, "
                              f"{free} free); the previous output is left as it was")

    # --- finish -----------------------------------------------------------------------------
    def commit(self) -> Path:
        """Put the staged set in place (see the module doc); releases the lock."""
        if self.stage is None or self.done:
            raise ExportError(f"{self.target}: transaction not open")
        self.release_reserve()
        try:
            _fsync_dir(self.stage)
            if self.in_place:
                self._commit_in_place()
            elif not self.target.exists():
                os.rename(self.stage, self.target)
            else:
                self._swap()
            _fsync_dir(self.target.parent)
        except OSError as e:
            self.abort()
            raise WriteError(os_error_message(self.target, e) + "; the previous output is left as it was") from e
        self.stage = None
        self.done = True
        self.lock.release()
        return self.target

    def _swap(self) -> None:
        if _exchange(self.stage, self.target):
            old = self.stage  # the staging path now holds the old set
        else:
            old = self.target.parent / f".{self.target.name}{OLD_TAG}{os.getpid()}"
            os.rename(self.target, old)
            os.rename(self.stage, self.target)
        with contextlib.suppress(OSError):
            os.chmod(self.target, 0o777 & ~_UMASK)
        shutil.rmtree(old, ignore_errors=True)

    def _commit_in_place(self) -> None:
        t = self.target
        new = [p for p in self.stage.iterdir() if not p.name.startswith(".")]
        names = {p.name for p in new}
        previous = previous_manifest_names(t)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(t / SUMMARY)  # no manifest claims a set while files change
        for n in previous:
            if n not in names and n in self.set_names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(t / n)
        for p in sorted(new, key=lambda p: p.name == SUMMARY):
            os.replace(p, t / p.name)
        shutil.rmtree(self.stage, ignore_errors=True)

    def abort(self) -> None:
        """Remove the staging directory; the previous set stays; releases the lock."""
        self.release_reserve()
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = None
        self.done = True
        self.lock.release()

    def __enter__(self) -> Path:
        return self.begin()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def previous_manifest_names(folder: Path) -> list:
    """File names the ``summary.json`` manifest in ``folder`` lists (empty when none)."""
    import json

    try:
        with open(folder / SUMMARY, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return []
    names = []
    for e in doc.get("manifest", []) if isinstance(doc, dict) else []:
        if isinstance(e, dict) and isinstance(e.get("name"), str) and "/" not in e["name"]:
            names.append(e["name"])
    return names


def clean_stale(target: Path) -> list:
    """Remove what killed runs left for ``target`` (call under its lock).  Returns the paths removed.

    ``.NAME.staging-*`` directories and hidden ``.*.tmp`` files inside ``target`` go; a
    ``.NAME.old-*`` directory is put back when ``target`` is missing (a crash between the two
    renames of a commit), else removed.
    """
    target = Path(target)
    parent = target.parent
    removed = []
    pat = re.compile(re.escape(f".{target.name}") + r"(\.staging-|\.old-|\.[^/]*\.tmp$)")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        if not pat.match(e.name):
            continue
        p = Path(e.path)
        if OLD_TAG in e.name and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(p, target)
                log.warning("%s: restored the previous output set left by an interrupted commit", target)
                continue
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(p)
    if target.is_dir():
        with contextlib.suppress(OSError):
            for e in os.scandir(target):
                if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)
                    removed.append(Path(e.path))
    if removed:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", target, len(removed))
    return removed

