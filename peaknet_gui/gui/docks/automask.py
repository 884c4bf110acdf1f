"""Auto-mask dock: artifact threshold, dilation, whole powder rings, static mask and gaps, what is shown."""

from __future__ import annotations

import copy
import os

from ...pipeline.settings import MaskSettings
from ..overlays import AUTO_MASK_COLOR, STATIC_MASK_COLOR, color_icon
from ..qt import Qt, QtWidgets, Signal
from ..state import DisplaySettings
from .widgets import ProbabilitySlider, small_label, spin


class AutoMaskDock(QtWidgets.QDockWidget):
    """``settingsChanged(MaskSettings)``: analysis settings (re-threshold, no model run);
    ``visibilityChanged()``: display toggles written into the shared DisplaySettings;
    ``maskFileRequested()`` / ``exportRequested()``: buttons."""

    settingsChanged = Signal(object)
    visibilityChanged = Signal()
    maskFileRequested = Signal()
    exportRequested = Signal()

    def __init__(self, mask: MaskSettings, display: DisplaySettings, parent=None):
        super().__init__("Auto-mask", parent)
        self.setObjectName("dock_automask")
        self._display = display
        body = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(body)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        self.threshold = ProbabilitySlider()
        self.threshold.setToolTip("Artifact-class probability a pixel needs to be masked.\n"
                                  "Moving it re-thresholds the cached probabilities: no new model run.")
        form.addRow("Artifact prob.", self.threshold)
        self.dilation = spin(0, 50, mask.dilation, "Grow the artifact mask by this many pixels")
        self.dilation.setSuffix(" px")
        form.addRow("Dilation", self.dilation)
        self.whole_rings = QtWidgets.QCheckBox("whole powder rings")
        self.whole_rings.setToolTip("Mask a powder ring (metal shielding, ice, calibrant) along all of its arc where the\n"
                                    "frame shows its scatter, not only where the network saw it (needs a geometry).\n"
                                    "Re-masks the cached result: no new model run.")
        form.addRow("Rings", self.whole_rings)
        self.include_static = QtWidgets.QCheckBox("static")
        self.include_static.setToolTip("Add the static mask (mask file, the geometry's bad regions) to the auto-mask")
        self.include_gaps = QtWidgets.QCheckBox("gaps, bad")
        self.include_gaps.setToolTip("Add the detector's gaps and bad pixels to the auto-mask")
        inc = QtWidgets.QHBoxLayout()
        inc.addWidget(self.include_static)
        inc.addWidget(self.include_gaps)
        inc.addStretch(1)
        form.addRow("Include", inc)
        file_row = QtWidgets.QHBoxLayout()
        self.mask_file = small_label("no mask file")
        self.mask_file_button = QtWidgets.QToolButton()
        self.mask_file_button.setText("Load\u2026")
        self.mask_file_button.setToolTip("A static mask file (HDF5, .npy, EDF)")
        file_row.addWidget(self.mask_file, 1)
        file_row.addWidget(self.mask_file_button)
        form.addRow("Mask file", file_row)

        self.show_auto = QtWidgets.QCheckBox("auto")
        self.show_auto.setIcon(color_icon(AUTO_MASK_COLOR))
        self.show_auto.setToolTip("Show or hide the auto-mask (M)")
        self.show_static = QtWidgets.QCheckBox("static")
        self.show_static.setIcon(color_icon(STATIC_MASK_COLOR))
        self.show_static.setToolTip("Show or hide the static mask, detector gaps and bad pixels (S)")
        show = QtWidgets.QHBoxLayout()
        show.addWidget(self.show_auto)
        show.addWidget(self.show_static)
        show.addStretch(1)
        form.addRow("Show", show)
        self.opacity = QtWidgets.QSlider(Qt.Horizontal)
        self.opacity.setRange(5, 100)
        self.opacity.setToolTip("Opacity of the mask layer")
        form.addRow("Opacity", self.opacity)
        self.stats = small_label("")
        form.addRow("Masked", self.stats)
        self.export_button = QtWidgets.QPushButton("Export for CrystFEL\u2026")
        self.export_button.setToolTip("This frame's auto-mask as mask .h5 plus a .geom with the mask lines")
        form.addRow(self.export_button)

        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        scroll.setWidget(body)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(270)
        self.setWidget(scroll)
        self.set_mask(mask)
        self.sync_display(display)

        self.threshold.valueChanged.connect(self._changed)
        self.dilation.valueChanged.connect(self._changed)
        self.whole_rings.toggled.connect(self._changed)
        self.include_static.toggled.connect(self._changed)
        self.include_gaps.toggled.connect(self._changed)
        for w in (self.show_auto, self.show_static):
            w.toggled.connect(self._display_changed)
        self.opacity.valueChanged.connect(self._display_changed)
        self.mask_file_button.clicked.connect(self.maskFileRequested.emit)
        self.export_button.clicked.connect(self.exportRequested.emit)

    def mask(self) -> MaskSettings:
        return MaskSettings(artifact_threshold=self.threshold.value(), dilation=self.dilation.value(),
                            whole_rings=self.whole_rings.isChecked(),
                            include_static=self.include_static.isChecked(), include_gaps=self.include_gaps.isChecked())

    def set_mask(self, m: MaskSettings) -> None:
        for w in (self.threshold, self.dilation, self.whole_rings, self.include_static, self.include_gaps):
            w.blockSignals(True)
        self.threshold.set_value(m.artifact_threshold)
        self.dilation.setValue(m.dilation)
        self.whole_rings.setChecked(m.whole_rings)
        self.include_static.setChecked(m.include_static)
        self.include_gaps.setChecked(m.include_gaps)
        for w in (self.threshold, self.dilation, self.whole_rings, self.include_static, self.include_gaps):
            w.blockSignals(False)

    def sync_display(self, d: DisplaySettings) -> None:
        self._display = d
        for w in (self.show_auto, self.show_static, self.opacity):
            w.blockSignals(True)
        self.show_auto.setChecked(d.show_automask)
        self.show_static.setChecked(d.show_static)
        self.opacity.setValue(int(round(100 * d.mask_opacity)))
        for w in (self.show_auto, self.show_static, self.opacity):
            w.blockSignals(False)

    def set_mask_file(self, path) -> None:
        self.mask_file.setText(os.path.basename(str(path)) if path else "no mask file")
        self.mask_file.setToolTip(str(path) if path else "")

    def set_stats(self, code) -> None:
        """Masked share of the frame from an overlay's mask-code image (None: nothing)."""
        if code is None:
            self.stats.setText("nothing")
            return
        n = code.size
        auto = int((code == 2).sum())
        static = int((code == 1).sum())
        self.stats.setText(f"auto {100 * auto / n:.2f} %, static {100 * static / n:.2f} %")

    def _changed(self, *_):
        self.settingsChanged.emit(copy.deepcopy(self.mask()))

    def _display_changed(self, *_):
        self._display.show_automask = self.show_auto.isChecked()
        self._display.show_static = self.show_static.isChecked()
        self._display.mask_opacity = self.opacity.value() / 100.0
        self.visibilityChanged.emit()
