"""Milliseconds per image in the extension's in-browser engine beside the relay's, on the same dataset images.

    python benchmarks/browser_engine.py [--images 24]

Browser: Debian's headless Chromium with the unpacked extension (run `make extension` first); the engine
(engine/runtime.js: decode, resize, views, LiteRT.js) is timed inside an extension page with performance.now(),
from image bytes to verdict, after one warm-up image. WASM on the CPU always; WebGPU only where headless Chromium
offers an adapter (else the table says so). Relay: `python -m server` on a loopback port with the bundled model,
one POST /api/v1/check per image, timed by the client (HTTP on loopback included; every image is new to its
cache). Both with TTA "always" (every view) and "adaptive" (the default: more views only near the threshold).
"""
from __future__ import annotations

import argparse
import base64
import csv
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
EXTENSION = REPO / "extension" / "src"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps"]
MODES = ("always", "adaptive")

TIME_IN_PAGE = """async ([data, tta, accelerator]) => {
    const { createEngine } = await import('./runtime.js');
    self.engines ??= {};
    self.engines[accelerator] ??= await createEngine({ accelerator });
    const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
    const start = performance.now();
    const result = await self.engines[accelerator].check(bytes, tta);
    return { ms: performance.now() - start, views: result.views_run.length, prepare: result.timings_ms.decode };
}"""


def sample(n: int) -> list[Path]:
    """n dataset images spread over both classes and all formats (every k-th row of the manifest)."""
    with open(DATA / "manifest.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["sha256"])
    return [DATA / row["path"] for row in rows[:: max(1, len(rows) // n)][:n]]


def summary(ms: list[float]) -> str:
    return f"{statistics.mean(ms):7.1f} {statistics.median(ms):7.1f} {sorted(ms)[int(0.95 * (len(ms) - 1))]:7.1f}"


def webgpu_adapter(page) -> str | None:
    """A description of the WebGPU adapter this browser offers, or None."""
    return page.evaluate("""async () => {
        if (!navigator.gpu) return null;
        const adapter = await navigator.gpu.requestAdapter();
        if (!adapter) return null;
        const info = adapter.info ?? {};
        return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
    }""")


def time_browser(paths: list[Path], warmup: Path) -> tuple[dict, str]:
    """{(accelerator, mode): [ms per image]} and what the browser said about WebGPU."""
    timings = {}
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=False,
            args=[*ARGS, f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}"])
        try:
            worker = context.service_workers[0] if context.service_workers \
                else context.wait_for_event("serviceworker", timeout=30_000)
            page = context.new_page()
            page.goto(worker.url.replace("background.js", "engine/offscreen.html"))
            adapter = webgpu_adapter(page)
            accelerators = ["wasm"] + (["webgpu"] if adapter else [])
            for accelerator in accelerators:
                for mode in MODES:
                    page.evaluate(TIME_IN_PAGE, [base64.b64encode(warmup.read_bytes()).decode(), mode, accelerator])
                    timings[(accelerator, mode)] = [
                        page.evaluate(TIME_IN_PAGE, [base64.b64encode(path.read_bytes()).decode(), mode, accelerator])
                        for path in paths]
        finally:
            context.close()
    note = f"WebGPU adapter: {adapter}" if adapter else "WebGPU: this headless Chromium offers no adapter; not measured"
    return timings, note


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_relay(paths: list[Path], warmup: Path) -> dict:
    """{mode: [ms per image]} for POST /api/v1/check on a local relay."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ANIMEART_RELAY_RATE_LIMIT": "1000 per second"}  # one client, timed: no throttling
    process = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--workers", "1"], cwd=REPO,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the relay did not start")
            time.sleep(0.25)
        timings = {}
        with requests.Session() as session:
            for mode in MODES:
                post = lambda path: session.post(f"{url}/api/v1/check?tta={mode}", data=path.read_bytes(),  # noqa: E731
                                                 headers={"Content-Type": "application/octet-stream"}, timeout=60)
                post(warmup).raise_for_status()
                timings[mode] = []
                for path in paths:
                    start = time.perf_counter()
                    post(path).raise_for_status()
                    timings[mode].append((time.perf_counter() - start) * 1e3)
        return timings
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    paths = sample(args.images + 1)
    warmup, paths = paths[0], paths[1:]
    browser, note = time_browser(paths, warmup)
    relay = time_relay(paths, warmup)

    print(f"{len(paths)} dataset images ({', '.join(sorted({p.suffix for p in paths}))}), ms per image, "
          f"bytes -> verdict; {os.cpu_count()} CPUs\n")
    print("| engine | TTA | mean | p50 | p95 | of which decode + resize + views (mean) | views run (mean) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (accelerator, mode), runs in browser.items():
        views = statistics.mean(run["views"] for run in runs)
        prepare = statistics.mean(run["prepare"] for run in runs)
        print(f"| browser ({accelerator}) | {mode} | {' | '.join(summary([r['ms'] for r in runs]).split())} "
              f"| {prepare:.1f} | {views:.2f} |")
    for mode, ms in relay.items():
        print(f"| relay (python -m server, HTTP on loopback) | {mode} | {' | '.join(summary(ms).split())} | | |")
    print(f"\n{note}")


if __name__ == "__main__":
    main()
