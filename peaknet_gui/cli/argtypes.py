"""argparse types shared by the subcommands: a bad value is a usage error naming the option."""

from __future__ import annotations

import argparse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def confidence(text: str) -> float:
    """A peak's minimum confidence: a number in [0, 1)."""
    v = _number(text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"a confidence is in [0, 1), not {v}")
    return v


def probability(text: str) -> float:
    """A class-probability threshold: a number in [0, 1]."""
    v = _number(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability must be between 0 and 1, not {text}")
    return v


def count(text: str) -> int:
    """A count: a whole number >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {v}")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    v = count(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {v}")
    return v


def positive(text: str) -> float:
    """A finite number > 0 (a distance, an energy, a resolution)."""
    v = _number(text)
    if not (0.0 < v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text}")
    return v


def finite(text: str) -> float:
    """Any finite number."""
    v = _number(text)
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return v


def nonnegative(text: str) -> float:
    """A finite number >= 0."""
    v = finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return v


def pixel_snr(text: str) -> float:
    """A peak's minimum pixel SNR (local-background sigmas): a finite number >= 0."""
    v = _number(text)
    if not (0.0 <= v < float("inf")):
        raise argparse.ArgumentTypeError(f"a pixel SNR is a number >= 0, not {text}")
    return v
