"""Build hook (the metadata is in setup.cfg): the shipped model travels inside the package.

``resources/`` (the weights, their sidecar, the model card) and ``icons/peaknet-gui.svg`` of the
checkout stay the one place these files are edited; building a wheel copies them into
``peaknet_gui/resources/`` of the build, where an installed package finds them
(``peaknet_gui.shipped``).  An editable install reads the checkout's folders instead.
MANIFEST.in puts the same files in the sdist, so a wheel built from the sdist carries them too.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("resources/peaknet.safetensors", "resources/peaknet.json", "resources/MODEL_CARD.md",
           "icons/peaknet-gui.svg")
PACKAGE_DIR = ("peaknet_gui", "resources")  # peaknet_gui.shipped.PACKAGE_DIR


class BuildPyWithModel(build_py):
    def _shipped_targets(self):
        return [(HERE / src, Path(self.build_lib, *PACKAGE_DIR, Path(src).name)) for src in SHIPPED]

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for src, dst in self._shipped_targets():
            if not src.is_file():
                raise SystemExit(f"{src}: a shipped file is missing; the package would be built without it")
            self.mkpath(str(dst.parent))
            self.copy_file(str(src), str(dst))

    def get_outputs(self, include_bytecode=True):
        extra = [] if getattr(self, "editable_mode", False) else [str(d) for _, d in self._shipped_targets()]
        return super().get_outputs(include_bytecode) + extra


setup(cmdclass={"build_py": BuildPyWithModel})
