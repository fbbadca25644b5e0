"""`scan`: the Ray Data job that judges every image of an archive and writes the verdicts as Parquet."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import ray

from archive_scan import parts
from archive_scan.inputs import list_images
from archive_scan.stages import Classify, decode
from edge_runtime import Detector
from edge_runtime.adaptive import DEFAULT_MODE
from edge_runtime.detector import DEFAULT_BATCH

BATCH_ROWS = 64  # files per decode task and per actor call: ~20 MB of decoded pixels in flight per batch
# What a decode task holds: its worker with a Detector (~230 MB measured), the decoded pixels of a batch and the
# largest image the runtime accepts. Declaring it also keeps Ray from fusing decoding into the actors, which it
# does with stages that ask for the same resources.
DECODE_MEMORY = 512 * 2 ** 20
# Interpreter threads per actor. An actor reserves one CPU, but classifying costs ~2.5x decoding with this model
# (18 vs 7 ms of CPU per image measured), so a second thread takes up what the decode tasks leave idle.
THREADS = 2
ROWS_PER_FILE = 1000  # rows per Parquet part file; an interrupted run redoes at most this many per file


@dataclass
class Summary:
    """What a scan did: rows written per label ("error" for files it could not judge), files skipped because
    an earlier run had written them, and the wall time of this run."""

    counts: dict[str, int] = field(default_factory=lambda: {"ai": 0, "human": 0, "unsure": 0, "error": 0})
    skipped: int = 0
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return ("summary: " + ", ".join(f"{label} {n}" for label, n in self.counts.items()) +
                f" ({self.written} written, {self.skipped} already done, {self.images_per_second:.1f} images/s)")


def scan(sources: list[str] | str, out: str, *, address: str | None = None, workers: int | None = None,
         model=None, tta: str = DEFAULT_MODE, trust_metadata: bool = True, threads: int = THREADS,
         filesystem=None, batch_rows: int = BATCH_ROWS, rows_per_file: int = ROWS_PER_FILE,
         progress: bool = True) -> Summary:
    """Judge every image file of `sources` (local files and folders, or URIs such as s3://bucket/prefix) and
    write one row per file (`archive_scan.rows.SCHEMA`) as Parquet part files into the folder `out` (a local
    path or a URI). Files already in `out` are skipped, so a re-run finishes an interrupted scan.

    Runs on the Ray that this process has started or joined, else joins `address` (or $RAY_ADDRESS), else starts
    an embedded local Ray. Decoding runs as Ray tasks (one CPU each); `workers` actors (default: half the
    cluster's CPUs, at least one) each load the Detector (`model`, `tta`, `trust_metadata`; `threads`
    interpreter threads) once and classify batches of `batch_rows` files, DEFAULT_BATCH primary views per invoke.
    `filesystem`: a pyarrow filesystem to read URI sources with (default: the one their URI names).
    """
    start = time.perf_counter()
    Detector(model, tta=tta, trust_metadata=trust_metadata)  # a bad model or option fails here, before Ray starts
    filesystem, paths = list_images([sources] if isinstance(sources, str) else list(sources), filesystem)
    out_fs, folder = parts.open_folder(out)
    done = parts.written_paths(out_fs, folder)
    todo = [path for path in dict.fromkeys(paths) if path not in done]
    summary = Summary(skipped=len(paths) - len(todo))
    if todo:
        _start_ray(address)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        workers = workers or max(1, cpus // 2)
        if workers >= cpus:
            raise ValueError(f"{workers} classifier actors would leave none of the cluster's {cpus} CPUs to decode")
        writer = parts.PartWriter(out_fs, folder, rows_per_file)
        bar = _progress_bar(len(todo)) if progress else None
        for table in _results(todo, filesystem, workers, dict(model=model, tta=tta, trust_metadata=trust_metadata),
                              threads, batch_rows):
            writer.add(table)
            for label in table["label"].to_pylist():
                summary.counts[label or "error"] += 1
            if bar:
                bar.set_postfix_str(", ".join(f"{label} {n}" for label, n in summary.counts.items()), refresh=False)
                bar.update(table.num_rows)
        writer.flush()
        if bar:
            bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _results(paths: list[str], filesystem, workers: int, detector_options: dict, threads: int, batch_rows: int):
    """The result tables of the Ray Data pipeline, as they come (not in input order)."""
    dataset = ray.data.from_items([{"path": path} for path in paths],
                                  override_num_blocks=math.ceil(len(paths) / batch_rows))
    dataset = dataset.map_batches(decode, batch_size=batch_rows, num_cpus=1, memory=DECODE_MEMORY, fn_kwargs=dict(
        filesystem=filesystem, detector_options=detector_options))
    dataset = dataset.map_batches(Classify, batch_size=batch_rows, num_cpus=1,
                                  compute=ray.data.ActorPoolStrategy(size=workers), fn_constructor_kwargs=dict(
                                      detector_options=detector_options, threads=threads, invoke_batch=DEFAULT_BATCH))
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")


def _start_ray(address: str | None):
    """Join the Ray this process already runs, else `address` / $RAY_ADDRESS, else start a local one."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar for the whole scan instead (see _progress_bar)
    context.print_on_execution_start = False


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="img", file=sys.stderr)
