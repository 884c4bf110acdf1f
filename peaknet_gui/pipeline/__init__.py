"""The headless run loop shared by the CLI, the GUI worker and batch jobs."""

from .result import FrameResult  # noqa: F401
from .settings import FinderSettings, MaskSettings  # noqa: F401
