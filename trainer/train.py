"""Two-stage training (the paper's schedule) on cached backbone activations.

Stage 1: backbone frozen, Adam 1e-3 (0.0009999 for the attention model), batch 32, 10 epochs.
Stage 2: last 30 backbone layers unfrozen, Adam 5e-5, batch 64, up to 25 epochs, early stopping and
LR reduction on validation loss. Each epoch shows every training image once, as one of its cached
random augmentations. Classes and framings (face crop / full illustration) are weighted equally.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from trainer import features
from trainer.data import LABELS, Sample, load_dataset, split, write_split
from trainer.model import FINE_TUNE_LAYERS, build_model, set_backbone_trainable
from trainer.threshold import choose_threshold


@dataclass
class Config:
    data: str = "../shared/data"
    variant: str = "enhanced"
    seed: int = 42
    weights: str | None = "imagenet"
    stage1_epochs: int = 10
    stage1_lr: float | None = None  # None: 0.0009999 for attention variants, 1e-3 otherwise (the paper)
    stage1_batch: int = 32
    stage2_epochs: int = 25
    stage2_lr: float = 5e-5
    stage2_batch: int = 64
    fine_tune_layers: int = FINE_TUNE_LAYERS
    patience: int = 5
    views_per_image: int = 4  # cached random augmentations per training image
    views_per_rare_image: int = 12  # for human full illustrations, the rarest and most important cell
    sources: list | None = None
    limit: int | None = None  # use at most this many images per class (smoke tests)
    max_fpr: float = 0.02  # threshold: highest val false-positive rate allowed on human art

    def first_lr(self) -> float:
        if self.stage1_lr is not None:
            return self.stage1_lr
        return 0.0009999 if self.variant in ("enhanced", "no_enhanced_head") else 1e-3


class ViewSampler(keras.utils.PyDataset):
    """Batches of one random cached view per training image, reshuffled every epoch."""

    def __init__(self, feats, owner, labels, weights, batch_size, seed):
        super().__init__()
        self.feats, self.labels, self.weights, self.batch_size = feats, labels, weights, batch_size
        self.views_of = [np.flatnonzero(owner == i) for i in range(len(labels))]
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def on_epoch_end(self):
        order = self.rng.permutation(len(self.labels))
        self.rows = np.array([self.rng.choice(self.views_of[i]) for i in order])
        self.items = order

    def __getitem__(self, index):
        sl = slice(index * self.batch_size, (index + 1) * self.batch_size)
        items = self.items[sl]
        return self.feats[self.rows[sl]], self.labels[items], self.weights[items]


def cell_weights(samples: list[Sample]) -> np.ndarray:
    """Sample weights that give each (class, framing) cell the same total weight."""
    cells = [(s.label, s.framing) for s in samples]
    counts = Counter(cells)
    return np.array([len(samples) / (len(counts) * counts[c]) for c in cells], dtype=np.float32)


def manifest_identity(data: str) -> str | None:
    """sha256 of the dataset's manifest.csv (the training data's identity), if there is one."""
    manifest = Path(data) / "manifest.csv"
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else None


def limit_per_class(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most `limit` samples per class, chosen at random (for smoke tests)."""
    if not limit:
        return samples
    rng = random.Random(seed)
    shuffled = rng.sample(samples, len(samples))
    return [s for label in range(len(LABELS)) for s in [x for x in shuffled if x.label == label][:limit]]


def progress_style() -> int:
    """Keras verbosity: a live progress bar with ETA on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def compile_tail(tail: keras.Model, lr: float) -> None:
    tail.compile(keras.optimizers.Adam(lr), loss="binary_crossentropy",
                 metrics=["accuracy", keras.metrics.AUC(name="auc")], weighted_metrics=[])


def train(config: Config, out: Path, cache: Path | None = None) -> dict:
    """Train one model into run directory `out`; returns a summary (with the model). Reuses `cache` if given."""
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    dataset = load_dataset(config.data, set(config.sources) if config.sources else None)
    samples = limit_per_class(dataset.samples, config.limit, config.seed)
    parts, split_report = split(samples, config.seed)
    write_split(parts, out / "split.csv")
    print(f"split: {json.dumps(split_report)}; skipped {len(dataset.skipped)} unreadable file(s)")

    model = build_model(config.variant, weights=config.weights)
    trainable_stage1 = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    prefix, tail = features.split_model(model, config.fine_tune_layers)
    cache = cache or out / "features.npz"
    arrays = load_cached(cache, parts) if cache.exists() else embed_all(prefix, parts, config, cache)

    train_samples, val_samples = parts["train"], parts["val"]
    y_train = np.array([s.label for s in train_samples], dtype=np.float32)
    y_val = np.array([s.label for s in val_samples], dtype=np.float32)
    w_train, w_val = cell_weights(train_samples), cell_weights(val_samples)
    val_data = (arrays["val"][:, 0], y_val, w_val)

    compile_tail(tail, config.first_lr())
    stage1 = tail.fit(ViewSampler(arrays["train"], arrays["owner"], y_train, w_train, config.stage1_batch, config.seed),
                      validation_data=val_data, epochs=config.stage1_epochs, verbose=progress_style())

    set_backbone_trainable(model, config.fine_tune_layers)
    compile_tail(tail, config.stage2_lr)
    callbacks = [keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, config.patience // 2))]
    stage2 = tail.fit(ViewSampler(arrays["train"], arrays["owner"], y_train, w_train, config.stage2_batch, config.seed + 1),
                      validation_data=val_data, epochs=config.stage2_epochs, callbacks=callbacks,
                      verbose=progress_style())
    history = {name: {k: [float(v) for v in vals] for k, vals in fit.history.items()}
               for name, fit in (("stage1", stage1), ("stage2", stage2))}

    val_tta = tail_predict(tail, arrays["val"]).mean(axis=1)
    threshold = choose_threshold(y_val, val_tta, [s.framing for s in val_samples], config.max_fpr)
    model.save(out / "model.keras")
    wall = time.time() - started
    (out / "history.json").write_text(json.dumps(history, indent=1))
    (out / "threshold.json").write_text(json.dumps(threshold, indent=1))
    (out / "config.json").write_text(json.dumps({
        **asdict(config), "manifest_sha256": manifest_identity(config.data), "split": split_report,
        "skipped": [[str(p), r] for p, r in dataset.skipped], "wall_seconds": round(wall, 1),
        "hardware": f"{os.cpu_count()} CPU cores", "keras": keras.__version__,
        "parameters": {"total": model.count_params(), "trainable_stage1": trainable_stage1},
    }, indent=1))
    print(f"trained {config.variant} in {wall / 60:.1f} min; threshold {threshold['threshold']:.3f}")
    return {"wall_seconds": wall, "threshold": threshold, "split": split_report, "model": model, "tail": tail, "cache": cache}


def tail_predict(tail: keras.Model, cached: np.ndarray) -> np.ndarray:
    """P(ai) for cached activations of shape (N, V, h, w, C) -> (N, V)."""
    n, v = cached.shape[:2]
    flat = cached.reshape(n * v, *cached.shape[2:])
    return tail.predict(flat, batch_size=256, verbose=0).reshape(n, v)


def embed_all(prefix: keras.Model, parts: dict, config: Config, cache: Path) -> dict:
    """Compute and store the prefix activations of training augmentations and val/test TTA views."""
    views = [config.views_per_rare_image if (s.label == 0 and s.framing == "full") else config.views_per_image
             for s in parts["train"]]
    train_feats, owner = features.embed_training(prefix, parts["train"], views, config.seed)
    arrays = {"train": train_feats, "owner": owner,
              "val": features.embed_evaluation(prefix, parts["val"]),
              "test": features.embed_evaluation(prefix, parts["test"]),
              "test_equalised": features.embed_evaluation(prefix, parts["test"], equalise=True),
              "paths": np.array([str(s.path) for name in ("train", "val", "test") for s in parts[name]])}
    features.save(cache, **arrays)
    return arrays


def load_cached(cache: Path, parts: dict) -> dict:
    """Cached activations, after checking they were made for this very split."""
    arrays = features.load(cache)
    expected = [str(s.path) for name in ("train", "val", "test") for s in parts[name]]
    if list(arrays["paths"]) != expected:
        raise ValueError(f"{cache} was made for a different split; delete it or pass another --cache")
    return arrays
