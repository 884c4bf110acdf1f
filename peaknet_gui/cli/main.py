"""The ``peaknet`` command line: ``peaknet <subcommand> ...``.

Each subcommand lives in its own module ``peaknet_gui.cli.<name>`` exposing
``register(subparsers)`` (adds its parser and sets ``func``) -- see :data:`SUBCOMMANDS`.
User errors (:class:`~peaknet_gui.errors.PeakNetError`) print ``peaknet: error: <message>`` and
exit with status 2; Ctrl-C exits with 130 and SIGTERM (raised as
:class:`~peaknet_gui.errors.Terminated`, handled like Ctrl-C) with 143 after the subcommand has
closed its files.  A second signal while files are being closed is ignored (SIGKILL still works).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading

from .. import __version__
from ..errors import PeakNetError, Terminated
from ..interrupts import deliver

#: subcommand modules, in the order ``peaknet --help`` lists them
SUBCOMMANDS = ("info", "simulate", "train", "evaluate", "find", "calibrate")


class _Parser(argparse.ArgumentParser):
    """Usage errors in two lines (the problem, where to read more), not the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def version_report() -> tuple:
    """(text, weights found): the package version and the weights the commands use by default:
    file name, sha256 (checked against the sidecar's record when there is one) and location."""
    import hashlib
    import json
    import platform
    from importlib import metadata

    from ..shipped import ENV_WEIGHTS, default_weights_path

    try:
        torch = f", torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch = ", torch not installed"
    lines = [f"peaknet_gui {__version__} (Python {platform.python_version()}{torch})"]
    path = default_weights_path()
    origin = f" (${ENV_WEIGHTS})" if os.environ.get(ENV_WEIGHTS) else ""
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        lines.append(f"weights: {path}: cannot be read ({e.strerror or e}){origin}")
        return "\n".join(lines), False
    digest = h.hexdigest()
    check = "no sidecar"
    try:
        recorded = json.loads(path.with_suffix(".json").read_text()).get("sha256")
        check = f"matches {path.with_suffix('.json').name}" if recorded == digest else \
            f"DOES NOT MATCH {path.with_suffix('.json').name} ({recorded})"
    except (OSError, ValueError, AttributeError):
        pass
    lines.append(f"weights: {path.name} sha256 {digest} ({check})")
    lines.append(f"  {path}{origin}")
    return "\n".join(lines), True


class _VersionAction(argparse.Action):
    """``--version``: computed when asked for (hashing the weights), not for every command."""

    def __call__(self, parser, namespace, values, option_string=None):
        text, found = version_report()
        print(text)
        parser.exit(0 if found else 1)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="peaknet",
        description="PeakNet peak finding for serial crystallography: inspect runs, simulate, "
        "train, evaluate, find peaks and export to CrystFEL, calibrate on silver behenate.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the version and the model weights (name, sha256, where) and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__package__}.{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        with stop_signals():
            return int(args.func(args) or 0)
    except PeakNetError as e:
        print(f"peaknet: error: {e}", file=sys.stderr)
        return 2
    except Terminated:
        print("peaknet: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("peaknet: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:
        print(f"peaknet: error: out of memory ({e})", file=sys.stderr)
        return 2


@contextlib.contextmanager
def stop_signals():
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread, as SIGINT
    raises KeyboardInterrupt; once one has, later SIGINT/SIGTERM are ignored so that the files
    can be closed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if fired:
            print("peaknet: still closing the files; SIGKILL stops at once (and loses the frames done)",
                  file=sys.stderr)
            return
        fired.append(signum)
        deliver(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())  # after a write in progress

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
