"""Slowloris on loopback: clients that drip-feed their requests must not take every thread of the default server."""
import socket
import threading
import time

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
