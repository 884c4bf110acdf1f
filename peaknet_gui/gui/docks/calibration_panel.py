"""The calibration dock's widgets, laid out in three sections that follow the dock's shape.

Sections: *controls* (calibrant, energy, rough distance and beam centre, Fit / Cancel), the
*profile* plot, and *results* (before/after table, Apply / Save).  Docked at the bottom or top
of the window the sections sit side by side (the profile gets the width it wants); docked at a
side or floating they are stacked.  The status line stays below them, outside the scroll area.

The panel also owns the fields' logic: energy and wavelength follow each other, :meth:`apply_prefill`
fills the fields from the frame on screen, :meth:`inputs` reads them back, and ``fieldsChanged``
fires when a value that moves the rings changes.
"""

from __future__ import annotations

import math
from typing import Optional

from ...errors import CalibrationError
from ...geometry.detector import HC_EV_A
from ..calibration_jobs import DEFAULT_SEARCH_PX, CalibrationInputs, Prefill
from ..calibration_overlay import EXPECTED_COLOR, REFINED_COLOR
from ..qt import Qt, QtWidgets, Signal
from .calibration_plot import ComparisonTable, ProfilePlot, ResidualTable
from .widgets import dspin, small_label

CONTROLS_WIDTH = 360  # side by side: width of the controls and of the results
RESULTS_WIDTH = 420


class CalibrationPanel(QtWidgets.QWidget):
    """See the module docstring."""

    fieldsChanged = Signal()
    COMMON_CALIBRANTS = ("AgBh", "CeO2", "LaB6", "Si", "alpha_Al2O3", "Cr2O3")
    WIDGETS = ("calibrant", "energy", "wavelength", "distance", "pixel", "beam_fs", "beam_ss", "search", "tilt",
               "reset_button", "fit_button", "cancel_button", "busy", "plot", "show_expected", "show_refined",
               "table", "ring_table", "panel_table", "apply_button", "save_button", "status")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.controls = self._controls()
        self.plot = ProfilePlot()
        self.show_expected = QtWidgets.QCheckBox("expected")
        self.show_expected.setChecked(True)
        self.show_expected.setToolTip("Show on the image (dashed): the calibrant's rings at the rough geometry")
        self.show_refined = QtWidgets.QCheckBox("refined")
        self.show_refined.setChecked(True)
        self.show_refined.setToolTip("Show on the image (solid): the rings the fit used, at the refined geometry, "
                                     "and its beam centre (\u00d7)")
        for cb, color in ((self.show_expected, EXPECTED_COLOR), (self.show_refined, REFINED_COLOR)):
            cb.setStyleSheet("QCheckBox { color: rgb(%d, %d, %d); }" % color)
        self.plot.header.addWidget(QtWidgets.QLabel("Image rings:"))
        self.plot.header.addWidget(self.show_expected)
        self.plot.header.addWidget(self.show_refined)
        self.results = self._results()

        self.body = QtWidgets.QWidget()
        self.sections = QtWidgets.QBoxLayout(QtWidgets.QBoxLayout.TopToBottom, self.body)
        self.sections.setContentsMargins(6, 4, 6, 4)
        self.sections.setSpacing(6)
        self.sections.addWidget(self.controls)
        self.sections.addWidget(self.plot, 1)
        self.sections.addWidget(self.results)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.scroll.setWidget(self.body)
        # the word-wrapping status line lives outside the scroll area: a height-for-width widget
        # inside would make the scroll area size the body to its preferred height, not the dock's
        self.status = small_label("")
        self.status.setContentsMargins(8, 0, 8, 4)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(self.status)
        self.set_side_by_side(False)

        for sb in (self.distance, self.pixel, self.beam_fs, self.beam_ss):
            sb.valueChanged.connect(self._changed)
        self.energy.valueChanged.connect(self._energy_changed)
        self.wavelength.valueChanged.connect(self._wavelength_changed)
        self.calibrant.currentIndexChanged.connect(self._changed)

    # --- fields --------------------------------------------------------------------------------------
    @staticmethod
    def _set_quietly(sb, value: Optional[float]) -> None:
        sb.blockSignals(True)
        sb.setValue(sb.minimum() if value is None or not math.isfinite(value) else float(value))
        sb.blockSignals(False)

    def _changed(self, *_):
        self.fieldsChanged.emit()

    def _energy_changed(self, kev: float) -> None:
        self._set_quietly(self.wavelength, HC_EV_A / (kev * 1e3) if kev > 0 else None)
        self.fieldsChanged.emit()

    def _wavelength_changed(self, wl: float) -> None:
        self._set_quietly(self.energy, HC_EV_A / wl / 1e3 if wl > 0 else None)
        self.fieldsChanged.emit()

    def apply_prefill(self, p: Prefill) -> None:
        """Fields from the frame on screen (no ``fieldsChanged``); the pixel size is editable
        only when the run has no geometry."""
        self._set_quietly(self.wavelength, p.wavelength_a)
        self._set_quietly(self.energy, HC_EV_A / p.wavelength_a / 1e3 if p.wavelength_a else None)
        self._set_quietly(self.distance, None if p.distance_m is None else p.distance_m * 1e3)
        self._set_quietly(self.pixel, None if p.pixel_size_m is None else p.pixel_size_m * 1e3)
        self._set_quietly(self.beam_fs, p.beam_fs)
        self._set_quietly(self.beam_ss, p.beam_ss)
        self.pixel.setEnabled(not p.has_geometry)

    def inputs(self) -> CalibrationInputs:
        """What the fields say (CalibrationError naming the missing value)."""
        wl = self.wavelength.value()
        if not wl > 0:
            raise CalibrationError("the photon energy of the frame is unknown: type it (keV) or the wavelength "
                                   "(\u00c5)")
        if not self.distance.value() > 0:
            raise CalibrationError("give the rough sample-detector distance (mm)")
        pix = self.pixel.value()
        return CalibrationInputs(
            calibrant=self.calibrant.currentText(), wavelength_a=float(wl), distance_m=self.distance.value() * 1e-3,
            beam_fs=self.beam_fs.value(), beam_ss=self.beam_ss.value(), pixel_size_m=pix * 1e-3 if pix > 0 else None,
            tilt=self.tilt.currentData(), search_px=self.search.value())

    def set_calibrants(self, names: list) -> None:
        """All calibrants pyFAI knows: the common ones first, the current choice kept."""
        current = self.calibrant.currentText()
        self.calibrant.blockSignals(True)
        self.calibrant.clear()
        common = [n for n in self.COMMON_CALIBRANTS if n in names]
        self.calibrant.addItems(common)
        self.calibrant.insertSeparator(len(common))
        self.calibrant.addItems([n for n in names if n not in common])
        i = self.calibrant.findText(current)
        self.calibrant.setCurrentIndex(max(i, 0))
        self.calibrant.blockSignals(False)

    @property
    def side_by_side(self) -> bool:
        return self.sections.direction() == QtWidgets.QBoxLayout.LeftToRight

    def set_side_by_side(self, on: bool) -> None:
        self.sections.setDirection(QtWidgets.QBoxLayout.LeftToRight if on else QtWidgets.QBoxLayout.TopToBottom)
        for w, width in ((self.controls, CONTROLS_WIDTH), (self.results, RESULTS_WIDTH)):
            if on:
                w.setFixedWidth(width)
            else:
                w.setMinimumWidth(0)
                w.setMaximumWidth(16777215)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded if on else Qt.ScrollBarAlwaysOff)

    # --- sections ------------------------------------------------------------------------------------
    def _controls(self) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(box)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        form = QtWidgets.QFormLayout()
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        form.setContentsMargins(2, 2, 2, 2)
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(3)
        self.calibrant = QtWidgets.QComboBox()
        self.calibrant.addItems(self.COMMON_CALIBRANTS)
        self.calibrant.setToolTip("Calibrant of the frame (any calibrant pyFAI knows; silver behenate by default)")
        self.calibrant.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.calibrant.setMinimumContentsLength(6)
        self.calibrant.setMinimumWidth(80)
        self.energy = dspin(0.0, 200.0, 0.0, 4, 0.1, "Photon energy (from the frame's metadata)", special="unknown",
                            suffix=" keV")
        self.wavelength = dspin(0.0, 20.0, 0.0, 5, 0.01, "Wavelength (from the frame's metadata)", special="unknown",
                                suffix=" \u00c5")
        self.distance = dspin(0.0, 20000.0, 0.0, 2, 1.0, "Rough sample-detector distance (camera length)",
                              special="unknown", suffix=" mm")
        self.pixel = dspin(0.0, 10.0, 0.0, 4, 0.001, "Pixel size (from the geometry; editable only without one)",
                           special="unknown", suffix=" mm")
        self.beam_fs = dspin(-1e5, 1e5, 0.0, 2, 1.0, "Rough beam centre: fast-scan pixel index (first pixel's centre "
                             "at 0); may lie off the detector", suffix=" px")
        self.beam_ss = dspin(-1e5, 1e5, 0.0, 2, 1.0, "Rough beam centre: slow-scan pixel index (first pixel's centre "
                             "at 0); may lie off the detector", suffix=" px")
        self.search = dspin(4.0, 2000.0, DEFAULT_SEARCH_PX, 0, 16.0, "How far from the rough beam centre the fit "
                            "looks for the centre of the rings", suffix=" px")
        prefixes = ((self.pixel, "pixel "), (self.beam_fs, "fs "), (self.beam_ss, "ss "), (self.search, "\u00b1 "))
        for sb, prefix in prefixes:
            sb.setPrefix(prefix)
        for sb in (self.energy, self.wavelength, self.distance, self.pixel, self.beam_fs, self.beam_ss, self.search):
            sb.setMinimumWidth(64)  # the range's width would make the dock too wide for a side column
            sb.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
        self.tilt = QtWidgets.QComboBox()
        for text, key in (("tilt: auto", "auto"), ("tilt: fit", "fit"), ("tilt: fixed", "fixed")):
            self.tilt.addItem(text, key)
        self.tilt.setToolTip(
            "Detector tilt (pyFAI rot1, rot2), refined from zero with distance and beam centre:\n"
            "auto \u2013 kept when the rings determine it (3+ rings over 180\u00b0+ of azimuth, "
            "uncertainty \u2264 0.05\u00b0), otherwise kept fixed and said so;\n"
            "fit \u2013 kept regardless (needs three or more rings);\nfixed \u2013 not refined")
        self.reset_button = QtWidgets.QToolButton()
        self.reset_button.setText("\u21ba Reset")
        self.reset_button.setToolTip("Take energy, distance and beam centre from the frame's metadata and geometry "
                                     "again")

        def pair(a, b, stretch=(1, 1)):
            lay = QtWidgets.QHBoxLayout()
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(4)
            lay.addWidget(a, stretch[0])
            lay.addWidget(b, stretch[1])
            return lay

        form.addRow("Calibrant", pair(self.calibrant, self.reset_button, (1, 0)))
        form.addRow("Energy", pair(self.energy, self.wavelength))
        form.addRow("Distance", pair(self.distance, self.pixel))
        form.addRow("Beam centre", pair(self.beam_fs, self.beam_ss))
        form.addRow("Search", pair(self.search, self.tilt))
        outer.addLayout(form)

        self.fit_button = QtWidgets.QPushButton("Fit geometry")
        self.fit_button.setToolTip("Refine beam centre, distance and tilt on this frame's calibrant rings")
        f = self.fit_button.font()
        f.setBold(True)
        self.fit_button.setFont(f)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop waiting for the fit (its result is discarded)")
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.fit_button, 2)
        row.addWidget(self.cancel_button, 1)
        outer.addLayout(row)
        self.busy = QtWidgets.QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: pyFAI does not report progress
        self.busy.setTextVisible(False)
        self.busy.setFixedHeight(6)
        self.busy.setVisible(False)
        outer.addWidget(self.busy)
        outer.addStretch(1)
        return box

    def _results(self) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.table = ComparisonTable()
        lay.addWidget(self.table)
        self.ring_table = ResidualTable(("d (\u00c5)", "Points", "RMS px", "Mean px", "Azimuth \u00b0"),
                                        "Residuals per ring: radial distance of the ring's control points from the "
                                        "fitted ring (pixels; mean > 0: outside), and the azimuth they cover")
        self.panel_table = ResidualTable(("Points", "RMS px", "Mean px", "Shift x, y px", ""),
                                         "Residuals per panel (the detector is refined as one rigid body): a panel "
                                         "whose residuals amount to a shift (\u2018off?\u2019) may sit elsewhere "
                                         "than the geometry says")
        lay.addWidget(self.ring_table)
        lay.addWidget(self.panel_table)
        self.apply_button = QtWidgets.QPushButton("Apply to run")
        self.apply_button.setToolTip("Use the refined geometry for this run (peaks, resolution and exports follow)")
        self.save_button = QtWidgets.QPushButton("Save geometry\u2026")
        self.save_button.setToolTip("Write the refined geometry as CrystFEL .geom and pyFAI .poni (same name)")
        for b in (self.apply_button, self.save_button):
            b.setEnabled(False)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.apply_button)
        row.addWidget(self.save_button)
        lay.addLayout(row)
        lay.addStretch(1)
        return box
