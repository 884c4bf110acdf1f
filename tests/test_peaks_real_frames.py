"""The classical finder and the component extraction on real detector frames, scored against
the DIALS spot lists shipped with them (skips when ../shared/data/real is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

from peaknet_gui.geometry import Geometry
from peaknet_gui.peaks.components import peaks_from_mask
from peaknet_gui.peaks.peakfinder8 import Peakfinder8Settings, peakfinder8

pytestmark = pytest.mark.real


def dials_spots(path, columns=(1, 2)):
    """DIALS spot centres converted to pixel indices (DIALS puts pixel (0,0)'s centre at 0.5)."""
    ref = np.loadtxt(path, delimiter=",", skiprows=1, usecols=columns, ndmin=2)
    return ref - 0.5


def score(peaks, ref, radius=2.0):
    if len(peaks) == 0 or len(ref) == 0:
        return 0.0, 0.0
    d = np.hypot(peaks.fs[:, None] - ref[None, :, 0], peaks.ss[:, None] - ref[None, :, 1])
    return float((d.min(axis=1) < radius).mean()), float((d.min(axis=0) < radius).mean())


def pilatus_frame(name):
    import fabio

    img = fabio.open(str(real_file(f"thaumatin_grid/thau_3_2_{name}.cbf.bz2"))).data.astype(np.float32)
    geom = Geometry.single_panel(img.shape, 172e-6, 0.351, 1261.61, 1306.96, photon_energy_ev=12398.42 / 0.96859)
    return img, img < 0, geom


def test_peakfinder8_on_a_pilatus_hit_agrees_with_dials():
    img, bad, geom = pilatus_frame("0001")
    peaks = peakfinder8(img, bad=bad, geometry=geom)
    precision, recall = score(peaks, dials_spots(real_file("thaumatin_grid/thau_3_2_0001.cbf.spots.csv")))
    assert recall > 0.9 and precision > 0.6, (precision, recall)
    assert np.isfinite(peaks.resolution).all() and (peaks.resolution < 1.0).all()  # d > 1 Angstrom


def test_peakfinder8_on_a_pilatus_blank_finds_almost_nothing():
    img, bad, geom = pilatus_frame("0016")
    assert len(peakfinder8(img, bad=bad, geometry=geom)) < 20


def test_peakfinder8_on_a_multi_panel_cspad_slab():
    import h5py

    from peaknet_gui.geometry.crystfel_geom import read_geom

    geom = read_geom(real_file("thermolysin_cspad/cspad_rawlayout_from_dxtbx.geom"))
    with h5py.File(real_file("thermolysin_cspad/idx-20130301060858401_rawlayout.h5"), "r") as f:
        img = f["/data/data"][()].astype(np.float32)
    peaks = peakfinder8(img, geometry=geom, settings=Peakfinder8Settings(adc_threshold=100))
    ref = dials_spots(real_file("thermolysin_cspad/idx-20130301060858401.cbf.spots.csv"), columns=(9, 10))
    _, recall = score(peaks, ref)
    assert recall > 0.95
    # every peak lies on the panel it is reported on
    for i, p in enumerate(geom.panels):
        sel = peaks.panel == i
        assert p.contains(peaks.fs[sel], peaks.ss[sel]).all()


def test_components_of_a_thresholded_real_frame_match_dials():
    # the network's job in miniature: a crude peak mask (counts well above the local level) ->
    # components -> centroids that land on the DIALS spots
    from scipy import ndimage

    img, bad, geom = pilatus_frame("0001")
    level = ndimage.uniform_filter(np.where(bad, 0, img), 15)
    mask = (img > level + 6 * np.sqrt(np.maximum(level, 1))) & ~bad
    peaks = peaks_from_mask(img, mask, bad=bad, geometry=geom, min_pixels=2)
    precision, recall = score(peaks, dials_spots(real_file("thaumatin_grid/thau_3_2_0001.cbf.spots.csv")))
    assert recall > 0.8 and precision > 0.5, (precision, recall)
    assert (peaks.snr > 0).all() and (peaks.intensity > 0).all()
