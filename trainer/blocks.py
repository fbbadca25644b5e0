"""Frozen ImageNet MobileNetV2 features pooled from its late blocks, cached per image and view.

The v2 recipes train only a small head on these features, so one pass of the frozen backbone over every
image and view serves every recipe and every leave-sources-out fold. Each image yields a set of *tiers*
(the clean file, a thumbnail, a web-degraded copy, a format-equalised copy, random robustness
augmentations), and each tier the whole-image and native-resolution crop views of
`edge_runtime.preprocess`.
"""
from __future__ import annotations

import random
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
from keras import layers
from PIL import Image
from tqdm import tqdm

from edge_runtime.preprocess import INPUT_SIZE, at_least, load_image, view_batch
from trainer.augment import format_equalise, robust_augment, thumbnail, web_degrade
from trainer.backbone import mobilenet_v2
from trainer.data import Sample

# Global-average-pooled outputs of these layers, concatenated, in this order.
BLOCK_LAYERS = ("block_12_add", "block_13_project_BN", "block_14_add", "block_15_add", "block_16_project_BN",
                "out_relu", "block_13_expand_relu", "block_14_expand_relu", "block_15_expand_relu",
                "block_16_expand_relu")
CLEAN_VIEWS = ("original", "flip", "crop", "crop-flip")
TIER_VIEWS = ("original", "crop")
AUGMENTED_TIERS = 3
BATCH = 64
# Raw activations of this layer are cached beside the pooled features: fine-tuning the blocks after it starts there.
CUT_LAYER = "block_12_add"


def tier_names(augmented: int = AUGMENTED_TIERS, plain: bool = True, corners: bool = False) -> list[str]:
    """Names of the cached tiers: clean, thumb, web, equalised (unless not `plain`), aug0..aug{n-1}, and with
    `corners` corner0..corner3 (the clean image's four corners)."""
    return [*(("clean", "thumb", "web", "equalised") if plain else ()), *(f"aug{i}" for i in range(augmented)),
            *(f"corner{i}" for i in range(4 if corners else 0))]


def tier_views(tier: str, mirrored: bool = True) -> tuple[str, ...]:
    """The views cached of one tier: a corner tier is itself a native-resolution crop."""
    if tier.startswith("corner"):
        return ("crop",)
    return CLEAN_VIEWS if tier == "clean" and mirrored else TIER_VIEWS


def view_columns(augmented: int = AUGMENTED_TIERS, mirrored: bool = True, plain: bool = True,
                 corners: bool = False) -> list[str]:
    """'tier/view' name of every cached column, in cache order (without `mirrored`, no mirror-image views;
    without `plain`, no clean, thumbnail, web or equalised tier: a cache that extends a lean one)."""
    return [f"{tier}/{view}" for tier in tier_names(augmented, plain, corners) for view in tier_views(tier, mirrored)]


def corner_crops(img: Image.Image, size: int = INPUT_SIZE) -> list[Image.Image]:
    """The four size x size corners of the image at its own resolution (enlarged first if smaller, as the
    runtime's centre crop is): more native-resolution training views than the centre alone."""
    img = at_least(img, size)
    right, bottom = img.width - size, img.height - size
    return [img.crop((left, top, left + size, top + size)) for top in (0, bottom) for left in (0, right)]


def layer_slices(model: keras.Model) -> dict[str, slice]:
    """Where each pooled layer sits in the concatenated feature vector."""
    slices, start = {}, 0
    for name in BLOCK_LAYERS:
        width = model.get_layer(name).output.shape[-1]
        slices[name] = slice(start, start + width)
        start += width
    return slices


def block_features_model(weights: str | None = "imagenet", input_size: int = INPUT_SIZE,
                         cut: bool = False) -> keras.Model:
    """Frozen MobileNetV2: [-1, 1] image -> concatenated global-average-pooled block outputs
    (and, with `cut`, the raw CUT_LAYER activations as a second output)."""
    backbone = mobilenet_v2(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
    backbone.trainable = False
    pooled = [layers.GlobalAveragePooling2D(name=f"pool_{name}")(backbone.get_layer(name).output)
              for name in BLOCK_LAYERS]
    features = layers.Concatenate(name="block_features")(pooled)
    outputs = [features, backbone.get_layer(CUT_LAYER).output] if cut else features
    return keras.Model(backbone.input, outputs, name="block_features")


def image_views(sample: Sample, seed: int, augmented: int = AUGMENTED_TIERS, mirrored: bool = True,
                plain: bool = True, corners: bool = False) -> np.ndarray:
    """Every cached view of one image as a float32 batch (len(view_columns()), 224, 224, 3)."""
    rng = random.Random(f"{seed}:{sample.path.name}")
    img = load_image(sample.path)
    tiers = [(img, CLEAN_VIEWS if mirrored else TIER_VIEWS), (thumbnail(img), TIER_VIEWS),
             (web_degrade(img), TIER_VIEWS), (format_equalise(img), TIER_VIEWS)] if plain else []
    tiers += [(robust_augment(img, rng), TIER_VIEWS) for _ in range(augmented)]
    tiers += [(corner, ("crop",)) for corner in (corner_crops(img) if corners else [])]
    return np.concatenate([view_batch(tier, views) for tier, views in tiers])


def embed(samples: list[Sample], seed: int = 42, augmented: int = AUGMENTED_TIERS, mirrored: bool = True,
          plain: bool = True, corners: bool = False, weights: str | None = "imagenet") -> tuple[np.ndarray, np.ndarray]:
    """Block features and CUT_LAYER activations of every view of every sample, float16:
    (N, len(view_columns()), D) and (N, len(view_columns()), 14, 14, 96).

    Decoding and augmentation run in two threads (Pillow releases the GIL) ahead of the backbone.
    """
    model = block_features_model(weights, cut=True)
    columns = len(view_columns(augmented, mirrored, plain, corners))
    out = np.zeros((len(samples), columns, model.output[0].shape[-1]), dtype=np.float16)
    cut = np.zeros((len(samples), columns, *model.output[1].shape[1:]), dtype=np.float16)
    per_batch = max(1, BATCH // columns)
    with ThreadPoolExecutor(2) as pool:
        pending: deque = deque(pool.submit(image_views, s, seed, augmented, mirrored, plain, corners) for s in samples[:4])
        batch, rows = [], []
        for i in tqdm(range(len(samples)), desc="embed block features", unit="img", file=sys.stderr):
            views = pending.popleft().result()
            if i + 4 < len(samples):
                pending.append(pool.submit(image_views, samples[i + 4], seed, augmented, mirrored, plain, corners))
            batch.append(views)
            rows.append(i)
            if len(batch) == per_batch or i == len(samples) - 1:
                feats, acts = model.predict_on_batch(np.concatenate(batch))
                out[rows] = np.asarray(feats).reshape(len(rows), columns, -1).astype(np.float16)
                cut[rows] = np.asarray(acts).reshape(len(rows), columns, *cut.shape[2:]).astype(np.float16)
                batch, rows = [], []
    return out, cut


def cut_path(path: Path) -> Path:
    """Where the CUT_LAYER activations of the feature cache `path` are stored (a .npy, memory-mappable)."""
    return path.with_name(f"{path.stem}-{CUT_LAYER}.npy")


def save(path: Path, samples: list[Sample], features: np.ndarray, cut: np.ndarray | None = None,
         augmented: int = AUGMENTED_TIERS, mirrored: bool = True, plain: bool = True, corners: bool = False) -> None:
    """Store the feature cache with the image paths and column names it was made for (and the cut activations)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=features, paths=np.array([str(s.path) for s in samples]),
             columns=np.array(view_columns(augmented, mirrored, plain, corners)))
    if cut is not None:
        np.save(cut_path(path), cut)


def load(path: Path, samples: list[Sample]) -> tuple[np.ndarray, list[str]]:
    """(features, column names) of a cache, after checking it was made for exactly these images."""
    with np.load(path) as data:
        if list(data["paths"]) != [str(s.path) for s in samples]:
            raise ValueError(f"{path} was made for other images; delete it or pass another --cache")
        return data["features"], list(data["columns"])


def load_joined(paths: list[Path], samples: list[Sample]) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Features, column names and CUT_LAYER activations (None unless every cache has them) of caches made for the
    same images, their columns side by side (a lean cache and its augmented tiers)."""
    loaded = [load(path, samples) for path in paths]
    columns = [name for _, names in loaded for name in names]
    if len(set(columns)) != len(columns):
        raise ValueError(f"caches {', '.join(map(str, paths))} share column names")
    features = np.concatenate([f for f, _ in loaded], axis=1) if len(loaded) > 1 else loaded[0][0]
    cuts = [cut_path(path) for path in paths]
    if not all(path.exists() for path in cuts):
        return features, columns, None
    cut = [np.load(path, mmap_mode="r") for path in cuts]
    return features, columns, np.concatenate(cut, axis=1) if len(cut) > 1 else cut[0]
