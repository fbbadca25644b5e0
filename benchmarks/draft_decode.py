"""What JPEG draft decoding (DCT-domain downscaling before the resize) costs in probability and saves in time.

    python benchmarks/draft_decode.py [--model M] [--count 60]

Dataset JPEGs are at most 768 px, where draft mode changes nothing (it only scales by 1/2, 1/4, 1/8 while
the image stays >= 448 px), so real images of both classes are re-saved as 1024 px and 2048 px JPEGs
(q90, Lanczos upscale) and classified with and without draft, with the 4-view TTA.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_runtime import Detector  # noqa: E402
from edge_runtime.detector import decide  # noqa: E402
from edge_runtime.preprocess import load_image, resize, tta_batch  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SIDES = (1024, 2048)


def sample(count: int) -> list[Path]:
    """`count` dataset images, half of each label, spread over the manifest."""
    with open(DATA / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for label in ("ai", "human"):
        of_label = [r for r in rows if r["label"] == label]
        step = max(1, len(of_label) // (count // 2))
        chosen += [DATA / r["path"] for r in of_label[::step][:count // 2]]
    return chosen


def classify(detector: Detector, path: Path, draft: bool) -> tuple[float, float, str]:
    """(P(ai) with TTA, decode+resize milliseconds, label)."""
    start = time.perf_counter()
    pixels = resize(load_image(path, draft=draft))
    decode_ms = (time.perf_counter() - start) * 1e3
    probability = float(np.mean(detector.predict(tta_batch(pixels))))
    return probability, decode_ms, decide(probability, detector.threshold, detector.unsure_band)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a .tflite path or bundled model name (default: the bundled model)")
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args(argv)

    detector = Detector(args.model)
    info = detector.info()
    print(f"Draft vs full JPEG decode, {args.count} real images re-saved as JPEG q90, model {info['model_file']} "
          f"({info['variant']}, {info['model_version']}), 4-view TTA\n")
    print("| JPEG side | mean abs dP | max abs dP | label changes | decode+resize ms, draft | full |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for side in SIDES:
            diffs, flips, fast, full = [], 0, [], []
            for i, source in enumerate(sample(args.count)):
                path = Path(tmp) / f"{i}-{side}.jpg"
                Image.open(source).convert("RGB").resize((side, side), Image.LANCZOS).save(path, quality=90)
                p_draft, ms_draft, label_draft = classify(detector, path, True)
                p_full, ms_full, label_full = classify(detector, path, False)
                diffs.append(abs(p_draft - p_full))
                flips += label_draft != label_full
                fast.append(ms_draft)
                full.append(ms_full)
            print(f"| {side} | {np.mean(diffs):.4f} | {np.max(diffs):.4f} | {flips}/{len(diffs)} | "
                  f"{np.median(fast):.1f} | {np.median(full):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
