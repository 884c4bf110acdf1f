"""Keep pyFAI's progress chatter (INFO logs, SLSQP iteration prints, optional-module warnings
from pyFAI, silx and numexpr) out of the user's terminal unless debugging is on."""

from __future__ import annotations

import contextlib
import logging
import warnings

#: logger name -> level while quiet
_LEVELS = {"pyFAI": logging.WARNING, "silx": logging.ERROR, "numexpr": logging.WARNING}


@contextlib.contextmanager
def quiet_pyfai():
    if logging.getLogger("peaknet_gui").isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = {name: logging.getLogger(name) for name in _LEVELS}
    old = {name: lg.level for name, lg in loggers.items()}
    for name, lg in loggers.items():
        lg.setLevel(max(_LEVELS[name], lg.level))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pyFAI(\..*)?")
            warnings.filterwarnings("ignore", message=r".*_transformations.*")
            yield
    finally:
        for name, lg in loggers.items():
            lg.setLevel(old[name])
