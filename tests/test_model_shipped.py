"""The shipped weights: present, checksum verified, small, and reproducing their recorded class map."""

import json

import pytest
import torch

from peaknet_gui.model import selfcheck
from peaknet_gui.model.weights import default_weights_path, load_weights, sidecar_path


def test_shipped_weights_load_and_match_checksum():
    path = default_weights_path()
    assert path.exists(), f"shipped weights missing: {path}"
    assert path.stat().st_size <= 20 * 1024 * 1024
    net, info = load_weights()
    assert info.verified
    side = json.loads(sidecar_path(path).read_text())
    assert side["sha256"] == info.sha256
    assert info.config.name == "fast"
    assert "metrics" in info.metadata and "reference_check" in info.metadata


def test_shipped_weights_reproduce_recorded_class_map():
    torch.set_num_threads(1)
    net, info = load_weights()
    record = info.metadata["reference_check"]
    # float rounding across CPUs may flip a pixel on a decision boundary, nothing more
    assert selfcheck.mismatch_fraction(net, record) <= 0.002
    classes = selfcheck.class_map(net)
    assert (classes == 1).any() and (classes == 2).any()  # the frame's spots and ring are found


def test_reference_frame_is_deterministic():
    a = selfcheck.reference_frame()
    b = selfcheck.reference_frame()
    assert a.shape == selfcheck.REFERENCE_SHAPE and (a == b).all()
    rec = selfcheck.encode((a > 5).astype("uint8"))
    assert (selfcheck.decode(rec) == (a > 5)).all()


def test_corrupted_copy_of_shipped_weights_is_refused(tmp_path):
    import shutil

    from peaknet_gui.errors import ModelError

    src = default_weights_path()
    if not src.exists():
        pytest.fail(f"shipped weights missing: {src}")
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    raw = bytearray(dst.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    dst.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_weights(dst)


def test_shipped_weights_carry_a_fitted_operating_point():
    from peaknet_gui.model.operating_point import OperatingPoint

    _, info = load_weights()
    op = OperatingPoint.from_metadata(info.metadata)
    assert 0.0 <= op.peak_min_confidence < 1.0 and op.peak_min_pixel_snr > 0.0
    assert any(n.endswith(".cxi") for n in op.fitted_on)  # simulated validation runs
    fit = info.metadata["operating_point"]["fit"]
    assert fit["chosen"]["threshold"] == op.peak_min_confidence
    assert fit["chosen"]["pixel_snr"] == op.peak_min_pixel_snr
    assert fit["chosen"]["mean_f1"] >= fit["argmax"]["mean_f1"]
    # no evaluation target was used to fit it
    assert not any(n.startswith("thau_3_2_") or "rawlayout" in n for n in op.fitted_on)


def test_shipped_point_has_a_second_tier_fitted_with_it():
    """Peaks the model is sure of pass at a lower pixel SNR; the fit kept the tier because it raised
    the validation F1 without a peak more on the worst blank frame (operating_point._fit_tier)."""
    from peaknet_gui.model.operating_point import OperatingPoint

    _, info = load_weights()
    op = OperatingPoint.from_metadata(info.metadata)
    tier = op.confident_tier
    assert tier is not None
    assert op.peak_min_confidence < tier.min_confidence < 1.0 and 0.0 <= tier.min_pixel_snr < op.peak_min_pixel_snr
    fit = info.metadata["operating_point"]["fit"]
    assert (fit["tier"]["min_confidence"], fit["tier"]["pixel_snr"]) == (tier.min_confidence, tier.min_pixel_snr)
    assert fit["tier"]["mean_f1"] > fit["chosen"]["mean_f1"]
    assert fit["tier"]["blank_peaks_max"] <= fit["chosen"]["blank_peaks_max"] <= 5


def test_shipped_weights_carry_a_point_for_an_unreliable_gain():
    """Fitted like the point, on validation runs whose geometry understates the gain, without the
    photon floor (peaks/gain_check.py decides per frame which one applies)."""
    from peaknet_gui.model.operating_point import OperatingPoint

    _, info = load_weights()
    op = OperatingPoint.from_metadata(info.metadata)
    fallback = op.when_gain_unreliable
    assert op.pixel_snr_photon_floor and fallback is not None and not fallback.pixel_snr_photon_floor
    assert fallback.fitted_on and all(n.endswith("_nogain.cxi") for n in fallback.fitted_on)
    fit = info.metadata["operating_point"]["when_gain_unreliable"]["fit"]
    assert fit["chosen"]["threshold"] == fallback.peak_min_confidence
    assert fit["chosen"]["pixel_snr"] == fallback.peak_min_pixel_snr
    assert fit["chosen"]["mean_f1"] >= fit["argmax"]["mean_f1"]
    assert not any(n.startswith("thau_3_2_") or "rawlayout" in n for n in fallback.fitted_on)
