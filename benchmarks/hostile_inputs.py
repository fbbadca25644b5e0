"""Hostile-input figures of issue 21: what a crafted file or a crowd of idle connections costs; prints a table.

    python benchmarks/hostile_inputs.py metadata      # the 65 KB EXIF "Steps: 111..." PNG: CLI, relay, JS
    python benchmarks/hostile_inputs.py half-open     # /healthz latency under 150 half-open connections
    python benchmarks/hostile_inputs.py explain       # relay RSS after 100 distinct explains, and under 2+2
                                                      # concurrent 12 MP checks/explains

Everything runs on 127.0.0.1 against this checkout's code (the relay with waitress, rate limits off).
"""
from __future__ import annotations

import argparse
import http.client
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
JS_INSPECT = """
const { inspect } = await import(process.argv[1]);
const { readFileSync } = await import("node:fs");
const bytes = new Uint8Array(readFileSync(process.argv[2]));
const start = performance.now();
await inspect(bytes);
console.log(((performance.now() - start) / 1000).toFixed(3));
"""


def steps_bomb_png(digits: int = 65_000) -> bytes:
    """A 256x256 PNG with an eXIf chunk after IHDR: a little-endian TIFF whose one IFD0 entry is an
    ImageDescription of "Steps: " and `digits` ones, with no "Sampler:" anywhere (issue 21's reproduction)."""
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (90, 140, 200)).save(out, "PNG")
    png = out.getvalue()
    text = b"Steps: " + b"1" * digits + b"\x00"
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHII", 0x010E, 2, len(text), 8 + 2 + 12 + 4) + struct.pack("<I", 0) + text
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    return png[:33] + chunk + png[33:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def start_relay(port: int, log, threads: int = 4):
    env = {**os.environ, "PYTHONPATH": str(REPO), "ANIMEART_RELAY_BATCH_RATE_LIMIT": "off",
           "ANIMEART_RELAY_EXPLAIN_RATE_LIMIT": "off"}
    process = subprocess.Popen([sys.executable, "-m", "server", "--host", HOST, "--port", str(port),
                                "--rate-limit", "off", "--threads", str(threads)],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("relay did not come up within 120 s")


def request(port: int, method: str, path: str, body: bytes = None, timeout: float = 120.0, want_body: bool = False):
    """(status, seconds) of one request on a fresh connection; (status, seconds, answer) with `want_body`."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"} if body else {})
        response = conn.getresponse()
        answer = response.read()
        seconds = time.perf_counter() - start
        return (response.status, seconds, answer) if want_body else (response.status, seconds)
    finally:
        conn.close()


def healthz_probe(port: int, timeout: float) -> float:
    """Seconds /healthz took (`timeout` when it did not answer in time)."""
    try:
        return request(port, "GET", "/healthz", timeout=timeout)[1]
    except OSError:
        return timeout


def metadata(args) -> None:
    data = steps_bomb_png()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "steps-bomb.png"
        path.write_bytes(data)
        print(f"reproduction file: {len(data)} bytes")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edge_runtime", "--json", str(path)], cwd=REPO, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL)
        print(f"| CLI `python -m edge_runtime` (model load included) | {time.perf_counter() - start:.2f} s |")
        node = shutil.which("node")
        if node:
            module = (REPO / "extension" / "src" / "lib" / "provenance.js").as_uri()
            out = subprocess.run([node, "--input-type=module", "-e", JS_INSPECT, module, str(path)],
                                 capture_output=True, text=True, check=True)
            print(f"| JS provenance.inspect | {float(out.stdout):.3f} s |")
        port = free_port()
        with open(Path(tmp) / "relay.log", "w") as log:
            relay = start_relay(port, log)
            try:
                probes, done = [], threading.Event()
                timing = {}

                def check():
                    try:
                        timing["check"] = request(port, "POST", "/api/v1/check", data, timeout=600)
                    finally:
                        done.set()

                worker = threading.Thread(target=check)
                worker.start()
                while True:  # at least one probe, then every 0.1 s until the check is answered
                    probes.append(healthz_probe(port, 60))
                    if done.wait(0.1):
                        break
                worker.join()
                status, seconds = timing.get("check", ("no answer", 600.0))
                print(f"| relay POST /api/v1/check | {seconds:.2f} s (HTTP {status}) |")
                print(f"| relay /healthz meanwhile, worst of {len(probes)} | {max(probes, default=0):.3f} s |")
            finally:
                relay.terminate()
                relay.wait(10)


def half_open(args) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "relay.log", "w") as log:
        relay = start_relay(port, log)
        sockets = []
        try:
            print(f"| /healthz, idle | {healthz_probe(port, 10):.3f} s |")
            for _ in range(args.connections):
                s = socket.create_connection((HOST, port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                sockets.append(s)
            stop = threading.Event()

            def drip():
                while not stop.wait(20):  # one header line every 20 s on every connection
                    for s in sockets:
                        try:
                            s.sendall(b"X-Slow: 1\r\n")
                        except OSError:
                            pass

            dripper = threading.Thread(target=drip, daemon=True)
            dripper.start()
            probes, deadline = [], time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                probes.append(healthz_probe(port, 10))
                time.sleep(max(0.0, 1 - probes[-1]))
            stop.set()
            probes.sort()
            print(f"| /healthz under {args.connections} half-open connections, {len(probes)} probes "
                  f"(10 s = no answer) | median {probes[len(probes) // 2]:.3f} s, worst {probes[-1]:.3f} s |")
        finally:
            for s in sockets:
                s.close()
            relay.terminate()
            relay.wait(10)


def explain(args) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "relay.log", "w") as log:
        relay = start_relay(port, log)
        try:
            print(f"| relay RSS at start | {rss_mb(relay.pid):.0f} MB |")
            statuses = []
            overlay_bytes = 0
            for index in range(args.explains):
                # noise: its overlay is a ~0.5 MB JPEG data URL, as for a photo-like picture
                pixels = np.random.default_rng(index).integers(0, 256, (768, 768, 3), dtype=np.uint8)
                out = io.BytesIO()
                Image.fromarray(pixels).save(out, "PNG")
                status, _, body = request(port, "POST", "/api/v1/explain", out.getvalue(), want_body=True)
                statuses.append(status)
                overlay_bytes += len(body)
            print(f"| answers of {args.explains} distinct explains | {overlay_bytes / 1e6:.0f} MB in all |")
            print(f"| relay RSS after {args.explains} distinct explains (HTTP {sorted(set(statuses))}) | "
                  f"{rss_mb(relay.pid):.0f} MB |")
            big = []
            for index in range(4):
                out = io.BytesIO()
                Image.new("RGB", (4000, 3000), (index * 50, 80, 120)).save(out, "WEBP", lossless=True)
                big.append(out.getvalue())
            peak, done = [0.0], threading.Event()

            def sample():
                while not done.wait(0.05):
                    peak[0] = max(peak[0], rss_mb(relay.pid))

            sampler = threading.Thread(target=sample)
            sampler.start()
            paths = ["/api/v1/check", "/api/v1/check", "/api/v1/explain", "/api/v1/explain"]
            results = [None] * 4
            workers = [threading.Thread(target=lambda i=i: results.__setitem__(
                i, request(port, "POST", paths[i], big[i])[0])) for i in range(4)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            done.set()
            sampler.join()
            print(f"| relay peak RSS under 2 checks + 2 explains of {len(big[0])}-byte 12 MP WebPs "
                  f"(HTTP {results}) | {peak[0]:.0f} MB |")
        finally:
            relay.terminate()
            relay.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("metadata").set_defaults(run=metadata)
    slow = sub.add_parser("half-open")
    slow.add_argument("--connections", type=int, default=150)
    slow.add_argument("--seconds", type=int, default=60)
    slow.set_defaults(run=half_open)
    heavy = sub.add_parser("explain")
    heavy.add_argument("--explains", type=int, default=100)
    heavy.set_defaults(run=explain)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
