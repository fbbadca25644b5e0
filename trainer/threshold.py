"""Decision threshold and unsure band, chosen on the validation split (never the test split)."""
from __future__ import annotations

import numpy as np

UNSURE_HALF_WIDTH = 0.15


def false_positive_rate(y: np.ndarray, p: np.ndarray, threshold: float, mask: np.ndarray) -> float:
    """Share of human images (y == 0) within `mask` that score at or above `threshold`."""
    humans = (y == 0) & mask
    return float((p[humans] >= threshold).mean()) if humans.any() else 0.0


def balanced_accuracy(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Mean of AI recall and human specificity at `threshold`."""
    return float(((p[y == 1] >= threshold).mean() + (p[y == 0] < threshold).mean()) / 2)


def choose_threshold(y: np.ndarray, p: np.ndarray, framings: list[str], max_fpr: float = 0.02) -> dict:
    """The threshold >= 0.5 with the best validation balanced accuracy whose human false-positive rate,
    averaged over framings (face crops, full illustrations), is at most `max_fpr`.

    Averaging per framing keeps the many face crops from hiding errors on the few full illustrations;
    the 0.5 floor keeps the model from being pushed towards 'ai' on human art it has never seen.
    The unsure band is threshold +- 0.15 (clipped to [0.01, 0.99]).
    """
    framings = np.array(framings)
    cells = sorted(set(framings[y == 0]))

    def human_fpr(t: float) -> float:
        return float(np.mean([false_positive_rate(y, p, t, framings == c) for c in cells]))

    candidates = [float(t) for t in np.unique(np.concatenate([[0.5], p[p >= 0.5], [np.nextafter(p.max(), 1.0)]]))]
    feasible = [t for t in candidates if human_fpr(t) <= max_fpr] or [candidates[-1]]
    threshold = max(feasible, key=lambda t: (balanced_accuracy(y, p, t), -t))
    band = [max(0.01, threshold - UNSURE_HALF_WIDTH), min(0.99, threshold + UNSURE_HALF_WIDTH)]
    decided = (p < band[0]) | (p >= band[1])
    return {
        "threshold": threshold, "unsure_band": band, "chosen_on": "val", "views": "tta-mean",
        "rule": f"best balanced accuracy at threshold >= 0.5 with mean human FPR over framings <= {max_fpr:.0%}",
        "val_balanced_accuracy": balanced_accuracy(y, p, threshold),
        "val_fpr": {c: false_positive_rate(y, p, threshold, framings == c) for c in cells},
        "val_ai_recall": float((p[y == 1] >= threshold).mean()) if (y == 1).any() else None,
        "val_share_unsure": float(1 - decided.mean()),
    }
