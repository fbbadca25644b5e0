"""Training augmentation, applied to both classes alike (numpy + Pillow).

The paper's geometric/photometric augmentation (rotation, shift, flip, zoom, brightness) plus the
robustness augmentations an AI-image detector needs so it cannot read the dataset's shortcuts:
random crops at random scale (framing and resolution), random downscale, slight blur, and random
re-encoding as JPEG or WebP (file format). The result goes through the same `resize` as inference.
"""
from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from edge_runtime.preprocess import INPUT_SIZE, resize


def random_crop(img: Image.Image, rng: random.Random, min_area: float = 0.2) -> Image.Image:
    """A crop of `min_area`..100% of the image, aspect ratio 3:4..4:3 (zoom and shift)."""
    width, height = img.size
    for _ in range(10):
        area = rng.uniform(min_area, 1.0) * width * height
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        w, h = int(round((area * aspect) ** 0.5)), int(round((area / aspect) ** 0.5))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return img.crop((left, top, left + w, top + h))
    return img


def reencode(img: Image.Image, rng: random.Random, jpeg=(60, 100), webp=(70, 100), webp_share: float = 0.2
             ) -> Image.Image:
    """Re-save as JPEG or (`webp_share` of the time) WebP with a random quality in the given ranges, as images
    are on the web."""
    buffer = io.BytesIO()
    if rng.random() >= webp_share:
        img.save(buffer, "JPEG", quality=rng.randint(*jpeg))
    else:
        img.save(buffer, "WEBP", quality=rng.randint(*webp))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def augment(img: Image.Image, rng: random.Random, size: int = INPUT_SIZE) -> np.ndarray:
    """One random training view of an RGB image as uint8 (size, size, 3)."""
    if rng.random() < 0.7:
        img = random_crop(img, rng)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        img = img.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, fillcolor=(255, 255, 255))
    if rng.random() < 0.3:
        scale = rng.uniform(0.4, 0.9)
        img = img.resize((max(8, int(img.width * scale)), max(8, int(img.height * scale))), Image.BILINEAR)
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.5:
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    if rng.random() < 0.3:
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.2))
    if rng.random() < 0.8:
        img = reencode(img, rng)
    return resize(img, size)


def robust_augment(img: Image.Image, rng: random.Random) -> Image.Image:
    """One random robustness view of an RGB image, both classes alike, left at its own resolution.

    What images meet on the web and what our sources differ in: thumbnails (downscale, maybe upscaled
    back), JPEG quality 20-95 or WebP quality 10-95 (image hosts and generator galleries save WebP at
    0.3-0.5 bits per pixel), sharpening, colour jitter, screenshot borders, and crops that change the
    framing down to a tenth of the picture (a face crop's). The caller takes whole-image or crop views of the result.
    """
    if rng.random() < 0.5:
        img = random_crop(img, rng, min_area=0.1)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.4:
        scale = rng.uniform(0.3, 0.8)
        small = img.resize((max(16, int(img.width * scale)), max(16, int(img.height * scale))), Image.BILINEAR)
        img = small.resize(img.size, Image.BICUBIC) if rng.random() < 0.5 else small
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    elif rng.random() < 0.2:
        img = img.filter(ImageFilter.UnsharpMask(radius=rng.uniform(1, 2), percent=rng.randint(50, 150)))
    if rng.random() < 0.5:
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.15))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.15))
    if rng.random() < 0.15:
        border = rng.randint(4, max(5, min(img.size) // 10))
        colour = (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0)
        framed = Image.new("RGB", (img.width + 2 * border, img.height + 2 * border), colour)
        framed.paste(img, (border, border))
        img = framed
    if rng.random() < 0.8:
        img = reencode(img, rng, jpeg=(20, 95), webp=(10, 95), webp_share=0.4)
    return img


def thumbnail(img: Image.Image, long_side: int = 256) -> Image.Image:
    """The evaluation's thumbnail tier: the image downscaled so its long side is `long_side` (Lanczos)."""
    small = img.copy()
    small.thumbnail((long_side, long_side), Image.LANCZOS)
    return small


def web_degrade(img: Image.Image) -> Image.Image:
    """The evaluation's web-degraded tier: downscaled to 50%, re-saved as JPEG quality 70."""
    small = img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=70)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def format_equalise(img: Image.Image) -> Image.Image:
    """The evaluation's format-equalised input: downscale by 0.75, re-encode as JPEG q90."""
    small = img.resize((max(1, round(img.width * 0.75)), max(1, round(img.height * 0.75))), Image.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=90)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")
