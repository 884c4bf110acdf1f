"""Frame info dock: event, peaks, hit, inference time, device, experiment values, cursor read-out."""

from __future__ import annotations

import os

from ..display import FrameView, PixelReadout
from ..qt import QtWidgets
from .widgets import small_label

FIELDS = (
    ("event", "Event"),
    ("file", "File"),
    ("peaks", "Peaks"),
    ("rings", "Ring spots"),
    ("hot", "Hot pixels"),
    ("hit", "Hit"),
    ("time", "Inference"),
    ("device", "Engine"),
    ("energy", "Energy"),
    ("distance", "Distance"),
    ("geometry", "Geometry"),
    ("cursor", "Cursor"),
)


class FrameInfoDock(QtWidgets.QDockWidget):
    def __init__(self, parent=None):
        super().__init__("Frame info", parent)
        self.setObjectName("dock_frame_info")
        body = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(body)
        self.labels = {}
        for key, text in FIELDS:
            lab = small_label("\u2013")
            self.labels[key] = lab
            form.addRow(text, lab)
        f = self.labels["peaks"].font()
        f.setPointSizeF(f.pointSizeF() * 1.5)
        f.setBold(True)
        for k in ("peaks", "hit"):
            self.labels[k].setFont(f)
        scroll = QtWidgets.QScrollArea()  # scrolls rather than forcing the window taller than a laptop screen
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _set(self, key: str, text: str, tip: str = "") -> None:
        self.labels[key].setText(text)
        self.labels[key].setToolTip(tip)

    def set_frame(self, view: FrameView, n_frames: int, geometry_text: str = "") -> None:
        fr = view.frame
        # 0-based like the spin box, the export range and CrystFEL's //N: "11 / 11" is the last of 12
        self._set("event", f"{view.index} / {max(n_frames - 1, 0)}   {fr.event.event_string}".rstrip(), fr.event.lst_line())
        h, w = fr.shape
        self._set("file", os.path.basename(fr.event.path),
                  f"{fr.event.path}\n{w} \u00d7 {h} pixels (fs \u00d7 ss), {fr.data.dtype}")
        md = fr.metadata
        e = (view.geometry.photon_energy_ev if view.geometry is not None and view.geometry.photon_energy_ev else None) \
            or md.photon_energy_ev
        self._set("energy", f"{e:.1f} eV ({12398.42 / e:.4f} \u00c5)" if e else "unknown")
        dist = None
        if view.geometry is not None:
            try:
                dist = view.geometry.mean_camera_length()
            except Exception:
                dist = None
        dist = dist or md.detector_distance_m
        self._set("distance", f"{1e3 * dist:.2f} mm" if dist else "unknown")
        self._set("geometry", geometry_text or ("none" if view.geometry is None else f"{len(view.geometry.panels)} panel(s)"),
                  view.geometry_error or "")
        for k in ("peaks", "rings", "hot", "hit", "time"):
            self._set(k, "\u2026")

    def set_result(self, result) -> None:
        self._set("peaks", str(result.n_peaks))
        rings = len(result.ring_spots)
        self._set("rings", f"{rings} (masked)" if rings else "none",
                  "Peaks crowding on one scattering angle (ice, salt or calibrant powder rings):\n"
                  "not counted as Bragg peaks, masked in the auto-mask")
        hot = getattr(result, "hot_pixels", 0)
        self._set("hot", f"{hot} (masked)" if hot else "none",
                  "Hot and dead pixels found from the run's own statistics (a pixel bright in most frames),\n"
                  "or in a single frame a lone pixel with no spread into its neighbours: never peaks, masked")
        self.labels["hit"].setText("HIT" if result.hit else "no")
        self.labels["hit"].setStyleSheet("color: #ffaa28;" if result.hit else "")
        t = result.timings_ms
        model = t.get("model")
        parts = []
        if model is not None:
            parts.append(f"model {model:.0f} ms")
        if "postprocess" in t:
            parts.append(f"post {t['postprocess']:.0f} ms")
        self._set("time", ", ".join(parts) or f"{result.total_ms:.0f} ms",
                  "\n".join(f"{k}: {v:.1f} ms" for k, v in t.items()))
        self._set("device", f"{result.algorithm} \u2022 {result.device}")

    def clear(self) -> None:
        """Nothing shown (a new run, before its first frame)."""
        for key in self.labels:
            self._set(key, "\u2013")
        self.labels["hit"].setStyleSheet("")

    def set_no_result(self, why: str) -> None:
        self._set("peaks", "\u2013")
        self._set("rings", "\u2013")
        self._set("hot", "\u2013")
        self._set("hit", "\u2013")
        self._set("time", why)

    def set_device(self, device: str) -> None:
        self._set("device", device)

    def set_readout(self, r: PixelReadout) -> None:
        self._set("cursor", "" if r is None else r.format().replace("   ", "\n"))
