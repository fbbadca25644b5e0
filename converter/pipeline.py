"""Convert a run into every TFLite variant, check them against the Keras model, write files and report."""
from __future__ import annotations

import csv
import shutil
import sys
from functools import partial
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from tqdm import tqdm

from converter import parity
from converter.convert import VARIANTS, check_gpu_compatible, convert, io_types, op_list, representative_dataset
from converter.delegate_graph import delegate_friendly, max_abs_difference
from converter.run import Run, balanced_sample, labelled_folder
from converter.sidecar import build_sidecar, write_model
from edge_runtime import Detector
from edge_runtime.bundle import MODELS_DIR
from edge_runtime.preprocess import ImageError, base_pixels, batch_from_bases, load_image, preprocess_tta

# The delegate-friendly graph must compute the Keras model's function (float32 rounding only).
GRAPH_TOLERANCE = 1e-5
CHUNK = 16


def load_bases(images: list[tuple[Path, str]], views: Sequence[str], desc: str
               ) -> tuple[list[dict[str, np.ndarray]], list[tuple[Path, str]], list[str]]:
    """The uint8 base pixels `views` need (whole image resized, native-resolution crop) of every readable image,
    those images as (path, label), and 'path: reason' for the others."""
    bases, readable, skipped = [], [], []
    for path, label in tqdm(images, desc=desc, unit="img", file=sys.stderr):
        try:
            bases.append(base_pixels(load_image(path), views))
            readable.append((path, label))
        except ImageError as exc:
            skipped.append(f"{path}: {exc.reason}")
    return bases, readable, skipped


def calibration_batch(run: Run, size: int, folder: str | None = None) -> np.ndarray:
    """Calibration inputs for int8: all of the run's views (crops included) of `size` training images, half of
    each class, preprocessed as at runtime."""
    images = labelled_folder(folder) if folder else run.images("train")
    if not images:
        raise ValueError("int8 calibration needs training images: convert a run directory with split.csv "
                         "or pass --calibration DIR")
    chosen = balanced_sample(images, size, seed=1)
    batch = []
    for path, _ in tqdm(chosen, desc="calibration images", unit="img", file=sys.stderr):
        try:
            batch.append(preprocess_tta(path, run.views))
        except ImageError:
            continue
    return np.concatenate(batch)


def view_batches(bases: list[dict[str, np.ndarray]], views: Sequence[str]):
    """Chunks of images as one normalised batch of all their views (CHUNK * len(views) inputs)."""
    for i in range(0, len(bases), CHUNK):
        yield np.concatenate([batch_from_bases(b, views) for b in bases[i:i + CHUNK]])


def predict_keras(model: keras.Model, bases: list[dict[str, np.ndarray]], views: Sequence[str]) -> np.ndarray:
    """P(ai) from the Keras model per image and view: (N, len(views))."""
    return np.concatenate([model.predict(batch, verbose=0).reshape(-1, len(views))
                           for batch in view_batches(bases, views)])


def write_reference(path: Path, images: list[tuple[Path, str]], views: Sequence[str], per_view: np.ndarray) -> None:
    """keras_reference.csv: image path (below the dataset root where it can be), label, Keras P(ai) per view."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", *(f"p_{view}" for view in views)])
        for (image, label), row in zip(images, per_view):
            writer.writerow([data_relative(image), label, *(f"{p:.7f}" for p in row)])


def data_relative(path: Path) -> str:
    """A dataset image's path below its `ai/` or `human/` folder's parent (e.g. ai/source/x.webp), else as given."""
    parts = Path(path).parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("ai", "human"):
            return "/".join(parts[i:])
    return str(path)


def predict_tflite(model_path: Path, bases: list[dict[str, np.ndarray]], views: Sequence[str],
                   desc: str) -> np.ndarray:
    """P(ai) from a TFLite file through the edge runtime, the mean over `views`, one invoke per chunk."""
    detector = Detector(model_path, tta=False)
    batches = tqdm(view_batches(bases, views), total=-(-len(bases) // CHUNK), desc=desc, unit="batch",
                   file=sys.stderr, leave=False)
    return np.concatenate([detector.predict(batch).reshape(-1, len(views)).mean(axis=1) for batch in batches])


def convert_variant(graph: keras.Model, variant: str, representative, sidecar, out_dir: Path,
                    bases: list[dict[str, np.ndarray]], views: Sequence[str], reference: np.ndarray,
                    labels: np.ndarray, threshold: float) -> dict:
    """Convert, check and write one variant; returns its parity entry (size, ops, types, agreement, metrics)."""
    tflite_model = convert(graph, variant, representative)
    result = {"size_bytes": len(tflite_model), "ops": op_list(tflite_model), **io_types(tflite_model)}
    if variant == "float16":
        check_gpu_compatible(tflite_model)  # raises: a float16 model that would not run on a GPU is a bug
        result["gpu_compatible"] = True
    metadata = sidecar(variant, tflite_model)
    path = write_model(out_dir / f"model-{variant}.tflite", tflite_model, metadata)
    result.update(parity.compare(variant, reference, predict_tflite(path, bases, views, variant), labels, threshold))
    metadata["metrics"] = {key: result[key] for key in ("accuracy", "f1", "ai_recall", "human_fpr", "auc",
                                                         "top_label_agreement_pct", "mean_abs_prob_diff")}
    metadata["metrics"]["parity_images"] = len(bases)
    write_model(path, tflite_model, metadata)
    return result


def convert_run(run: Run, out_dir: Path, variants=VARIANTS, images: str | None = None, limit: int | None = None,
                calibration_size: int = 256, calibration_folder: str | None = None,
                model_version: str | None = None, install: str | None = None, views: Sequence[str] | None = None
                ) -> dict:
    """Write model-<variant>.tflite + .json per variant, model.tflite (the recommended one), parity.json/.md,
    and keras_reference.csv (the Keras model's P(ai) per image and view, for parity tests without TensorFlow).
    `install`: None, "default" (install_models) or a name for install_named.

    Parity compares the mean over `views` (default: the run's views, the basis of its threshold); the sidecars
    give the runtime the run's views and escalation band whatever `views` is.
    """
    views = tuple(views or run.views)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = keras.models.load_model(run.model_path, compile=False)
    architecture = run.config.get("variant", "enhanced")
    test_images = labelled_folder(images) if images else run.images("test")
    if not test_images:
        raise ValueError("no parity images: the run has no test split; pass --images DIR (human/ and ai/)")
    bases, readable, skipped = load_bases(balanced_sample(test_images, limit), views, "parity images")
    labels = np.array([1 if label == "ai" else 0 for _, label in readable])
    per_view = predict_keras(model, bases, views)
    reference = per_view.mean(axis=1)

    graph = delegate_friendly(model)
    graph_diff = max_abs_difference(model, graph, next(view_batches(bases, views[:1])))
    if graph_diff > GRAPH_TOLERANCE:
        raise RuntimeError(f"delegate-friendly graph differs from the Keras model by {graph_diff:.2e}")

    version = model_version or run.name
    representative = None
    if "int8" in variants:
        representative = representative_dataset(calibration_batch(run, calibration_size, calibration_folder))
    sidecar = partial(build_sidecar, threshold=run.threshold, unsure_band=run.unsure_band, model_version=version,
                      training_data=run.training_data(), architecture=architecture, views=run.views,
                      escalation_band=run.escalation_band, recipe=run.recipe)
    results = {}
    for variant in tqdm(variants, desc="variants", unit="variant", file=sys.stderr):
        results[variant] = convert_variant(graph, variant, representative, sidecar, out_dir, bases, views,
                                           reference, labels, run.threshold)

    recommended, reason = parity.recommend(results) if "float32" in results else \
        (variants[0], "float32 was not converted, so there is no accuracy reference")
    report = {
        "model": str(run.model_path), "model_version": version, "threshold": run.threshold, "views": list(views),
        "images": {"count": len(bases), "skipped": skipped,
                   "description": f"folder {images}" if images else f"test split of {run.name}" +
                   (f", {limit} sampled" if limit else "")},
        "keras": parity.classification_metrics(labels, reference, run.threshold),
        "delegate_graph_max_abs_diff": graph_diff,
        "variants": results, "recommended": recommended, "recommendation_reason": reason,
    }
    for suffix in (".tflite", ".json"):
        shutil.copyfile(out_dir / f"model-{recommended}{suffix}", out_dir / f"model{suffix}")
    parity.write_report(report, out_dir)
    write_reference(out_dir / "keras_reference.csv", readable, views, per_view)
    if install == "default":
        install_models(out_dir, recommended)
    elif install:
        install_named(out_dir, recommended, install)
    return report


def install_models(out_dir: Path, default_variant: str) -> None:
    """Copy the default variant and the float16 variant (if built) into edge_runtime/models/ (the bundled models)."""
    pairs = [(f"model-{default_variant}", "model")]
    if (out_dir / "model-float16.tflite").is_file():
        pairs.append(("model-float16", "model-float16"))
    for source, target in pairs:
        for suffix in (".tflite", ".json"):
            shutil.copyfile(out_dir / f"{source}{suffix}", MODELS_DIR / f"{target}{suffix}")


def install_named(out_dir: Path, variant: str, name: str) -> None:
    """Copy one variant into edge_runtime/models/ as the bundled model `name` (model-NAME.tflite + .json)."""
    for suffix in (".tflite", ".json"):
        shutil.copyfile(out_dir / f"model-{variant}{suffix}", MODELS_DIR / f"model-{name}{suffix}")
