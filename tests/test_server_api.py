"""The relay's endpoints and error paths through Flask's test client, with the bundled model.

Verdicts are compared with what `Detector().check` says about the same bytes, never with fixed labels:
the bundled model is replaced when a better one is trained.
"""
import hashlib
import io
import json
import logging
import re
import struct
import threading
import zlib

import pytest

from edge_runtime import Detector
from server import Config, create_app
from server_support import ImageServer, no_outside_network, pretend_public, sample_images

__all__ = ["no_outside_network"]

IMAGES = sample_images(per_format=2)  # jpg, webp and png files from the dataset


ANY_PORT = tuple(range(1, 65536))  # the local test site listens on a random port


def make_app(**settings):
    return create_app(Config(**{"rate_limit": "off", "batch_rate_limit": "off", "fetch_ports": ANY_PORT,
                                **settings}))


@pytest.fixture
def app():
    return make_app(max_body_bytes=2 * 1024 * 1024)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def reference():
    return Detector(threads=1)


def expected(reference, data, tta="adaptive"):
    return reference.check(data, tta=tta).to_dict()


def assert_same_verdict(answer, want, data):
    assert answer["label"] == want["label"]
    assert answer["probability"] == pytest.approx(want["probability"], abs=1e-5)
    assert answer["view_probabilities"] == pytest.approx(want["view_probabilities"], abs=1e-5)
    assert (answer["tta"], answer["views_run"]) == (want["tta"], want["views_run"])
    assert answer["threshold"] == want["threshold"]
    assert answer["unsure_band"] == want["unsure_band"]
    assert answer["model_version"] == want["model_version"]
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()
    assert set(answer["timings_ms"]) >= {"decode", "infer", "total"}


def assert_error(response, code, words=""):
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["error"]["code"] == code
    assert words.lower() in body["error"]["reason"].lower()


def png_header_only(width, height):
    """A tiny PNG that declares `width` x `height` pixels (what a decompression bomb looks like)."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


# --- health, model, demo, metrics --------------------------------------------------------------------

def test_healthz(client, reference):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "model_loaded": True,
                                   "model_version": reference.info()["model_version"]}


def test_model_reports_the_sidecar(client, reference):
    answer = client.get("/api/v1/model").get_json()
    info = reference.info()
    for key in ("model_version", "variant", "threshold", "unsure_band", "training_data", "metrics",
                "tflite_sha256", "input_size"):
        assert answer[key] == info[key]


def test_demo_page_and_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200
    assert "http" not in re.sub(r'placeholder="[^"]*"', "", html)  # nothing loaded from elsewhere (no CDN)
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_openapi_is_served(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200 and b"openapi: 3.1.0" in response.data


# --- check -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.suffix)
def test_check_raw_body_matches_the_detector(client, reference, path):
    data = path.read_bytes()
    response = client.post("/api/v1/check", data=data, content_type=f"image/{path.suffix[1:]}")
    assert response.status_code == 200
    answer = response.get_json()
    assert_same_verdict(answer, expected(reference, data), data)
    assert answer["cached"] is False
    assert answer["tta"] == "adaptive" and list(answer["view_probabilities"]) == answer["views_run"]


def test_check_multipart_and_octet_stream_and_no_content_type(client, reference):
    data = IMAGES[1].read_bytes()
    want = expected(reference, data)
    multipart = client.post("/api/v1/check", data={"file": (io.BytesIO(data), "x.jpg")})
    octets = client.post("/api/v1/check", data=data, content_type="application/octet-stream")
    bare = client.post("/api/v1/check", data=data, headers={"Content-Type": ""})
    for response in (multipart, octets, bare):
        assert response.status_code == 200
        assert_same_verdict(response.get_json(), want, data)


def test_repeated_check_is_cached(app, reference):
    client = app.test_client()
    data = IMAGES[2].read_bytes()
    first = client.post("/api/v1/check", data=data, content_type="image/webp").get_json()
    second = client.post("/api/v1/check", data=data, content_type="image/webp").get_json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["probability"] == first["probability"]
    assert second["view_probabilities"] == first["view_probabilities"]
    no_tta = client.post("/api/v1/check?tta=0", data=data, content_type="image/webp").get_json()
    assert no_tta["cached"] is False  # the cache key includes the TTA setting


def test_tta_off_checks_the_original_view_only(client, reference):
    data = IMAGES[0].read_bytes()
    response = client.post("/api/v1/check?tta=0", data=data, content_type="image/jpeg")
    answer = response.get_json()
    assert list(answer["view_probabilities"]) == ["original"]
    assert_same_verdict(answer, expected(reference, data, tta=False), data)


def test_cache_off_never_reports_cached():
    client = make_app(cache_entries=0).test_client()
    data = IMAGES[0].read_bytes()
    answers = [client.post("/api/v1/check", data=data, content_type="image/jpeg").get_json() for _ in range(2)]
    assert [a["cached"] for a in answers] == [False, False]


@pytest.mark.parametrize("kwargs, code, words", [
    ({"data": b"", "content_type": "image/png"}, 400, "empty"),
    ({"data": {"other": (io.BytesIO(b"x"), "x.png")}}, 400, "'file' is missing"),
    ({"data": {"file": (io.BytesIO(b""), "x.png")}}, 400, "empty"),
    ({"data": b"hello", "content_type": "text/plain"}, 415, "content type"),
    ({"data": b"{}", "content_type": "application/json"}, 415, "content type"),
    ({"data": b"this is not an image at all", "content_type": "image/png"}, 422, "not an image"),
    ({"data": png_header_only(20000, 20000), "content_type": "image/png"}, 422, "too large"),
    ({"data": b"\0" * (2 * 1024 * 1024 + 1), "content_type": "image/png"}, 413, "too large"),
])
def test_check_errors(client, kwargs, code, words):
    assert_error(client.post("/api/v1/check", **kwargs), code, words)


@pytest.mark.parametrize("path", IMAGES[::2], ids=lambda p: p.suffix)
def test_truncated_image_is_unprocessable(client, path):
    data = path.read_bytes()
    response = client.post("/api/v1/check", data=data[: len(data) // 2], content_type="image/png")
    assert_error(response, 422)
    assert response.get_json()["error"]["reason"]


def test_bad_tta_value(client):
    assert_error(client.post("/api/v1/check?tta=maybe", data=IMAGES[0].read_bytes(), content_type="image/jpeg"),
                 400, "tta")


def test_chunked_upload_over_the_limit_is_refused(client):
    """No Content-Length: the server reads the stream with a cap (wsgi.input_terminated as gunicorn sets it)."""
    body = io.BytesIO(b"\xff" * (3 * 1024 * 1024))
    response = client.post("/api/v1/check", input_stream=body, content_type="image/jpeg",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert_error(response, 413, "too large")
    assert body.tell() <= 2 * 1024 * 1024 + 64 * 1024  # stopped reading shortly after the limit


def test_chunked_upload_under_the_limit_is_checked(client, reference):
    data = IMAGES[0].read_bytes()
    response = client.post("/api/v1/check", input_stream=io.BytesIO(data), content_type="image/jpeg",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200
    assert_same_verdict(response.get_json(), expected(reference, data), data)


def test_unknown_path_and_wrong_method_are_json(client):
    assert_error(client.get("/nope"), 404)
    response = client.get("/api/v1/check")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


# --- check-url ---------------------------------------------------------------------------------------

@pytest.fixture
def site():
    with ImageServer(IMAGES[0].read_bytes()) as server:
        yield server


def test_check_url_fetches_and_checks(client, reference, site, monkeypatch):
    pretend_public(monkeypatch, {})
    response = client.post("/api/v1/check-url", json={"url": f"{site.base}/image"})
    assert response.status_code == 200
    answer = response.get_json()
    data = IMAGES[0].read_bytes()
    assert_same_verdict(answer, expected(reference, data), data)
    assert "fetch" in answer["timings_ms"]
    assert data not in response.data  # the fetched bytes are never echoed


@pytest.mark.parametrize("url, code, words", [
    ("http://127.0.0.1:8765/healthz", 403, "not a public"),
    ("http://169.254.169.254/latest/meta-data/", 403, "not a public"),
    ("http://10.0.0.1/x.png", 403, "not a public"),
    ("file:///etc/passwd", 403, "http"),
    ("not a url", 400, ""),
])
def test_check_url_refuses(client, url, code, words):
    assert_error(client.post("/api/v1/check-url", json={"url": url}), code, words)


@pytest.mark.parametrize("path, code", [("/redirect?to=http://127.0.0.1/", 403), ("/status/404", 502),
                                        ("/text", 422), ("/empty", 422)])
def test_check_url_remote_problems(client, site, path, code, monkeypatch):
    pretend_public(monkeypatch, {})
    assert_error(client.post("/api/v1/check-url", json={"url": site.base + path}), code)


@pytest.mark.parametrize("kwargs, code, words", [
    ({"data": b"url=http://x", "content_type": "application/x-www-form-urlencoded"}, 415, "json"),
    ({"data": b"{not json", "content_type": "application/json"}, 400, "bad json"),
    ({"data": b"", "content_type": "application/json"}, 400, "empty"),
    ({"data": b"[" * 50000 + b"]" * 50000, "content_type": "application/json"}, 413, "too large"),
    ({"data": b"[" * 10000 + b"]" * 10000, "content_type": "application/json"}, 400, "bad json"),
    ({"json": ["http://x"]}, 400, "url"),
    ({"json": {"link": "http://x"}}, 400, "url"),
    ({"json": {"url": 42}}, 400, "url"),
])
def test_check_url_bad_requests(client, kwargs, code, words):
    assert_error(client.post("/api/v1/check-url", **kwargs), code, words)


def test_check_url_can_be_switched_off(site, monkeypatch):
    pretend_public(monkeypatch, {})
    client = make_app(allow_url_fetch=False).test_client()
    assert_error(client.post("/api/v1/check-url", json={"url": f"{site.base}/image"}), 403, "disabled")
    batch = client.post("/api/v1/check-batch", json={"urls": [f"{site.base}/image"]}).get_json()
    assert batch["results"][0]["error"]["code"] == 403
    assert site.requests == []


# --- check-batch -------------------------------------------------------------------------------------

def test_batch_files_with_one_bad_item(client, reference):
    good = [IMAGES[0].read_bytes(), IMAGES[4].read_bytes()]
    files = [(io.BytesIO(good[0]), "a.jpg"), (io.BytesIO(b"garbage"), "b.png"), (io.BytesIO(good[1]), "c.png"),
             (io.BytesIO(b""), "d.png")]
    response = client.post("/api/v1/check-batch", data={"file": files})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["ok"] for r in results] == [True, False, True, False]
    assert_same_verdict(results[0], expected(reference, good[0]), good[0])
    assert_same_verdict(results[2], expected(reference, good[1]), good[1])
    assert results[1]["error"]["code"] == 422
    assert results[3]["error"]["code"] == 400


def test_batch_urls_and_files_mixed(client, reference, site, monkeypatch):
    pretend_public(monkeypatch, {})
    local = IMAGES[3].read_bytes()
    data = {"file": [(io.BytesIO(local), "a.webp")],
            "url": [f"{site.base}/image", "http://169.254.169.254/", f"{site.base}/status/500"]}
    results = client.post("/api/v1/check-batch?tta=0", data=data).get_json()["results"]
    assert [r["ok"] for r in results] == [True, True, False, False]
    assert_same_verdict(results[0], expected(reference, local, tta=False), local)
    remote = IMAGES[0].read_bytes()
    assert_same_verdict(results[1], expected(reference, remote, tta=False), remote)
    assert [results[2]["error"]["code"], results[3]["error"]["code"]] == [403, 502]


def test_batch_json_urls(client, site, monkeypatch):
    pretend_public(monkeypatch, {})
    response = client.post("/api/v1/check-batch", json={"urls": [f"{site.base}/image", 7, "ftp://x/y"]})
    results = response.get_json()["results"]
    assert [r["ok"] for r in results] == [True, False, False]
    assert [results[1]["error"]["code"], results[2]["error"]["code"]] == [400, 403]


@pytest.mark.parametrize("kwargs, code, words", [
    ({"json": {"urls": []}}, 400, "no items"),
    ({"data": {}, "content_type": "multipart/form-data"}, 400, "no items"),
    ({"json": {"urls": ["http://10.0.0.1/"] * 17}}, 400, "too many"),
    ({"data": {"file": [(io.BytesIO(b"x"), f"{i}.png") for i in range(17)]}}, 400, "too many"),
    ({"json": {"urls": "http://x"}}, 400, "urls"),
    ({"data": b"x", "content_type": "image/png"}, 415, "json"),
])
def test_batch_bad_requests(client, kwargs, code, words):
    assert_error(client.post("/api/v1/check-batch", **kwargs), code, words)


# --- rate limits, CORS, token, Host header -----------------------------------------------------------

def test_rate_limit_answers_429_with_retry_after():
    client = make_app(rate_limit="2 per minute").test_client()
    data = IMAGES[0].read_bytes()
    codes = [client.post("/api/v1/check?tta=0", data=data, content_type="image/jpeg").status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    response = client.post("/api/v1/check?tta=0", data=data, content_type="image/jpeg")
    assert_error(response, 429, "rate limit")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert client.get("/healthz").status_code == 200  # only the check endpoints are limited


def test_rate_limit_is_per_client():
    client = make_app(rate_limit="1 per minute").test_client()
    data = IMAGES[0].read_bytes()

    def post(address):
        return client.post("/api/v1/check?tta=0", data=data, content_type="image/jpeg",
                           environ_base={"REMOTE_ADDR": address}).status_code
    assert [post("10.1.1.1"), post("10.1.1.1"), post("10.2.2.2")] == [200, 429, 200]


@pytest.mark.parametrize("origin", ["chrome-extension://abcdefghijklmnopabcdefghijklmnop",
                                    "moz-extension://0b6c7c3e-1111-2222-3333-444455556666",
                                    "http://localhost"])
def test_cors_allows_extensions_and_the_demo_page(client, origin):
    preflight = client.options("/api/v1/check", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    response = client.post("/api/v1/check?tta=0", data=IMAGES[0].read_bytes(), content_type="image/jpeg",
                           headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:9999",
                                    "http://127.0.0.1.evil.example", "chrome-extensionX://a"])
def test_cors_refuses_other_origins(client, origin):
    for response in (client.options("/api/v1/check", headers={"Origin": origin,
                                                               "Access-Control-Request-Method": "POST"}),
                     client.post("/api/v1/check", data=IMAGES[0].read_bytes(), content_type="image/jpeg",
                                 headers={"Origin": origin})):
        assert_error(response, 403, "origin")
        assert "Access-Control-Allow-Origin" not in response.headers


def test_extra_origin_from_config():
    client = make_app(cors_origins=("https://relay-ui.example",)).test_client()
    response = client.get("/api/v1/model", headers={"Origin": "https://relay-ui.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://relay-ui.example"


def test_bearer_token():
    client = make_app(token="s3cret-token-0123456789").test_client()
    data = IMAGES[0].read_bytes()

    def post(headers):
        return client.post("/api/v1/check?tta=0", data=data, content_type="image/jpeg", headers=headers)
    assert_error(post({}), 401, "token")
    assert post({}).headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(post({"Authorization": "Bearer wrong"}), 401)
    assert_error(post({"Authorization": "Basic s3cret-token-0123456789"}), 401)
    assert post({"Authorization": "Bearer s3cret-token-0123456789"}).status_code == 200
    assert_error(client.get("/api/v1/model"), 401)
    assert client.get("/healthz").status_code == 200
    preflight = client.options("/api/v1/check", headers={"Origin": "chrome-extension://abc",
                                                         "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200


def test_foreign_host_header_is_refused(client):
    """DNS rebinding against the relay itself: a page on evil.example re-pointed at 127.0.0.1."""
    assert_error(client.get("/api/v1/model", headers={"Host": "evil.example:8765"}), 400)
    assert client.get("/api/v1/model", headers={"Host": "127.0.0.1:8765"}).status_code == 200


# --- metrics and the access log ----------------------------------------------------------------------

def metric(text, name, **labels):
    """The value of one series in Prometheus exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{wanted}}}" if labels else "")) + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_requests_errors_and_cache_hits():
    client = make_app().test_client()
    data = IMAGES[0].read_bytes()
    for _ in range(3):
        client.post("/api/v1/check?tta=0", data=data, content_type="image/jpeg")
    client.post("/api/v1/check", data=b"junk", content_type="image/png")
    client.post("/api/v1/check-batch", data={"file": [(io.BytesIO(b"junk"), "a.png")]})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert metric(text, "relay_requests_total", endpoint="/api/v1/check", code=200) == 3
    assert metric(text, "relay_requests_total", endpoint="/api/v1/check", code=422) == 1
    assert metric(text, "relay_errors_total", code=422) == 2  # the check and the batch item
    assert metric(text, "relay_cache_hits_total") == 2
    assert metric(text, "relay_cache_misses_total") == 3
    assert metric(text, "relay_request_duration_seconds_count", endpoint="/api/v1/check") == 4
    assert metric(text, "relay_request_duration_seconds_bucket", endpoint="/api/v1/check", le="+Inf") == 4
    buckets = [float(v) for v in re.findall(
        r'^relay_request_duration_seconds_bucket\{endpoint="/api/v1/check",le="[^"]+"\} (\S+)$', text, re.M)]
    assert buckets == sorted(buckets)  # cumulative
    assert metric(text, "relay_cache_entries") == 1
    for line in text.splitlines():  # every sample line is `name{labels} value`
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[^}]*\})? [0-9.e+-]+', line), line


def test_one_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="server.access"):
        client.get("/healthz")
        client.post("/api/v1/check", data=b"junk", content_type="image/png")
        client.get("/nope%0Aforged-line")
        static = client.get("/")
        static.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert len(lines) == 4
    assert '"GET /healthz" 200' in lines[0]
    assert '"POST /api/v1/check" 422' in lines[1]
    assert "\n" not in lines[2] and "404" in lines[2]
    assert lines[3].endswith(f" {static.content_length}B") and static.content_length > 0  # a file from disk


def test_json_logs(caplog):
    client = make_app(json_logs=True).test_client()
    with caplog.at_level(logging.INFO, logger="server.access"):
        client.get("/healthz")
    entry = json.loads([r.getMessage() for r in caplog.records if r.name == "server.access"][0])
    assert entry["path"] == "/healthz" and entry["status"] == 200 and entry["method"] == "GET"


# --- the Detector guard ------------------------------------------------------------------------------

class ExclusiveUse:
    """Wraps a Detector and records how many threads were inside `check` at once."""

    def __init__(self, detector, gate=None):
        self.detector = detector
        self.gate = gate
        self.entered = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def info(self):
        return self.detector.info()

    def check(self, data, **options):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        try:
            if self.gate is not None:
                self.gate.wait(timeout=10)
            return self.detector.check(data, **options)
        finally:
            with self.lock:
                self.inside -= 1


def test_concurrent_requests_never_share_a_detector(reference):
    wrappers = []

    def factory():
        wrappers.append(ExclusiveUse(Detector(threads=1)))
        return wrappers[-1]
    app = create_app(Config(rate_limit="off", detectors=2, cache_entries=0), detector_factory=factory)
    datas = [p.read_bytes() for p in IMAGES] * 2
    answers = [None] * len(datas)

    def post(i):
        answers[i] = app.test_client().post("/api/v1/check?tta=0", data=datas[i], content_type="image/png")
    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wrappers) == 2
    assert all(w.most_inside == 1 for w in wrappers)
    for data, response in zip(datas, answers):
        assert response.status_code == 200
        assert_same_verdict(response.get_json(), expected(reference, data, tta=False), data)


def test_busy_server_answers_503_instead_of_hanging():
    gate = threading.Event()
    only = ExclusiveUse(Detector(threads=1), gate)
    app = create_app(Config(rate_limit="off", detectors=1, detector_wait_s=0.2), detector_factory=lambda: only)
    first = {}
    blocked = threading.Thread(target=lambda: first.update(r=app.test_client().post(
        "/api/v1/check?tta=0", data=IMAGES[0].read_bytes(), content_type="image/jpeg")))
    blocked.start()
    try:
        assert only.entered.wait(timeout=10)  # the first request holds the only Detector
        response = app.test_client().post("/api/v1/check?tta=0", data=IMAGES[1].read_bytes(),
                                          content_type="image/jpeg")
        assert_error(response, 503, "busy")
        assert response.headers["Retry-After"] == "1"
    finally:
        gate.set()
        blocked.join()
    assert first["r"].status_code == 200
