"""The detector image: levels/histogram, colormaps, log scale, overlays, hover read-out, zoom/pan.

:class:`DetectorImageView` draws a :class:`~.display.FrameView` (image) and an
:class:`~.display.OverlayView` (peaks, masks) prepared by the worker; it never reads files.
Mouse wheel zooms, dragging pans, a right click offers pyqtgraph's view menu; ``fit()`` shows
the whole detector.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from .display import FrameView, OverlayView, readout, scale_to_uint8
from .overlays import BeamOverlay, MaskOverlay, PeakOverlay, RingsOverlay
from .qt import QtCore, QtWidgets, Signal, pg
from .state import DisplaySettings

COLORMAPS = ("grey", "inverted grey", "viridis", "inferno", "magma", "plasma", "cividis", "turbo")


def colormap(name: str) -> pg.ColorMap:
    if name == "grey":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
    if name == "inverted grey":
        return pg.ColorMap([0.0, 1.0], [(255, 255, 255), (0, 0, 0)])
    return pg.colormap.get(name)


class DisplayBar(QtWidgets.QWidget):
    """Colormap, log scale, automatic levels by percentiles."""

    changed = Signal()

    def __init__(self, settings: DisplaySettings, parent=None):
        super().__init__(parent)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(6)
        self.cmap = QtWidgets.QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.cmap.setToolTip("Colormap")
        self.cmap.setMinimumContentsLength(8)
        self.cmap.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.auto_label = QtWidgets.QLabel("levels")
        self.log = QtWidgets.QCheckBox("Log")
        self.log.setToolTip("Show log10 of the pixel values (values below 1 as 0)")
        self.auto = QtWidgets.QCheckBox("Auto")
        self.auto.setToolTip("Automatic levels: set the levels of every frame from percentiles of its pixel values;\n"
                             "dragging the histogram's levels switches this off")
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(["spots", "percentiles"])
        self.mode.setToolTip("Automatic levels -- spots: black at the background's median, white 15 robust sigmas\n"
                             "above it (spots stand out at any zoom); percentiles: at the two percentiles beside")
        self.lo = QtWidgets.QDoubleSpinBox()
        self.hi = QtWidgets.QDoubleSpinBox()
        for sb, tip in ((self.lo, "Lower level percentile"), (self.hi, "Upper level percentile")):
            sb.setRange(0.0, 100.0)
            sb.setDecimals(2)
            sb.setSingleStep(0.1)
            sb.setSuffix(" %")
            sb.setToolTip(tip)
            sb.setKeyboardTracking(False)
            sb.setMaximumWidth(82)
        self.fit_button = QtWidgets.QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Show the whole detector (double-click the image does the same)")
        lay.addWidget(self.cmap)
        lay.addWidget(self.log)
        lay.addSpacing(8)
        lay.addWidget(self.auto)
        lay.addWidget(self.auto_label)
        lay.addWidget(self.mode)
        lay.addWidget(self.lo)
        lay.addWidget(QtWidgets.QLabel("\u2013"))
        lay.addWidget(self.hi)
        lay.addStretch(1)
        lay.addWidget(self.fit_button)
        self.set_settings(settings)
        self.cmap.currentTextChanged.connect(lambda _: self.changed.emit())
        for w in (self.log, self.auto):
            w.toggled.connect(lambda _: self.changed.emit())
        self.mode.currentTextChanged.connect(self._mode_changed)
        for w in (self.lo, self.hi):
            w.valueChanged.connect(self._percentile_changed)

    def _mode_changed(self, *_):
        for w in (self.lo, self.hi):
            w.setEnabled(self.mode.currentText() == "percentiles")
        self.changed.emit()

    def _percentile_changed(self, *_):
        """A percentile typed in means percentile levels."""
        self.mode.blockSignals(True)
        self.mode.setCurrentText("percentiles")
        self.mode.blockSignals(False)
        self._mode_changed()

    def set_settings(self, s: DisplaySettings) -> None:
        for w in (self.cmap, self.log, self.auto, self.lo, self.hi, self.mode):
            w.blockSignals(True)
        i = self.cmap.findText(s.colormap)
        self.cmap.setCurrentIndex(max(i, 0))
        self.log.setChecked(s.log_scale)
        self.auto.setChecked(s.auto_levels)
        self.lo.setValue(float(s.percentiles[0]))
        self.hi.setValue(float(s.percentiles[1]))
        mode = getattr(s, "level_mode", "spots")
        self.mode.setCurrentText(mode if mode in ("spots", "percentiles") else "spots")
        for w in (self.lo, self.hi):
            w.setEnabled(self.mode.currentText() == "percentiles")
        for w in (self.cmap, self.log, self.auto, self.lo, self.hi, self.mode):
            w.blockSignals(False)

    def apply_to(self, s: DisplaySettings) -> None:
        s.colormap = self.cmap.currentText()
        s.log_scale = self.log.isChecked()
        s.auto_levels = self.auto.isChecked()
        s.level_mode = self.mode.currentText()
        lo, hi = self.lo.value(), self.hi.value()
        s.percentiles = (min(lo, hi - 0.01), max(hi, lo + 0.01))


class DetectorImageView(QtWidgets.QWidget):
    """Image + histogram + overlays.  Signals: ``readoutChanged(PixelReadout or None)``,
    ``displayChanged()`` (colormap/log/levels settings), ``frameDrawn(index)`` after an image is
    shown, ``overlayDrawn(index)`` after peaks/masks are shown.

    The worker hands over the frame already scaled to uint8 colormap indices at the right
    levels, so showing a frame is a colour look-up; only when the user drags the levels is the
    frame rescaled here.
    """

    readoutChanged = Signal(object)
    displayChanged = Signal()
    frameDrawn = Signal(int)
    overlayDrawn = Signal(int)

    def __init__(self, settings: Optional[DisplaySettings] = None, parent=None):
        super().__init__(parent)
        self.settings = settings or DisplaySettings()
        self.view: Optional[FrameView] = None
        self.overlay: Optional[OverlayView] = None
        self.last_draw_ms = 0.0
        self.levels: tuple = (0.0, 1.0)  # levels of the image on screen
        self._shape = None
        self._manual_levels: Optional[tuple] = None
        self._programmatic = False
        self._lut = None

        self.bar = DisplayBar(self.settings)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.ci.layout.setContentsMargins(0, 0, 0, 0)
        self.view_box = self.graphics.addViewBox(row=0, col=0)
        self.view_box.setAspectLocked(True)
        self.view_box.invertY(self.settings.orientation != "crystfel")  # see apply_orientation
        self.view_box.setMenuEnabled(True)
        self.image_item = pg.ImageItem()
        self.image_item.setZValue(0)
        self.view_box.addItem(self.image_item)
        self.mask_item = MaskOverlay()
        self.peak_item = PeakOverlay()
        self.beam_item = BeamOverlay()
        self.rings_item = RingsOverlay(self.view_box)
        for it in (self.mask_item, self.peak_item, self.beam_item):
            self.view_box.addItem(it, ignoreBounds=True)
        self.placeholder = pg.TextItem("Open a run: File \u25b8 Open run\u2026 (Ctrl+O)", color=(150, 160, 175), anchor=(0.5, 0.5))
        self.view_box.addItem(self.placeholder, ignoreBounds=True)
        self.histogram = pg.HistogramLUTItem()  # not bound to the image: levels are applied by scaling
        self.histogram.setMaximumWidth(130)
        self.graphics.addItem(self.histogram, row=0, col=1)
        self.histogram.sigLevelsChanged.connect(self._levels_dragging)
        self.histogram.sigLevelChangeFinished.connect(self._levels_dragged)
        self.histogram.sigLookupTableChanged.connect(self._lut_changed)
        self._rescale_timer = QtCore.QTimer(self)
        self._rescale_timer.setSingleShot(True)
        self._rescale_timer.setInterval(30)
        self._rescale_timer.timeout.connect(self._rescale)

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.bar)
        lay.addWidget(self.graphics, 1)

        self.bar.changed.connect(self._bar_changed)
        self.bar.fit_button.clicked.connect(self.fit)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)
        self.view_box.sigTransformChanged.connect(self._zoom_changed)
        self.graphics.scene().sigMouseClicked.connect(self._mouse_clicked)
        self._apply_colormap()
        self.apply_visibility()
        self.fit()

    # --- settings ---------------------------------------------------------------------------------
    @property
    def manual_levels(self) -> Optional[tuple]:
        """The user's levels, None while the levels are automatic."""
        return None if self.settings.auto_levels else self._manual_levels

    def _apply_colormap(self) -> None:
        self._programmatic = True
        try:
            self.histogram.gradient.setColorMap(colormap(self.settings.colormap))
        finally:
            self._programmatic = False
        self._lut_changed()

    def _lut_changed(self, *_):
        lut = np.zeros((256, 4), dtype=np.uint8)  # index 0: no data (transparent)
        lut[1:, :3] = self.histogram.gradient.getLookupTable(255, alpha=False)[:, :3]
        lut[1:, 3] = 255
        self._lut = lut
        self.image_item.setLookupTable(lut)

    def _bar_changed(self) -> None:
        old_log = self.settings.log_scale
        self.bar.apply_to(self.settings)
        self._apply_colormap()
        if self.settings.log_scale != old_log or self.settings.auto_levels:
            self._manual_levels = None  # levels of the other scale mean nothing here
        if self.view is not None and self.settings.log_scale == old_log:
            self._draw_image(self.view)
        self.displayChanged.emit()

    def set_display_settings(self, s: DisplaySettings) -> None:
        old_log = self.settings.log_scale
        self.settings = s
        if s.log_scale != old_log:
            self._manual_levels = None
        self.bar.set_settings(s)
        self._apply_colormap()
        self.apply_visibility()
        self.apply_orientation()

    def apply_orientation(self) -> None:
        """Draw the detector as the settings' ``orientation`` says.  The display grid has lab +x
        to the right and lab +y along increasing rows (geometry/assemble.py).  ``"data"`` puts
        row 0 at the top (an unassembled frame looks like its array); ``"crystfel"`` draws lab +y
        upwards, as CrystFEL's viewer does (+x right, +y up: its cairo scale (1, -1)).  Only
        the view flips: overlays, hover read-out and tools map through the same view box."""
        inverted = self.settings.orientation != "crystfel"
        if self.view_box.yInverted() != inverted:
            self.view_box.invertY(inverted)
            self.rings_item.refresh()

    def apply_visibility(self) -> None:
        s = self.settings
        self.peak_item.setVisible(s.show_peaks)
        self.mask_item.configure(s.show_static, s.show_automask, s.mask_opacity)
        self.rings_item.setVisible(s.show_rings)
        self.beam_item.setVisible(s.show_beam)

    def _set_region(self, levels: tuple) -> None:
        self._programmatic = True
        try:
            self.histogram.setLevels(*levels)
        finally:
            self._programmatic = False

    def _levels_dragging(self, *_):
        if self._programmatic or self.view is None:
            return
        self._manual_levels = tuple(float(v) for v in self.histogram.getLevels())
        if self.settings.auto_levels:
            self.settings.auto_levels = False
            self.bar.set_settings(self.settings)
        self._rescale_timer.start()

    def _levels_dragged(self, *_):
        if self._programmatic or self.view is None:
            return
        self._levels_dragging()
        self._rescale_timer.stop()
        self._rescale()
        self.displayChanged.emit()

    def set_levels(self, lo: float, hi: float) -> None:
        """Fix the levels (automatic levels off), as dragging the histogram does."""
        self._manual_levels = (float(lo), float(hi))
        self.settings.auto_levels = False
        self.bar.set_settings(self.settings)
        if self.view is not None:
            self._draw_image(self.view)
        self.displayChanged.emit()

    def _rescale(self) -> None:
        if self.view is not None:
            self._draw_image(self.view)

    # --- drawing ----------------------------------------------------------------------------------
    def _wanted_levels(self, view: FrameView) -> tuple:
        manual = self.manual_levels
        return view.auto_levels if manual is None else manual

    def _draw_image(self, view: FrameView) -> None:
        levels = self._wanted_levels(view)
        if view.scaled is not None and tuple(view.levels) == tuple(levels):
            scaled = view.scaled
        else:
            scaled = scale_to_uint8(view.image, levels)
        self.image_item.setImage(scaled, autoLevels=False, levels=(0, 255), lut=self._lut)
        self.levels = tuple(levels)
        self._set_region(levels)

    def show_frame(self, view: FrameView) -> None:
        """Draw a frame's image (overlays of another frame are cleared)."""
        t0 = time.perf_counter()
        first = self._shape is None or self._shape != view.image.shape
        if self.overlay is not None and self.overlay.index != view.index:
            self.clear_overlay()
        if self.view is not None and self.view.log_scale != view.log_scale:
            self._manual_levels = None
        self.view = view
        self.placeholder.setVisible(False)
        self._draw_image(view)
        if len(view.histogram) == 2 and len(view.histogram[0]):
            x, y = view.histogram
            self.histogram.plot.setData(x, y)
            lo, hi = float(x[0]), float(x[-1])
            self.histogram.setHistogramRange(min(lo, self.levels[0]), max(hi, self.levels[1]), padding=0.02)
        self.beam_item.set_beam(view.beam)
        self.rings_item.set_rings(view.beam, view.rings)
        self._shape = view.image.shape
        if first:
            self.fit()
        self.last_draw_ms = 1e3 * (time.perf_counter() - t0)
        self.frameDrawn.emit(view.index)

    def show_overlay(self, ov: OverlayView) -> None:
        if self.view is None or ov.index != self.view.index:
            return
        self.overlay = ov
        self.peak_item.set_peaks(ov.peak_x, ov.peak_y, ov.peak_diameter)
        self.mask_item.set_codes(ov.mask_code)
        self.apply_visibility()
        self.overlayDrawn.emit(ov.index)

    def clear_overlay(self) -> None:
        self.overlay = None
        self.peak_item.set_peaks(np.zeros(0), np.zeros(0), np.zeros(0))
        self.mask_item.set_codes(None)

    def clear(self) -> None:
        self.view = None
        self.placeholder.setVisible(True)
        self.clear_overlay()
        self.image_item.clear()
        self.beam_item.set_beam(None)
        self.rings_item.set_rings(None, [])
        self._shape = None

    def fit(self) -> None:
        if self._shape is None:
            self.view_box.setRange(QtCore.QRectF(-100, -100, 200, 200), padding=0)
            self.placeholder.setPos(0, 0)
            return
        h, w = self._shape
        self.view_box.setRange(QtCore.QRectF(0, 0, w, h), padding=0.01)

    def add_item(self, item, z: float = 30) -> None:
        """Add a graphics item in scene (image) coordinates, e.g. a calibration ring overlay."""
        item.setZValue(z)
        self.view_box.addItem(item, ignoreBounds=True)

    def remove_item(self, item) -> None:
        self.view_box.removeItem(item)

    def data_to_scene(self, fs, ss):
        """Scene position of data pixel-index coordinates of the frame shown."""
        if self.view is None:
            return np.asarray(fs, float) + 0.5, np.asarray(ss, float) + 0.5
        return self.view.mapper.data_to_scene(fs, ss)

    def scene_to_widget(self, x: float, y: float) -> QtCore.QPointF:
        """Position of a scene point inside this widget (for tests and screenshots)."""
        p = self.view_box.mapViewToScene(QtCore.QPointF(float(x), float(y)))
        vp = self.graphics.mapFromScene(p)
        return QtCore.QPointF(self.graphics.mapTo(self, vp))

    # --- mouse ------------------------------------------------------------------------------------
    def _mouse_moved(self, pos) -> None:
        if self.view is None or not self.view_box.sceneBoundingRect().contains(pos):
            self.readoutChanged.emit(None)
            return
        p = self.view_box.mapSceneToView(pos)
        self.readoutChanged.emit(readout(self.view, p.x(), p.y()))

    def _mouse_clicked(self, ev) -> None:
        if ev.double() and ev.button() == QtCore.Qt.LeftButton and not ev.isAccepted():  # not a tool's click
            self.fit()

    def _zoom_changed(self, *_):
        px = self.view_box.viewPixelSize()[0]
        if px > 0:
            self.peak_item.set_zoom(1.0 / px)

    def readout_at(self, x: float, y: float):
        return None if self.view is None else readout(self.view, x, y)
