"""The Linux desktop entry: ``peaknet-gui --install-desktop-entry`` puts PeakNet in the user's
application menu (freedesktop.org Desktop Entry Specification, version 1.4 of the file format).

Writes ``$XDG_DATA_HOME/applications/peaknet-gui.desktop`` and the icon
``$XDG_DATA_HOME/icons/hicolor/scalable/apps/peaknet-gui.svg`` (``$XDG_DATA_HOME`` defaults to
``~/.local/share``), each atomically.  The entry starts this installation's ``peaknet-gui``
(an absolute path: the menu does not see a virtual environment's ``PATH``).  Qt-free.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from .errors import ExportError
from .export.atomic import atomic_path, atomic_write
from .shipped import ICON_NAME, shipped_file

APP_ID = "peaknet-gui"
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


@dataclass
class DesktopEntryPaths:
    entry: Path
    icon: Path


def data_home(environ=None) -> Path:
    """``$XDG_DATA_HOME`` when it is set to an absolute path, else ``~/.local/share``."""
    env = (environ if environ is not None else os.environ).get("XDG_DATA_HOME", "")
    return Path(env) if env and os.path.isabs(env) else Path.home() / ".local" / "share"


def target_paths(environ=None) -> DesktopEntryPaths:
    base = data_home(environ)
    return DesktopEntryPaths(entry=base / "applications" / f"{APP_ID}.desktop",
                             icon=base / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg")


def launch_command() -> List[str]:
    """This installation's ``peaknet-gui`` script beside its Python, else ``python -m peaknet_gui``.
    ``sys.executable`` is kept as it is (resolving a venv's symlink would leave the venv)."""
    script = Path(sys.executable).parent / APP_ID
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "peaknet_gui"]


def _exec_arg(arg: str) -> str:
    """One Exec argument: quoted when it holds reserved characters, then the string-value escape
    of backslashes; ``%`` doubled (the spec's field codes)."""
    arg = arg.replace("%", "%%")
    if any(c in _RESERVED for c in arg):
        arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return arg.replace("\\", "\\\\")


def entry_text(command: List[str], icon: Path) -> str:
    from . import __version__

    exec_line = " ".join(_exec_arg(a) for a in command)
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=PeakNet",
        "GenericName=Serial crystallography run browser",
        "Comment=Browse serial-crystallography runs: PeakNet peak finding, auto-masking, CrystFEL export",
        f"Exec={exec_line} %F",
        f"TryExec={command[0].replace(chr(92), chr(92) * 2)}",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Science;Physics;DataVisualization;Qt;",
        "Keywords=crystallography;diffraction;XFEL;synchrotron;CrystFEL;peaks;detector;",
        f"StartupWMClass={APP_ID}",
        f"X-PeakNet-Version={__version__}",
        "",
    ])


def install_desktop_entry(environ=None, command: Optional[List[str]] = None) -> DesktopEntryPaths:
    """Write the icon, then the entry that names it.  Raises :class:`ExportError` naming the
    file and the problem when either cannot be written; a file already there is replaced whole."""
    paths = target_paths(environ)
    source_icon = shipped_file(ICON_NAME)
    if not source_icon.is_file():
        raise ExportError(f"{source_icon}: the application icon is missing from this installation")
    try:
        with atomic_path(paths.icon, suffix=".svg") as tmp:
            shutil.copyfile(source_icon, tmp)
        with atomic_write(paths.entry) as fh:
            fh.write(entry_text(command or launch_command(), paths.icon))
        os.chmod(paths.entry, 0o755 & ~_umask())  # some file managers only launch executable entries
    except ExportError as e:  # a folder that cannot be made or written
        raise ExportError(f"cannot install the desktop entry: {e}") from e
    except OSError as e:
        where = e.filename or paths.entry
        raise ExportError(f"cannot install the desktop entry: {where}: {e.strerror or e}") from e
    return paths


def remove_desktop_entry(environ=None) -> List[Path]:
    """Delete the entry and the icon; returns the files removed."""
    removed = []
    paths = target_paths(environ)
    for p in (paths.entry, paths.icon):
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ExportError(f"{p}: cannot remove ({e.strerror or e})") from e
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
