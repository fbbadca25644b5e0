"""`python -m archive_scan SOURCE... --out FOLDER`: judge every image of an archive on Ray, write Parquet.

SOURCE: image files, folders (recursive) or an object-storage prefix such as s3://bucket/images/ (pyarrow
options may follow as a query, e.g. ?endpoint_override=host:9000&scheme=http). Runs on an embedded local Ray,
or on the cluster that --address or $RAY_ADDRESS names. A re-run with the same --out skips the files already
written. Files that cannot be judged become rows with an error; the exit status is then 1.
"""
from __future__ import annotations

import argparse
import sys

from archive_scan.job import BATCH_ROWS, ROWS_PER_FILE, THREADS, scan
from edge_runtime import RuntimeMissingError
from edge_runtime.adaptive import DEFAULT_MODE, MODES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m archive_scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", metavar="SOURCE", help="image file, folder or s3://bucket/prefix")
    parser.add_argument("--paths-from", metavar="FILE", help="also scan the paths listed in FILE, one per line")
    parser.add_argument("--out", required=True, help="output folder of Parquet part files (local or s3://...)")
    parser.add_argument("--address", help="Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--workers", type=int, help="classifier actors, each with its own Detector (default: half "
                                                    "the cluster's CPUs; decode tasks use the rest)")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"interpreter threads per actor (default {THREADS})")
    parser.add_argument("--model", help="a .tflite path or a bundled model name (default: the bundled model)")
    parser.add_argument("--tta", choices=MODES, default=DEFAULT_MODE, help="views per image, as in edge_runtime")
    parser.add_argument("--ignore-metadata", action="store_true",
                        help="label by the model alone, even when the file's metadata names an AI generator")
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS, help="files per decode task and actor call")
    parser.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE, help="rows per Parquet part file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.paths_from:
        with open(args.paths_from) as f:
            args.sources += [line.strip() for line in f if line.strip()]
    if not args.sources:
        parser.error("nothing to scan: give a SOURCE or --paths-from")
    if min(args.threads, args.batch_rows, args.rows_per_file, args.workers or 1) < 1:
        parser.error("--workers, --threads, --batch-rows and --rows-per-file must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        summary = scan(args.sources, args.out, address=args.address, workers=args.workers, model=args.model,
                       tta=args.tta, trust_metadata=not args.ignore_metadata, threads=args.threads,
                       batch_rows=args.batch_rows, rows_per_file=args.rows_per_file, progress=not args.no_progress)
    except (RuntimeMissingError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not summary.written + summary.skipped:
        print("error: no image files found", file=sys.stderr)
        return 1
    print(summary.line(), file=sys.stderr)
    return 1 if summary.counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
