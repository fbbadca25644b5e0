"""Adaptive TTA against always-TTA and no TTA on the model's test split: escalated share, agreement, accuracy.

    python benchmarks/adaptive_tta.py [--model M] [--split docs/model/test_split.csv]

Runs every view of every test image once (always-TTA), then replays the three modes from those per-view
P(ai): 'never' is the primary view, 'adaptive' the primary view unless it falls inside the escalation band.
Two bands: the Detector's (sidecar `escalation_band`, else the widened unsure band) and the one
`adaptive.choose_band` picks. The chosen band is also scored out of fold: chosen on one half of the images
(split by file hash), scored on the other, both ways.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_runtime import Detector, adaptive  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def view_probabilities(detector: Detector, paths: list[Path]) -> np.ndarray:
    """(images, views) P(ai) of every view, all views in one invoke per image."""
    return np.array([[result.view_probabilities[v] for v in detector.views]
                     for result in detector.check_many(paths, tta="always")])


def scores(probabilities: np.ndarray, truth: np.ndarray, band, detector: Detector) -> dict:
    """Escalated share, agreement with always-TTA, and accuracy (unsure counts as wrong) of each mode."""
    agree, escalated = adaptive.agreement(probabilities, band, detector.threshold, detector.unsure_band)
    modes = {"always": probabilities.mean(axis=1), "adaptive": adaptive.adaptive_probabilities(probabilities, band),
             "never": probabilities[:, 0]}
    accuracy = {mode: float(np.mean(adaptive.labels(p, detector.threshold, detector.unsure_band) == truth))
                for mode, p in modes.items()}
    return {"escalated": escalated, "agreement": agree, **{f"accuracy {m}": a for m, a in accuracy.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a .tflite path or bundled model name (default: the bundled model)")
    parser.add_argument("--split", default=str(REPO / "docs" / "model" / "test_split.csv"))
    args = parser.parse_args(argv)

    detector = Detector(args.model)
    with open(args.split, newline="") as f:
        rows = [row for row in csv.DictReader(f) if (DATA / row["path"]).is_file()]
    paths = [DATA / row["path"] for row in rows]
    truth = np.array([row["label"] for row in rows])
    probabilities = view_probabilities(detector, paths)
    chosen = adaptive.choose_band(probabilities, detector.threshold, detector.unsure_band)
    half = np.array([int(Path(row["path"]).stem[:2], 16) % 2 for row in rows], dtype=bool)
    out_of_fold = {True: adaptive.choose_band(probabilities[~half], detector.threshold, detector.unsure_band),
                   False: adaptive.choose_band(probabilities[half], detector.threshold, detector.unsure_band)}
    oof_adaptive = np.where(half, *(adaptive.adaptive_probabilities(probabilities, out_of_fold[h])
                                    for h in (True, False)))
    oof_escalated = np.where(half, *(adaptive.escalates(probabilities[:, 0], out_of_fold[h]) for h in (True, False)))
    oof_labels = adaptive.labels(oof_adaptive, detector.threshold, detector.unsure_band)
    always_labels = adaptive.labels(probabilities.mean(axis=1), detector.threshold, detector.unsure_band)

    print(f"Adaptive TTA on {len(paths)} test images ({args.split}), model {detector.info()['model_file']} "
          f"({detector.info()['variant']}), views {', '.join(detector.views)}, threshold {detector.threshold:.3f}, "
          f"unsure band {detector.unsure_band[0]:.3f}-{detector.unsure_band[1]:.3f}\n")
    print("| band | escalated | label agreement with always-TTA | accuracy always | accuracy adaptive | "
          "accuracy never |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    never = (detector.threshold, detector.threshold)  # an empty band: no image escalates
    bands = (("never (primary view only)", never), ("Detector's (sidecar or default)", detector.escalation_band),
             ("choose_band, in-sample", chosen))
    for name, band in bands:
        s = scores(probabilities, truth, band, detector)
        print(f"| {name} {band[0]:.3f}-{band[1]:.3f} | {s['escalated']:.1%} | {s['agreement']:.2%} | "
              f"{s['accuracy always']:.2%} | {s['accuracy adaptive']:.2%} | {s['accuracy never']:.2%} |")
    print(f"| choose_band, out of fold (2 halves: {out_of_fold[True][0]:.3f}-{out_of_fold[True][1]:.3f}, "
          f"{out_of_fold[False][0]:.3f}-{out_of_fold[False][1]:.3f}) | {np.mean(oof_escalated):.1%} | "
          f"{np.mean(oof_labels == always_labels):.2%} | | {np.mean(oof_labels == truth):.2%} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
