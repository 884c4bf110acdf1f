"""``peaknet-gui``: the desktop application's entry point.

    peaknet-gui [RUN...] [--geom G] [--event N] [--dataset D] [--mask M]
                [--device auto|cpu|cuda] [--weights W] [--algorithm peaknet|peakfinder8]
                [--orientation data|crystfel] [--stream-window N]
                [--screenshot OUT.png [--timeout S] [--size WxH]]
    peaknet-gui --install-desktop-entry | --remove-desktop-entry

Without RUN the built-in demo run opens.  ``--screenshot`` opens the run at ``--event``, waits
until that frame's peaks and masks are drawn, saves the window as PNG and exits (0 on success,
2 when something went wrong, 3 on timeout); it works without a display
(``QT_QPA_PLATFORM=offscreen``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from typing import Optional

from ..cli.argtypes import positive_int


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peaknet-gui", description="Browse serial-crystallography runs with PeakNet peak "
                                "finding, auto-masking and CrystFEL export.")
    p.add_argument("inputs", nargs="*", metavar="RUN", help="files, globs or directories of a run, or a live stream: "
                   "tcp://HOST:PORT (Eiger), karabo-bridge://HOST:PORT[/SOURCE] (default: the demo run)")
    p.add_argument("--geom", "-g", help="CrystFEL geometry file")
    p.add_argument("--event", "-e", type=int, default=0, help="frame index to show first (default: 0)")
    p.add_argument("--dataset", help="HDF5 dataset of the frames (when a file holds several)")
    p.add_argument("--mask", dest="mask_file", help="static mask file (HDF5, .npy, EDF)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: remembered, else auto)")
    p.add_argument("--weights", help="model weights (default: the shipped model)")
    p.add_argument("--algorithm", choices=("peaknet", "peakfinder8"), help="peak finder to start with")
    p.add_argument("--screenshot", metavar="OUT.png", help="save the window once the frame is drawn, then exit")
    p.add_argument("--timeout", type=float, default=600.0, help="--screenshot: give up after this many seconds")
    p.add_argument("--size", default="1600x1000", help="window size WxH (default: %(default)s)")
    p.add_argument("--stream-window", type=positive_int, metavar="N",
                   help="live streams: frames kept in memory (default: 1000; hits are kept longer)")
    p.add_argument("--orientation", choices=("data", "crystfel"),
                   help="data: the first data row at the top; crystfel: lab +y up, as CrystFEL's viewer "
                        "(default: remembered, else data)")
    p.add_argument("--settings", help="settings INI file (default: the user's settings; --screenshot: fresh defaults)")
    p.add_argument("--verbose", "-v", action="store_true")
    p.add_argument("--install-desktop-entry", action="store_true",
                   help="add PeakNet to the desktop's application menu (a .desktop file and the icon in "
                   "$XDG_DATA_HOME, default ~/.local/share) and exit")
    p.add_argument("--remove-desktop-entry", action="store_true", help="remove that menu entry and icon, and exit")
    return p


def _desktop_entry(install: bool) -> int:
    from ..desktop_entry import install_desktop_entry, remove_desktop_entry
    from ..errors import PeakNetError

    try:
        if install:
            paths = install_desktop_entry()
            print(f"peaknet-gui: desktop entry {paths.entry}\npeaknet-gui: icon {paths.icon}")
        else:
            removed = remove_desktop_entry()
            print("\n".join(f"peaknet-gui: removed {p}" for p in removed) or "peaknet-gui: no desktop entry installed")
    except PeakNetError as e:
        print(f"peaknet-gui: error: {e}", file=sys.stderr)
        return 2
    return 0


def _size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 200 or h < 200:
            raise ValueError
        return w, h
    except ValueError:
        raise SystemExit(f"peaknet-gui: --size must look like 1600x1000, not {text!r}")


def main(argv: Optional[list] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.install_desktop_entry or args.remove_desktop_entry:
        return _desktop_entry(install=args.install_desktop_entry)
    from .memory import limit_heap_growth

    limit_heap_growth()  # before any thread starts (see .memory)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    width, height = _size(args.size)
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM"))
    if headless and sys.platform.startswith("linux"):
        if not args.screenshot:
            print("peaknet-gui: no display (DISPLAY is not set); use --screenshot OUT.png for an offscreen picture, "
                  "or run under X11/Wayland (ssh -X, VNC, xvfb-run)", file=sys.stderr)
            return 2
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen

    from .qt import ensure_app

    app = ensure_app(sys.argv[:1])
    from . import dialogs
    from .main_window import MainWindow
    from .settings import AppSettings
    from .stream_live import attach_stream_live
    from .style import app_icon, apply_dark_style
    from .worker import ModelSettings

    apply_dark_style(app)
    app.setWindowIcon(app_icon())
    tmp_settings = None
    if args.settings:
        settings = AppSettings(args.settings)
    elif args.screenshot:
        tmp_settings = tempfile.TemporaryDirectory(prefix="peaknet-gui-")
        settings = AppSettings(os.path.join(tmp_settings.name, "settings.ini"))
    else:
        settings = AppSettings()
    remembered = settings.model()
    model = ModelSettings(weights=args.weights or remembered.get("weights"),
                          device=args.device or remembered.get("device") or "auto")
    if args.algorithm:
        f = settings.finder()
        f.algorithm = args.algorithm
        settings.set_finder(f)
    if args.screenshot:
        dialogs.set_noninteractive(True)

    _install_excepthook()
    window = MainWindow(settings, model=model, restore_layout=not args.screenshot)
    attach_stream_live(window)  # tcp:// and karabo-bridge:// runs: Live mode, stream status
    if args.orientation:
        window.set_crystfel_orientation(args.orientation == "crystfel")
    window.resize(width, height)
    window.show()
    window.resize(width, height)  # again: the first show lays the docks out at their preferred heights

    outcome = {"code": 0}
    if args.screenshot:
        _install_screenshot(window, args, outcome)
    if args.inputs:
        window.open_paths(args.inputs, dataset=args.dataset, geometry=args.geom, event=args.event, mask_file=args.mask_file,
                          stream_window=args.stream_window)
    else:
        window.open_demo(event=args.event, geometry=args.geom)
    code = app.exec_()
    app.setQuitOnLastWindowClosed(True)
    if tmp_settings is not None:
        tmp_settings.cleanup()
    return outcome["code"] or code


def _install_excepthook() -> None:
    """An exception escaping a Qt slot would abort the program (PyQt5): log it and show it
    instead, the window stays usable."""
    import traceback

    from . import dialogs

    log = logging.getLogger("peaknet_gui.gui")

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        title, text = dialogs.describe("peaknet-gui", exc)
        try:
            dialogs.show_error(None, title, text)
        except Exception:  # the dialog itself failed: the log has it
            pass

    sys.excepthook = hook


def _install_screenshot(window, args, outcome: dict) -> None:
    """Save the window once the target frame's peaks and masks are drawn; then quit."""
    from .qt import QtCore, QtWidgets

    target = {"index": args.event, "done": False}
    out = os.path.abspath(args.screenshot)

    def finish(code: int, message: str = "") -> None:
        if target["done"]:
            return
        target["done"] = True
        if message:
            print(f"peaknet-gui: {message}", file=sys.stderr)
        outcome["code"] = code
        app = QtWidgets.QApplication.instance()
        app.setQuitOnLastWindowClosed(False)  # no quit event left behind for a later event loop
        window.close()
        app.quit()  # called from a slot: the running event loop ends

    def save() -> None:
        if target["done"]:
            return
        QtWidgets.QApplication.processEvents()
        window.save_screenshot(out)
        if os.path.isfile(out):
            print(out)
            finish(outcome["code"])
        else:
            finish(2, f"{out}: the screenshot could not be written")

    def on_run(info) -> None:
        target["index"] = window.state.clamp(args.event)
        if args.event != target["index"]:
            print(f"peaknet-gui: event {args.event} is outside the run ({info.n_frames} frames); showing "
                  f"{target['index']}", file=sys.stderr)

    def on_complete(index: int) -> None:
        if index == target["index"] and not target["done"]:
            QtCore.QTimer.singleShot(300, save)  # let the last paint events through

    def on_error(title: str, text: str) -> None:
        outcome["code"] = 2
        if window.controller.current_view is not None:
            QtCore.QTimer.singleShot(300, save)  # show what could be drawn, exit with 2
        else:
            finish(2)

    window.controller.runOpened.connect(on_run)
    window.controller.frameComplete.connect(on_complete)
    window.controller.errorShown.connect(on_error)
    timer = QtCore.QTimer(window)  # dies with the window: never fires into a later event loop
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: finish(3, f"timed out after {args.timeout:g} s"))
    timer.start(int(args.timeout * 1000))
    window.destroyed.connect(timer.stop)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
