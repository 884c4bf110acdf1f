"""The desktop application (PyQt5 + pyqtgraph): the only package that imports Qt.

Qt-free view model and preparation: :mod:`.state` (browser state), :mod:`.display` (display
images, overlays, read-out), :mod:`.runs` (opening runs), :mod:`.exports` (export work),
:mod:`.memory`.  Qt: :mod:`.qt` (the one import shim), :mod:`.worker` / :mod:`.worker_jobs` /
:mod:`.jobs` (threads: reading, model, re-thresholding), :mod:`.image_view`, :mod:`.overlays`,
:mod:`.navigation`, :mod:`.docks`, :mod:`.controller`, :mod:`.main_window`, :mod:`.actions`,
:mod:`.export_dialog`, :mod:`.dialogs`, :mod:`.settings`, :mod:`.style`; entry point
:func:`.app.main` (``peaknet-gui``).
"""
