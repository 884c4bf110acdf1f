"""``python -m peaknet_gui [RUN...]``: the desktop application, as the ``peaknet-gui`` command."""

import sys

from .gui.app import main

if __name__ == "__main__":
    sys.exit(main())
