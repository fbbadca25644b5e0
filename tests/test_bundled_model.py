"""The shipped model: its identity, the data it was trained on, and the accuracy its model card states."""
from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from edge_runtime import Detector
from edge_runtime.bundle import MODELS_DIR, bundled_models, read_sidecar

REPO_DOCS = MODELS_DIR.parents[1] / "docs" / "model"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_bundled_model_matches_the_sha256_in_its_metadata():
    models = bundled_models()
    assert {"default", "float16"} <= set(models)
    for path in models.values():
        meta = read_sidecar(path)
        assert meta["tflite_sha256"] == sha256(path), path.name
        assert path.stat().st_size < 10 * 1024 * 1024


V1_MANIFEST = "1872c80e0b81cf854f6b399beedd77fa862a0e8b1dcebaf3d9832d606079c082"  # data v1: model v1
V2_MANIFEST = "19fa77507e9356f466d26d3bb977dcba8d64ec56e449c5bbcaedea0d9a15969a"  # data v2: model v2
V3_MANIFEST = "8bc733d5"  # data v3 (prefix): ../shared/README.md, model v3
BUNDLED_MANIFEST = read_sidecar(bundled_models()["default"])["training_data"]["manifest_sha256"]


def test_bundled_model_was_trained_on_the_shared_dataset(data_root):
    meta = read_sidecar(bundled_models()["default"])
    assert meta["model_version"] != "untrained-dev"
    assert meta["training_data"]["manifest_sha256"] == sha256(data_root / "manifest.csv") != V1_MANIFEST
    assert meta["architecture"] == meta["recipe"]  # v2: the recipe picked by leave-sources-out evaluation
    assert meta["tta_views"][0] == "original" and meta["threshold"] > 0.5


@pytest.fixture(scope="module")
def test_split(data_root):
    with open(REPO_DOCS / "test_split.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(data_root / r["path"], 1 if r["label"] == "ai" else 0, r["source"]) for r in rows]


def test_the_test_split_samples_every_source_the_model_was_trained_on(test_split, manifest_rows, data_root):
    trained_on = set(read_sidecar(bundled_models()["default"])["training_data"]["sources"])
    assert {source for _, _, source in test_split} == trained_on
    in_data = {r["source"] for r in manifest_rows}
    assert trained_on <= in_data  # newer data trims sources, never drops them
    if BUNDLED_MANIFEST == sha256(data_root / "manifest.csv"):
        assert trained_on == in_data  # a model trained on this very data saw every source of it
    assert all(path.is_file() for path, _, _ in test_split)


@pytest.mark.slow
def test_default_model_reaches_the_model_cards_test_accuracy(test_split):
    detector = Detector()
    meta = detector.info()
    probabilities = np.array([r.probability for r in detector.check_many([p for p, _, _ in test_split])])
    y = np.array([label for _, label, _ in test_split])
    accuracy = float(((probabilities >= detector.threshold) == y).mean())
    stated = meta["metrics"]["accuracy"]  # the converter's parity run: this split, every view, this very file
    assert len(y) == meta["metrics"]["parity_images"]
    assert accuracy >= stated - 0.01, f"bundled model scores {accuracy:.4f}, its card says {stated:.4f}"
