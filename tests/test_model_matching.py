"""Greedy one-to-one peak matching."""

import numpy as np

from peaknet_gui.peaks.matching import match_peaks


def test_greedy_one_to_one():
    ref = np.array([[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]])
    found = np.array([[10.5, 10.0], [11.0, 10.0], [20.0, 21.9], [50.0, 50.0]])
    m = match_peaks(found, ref, radius=2.0)
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    assert sorted(map(tuple, m.pairs.tolist())) == [(0, 0), (2, 1)]
    assert m.precision == 0.5 and m.recall == 2 / 3 and abs(m.f1 - 4 / 7) < 1e-12


def test_closest_pair_wins_and_radius_is_inclusive():
    ref = np.array([[0.0, 0.0], [3.0, 0.0]])
    found = np.array([[1.6, 0.0]])  # 1.6 from ref0, 1.4 from ref1
    m = match_peaks(found, ref, radius=2.0)
    assert m.pairs.tolist() == [[0, 1]]
    m = match_peaks(np.array([[2.0, 0.0]]), np.array([[0.0, 0.0]]), radius=2.0)
    assert m.tp == 1


def test_coincident_and_empty():
    m = match_peaks(np.array([[5.0, 5.0]]), np.array([[5.0, 5.0]]))
    assert m.tp == 1 and m.distances.tolist() == [0.0]
    m = match_peaks(np.zeros((0, 2)), np.array([[1.0, 1.0]]))
    assert (m.tp, m.fp, m.fn) == (0, 0, 1) and m.precision == 1.0 and m.recall == 0.0
    m = match_peaks([], [])
    assert m.f1 == 1.0


def test_scores_recall_by_spot_size_and_snr():
    from peaknet_gui.model.evaluate import Scores

    ref = np.array([[10.0, 10], [20, 20], [30, 30], [40, 40], [50, 50]])
    snr = np.array([7.0, 12, 25, 50, 5])
    npix = np.array([1, 1, 3, 12, 2])
    found = np.array([[10.4, 10], [30, 30.5], [40, 40], [90, 90]])  # misses the 2nd (1 px) and 5th (2 px)
    s = Scores()
    s.add_peaks(found, ref, snr, 2.0, "f", ref_npix=npix)
    d = s.summary()
    size, by_snr = d["recall_by_size"], d["recall_by_snr"]
    assert size["1 px"] == {"recall": 0.5, "peaks": 2}
    assert size["2 px"]["recall"] == 0.0 and size["3 px"]["recall"] == 1.0 and size[">=10 px"]["recall"] == 1.0
    assert size["4-9 px"]["peaks"] == 0
    assert by_snr["6-10"]["recall"] == 1.0 and by_snr["10-20"]["recall"] == 0.0 and by_snr["<6"]["peaks"] == 1
    assert by_snr["20-40"]["recall"] == 1.0 and by_snr[">=40"]["recall"] == 1.0
