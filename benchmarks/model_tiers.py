"""In-domain figures of bundled models through the runtime, per evaluation tier; prints one markdown table.

    python benchmarks/model_tiers.py                      # default and paper on data v3's seed-42 test split
    python benchmarks/model_tiers.py --models paper --tiers clean thumb

The test split is the trainer's (`trainer.data.split`, seed 42, groups never straddle splits), the tiers are
the leave-sources-out evaluation's (`trainer.augment`: the clean file; a thumbnail, long side 256 px; a
web-degraded copy, 50% and JPEG q70; a format-equalised copy, 75% and JPEG q90). Each image is judged with all
of the model's views averaged (`--tta always`) at the model's own threshold. A model trained on all of the data
(the default since v2) has seen the test images: its figures here are in-sample; `paper` trains on the train
split only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from converter.parity import classification_metrics  # noqa: E402
from edge_runtime import Detector  # noqa: E402
from edge_runtime.preprocess import load_image, view_batch  # noqa: E402
from trainer.augment import format_equalise, thumbnail, web_degrade  # noqa: E402
from trainer.data import load_dataset, split  # noqa: E402

TIERS = {"clean": lambda img: img, "thumb": thumbnail, "web": web_degrade, "equalised": format_equalise}


def tier_probabilities(detector: Detector, samples, tiers: list[str]) -> dict[str, np.ndarray]:
    """P(ai), the mean over the model's views, of every sample in every tier."""
    out = {tier: [] for tier in tiers}
    for sample in tqdm(samples, desc=detector.model_path.name, unit="img", file=sys.stderr):
        img = load_image(sample.path)
        for tier in tiers:
            out[tier].append(float(detector.predict(view_batch(TIERS[tier](img), detector.views)).mean()))
    return {tier: np.array(p) for tier, p in out.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--models", nargs="+", default=["default", "paper"], help="bundled names or .tflite paths")
    parser.add_argument("--tiers", nargs="+", choices=list(TIERS), default=list(TIERS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    test = split(load_dataset(args.data, verify=False).samples, 42)[0]["test"]
    y = np.array([s.label for s in test])
    print(f"{len(test)} test images ({int(y.sum())} AI, {int((1 - y).sum())} human), all views averaged\n")
    print("| model | tier | accuracy | balanced acc. | AUC | AI recall | human FPR |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        detector = Detector(name, threads=args.threads)
        label = f"{name} ({detector.metadata.get('model_version')}, {detector.metadata.get('variant')})"
        for tier, p in tier_probabilities(detector, test, args.tiers).items():
            m = classification_metrics(y, p, detector.threshold)
            balanced = (m["ai_recall"] + 1 - m["human_fpr"]) / 2
            print(f"| {label} | {tier} | {m['accuracy']:.2%} | {balanced:.2%} | {m['auc']:.4f} | "
                  f"{m['ai_recall']:.2%} | {m['human_fpr']:.2%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
