"""Images under 32 px on the short side or longer than 16:1 get "too small to judge", never a verdict."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from conftest import pick
from edge_runtime import Detector, ImageError
from edge_runtime.cli import main
from server import Config, create_app
from server_support import no_outside_network

__all__ = ["no_outside_network"]

TOO_SMALL = {"pixel.png": (1, 1), "icon.png": (31, 64), "rule.png": (600, 30), "strip.webp": (40, 641)}
JUDGED = {"small.png": (32, 32), "banner.png": (512, 32)}  # exactly at the limits


def encode(size: tuple[int, int], name: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 90)).save(buffer, "WEBP" if name.endswith(".webp") else "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def det():
    return Detector()


@pytest.mark.parametrize("name", TOO_SMALL)
def test_api_refuses_too_small_images(det, name):
    with pytest.raises(ImageError, match="too small to judge") as err:
        det.check(encode(TOO_SMALL[name], name))
    assert "x".join(map(str, TOO_SMALL[name])) in err.value.reason


@pytest.mark.parametrize("name", JUDGED)
def test_images_at_the_limits_get_a_verdict(det, name):
    assert det.check(encode(JUDGED[name], name)).label in ("ai", "human", "unsure")


def test_cli_reports_too_small_and_still_checks_the_rest(capsys, tmp_path, manifest_rows):
    for name, size in TOO_SMALL.items():
        (tmp_path / name).write_bytes(encode(size, name))
    real = pick(manifest_rows, "danbooru-facecrops", 1)[0]
    (tmp_path / "real.jpg").write_bytes(real.read_bytes())
    code = main([str(tmp_path), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    records = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in out.splitlines()}
    assert code == 1
    assert records["real.jpg"]["ok"] is True
    for name in TOO_SMALL:
        assert records[name]["ok"] is False and records[name]["error"].startswith("too small to judge")
        assert f"{name}: too small to judge" in err


def test_relay_answers_422_too_small():
    client = create_app(Config(rate_limit="off", batch_rate_limit="off")).test_client()
    response = client.post("/api/v1/check", data=encode((1, 1), "pixel.png"), content_type="image/png")
    assert response.status_code == 422
    assert response.get_json()["error"]["reason"].startswith("too small to judge: 1x1")
    batch = client.post("/api/v1/check-batch", data={"file": [(io.BytesIO(encode((600, 30), "a.png")), "a.png")]})
    item = batch.get_json()["results"][0]
    assert item["ok"] is False and item["error"]["code"] == 422 and "too small to judge" in item["error"]["reason"]
