"""The metadata JSON written beside every .tflite file (the runtime reads it; see edge_runtime.bundle)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from edge_runtime.preprocess import INPUT_SIZE, TTA_VIEWS


def build_sidecar(variant: str, tflite_model: bytes, threshold: float, unsure_band: Sequence[float],
                  model_version: str, training_data: dict, architecture: str = "enhanced",
                  metrics: dict | None = None, views: Sequence[str] = TTA_VIEWS,
                  escalation_band: Sequence[float] | None = None, recipe: str | None = None) -> dict:
    """Everything the runtime needs to use a model: input, normalisation, labels, threshold, views, provenance.

    `views` become `tta_views` (first = primary view); `escalation_band` and `recipe` (a v2 run's recipe
    name) are written only when given: without a band the runtime widens the unsure band (adaptive.default_band).
    """
    sidecar = {
        "model_version": model_version,
        "variant": variant,
        "architecture": architecture,
        "input_size": INPUT_SIZE,
        "normalisation": "x/127.5-1",
        "labels": ["human", "ai"],
        "output": "P(ai)",
        "threshold": float(threshold),
        "unsure_band": [float(unsure_band[0]), float(unsure_band[1])],
        "tta_views": list(views),
        "training_data": training_data,
        "tflite_sha256": hashlib.sha256(tflite_model).hexdigest(),
        "metrics": metrics or {},
    }
    if escalation_band is not None:
        sidecar["escalation_band"] = [float(escalation_band[0]), float(escalation_band[1])]
    if recipe is not None:
        sidecar["recipe"] = recipe
    return sidecar


def write_model(path: str | Path, tflite_model: bytes, sidecar: dict) -> Path:
    """Write `path` (.tflite) and its sidecar `path` with .json; returns the .tflite path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite_model)
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return path
