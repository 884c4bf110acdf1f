"""The window tells the user once when a run's background contradicts the gain its geometry
states (peaks/gain_check.py) and the weights' point for an unreliable gain is used.  Offscreen
(pytest-qt), real analyzer and shipped weights, the demo run."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("pytestqt")

from _gui_support import open_demo, wait_complete  # noqa: E402

pytestmark = pytest.mark.gui


def _demo_geometry_with_gain(tmp_path, adu_per_photon: float):
    from peaknet_gui.sources.demo import demo_run_path

    text = demo_run_path().with_suffix(".geom").read_text()
    out = tmp_path / "demo_gain.geom"
    out.write_text(re.sub(r"adu_per_photon\s*=\s*[0-9.eE+-]+", f"adu_per_photon = {adu_per_photon}", text))
    return out


def test_an_understated_gain_is_reported_in_the_status_bar(qtbot, window, recorder, tmp_path):
    open_demo(qtbot, window, 0)
    assert window.image_view.overlay.result.gain_warning == ""  # the demo's own geometry: its gain holds
    shown = []
    window.controller.statusMessage.connect(lambda text, ms: shown.append(text))
    geom = _demo_geometry_with_gain(tmp_path, 0.05)  # ~50x below the simulated Rayonix's gain
    wait_complete(qtbot, window, 0, lambda: window.open_demo(event=0, geometry=str(geom)), timeout=120000)
    warning = window.image_view.overlay.result.gain_warning
    assert "0.05 ADU per photon" in warning and "too small" in warning and warning.startswith("demo.cxi: ")
    assert any(warning in t for t in shown)
    n = sum(warning in t for t in shown)
    wait_complete(qtbot, window, 1, lambda: window.controller.go(1))
    assert window.image_view.overlay.result.gain_warning == warning
    assert sum(warning in t for t in shown) == n  # said once, not on every frame
    assert not recorder.errors
