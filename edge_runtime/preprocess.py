"""The one preprocessing pipeline: decode -> RGB -> model-sized pixels -> [-1, 1], plus the named views.

A view name is `[crop-]OP`: the geometry (the whole image squashed to 224, or with `crop` a 224x224
centre crop at the image's own resolution, where the generator's pixel-level traces survive) and a
per-pixel operation OP (original, flip, bright+N, bright-N). `crop` alone is the crop's original.

numpy + Pillow only. The trainer, the converter's calibration and the runtime all call these
functions, so a file gives the same input tensor everywhere.
"""
from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageFile, PngImagePlugin, UnidentifiedImageError

INPUT_SIZE = 224
# The most pixels an image may declare, checked on its header before anything is decoded; chosen so that one
# decode of any accepted file keeps a relay worker under 300 MB (tests/test_decode_limits.py). 20 MP holds 5K
# and dual-4K wallpapers and an A3 page scanned at 300 dpi. JPEGs decode at reduced scale (draft), so 36 MP of
# them (8K wallpapers, A4 scanned at 600 dpi) cost less; libwebp holds ~4 full copies while decoding.
MAX_PIXELS = 20_000_000
FORMAT_MAX_PIXELS = {"JPEG": 36_000_000, "MPO": 36_000_000, "WEBP": 12_000_000}
Image.MAX_IMAGE_PIXELS = max(FORMAT_MAX_PIXELS.values())  # Pillow's guard too: it refuses twice that in open()
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow inflates every PNG text chunk (zTXt/iTXt: up to 1 MB each) while it opens and loads the file, so a
# PNG of thousands of small zTXt bombs costs seconds before it fails: the chunk headers are counted first
# (`check_png_chunks`), and the text Pillow inflates in all is capped lower than its 64 MB default.
PNG_MAX_TEXT_CHUNKS = 64  # tEXt / zTXt / iTXt chunks (generators write 1 to 10)
PNG_MAX_CHUNKS = 65_536  # chunks of any kind (encoders write IDAT in 8 KB+ pieces: ~2,500 for 20 MB)
PngImagePlugin.MAX_TEXT_MEMORY = 16 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The formats the product reads; no other Pillow plugin (EPS via Ghostscript, PSD, FITS, ...) sees input.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
JPEG_FORMATS = ("JPEG", "MPO")  # the JPEG opener returns MPO for the multi-picture JPEGs phone cameras write

# The paper's TTA: original, horizontal flip, brightness +5% and -5%; probabilities averaged.
TTA_VIEWS = ("original", "flip", "bright+5", "bright-5")
# Native-resolution centre-crop views (the runtime reads which views to run from the model's sidecar).
CROP_VIEWS = ("crop", "crop-flip")
# Large JPEGs are decoded at a reduced scale (DCT scaling) to at least this size before the resize.
DRAFT_MIN_SIDE = 2 * INPUT_SIZE
# Smaller or more elongated images are "too small to judge" (`require_judgeable`).
MIN_SIDE = 32
MAX_ASPECT = 16

Source = Union[str, os.PathLike, bytes, BinaryIO]


class ImageError(ValueError):
    """An input that cannot be turned into a model input; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_image(source: Source, draft: bool = True) -> Image.Image:
    """Decode a file path, bytes or binary stream into an RGB image (first frame; alpha over white).

    Raises ImageError for empty, truncated, non-image, too-large (decompression bomb), too-small-to-judge
    (`require_judgeable`) or unreadable input.
    With `draft`, JPEGs much larger than the model input are decoded at 1/2, 1/4 or 1/8 scale.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError("empty file (0 bytes)")
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        try:
            if os.path.getsize(source) == 0:
                raise ImageError("empty file (0 bytes)")
        except OSError as exc:
            raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc
    elif not source.seekable():
        source = io.BytesIO(source.read())
    try:
        head = _peek(source)
        webp_size = webp_canvas_size(head)
        if webp_size:  # libwebp allocates the whole canvas as soon as Pillow opens the file: check before that
            check_pixels(webp_size, "WEBP")
        if head.startswith(PNG_MAGIC):
            check_png_chunks(source)
        img = Image.open(source, formats=ALLOWED_FORMATS)
        check_pixels(img.size, img.format)
        require_judgeable(img.width, img.height)
        if draft and img.format in JPEG_FORMATS:
            img.draft("RGB", (DRAFT_MIN_SIDE, DRAFT_MIN_SIDE))
        img.seek(0)
        img.load()
        if draft:
            img = shrink(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError("image too large (over the pixel limit)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image, or a format this tool does not read (JPEG, PNG, GIF, WebP, BMP)") from exc
    except OSError as exc:
        raise ImageError("truncated or corrupt image data") from exc
    except (ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise ImageError("corrupt image data") from exc
    except MemoryError as exc:
        raise ImageError("image too large to decode") from exc
    return to_rgb(img)


def check_pixels(size: tuple[int, int], fmt: str) -> None:
    """Raise ImageError if an image of `size` in format `fmt` is over its pixel limit."""
    width, height = size
    limit = FORMAT_MAX_PIXELS.get(fmt, MAX_PIXELS)
    if width * height > limit:
        raise ImageError(f"image too large: {width}x{height} pixels (limit for {fmt}: {limit // 1_000_000} megapixels)")


def check_png_chunks(source) -> None:
    """Raise ImageError for a PNG with more than PNG_MAX_TEXT_CHUNKS text chunks or PNG_MAX_CHUNKS chunks,
    counted from the chunk headers alone (nothing is inflated); a path or seekable stream is left as it was."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            return check_png_chunks(stream)
    position = source.tell()
    try:
        source.seek(len(PNG_MAGIC), io.SEEK_CUR)
        texts = 0
        for _ in range(PNG_MAX_CHUNKS):
            header = source.read(8)
            if len(header) < 8:
                return
            length, kind = struct.unpack(">I4s", header)
            if kind == b"IEND":
                return
            if kind in (b"tEXt", b"zTXt", b"iTXt"):
                texts += 1
                if texts > PNG_MAX_TEXT_CHUNKS:
                    raise ImageError(f"too many PNG text chunks (more than {PNG_MAX_TEXT_CHUNKS})")
            source.seek(length + 4, io.SEEK_CUR)
        raise ImageError(f"too many PNG chunks (more than {PNG_MAX_CHUNKS})")
    finally:
        source.seek(position)


def webp_canvas_size(header: bytes) -> Optional[tuple[int, int]]:
    """The canvas size a WebP file's first 30 bytes declare (VP8X, VP8L or VP8 chunk); None for other files."""
    if header[:4] != b"RIFF" or header[8:12] != b"WEBP" or len(header) < 30:
        return None
    chunk = header[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(header[24:27], "little"), 1 + int.from_bytes(header[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(header[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        return int.from_bytes(header[26:28], "little") & 0x3FFF, int.from_bytes(header[28:30], "little") & 0x3FFF
    return None


def _peek(source, size: int = 30) -> bytes:
    """The first `size` bytes of a path or seekable stream, leaving the stream where it was."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read(size)
    position = source.tell()
    head = source.read(size)
    source.seek(position)
    return head


def shrink(img: Image.Image) -> Image.Image:
    """Box-downscale by whole factors while both sides stay >= DRAFT_MIN_SIDE (what JPEG draft does for JPEG).

    Large PNG/WebP/GIF/BMP images then cost little memory in the colour conversion and the resize.
    """
    factor = (max(1, img.width // DRAFT_MIN_SIDE), max(1, img.height // DRAFT_MIN_SIDE))
    if factor == (1, 1):
        return img
    if img.mode in ("1", "P", "I;16", "I;16B", "I;16L"):
        img = img.convert("RGBA" if img.mode == "P" and "transparency" in img.info else "RGB")
    return img.reduce(factor)


def require_judgeable(width: int, height: int) -> None:
    """Raise ImageError "too small to judge" for images under MIN_SIDE px on the short side or longer than
    MAX_ASPECT:1 (icons, spacers, rules): the model would squash them into a verdict that means nothing."""
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(f"too small to judge: {width}x{height} pixels (needs at least {MIN_SIDE} px on the "
                         f"short side and at most {MAX_ASPECT}:1)")


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB copy of `img`; transparency is composited over white (how illustrations are usually shown)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def resize(img: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """Whole image squashed to size x size (bilinear, antialiased) as uint8 HxWx3."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def centre_crop(img: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """The size x size centre of the image at its own resolution as uint8 HxWx3.

    An image whose short side is under `size` is first enlarged (bilinear) until it is exactly `size`.
    """
    img = at_least(img, size)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def at_least(img: Image.Image, size: int = INPUT_SIZE) -> Image.Image:
    """The image, enlarged (bilinear) until its short side is `size` if it is shorter."""
    width, height = img.size
    if min(width, height) >= size:
        return img
    scale = size / min(width, height)
    return img.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.BILINEAR)


def split_view(name: str) -> tuple[str, str]:
    """('whole' | 'crop', pixel operation) of a view name: 'crop-flip' -> ('crop', 'flip')."""
    if name == "crop":
        return "crop", "original"
    if name.startswith("crop-"):
        return "crop", name[len("crop-"):]
    return "whole", name


def base_pixels(img: Image.Image, views: Sequence[str], size: int = INPUT_SIZE) -> dict[str, np.ndarray]:
    """The uint8 pixels of each geometry that `views` need: {'whole': ..., 'crop': ...}."""
    makers = {"whole": resize, "crop": centre_crop}
    return {geometry: makers[geometry](img, size) for geometry in dict.fromkeys(split_view(v)[0] for v in views)}


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8/float [0, 255] pixels -> float32 in [-1, 1] (Keras' MobileNetV2 `preprocess_input`)."""
    return pixels.astype(np.float32) / 127.5 - 1.0


def preprocess(source: Source, size: int = INPUT_SIZE, draft: bool = True) -> np.ndarray:
    """Decode and prepare one image: float32 array (size, size, 3) in [-1, 1]."""
    return normalise(resize(load_image(source, draft=draft), size))


def view(pixels: np.ndarray, name: str) -> np.ndarray:
    """One pixel operation (original, flip, bright+N, bright-N) on uint8 pixels, in [0, 255] (float32)."""
    x = pixels.astype(np.float32)
    if name == "original":
        return x
    if name == "flip":
        return x[:, ::-1, :]
    if name.startswith("bright"):
        factor = 1.0 + float(name[len("bright"):]) / 100.0
        return np.clip(x * factor, 0.0, 255.0)
    raise ValueError(f"unknown TTA view {name!r}; known: original, flip, bright+N, bright-N")


def tta_batch(pixels: np.ndarray, views: Sequence[str] = TTA_VIEWS) -> np.ndarray:
    """Pixel operations on one uint8 image as a normalised float32 batch (len(views), H, W, 3)."""
    return np.stack([normalise(view(pixels, name)) for name in views])


def view_batch(img: Image.Image, views: Sequence[str] = TTA_VIEWS, size: int = INPUT_SIZE) -> np.ndarray:
    """The named views (whole-image and crop) of an RGB image as one float32 batch in [-1, 1]."""
    return batch_from_bases(base_pixels(img, views, size), views)


def batch_from_bases(bases: dict[str, np.ndarray], views: Sequence[str]) -> np.ndarray:
    """The named views as one float32 batch in [-1, 1], from `base_pixels` of the image."""
    return np.stack([normalise(view(bases[geometry], op)) for geometry, op in map(split_view, views)])


def preprocess_tta(source: Source, views: Sequence[str] = TTA_VIEWS, size: int = INPUT_SIZE,
                   draft: bool = True) -> np.ndarray:
    """Decode one image and return its view batch (len(views), size, size, 3) in [-1, 1]."""
    return view_batch(load_image(source, draft=draft), views, size)
