#!/usr/bin/env python
"""Start the PeakNet desktop application from a source checkout: ``python run_gui.py [RUN...]``.

Same options as the installed ``peaknet-gui`` command (``--help``); without RUN the built-in
demo run opens.
"""

import sys

from peaknet_gui.gui.app import main

if __name__ == "__main__":
    sys.exit(main())
