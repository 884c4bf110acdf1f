"""Detector geometry model (Qt-free), after CrystFEL's geometry file semantics.

A :class:`Geometry` is a list of :class:`Panel` objects.  Each panel is a rectangle
``[min_ss..max_ss] x [min_fs..max_fs]`` (inclusive, like CrystFEL) of the frame's 2-D data
array, placed in the laboratory frame by ``corner_x``/``corner_y`` (pixels, position of the
*corner* of the panel's first pixel -- CrystFEL's definition), the ``fs``/``ss`` unit vectors and
the distance ``clen + coffset`` (metres).

Inside the program positions are pixel indices (centre of the first pixel at 0, 0).  The lab
position of the centre of data pixel ``(fs, ss)`` of panel ``p`` is therefore::

    r = corner + (fs - min_fs + 0.5) * fs_vec + (ss - min_ss + 0.5) * ss_vec      (pixels)

The half pixel here is the only place where CrystFEL's corner convention touches the model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import GeometryError

HC_EV_A = 12398.419843320026  # h*c in eV*Angstrom


@dataclass
class Panel:
    name: str
    min_fs: int
    max_fs: int
    min_ss: int
    max_ss: int
    corner_x: float = 0.0
    corner_y: float = 0.0
    fs: tuple = (1.0, 0.0, 0.0)  # unit vector of +fs in the lab (x, y, z), pixels
    ss: tuple = (0.0, 1.0, 0.0)
    res: float = 1.0 / 172e-6  # pixels per metre
    clen: Optional[float] = None  # metres; None when it comes from the file (clen_path)
    clen_path: Optional[str] = None
    coffset: float = 0.0
    adu_per_photon: Optional[float] = None
    adu_per_ev: Optional[float] = None
    max_adu: Optional[float] = None
    data: Optional[str] = None  # HDF5 dataset path of this panel's data
    dims: Optional[list] = None  # CrystFEL dim structure, e.g. ["%", "ss", "fs"]
    mask: Optional[str] = None
    mask_file: Optional[str] = None
    mask_good: Optional[int] = None
    mask_bad: Optional[int] = None
    no_index: bool = False
    extra: dict = field(default_factory=dict)  # keys we keep but do not interpret (str or list of str)

    # --- shape -------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.max_fs - self.min_fs + 1

    @property
    def height(self) -> int:
        return self.max_ss - self.min_ss + 1

    @property
    def pixel_size(self) -> float:
        return 1.0 / self.res

    def slices(self) -> tuple:
        """Slices that cut this panel out of the frame's 2-D data array."""
        return (slice(self.min_ss, self.max_ss + 1), slice(self.min_fs, self.max_fs + 1))

    def contains(self, fs, ss):
        fs = np.asarray(fs)
        ss = np.asarray(ss)
        return (fs >= self.min_fs - 0.5) & (fs < self.max_fs + 0.5) & (ss >= self.min_ss - 0.5) & (ss < self.max_ss + 0.5)

    def distance(self, default_clen: Optional[float] = None) -> float:
        clen = self.clen if self.clen is not None else default_clen
        if clen is None:
            raise GeometryError(f"panel {self.name}: camera length (clen) is unknown")
        return clen + self.coffset

    # --- positions -----------------------------------------------------------------------------
    def lab_xyz(self, fs, ss, clen: Optional[float] = None):
        """Lab coordinates in metres of data-array positions (pixel-index convention)."""
        fs = np.asarray(fs, dtype=np.float64)
        ss = np.asarray(ss, dtype=np.float64)
        u = fs - self.min_fs + 0.5
        v = ss - self.min_ss + 0.5
        fx, fy, fz = self.fs
        sx, sy, sz = self.ss
        x = (self.corner_x + u * fx + v * sx) / self.res
        y = (self.corner_y + u * fy + v * sy) / self.res
        z = self.distance(clen) + (u * fz + v * sz) / self.res
        return x, y, z

    def fs_ss_from_lab(self, x_px, y_px):
        """Invert the in-plane mapping: lab (x, y) in pixels -> (fs, ss) data-array indices."""
        m = np.array([[self.fs[0], self.ss[0]], [self.fs[1], self.ss[1]]], dtype=np.float64)
        det = np.linalg.det(m)
        if abs(det) < 1e-12:
            raise GeometryError(f"panel {self.name}: fs and ss vectors are parallel")
        inv = np.linalg.inv(m)
        dx = np.asarray(x_px, dtype=np.float64) - self.corner_x
        dy = np.asarray(y_px, dtype=np.float64) - self.corner_y
        u = inv[0, 0] * dx + inv[0, 1] * dy
        v = inv[1, 0] * dx + inv[1, 1] * dy
        return u + self.min_fs - 0.5, v + self.min_ss - 0.5


@dataclass
class BadRegion:
    """A CrystFEL ``bad_*`` region: either lab-frame x/y (pixels) or panel fs/ss (inclusive)."""

    name: str
    min_x: Optional[float] = None
    max_x: Optional[float] = None
    min_y: Optional[float] = None
    max_y: Optional[float] = None
    min_fs: Optional[int] = None
    max_fs: Optional[int] = None
    min_ss: Optional[int] = None
    max_ss: Optional[int] = None
    panel: Optional[str] = None
    extra: dict = field(default_factory=dict)  # keys we keep but do not interpret

    @property
    def is_xy(self) -> bool:
        return self.min_x is not None


@dataclass
class Geometry:
    """A detector: panels plus the beam's photon energy (when the geometry knows it).

    ``photon_energy_ev`` is ``None`` when it comes from the data file (``photon_energy_path``)
    or from the run's metadata.  ``globals`` keeps the top-level keys of a ``.geom`` file in
    their original text for writing back (``data``, ``dim*``, ``mask*``, ``peak_list``...);
    ``rigid_groups`` and ``unknown_lines`` keep what we do not interpret.

    Panel-level keys in ``globals`` (``data``, ``dim0``, ``mask``, ``res``...) are defaults for
    every panel whose own field is ``None`` (see :meth:`panel_setting`), exactly as a top-level
    line before the panel definitions acts in a CrystFEL file.  ``clen``/``clen_path`` and
    ``photon_energy_ev``/``photon_energy_path`` are the typed, authoritative top-level values.
    """

    panels: list
    photon_energy_ev: Optional[float] = None
    photon_energy_path: Optional[str] = None
    bandwidth: Optional[float] = None
    clen: Optional[float] = None  # default camera length (m) for panels without their own
    bad_regions: list = field(default_factory=list)
    globals: dict = field(default_factory=dict)
    rigid_groups: dict = field(default_factory=dict)
    rigid_group_collections: dict = field(default_factory=dict)
    unknown_lines: list = field(default_factory=list)
    source: Optional[str] = None  # file it was read from, for messages
    clen_path: Optional[str] = None  # camera length read per frame from this data-file path
    photon_energy_scale: Optional[float] = None  # CrystFEL <= 0.10: factor on photon_energy_path values
    panel_groups: dict = field(default_factory=dict)  # CrystFEL 0.11+ ``group_NAME = a,b`` hierarchy
    comments: list = field(default_factory=list)  # comment lines before the first statement

    def __post_init__(self):
        if not self.panels:
            raise GeometryError(f"{self.source or 'geometry'}: no panels defined")

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def single_panel(
        cls,
        shape: tuple,
        pixel_size_m: float,
        distance_m: float,
        beam_center_fs: float,
        beam_center_ss: float,
        photon_energy_ev: Optional[float] = None,
        name: str = "p0",
        adu_per_photon: Optional[float] = None,
        max_adu: Optional[float] = None,
    ) -> "Geometry":
        """A flat detector perpendicular to the beam; beam centre in pixel indices."""
        ss_n, fs_n = int(shape[-2]), int(shape[-1])
        panel = Panel(
            name=name,
            min_fs=0,
            max_fs=fs_n - 1,
            min_ss=0,
            max_ss=ss_n - 1,
            corner_x=-(beam_center_fs + 0.5),
            corner_y=-(beam_center_ss + 0.5),
            res=1.0 / pixel_size_m,
            clen=distance_m,
            adu_per_photon=adu_per_photon,
            max_adu=max_adu,
        )
        return cls(panels=[panel], photon_energy_ev=photon_energy_ev, clen=distance_m)

    def panel_setting(self, panel, key: str):
        """Text/number of a panel-level setting, falling back to ``globals[key]``.

        ``key`` is a CrystFEL panel key (``data``, ``mask``, ``mask_file``, ``mask_good``,
        ``mask_bad``, ``dim0``...).  Returns ``None`` when neither the panel nor the globals set it.
        """
        p = panel if isinstance(panel, Panel) else self.panels[panel]
        attr = {"adu_per_eV": "adu_per_ev"}.get(key, key)
        if key.startswith("dim") and key[3:].isdigit():
            i = int(key[3:])
            if p.dims is not None and i < len(p.dims) and p.dims[i] is not None:
                return p.dims[i]
        elif hasattr(p, attr) and attr not in ("fs", "ss", "extra", "name"):
            v = getattr(p, attr)
            if v is not None:
                return v
        elif key in p.extra:
            return p.extra[key]
        return self.globals.get(key)

    def copy(self) -> "Geometry":
        return copy.deepcopy(self)

    def with_values(self, clen: Optional[float] = None, photon_energy_ev: Optional[float] = None) -> "Geometry":
        """A copy with the per-frame values filled in: ``clen`` (metres) where the geometry reads it
        from a data-file path (``clen_path``), ``photon_energy_ev`` where it reads the energy from
        one (``photon_energy_path``; pass the value already multiplied by ``photon_energy_scale``)."""
        g = self.copy()
        if clen is not None:
            g.clen, g.clen_path = float(clen), None
            for p in g.panels:
                p.clen_path = None
        if photon_energy_ev is not None:
            g.photon_energy_ev, g.photon_energy_path = float(photon_energy_ev), None
        return g

    def _check_clen(self) -> None:
        if self.clen is None and any(p.clen is None for p in self.panels):
            path = self.clen_path or next((p.clen_path for p in self.panels if p.clen_path), None)
            where = f" (it is read per frame from {path}: use with_values(clen=...))" if path else ""
            raise GeometryError(f"{self.source or 'geometry'}: camera length (clen) is unknown{where}")

    # --- queries -----------------------------------------------------------------------------------
    @property
    def data_shape(self) -> tuple:
        """Smallest (ss, fs) array shape that holds every panel."""
        return (max(p.max_ss for p in self.panels) + 1, max(p.max_fs for p in self.panels) + 1)

    def panel_index(self, name: str) -> int:
        for i, p in enumerate(self.panels):
            if p.name == name:
                return i
        raise GeometryError(f"{self.source or 'geometry'}: no panel named {name!r}")

    def panel_at(self, fs, ss) -> np.ndarray:
        """Index of the panel holding each data position (pixel-index coords), -1 for none."""
        fs = np.asarray(fs, dtype=np.float64)
        ss = np.asarray(ss, dtype=np.float64)
        out = np.full(np.broadcast(fs, ss).shape, -1, dtype=np.int32)
        for i, p in enumerate(self.panels):
            inside = p.contains(fs, ss) & (out < 0)
            out[inside] = i
        return out

    def check_data_shape(self, shape: tuple, what: str = "data") -> None:
        need = self.data_shape
        if len(shape) < 2 or shape[-2] < need[0] or shape[-1] < need[1]:
            raise GeometryError(
                f"{self.source or 'geometry'}: panels need a frame of at least {need[0]}x{need[1]} "
                f"(ss x fs) but {what} is {'x'.join(map(str, shape))}"
            )

    def wavelength_a(self, photon_energy_ev: Optional[float] = None) -> float:
        e = photon_energy_ev if photon_energy_ev is not None else self.photon_energy_ev
        if not e or e <= 0:
            raise GeometryError(f"{self.source or 'geometry'}: photon energy is unknown")
        return HC_EV_A / e

    def lab_xyz(self, fs, ss):
        """Lab coordinates (m) of data positions in pixel-index coordinates; NaN outside panels."""
        self._check_clen()
        fs = np.asarray(fs, dtype=np.float64)
        ss = np.asarray(ss, dtype=np.float64)
        idx = self.panel_at(fs, ss)
        x = np.full(idx.shape, np.nan)
        y = np.full(idx.shape, np.nan)
        z = np.full(idx.shape, np.nan)
        for i, p in enumerate(self.panels):
            sel = idx == i
            if np.any(sel):
                x[sel], y[sel], z[sel] = p.lab_xyz(fs[sel], ss[sel], self.clen)
        return x, y, z

    def resolution(self, fs, ss, photon_energy_ev: Optional[float] = None):
        """1/d in inverse Angstrom at data positions (pixel-index coordinates)."""
        x, y, z = self.lab_xyz(fs, ss)
        twotheta = np.arctan2(np.hypot(x, y), z)
        return 2.0 * np.sin(twotheta / 2.0) / self.wavelength_a(photon_energy_ev)

    def beam_center(self, panel: int = 0) -> tuple:
        """Data-array position (fs, ss) where the direct beam meets panel ``panel``'s plane."""
        p = self.panels[panel]
        return tuple(float(v) for v in p.fs_ss_from_lab(0.0, 0.0))

    def mean_camera_length(self) -> float:
        return float(np.mean([p.distance(self.clen) for p in self.panels]))
