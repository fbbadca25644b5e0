"""`python -m server` for real: gunicorn and waitress on 127.0.0.1, a chunked upload, the access log."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_runtime import Detector
from server_support import free_port, sample_images

REPO = Path(__file__).resolve().parents[1]
LIMIT = 1024 * 1024  # ANIMEART_RELAY_MAX_BODY_BYTES for these servers


def start(tmp_path, *args):
    """Start `python -m server` on a free loopback port; returns (process, port, log path)."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    env = {**os.environ, "ANIMEART_RELAY_MAX_BODY_BYTES": str(LIMIT), "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), *args],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{log.read_text()}")
        try:
            if http_call(port, "GET", "/healthz")[0] == 200:
                return process, port, log
        except OSError:
            time.sleep(0.2)
    process.kill()
    pytest.fail(f"server did not answer /healthz within 60 s:\n{log.read_text()}")


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def http_call(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["gunicorn", "waitress"])
def running(request, tmp_path_factory):
    process, port, log = start(tmp_path_factory.mktemp(request.param), "--server", request.param,
                               "--workers", "1", "--threads", "2")
    yield port, log
    assert stop(process) == 0


def test_check_over_the_real_server(running):
    port, _ = running
    data = sample_images()[0].read_bytes()
    status, body, _ = http_call(port, "POST", "/api/v1/check", data, {"Content-Type": "image/webp"})
    assert status == 200
    answer = json.loads(body)
    want = Detector(threads=1).check(data).to_dict()
    assert answer["label"] == want["label"]
    assert answer["probability"] == pytest.approx(want["probability"], abs=1e-5)


def test_chunked_upload_without_length_is_capped(running):
    """Just over the limit (waitress answers bodies over limit + 1 MB itself, in plain text, before the app)."""
    port, _ = running

    def chunks():
        for _ in range(LIMIT // 65536 + 4):
            yield b"\xff" * 65536
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        try:
            conn.request("POST", "/api/v1/check", body=chunks(), encode_chunked=True,
                         headers={"Content-Type": "image/jpeg"})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has answered
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == 413
    finally:
        conn.close()


def test_a_body_over_the_servers_own_limit_gets_the_json_error(running):
    """Issue 21: waitress refuses a body over limit + 1 MB itself, before the app, and answered it in plain text."""
    port, _ = running
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/api/v1/check")
        conn.putheader("Content-Type", "image/jpeg")
        conn.putheader("Content-Length", str(LIMIT + 4 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("Content-Type") == "application/json"
        assert json.loads(response.read())["error"]["code"] == 413
    finally:
        conn.close()


def test_one_access_log_line_per_request(running):
    port, log = running
    marker = f"/healthz?probe={time.time_ns()}"
    for _ in range(3):
        http_call(port, "GET", marker)
    time.sleep(0.5)
    lines = [line for line in log.read_text().splitlines() if marker in line]
    assert len(lines) == 3 and all('" 200 ' in line for line in lines)


def test_missing_model_is_a_clean_error():
    result = subprocess.run([sys.executable, "-m", "server", "--model", "no-such-model.tflite"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no-such-model.tflite" in result.stderr and "Traceback" not in result.stderr
