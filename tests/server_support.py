"""Shared pieces of the relay tests: real images, a local HTTP server, and a guard against outside traffic."""
from __future__ import annotations

import csv
import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from server import fetcher

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_SERVER_IP = "127.0.0.2"  # loopback, but a different address than the 127.0.0.1 the guard must refuse


def sample_images(per_format: int = 1) -> list:
    """Paths of real dataset images: the first `per_format` manifest rows of each format (jpg, webp, png)."""
    picked, counts = [], {}
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if counts.get(row["format"], 0) < per_format:
                counts[row["format"]] = counts.get(row["format"], 0) + 1
                picked.append(DATA / row["path"])
    return picked


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch):
    """Fail a test that would resolve a real name or connect to anything but loopback."""
    real_resolve, real_open = fetcher.resolve, fetcher.open_connection

    def resolve(host, port):
        if not (host == "localhost" or _is_numeric_host(host)):
            raise AssertionError(f"test tried a real DNS lookup of {host!r}")
        return real_resolve(host, port)

    def open_connection(address, port, timeout):
        assert ipaddress.ip_address(address).is_loopback, f"test tried to connect to {address}"
        return real_open(address, port, timeout)

    monkeypatch.setattr(fetcher, "resolve", resolve)
    monkeypatch.setattr(fetcher, "open_connection", open_connection)


def _is_numeric_host(host: str) -> bool:
    """True for IP literals, including the legacy IPv4 forms (0x7f.1, 2130706433) parsed without DNS."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        return False


def pretend_public(monkeypatch, names: dict) -> None:
    """Within one test: `names` (host -> list of addresses) resolve as given, and TEST_SERVER_IP counts as public."""
    checked_resolve, real_is_public = fetcher.resolve, fetcher.is_public_address
    monkeypatch.setattr(fetcher, "resolve",
                        lambda host, port: list(names[host]) if host in names else checked_resolve(host, port))
    monkeypatch.setattr(fetcher, "is_public_address", lambda address: address == TEST_SERVER_IP
                        or real_is_public(address))


class ImageServer(ThreadingHTTPServer):
    """A threaded HTTP server on TEST_SERVER_IP with the paths the fetcher tests need; records requests."""

    daemon_threads = True

    def __init__(self, image: bytes):
        self.image = image
        self.requests = []  # (path, Host header)
        super().__init__((TEST_SERVER_IP, 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{TEST_SERVER_IP}:{self.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    """GET paths: /image, /empty, /text, /status/N, /redirect?to=URL, /chain/N (N redirects, then
    /image), /big-declared,
    /big-undeclared, /drip (body trickles forever), /drip-headers (headers trickle forever)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server: ImageServer = self.server
        server.requests.append((self.path, self.headers.get("Host")))
        url = urlsplit(self.path)
        path = url.path
        if path == "/image":
            self._send(200, server.image, "image/jpeg")
        elif path == "/empty":
            self._send(200, b"", "image/png")
        elif path == "/text":
            self._send(200, b"<html>not an image</html>", "text/html")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"nope", "text/plain")
        elif path == "/redirect":
            self._redirect(parse_qs(url.query)["to"][0])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])  # redirects still to come
            self._redirect(f"/chain/{left - 1}" if left > 1 else "/image")
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10 ** 9))
            self.end_headers()
        elif path == "/big-undeclared":
            self.send_response(200)
            self.end_headers()
            self._write_for(lambda: b"\0" * 65536, seconds=5)
        elif path == "/drip":
            self.send_response(200)
            self.end_headers()
            self._write_for(lambda: (time.sleep(0.05), b"x")[1], seconds=30)
        elif path == "/drip-headers":
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            self._write_for(lambda: (time.sleep(0.05), b"X-Slow: 1\r\n")[1], seconds=30)
        else:
            self._send(404, b"unknown", "text/plain")

    def _send(self, code, body, content_type):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _write_for(self, next_bytes, seconds):
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                self.wfile.write(next_bytes())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
