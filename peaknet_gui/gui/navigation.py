"""The run browser bar under the image: event slider and spin box, stepping, hits, play, follow."""

from __future__ import annotations

from .qt import Qt, QtCore, QtWidgets, Signal
from .style import glyph_icon


def _tool(text: str, tip: str, icon=None) -> QtWidgets.QToolButton:
    b = QtWidgets.QToolButton()
    b.setText(text)
    if icon is not None:
        b.setIcon(icon)
        b.setIconSize(QtCore.QSize(18, 18))
    b.setToolTip(tip)
    b.setAutoRaise(True)
    f = b.font()
    f.setPointSizeF(f.pointSizeF() * 1.15)
    b.setFont(f)
    return b


class NavigationBar(QtWidgets.QWidget):
    """Signals carry requests; the controller decides.  ``set_range``/``set_index`` never emit."""

    indexRequested = Signal(int)
    stepRequested = Signal(int)
    hitRequested = Signal(int)  # +1 next hit, -1 previous hit
    playToggled = Signal(bool)
    fpsChanged = Signal(float)
    followToggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.setSpacing(4)
        self._icons = {k: glyph_icon(k) for k in ("first", "last", "play", "pause", "prev", "next")}
        self.first = _tool("", "First frame (Home)", self._icons["first"])
        self.prev_hit = _tool("\u25c0 hit", "Previous hit (P)")
        self.prev = _tool("", "Previous frame (\u2190)", self._icons["prev"])
        self.play = _tool("", "Play / pause (Space)", self._icons["play"])
        self.play.setCheckable(True)
        self.next = _tool("", "Next frame (\u2192)", self._icons["next"])
        self.next_hit = _tool("hit \u25b6", "Next hit (N): searches ahead when no hit is known")
        self.last = _tool("", "Last frame (End)", self._icons["last"])
        self.slider = QtWidgets.QSlider(Qt.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Event")
        self.slider.setFocusPolicy(Qt.ClickFocus)
        self.spin = QtWidgets.QSpinBox()
        self.spin.setRange(0, 0)
        self.spin.setKeyboardTracking(False)
        self.spin.setToolTip("Frame index (0-based)")
        self.spin.setMinimumWidth(64)
        self.slider.setMinimumWidth(60)
        self.fps = QtWidgets.QDoubleSpinBox()
        self.fps.setRange(0.1, 60.0)
        self.fps.setDecimals(1)
        self.fps.setSingleStep(0.5)
        self.fps.setSuffix(" fps")
        self.fps.setToolTip("Play rate (frames per second; play waits for each frame's peaks)")
        self.fps.setKeyboardTracking(False)
        self.fps.setMaximumWidth(76)
        self.follow = QtWidgets.QCheckBox("Live")
        self.follow.setToolTip("Watch the run for new frames; show and analyse them as they arrive")
        for w in (self.first, self.prev_hit, self.prev, self.play, self.next, self.next_hit, self.last):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.spin)
        lay.addSpacing(10)
        lay.addWidget(self.fps)
        lay.addWidget(self.follow)

        self.first.clicked.connect(lambda: self.indexRequested.emit(0))
        self.last.clicked.connect(lambda: self.indexRequested.emit(max(self.slider.maximum(), 0)))
        self.prev.clicked.connect(lambda: self.stepRequested.emit(-1))
        self.next.clicked.connect(lambda: self.stepRequested.emit(1))
        self.prev_hit.clicked.connect(lambda: self.hitRequested.emit(-1))
        self.next_hit.clicked.connect(lambda: self.hitRequested.emit(1))
        self.slider.valueChanged.connect(self.indexRequested.emit)
        self.spin.valueChanged.connect(self.indexRequested.emit)
        self.play.toggled.connect(self._play_toggled)
        self.fps.valueChanged.connect(self.fpsChanged.emit)
        self.follow.toggled.connect(self.followToggled.emit)

    def _play_toggled(self, on: bool) -> None:
        self.play.setIcon(self._icons["pause" if on else "play"])
        self.playToggled.emit(on)

    def set_range(self, n_frames: int) -> None:
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setRange(0, max(n_frames - 1, 0))
            w.blockSignals(False)
        self.spin.setSuffix(f" / {max(n_frames - 1, 0)}")
        self.setEnabled(n_frames > 0)

    def set_index(self, i: int) -> None:
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setValue(int(i))
            w.blockSignals(False)

    def set_playing(self, on: bool) -> None:
        self.play.blockSignals(True)
        self.play.setChecked(on)
        self.play.setIcon(self._icons["pause" if on else "play"])
        self.play.blockSignals(False)

    def set_follow(self, on: bool) -> None:
        self.follow.blockSignals(True)
        self.follow.setChecked(on)
        self.follow.blockSignals(False)

    def set_fps(self, fps: float) -> None:
        self.fps.blockSignals(True)
        self.fps.setValue(float(fps))
        self.fps.blockSignals(False)
