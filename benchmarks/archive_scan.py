"""Ray scan (`archive_scan`) against the CLI (`python -m edge_runtime --json`) on the same images, in one run.

    python benchmarks/archive_scan.py                  # 1,200 images, ~6 minutes on a busy 2-core machine
    python benchmarks/archive_scan.py --images 2709    # the whole dataset

The images are every k-th manifest row (all sources and formats), linked from a temporary folder. Printed:
images/s of the CLI (process start included) and of the Ray scan on an embedded local Ray with 1 classifier
actor (2 Ray CPUs: the actor and one decode task) and with 2 (4 Ray CPUs), each with and without Ray's start;
the ratio Ray / CLI (goal >= 0.8 on one 2-core machine), against the mean of a CLI run before and one after the
Ray runs; the CPU seconds per 1,000 images of each (user + system over the whole process tree: what the machine
spends, whatever else runs on it); and the peak memory of each: the sum over the process tree (the CLI, or this
driver with its raylet, GCS, decode workers and actors) of RSS and of PSS (shared pages counted once). The load
average beside each figure tells how busy the machine was: on a shared machine every rate is a fraction of a
quiet one's, and a process with fewer busy threads (Ray's one decode task and one interpreter thread against the
CLI's two of each) gets a smaller share of the cores, so the CPU figure is the one that load does not move.
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# argv: folder, output folder, actors. Prints the rows written and the seconds of the scan once Ray runs.
RAY_DRIVER = """
import sys, time, ray
from archive_scan import scan
workers = int(sys.argv[3])
ray.init(num_cpus=2 * workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
start = time.perf_counter()
summary = scan(sys.argv[1], sys.argv[2], workers=workers, progress=False)
print(summary.written, time.perf_counter() - start)
time.sleep(0.5)  # a last sample of every Ray process before they end
"""


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


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except OSError:
                pass
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


class TreeUsage:
    """Samples a process tree every 0.2 s while in use: peak RSS and PSS sums (MB) and CPU seconds (the last
    user + system time seen of each process, exited ones included)."""

    def __init__(self, root: int):
        self.root, self.rss, self.pss = root, 0.0, 0.0
        self.cpu_by_pid: dict[int, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid.values())

    def _sample(self):
        while not self.done.wait(0.2):
            rss = pss = 0
            for pid in descendants(self.root):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    self.cpu_by_pid[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
                except OSError:
                    pass
            self.rss, self.pss = max(self.rss, rss / 1024), max(self.pss, pss / 1024)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def cli_run(folder: Path, n: int) -> dict:
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen([sys.executable, "-m", "edge_runtime", "--json", "--no-progress", str(folder)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with TreeUsage(process.pid) as usage:
        rows = process.communicate()[0].splitlines()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # exact, where sampling misses the last 0.2 s
    assert len(rows) == n, f"the CLI wrote {len(rows)} rows for {n} images"
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"run": "CLI `python -m edge_runtime --json` (process start included)", "rate": n / seconds,
            "rate_no_start": None, "cpu_per_1000": 1000 * cpu / n, "rss": usage.rss, "pss": usage.pss,
            "load": os.getloadavg()[0]}


def ray_run(folder: Path, out: Path, n: int, workers: int) -> dict:
    """A scan in a driver process of its own (so that this process's sampling is not counted in its CPU)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", RAY_DRIVER, str(folder), str(out), str(workers)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with TreeUsage(process.pid) as usage:
        written, seconds = process.communicate()[0].split()
    total = time.perf_counter() - start
    assert int(written) == n, f"the Ray scan wrote {written} rows for {n} images"
    return {"run": f"Ray, {workers} actor{'s' if workers > 1 else ''} ({2 * workers} Ray CPUs)",
            "rate": n / total, "rate_no_start": n / float(seconds), "cpu_per_1000": 1000 * usage.cpu_seconds / n,
            "rss": usage.rss, "pss": usage.pss, "load": os.getloadavg()[0]}


def main(argv=None):
    args = parse_args(argv)
    paths = sample_paths(args.images)
    print(f"{len(paths)} images, {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = link_folder(Path(tmp) / "images", paths)
        runs = [cli_run(folder, len(paths))]
        for workers in (1, 2):
            runs.append(ray_run(folder, Path(tmp) / f"out-{workers}", len(paths), workers))
        runs.append(cli_run(folder, len(paths)))
    print("\n| run | images/s | images/s without Ray's start | CPU s / 1,000 images | peak RSS / PSS (MB) | load |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in runs:
        no_start = f"{run['rate_no_start']:.1f}" if run["rate_no_start"] else "-"
        print(f"| {run['run']} | {run['rate']:.1f} | {no_start} | {run['cpu_per_1000']:.1f} | "
              f"{run['rss']:,.0f} / {run['pss']:,.0f} | {run['load']:.1f} |")
    one, two = runs[1], runs[2]
    cli_rate = (runs[0]["rate"] + runs[3]["rate"]) / 2
    cli_cpu = (runs[0]["cpu_per_1000"] + runs[3]["cpu_per_1000"]) / 2
    print(f"\nRay (1 actor) / CLI (mean of both runs), images/s: {one['rate_no_start'] / cli_rate:.2f} without Ray's "
          f"start, {one['rate'] / cli_rate:.2f} with it (goal >= 0.8); CPU per image: CLI / Ray "
          f"{cli_cpu / one['cpu_per_1000']:.2f}")
    print(f"1 -> 2 actors: x{two['rate_no_start'] / one['rate_no_start']:.2f} images/s")


if __name__ == "__main__":
    main()
