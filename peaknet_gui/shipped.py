"""Where the files shipped with the program are: the model weights, their sidecar, the model
card and the application icon.

They are edited in one place, ``resources/`` and ``icons/`` of the source checkout.  Building a
wheel or sdist copies them into the package as ``peaknet_gui/resources/`` (``setup.py``'s
build hook), so an installed package finds them beside its code (``importlib.resources``),
whatever the install location (a venv, ``pip install --user``, conda, ``--target``).  An
editable install or a plain checkout has no such folder and reads the checkout's copies.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: the folder inside the package that a built wheel carries the shipped files in
PACKAGE_DIR = "resources"
ICON_NAME = "peaknet-gui.svg"
WEIGHTS_FILENAME = "peaknet.safetensors"
ENV_WEIGHTS = "PEAKNET_WEIGHTS"


def _checkout_root():
    """The source checkout this package runs from, or None for an installed package."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "setup.cfg").is_file() and (root / "resources").is_dir() else None


def shipped_file(name: str) -> Path:
    """The path of the shipped file ``name`` (``peaknet.safetensors``, ``peaknet.json``,
    ``MODEL_CARD.md``, ``peaknet-gui.svg``).

    Order: the package's own copy (an installed wheel), else the source checkout's
    ``icons/`` (the icon) or ``resources/``; when neither exists, the path where the installed
    package should hold it, so that an error names the place the file is missing from.
    """
    packaged = Path(str(resources.files(__package__) / PACKAGE_DIR / name))
    if packaged.is_file():
        return packaged
    root = _checkout_root()
    if root is not None:
        return root / ("icons" if name == ICON_NAME else "resources") / name
    return packaged


def default_weights_path() -> Path:
    """The weights used when none are named: ``$PEAKNET_WEIGHTS``, else the shipped ones."""
    env = os.environ.get(ENV_WEIGHTS)
    return Path(env) if env else shipped_file(WEIGHTS_FILENAME)
