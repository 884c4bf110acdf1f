"""Persistent settings (QSettings): last run, geometry, thresholds, display, recent runs, layout.

``$PEAKNET_GUI_SETTINGS`` (or the ``path`` argument) names an INI file to use instead of the
user's platform settings -- the tests use a temporary one.  Values are stored as JSON text so
they read back with their types on every platform.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Optional

from ..pipeline.settings import FinderSettings, MaskSettings
from .qt import QtCore
from .runs import RunRequest
from .state import DisplaySettings

log = logging.getLogger(__name__)

ENV = "PEAKNET_GUI_SETTINGS"
MAX_RECENT = 10


def _from_dict(cls, d):
    names = {f.name for f in dataclasses.fields(cls)}
    out = cls()
    for k, v in (d or {}).items():
        if k in names:
            setattr(out, k, v)
    return out


class AppSettings:
    def __init__(self, path: Optional[str] = None):
        path = path or os.environ.get(ENV)
        if path:
            self.q = QtCore.QSettings(str(path), QtCore.QSettings.IniFormat)
        else:
            self.q = QtCore.QSettings("peaknet_gui", "peaknet-gui")

    # --- JSON values -------------------------------------------------------------------------------
    def _get(self, key: str, default=None):
        raw = self.q.value(key, None)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            log.warning("settings: ignoring unreadable value of %s", key)
            return default

    def _set(self, key: str, value) -> None:
        self.q.setValue(key, json.dumps(value))

    def sync(self) -> None:
        self.q.sync()

    # --- analysis ----------------------------------------------------------------------------------
    def finder(self) -> FinderSettings:
        f = _from_dict(FinderSettings, self._get("analysis/finder", {}))
        if f.algorithm not in ("peaknet", "peakfinder8"):
            f.algorithm = "peaknet"
        return f

    def set_finder(self, f: FinderSettings) -> None:
        self._set("analysis/finder", dataclasses.asdict(f))

    def mask(self) -> MaskSettings:
        return _from_dict(MaskSettings, self._get("analysis/mask", {}))

    def set_mask(self, m: MaskSettings) -> None:
        self._set("analysis/mask", dataclasses.asdict(m))

    def model(self) -> dict:
        return self._get("analysis/model", {}) or {}

    def set_model(self, weights: Optional[str], device: str) -> None:
        self._set("analysis/model", {"weights": weights, "device": device})

    # --- display -----------------------------------------------------------------------------------
    def display(self) -> DisplaySettings:
        return DisplaySettings.from_dict(self._get("display/settings", {}))

    def set_display(self, d: DisplaySettings) -> None:
        self._set("display/settings", d.as_dict())

    def play_fps(self) -> float:
        return float(self._get("browse/play_fps", 2.0))

    def set_play_fps(self, fps: float) -> None:
        self._set("browse/play_fps", float(fps))

    # --- runs --------------------------------------------------------------------------------------
    def last_run(self) -> Optional[RunRequest]:
        d = self._get("runs/last", None)
        return RunRequest.from_dict(d) if d else None

    def set_last_run(self, req: RunRequest, index: int = 0) -> None:
        d = req.as_dict()
        d["start_index"] = int(index)
        self._set("runs/last", d)

    def recent_runs(self) -> list:
        return [RunRequest.from_dict(d) for d in (self._get("runs/recent", []) or []) if isinstance(d, dict)]

    def add_recent(self, req: RunRequest) -> None:
        if req.demo:
            return
        key = (tuple(req.inputs), req.dataset)
        items = [r for r in self.recent_runs() if (tuple(r.inputs), r.dataset) != key]
        items.insert(0, req)
        self._set("runs/recent", [r.as_dict() for r in items[:MAX_RECENT]])

    def last_dir(self) -> str:
        return self._get("runs/last_dir", "") or ""

    def set_last_dir(self, path: str) -> None:
        self._set("runs/last_dir", str(path))

    # --- window --------------------------------------------------------------------------------------
    def window_geometry(self) -> Optional[QtCore.QByteArray]:
        v = self.q.value("window/geometry", None)
        return v if isinstance(v, QtCore.QByteArray) else None

    def window_state(self) -> Optional[QtCore.QByteArray]:
        v = self.q.value("window/state", None)
        return v if isinstance(v, QtCore.QByteArray) else None

    def set_window(self, geometry: QtCore.QByteArray, state: QtCore.QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)
