"""Speed goals in one run: scan efficiency, speed-up over the paper's Keras TTA, relay throughput and memory.

    python benchmarks/speed.py                    # ~5 minutes on 2 cores
    python benchmarks/speed.py --images 200 --uncached 1000 --cached 2000 --rss-images 1000 --keras-images 4

Every goal is a ratio of figures measured in this run, on the same dataset images (every k-th manifest row,
so all sources and formats are in; linked from a temporary folder, never copied):
- scan efficiency: `python -m edge_runtime --json DIR` images/s (process start included) x one bare single-view
  invoke in ms (2 threads, median of 200) / 1000; 1.0 = one bare invoke per image. Goal >= 0.8. Measured as
  --repeats interleaved (invoke, scan) pairs; the median pair counts.
- speed-up of that scan over the paper's Keras path (decode, then one `predict` per TTA view) per image.
  Goal >= 50x. Needs TensorFlow (the trainer's venv); skipped with --keras-images 0.
- relay (`python -m server`, its defaults, rate limits off): uncached requests/s at concurrency 8 (each body a
  scan image plus a unique trailer that decoders ignore) / the CLI scan rate, goal >= 0.8 with p99 < 100 ms;
  cached requests/s, goal >= 1,000; errors over all requests, goal 0.
- peak RSS (VmHWM, sampled every 0.1 s) of a CLI scan of --rss-images images (the dataset repeated), goal
  < 300 MB and flat.
Also printed: invoke ms per image at batch 1 and 4 with one thread (what relay micro-batching could save).
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from edge_runtime import Detector  # noqa: E402
from server_load import fire, free_port, rss_mb, start_server  # noqa: E402

DATA = REPO.parent / "shared" / "data"
CONCURRENCY = 8


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="scan images (default 400)")
    parser.add_argument("--uncached", type=int, default=2000, help="uncached relay requests (default 2000)")
    parser.add_argument("--cached", type=int, default=8000, help="cached relay requests (default 8000)")
    parser.add_argument("--rss-images", type=int, default=5000, help="images in the memory scan (default 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved invoke/scan pairs (default 3)")
    parser.add_argument("--keras-images", type=int, default=16, help="images through Keras TTA (default 16; 0 skips)")
    return parser.parse_args(argv)


def manifest_paths() -> list[Path]:
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        return [DATA / row["path"] for row in csv.DictReader(f)]


def link_folder(folder: Path, paths: list[Path]) -> Path:
    """`folder` holding one numbered symlink per path (sorted like the list)."""
    folder.mkdir()
    for i, path in enumerate(paths):
        (folder / f"{i:06d}{path.suffix}").symlink_to(path)
    return folder


def bare_invoke_ms(threads: int, batch: int = 1, repeats: int = 200) -> float:
    """Median ms of one invoke of the bundled model (input already set), per image of the batch."""
    interpreter = Detector(threads=threads)._interpreter(batch)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(10):
        interpreter.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times) / batch


def cli_scan(folder: Path, *flags: str) -> tuple[float, float, list[float]]:
    """(seconds, peak RSS MB, RSS samples MB) of `python -m edge_runtime --json DIR`, process start included."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "edge_runtime", "--json", "--no-progress", *flags, str(folder)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, peak = [], 0.0
    while process.poll() is None:
        samples.append(rss_mb(process.pid))
        peak = max(peak, high_water_mb(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"the scan of {folder} failed with exit status {process.returncode}")
    return seconds, max([peak, *samples]), [s for s in samples if s > 0]


def high_water_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return 0.0


def keras_seconds_per_image(paths: list[Path]) -> float:
    """The paper's TTA in Keras: decode, then one `predict` per view; an untrained model runs as fast."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edge_runtime.preprocess import preprocess_tta
    from trainer.model import build_model
    model = build_model("enhanced", weights=None)
    batch = preprocess_tta(paths[0])
    model.predict(batch[:1], verbose=0)  # graph built before timing
    start = time.perf_counter()
    for path in paths:
        batch = preprocess_tta(path)
        np.mean([model.predict(batch[i:i + 1], verbose=0) for i in range(len(batch))])
    return (time.perf_counter() - start) / len(paths)


def relay_phases(images: list[bytes], args) -> dict:
    """Uncached then cached requests against the relay with its default settings."""
    settings = SimpleNamespace(workers=min(2, os.cpu_count() or 1), threads=4, server="waitress")
    port = free_port()
    hot = images[:32]
    with tempfile.NamedTemporaryFile("wb", prefix="relay-speed-", suffix=".log", delete=False) as log:
        server = start_server(settings, port, log)
        try:
            fire(port, lambda i: images[i % len(images)] + b"\0warm-%09d" % i, 64, CONCURRENCY, "/api/v1/check",
                 "warm-up")
            fire(port, lambda i: hot[i % len(hot)], len(hot) * settings.threads * 2, CONCURRENCY, "/api/v1/check",
                 "cache warm-up")
            uncached = fire(port, lambda i: images[i % len(images)] + b"\0speed-%09d" % i, args.uncached,
                            CONCURRENCY, "/api/v1/check", "uncached")
            cached = fire(port, lambda i: hot[i % len(hot)], args.cached, CONCURRENCY, "/api/v1/check", "cached")
            rss = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"uncached": uncached, "cached": cached, "rss": rss, "settings": settings}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv=None) -> int:
    args = parse_args(argv)
    everything = manifest_paths()
    sample = everything[:: max(1, len(everything) // args.images)][: args.images]
    load_before = os.getloadavg()[0]
    rows = []

    def goal(what, measured, target, met):
        rows.append((what, measured, target, "met" if met else "MISSED"))

    with tempfile.TemporaryDirectory() as tmp:
        scan_dir = link_folder(Path(tmp) / "scan", sample)
        rss_dir = link_folder(Path(tmp) / "rss", [everything[i % len(everything)] for i in range(args.rss_images)])
        cli_scan(scan_dir)  # warm the file cache
        pairs = []  # (bare invoke ms, adaptive scan images/s), interleaved so both see the same load
        for _ in range(args.repeats):
            pairs.append((bare_invoke_ms(threads=2), len(sample) / cli_scan(scan_dir)[0]))
        invoke_ms, rate = sorted(pairs, key=lambda pair: pair[0] * pair[1])[len(pairs) // 2]  # the median pair
        scans = {mode: cli_scan(scan_dir, "--tta", mode)[0] for mode in ("never", "always")}
        batch_ms = {batch: bare_invoke_ms(threads=1, batch=batch, repeats=60) for batch in (1, 4)}
        print("bare single-view invoke (2 threads) ms and CLI scan images/s (--tta adaptive, process start "
              "included), interleaved: " + ", ".join(f"{ms:.2f} ms / {r:.1f}" for ms, r in pairs))
        print(f"CLI scans of {len(sample)} images: " + ", ".join(f"--tta {mode} {len(sample) / s:.1f} images/s"
                                                               for mode, s in scans.items()))
        print(f"invoke per image with 1 thread (as in the relay): batch 1 {batch_ms[1]:.2f} ms, batch 4 "
              f"{batch_ms[4]:.2f} ms ({1 - batch_ms[4] / batch_ms[1]:+.0%} saved by batching)")
        goal("scan efficiency (images/s x single-view invoke ms / 1000)",
             f"{rate * invoke_ms / 1000:.2f} ({rate:.1f} images/s x {invoke_ms:.2f} ms)", ">= 0.8",
             rate * invoke_ms / 1000 >= 0.8)

        relay = relay_phases([path.read_bytes() for path in sample], args)
        seconds, latencies, errors, _ = relay["uncached"]
        uncached_rate = args.uncached / seconds
        goal(f"relay uncached req/s at concurrency {CONCURRENCY} / CLI scan rate",
             f"{uncached_rate / rate:.2f} ({uncached_rate:.1f} req/s / {rate:.1f} images/s)", ">= 0.8",
             uncached_rate / rate >= 0.8)
        goal("relay uncached p99 latency", f"{percentile(latencies, 99):.1f} ms (p50 {percentile(latencies, 50):.1f})",
             "< 100 ms", percentile(latencies, 99) < 100)
        c_seconds, c_latencies, c_errors, c_hits = relay["cached"]
        goal("relay cached req/s", f"{args.cached / c_seconds:.0f} ({c_hits / args.cached:.0%} cache hits)",
             ">= 1,000", args.cached / c_seconds >= 1000)
        total = args.uncached + args.cached
        goal(f"relay errors in {total:,} requests", f"{errors + c_errors}", "0", errors + c_errors == 0)

        rss_seconds, peak, samples = cli_scan(rss_dir)
        quarter, last = statistics.median(samples[len(samples) // 5: len(samples) // 3] or samples), samples[-1]
        goal(f"peak RSS of a {args.rss_images:,}-image scan",
             f"{peak:.0f} MB (RSS {quarter:.0f} MB at a quarter, {last:.0f} MB at the end; "
             f"{args.rss_images / rss_seconds:.1f} images/s)", "< 300 MB, flat",
             peak < 300 and last <= quarter * 1.1)

        if args.keras_images:  # last: TensorFlow stays loaded in this process once imported
            keras_s = keras_seconds_per_image(sample[: args.keras_images])
            speedup = keras_s * rate
            goal("speed-up of `python -m edge_runtime` over Keras TTA (4 predicts)",
                 f"{speedup:.0f}x ({keras_s * 1e3:.0f} ms vs {1e3 / rate:.1f} ms per image)", ">= 50x", speedup >= 50)
            rows.insert(1, rows.pop())

    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
          f"(other jobs on the machine slow every figure; the ratios compare figures of this run); relay: "
          f"{relay['settings'].server}, {relay['settings'].workers} detectors x {relay['settings'].threads} threads, "
          f"RSS {relay['rss']:.0f} MB after the run\n")
    print("| goal | measured | target | |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(row[3] == "met" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
