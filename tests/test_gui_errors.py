"""Bad input shows a dialog that names the problem, and the window stays usable.

The dialog functions are replaced by a recorder (pytest-qt cannot click modal boxes away)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import open_demo, wait_complete  # noqa: E402

pytestmark = pytest.mark.gui


def _expect_error(qtbot, window, recorder, action, *needles, timeout=30000):
    n = len(recorder.errors)
    with qtbot.waitSignal(window.controller.errorShown, timeout=timeout):
        action()
    assert len(recorder.errors) == n + 1
    title, text = recorder.errors[-1]
    for needle in needles:
        assert needle in text, f"{needle!r} not in the message {text!r}"
    return title, text


def _small_run(path, frames):
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=np.asarray(frames, dtype=np.float32), chunks=(1,) + frames[0].shape)
    return path


def test_bad_runs_and_geometries(qtbot, window, recorder, tmp_path):
    from peaknet_gui.sources.demo import demo_run_path

    missing = tmp_path / "nowhere" / "run_0001.h5"
    _expect_error(qtbot, window, recorder, lambda: window.open_paths([str(missing)]), "run_0001.h5")
    assert window.controller.run is None and window.nav.isEnabled() is False

    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)  # an HDF5 signature, then garbage
    _expect_error(qtbot, window, recorder, lambda: window.open_paths([str(corrupt)]), "corrupt.h5")

    demo = str(demo_run_path())
    _expect_error(qtbot, window, recorder, lambda: window.open_paths([demo], dataset="/entry_1/no_such_data"),
                  "/entry_1/no_such_data")

    bad_geom = tmp_path / "broken.geom"
    bad_geom.write_text("clen = 0.1\np0/min_fs = 0\np0/max_fs = banana\n")
    _expect_error(qtbot, window, recorder, lambda: window.open_paths([demo], geometry=str(bad_geom)), "broken.geom")

    small_geom = tmp_path / "small.geom"  # a valid geometry for a smaller detector
    small_geom.write_text("clen = 0.1\nphoton_energy = 9000\nres = 10000\np0/min_fs = 0\np0/max_fs = 2999\n"
                          "p0/min_ss = 0\np0/max_ss = 99\np0/corner_x = -50\np0/corner_y = -50\n"
                          "p0/fs = +1x\np0/ss = +1y\n")
    _expect_error(qtbot, window, recorder, lambda: window.open_paths([demo], geometry=str(small_geom)), "small.geom")

    # still usable: the demo opens and its frames are analysed
    open_demo(qtbot, window, 0)
    # a geometry chosen for the open run that does not fit: dialog, the run keeps its geometry
    before = window.controller.run.geometry
    _expect_error(qtbot, window, recorder, lambda: window.worker.set_geometry(str(small_geom)), "small.geom")
    assert window.worker.run_info.geometry is before
    missing_mask = tmp_path / "mask_gone.h5"
    _expect_error(qtbot, window, recorder, lambda: window.worker.set_static_mask_file(str(missing_mask)), "mask_gone.h5")
    wait_complete(qtbot, window, 1, lambda: window.controller.step(1))


def test_corrupt_frame_in_a_run(qtbot, window, recorder, tmp_path):
    from peaknet_gui.sources.demo import open_demo_run

    src = open_demo_run()
    good = [src[i].data[:512, :512] for i in range(3)]
    src.close()
    frames = [good[0], np.full((512, 512), np.nan, np.float32), good[2]]  # frame 1: nothing but NaN
    path = _small_run(tmp_path / "run_with_a_bad_frame.h5", frames)
    wait_complete(qtbot, window, 0, lambda: window.open_paths([str(path)]))
    _, text = _expect_error(qtbot, window, recorder, lambda: window.controller.step(1), "run_with_a_bad_frame.h5")
    assert "NaN" in text
    assert window.state.playing is False
    wait_complete(qtbot, window, 2, lambda: window.controller.step(1))  # the next frame is fine


def test_ambiguous_hdf5_asks_for_the_dataset(qtbot, window, recorder, tmp_path, monkeypatch):
    from peaknet_gui.gui import dialogs
    from peaknet_gui.sources.demo import open_demo_run

    src = open_demo_run()
    frames = np.stack([src[i].data[:256, :256] for i in range(2)])
    src.close()
    path = tmp_path / "two_stacks.h5"
    with h5py.File(path, "w") as f:
        f["/detector_a/images"] = frames
        f["/detector_b/images"] = frames[::-1] * 2
    asked = []

    def choose(parent, what, candidates):
        asked.append([c.path for c in candidates])
        return "/detector_b/images"

    monkeypatch.setattr(dialogs, "choose_dataset", choose)
    wait_complete(qtbot, window, 0, lambda: window.open_paths([str(path)]))
    assert sorted(asked[0]) == ["/detector_a/images", "/detector_b/images"]
    assert window.controller.run.request.dataset == "/detector_b/images"
    np.testing.assert_array_equal(window.worker.cached_frame(0).data, frames[1] * 2)
    assert not recorder.errors
