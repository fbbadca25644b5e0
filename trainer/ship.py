"""Train a v2 recipe's head on all of the data and write a run directory the converter ships from.

The run holds the whole model (frozen MobileNetV2 -> pooled block features -> head, with the out-of-fold
calibration folded into the head's last layer) as model.keras, the threshold, unsure band, escalation band and
views chosen by the recipe's leave-sources-out run (threshold.json), the data identity (config.json) and the
seed-42 split (split.csv, for parity checks).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from trainer import loso
from trainer.backbone import mobilenet_v2
from trainer.blocks import CUT_LAYER
from trainer.data import Sample, split, write_split
from trainer.train import manifest_identity


def full_model(recipe: loso.Recipe, head: keras.Model) -> keras.Model:
    """[-1, 1] image -> P(ai): the frozen backbone, the recipe's pooled layers concatenated, then the head.

    A fine-tuning recipe's `head` is its trained tail (block-12 activations -> P): the ImageNet backbone's
    blocks 1-12 feed it.
    """
    backbone = mobilenet_v2(include_top=False, weights="imagenet")
    if recipe.finetune is not None:
        return keras.Model(backbone.input, head(backbone.get_layer(CUT_LAYER).output),
                           name=f"animeart_{recipe.name.replace('-', '_')}")
    pooled = [layers.GlobalAveragePooling2D(name=f"pool_{name}")(backbone.get_layer(name).output)
              for name in recipe.layers]
    features = layers.Concatenate(name="block_features")(pooled) if len(pooled) > 1 else pooled[0]
    return keras.Model(backbone.input, head(features), name=f"animeart_{recipe.name.replace('-', '_')}")


def ship(recipe: loso.Recipe, report: dict, table: loso.FeatureTable, samples: list[Sample], data: str,
         out: Path, seed: int = 42) -> keras.Model:
    """Fit the head on every image, check the whole model against it, and write the run directory."""
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    head = loso.fit_head(recipe, table, samples, np.arange(len(samples)), seed)
    loso.bake_calibration(head, report["calibration"])
    model = full_model(recipe, head)
    check_against_cache(model, head, recipe, table, samples)
    model.save(out / "model.keras")
    parts, split_report = split(samples, seed)
    write_split(parts, out / "split.csv")
    (out / "threshold.json").write_text(json.dumps({
        "threshold": report["threshold"], "unsure_band": report["unsure_band"],
        "escalation_band": report["escalation_band"], "views": list(recipe.views), "chosen_on": "leave-sources-out",
        "calibration": report["calibration"], "calibration_rule": report["calibration_rule"],
        "rule": report["threshold_rule"], "unsure_rule": report["unsure_rule"]}, indent=1))
    (out / "config.json").write_text(json.dumps({
        "variant": recipe.name, "recipe": report["recipe"], "data": data, "manifest_sha256": manifest_identity(data),
        "trained_on": "all images of the dataset (the split is for parity checks only)", "split": split_report,
        "parameters": {"total": model.count_params(),
                       "trainable": int(sum(np.prod(w.shape) for w in head.trainable_weights))},
        "wall_seconds": round(time.time() - started, 1), "hardware": f"{os.cpu_count()} CPU cores",
        "keras": keras.__version__}, indent=1))
    return model


def check_against_cache(model: keras.Model, head: keras.Model, recipe: loso.Recipe, table: loso.FeatureTable,
                        samples: list[Sample], count: int = 8) -> None:
    """Raise if the whole model and the head on cached features disagree on a few images (beyond float16)."""
    from edge_runtime.preprocess import load_image, view_batch
    rows = np.linspace(0, len(samples) - 1, count).astype(int)
    batch = np.concatenate([view_batch(load_image(samples[i].path), recipe.views) for i in rows])
    direct = model.predict(batch, verbose=0).reshape(count, -1)
    cached = np.stack([head.predict(table.inputs(rows, f"clean/{v}", recipe), verbose=0)[:, 0]
                       for v in recipe.views], axis=1)
    if np.max(np.abs(direct - cached)) > 0.02:
        raise RuntimeError(f"the whole model differs from the cached-feature head by {np.max(np.abs(direct - cached)):.3f}")
