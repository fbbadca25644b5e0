"""Slowloris on loopback: clients that drip-feed their requests must not take every thread of the default server."""
import socket
import threading
import time

import pytest

from test_server_main import http_call, start, stop

SLOW_CLIENTS = 8  # more than the server's request threads below
DRIP_SECONDS = 6.0


def drip(sockets, stop_at):
    """Send request headers one byte at a time on every socket until `stop_at`, never finishing them."""
    while time.monotonic() < stop_at:
        for sock in sockets:
            try:
                sock.sendall(b"a")
            except OSError:
                pass
        time.sleep(0.5)


def test_default_server_answers_while_slow_clients_drip(tmp_path):
    process, port, log = start(tmp_path, "--workers", "1", "--threads", "2")
    sockets = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ")
            sockets.append(sock)
        dripper = threading.Thread(target=drip, args=(sockets, time.monotonic() + DRIP_SECONDS), daemon=True)
        dripper.start()
        time.sleep(1.0)
        answers = []
        for _ in range(3):
            try:
                answers.append(http_call(port, "GET", "/healthz", timeout=3)[0])
            except OSError as exc:  # socket.timeout included
                answers.append(repr(exc))
            time.sleep(0.5)
        dripper.join()
        assert answers == [200, 200, 200], log.read_text()[-2000:]
    finally:
        for sock in sockets:
            sock.close()
        stop(process)


HALF_OPEN_CLIENTS = 150  # more than waitress's 100 connections


def test_default_server_answers_under_more_half_open_connections_than_its_limit(tmp_path, monkeypatch):
    # Issue 21: 98 connections sending one header line every 20 s kept /healthz from answering for 80 s and more.
    monkeypatch.setenv("ANIMEART_RELAY_HEADER_TIMEOUT_S", "3")
    process, port, log = start(tmp_path, "--workers", "1", "--threads", "2")
    sockets = []
    try:
        for _ in range(HALF_OPEN_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sockets.append(sock)
        seconds = []
        for _ in range(3):
            started = time.monotonic()
            try:
                assert http_call(port, "GET", "/healthz", timeout=5)[0] == 200
            except OSError as exc:
                pytest.fail(f"/healthz did not answer under {HALF_OPEN_CLIENTS} half-open connections: {exc!r}")
            seconds.append(time.monotonic() - started)
        assert max(seconds) < 1.0, seconds
        # the header deadline: a connection that never finishes its headers is closed, the others got room
        time.sleep(5)
        closed = sum(_closed_by_server(sock) for sock in sockets)
        assert closed == HALF_OPEN_CLIENTS, f"{closed} of {HALF_OPEN_CLIENTS} closed; {log.read_text()[-2000:]}"
    finally:
        for sock in sockets:
            sock.close()
        stop(process)


def test_a_client_past_its_connection_cap_loses_the_connection_idle_longest(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEART_RELAY_CONNECTIONS_PER_CLIENT", "4")
    process, port, log = start(tmp_path, "--workers", "1", "--threads", "2")
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        time.sleep(0.5)
        assert http_call(port, "GET", "/healthz", timeout=5)[0] == 200  # the 5th: the oldest idle one goes
        assert _closed_by_server(idle[0]) and not any(_closed_by_server(sock, wait=0.2) for sock in idle[2:])
    finally:
        for sock in idle:
            sock.close()
        stop(process)


def _closed_by_server(sock, wait: float = 1.0) -> bool:
    """Whether the server closed `sock` (EOF or reset within `wait` seconds)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True
