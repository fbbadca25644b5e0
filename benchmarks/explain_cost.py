"""Cost of the explanation map (`Detector.explain`) and of reading provenance metadata, per image; prints a table.

    python benchmarks/explain_cost.py [--per-source 4] [--threads 2]

Images: the first N files of a few dataset sources of different formats and sizes. `explain` is timed end to end
(file on disk -> decode -> grid*grid windows -> batched invokes); `provenance.inspect` likewise.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_runtime import Detector, explain, provenance  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SOURCES = ("wfjsw-prompt-builder", "tsunamori-novelai", "frenzyexists-wallpapers-2021", "danbooru-facecrops")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-source", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with open(DATA / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    detector = Detector(threads=args.threads)
    detector.explain(DATA / rows[0]["path"])  # warm-up: allocates the batch interpreter once
    print(f"grid {explain.GRID}x{explain.GRID}, batch {explain.BATCH}, {args.threads} threads, "
          f"model {detector.info().get('model_version')} ({detector.info().get('variant')})\n")
    print("| source | size | explain ms p50 / max | check ms p50 | provenance ms p50 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for source in SOURCES:
        picked = [r for r in rows if r["source"] == source][:args.per_source]
        paths = [DATA / r["path"] for r in picked]
        explain_ms = [timed(lambda p=p: detector.explain(p)) for p in paths]
        check_ms = [timed(lambda p=p: detector.check(p)) for p in paths]
        inspect_ms = [timed(lambda p=p: provenance.inspect(p)) for p in paths]
        print(f"| {source} | {picked[0]['width']}x{picked[0]['height']} {picked[0]['format']} | "
              f"{statistics.median(explain_ms):.0f} / {max(explain_ms):.0f} | {statistics.median(check_ms):.0f} | "
              f"{statistics.median(inspect_ms):.2f} |")


if __name__ == "__main__":
    main()
