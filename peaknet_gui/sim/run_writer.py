"""Write simulated frames as a CXI run (CONTRACTS "CXI run layout") plus a CrystFEL ``.geom``.

Layout, N frames::

    /cxi_version                                       150
    /entry_1/data_1/data      (N, ss, fs) detector dtype, one frame per chunk, gzip 1 + shuffle
    /entry_1/data_1/labels    (N, ss, fs) uint8  0 bg, 1 peak, 2 artifact, 255 unlabelled
    /entry_1/data_1/mask      (N, ss, fs) uint8  1 = bad pixel (gaps, dead, flagged hot)
    /entry_1/result_1/nPeaks  (N,) int32
    /entry_1/result_1/peakXPosRaw, peakYPosRaw, peakTotalIntensity, peakNPixels, peakMaximumValue,
                      peakSNR, peakPhotons, peakXPosTrue, peakYPosTrue   (N, MAXPEAKS) float32
    /entry_1/result_1/peakH, peakK, peakL, peakPanel, peakLattice        (N, MAXPEAKS) int32
    /entry_1/instrument_1/source_1/energy (J), photon_energy_eV (eV)    (N,)
    /entry_1/instrument_1/detector_1/distance (m) (N,), x_pixel_size, y_pixel_size (m),
                      beam_center_x, beam_center_y (N,) pixel indices (attribute ``convention``)
    /entry_1/sim/parameters   (N,) JSON of each frame's :class:`~.params.FrameParams`
    /entry_1/sim/kind         (N,) "hit" | "blank" | "rings" | "calibrant"
    /entry_1/sim/nMarginal, marginalXPosRaw, marginalYPosRaw   label-255 spots
    /entry_1/sim/nFaint, faintXPosRaw, faintYPosRaw   label-0 true reflections of expected SNR >=
                      LabelRule.faint_snr (2): real but below the label threshold (evaluation only)
    /entry_1/sim  attributes: detector, seed, label_rule, personality, n_reflections...

Peak positions are raw pixel indices (fs, ss) of the 2-D slab (centre of the first pixel at 0),
``peakXPosRaw/peakYPosRaw`` the centroids of the labelled spots, ``peak*PosTrue`` where the
diffracted rays meet the detector.  Intensities are expected, background-free values in
detector units (ADU; photons for counting detectors).  The file is written to a temporary name
and renamed on :meth:`CxiRunWriter.close`; the ``.geom`` (same stem) is written at close too.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ExportError
from ..export.atomic import make_readable
from .detectors import DetectorModel
from .frame import SimFrame

MAXPEAKS = 2048
EV_TO_J = 1.602176634e-19
BEAM_CENTER_CONVENTION = "pixel index; centre of first pixel at 0"
CLASSES = "0 background, 1 peak, 2 artifact, 255 unlabelled"
_FLOAT_PEAKS = {
    "peakXPosRaw": "fs", "peakYPosRaw": "ss", "peakTotalIntensity": "intensity", "peakNPixels": "npix",
    "peakMaximumValue": "max_value", "peakSNR": "snr", "peakPhotons": "photons",
    "peakXPosTrue": "fs_true", "peakYPosTrue": "ss_true",
}
_INT_PEAKS = {"peakPanel": "panel", "peakLattice": "lattice"}


def _h5():
    import h5py

    try:
        import hdf5plugin  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    return h5py


class CxiRunWriter:
    """Append :class:`~.frame.SimFrame` objects; :meth:`close` finalises the file atomically.

    Use as a context manager: an exception leaves no output (the temporary file is removed)."""

    def __init__(self, path, detector: DetectorModel, n_frames: int, *, seed: Optional[int] = None,
                 attrs: Optional[dict] = None, compression: int = 1):
        self.path = Path(path)
        self.detector = detector
        self.n = int(n_frames)
        self.i = 0
        self.maxpeaks = MAXPEAKS
        self.maxmarg = 256
        self.maxfaint = 256
        self._closed = False
        h5py = _h5()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.close(fd)
        except OSError as e:
            raise ExportError(f"{self.path}: cannot write here ({e.strerror or e})") from e
        self.tmp = Path(tmp)
        try:
            self.f = h5py.File(self.tmp, "w")
            self._create(detector, compression, seed, attrs or {})
        except BaseException:
            self.abort()
            raise

    # --- layout -------------------------------------------------------------------------------
    def _create(self, det: DetectorModel, compression: int, seed, attrs: dict) -> None:
        f, n = self.f, self.n
        ss, fs = det.shape
        f.create_dataset("cxi_version", data=150)
        comp = dict(compression="gzip", compression_opts=compression, shuffle=True)
        d = f.create_dataset("entry_1/data_1/data", shape=(n, ss, fs), dtype=det.dtype, chunks=(1, ss, fs), **comp)
        d.attrs["detector"] = det.name
        lab = f.create_dataset("entry_1/data_1/labels", shape=(n, ss, fs), dtype="u1", chunks=(1, ss, fs), **comp)
        lab.attrs["classes"] = CLASSES
        m = f.create_dataset("entry_1/data_1/mask", shape=(n, ss, fs), dtype="u1", chunks=(1, ss, fs), **comp)
        m.attrs["meaning"] = "1 = bad pixel (CrystFEL mask_bad = 0x1)"
        r = f.require_group("entry_1/result_1")
        r.create_dataset("nPeaks", shape=(n,), dtype="i4")
        for name in list(_FLOAT_PEAKS) + list(_INT_PEAKS) + ["peakH", "peakK", "peakL"]:
            dt = "f4" if name in _FLOAT_PEAKS else "i4"
            r.create_dataset(name, shape=(n, self.maxpeaks), maxshape=(n, None), dtype=dt,
                             chunks=(1, self.maxpeaks), compression="gzip", compression_opts=1)
        src = f.require_group("entry_1/instrument_1/source_1")
        src.create_dataset("energy", shape=(n,), dtype="f8").attrs["units"] = "J"
        src.create_dataset("photon_energy_eV", shape=(n,), dtype="f8").attrs["units"] = "eV"
        dg = f.require_group("entry_1/instrument_1/detector_1")
        dg.create_dataset("distance", shape=(n,), dtype="f8").attrs["units"] = "m"
        dg.create_dataset("x_pixel_size", data=det.pixel_size_m).attrs["units"] = "m"
        dg.create_dataset("y_pixel_size", data=det.pixel_size_m).attrs["units"] = "m"
        for k in ("beam_center_x", "beam_center_y"):
            ds = dg.create_dataset(k, shape=(n,), dtype="f8")
            ds.attrs["convention"] = BEAM_CENTER_CONVENTION
            ds.attrs["units"] = "pixel"
        dg.create_dataset("description", data=det.description or det.name)
        sim = f.require_group("entry_1/sim")
        st = _h5().string_dtype()
        sim.create_dataset("parameters", shape=(n,), dtype=st)
        sim.create_dataset("personality", shape=(n,), dtype=st)
        sim.create_dataset("kind", shape=(n,), dtype=st)
        sim.create_dataset("nReflections", shape=(n,), dtype="i4")
        sim.create_dataset("nMarginal", shape=(n,), dtype="i4")
        sim.create_dataset("nFaint", shape=(n,), dtype="i4")
        for k, width in (("marginalXPosRaw", self.maxmarg), ("marginalYPosRaw", self.maxmarg),
                         ("faintXPosRaw", self.maxfaint), ("faintYPosRaw", self.maxfaint)):
            sim.create_dataset(k, shape=(n, width), maxshape=(n, None), dtype="f4", chunks=(1, width),
                               compression="gzip", compression_opts=1)
        sim.attrs["detector"] = det.name
        sim.attrs["detector_kind"] = det.kind
        if seed is not None:
            sim.attrs["seed"] = int(seed)
        for k, v in attrs.items():
            sim.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)

    def _widen(self, group: str, names, need: int, current: int) -> int:
        new = max(need, int(current * 1.5))
        for name in names:
            self.f[f"{group}/{name}"].resize((self.n, new))
        return new

    def _write_positions(self, i: int, kind: str, fs: np.ndarray, ss: np.ndarray, width: int) -> int:
        """Frame ``i``'s ``/entry_1/sim/n<Kind>``, ``<kind>XPosRaw``, ``<kind>YPosRaw``; returns the
        (possibly widened) row width."""
        names = [f"{kind}XPosRaw", f"{kind}YPosRaw"]
        n = len(fs)
        if n > width:
            width = self._widen("entry_1/sim", names, n, width)
        for name, vals in zip(names, (fs, ss)):
            row = np.zeros(width, np.float32)
            row[:n] = vals
            self.f[f"entry_1/sim/{name}"][i] = row
        self.f[f"entry_1/sim/n{kind[0].upper()}{kind[1:]}"][i] = n
        return width

    # --- frames ---------------------------------------------------------------------------------
    def add(self, frame: SimFrame) -> None:
        if self.i >= self.n:
            raise ExportError(f"{self.path}: more frames than the {self.n} announced")
        f, i = self.f, self.i
        f["entry_1/data_1/data"][i] = frame.data
        f["entry_1/data_1/labels"][i] = frame.labels
        f["entry_1/data_1/mask"][i] = frame.bad.astype(np.uint8)
        pk = frame.peaks
        npk = len(pk)
        r = "entry_1/result_1"
        if npk > self.maxpeaks:
            self.maxpeaks = self._widen(r, list(_FLOAT_PEAKS) + list(_INT_PEAKS) + ["peakH", "peakK", "peakL"],
                                        npk, self.maxpeaks)
        f[f"{r}/nPeaks"][i] = npk
        for name, attr in _FLOAT_PEAKS.items():
            row = np.zeros(self.maxpeaks, np.float32)
            row[:npk] = getattr(pk, attr)
            f[f"{r}/{name}"][i] = row
        for name, attr in _INT_PEAKS.items():
            row = np.zeros(self.maxpeaks, np.int32)
            row[:npk] = getattr(pk, attr)
            f[f"{r}/{name}"][i] = row
        for c, name in enumerate(("peakH", "peakK", "peakL")):
            row = np.zeros(self.maxpeaks, np.int32)
            row[:npk] = pk.hkl[:, c] if npk else []
            f[f"{r}/{name}"][i] = row
        self.maxmarg = self._write_positions(i, "marginal", frame.marginal_fs, frame.marginal_ss, self.maxmarg)
        self.maxfaint = self._write_positions(i, "faint", frame.faint_fs, frame.faint_ss, self.maxfaint)
        e = frame.photon_energy_ev
        f["entry_1/instrument_1/source_1/photon_energy_eV"][i] = e
        f["entry_1/instrument_1/source_1/energy"][i] = e * EV_TO_J
        geom = frame.detector.geometry
        f["entry_1/instrument_1/detector_1/distance"][i] = geom.mean_camera_length()
        bc = geom.beam_center(0)
        f["entry_1/instrument_1/detector_1/beam_center_x"][i] = bc[0]
        f["entry_1/instrument_1/detector_1/beam_center_y"][i] = bc[1]
        f["entry_1/sim/parameters"][i] = frame.params.to_json()
        f["entry_1/sim/personality"][i] = json.dumps(frame.personality.as_dict())
        f["entry_1/sim/kind"][i] = frame.kind
        f["entry_1/sim/nReflections"][i] = frame.n_reflections
        self.i += 1

    # --- closing --------------------------------------------------------------------------------
    def close(self) -> Path:
        """Trim to the frames added, rename into place and write the ``.geom`` beside it."""
        if self._closed:
            return self.path
        try:
            if self.i < self.n:
                self._trim(self.i)
            self.f.close()
            make_readable(self.tmp)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        write_run_geom(self.detector, self.path.with_suffix(".geom"))
        return self.path

    def _trim(self, n: int) -> None:
        # the datasets have a fixed first dimension: copy the frames written to a new file
        h5py = _h5()
        self.f.close()
        old = self.tmp
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        with h5py.File(old, "r") as src, h5py.File(tmp, "w") as dst:
            def copy(name, obj):
                if isinstance(obj, h5py.Group):
                    g = dst.require_group(name)
                    g.attrs.update(obj.attrs)
                    return
                if obj.shape and obj.shape[0] == self.n:
                    kw = {}
                    if obj.chunks:
                        kw = dict(chunks=obj.chunks, compression=obj.compression,
                                  compression_opts=obj.compression_opts, shuffle=obj.shuffle)
                    ds = dst.create_dataset(name, data=obj[:n], **kw) if n else dst.create_dataset(
                        name, shape=(0,) + obj.shape[1:], dtype=obj.dtype, **({"chunks": obj.chunks} if obj.chunks else {}))
                else:
                    ds = dst.create_dataset(name, data=obj[()])
                ds.attrs.update(obj.attrs)
            dst.attrs.update(src.attrs)
            src.visititems(copy)
        with contextlib.suppress(OSError):
            old.unlink()
        self.tmp = Path(tmp)
        self.f = h5py.File(self.tmp, "r+")

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and self.i > 0:  # Ctrl-C, SIGTERM
            self.close()  # keep the frames done: a valid, shorter run
        else:
            self.abort()
        return False


def run_geometry(detector: DetectorModel):
    """The run's CrystFEL geometry: the detector's panels reading ``/entry_1/data_1/data``
    (``dim0 = %``), the per-frame mask, the CXI peak list, photon energy, camera length, ADU
    per photon and saturation."""
    from ..export.geom_export import cxi_geometry

    g = detector.geometry.copy()
    g.comments = [f"peaknet simulate: {detector.description or detector.name}"]
    geom = cxi_geometry(g, photon_energy_ev=detector.photon_energy_ev, clen=detector.geometry.clen)
    for p in geom.panels:
        if p.adu_per_photon is None and p.adu_per_ev is None:
            p.adu_per_photon = detector.extra.get("adu_per_photon", 1.0)
        p.max_adu = detector.saturation_adu
    return geom


def write_run_geom(detector: DetectorModel, path) -> None:
    from ..geometry.crystfel_geom import write_geom

    write_geom(run_geometry(detector), path)
