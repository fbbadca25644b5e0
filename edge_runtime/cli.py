"""`python -m edge_runtime PATH...`: classify image files, folders (recursive) or `-` (stdin bytes).

Prints a table (default), JSON lines (--json) or CSV (--csv) with one row per input, then counts per
label. Bad files are reported with a reason and do not stop the run; the exit status is 1 if any failed.
A file whose metadata names an AI generator is labelled ai (reason metadata) unless --ignore-metadata;
--explain DIR also writes a heatmap overlay PNG per image (see edge_runtime.explain).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from edge_runtime import explain
from edge_runtime.adaptive import DEFAULT_MODE, MODES
from edge_runtime.detector import DEFAULT_WORKERS, Detector, Result
from edge_runtime.interpreter import RuntimeMissingError
from edge_runtime.preprocess import ImageError
from edge_runtime.wording import CAVEAT, VERDICT_WORDS, score_percent

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional on minimal installs
    tqdm = None

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
STDIN = "-"
CORES = os.cpu_count() or 1


def csv_fields(views) -> list[str]:
    """The CSV columns for a model's views: one p_<view> column per view (empty where the view did not run)."""
    return ["path", "ok", "label", "probability", *(f"p_{view}" for view in views), "views_run", "threshold",
            "model_version", "variant", "total_ms", "reason", "evidence", "error"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edge_runtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image file, folder (recursive) or - for stdin")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument("--csv", action="store_true", help="CSV with a header row")
    parser.add_argument("--tta", choices=MODES, default=DEFAULT_MODE,
                        help="adaptive (default): the primary view, all views only when its score is near the "
                             "threshold; always: all views; never: the primary view alone")
    parser.add_argument("--no-tta", action="store_true", help="same as --tta never")
    parser.add_argument("--workers", type=int, default=max(DEFAULT_WORKERS, CORES),
                        help=f"decode threads that run ahead of the model (default: the CPU count, at least "
                             f"{DEFAULT_WORKERS})")
    parser.add_argument("--model", help="a .tflite path or a bundled model name (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=CORES,
                        help="interpreter threads (default: the CPU count; the decode threads fill in while the "
                             "model waits for them)")
    parser.add_argument("--delegate", help="path of a TFLite delegate shared library (.so), e.g. a GPU delegate")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar for folders")
    parser.add_argument("--ignore-metadata", action="store_true",
                        help="label by the model alone, even when the file's metadata names an AI generator")
    parser.add_argument("--explain", metavar="OUT_DIR",
                        help="also write OUT_DIR/<name>.explain.png: the image tinted where the model sees AI")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    if args.no_tta:
        args.tta = "never"
    return args


def expand(paths: list[str]) -> list[str]:
    """Input list: files as given, folders as their image files (recursive, sorted), `-` kept."""
    inputs = []
    for path in paths:
        if path != STDIN and os.path.isdir(path):
            inputs += sorted(str(p) for p in Path(path).rglob("*")
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            inputs.append(path)
    return inputs


def sources(inputs: list[str]) -> Iterator:
    """What the detector reads for each input: the path, or the bytes of stdin for `-`."""
    for path in inputs:
        yield sys.stdin.buffer.read() if path == STDIN else path


class Table:
    """Human-readable rows, printed as they come: the label and the AI score as a whole percent (see wording);
    the legend names the model's threshold and unsure band, so that a 70% "human" reads as meant."""

    def __init__(self, threshold: float, unsure_band):
        self.threshold, self.unsure_band = threshold, unsure_band

    def header(self, out):
        out(f"{'LABEL':<7} {'P(AI)':>6} {'MS':>7}  FILE")

    def legend(self, out):
        out("; ".join(f"{label} = {words}" for label, words in VERDICT_WORDS.items()) + ".")
        low, high = self.unsure_band
        out(f"P(AI) is the AI score: ai from {self.threshold:.1%} (this model's threshold), unsure between "
            f"{low:.1%} and {high:.1%}. {CAVEAT}")

    def row(self, out, path: str, result: Result | None, error: str | None):
        if result is None:
            out(f"{'error':<7} {'-':>6} {'-':>7}  {path}  ({error})")
        else:
            note = f"  (by metadata: {result.evidence[0]['detail']})" if result.reason == "metadata" else ""
            out(f"{result.label:<7} {score_percent(result.probability):>6} {result.timings_ms['total']:7.1f}  "
                f"{path}{note}")


class JsonLines:
    def header(self, out):
        pass

    def row(self, out, path: str, result: Result | None, error: str | None):
        record = {"path": path, "ok": False, "error": error} if result is None else \
            {"path": path, "ok": True, **result.to_dict()}
        out(json.dumps(record))


class Csv:
    def __init__(self, views):
        self.fields = csv_fields(views)
        self.writer = None

    def header(self, out):
        self.writer = csv.DictWriter(LineWriter(out), self.fields, extrasaction="ignore", lineterminator="")
        self.writer.writeheader()

    def row(self, out, path: str, result: Result | None, error: str | None):
        record = {"path": path, "ok": result is not None, "error": error or ""}
        if result is not None:
            record.update(label=result.label, probability=f"{result.probability:.6f}",
                          threshold=result.threshold, model_version=result.model_version,
                          variant=result.variant, total_ms=result.timings_ms["total"],
                          views_run="+".join(result.views_run), reason=result.reason,
                          evidence=" | ".join(f"{item['kind']}: {item['detail']}" for item in result.evidence),
                          **{f"p_{view}": f"{p:.6f}" for view, p in result.view_probabilities.items()})
        self.writer.writerow(record)


class LineWriter:
    """File-like adapter so csv.writer emits each row through `out` (which adds the newline)."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str):
        self.out(text)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        detector = Detector(args.model, threads=args.threads, delegate=args.delegate,
                            trust_metadata=not args.ignore_metadata)
    except (RuntimeMissingError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inputs = expand(args.paths)
    if not inputs:
        print("error: no image files found", file=sys.stderr)
        return 1
    formatter = JsonLines() if args.json else Csv(detector.views) if args.csv else Table(
        detector.threshold, detector.unsure_band)
    show_progress = (tqdm is not None and not args.no_progress and len(inputs) > 1 and sys.stderr.isatty()
                     and any(os.path.isdir(p) for p in args.paths if p != STDIN))
    bar = tqdm(total=len(inputs), unit="img", file=sys.stderr) if show_progress else None
    out = (lambda line: tqdm.write(line, file=sys.stdout)) if bar else print
    warn = (lambda line: tqdm.write(line, file=sys.stderr)) if bar else (lambda line: print(line, file=sys.stderr))
    counts = {"ai": 0, "human": 0, "unsure": 0, "error": 0}
    written: set[str] = set()
    formatter.header(out)
    for path, outcome in zip(inputs, detector.check_many(sources(inputs), tta=args.tta, workers=args.workers)):
        if isinstance(outcome, ImageError):
            name = "<stdin>" if path == STDIN else path
            formatter.row(out, name, None, outcome.reason)
            warn(f"{name}: {outcome.reason}")
            counts["error"] += 1
        else:
            formatter.row(out, "<stdin>" if path == STDIN else path, outcome, None)
            counts[outcome.label] += 1
            if args.explain and not write_explanation(detector, path, args.explain, written, warn):
                counts["error"] += 1
        if bar:
            bar.update()
    if bar:
        bar.close()
    summary = "summary: " + ", ".join(f"{label} {n}" for label, n in counts.items()) + f" ({len(inputs)} files)"
    if isinstance(formatter, Table):
        formatter.legend(print)
    print(summary, file=sys.stdout if isinstance(formatter, Table) else sys.stderr)
    return 1 if counts["error"] else 0


def write_explanation(detector: Detector, path: str, out_dir: str, written: set[str], warn) -> bool:
    """Write the heatmap overlay of one image file to `out_dir`; warn and return False if it cannot be."""
    if path == STDIN:
        warn("<stdin>: --explain needs a file, not stdin")
        return False
    stem, number = Path(path).stem, 1
    name = f"{stem}.explain.png"
    while name in written:  # same file name in another folder
        number += 1
        name = f"{stem}-{number}.explain.png"
    try:
        explanation = detector.explain(path)
        os.makedirs(out_dir, exist_ok=True)
        explain.overlay(path, explanation).save(os.path.join(out_dir, name))
    except (ImageError, OSError) as exc:
        warn(f"{path}: cannot write the explanation: {getattr(exc, 'reason', None) or exc}")
        return False
    written.add(name)
    warn(f"{path}: explanation {os.path.join(out_dir, name)} ({explanation.cost_ms:.0f} ms)")
    return True
