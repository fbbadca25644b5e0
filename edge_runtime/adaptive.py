"""Adaptive TTA: run the primary view; run the remaining views only when its P(ai) is near the threshold.

The escalation band [low, high] is chosen on held-out per-view predictions by `choose_band` (numpy only,
called by whoever writes a model's sidecar) and stored there as `escalation_band`. A sidecar without one
gets `default_band`: the unsure band widened `DEFAULT_WIDENING` times around the threshold.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MODES = ("adaptive", "always", "never")
DEFAULT_MODE = "adaptive"
# Sidecars without `escalation_band`: twice the unsure band's distance from the threshold on each side. On the
# v1 model's test split this escalates 4.3% of the images and agrees with always-TTA on all of them
# (benchmarks/adaptive_tta.py).
DEFAULT_WIDENING = 2.0
MIN_AGREEMENT = 0.995


def tta_mode(value) -> str:
    """'adaptive', 'always' or 'never' from a mode name or the older booleans (True = always, False = never)."""
    if value is True or value is False:
        return "always" if value else "never"
    if isinstance(value, str) and value.strip().lower() in MODES:
        return value.strip().lower()
    raise ValueError(f"tta must be one of {', '.join(MODES)} (or a bool), got {value!r}")


def default_band(threshold: float, unsure_band: Sequence[float],
                 widening: float = DEFAULT_WIDENING) -> tuple[float, float]:
    """The unsure band widened `widening` times around the threshold, within [0, 1]."""
    low, high = unsure_band
    return (max(0.0, threshold - widening * (threshold - low)), min(1.0, threshold + widening * (high - threshold)))


def escalates(primary, band: Sequence[float]):
    """True where the primary view's P is strictly inside the band (works on floats and arrays)."""
    return (band[0] < primary) & (primary < band[1])


def labels(probability: np.ndarray, threshold: float, unsure_band: Sequence[float]) -> np.ndarray:
    """Vectorised `detector.decide`: 'unsure' strictly inside the band, else 'ai' / 'human' by the threshold."""
    probability = np.asarray(probability, dtype=np.float64)
    verdict = np.where(probability >= threshold, "ai", "human")
    return np.where((unsure_band[0] < probability) & (probability < unsure_band[1]), "unsure", verdict)


def adaptive_probabilities(view_probabilities: np.ndarray, band: Sequence[float]) -> np.ndarray:
    """P per image under adaptive TTA: the mean of all views where the primary (column 0) escalates, else it."""
    view_probabilities = np.asarray(view_probabilities, dtype=np.float64)
    primary = view_probabilities[:, 0]
    return np.where(escalates(primary, band), view_probabilities.mean(axis=1), primary)


def agreement(view_probabilities: np.ndarray, band: Sequence[float], threshold: float,
              unsure_band: Sequence[float]) -> tuple[float, float]:
    """(share of images whose adaptive label equals always-TTA's, share escalated) for one band."""
    view_probabilities = np.asarray(view_probabilities, dtype=np.float64)
    always = labels(view_probabilities.mean(axis=1), threshold, unsure_band)
    adaptive = labels(adaptive_probabilities(view_probabilities, band), threshold, unsure_band)
    return float(np.mean(always == adaptive)), float(np.mean(escalates(view_probabilities[:, 0], band)))


def choose_band(view_probabilities: np.ndarray, threshold: float, unsure_band: Sequence[float],
                min_agreement: float = MIN_AGREEMENT) -> tuple[float, float]:
    """The escalation band that escalates the fewest images while adaptive labels equal always-TTA's on at
    least `min_agreement` of them.

    `view_probabilities` is (images, views) of held-out P(ai), column 0 the primary view. Only images whose
    primary label differs from the all-view label can disagree, and only when left outside the band; the
    band covers the ones nearest the threshold and leaves at most the allowed number of the farthest out.
    Each edge lies halfway between the last image it must cover and the next held-out P beyond it.
    """
    view_probabilities = np.asarray(view_probabilities, dtype=np.float64)
    if view_probabilities.ndim != 2 or len(view_probabilities) == 0:
        raise ValueError("view_probabilities must be a non-empty (images, views) array")
    primary = view_probabilities[:, 0]
    differs = labels(primary, threshold, unsure_band) != labels(view_probabilities.mean(axis=1), threshold,
                                                                 unsure_band)
    below = np.sort(primary[differs & (primary < threshold)])[::-1]  # nearest the threshold first
    above = np.sort(primary[differs & (primary >= threshold)])
    allowed = int(np.floor((1.0 - min_agreement) * len(primary) + 1e-9))
    best = None
    for covered_below in range(max(0, len(below) - allowed), len(below) + 1):
        covered_above = max(0, len(above) - (allowed - (len(below) - covered_below)))
        low = _edge(primary, below[covered_below - 1], -1) if covered_below else threshold
        high = _edge(primary, above[covered_above - 1], +1) if covered_above else threshold
        cost = int(np.sum(escalates(primary, (low, high))))
        if best is None or cost < best[0]:
            best = (cost, (low, high))
    return best[1]


def _edge(primary: np.ndarray, covered: float, direction: int) -> float:
    """A band edge just beyond `covered`: halfway to the next held-out P in `direction` (or to 0 / 1)."""
    beyond = primary[primary < covered] if direction < 0 else primary[primary > covered]
    limit = (beyond.max() if len(beyond) else 0.0) if direction < 0 else (beyond.min() if len(beyond) else 1.0)
    return float((covered + limit) / 2)
