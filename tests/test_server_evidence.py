"""The relay's metadata evidence (`?metadata=`) and `POST /api/v1/explain`, with the bundled model."""
import base64
import io

import pytest
from PIL import Image

from conftest import pick
from server import Config, create_app
from server_support import no_outside_network

__all__ = ["no_outside_network"]


@pytest.fixture(scope="module")
def client():
    return create_app(Config(rate_limit="off", batch_rate_limit="off")).test_client()


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
