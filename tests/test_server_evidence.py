"""The relay's metadata evidence (`?metadata=`) and `POST /api/v1/explain`, with the bundled model."""
import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import pick
from edge_runtime import explain, preprocess
from server import Config, create_app
from server_support import no_outside_network

__all__ = ["no_outside_network"]


@pytest.fixture(scope="module")
def client():
    return create_app(Config(rate_limit="off", batch_rate_limit="off", explain_rate_limit="off")).test_client()


@pytest.fixture(scope="module")
def novelai(manifest_rows) -> bytes:
    return pick(manifest_rows, "tsunamori-novelai", 1)[0].read_bytes()


def test_check_carries_evidence_and_metadata_can_be_ignored(client, novelai):
    ruled = client.post("/api/v1/check", data=novelai, content_type="image/png").get_json()
    assert (ruled["label"], ruled["reason"]) == ("ai", "metadata")
    assert {"kind": "generator", "detail": "PNG text 'Software': NovelAI"} in ruled["evidence"]
    model_only = client.post("/api/v1/check?metadata=0", data=novelai, content_type="image/png").get_json()
    assert model_only["reason"] == "model" and model_only["cached"] is False  # not the cached ruled answer
    assert model_only["probability"] == ruled["probability"]
    batch = client.post("/api/v1/check-batch?metadata=0",
                        data={"file": [(io.BytesIO(novelai), "a.png")]}).get_json()
    assert batch["results"][0]["reason"] == "model"
    bad = client.post("/api/v1/check?metadata=maybe", data=novelai, content_type="image/png")
    assert bad.status_code == 400 and "metadata must be 0 or 1" in bad.get_json()["error"]["reason"]


def test_explain_returns_the_map_and_an_overlay_and_is_cached(client, novelai):
    first = client.post("/api/v1/explain", data={"file": (io.BytesIO(novelai), "a.png")}).get_json()
    size = first["grid_size"]
    assert len(first["grid"]) == size and all(len(row) == size for row in first["grid"])
    assert all(0.0 <= p <= 1.0 for row in first["grid"] for p in row)
    assert first["cached"] is False and first["cost_ms"] > 0
    header, encoded = first["overlay"].split(",", 1)
    assert header == "data:image/jpeg;base64"
    overlay = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert overlay.size == Image.open(io.BytesIO(novelai)).size  # 512x768: already under the 768 px cap
    again = client.post("/api/v1/explain", data=novelai, content_type="image/png").get_json()
    assert again["cached"] is True and again["grid"] == first["grid"]


@pytest.mark.parametrize("body, content_type, status", [(b"", "image/png", 400), (b"nope", "image/png", 422),
                                                        (b"x", "text/plain", 415)])
def test_explain_errors(client, body, content_type, status):
    response = client.post("/api/v1/explain", data=body, content_type=content_type)
    assert response.status_code == status
    assert set(response.get_json()["error"]) == {"code", "reason"}


def noise_png(seed: int, side: int = 768) -> bytes:
    """A picture of noise: its explain overlay is a large JPEG (~0.5 MB as a data URL), as for real photos."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_the_cache_is_bounded_in_bytes_as_explain_overlays_come_in():
    # Issue 21: each cached explain held a ~622 KiB overlay and the cache held 4,096 entries (past 2.5 GB).
    limit = 1536 * 1024
    app = create_app(Config(rate_limit="off", batch_rate_limit="off", explain_rate_limit="off", cache_max_bytes=limit))
    client, cache = app.test_client(), app.extensions["relay"].checker.cache
    sizes = []
    for seed in range(5):
        answer = client.post("/api/v1/explain", data=noise_png(seed), content_type="image/png").get_json()
        sizes.append(len(answer["overlay"]))
        assert cache.bytes <= limit
    assert min(sizes) > 300_000 and 1 <= len(cache) <= limit // min(sizes)
    assert f"relay_cache_bytes {cache.bytes}" in client.get("/metrics").get_data(as_text=True)
    check = client.post("/api/v1/check", data=noise_png(0), content_type="image/png").get_json()
    assert check["cached"] is False and len(cache) >= 2  # small check results still fit beside the overlays


def test_explain_runs_one_at_a_time_on_its_own_detector_and_checks_go_on(monkeypatch, novelai):
    # Issue 21: explains used the check Detectors (each then kept a batch-25 interpreter for good) and ran as
    # many at once as there were Detectors, so checks waited behind them. Now one at a time, in one pool place.
    running, release, most = [], threading.Event(), []

    def slow_window_map(detector, picture, grid=explain.GRID):
        running.append(detector)
        most.append(len(running))
        release.wait(10)
        running.remove(detector)
        return explain.Explanation(probability=0.5, grid=[[0.5] * grid] * grid, cost_ms=1.0, invokes=2)

    monkeypatch.setattr(explain, "window_map", slow_window_map)
    app = create_app(Config(rate_limit="off", batch_rate_limit="off", explain_rate_limit="off", detectors=2,
                            detector_wait_s=1, explain_wait_s=0.5))
    pool = app.extensions["relay"].checker.pool
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault("first", app.test_client().post(
        "/api/v1/explain", data=noise_png(1, 256), content_type="image/png")))
    first.start()
    deadline = time.monotonic() + 10
    while not running and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert pool.idle() == 1  # the explain holds one place, and a Detector of its own
        assert running[0] not in list(pool._idle.queue)
        assert app.test_client().post("/api/v1/check", data=novelai, content_type="image/png").status_code == 200
        second = app.test_client().post("/api/v1/explain", data=noise_png(2, 256), content_type="image/png")
        assert second.status_code == 429 and second.headers["Retry-After"] == "2"
    finally:
        release.set()
        first.join()
    assert answers["first"].status_code == 200 and most == [1]
    assert running == [] and pool.idle() == 2


def test_explain_decodes_the_picture_once(client, monkeypatch):
    decoded = []
    real_load = preprocess.load_image
    monkeypatch.setattr(preprocess, "load_image", lambda *args, **kw: decoded.append(1) or real_load(*args, **kw))
    answer = client.post("/api/v1/explain", data=noise_png(3, 512), content_type="image/png")
    assert answer.status_code == 200 and len(decoded) == 1
