"""The mask editor dock's widgets (:func:`setup_ui`); the behaviour is in :mod:`.mask_editor`."""

from __future__ import annotations

from .mask_tools import EDIT_MASK_COLOR, TOOLS
from .overlays import color_icon
from .qt import QtWidgets

TOOL_TEXT = {None: ("Pan", "Pan and zoom the image (no drawing)"),
             "rect": ("Rect", "Rectangle: drag from one corner to the other"),
             "circle": ("Circle", "Circle: drag from the centre outwards"),
             "polygon": ("Polygon", "Polygon: click the corners; click the first one again, double-click or press Enter to close"),
             "brush": ("Brush", "Brush: paint masked pixels (radius below)"),
             "eraser": ("Eraser", "Eraser: unmask pixels (radius below)"),
             "panel": ("Panel", "Panel: click a panel to mask all of it")}
MASK_FILTER = "CrystFEL mask (*.h5);;NumPy mask (*.npy)"
LOAD_FILTER = "Masks (*.h5 *.hdf5 *.cxi *.npy *.edf *.tif *.tiff);;All files (*)"
POLARITY_CHOICES = (("auto", "auto"), ("bad_nonzero", "1 = bad"), ("good_nonzero", "1 = good"))


def _button(text: str, tip: str, slot) -> QtWidgets.QToolButton:
    b = QtWidgets.QToolButton()  # narrower than push buttons: the dock fits beside the image
    b.setText(text)
    b.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
    b.setToolTip(tip)
    b.clicked.connect(lambda *_: slot())
    return b


def setup_ui(self) -> None:
    """Create the dock's widgets as attributes of ``self`` (the dock), in Qt Designer's spirit."""
    body = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(body)
    lay.setContentsMargins(6, 4, 6, 4)
    grid = QtWidgets.QGridLayout()
    grid.setSpacing(3)
    self.tool_group = QtWidgets.QButtonGroup(self)
    self.tool_buttons = {}
    for i, tool in enumerate((None,) + TOOLS):
        text, tip = TOOL_TEXT[tool]
        b = QtWidgets.QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(True)
        b.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
        self.tool_group.addButton(b, i)
        self.tool_buttons[tool] = b
        grid.addWidget(b, i // 4, i % 4)
        b.toggled.connect(lambda on, t=tool: on and self.set_tool(t))
    self.tool_buttons[None].setChecked(True)
    lay.addLayout(grid)

    form = QtWidgets.QFormLayout()
    form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
    mode = QtWidgets.QHBoxLayout()
    self.mode_mask = QtWidgets.QRadioButton("mask")
    self.mode_unmask = QtWidgets.QRadioButton("unmask")
    self.mode_mask.setChecked(True)
    self.mode_mask.setToolTip("Shapes, panels, levels and rings add masked pixels")
    self.mode_unmask.setToolTip("Shapes, panels, levels and rings remove masked pixels")
    mode.addWidget(self.mode_mask)
    mode.addWidget(self.mode_unmask)
    mode.addStretch(1)
    form.addRow("Shapes", mode)
    self.radius = QtWidgets.QDoubleSpinBox()
    self.radius.setRange(0.5, 500.0)
    self.radius.setValue(5.0)
    self.radius.setSuffix(" px")
    self.radius.setToolTip("Brush and eraser radius (display pixels)")
    self.radius.valueChanged.connect(lambda v: setattr(self.tool_item, "brush_radius", float(v)))
    form.addRow("Brush", self.radius)
    self.levels_button = _button("Outside the levels", "Mask the pixels shown below the lower or above the upper "
                                      "level of the histogram (e.g. hot or dead pixels)", self.mask_outside_levels)
    form.addRow("Values", self.levels_button)
    res = QtWidgets.QHBoxLayout()
    self.d_min = QtWidgets.QDoubleSpinBox()
    self.d_max = QtWidgets.QDoubleSpinBox()
    for sb, v in ((self.d_min, 3.64), (self.d_max, 3.70)):
        sb.setRange(0.0, 99.99)
        sb.setDecimals(2)
        sb.setButtonSymbols(QtWidgets.QAbstractSpinBox.NoButtons)
        sb.setValue(v)
        sb.setSuffix(" \u00c5")
    self.d_max.setSpecialValueText("\u221e")  # 0 on the upper limit = no limit
    res.addWidget(self.d_min, 1)
    res.addWidget(QtWidgets.QLabel("\u2013"))
    res.addWidget(self.d_max, 1)
    self.ring_button = _button("Mask", "Mask the pixels whose d-spacing lies in this range (an ice ring;\n"
                                    "0 to D: everything beyond D; D to \u221e: the centre).  Needs the geometry.",
                                    self.mask_resolution)
    self.ring_button.setSizePolicy(QtWidgets.QSizePolicy.Minimum, QtWidgets.QSizePolicy.Fixed)
    res.addWidget(self.ring_button)
    form.addRow("d-spacing", res)
    prow = QtWidgets.QHBoxLayout()
    self.panel_combo = QtWidgets.QComboBox()
    self.panel_combo.setToolTip("A panel of the geometry")
    prow.addWidget(self.panel_combo, 1)
    prow.addWidget(_button("Mask", "Mask (or unmask) the whole panel", self.mask_chosen_panel))
    form.addRow("Panel", prow)
    lay.addLayout(form)

    edit = QtWidgets.QHBoxLayout()
    self.undo_button = _button("Undo", "Undo the last edit (Ctrl+Z)", self.undo)
    self.redo_button = _button("Redo", "Redo (Ctrl+Shift+Z)", self.redo)
    self.clear_button = _button("Clear", "Unmask everything (can be undone)", self.clear)
    self.invert_button = _button("Invert", "Masked pixels become good and good ones masked", self.invert)
    for b in (self.undo_button, self.redo_button, self.clear_button, self.invert_button):
        edit.addWidget(b)
    lay.addLayout(edit)
    show = QtWidgets.QHBoxLayout()
    self.show_box = QtWidgets.QCheckBox("show")
    self.show_box.setIcon(color_icon(EDIT_MASK_COLOR))
    self.show_box.setChecked(True)
    self.show_box.setToolTip("Draw the mask being edited (orange)")
    self.show_box.toggled.connect(self.overlay.setVisible)
    self.count_label = QtWidgets.QLabel("")
    self.count_label.setWordWrap(True)
    show.addWidget(self.show_box)
    show.addWidget(self.count_label, 1)
    lay.addLayout(show)
    self.apply_button = _button("Apply to analysis", "Add this mask to the run's static mask: analysis, "
                                     "overlays and exports use it", self.apply)
    lay.addWidget(self.apply_button)
    files = QtWidgets.QHBoxLayout()
    self.polarity = QtWidgets.QComboBox()
    for key, text in POLARITY_CHOICES:
        self.polarity.addItem(text, key)
    self.polarity.setToolTip("How a loaded file marks bad pixels: auto = the file's polarity attribute (files written\n"
                             "here have one), else the value most pixels do not have is bad; or non-zero = bad / good")
    files.addWidget(_button("Load\u2026", "Load a mask file into the editor (HDF5, .npy, EDF, TIFF)",
                                 self.load_dialog))
    files.addWidget(self.polarity, 1)
    files.addWidget(_button("Save\u2026", "Save as CrystFEL mask.h5 + .geom lines, or as .npy (1 = bad)",
                                 self.save_dialog))
    lay.addLayout(files)
    lay.addStretch(1)
    self.setWidget(body)
