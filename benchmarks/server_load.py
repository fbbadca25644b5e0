"""Load test of the relay: the real server (gunicorn) on 127.0.0.1, real dataset images, fixed concurrency.

    python benchmarks/server_load.py                       # 10,000 requests per phase
    python benchmarks/server_load.py --requests 2000 --concurrency 8 --workers 2 --threads 4

Phases: uncached with every TTA view (?tta=always; every request's bytes are new: a real image plus a unique
trailer that decoders ignore, so the sha256 differs and the cache misses), uncached with ?tta=never, and cached
(a small set of images sent again and again after a warm-up). For each: throughput, p50/p95/p99 latency, errors, the share of
answers served from the cache, and the server's RSS (master + workers) before and after. The targets
(2 CPU cores) are printed with MET / MISSED. Traffic goes to 127.0.0.1 only; rate limits are switched off.
"""
from __future__ import annotations

import argparse
import csv
import http.client
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
HOST = "127.0.0.1"  # the only address this script ever talks to


@dataclass
class PhaseResult:
    name: str
    requests: int
    seconds: float
    latencies_ms: list
    errors: int
    cached: int
    rss_before_mb: float
    rss_middle_mb: float  # after the first half of the requests
    rss_after_mb: float

    @property
    def second_half_growth(self) -> float:
        """RSS growth over the second half: a leak keeps growing, caches and allocator pools level off."""
        return (self.rss_after_mb - self.rss_middle_mb) / self.rss_middle_mb

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests per phase (default 10000)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--images", type=int, default=400, help="distinct dataset images to cycle (default 400)")
    parser.add_argument("--cached-images", type=int, default=32, help="images in the cached phase (default 32)")
    parser.add_argument("--phases", default="uncached-tta,uncached-notta,cached",
                        help="comma-separated subset of uncached-tta, uncached-notta, cached")
    parser.add_argument("--server", choices=("gunicorn", "waitress"), default="gunicorn")
    args = parser.parse_args(argv)
    unknown = set(args.phases.split(",")) - {"uncached-tta", "uncached-notta", "cached"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if min(args.requests, args.concurrency, args.workers, args.threads, args.images, args.cached_images) < 1:
        parser.error("all counts must be at least 1")
    return args


def load_images(count: int) -> list:
    """`count` dataset images spread evenly over the manifest (so every source and format is in)."""
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    step = max(1, len(rows) // count)
    return [(DATA / row["path"]).read_bytes() for row in rows[::step][:count]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants, in MB (Linux /proc)."""
    total_kb, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                total_kb += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    pending += [int(child) for child in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total_kb / 1024


def start_server(args, port: int, log_file):
    env = {**os.environ, "PYTHONPATH": str(REPO), "ANIMEART_RELAY_BATCH_RATE_LIMIT": "off"}
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", HOST, "--port", str(port), "--workers", str(args.workers),
         "--threads", str(args.threads), "--rate-limit", "off", "--server", args.server],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; log: {log_file.name}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("server did not come up within 120 s")


def fire(port: int, bodies, count: int, concurrency: int, path: str, label: str):
    """Send `count` POSTs (body i from bodies(i)) with `concurrency` keep-alive connections.

    Returns (seconds, latencies in ms, errors, answers served from the cache).
    """
    counter = itertools.count()
    lock = threading.Lock()
    latencies, totals = [], {"errors": 0, "cached": 0}
    progress = tqdm(total=count, desc=label, unit="req", leave=False, mininterval=0.5)

    def client():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        mine, errors, cached = [], 0, 0
        while (i := next(counter)) < count:
            body = bodies(i)
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
                response = conn.getresponse()
                answer = response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok, answer = False, b""
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
            mine.append((time.perf_counter() - start) * 1000)
            errors += not ok
            cached += b'"cached":true' in answer
            progress.update(1)
        conn.close()
        with lock:
            latencies.extend(mine)
            totals["errors"] += errors
            totals["cached"] += cached

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    progress.close()
    return seconds, latencies, totals["errors"], totals["cached"]


def phase_plan(phase: str, images: list, hot: list, args):
    """(request body for index i, path, warm-up requests) of one phase."""
    if phase == "cached":
        # Every worker thread has to have seen every hot image before it answers from its own cache.
        return (lambda i: hot[i % len(hot)]), "/api/v1/check", len(hot) * args.workers * args.threads
    path = "/api/v1/check" + ("?tta=never" if phase == "uncached-notta" else "?tta=always")
    return (lambda i: images[i % len(images)] + f"\0{phase}-{i:09d}".encode()), path, \
        args.workers * args.threads * 4


def report(results, args, rss_start, rss_end, load):
    print(f"\nrelay load test: {args.server}, {args.workers} workers x {args.threads} threads, "
          f"concurrency {args.concurrency}, {args.requests} requests per phase")
    print(f"machine: {os.cpu_count()} CPUs visible, load average {load:.1f} before the run / "
          f"{os.getloadavg()[0]:.1f} after (the client runs on the same CPUs)")
    print(f"{'phase':<16}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}{'cached':>8}"
          f"{'RSS MB before -> half -> after':>33}")
    for r in results:
        print(f"{r.name:<16}{r.throughput:>9.1f}{r.percentile(50):>9.1f}{r.percentile(95):>9.1f}"
              f"{r.percentile(99):>9.1f}{r.errors:>8}{r.cached / r.requests:>8.0%}"
              f"{r.rss_before_mb:>15.0f} -> {r.rss_middle_mb:.0f} -> {r.rss_after_mb:.0f}")
    print("\ntargets (2 cores):")
    by_name = {r.name: r for r in results}
    checks = []
    for name in ("uncached-tta", "uncached-notta"):
        if name in by_name:
            r = by_name[name]
            checks.append((f"{name}: >= 100 req/s", r.throughput >= 100, f"{r.throughput:.1f} req/s"))
            checks.append((f"{name}: p99 < 100 ms", r.percentile(99) < 100, f"{r.percentile(99):.1f} ms"))
    if "cached" in by_name:
        r = by_name["cached"]
        checks.append(("cached: >= 1,000 req/s", r.throughput >= 1000, f"{r.throughput:.1f} req/s"))
    total_errors = sum(r.errors for r in results)
    checks.append((f"0 errors over {sum(r.requests for r in results)} requests", total_errors == 0,
                   f"{total_errors} errors"))
    worst = max(results, key=lambda r: r.second_half_growth)
    checks.append(("flat memory (RSS growth < 3% over a phase's 2nd half)", worst.second_half_growth < 0.03,
                   f"{worst.name}: {worst.rss_middle_mb:.0f} -> {worst.rss_after_mb:.0f} MB "
                   f"({worst.second_half_growth:+.1%}); whole run {rss_start:.0f} -> {rss_end:.0f} MB "
                   f"({(rss_end - rss_start) / rss_start:+.1%}) incl. the result cache filling up"))
    for what, met, measured in checks:
        print(f"  {'MET   ' if met else 'MISSED'}  {what:<48} measured {measured}")
    return all(met for _, met, _ in checks)


def main(argv=None) -> int:
    args = parse_args(argv)
    images = load_images(args.images)
    hot = images[: args.cached_images]
    port = free_port()
    load = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile("wb", prefix="relay-load-", suffix=".log", delete=False) as log_file:
        server = start_server(args, port, log_file)
        try:
            plans = {phase: phase_plan(phase, images, hot, args) for phase in args.phases.split(",")}
            for phase, (bodies, path, warmup) in plans.items():  # all warm-ups first: memory baseline after them
                fire(port, bodies, warmup, args.concurrency, path, f"{phase} warm-up")
            rss_start = rss_mb(server.pid)
            results = []
            for phase, (bodies, path, warmup) in plans.items():
                rss = [rss_mb(server.pid)]
                halves = []
                for first, count in ((0, args.requests // 2), (args.requests // 2, args.requests - args.requests // 2)):
                    measured = lambda i, b=bodies, s=warmup + first: b(s + i)  # noqa: E731
                    halves.append(fire(port, measured, count, args.concurrency, path, phase))
                    rss.append(rss_mb(server.pid))
                (s1, l1, e1, c1), (s2, l2, e2, c2) = halves
                results.append(PhaseResult(phase, args.requests, s1 + s2, l1 + l2, e1 + e2, c1 + c2, *rss))
            rss_end = rss_mb(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    all_met = report(results, args, rss_start, rss_end, load)
    print(f"\nserver log: {log_file.name}")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
