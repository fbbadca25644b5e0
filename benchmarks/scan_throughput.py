"""Directory-scan throughput: images per second through `Detector.check_many`, as `python -m edge_runtime DIR` runs.

    python benchmarks/scan_throughput.py [--model M] [--count 400] [--threads 2]

Scans real dataset images (all sources, so the mix of 256px JPEG crops and 512-768px WebP/PNG/JPEG renders),
with the 4-view TTA and without, and prints images/s against the 150 images/s target.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_runtime import Detector  # noqa: E402

DATA = REPO.parent / "shared" / "data"
TARGET_IMAGES_PER_S = 150.0


def dataset_sample(count: int) -> list[Path]:
    """Every k-th manifest row, so all sources appear in their dataset proportions."""
    with open(DATA / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    step = max(1, len(rows) // count)
    return [DATA / r["path"] for r in rows[::step][:count]]


def scan(detector: Detector, paths: list[Path], tta: bool, workers: int) -> float:
    """Images per second for one pass over `paths`."""
    start = time.perf_counter()
    for outcome in detector.check_many(paths, tta=tta, workers=workers):
        if isinstance(outcome, Exception):
            raise outcome
    return len(paths) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a .tflite path or bundled model name (default: the bundled model)")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads")
    parser.add_argument("--workers", type=int, default=2, help="decode threads")
    args = parser.parse_args(argv)

    detector = Detector(args.model, threads=args.threads)
    paths = dataset_sample(args.count)
    scan(detector, paths[:20], True, args.workers)  # warm up both interpreters and the file cache
    scan(detector, paths[:20], False, args.workers)
    info = detector.info()
    print(f"Directory scan, {len(paths)} dataset images, model {info['model_file']} ({info['variant']}), "
          f"{args.threads} interpreter threads, {args.workers} decode threads, load average {os.getloadavg()[0]:.1f}\n")
    print("| mode | images/s | target | |")
    print("| --- | ---: | ---: | --- |")
    for tta in (True, False):
        rate = scan(detector, paths, tta, args.workers)
        print(f"| {'4-view TTA' if tta else 'no TTA'} | {rate:.0f} | {TARGET_IMAGES_PER_S:.0f} | "
              f"{'met' if rate >= TARGET_IMAGES_PER_S else 'MISSED'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
