"""The shared decode path under attack: tiny files that declare huge images, and formats the product does not read.

The memory test runs each input through the relay app in its own process (the way a gunicorn or waitress
worker would see it) and reads that process's peak resident memory.
"""
import io
import json
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image

from conftest import REPO, pick
from edge_runtime import Detector, ImageError
from edge_runtime.cli import main as cli_main
from edge_runtime.preprocess import FORMAT_MAX_PIXELS, MAX_PIXELS, load_image

PEAK_RSS_LIMIT_MB = 300

# One request to the real relay app in a fresh process; prints the status, reason and peak RSS in MB (VmHWM:
# unlike ru_maxrss, it starts afresh at exec instead of carrying over the parent's peak).
WORKER = """
import json, re, sys
from server.app import create_app
from server.config import Config
client = create_app(Config(rate_limit="off", batch_rate_limit="off")).test_client()
response = client.post("/api/v1/check", data=open(sys.argv[1], "rb").read(), content_type="application/octet-stream")
error = (response.get_json().get("error") or {}).get("reason")
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"status": response.status_code, "reason": error, "peak_mb": peak_kb / 1024}))
"""


def side_for(pixels: int) -> int:
    """The side of the largest square image within `pixels`."""
    return int(pixels ** 0.5)


def palette_with_transparency(side: int) -> Image.Image:
    image = Image.new("P", (side, side), 0)
    image.putpalette([255, 0, 0] * 256)
    image.info["transparency"] = 0
    return image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """name -> (file, expected status): the review's two bombs, and the largest accepted image of each kind."""
    root = tmp_path_factory.mktemp("bombs")
    webp_side, jpeg_side, other_side = (side_for(FORMAT_MAX_PIXELS["WEBP"]), side_for(FORMAT_MAX_PIXELS["JPEG"]),
                                        side_for(MAX_PIXELS))
    cases = {
        # The review's inputs: 8000x8000 from a few kB (1.8 and 2.2 GB of worker memory before the limit).
        "review.webp": (encode(Image.new("RGB", (8000, 8000), (200, 30, 90)), "WEBP", lossless=True, quality=0,
                               method=0), 422),
        "review-palette.png": (encode(palette_with_transparency(8000), "PNG", transparency=0), 422),
        # The most each format may declare: decoded, and still under the memory goal.
        "limit.webp": (encode(Image.new("RGBA", (webp_side, webp_side), (200, 30, 90, 128)), "WEBP",
                              lossless=True, quality=0, method=0), 200),
        "limit-palette.png": (encode(palette_with_transparency(other_side), "PNG", transparency=0), 200),
        "limit-rgba.png": (encode(Image.new("RGBA", (other_side, other_side), (1, 2, 3, 100)), "PNG",
                                  compress_level=1), 200),
        "limit-progressive.jpg": (encode(Image.new("RGB", (jpeg_side, jpeg_side), (9, 9, 9)), "JPEG", quality=50,
                                         progressive=True), 200),
        "limit.gif": (encode(Image.new("P", (other_side, other_side), 3), "GIF", transparency=3), 200),
    }
    paths = {}
    for name, (data, status) in cases.items():
        (root / name).write_bytes(data + b"\x07")  # a trailing byte, as an attacker adds to dodge the cache
        paths[name] = (root / name, status)
    return paths


@pytest.mark.parametrize("name", ["review.webp", "review-palette.png", "limit.webp", "limit-palette.png",
                                  "limit-rgba.png", "limit-progressive.jpg", "limit.gif"])
def test_worker_peak_memory_stays_under_the_goal(bombs, name):
    path, status = bombs[name]
    assert path.stat().st_size < 600_000  # tiny on the wire
    run = subprocess.run([sys.executable, "-c", WORKER, str(path)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["status"] == status, answer
    if status == 422:
        assert "too large" in answer["reason"]
    assert answer["peak_mb"] < PEAK_RSS_LIMIT_MB, answer


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the size this test declares
def test_pixel_limit_is_read_from_the_header_before_decoding():
    """A PNG whose header declares 7000x7000 but carries almost no data: refused on its size alone."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", 7000, 7000, 8, 0, 0, 0, 0)  # 49 MP: under what Pillow refuses itself
    declared = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    with pytest.raises(ImageError, match="too large: 7000x7000"):
        load_image(declared + chunk(b"IEND", b""))


def png_with_text_chunks(image: Image.Image, count: int) -> bytes:
    """`image` as a PNG with `count` zTXt chunks after IHDR, each 1 MB of zeros in ~1 KB (issue 21's bomb)."""
    body = b"Comment\x00\x00" + zlib.compress(b"\x00" * (1024 * 1024), 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    data = encode(image, "PNG")
    return data[:33] + chunk * count + data[33:]


def test_png_text_chunks_are_counted_before_pillow_inflates_any(real_image, monkeypatch, tmp_path):
    """Issue 21: 4,096 zTXt chunks (4.5 MB) took 4.6 s before the 422: refused on the count, nothing inflated."""
    from PIL import PngImagePlugin

    inflated = []
    real_inflate = PngImagePlugin._safe_zlib_decompress
    monkeypatch.setattr(PngImagePlugin, "_safe_zlib_decompress", lambda data: inflated.append(1) or real_inflate(data))
    bomb = png_with_text_chunks(real_image, 4096)
    (tmp_path / "bomb.png").write_bytes(bomb)
    for source in (bomb, tmp_path / "bomb.png", io.BytesIO(bomb)):
        with pytest.raises(ImageError, match="too many PNG text chunks"):
            load_image(source)
    assert inflated == []
    assert load_image(png_with_text_chunks(real_image, 3)).size == real_image.size  # a few are fine
    assert len(inflated) == 3


@pytest.fixture(scope="module")
def real_image(manifest_rows):
    with Image.open(pick(manifest_rows, "wfjsw-prompt-builder", 1)[0]) as image:
        return image.convert("RGB")


REFUSED_FORMATS = ["TIFF", "PPM", "TGA", "PCX", "SGI", "SPIDER", "ICO", "EPS", "IM", "QOI"]


@pytest.mark.parametrize("fmt", REFUSED_FORMATS)
@pytest.mark.filterwarnings("ignore:IM image format is deprecated")  # Pillow 13 still writes it: we refuse it
def test_formats_outside_the_allow_list_are_refused(real_image, fmt):
    image = real_image.convert("L") if fmt == "SPIDER" else real_image
    data = encode(image, fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself would read it
    with pytest.raises(ImageError, match="not an image, or a format"):
        load_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP"])
def test_allowed_formats_still_load(real_image, fmt):
    image = load_image(encode(real_image, fmt))
    assert image.mode == "RGB" and image.size == real_image.size


def test_cli_and_relay_use_the_same_allow_list(real_image, tmp_path, capsys):
    """One place: the CLI reports a TIFF as an error, the relay answers 422 with the same generic reason."""
    from server.app import create_app
    from server.config import Config

    tiff = tmp_path / "scan.tiff"
    real_image.save(tiff, "TIFF")
    assert cli_main([str(tiff)]) != 0
    assert "not an image, or a format" in capsys.readouterr().err
    client = create_app(Config(rate_limit="off", batch_rate_limit="off"),
                        detector_factory=lambda: Detector(threads=1)).test_client()
    response = client.post("/api/v1/check", data=tiff.read_bytes(), content_type="image/tiff")
    assert response.status_code == 422
    assert response.get_json()["error"]["reason"].startswith("not an image, or a format")


def test_decoder_messages_do_not_reach_the_client(real_image):
    """Corrupt WebP data makes Pillow say something specific ("failed to read next frame"); the reason stays
    generic and stable."""
    data = bytearray(encode(real_image, "WEBP"))
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64
    with pytest.raises(ImageError) as err:
        load_image(bytes(data))
    assert err.value.reason == "truncated or corrupt image data"


def test_gunicorn_workers_are_recycled_with_jitter():
    from server.__main__ import gunicorn_settings, parse_args

    settings = gunicorn_settings(parse_args(["--server", "gunicorn"]))
    assert settings["max_requests"] > 0
    assert 0 < settings["max_requests_jitter"] < settings["max_requests"]
