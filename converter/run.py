"""What the converter reads from a training run: model, threshold, views, data identity, split images.

A v1 run (the paper's model) has threshold.json with the threshold and unsure band; a v2 run (trainer/ship.py)
adds the views the model runs on (first = primary) and the adaptive-TTA escalation band.

The test split and labelled folders are read by the trainer's own functions (`trainer.evaluate.read_test_split`,
`trainer.data.scan_folder`), so the converter judges parity on exactly the images the trainer evaluated on.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.preprocess import TTA_VIEWS
from trainer.data import LABELS, scan_folder
from trainer.evaluate import read_test_split

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_THRESHOLD = {"threshold": 0.5, "unsure_band": [0.4, 0.6]}


@dataclass
class Run:
    """A model to convert and, when it comes from a run directory, that run's metadata."""

    model_path: Path
    name: str
    threshold: float
    unsure_band: tuple[float, float]
    views: tuple[str, ...] = TTA_VIEWS
    escalation_band: tuple[float, float] | None = None
    config: dict = field(default_factory=dict)
    split_rows: list[dict] = field(default_factory=list)
    test_split: list[tuple[Path, str]] = field(default_factory=list)

    def images(self, split: str) -> list[tuple[Path, str]]:
        """(path, label) of every image in one split of the run's split.csv: the test split as the trainer's
        read_test_split reads it, the others (int8 calibration uses "train") from the rows."""
        if split == "test":
            return list(self.test_split)
        return [(resolve_image(row["path"]), row["label"]) for row in self.split_rows if row["split"] == split]

    def training_data(self) -> dict:
        """The training data's identity for the sidecar: manifest hash, sources and counts per split."""
        counts: dict[str, dict[str, int]] = {}
        for row in self.split_rows:
            per_label = counts.setdefault(row["split"], {})
            per_label[row["label"]] = per_label.get(row["label"], 0) + 1
        return {
            "manifest_sha256": self.config.get("manifest_sha256"),
            "data": self.config.get("data"),
            "sources": sorted({row["source"] for row in self.split_rows}),
            "counts": counts,
        }

    @property
    def recipe(self) -> str | None:
        """The v2 recipe's name (config.json `recipe`), None for v1 runs."""
        return (self.config.get("recipe") or {}).get("name")


def open_run(path: str | Path) -> Run:
    """A run directory (holding model.keras) or a .keras file; run files beside the model are used if present."""
    path = Path(path)
    model_path = path / "model.keras" if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(f"no Keras model at {model_path}")
    directory = model_path.parent
    threshold = read_json(directory / "threshold.json") or DEFAULT_THRESHOLD
    config = read_json(directory / "config.json") or {}
    split_rows, test_split = [], []
    if (directory / "split.csv").is_file():
        # Every split's rows, for the sidecar's counts per split and the int8 calibration images ("train"):
        # the trainer has a reader for the test split only.
        with open(directory / "split.csv", newline="", encoding="utf-8") as f:
            split_rows = list(csv.DictReader(f))
        if "data" in config:
            test_split = [(resolve_image(str(image)), LABELS[label]) for image, label, _ in read_test_split(directory)]
    band = threshold.get("unsure_band") or [threshold["threshold"]] * 2
    escalation = threshold.get("escalation_band")
    views = threshold.get("views")  # v2: the list of views; v1 (the paper's trainer): the string "tta-mean"
    return Run(model_path=model_path, name=directory.name if path.is_dir() or split_rows else model_path.stem,
               threshold=float(threshold["threshold"]), unsure_band=(float(band[0]), float(band[1])),
               views=tuple(views) if isinstance(views, list) else TTA_VIEWS,
               escalation_band=(float(escalation[0]), float(escalation[1])) if escalation else None,
               config=config, split_rows=split_rows, test_split=test_split)


def read_json(path: Path) -> dict | None:
    """Parsed JSON file, or None if it does not exist."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def resolve_image(path: str) -> Path:
    """A split.csv path: absolute, relative to the working directory, or relative to the repository."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return REPO_ROOT / candidate


def labelled_folder(root: str | Path) -> list[tuple[Path, str]]:
    """(path, label) for images under root/human/** and root/ai/**, found by the trainer's scan_folder."""
    root = Path(root)
    images = [(sample.path, LABELS[sample.label]) for sample in scan_folder(root)]
    if not images:
        raise ValueError(f"no labelled images under {root} (expected human/ and ai/ sub-folders)")
    return images


def balanced_sample(images: list[tuple[Path, str]], count: int | None, seed: int = 0) -> list[tuple[Path, str]]:
    """At most `count` images, half from each label (all of them when count is None), in a fixed order."""
    if count is None or count >= len(images):
        return images
    rng = random.Random(seed)
    labels = sorted({label for _, label in images})
    chosen = []
    for i, label in enumerate(labels):
        pool = [item for item in images if item[1] == label]
        share = count // len(labels) + (1 if i < count % len(labels) else 0)
        chosen += rng.sample(pool, min(share, len(pool)))
    return sorted(chosen)
