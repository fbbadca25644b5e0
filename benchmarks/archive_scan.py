"""Ray scan (`archive_scan`) against the CLI (`python -m edge_runtime --json`) on the same images, in one run.

    python benchmarks/archive_scan.py                  # 1,200 images, ~3 minutes on 2 cores
    python benchmarks/archive_scan.py --images 2709    # the whole dataset

The images are every k-th manifest row (all sources and formats), linked from a temporary folder. Printed:
images/s of the CLI (process start included) and of the Ray scan on an embedded local Ray with 1 classifier
actor (2 Ray CPUs: the actor and one decode task) and with 2 (4 Ray CPUs), each with and without Ray's start;
the ratio Ray / CLI (goal >= 0.8 on one 2-core machine); and the peak memory of each: the sum over the process
tree (the CLI, or this driver with its raylet, GCS, decode workers and actors) of RSS and of PSS (shared pages
counted once). The load average beside each figure tells how busy the machine was.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ray  # noqa: E402

from archive_scan import scan  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1200, help="images scanned by each run (default 1200)")
    return parser.parse_args(argv)


def sample_paths(n: int) -> list[Path]:
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        paths = [DATA / row["path"] for row in csv.DictReader(f)]
    return paths[::max(1, len(paths) // n)][:n]


def link_folder(folder: Path, paths: list[Path]) -> Path:
    folder.mkdir()
    for i, path in enumerate(paths):
        (folder / f"{i:06d}{path.suffix}").symlink_to(path)
    return folder


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over `root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except OSError:
                pass
    rss = pss = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Rss:", "Pss:")):
                    kb = int(line.split()[1])
                    rss, pss = (rss + kb, pss) if line.startswith("Rss:") else (rss, pss + kb)
        except OSError:
            pass
    return rss / 1024, pss / 1024


class PeakMemory:
    """Samples tree_memory_mb(root) every 0.2 s while in use; .rss and .pss are the peaks."""

    def __init__(self, root: int):
        self.root, self.rss, self.pss = root, 0.0, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self.done.wait(0.2):
            rss, pss = tree_memory_mb(self.root)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def cli_run(folder: Path, n: int) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "edge_runtime", "--json", "--no-progress", str(folder)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with PeakMemory(process.pid) as memory:
        rows = process.communicate()[0].splitlines()
    seconds = time.perf_counter() - start
    assert len(rows) == n, f"the CLI wrote {len(rows)} rows for {n} images"
    return {"run": "CLI (process start included)", "rate": n / seconds, "rate_no_start": None,
            "rss": memory.rss, "pss": memory.pss, "load": os.getloadavg()[0]}


def ray_run(folder: Path, out: Path, n: int, workers: int) -> dict:
    with PeakMemory(os.getpid()) as memory:
        start = time.perf_counter()
        ray.init(num_cpus=2 * workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        started = time.perf_counter()
        summary = scan(str(folder), str(out), workers=workers, progress=False)
        seconds = time.perf_counter() - started
        ray.shutdown()
    assert summary.written == n, summary.line()
    return {"run": f"Ray, {workers} actor{'s' if workers > 1 else ''} ({2 * workers} Ray CPUs)",
            "rate": n / (started - start + seconds), "rate_no_start": n / seconds, "rss": memory.rss,
            "pss": memory.pss, "load": os.getloadavg()[0]}


def main(argv=None):
    args = parse_args(argv)
    paths = sample_paths(args.images)
    print(f"{len(paths)} images, {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = link_folder(Path(tmp) / "images", paths)
        runs = [cli_run(folder, len(paths))]
        for workers in (1, 2):
            runs.append(ray_run(folder, Path(tmp) / f"out-{workers}", len(paths), workers))
    print(f"\n| run | images/s | images/s without Ray's start | peak RSS / PSS (MB, process tree) | load |")
    print("| --- | --- | --- | --- | --- |")
    for run in runs:
        no_start = f"{run['rate_no_start']:.1f}" if run["rate_no_start"] else "-"
        print(f"| {run['run']} | {run['rate']:.1f} | {no_start} | {run['rss']:.0f} / {run['pss']:.0f} | "
              f"{run['load']:.1f} |")
    cli, one, two = runs
    print(f"\nratio Ray (1 actor, without Ray's start) / CLI: {one['rate_no_start'] / cli['rate']:.2f} (goal >= 0.8); "
          f"with Ray's start: {one['rate'] / cli['rate']:.2f}")
    print(f"1 -> 2 actors: x{two['rate_no_start'] / one['rate_no_start']:.2f} images/s")


if __name__ == "__main__":
    main()
