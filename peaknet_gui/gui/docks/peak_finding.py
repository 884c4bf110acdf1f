"""Peak-finding dock: algorithm, device and model, thresholds and filters, hit criterion."""

from __future__ import annotations

import copy

from ...pipeline.settings import FinderSettings
from ..qt import Qt, QtWidgets, Signal
from .widgets import ProbabilitySlider, dspin, optional_value, small_label, spin

ALGORITHMS = (("PeakNet", "peaknet"), ("peakfinder8", "peakfinder8"))


class PeakFindingDock(QtWidgets.QDockWidget):
    """Emits ``settingsChanged(FinderSettings)`` on every change (sliders while they move);
    ``weightsRequested()`` when the user wants other model weights."""

    settingsChanged = Signal(object)
    weightsRequested = Signal()

    def __init__(self, finder: FinderSettings, parent=None):
        super().__init__("Peak finding", parent)
        self.setObjectName("dock_peak_finding")
        self._finder = copy.deepcopy(finder)
        body = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(body)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)

        self.algorithm = QtWidgets.QComboBox()
        self.algorithm.setToolTip("PeakNet: the neural network (peaks and artifact mask);\n"
                                  "peakfinder8: the classical finder, for comparison")
        for text, key in ALGORITHMS:
            self.algorithm.addItem(text, key)
        form.addRow("Algorithm", self.algorithm)
        self.device = small_label("(model not loaded yet)")
        self.model = small_label("")
        # a long weights file name must not widen the dock past 1600 x 1000 (full name in the tooltip)
        self.model.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
        self.device.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
        self.weights_button = QtWidgets.QToolButton()
        self.weights_button.setText("Weights\u2026")
        self.weights_button.setToolTip("Load other PeakNet weights (.safetensors / .pt)")
        model_row = QtWidgets.QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.weights_button)
        form.addRow("Device", self.device)
        form.addRow("Model", model_row)

        self.threshold = ProbabilitySlider()
        self.threshold.setToolTip("Peak-class probability a pixel needs to belong to a peak.\n"
                                  "Moving it re-thresholds the cached probabilities: no new model run.")
        form.addRow("Peak prob.", self.threshold)
        self.confidence = ProbabilitySlider("model", auto_label="auto",
                                            auto_tip="Keep the peaks the loaded weights were fitted to keep\n"
                                            "(their operating point, fitted on simulated validation runs;\n"
                                            "on frames whose background contradicts the geometry's gain,\n"
                                            "their stricter point for an unreliable gain: the status bar says so)")
        self.confidence.setToolTip("Highest peak probability a peak needs to be kept (its confidence).\n"
                                   "Moving it re-filters the cached probabilities: no new model run.")
        form.addRow("Confidence", self.confidence)
        self.pixel_snr = dspin(-1.0, 1000.0, -1.0 if finder.min_pixel_snr is None else finder.min_pixel_snr, 1, 0.5,
                               "Local-background sigmas a peak's brightest pixel needs (0: no test).\n"
                               "'model': the loaded weights' operating point (their stricter one where\n"
                               "the frame's background contradicts the geometry's gain), which may let\n"
                               "peaks the weights are sure of pass at a lower pixel SNR; a value here\n"
                               "or in Confidence replaces both tiers with your rule.\n"
                               "Re-filters the cached probabilities: no new model run.", special="model")
        self._pixel_snr_tip = self.pixel_snr.toolTip()  # set_model_info adds the loaded weights' tiers
        form.addRow("Pixel SNR", self.pixel_snr)
        self.drop_rings = QtWidgets.QCheckBox("drop powder-ring spots")
        self.drop_rings.setToolTip("Peaks crowding on one scattering angle (the spots of an ice or salt ring)\n"
                                   "are not Bragg peaks of the crystal: they go into the auto-mask.\n"
                                   "Needs a geometry (beam centre); no new model run.")
        form.addRow("Rings", self.drop_rings)
        self.min_pixels = spin(1, 10000, finder.min_pixels, "Smallest peak, in pixels")
        self.max_pixels = spin(1, 100000, finder.max_pixels, "Largest peak, in pixels")
        px = QtWidgets.QHBoxLayout()
        px.addWidget(self.min_pixels)
        px.addWidget(QtWidgets.QLabel("\u2013"))
        px.addWidget(self.max_pixels)
        form.addRow("Pixels per peak", px)
        self.max_res = dspin(0.0, 1000.0, finder.max_res_a or 0.0, 2, 0.5, "Coarsest d-spacing kept (low-resolution limit)",
                             special="none", suffix=" \u00c5")
        self.min_res = dspin(0.0, 100.0, finder.min_res_a or 0.0, 2, 0.1, "Finest d-spacing kept (high-resolution limit)",
                             special="none", suffix=" \u00c5")
        res = QtWidgets.QHBoxLayout()
        res.addWidget(self.max_res)
        res.addWidget(QtWidgets.QLabel("\u2013"))
        res.addWidget(self.min_res)
        form.addRow("Resolution", res)
        self.min_snr = dspin(0.0, 1000.0, finder.min_snr, 1, 0.5, "Minimum peak SNR (total intensity / local noise)")
        form.addRow("Min SNR", self.min_snr)
        self.min_peaks = spin(0, 100000, finder.min_peaks_for_hit, "A frame with at least this many peaks is a hit")
        form.addRow("Peaks for a hit", self.min_peaks)

        self.pf8_box = QtWidgets.QGroupBox("peakfinder8")
        pf = QtWidgets.QFormLayout(self.pf8_box)
        self.pf8_adc = dspin(0.0, 1e9, finder.pf8_adc_threshold, 1, 10.0, "Pixels below this value (detector units) are ignored")
        self.pf8_snr = dspin(0.0, 1000.0, finder.pf8_min_snr, 1, 0.5, "Per-pixel SNR against the local background")
        self.pf8_min_pix = spin(1, 10000, finder.pf8_min_pixels)
        self.pf8_max_pix = spin(1, 100000, finder.pf8_max_pixels)
        self.pf8_radius = spin(1, 50, finder.pf8_local_bg_radius, "Local background radius, pixels")
        pf.addRow("ADC threshold", self.pf8_adc)
        pf.addRow("Min SNR", self.pf8_snr)
        pfp = QtWidgets.QHBoxLayout()
        pfp.addWidget(self.pf8_min_pix)
        pfp.addWidget(QtWidgets.QLabel("\u2013"))
        pfp.addWidget(self.pf8_max_pix)
        pf.addRow("Pixels", pfp)
        pf.addRow("Background radius", self.pf8_radius)
        form.addRow(self.pf8_box)

        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        scroll.setWidget(body)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(270)
        self.setWidget(scroll)
        self.set_finder(finder)

        self.algorithm.currentIndexChanged.connect(self._changed)
        self.threshold.valueChanged.connect(self._changed)
        self.confidence.valueChanged.connect(self._changed)
        self.drop_rings.toggled.connect(self._changed)
        for sb in (self.pixel_snr, self.min_pixels, self.max_pixels, self.max_res, self.min_res, self.min_snr, self.min_peaks,
                   self.pf8_adc, self.pf8_snr, self.pf8_min_pix, self.pf8_max_pix, self.pf8_radius):
            sb.valueChanged.connect(self._changed)
        self.weights_button.clicked.connect(self.weightsRequested.emit)

    # --- values -----------------------------------------------------------------------------------
    def finder(self) -> FinderSettings:
        f = copy.deepcopy(self._finder)
        f.algorithm = self.algorithm.currentData()
        f.peak_threshold = self.threshold.value()
        f.min_confidence = self.confidence.value()
        f.min_pixel_snr = optional_value(self.pixel_snr)
        f.drop_ring_spots = self.drop_rings.isChecked()
        f.min_pixels = self.min_pixels.value()
        f.max_pixels = max(self.max_pixels.value(), f.min_pixels)
        f.max_res_a = optional_value(self.max_res)
        f.min_res_a = optional_value(self.min_res)
        f.min_snr = self.min_snr.value()
        f.min_peaks_for_hit = self.min_peaks.value()
        f.pf8_adc_threshold = self.pf8_adc.value()
        f.pf8_min_snr = self.pf8_snr.value()
        f.pf8_min_pixels = self.pf8_min_pix.value()
        f.pf8_max_pixels = max(self.pf8_max_pix.value(), f.pf8_min_pixels)
        f.pf8_local_bg_radius = self.pf8_radius.value()
        return f

    def set_finder(self, f: FinderSettings) -> None:
        widgets = (self.algorithm, self.threshold, self.confidence, self.pixel_snr, self.drop_rings, self.min_pixels, self.max_pixels, self.max_res, self.min_res,
                   self.min_snr, self.min_peaks, self.pf8_adc, self.pf8_snr, self.pf8_min_pix, self.pf8_max_pix, self.pf8_radius)
        for w in widgets:
            w.blockSignals(True)
        self._finder = copy.deepcopy(f)
        i = self.algorithm.findData(f.algorithm)
        self.algorithm.setCurrentIndex(max(i, 0))
        self.threshold.set_value(f.peak_threshold)
        self.confidence.set_value(f.min_confidence)
        self.pixel_snr.setValue(-1.0 if f.min_pixel_snr is None else f.min_pixel_snr)
        self.drop_rings.setChecked(f.drop_ring_spots)
        self.min_pixels.setValue(f.min_pixels)
        self.max_pixels.setValue(f.max_pixels)
        self.max_res.setValue(f.max_res_a or 0.0)
        self.min_res.setValue(f.min_res_a or 0.0)
        self.min_snr.setValue(f.min_snr)
        self.min_peaks.setValue(f.min_peaks_for_hit)
        self.pf8_adc.setValue(f.pf8_adc_threshold)
        self.pf8_snr.setValue(f.pf8_min_snr)
        self.pf8_min_pix.setValue(f.pf8_min_pixels)
        self.pf8_max_pix.setValue(f.pf8_max_pixels)
        self.pf8_radius.setValue(f.pf8_local_bg_radius)
        for w in widgets:
            w.blockSignals(False)
        self._sync_enabled()

    def _sync_enabled(self) -> None:
        is_net = self.algorithm.currentData() == "peaknet"
        self.threshold.setEnabled(is_net)
        self.confidence.setEnabled(is_net)
        self.pixel_snr.setEnabled(is_net)
        self.pf8_box.setVisible(not is_net)

    def _changed(self, *_):
        self._sync_enabled()
        f = self.finder()
        self._finder = f
        self.settingsChanged.emit(copy.deepcopy(f))

    def set_model_info(self, device: str, info: dict) -> None:
        import os

        self.device.setText(device or "?")
        info = info or {}
        path = info.get("path") or ""
        name = os.path.basename(str(path)) if path else (info.get("name") or info.get("class") or info.get("algorithm", ""))
        self.model.setText(str(name))
        from ...model.operating_point import OperatingPoint

        op = OperatingPoint.from_metadata(info.get("metadata") if isinstance(info.get("metadata"), dict) else None)
        self.confidence.argmax.setText(f"model ({op.peak_min_confidence:g})")
        self.threshold.argmax.setText(f"model ({op.peak_threshold:g})" if op.peak_threshold > 0 else "argmax")
        self.pixel_snr.setSpecialValueText(f"model ({op.peak_min_pixel_snr:g})")
        tier = op.confident_tier
        tip = self._pixel_snr_tip
        if tier is not None:
            tip += (f"\n\nThese weights: pixel SNR >= {op.peak_min_pixel_snr:g}, or >= {tier.min_pixel_snr:g} "
                    f"where the confidence is >= {tier.min_confidence:g}")
        self.pixel_snr.setToolTip(tip)
        self.model.setToolTip("\n".join(f"{k}: {v}" for k, v in info.items() if not isinstance(v, (dict, list))))
