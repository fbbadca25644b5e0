"""The model files shipped in `edge_runtime/models/` and their sidecar JSON metadata."""
from __future__ import annotations

import json
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "model.tflite"


def bundled_models() -> dict[str, Path]:
    """Bundled models by short name: 'default' for model.tflite, NAME for model-NAME.tflite.

    'float16' is the default model's float16 copy (for GPU delegates); 'paper' is the 2025 paper's attention
    model (MobileNetV2 + squeeze-and-excitation + 256/128/64 head, two-stage training), shipped beside the default.
    """
    names = {}
    for path in sorted(MODELS_DIR.glob("model*.tflite")):
        names["default" if path.stem == "model" else path.stem[len("model-"):]] = path
    return names


def resolve_model(model: str | Path | None) -> Path:
    """A model path from None (the bundled default), a file path, or a bundled short name."""
    if model is None:
        return DEFAULT_MODEL
    path = Path(model)
    if path.is_file():
        return path
    bundled = bundled_models()
    if str(model) in bundled:
        return bundled[str(model)]
    raise FileNotFoundError(f"model {str(model)!r} not found: give a .tflite path or one of the bundled "
                            f"models ({', '.join(bundled) or 'none installed'})")


def sidecar_path(model_path: str | Path) -> Path:
    """The metadata JSON that ships beside a .tflite file (same name, .json)."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: str | Path) -> dict:
    """The sidecar metadata of a model; raises FileNotFoundError if it is missing."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model metadata {path} is missing (the converter writes it beside the .tflite)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)
