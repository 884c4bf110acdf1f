"""Dock widgets of the main window (peak finding, auto-mask, run overview, frame info).

Other parts add their own docks with :meth:`peaknet_gui.gui.main_window.MainWindow.add_dock`.
"""
