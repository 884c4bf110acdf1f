"""FrameAnalyzer: frames in, peaks + auto-mask + hit decision out (the GUI's and CLI's engine).

Two algorithms:

* ``"peaknet"``: the model's class probabilities (:class:`~peaknet_gui.inference.Predictor`,
  batched, GPU when present) -> peak mask (argmax or peak-probability threshold) -> connected
  components -> filters; the artifact probability -> auto-mask.  The probabilities are kept in
  the result (float16) so :meth:`FrameAnalyzer.rethreshold` can apply new thresholds at once,
  without the model.
* ``"peakfinder8"``: the classical finder, for comparison; the auto-mask is then only the static
  mask and the detector's bad pixels.

Peaks crowding on one scattering angle (the spots of an ice or salt powder ring,
:mod:`peaknet_gui.peaks.rings`) leave the peak list for the auto-mask (``ring_spots``), and a
powder ring the network or those spots reveal is masked along all of its visible arc
(``MaskSettings.whole_rings``, :mod:`peaknet_gui.masks.powder_rings`).  Pixels in
the frame's auto-mask (artifacts, static mask, gaps) never belong to a peak, so the peaks agree
with the mask that is exported for CrystFEL.  Hot and dead pixels that the run's own statistics
reveal (:mod:`peaknet_gui.masks.hot_pixels`; every frame analysed is counted once) are unusable
pixels like gaps: the model never sees them, they are never peaks and always in the auto-mask.
Timings per stage (ms) are in
``FrameResult.timings_ms``: ``normalise``, ``model``, ``postprocess`` (the run loop adds
``read`` and ``export``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import GeometryError, InputError
from ..frame import Frame
from ..geometry import Geometry
from ..inference.device import cpu_threads
from ..masks.automask import artifact_mask_from_probabilities, dilate, frame_mask
from ..masks.hot_pixels import HotPixelTracker
from ..masks.powder_rings import mask_powder_rings
from ..peaks.components import peaks_from_mask
from ..peaks.detmaps import geometry_fingerprint, detector_maps
from ..peaks.filters import filter_peaks, is_hit, peak_mask_from_probabilities
from ..peaks.gain_check import check_frame_gain
from ..peaks.peakfinder8 import Peakfinder8Settings, peakfinder8
from .result import FrameResult
from .settings import FinderSettings, MaskSettings

log = logging.getLogger(__name__)

ALGORITHMS = ("peaknet", "peakfinder8")


class FrameAnalyzer:
    """Analyse frames with PeakNet or peakfinder8 (see the module docstring).

    ``geometry`` None: each frame's geometry comes from its metadata when the file says enough
    (pixel size, distance, beam centre), else peaks have no panel/resolution.  ``static_mask``
    (bool, True = masked) is added to every frame's auto-mask when ``mask.include_static``.
    ``predictor`` shares an existing :class:`~peaknet_gui.inference.Predictor`; ``model`` /
    ``normalizer`` / ``backend`` are passed to a new one.  The model is loaded on first use.
    ``algorithm`` None takes ``finder.algorithm`` (default ``"peaknet"``).  ``hot_pixels``: True
    (default) follows the run's hot and dead pixels with a new
    :class:`~peaknet_gui.masks.hot_pixels.HotPixelTracker`, a tracker shares one, False: off
    (:meth:`reset_hot_pixels` when the run changes).
    """

    def __init__(
        self,
        algorithm: Optional[str] = None,
        weights=None,
        device: str = "auto",
        geometry: Optional[Geometry] = None,
        finder: Optional[FinderSettings] = None,
        mask: Optional[MaskSettings] = None,
        static_mask: Optional[np.ndarray] = None,
        *,
        backend: str = "auto",
        predictor=None,
        model=None,
        normalizer=None,
        hot_pixels=True,
    ):
        self.finder = finder if finder is not None else FinderSettings()
        self.mask = mask if mask is not None else MaskSettings()
        self.algorithm = algorithm or self.finder.algorithm
        self.geometry = geometry
        self.static_mask = None if static_mask is None else np.asarray(static_mask, dtype=bool)
        self._weights = weights
        self._device = device
        self._backend = backend
        self._model = model
        self._normalizer = normalizer
        self._predictor = predictor
        self._lock = threading.Lock()
        self._geom_cache: "OrderedDict[tuple, Optional[Geometry]]" = OrderedDict()
        self._gain_warned: set = set()  # geometries whose untrusted gain the log has reported
        if hot_pixels is True:
            hot_pixels = HotPixelTracker()
        self.hot_pixels: Optional[HotPixelTracker] = hot_pixels or None

    def reset_hot_pixels(self) -> None:
        """Forget the run's hot-pixel statistics (a new run)."""
        if self.hot_pixels is not None:
            self.hot_pixels = HotPixelTracker(self.hot_pixels.settings)

    def mark_run_bad(self, frame: Frame) -> Optional[np.ndarray]:
        """Count ``frame`` in the run's hot-pixel statistics and set its ``run_bad`` (once per
        frame object); returns it."""
        if frame.run_bad_checked or self.hot_pixels is None:
            return frame.run_bad
        tracker = self.hot_pixels
        tracker.update(frame.data, frame.bad, key=frame.event)
        frame.run_bad = tracker.mask_for(frame.data, frame.bad)
        frame.run_bad_checked = True
        return frame.run_bad

    # --- configuration --------------------------------------------------------------------------
    @property
    def algorithm(self) -> str:
        return self._algorithm

    @algorithm.setter
    def algorithm(self, name: str) -> None:
        name = (name or "").strip().lower()
        if name not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {name!r}: choose one of {', '.join(ALGORITHMS)}")
        self._algorithm = name
        self.finder.algorithm = name

    @property
    def predictor(self):
        """The model host (created, and the weights loaded, on first access)."""
        with self._lock:
            if self._predictor is None:
                from ..inference.predictor import Predictor

                self._predictor = Predictor(
                    self._weights, device=self._device, backend=self._backend, model=self._model, normalizer=self._normalizer
                )
            return self._predictor

    @property
    def model_loaded(self) -> bool:
        return self._predictor is not None

    @property
    def device_name(self) -> str:
        if self.algorithm == "peakfinder8" and self._predictor is None:
            return "cpu (numpy)"
        return self.predictor.device_name

    @property
    def model_info(self) -> dict:
        if self.algorithm == "peakfinder8" and self._predictor is None:
            return {"algorithm": "peakfinder8"}
        info = dict(self.predictor.model_info)
        info["algorithm"] = self.algorithm
        info["device"] = self.predictor.device_name
        return info

    @property
    def default_batch_size(self) -> int:
        if self.algorithm == "peaknet" and self._predictor is not None and self._predictor.on_gpu:
            return 8
        return 1

    # --- geometry per frame ---------------------------------------------------------------------
    def geometry_for(self, frame: Frame) -> Optional[Geometry]:
        """The analyzer's geometry, with the camera length from the frame's metadata when the
        geometry reads it per frame; without a geometry, one built from the frame's metadata."""
        md = frame.metadata
        g = self.geometry
        gkey = None if g is None else (id(g), geometry_fingerprint(g), g.clen, g.photon_energy_ev, tuple(p.clen for p in g.panels))
        key = (gkey, frame.shape, md.pixel_size_m, md.detector_distance_m, md.beam_center_fs, md.beam_center_ss, md.photon_energy_ev)
        with self._lock:
            if key in self._geom_cache:
                return self._geom_cache[key]
        geom = self.geometry
        if geom is None:
            try:
                from ..geometry.from_metadata import geometry_from_metadata

                geom = geometry_from_metadata(md, frame.shape, source=frame.event.path)
            except GeometryError:
                geom = None
        elif md.detector_distance_m and geom.clen is None and any(p.clen is None for p in geom.panels):
            geom = geom.copy()
            geom.clen = float(md.detector_distance_m)
        with self._lock:
            self._geom_cache[key] = geom
            while len(self._geom_cache) > 32:
                self._geom_cache.popitem(last=False)
        return geom

    @staticmethod
    def _energy(frame: Frame, geom: Optional[Geometry]) -> Optional[float]:
        if geom is not None and geom.photon_energy_ev:
            return geom.photon_energy_ev
        return frame.metadata.photon_energy_ev

    def _static_for(self, frame: Frame) -> Optional[np.ndarray]:
        if self.static_mask is None:
            return None
        if self.static_mask.shape != frame.shape:
            raise InputError(
                f"{frame.event.lst_line()}: the static mask has shape {self.static_mask.shape}, the frame {frame.shape}"
            )
        return self.static_mask

    # --- analysis ---------------------------------------------------------------------------------
    def prepare(self, frame: Frame):
        """Work that may run in a prefetch thread (normalisation, tiling); None for peakfinder8."""
        if self.algorithm != "peaknet":
            return None
        self.mark_run_bad(frame)
        return self.predictor.prepare(frame.data, frame.unusable, self.geometry_for(frame))

    def analyze(self, frames: Sequence[Frame], prepared: Optional[Sequence] = None) -> list:
        """Analyse a batch of frames (one model call per batch on the GPU)."""
        frames = list(frames)
        if not frames:
            return []
        if self.algorithm == "peakfinder8":
            return [self._classical(f, self.finder, self.mask) for f in frames]
        pred = self.predictor
        if prepared is None or any(p is None for p in prepared):
            prepared = [self.prepare(f) for f in frames]
        thresholds = None
        if pred.on_gpu:
            from ..inference.predictor import DeviceThresholds

            thresholds = DeviceThresholds(self.peak_threshold(), self.mask.artifact_threshold)
        maps = pred.run(prepared, thresholds)

        def post(pair):
            frame, cm = pair
            res = self._from_probabilities(
                frame, cm.peak_prob, cm.artifact_prob, self.finder, self.mask, peak_mask=cm.peak_mask, artifact_mask=cm.artifact_mask
            )
            res.timings_ms = {**cm.timings_ms, **res.timings_ms}
            return res

        workers = min(len(frames), cpu_threads(), 8) if pred.on_gpu else 1
        if workers > 1:
            # a GPU outruns one CPU core's post-processing: spread a batch over the cores
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="peaknet-post") as pool:
                return list(pool.map(post, zip(frames, maps)))
        return [post(pair) for pair in zip(frames, maps)]

    def analyze_one(self, frame: Frame) -> FrameResult:
        return self.analyze([frame])[0]

    def rethreshold(
        self,
        result: FrameResult,
        frame: Frame,
        finder: Optional[FinderSettings] = None,
        mask: Optional[MaskSettings] = None,
    ) -> FrameResult:
        """New peaks/mask/hit for changed thresholds from the cached probabilities (no model run).

        For a peakfinder8 result the classical finder runs again (it is cheap).  The result's
        ``algorithm`` is kept; model timings are carried over, ``postprocess`` is new.
        """
        finder = finder if finder is not None else self.finder
        mask = mask if mask is not None else self.mask
        if result.peak_prob is None or result.algorithm == "peakfinder8":
            new = self._classical(frame, finder, mask)
        else:
            new = self._from_probabilities(frame, result.peak_prob, result.artifact_prob, finder, mask)
        kept = {k: v for k, v in result.timings_ms.items() if k in ("read", "normalise", "model")}
        new.timings_ms = {**kept, "postprocess": new.timings_ms.get("postprocess", 0.0)}
        new.device = result.device
        return new

    def min_confidence(self, finder: Optional[FinderSettings] = None, op=None) -> float:
        """The confidence a peak needs: the settings' value, else the operating point ``op`` (default:
        the loaded weights')."""
        return self._operating_value(finder, "min_confidence", "peak_min_confidence", op)

    def min_pixel_snr(self, finder: Optional[FinderSettings] = None, op=None) -> float:
        """The pixel SNR a peak needs: the settings' value, else the operating point ``op`` (default:
        the loaded weights')."""
        return self._operating_value(finder, "min_pixel_snr", "peak_min_pixel_snr", op)

    def confident_tier(self, finder: Optional[FinderSettings] = None, op=None):
        """The operating point's second tier (:class:`~peaknet_gui.peaks.filters.ConfidentTier`) of
        ``op`` (default: the loaded weights'), or None: when it has none, or when the settings give
        their own minimum confidence or pixel SNR (the user's rule alone decides then)."""
        f = finder if finder is not None else self.finder
        if f.min_confidence is not None or f.min_pixel_snr is not None:
            return None
        if op is None:
            op = getattr(self._predictor, "operating_point", None) if self._predictor is not None else None
        return None if op is None else op.confident_tier

    def pixel_snr_photon_floor(self, op=None) -> bool:
        """Whether the pixel SNR is taken against at least one photon (the operating point ``op``,
        default the loaded weights', says; :func:`~peaknet_gui.peaks.components.peaks_from_mask`)."""
        if op is not None:
            return bool(op.pixel_snr_photon_floor)
        return bool(getattr(self._predictor, "peak_pixel_snr_photon_floor", False)) if self._predictor is not None else False

    def peak_threshold(self, finder: Optional[FinderSettings] = None, op=None) -> Optional[float]:
        """Peak pixels' probability threshold: the settings' value, else the operating point ``op``
        (default: the loaded weights'); None: argmax (the peak class wins)."""
        value = (finder if finder is not None else self.finder).peak_threshold
        if value is not None:
            return float(value)
        if op is not None:
            return op.segmentation_threshold
        return getattr(self._predictor, "peak_threshold", None) if self._predictor is not None else None

    def _operating_value(self, finder: Optional[FinderSettings], setting: str, fitted: str, op=None) -> float:
        value = getattr(finder if finder is not None else self.finder, setting)
        if value is not None:
            return float(value)
        if op is not None:
            return float(getattr(op, fitted))
        return getattr(self._predictor, fitted) if self._predictor is not None else 0.0

    def operating_point_for(self, frame: Frame, geom: Optional[Geometry], maps=None):
        """(operating point, :class:`~peaknet_gui.peaks.gain_check.GainCheck` or None) for this
        frame: the weights' point, or its fallback where the frame's background contradicts the gain
        its geometry states (:mod:`peaknet_gui.peaks.gain_check`); None, None without weights.  The
        first frame of a geometry whose gain is not trusted is reported once in the log.  ``maps``:
        the geometry's :func:`~peaknet_gui.peaks.detmaps.detector_maps` when the caller has them."""
        op = getattr(self._predictor, "operating_point", None) if self._predictor is not None else None
        if op is None or op.when_gain_unreliable is None:
            return op, None
        if maps is None and geom is not None:
            maps = detector_maps(geom, frame.shape)
        check = check_frame_gain(frame.data, frame.bad, geom, maps, self._energy(frame, geom))
        if not check.reliable:
            key = geometry_fingerprint(geom) if geom is not None else None
            if key not in self._gain_warned:
                self._gain_warned.add(key)
                log.warning("%s", check.message(frame.event.path))
        return op.for_gain(check.reliable), check

    @staticmethod
    def _auto_mask(artifact: np.ndarray, static: Optional[np.ndarray], bad: Optional[np.ndarray], mask: MaskSettings,
                   run_bad: Optional[np.ndarray] = None) -> np.ndarray:
        """Artifact pixels grown by the dilation, the run's hot and dead pixels, with the static
        mask and the frame's bad pixels when the settings include them."""
        auto = dilate(artifact, mask.dilation)
        if run_bad is not None:
            auto = auto | run_bad
        if mask.include_static and static is not None:
            auto = auto | static
        if mask.include_gaps and bad is not None:
            auto = auto | bad
        return auto

    # --- the two algorithms ------------------------------------------------------------------------
    def _from_probabilities(
        self,
        frame: Frame,
        peak_prob: np.ndarray,
        artifact_prob: np.ndarray,
        finder: FinderSettings,
        mask: MaskSettings,
        *,
        peak_mask: Optional[np.ndarray] = None,
        artifact_mask: Optional[np.ndarray] = None,
    ) -> FrameResult:
        t0 = time.perf_counter()
        if peak_prob.shape != frame.shape:
            raise InputError(f"{frame.event.lst_line()}: cached probabilities {peak_prob.shape} do not fit the frame {frame.shape}")
        geom = self.geometry_for(frame)
        static = self._static_for(frame)
        run_bad = self.mark_run_bad(frame)
        if artifact_mask is None:
            artifact_mask = artifact_mask_from_probabilities(artifact_prob, peak_prob, mask.artifact_threshold)
        auto = self._auto_mask(artifact_mask, static, frame.bad, mask, run_bad)
        maps = detector_maps(geom, frame.shape) if geom is not None else None
        op, gain = self.operating_point_for(frame, geom, maps)
        threshold = self.peak_threshold(finder, op)
        if gain is not None and not gain.reliable and threshold != self.peak_threshold(finder):
            peak_mask = None  # a mask made on the device at the weights' own threshold does not apply
        if peak_mask is None:
            peak_mask = peak_mask_from_probabilities(peak_prob, artifact_prob, threshold)
        # below the model's own decision a threshold joins neighbouring spots: split them at its cores
        cores = None if threshold is None else peak_mask_from_probabilities(peak_prob, artifact_prob, None)
        # pixels the user cannot use are never peak pixels, whatever the mask display settings
        exclude = auto
        if static is not None and not mask.include_static:
            exclude = exclude | static
        if frame.bad is not None and not mask.include_gaps:
            exclude = exclude | frame.bad
        peaks = peaks_from_mask(
            frame.data,
            peak_mask,
            bad=exclude,
            geometry=geom,
            photon_energy_ev=self._energy(frame, geom),
            min_pixels=finder.min_pixels,
            max_pixels=finder.max_pixels,
            maps=maps,
            score=peak_prob,
            min_score=self.min_confidence(finder, op),
            min_pixel_snr=self.min_pixel_snr(finder, op),
            photon_floor=self.pixel_snr_photon_floor(op),
            cores=cores,
            confident=self.confident_tier(finder, op),
        )
        unreadable = frame.unusable if static is None else (static if frame.unusable is None else frame.unusable | static)
        peaks, rings, discs, ring_art = mask_powder_rings(
            peaks, artifact_mask, frame.data, unreadable, geom, peak_pixels=peak_mask,
            drop_ring_spots=finder.drop_ring_spots, whole_rings=mask.whole_rings)
        if mask.whole_rings and geom is not None:
            auto = self._auto_mask(ring_art, static, frame.bad, mask, run_bad)
        if len(rings):
            auto = auto | discs
        peaks = filter_peaks(peaks, finder)
        return FrameResult(
            ring_spots=rings,
            hot_pixels=0 if run_bad is None else int(np.count_nonzero(run_bad)),
            gain_warning="" if gain is None or gain.reliable else gain.message(Path(frame.event.path).name, figures=False),
            serial=frame.serial,
            event=frame.event,
            peaks=peaks,
            hit=is_hit(peaks, finder.min_peaks_for_hit),
            artifact_mask=auto,
            peak_prob=peak_prob,
            artifact_prob=artifact_prob,
            algorithm="peaknet",
            device=self._predictor.device_name if self._predictor is not None else "cpu",
            timings_ms={"postprocess": 1e3 * (time.perf_counter() - t0)},
        )

    def _classical(self, frame: Frame, finder: FinderSettings, mask: MaskSettings) -> FrameResult:
        t0 = time.perf_counter()
        geom = self.geometry_for(frame)
        static = self._static_for(frame)
        run_bad = self.mark_run_bad(frame)
        auto = frame_mask(None, None, mask, static=static, frame_bad=frame.bad, shape=frame.shape)
        if run_bad is not None:
            auto |= run_bad
        unusable = auto.copy()
        if static is not None:
            unusable |= static
        if frame.bad is not None:
            unusable |= frame.bad
        settings = Peakfinder8Settings.from_finder(finder)
        peaks = peakfinder8(
            frame.data, bad=unusable, geometry=geom, settings=settings, photon_energy_ev=self._energy(frame, geom)
        )
        peaks, rings, _, ring_pixels = mask_powder_rings(
            peaks, None, frame.data, unusable, geom, drop_ring_spots=finder.drop_ring_spots, whole_rings=mask.whole_rings)
        if len(rings):
            auto = auto | ring_pixels
        peaks = filter_peaks(peaks, finder)
        return FrameResult(
            ring_spots=rings,
            hot_pixels=0 if run_bad is None else int(np.count_nonzero(run_bad)),
            serial=frame.serial,
            event=frame.event,
            peaks=peaks,
            hit=is_hit(peaks, finder.min_peaks_for_hit),
            artifact_mask=auto,
            algorithm="peakfinder8",
            device="cpu",
            timings_ms={"postprocess": 1e3 * (time.perf_counter() - t0)},
        )
