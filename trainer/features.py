"""Cached backbone activations, so two-stage training is practical on a 2-core CPU.

Both training stages keep the first part of MobileNetV2 frozen (stage 2 unfreezes only the last 30
layers), so that part's output for a given input never changes. It is computed once per image view
(training views are random augmentations, drawn in advance) and the stages train only the small
remainder of the network on it.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from edge_runtime.preprocess import TTA_VIEWS, load_image, resize, tta_batch
from trainer.augment import augment, format_equalise
from trainer.data import Sample
from trainer.model import FINE_TUNE_LAYERS, backbone_layers

BATCH = 64


def split_model(model: keras.Model, fine_tune_layers: int = FINE_TUNE_LAYERS) -> tuple[keras.Model, keras.Model]:
    """(frozen prefix: image -> cut activations, trainable tail: cut activations -> P(ai)), sharing weights."""
    cut = backbone_layers(model)[-fine_tune_layers].input
    return keras.Model(model.input, cut, name="frozen_prefix"), keras.Model(cut, model.output, name="tail")


def embed(prefix: keras.Model, pixels: list[np.ndarray], views=("original",)) -> np.ndarray:
    """Prefix activations of uint8 images' views: (N, len(views), h, w, C) float32."""
    batch = np.concatenate([tta_batch(p, views) for p in pixels])
    return prefix.predict_on_batch(batch).reshape(len(pixels), len(views), *prefix.output.shape[1:])


def embed_training(prefix: keras.Model, samples: list[Sample], views: list[int], seed: int):
    """Activations of `views[i]` random augmentations of sample i: (features (M, h, w, C), owner (M,))."""
    rng = random.Random(seed)
    chunks, owner, pending = [], [], []
    for i, sample in enumerate(tqdm(samples, desc="augment + embed training views", unit="img", file=sys.stderr)):
        img = load_image(sample.path)
        for _ in range(views[i]):
            pending.append(augment(img, rng))
            owner.append(i)
        if len(pending) >= BATCH or i == len(samples) - 1:
            chunks.append(embed(prefix, pending)[:, 0])
            pending = []
    return np.concatenate(chunks), np.array(owner)


def embed_evaluation(prefix: keras.Model, samples: list[Sample], views=TTA_VIEWS, equalise: bool = False):
    """Activations of every sample's TTA views (N, V, h, w, C); optionally of its format-equalised copy."""
    chunks, pending = [], []
    step = max(1, BATCH // len(views))
    desc = "embed format-equalised views" if equalise else "embed evaluation views"
    for i, sample in enumerate(tqdm(samples, desc=desc, unit="img", file=sys.stderr)):
        img = load_image(sample.path)
        pending.append(resize(format_equalise(img) if equalise else img))
        if len(pending) >= step or i == len(samples) - 1:
            chunks.append(embed(prefix, pending, views))
            pending = []
    return np.concatenate(chunks)


def save(path: Path, **arrays) -> None:
    """Store cached arrays (uncompressed .npz)."""
    np.savez(path, **arrays)


def load(path: Path) -> dict:
    """Load cached arrays written by `save`."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
