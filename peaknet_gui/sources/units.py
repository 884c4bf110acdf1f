"""Unit conversion for values read from file headers (metres, eV, Angstrom)."""

from __future__ import annotations

from typing import Optional

HC_EV_A = 12398.419843320026  # h*c in eV*Angstrom
J_PER_EV = 1.602176634e-19

_LENGTH = {
    "m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0,
    "cm": 1e-2, "mm": 1e-3, "millimeter": 1e-3, "millimetre": 1e-3, "millimeters": 1e-3,
    "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "microns": 1e-6, "micrometer": 1e-6,
    "nm": 1e-9, "a": 1e-10, "angstrom": 1e-10, "angstroms": 1e-10, "å": 1e-10, "ang": 1e-10,
}
_ENERGY = {"ev": 1.0, "kev": 1e3, "mev": 1e6, "j": 1.0 / J_PER_EV}
_PIXEL = ("pixel", "pixels", "px", "pix")


def norm_unit(units) -> Optional[str]:
    if units is None:
        return None
    if isinstance(units, bytes):
        units = units.decode(errors="replace")
    u = str(units).strip().lower()
    return u or None


def is_pixel_unit(units) -> bool:
    return norm_unit(units) in _PIXEL


def length_to_m(value: float, units) -> Optional[float]:
    """Length in metres; ``None`` when the unit is not a length unit we know."""
    u = norm_unit(units)
    if u is None:
        return None
    f = _LENGTH.get(u)
    return None if f is None else float(value) * f


def energy_to_ev(value: float, units) -> Optional[float]:
    u = norm_unit(units)
    if u is None:
        return None
    f = _ENERGY.get(u)
    return None if f is None else float(value) * f


def wavelength_to_ev(value: float, units) -> Optional[float]:
    """Photon energy (eV) of a wavelength given in ``units`` (Angstrom when ``units`` is None)."""
    u = norm_unit(units)
    metres = float(value) * 1e-10 if u is None else length_to_m(value, u)
    if metres is None or metres <= 0:
        return None
    return HC_EV_A / (metres * 1e10)


def guess_distance_m(value: float) -> tuple:
    """(metres, unit guessed) for a detector distance written without units."""
    v = float(value)
    return (v * 1e-3, "mm") if abs(v) > 20 else (v, "m")


def guess_pixel_size_m(value: float) -> tuple:
    """(metres, unit guessed) for a pixel size written without units (m, mm or um by magnitude)."""
    v = float(value)
    if v >= 5:
        return v * 1e-6, "um"
    if v > 2e-3:
        return v * 1e-3, "mm"
    return v, "m"
