"""`python -m converter RUN_OR_MODEL.keras --out DIR`: every TFLite variant, sidecars and a parity report.

Reads v1 runs (the paper's model, the four TTA views) and v2 runs written by `python -m trainer ship`
(pooled block features, the run's own views such as a native-resolution crop, and an escalation band).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from converter.convert import VARIANTS, GpuIncompatibleError


def model_name(value: str) -> str:
    """A name for a bundled model beside the default: lower-case letters, digits and '-'."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", value) or value in ("default", "float16"):
        raise argparse.ArgumentTypeError(f"{value!r}: a new name of lower-case letters, digits and '-' (not "
                                         "default or float16, which --install writes)")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m converter", description=__doc__)
    parser.add_argument("model", help="a training run directory (runs/NAME) or a .keras file")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="variants to build (default: all)")
    parser.add_argument("--images", help="parity images: folder with human/ and ai/ (default: the run's test split)")
    parser.add_argument("--limit", type=int, help="use at most N parity images (half per class)")
    parser.add_argument("--calibration", help="int8 calibration folder with human/ and ai/ "
                                              "(default: the run's training split)")
    parser.add_argument("--calibration-size", type=int, default=256,
                        help="int8 calibration images, each with all of the run's views (default 256)")
    parser.add_argument("--no-tta", action="store_true",
                        help="parity on the run's primary view only (default: the mean over the run's views; "
                             "the sidecars list the run's views either way)")
    parser.add_argument("--model-version", help="model_version in the sidecar (default: the run's name)")
    install = parser.add_mutually_exclusive_group()
    install.add_argument("--install", action="store_const", const="default",
                         help="copy the recommended variant and float16 into edge_runtime/models/ as the default")
    install.add_argument("--install-as", dest="install", metavar="NAME", type=model_name,
                         help="copy the recommended variant into edge_runtime/models/ as the named model NAME "
                              "(model-NAME.tflite + .json; e.g. paper), beside the default")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from converter.pipeline import convert_run  # imports TensorFlow: only after the arguments are valid
    from converter.run import open_run
    try:
        run = open_run(args.model)
        report = convert_run(run, args.out, tuple(args.variants), args.images, args.limit, args.calibration_size,
                             args.calibration, args.model_version, args.install,
                             views=run.views[:1] if args.no_tta else None)
    except (FileNotFoundError, ValueError, GpuIncompatibleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print((args.out / "parity.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out}/model-*.tflite (+ .json), model.tflite = {report['recommended']}, parity.json/.md")
    return 0
