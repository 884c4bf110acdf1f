"""The built-in demo run: simulated serial-crystallography frames, generated once and cached.

``demo_run_path()`` returns the cached CXI file, generating it on first use with the project's
simulator (:func:`peaknet_gui.sim.demo.make_demo_run`) under
``$PEAKNET_DEMO_DIR`` or ``$XDG_CACHE_HOME/peaknet_gui/demo`` (``~/.cache/...``).  Generation
happens in a private temporary directory that is renamed into place, so two processes starting
at once never see a half-written run (the loser of the race discards its copy).  Until the
simulator exists a small stand-in run (Poisson background and Gaussian spots) is generated
instead, in its own cache folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from ..errors import InputError

log = logging.getLogger(__name__)

DEMO_FRAMES = 24
DEMO_SEED = 2024  # the simulator's own default
DEMO_VERSION = 2  # bumped when the simulator draws the demo differently (2: CCD point spread once)
DEMO_FILE = "demo.cxi"


def demo_cache_dir() -> Path:
    env = os.environ.get("PEAKNET_DEMO_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "peaknet_gui" / "demo"


def _simulator():
    try:
        from ..sim.demo import make_demo_run
    except ImportError:
        return None
    return make_demo_run


def _find_run(folder: Path) -> Optional[Path]:
    if not folder.is_dir():
        return None
    p = folder / DEMO_FILE
    if p.is_file():
        return p
    found = sorted(list(folder.glob("*.cxi")) + list(folder.glob("*.h5")))
    return found[0] if found else None


def demo_run_path(frames: int = DEMO_FRAMES, seed: int = DEMO_SEED, progress=None) -> Path:
    """Path of the cached demo run (generated on first use; ``progress(done, total)`` after each
    frame generated, when the simulator takes it)."""
    make = _simulator()
    kind = "sim" if make is not None else "standin"
    root = demo_cache_dir()
    final = root / f"{kind}-v{DEMO_VERSION}-n{frames}-s{seed}"
    found = _find_run(final)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError as e:
        raise InputError(f"{root}: cannot create the demo run cache ({e.strerror or e})") from e
    try:
        out = tmp / DEMO_FILE
        log.info("generating the demo run (%d frames) in %s", frames, final)
        if make is not None:
            import inspect

            extra = {"progress": progress} if progress is not None and "progress" in inspect.signature(make).parameters else {}
            made = make(out, frames=frames, seed=seed, **extra)
            if made is not None and Path(made).parent != tmp and Path(made).exists():
                shutil.move(str(made), str(out))
        else:
            _make_standin_run(out, frames=frames, seed=seed)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is for every user of the machine
        try:
            os.rename(tmp, final)
        except OSError:
            if _find_run(final) is None:  # not a lost race: a real problem
                raise
    except OSError as e:
        raise InputError(f"{final}: cannot write the demo run ({e.strerror or e})") from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    found = _find_run(final)
    if found is None:
        raise InputError(f"{final}: the demo run generator wrote no .cxi file")
    return found


def open_demo_run(**kwargs):
    """The demo run opened as a run source (with the simulator's geometry when it wrote one)."""
    from .detect import open_run

    path = demo_run_path(**kwargs)
    geom = path.with_suffix(".geom")
    geometry = None
    if geom.is_file():
        from ..geometry.crystfel_geom import read_geom

        geometry = read_geom(geom)
    return open_run(str(path), geometry=geometry)


def _make_standin_run(out: Path, frames: int, seed: int) -> None:
    """A small CXI run (CONTRACTS layout) with Gaussian spots on a Poisson background."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (256, 256)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    with h5py.File(out, "w") as f:
        ds = f.create_dataset("/entry_1/data_1/data", shape=(frames,) + shape, dtype=np.float32,
                              chunks=(1,) + shape, compression="gzip", compression_opts=1)
        for i in range(frames):
            img = np.full(shape, 20.0)
            for _ in range(rng.integers(5, 40)):
                cy, cx = rng.uniform(8, shape[0] - 8), rng.uniform(8, shape[1] - 8)
                img += rng.uniform(100, 2000) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.0**2))
            ds[i] = rng.poisson(img).astype(np.float32)
        det = "/entry_1/instrument_1/detector_1"
        f["/entry_1/instrument_1/source_1/photon_energy_eV"] = np.full(frames, 9500.0)
        f["/entry_1/instrument_1/source_1/energy"] = np.full(frames, 9500.0 * 1.602176634e-19)
        f[f"{det}/distance"] = np.full(frames, 0.1)
        f[f"{det}/x_pixel_size"] = 100e-6
        f[f"{det}/y_pixel_size"] = 100e-6
        for axis, v in (("x", 127.5), ("y", 127.5)):
            d = f.create_dataset(f"{det}/beam_center_{axis}", data=np.full(frames, v))
            d.attrs["convention"] = "pixel index; centre of first pixel at 0"
