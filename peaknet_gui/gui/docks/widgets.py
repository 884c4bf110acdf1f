"""Small widgets the docks share: a probability slider with an 'argmax' switch, optional spins."""

from __future__ import annotations

from typing import Optional

from ..qt import Qt, QtWidgets, Signal


class ProbabilitySlider(QtWidgets.QWidget):
    """A 0.01..0.99 probability slider with an 'argmax' check box (value None).

    ``valueChanged(object)`` fires while the slider moves (float or None).
    """

    valueChanged = Signal(object)

    def __init__(self, argmax_text: str = "argmax", parent=None, *, auto_label: str = "max",
                 auto_tip: str = "Use the model's own decision (the most probable class) instead of a threshold"):
        super().__init__(parent)
        self._auto_label = auto_label
        self.argmax = QtWidgets.QCheckBox(argmax_text)
        self.argmax.setToolTip(auto_tip)
        self.slider = QtWidgets.QSlider(Qt.Horizontal)
        self.slider.setRange(1, 99)
        self.slider.setPageStep(5)
        self.slider.setValue(50)
        self.label = QtWidgets.QLabel("0.50")
        self.label.setMinimumWidth(34)
        self.label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.argmax)
        lay.addLayout(row)
        self.argmax.toggled.connect(self._changed)
        self.slider.valueChanged.connect(self._changed)

    def value(self) -> Optional[float]:
        return None if self.argmax.isChecked() else self.slider.value() / 100.0

    def set_value(self, v: Optional[float]) -> None:
        self.blockSignals(True)
        self.argmax.blockSignals(True)
        self.slider.blockSignals(True)
        self.argmax.setChecked(v is None)
        if v is not None:
            self.slider.setValue(int(round(min(max(float(v), 0.01), 0.99) * 100)))
        self._update_label()
        self.argmax.blockSignals(False)
        self.slider.blockSignals(False)
        self.blockSignals(False)

    def _update_label(self) -> None:
        held = self.argmax.isChecked()
        self.slider.setEnabled(not held)  # greyed (style: disabled palette), the label too
        self.label.setEnabled(not held)
        self.label.setText(self._auto_label if self.argmax.isChecked() else f"{self.slider.value() / 100:.2f}")

    def _changed(self, *_):
        self._update_label()
        self.valueChanged.emit(self.value())


def spin(lo: int, hi: int, value: int, tip: str = "", special: Optional[str] = None) -> QtWidgets.QSpinBox:
    sb = QtWidgets.QSpinBox()
    sb.setRange(lo, hi)
    sb.setValue(value)
    sb.setKeyboardTracking(False)
    sb.setToolTip(tip)
    if special:
        sb.setSpecialValueText(special)
    return sb


def dspin(lo: float, hi: float, value: float, decimals: int = 2, step: float = 0.1, tip: str = "",
          special: Optional[str] = None, suffix: str = "") -> QtWidgets.QDoubleSpinBox:
    sb = QtWidgets.QDoubleSpinBox()
    sb.setRange(lo, hi)
    sb.setDecimals(decimals)
    sb.setSingleStep(step)
    sb.setValue(value)
    sb.setKeyboardTracking(False)
    sb.setToolTip(tip)
    if suffix:
        sb.setSuffix(suffix)
    if special:
        sb.setSpecialValueText(special)
    return sb


def optional_value(sb) -> Optional[float]:
    """None when a spin box shows its special value (its minimum), else its value."""
    return None if sb.value() == sb.minimum() else float(sb.value())


def small_label(text: str = "") -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel(text)
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
    f = lab.font()
    f.setPointSizeF(max(7.0, f.pointSizeF() * 0.9))
    lab.setFont(f)
    return lab
