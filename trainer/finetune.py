"""Fine-tuning MobileNetV2's late blocks on cached block-12 activations (recipes with `finetune` set).

Blocks 1-12 stay frozen, so their output for each cached view (`trainer.blocks.CUT_LAYER`, 14x14x96) never
changes: training runs only the blocks after it, the pooled features and the head, which makes a fold minutes
of CPU instead of hours. The head is first fitted alone on the cached pooled features (the linear recipe),
then the chosen blocks and the head are trained together at a small learning rate with weight decay
(linear probe, then fine-tune). BatchNorm layers keep their ImageNet statistics (inference mode).
Every epoch draws `per_epoch` images, each with the probability of its source-balanced weight (cheaper than
weighting every image of the big sources), and one random training view of each (clean, mirrored, thumbnail,
web, equalised or augmented).
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers
from tqdm import tqdm

from trainer.backbone import mobilenet_v2
from trainer.blocks import CUT_LAYER


@dataclass(frozen=True)
class FineTune:
    """Which blocks train (from `from_block` to the last 1x1 conv; 17 = that conv only) and how."""

    from_block: int = 13
    lr: float = 1e-4
    weight_decay: float = 1e-4
    epochs: int = 4
    per_epoch: int = 1024  # images drawn per epoch, each with probability of its source-balanced weight
    batch: int = 64


def is_trained(layer: keras.layers.Layer, from_block: int) -> bool:
    """Whether fine-tuning updates this backbone layer (never a BatchNorm: those keep ImageNet statistics)."""
    if isinstance(layer, layers.BatchNormalization):
        return False
    if layer.name.startswith("block_"):
        return int(layer.name.split("_")[1]) >= from_block
    return layer.name == "Conv_1"


def tail_model(pooled_layers, head: keras.Model, from_block: int, weights: str | None = "imagenet") -> keras.Model:
    """CUT_LAYER activations -> the backbone's remaining blocks -> pooled `pooled_layers` -> `head` -> P(ai)."""
    backbone = mobilenet_v2(include_top=False, weights=weights)
    for layer in backbone.layers:
        layer.trainable = is_trained(layer, from_block)
    pooled = [layers.GlobalAveragePooling2D(name=f"pool_{name}")(backbone.get_layer(name).output)
              for name in pooled_layers]
    features = layers.Concatenate(name="block_features")(pooled) if len(pooled) > 1 else pooled[0]
    return keras.Model(backbone.get_layer(CUT_LAYER).output, head(features), name="finetuned_tail")


def fit(recipe, table, samples, rows: np.ndarray, seed: int = 42) -> keras.Model:
    """The recipe's fine-tuned tail trained on the given image rows: CUT_LAYER activations -> P(ai)."""
    from trainer import loso
    tune: FineTune = recipe.finetune
    head = loso.fit_head(dataclasses.replace(recipe, finetune=None), table, samples, rows, seed)
    keras.utils.set_random_seed(seed)
    model = tail_model(recipe.layers, head, tune.from_block)
    model.compile(keras.optimizers.AdamW(tune.lr, weight_decay=tune.weight_decay), loss="binary_crossentropy")
    columns = np.array([table.column[c] for c in table.training_columns(recipe)])
    weights = loso.row_weights(samples, rows, recipe.source_balanced, recipe.human_weight)
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(tune.epochs), desc=f"fine-tune {recipe.name}", unit="epoch", file=sys.stderr):
        drawn = np.sort(rng.choice(rows, tune.per_epoch, p=weights / weights.sum()))
        x = np.stack([table.cut[r, c] for r, c in zip(drawn, rng.choice(columns, len(drawn)))]).astype(np.float32)
        y = np.array([samples[i].label for i in drawn], dtype=np.float32)
        model.fit(x, y, batch_size=tune.batch, epochs=1, shuffle=True, verbose=0)
    return model
