"""Decision threshold and unsure band, chosen on the validation split (never the test split)."""
from __future__ import annotations

import numpy as np

UNSURE_HALF_WIDTH = 0.15


def false_positive_rate(y: np.ndarray, p: np.ndarray, threshold: float, mask: np.ndarray) -> float:
    """Share of human images (y == 0) within `mask` that score at or above `threshold`."""
    humans = (y == 0) & mask
    return float((p[humans] >= threshold).mean()) if humans.any() else 0.0


def choose_threshold(y: np.ndarray, p: np.ndarray, framings: list[str], max_fpr: float = 0.02) -> dict:
    """Lowest threshold (>= 0.5) whose human false-positive rate is <= `max_fpr` in every framing.

    Human face crops and human full illustrations are held to the limit separately, so the many crops
    cannot hide errors on the few full illustrations. The lowest such threshold keeps AI recall highest.
    The unsure band is threshold +- 0.15 (clipped to [0.01, 0.99]).
    """
    framings = np.array(framings)
    cells = sorted(set(framings[y == 0]))
    threshold = 0.5
    for t in np.unique(np.concatenate([[0.5], p[p > 0.5]])):
        threshold = float(t)
        if all(false_positive_rate(y, p, t, framings == c) <= max_fpr for c in cells):
            break
    else:
        threshold = float(np.nextafter(p.max(), 1.0))
    band = [max(0.01, threshold - UNSURE_HALF_WIDTH), min(0.99, threshold + UNSURE_HALF_WIDTH)]
    decided = (p < band[0]) | (p >= band[1])
    return {
        "threshold": threshold, "unsure_band": band, "chosen_on": "val", "views": "tta-mean",
        "rule": f"lowest threshold >= 0.5 with human FPR <= {max_fpr:.0%} in each framing ({', '.join(cells)})",
        "val_fpr": {c: false_positive_rate(y, p, threshold, framings == c) for c in cells},
        "val_ai_recall": float((p[y == 1] >= threshold).mean()) if (y == 1).any() else None,
        "val_share_unsure": float(1 - decided.mean()),
    }
