"""The package as a user installs it: sdist and wheel built from a copy of the checkout, the
wheel installed into a fresh virtual environment, the commands run from a folder outside the
source tree.

Nothing is downloaded: the build uses this environment's setuptools (no build isolation, no
index) and the fresh environment sees this one's packages (torch, Qt, ...) through a ``.pth``
file, so only peaknet_gui itself is installed there (from the wheel).  About a minute on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import peaknet_gui
from peaknet_gui.desktop_entry import entry_text, install_desktop_entry, remove_desktop_entry, target_paths
from peaknet_gui.errors import ExportError
from peaknet_gui.shipped import ICON_NAME, default_weights_path, shipped_file

REPO = Path(__file__).resolve().parent.parent
VERSION = peaknet_gui.__version__
SHIPPED = ("resources/peaknet.safetensors", "resources/peaknet.json", "resources/MODEL_CARD.md", "icons/peaknet-gui.svg")
#: what building needs from the checkout (the rest of it must not be needed)
BUILD_INPUTS = ("setup.cfg", "setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "peaknet_gui",
                "resources", "icons")
TIMEOUT = 300

pytestmark = pytest.mark.slow


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(cmd, cwd, env=None, timeout=TIMEOUT, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


# --- building ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist, wheel): the sdist built from a clean copy of the checkout, the wheel from the sdist
    (as pip does for a user who installs from the sdist)."""
    pytest.importorskip("setuptools.build_meta")
    top = tmp_path_factory.mktemp("build")
    src = top / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in BUILD_INPUTS:
        p = REPO / name
        (shutil.copytree(p, src / name, ignore=skip) if p.is_dir() else shutil.copy2(p, src / name))
    dist = top / "dist"
    run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"], cwd=src)
    (sdist,) = dist.glob("*.tar.gz")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--disable-pip-version-check", "-q", "-w", dist, sdist], cwd=top)
    (wheel,) = dist.glob("*.whl")
    return sdist, wheel


def test_sdist_carries_the_model_and_the_build_hook(built):
    sdist, _ = built
    root = f"peaknet_gui-{VERSION}"
    with tarfile.open(sdist) as tf:
        names = set(tf.getnames())
        for rel in (*SHIPPED, "LICENSE", "setup.py", "setup.cfg", "MANIFEST.in", "peaknet_gui/shipped.py"):
            assert f"{root}/{rel}" in names, rel
        for rel in SHIPPED:
            assert sha256(tf.extractfile(f"{root}/{rel}").read()) == sha256((REPO / rel).read_bytes()), rel
    assert not any("/tests/" in n or "/benchmarks/" in n or "__pycache__" in n for n in names)


def test_wheel_carries_the_model_licence_and_metadata(built):
    _, wheel = built
    assert wheel.name == f"peaknet_gui-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for rel in SHIPPED:
            inside = f"peaknet_gui/resources/{Path(rel).name}"
            assert inside in names, inside
            assert sha256(zf.read(inside)) == sha256((REPO / rel).read_bytes()), inside
        side = json.loads(zf.read("peaknet_gui/resources/peaknet.json"))
        assert side["sha256"] == sha256(zf.read("peaknet_gui/resources/peaknet.safetensors"))
        dist_info = f"peaknet_gui-{VERSION}.dist-info"
        assert zf.read(f"{dist_info}/licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
        meta = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    # only the package and its metadata: no top-level resources/, tests, benchmarks or data files
    assert {n.split("/")[0] for n in names} == {"peaknet_gui", dist_info}
    assert not any(n.startswith(("peaknet_gui/tests", "peaknet_gui/benchmarks")) or "__pycache__" in n for n in names)
    for line in ("License: BSD-3-Clause", "License-File: LICENSE", "Requires-Python: >=3.10",
                 "Classifier: Environment :: X11 Applications :: Qt",
                 "Classifier: Intended Audience :: Science/Research",
                 "Classifier: Topic :: Scientific/Engineering :: Physics",
                 "Provides-Extra: gpu", "Provides-Extra: fast", "Provides-Extra: cluster",
                 "Description-Content-Type: text/markdown"):
        assert line in meta, line
    assert "peaknet = peaknet_gui.cli.main:main" in entry_points
    assert "peaknet-gui = peaknet_gui.gui.app:main" in entry_points
    assert wheel.stat().st_size < 4_000_000  # the model is small; a stray data file would show here


# --- installing ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """(venv, env, work dir): the wheel installed into a fresh virtual environment that sees this
    environment's packages (a .pth file: ``--system-site-packages`` would see the base Python's,
    not this venv's), and a working folder outside the source tree."""
    _, wheel = built
    top = tmp_path_factory.mktemp("installed")
    venv = top / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=top)
    py = venv / "bin" / "python"
    purelib = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=top).stdout.strip())
    user = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    here = [p for p in site.getsitepackages() + user if os.path.isdir(p)]
    (purelib / "_peaknet_test_env.pth").write_text("".join(f"{p}\n" for p in here))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PEAKNET_WEIGHTS", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(QT_QPA_PLATFORM="offscreen", PEAKNET_CACHE_DIR=str(top / "cache"), XDG_DATA_HOME=str(top / "share"),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    # --ignore-installed: this environment's editable peaknet_gui (seen through the .pth) is not
    # the one to replace; the venv gets its own copy
    run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir", "--ignore-installed",
         "--disable-pip-version-check", "-q", wheel], cwd=top, env=env)
    work = top / "work"
    work.mkdir()
    return venv, env, work


def test_installed_package_is_imported_from_the_venv_not_the_checkout(installed):
    venv, env, work = installed
    code = ("import json, sys, peaknet_gui; from peaknet_gui.model.weights import default_weights_path, load_weights; "
            "net, info = load_weights(); "
            "print(json.dumps({'file': peaknet_gui.__file__, 'weights': str(default_weights_path()), "
            "'verified': info.verified, 'path': sys.path}))")
    out = json.loads(run([venv / "bin" / "python", "-c", code], cwd=work, env=env).stdout)
    site_packages = venv.resolve() / "lib"
    assert Path(out["file"]).resolve().is_relative_to(site_packages), out["file"]
    assert Path(out["weights"]).resolve().is_relative_to(site_packages), out["weights"]
    assert out["weights"].endswith("peaknet_gui/resources/peaknet.safetensors") and out["verified"]
    assert not any(p and Path(p).resolve() == REPO for p in out["path"])


def test_installed_version_names_the_shipped_weights(installed):
    venv, env, work = installed
    out = run([venv / "bin" / "peaknet", "--version"], cwd=work, env=env).stdout
    digest = sha256((REPO / "resources" / "peaknet.safetensors").read_bytes())
    assert f"peaknet_gui {VERSION}" in out
    assert f"weights: peaknet.safetensors sha256 {digest} (matches peaknet.json)" in out
    assert str(venv) in out and str(REPO) not in out
    # python -m peaknet_gui is the GUI's command line
    assert run([venv / "bin" / "python", "-m", "peaknet_gui", "--help"], cwd=work, env=env).stdout.startswith(
        "usage: peaknet-gui")


def test_installed_find_and_screenshot_on_a_simulated_run(installed):
    venv, env, work = installed
    bin_ = venv / "bin"
    run([bin_ / "peaknet", "simulate", "--frames", "2", "--out", "run.cxi", "--crop", "256x256", "--seed", "5",
         "--mix", "hits=1", "--no-progress"], cwd=work, env=env)
    run([bin_ / "peaknet", "find", "run.cxi", "--geom", "run.geom", "--out", "out", "--backend", "onnxruntime",
         "--no-progress"], cwd=work, env=env)
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["complete"] and summary["totals"]["frames"] == 2 and summary["totals"]["peaks"] > 0
    model = summary["settings"]["model"]
    assert model["sha256"] == sha256((REPO / "resources" / "peaknet.safetensors").read_bytes()) and model["verified"]
    assert Path(model["path"]).resolve().is_relative_to(venv.resolve())
    assert (work / "out" / "peaks.stream").stat().st_size > 0
    shot = work / "shot.png"
    proc = run([bin_ / "peaknet-gui", "run.cxi", "--geom", "run.geom", "--screenshot", shot, "--size", "800x600",
                "--timeout", "240"], cwd=work, env=env)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", proc.stderr
    assert "Traceback" not in proc.stderr


def test_installed_desktop_entry(installed):
    venv, env, work = installed
    out = run([venv / "bin" / "peaknet-gui", "--install-desktop-entry"], cwd=work, env=env).stdout
    share = Path(env["XDG_DATA_HOME"])
    entry = share / "applications" / "peaknet-gui.desktop"
    icon = share / "icons" / "hicolor" / "scalable" / "apps" / "peaknet-gui.svg"
    assert str(entry) in out and str(icon) in out
    text = entry.read_text()
    assert f"Exec={venv / 'bin' / 'peaknet-gui'} %F\n" in text and f"Icon={icon}\n" in text
    assert icon.read_bytes() == (REPO / "icons" / ICON_NAME).read_bytes()
    if shutil.which("desktop-file-validate"):  # desktop-file-utils, when installed
        run(["desktop-file-validate", entry], cwd=work)
    # a data folder that is a file: a message naming it, exit status 2, no traceback
    bad = dict(env, XDG_DATA_HOME=str(work / "not-a-folder"))
    (work / "not-a-folder").write_text("")
    proc = run([venv / "bin" / "peaknet-gui", "--install-desktop-entry"], cwd=work, env=bad, check=False)
    assert proc.returncode == 2 and "not-a-folder" in proc.stderr and "Traceback" not in proc.stderr


# --- in this process (the checkout or editable install) -------------------------------------------------


def test_checkout_reads_its_own_resources(monkeypatch):
    monkeypatch.delenv("PEAKNET_WEIGHTS", raising=False)
    if Path(peaknet_gui.__file__).resolve().parent != REPO / "peaknet_gui":
        pytest.skip("peaknet_gui is not imported from this checkout")
    assert default_weights_path() == REPO / "resources" / "peaknet.safetensors"
    assert shipped_file(ICON_NAME) == REPO / "icons" / ICON_NAME
    assert not (REPO / "peaknet_gui" / "resources").exists()  # resources/ is the one copy in the tree


def test_desktop_entry_files_and_quoting(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    paths = install_desktop_entry(env, command=["/opt/peak net/bin/python", "-m", "peaknet_gui"])
    assert paths == target_paths(env)
    text = paths.entry.read_text()
    assert text.startswith("[Desktop Entry]\n")
    assert 'Exec="/opt/peak net/bin/python" -m peaknet_gui %F\n' in text
    assert "TryExec=/opt/peak net/bin/python\n" in text
    assert "Categories=Science;" in text and "Type=Application\n" in text
    assert not [p for p in paths.entry.parent.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert set(remove_desktop_entry(env)) == {paths.entry, paths.icon}
    # reserved characters quoted, "$" escaped (then the backslash itself), "%" doubled
    line = next(ln for ln in entry_text(["/a b/$x", "50%"], Path("/i.svg")).splitlines() if ln.startswith("Exec="))
    assert line == 'Exec="/a b/\\\\$x" 50%% %F'
    # relative XDG_DATA_HOME is ignored (the specification): the default applies
    assert target_paths({"XDG_DATA_HOME": "rel"}).entry == Path.home() / ".local/share/applications/peaknet-gui.desktop"


def test_desktop_entry_failure_names_the_file(tmp_path):
    (tmp_path / "data").write_text("a file, not a folder")
    with pytest.raises(ExportError, match="data.*cannot install the desktop entry|cannot install the desktop entry.*data"):
        install_desktop_entry({"XDG_DATA_HOME": str(tmp_path / "data")})
