"""Keras -> TFLite: every variant converts and loads, parity with Keras, GPU-friendly float16, the runtime agrees.

Converts once per session (four variants of a briefly trained MobileNetV2: about two minutes on two cores).
"""
from __future__ import annotations

import csv
import hashlib
import json

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import DATA
from converter import parity
from converter.cli import main as converter_main
from converter.convert import VARIANTS, GpuIncompatibleError, check_gpu_compatible, convert, op_list
from converter.delegate_graph import delegate_friendly
from converter.parity import MEAN_TOLERANCE
from converter.run import labelled_folder, open_run
from edge_runtime import Detector
from edge_runtime.preprocess import TTA_VIEWS, preprocess, preprocess_tta
from trainer.data import LABELS, Sample, scan_folder, write_split
from trainer.evaluate import read_test_split
from trainer.model import build_model

# Keras' predict on numpy 2 warns about __array__(copy=...) on every call: noise, not our code.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
SOURCES = ("wfjsw-prompt-builder", "wfjsw-prompt-builder-facecrops", "jamesflare-codex",
           "danbooru-facecrops", "agbooks-2021", "frenzyexists-wallpapers-2021")


def sample(rows, per_source: int, skip: int) -> list[dict]:
    """A few images of every source (both classes, several formats), skipping the first `skip` of each."""
    return [r for source in SOURCES for r in [x for x in rows if x["source"] == source][skip:skip + per_source]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, manifest_rows):
    """A run directory as the trainer writes it, holding a briefly trained model (head only, 4 epochs)."""
    run = tmp_path_factory.mktemp("run")
    train, test = sample(manifest_rows, 10, 0), sample(manifest_rows, 4, 10)
    keras.utils.set_random_seed(0)
    model = build_model("enhanced", weights="imagenet")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    x = np.stack([preprocess(DATA / r["path"]) for r in train])
    y = np.array([[1.0 if r["label"] == "ai" else 0.0] for r in train])
    model.fit(x, y, epochs=4, batch_size=20, verbose=0)
    model.save(run / "model.keras")
    with open(run / "split.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "label", "source", "path"])
        for split, rows in (("train", train), ("test", test)):
            writer.writerows([split, r["label"], r["source"], str(DATA / r["path"])] for r in rows)
    (run / "threshold.json").write_text(json.dumps({"threshold": 0.5, "unsure_band": [0.35, 0.65]}))
    config = {"variant": "enhanced", "data": str(DATA), "manifest_sha256": "f" * 64}
    (run / "config.json").write_text(json.dumps(config))
    return run


@pytest.fixture(scope="module")
def converted(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    assert converter_main([str(run_dir), "--out", str(out), "--calibration-size", "40"]) == 0
    return out


@pytest.fixture(scope="module")
def keras_model(run_dir):
    return keras.models.load_model(run_dir / "model.keras", compile=False)


@pytest.fixture(scope="module")
def test_images(run_dir):
    with open(run_dir / "split.csv", newline="") as f:
        return [row["path"] for row in csv.DictReader(f) if row["split"] == "test"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_converts_and_loads(converted, run_dir, variant):
    path = converted / f"model-{variant}.tflite"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["variant"] == variant and meta["model_version"] == run_dir.name
    assert meta["tflite_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["threshold"] == 0.5 and meta["unsure_band"] == [0.35, 0.65]
    assert meta["training_data"]["manifest_sha256"] == "f" * 64
    assert meta["training_data"]["counts"]["train"] == {"ai": 30, "human": 30}
    assert meta["tta_views"] == list(TTA_VIEWS) and meta["normalisation"] == "x/127.5-1"
    detector = Detector(path)
    assert detector.info()["variant"] == variant
    expected_input = "int8" if variant == "int8" else "float32"
    assert detector._interpreter(1).get_input_details()[0]["dtype"].__name__ == expected_input
    assert detector._interpreter(1).get_output_details()[0]["dtype"].__name__ == expected_input


@pytest.mark.slow
def test_sizes_shrink_with_quantisation(converted):
    size = {v: (converted / f"model-{v}.tflite").stat().st_size for v in VARIANTS}
    assert size["float16"] < 0.6 * size["float32"]
    assert size["dynamic"] < 0.35 * size["float32"] and size["int8"] < 0.35 * size["float32"]


@pytest.mark.slow
def test_parity_report(converted, keras_model, test_images):
    report = json.loads((converted / "parity.json").read_text())
    assert report["images"]["count"] == len(test_images) and report["images"]["skipped"] == []
    assert report["delegate_graph_max_abs_diff"] <= 1e-5
    keras_probs = np.array([keras_model.predict(preprocess_tta(p), verbose=0).mean() for p in test_images])
    assert report["views"] == list(TTA_VIEWS)
    labels = np.array([1 if "/ai/" in p else 0 for p in test_images])
    assert report["keras"]["accuracy"] == pytest.approx(np.mean((keras_probs >= 0.5) == labels))
    for variant in VARIANTS:
        r = report["variants"][variant]
        assert r["mean_abs_prob_diff"] <= MEAN_TOLERANCE[variant] and r["within_tolerance"], variant
        assert r["mean_abs_prob_diff"] <= r["max_abs_prob_diff"]
        assert r["size_bytes"] == (converted / f"model-{variant}.tflite").stat().st_size
        assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "MUL", "LOGISTIC"} <= set(r["ops"])
        assert not {"SHAPE", "RESHAPE", "BROADCAST_TO"} & set(r["ops"])
    assert report["variants"]["float32"]["top_label_agreement_pct"] == 100.0
    assert report["recommended"] == parity.recommend(report["variants"])[0]
    assert (converted / "model.tflite").read_bytes() == \
        (converted / f"model-{report['recommended']}.tflite").read_bytes()
    markdown = (converted / "parity.md").read_text()
    assert all(f"| {variant} |" in markdown for variant in VARIANTS) and report["recommended"] in markdown


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_runtime_equals_keras_on_the_same_files(converted, keras_model, test_images, variant):
    detector = Detector(converted / f"model-{variant}.tflite", tta="always")  # every view, as Keras computes them
    runtime, reference = [], []
    for path in test_images[::3]:
        result = detector.check(path)
        runtime += list(result.view_probabilities.values())
        reference += list(keras_model.predict(preprocess_tta(path), verbose=0).ravel())
        assert result.probability == pytest.approx(np.mean(runtime[-4:]), abs=1e-6)
    diff = np.abs(np.array(runtime) - np.array(reference))
    assert diff.mean() <= MEAN_TOLERANCE[variant]
    if variant == "float32":
        assert diff.max() <= 1e-4  # same input tensor and graph: rounding only


@pytest.mark.slow
def test_float16_passes_the_gpu_analyzer(converted):
    report = check_gpu_compatible((converted / "model-float16.tflite").read_bytes())
    assert "GPU COMPATIBILITY WARNING" not in report


@pytest.mark.slow
def test_gpu_check_fails_loudly_on_the_stock_keras_graph(keras_model):
    # Keras' SE block computes its Reshape target at run time (SHAPE -> STRIDED_SLICE -> PACK): CPU-only.
    with pytest.raises(GpuIncompatibleError, match="SHAPE: no GPU delegate kernel"):
        check_gpu_compatible(convert(keras_model, "float16"))


@pytest.mark.slow
def test_gpu_check_fails_on_5d_tensors():
    inputs = keras.Input((2, 2, 2, 2))
    model = keras.Model(inputs, keras.ops.exp(keras.ops.expand_dims(inputs, 1)))
    with pytest.raises(GpuIncompatibleError, match="5-D"):
        check_gpu_compatible(convert(model, "float16"))


@pytest.mark.slow
def test_delegate_friendly_graph_is_the_same_function(keras_model, test_images):
    graph = delegate_friendly(keras_model)
    assert graph.get_layer("se_reduce").__class__.__name__ == "Conv2D"
    assert "se_reshape" not in [layer.name for layer in graph.layers]
    assert all(len(graph.get_layer(n).output.shape) == 4 for n in ("se_squeeze", "se_reduce", "se_expand"))
    batch = np.stack([preprocess(p) for p in test_images[:6]])
    np.testing.assert_allclose(graph.predict(batch, verbose=0), keras_model.predict(batch, verbose=0), atol=1e-6)
    stock_ops = op_list(convert(keras_model, "float32"))
    assert {"SHAPE", "RESHAPE"} <= set(stock_ops)  # what the rewrite removes


def test_recommendation_rule():
    def results(**accuracy):
        return {name: {"accuracy": value} for name, value in accuracy.items()}
    assert parity.recommend(results(float32=0.900, float16=0.900, dynamic=0.899, int8=0.896))[0] == "int8"
    assert parity.recommend(results(float32=0.900, float16=0.900, dynamic=0.899, int8=0.890))[0] == "dynamic"
    assert parity.recommend(results(float32=0.900, float16=0.899, dynamic=0.880, int8=0.880))[0] == "float16"
    # an int8 model far *more* accurate than float32 has drifted from the model the threshold was chosen for
    assert parity.recommend(results(float32=0.900, float16=0.900, dynamic=0.902, int8=0.912))[0] == "dynamic"
    name, reason = parity.recommend(results(float32=0.9, int8=0.8))
    assert name == "float32" and "10.00 pp" in reason


def test_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) * 0.5 + labels * 0.3, 2)  # rounded: many ties
    assert parity.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert parity.roc_auc(np.ones(5, int), scores[:5]) is None


def test_classification_metrics():
    labels = np.array([1, 1, 1, 0, 0, 0])
    probs = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.2])
    metrics = parity.classification_metrics(labels, probs, 0.5)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert metrics["ai_recall"] == pytest.approx(2 / 3) and metrics["human_fpr"] == pytest.approx(1 / 3)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, probs))


def test_run_reads_split_and_folders_with_the_trainers_functions(tmp_path, manifest_rows):
    """The converter takes its test split from trainer.evaluate.read_test_split and labelled folders from
    trainer.data.scan_folder, so parity is judged on the images the trainer evaluated; the other splits (int8
    calibration) and the per-split counts come from the same split.csv."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")  # open_run only locates the model
    as_sample = lambda r: Sample(DATA / r["path"], LABELS.index(r["label"]), r["source"])  # noqa: E731
    parts = {"train": [as_sample(r) for r in sample(manifest_rows, 2, 0)],
             "test": [as_sample(r) for r in sample(manifest_rows, 1, 2)]}
    write_split(parts, run / "split.csv")
    (run / "config.json").write_text(json.dumps({"data": str(DATA), "manifest_sha256": "f" * 64}))

    opened = open_run(run)
    assert opened.images("test") == [(path, LABELS[label]) for path, label, _ in read_test_split(run)]
    assert opened.images("test") == [(s.path, LABELS[s.label]) for s in parts["test"]]
    assert opened.images("train") == [(s.path, LABELS[s.label]) for s in parts["train"]]
    assert opened.training_data()["counts"] == {"train": {"ai": 6, "human": 6}, "test": {"ai": 3, "human": 3}}
    assert opened.name == "run" and opened.threshold == 0.5

    folder = tmp_path / "folder"
    for name in ("human/agbooks/a.png", "human/b.jpg", "ai/codex/c.webp", "ai/notes.txt", "ai/d.tiff"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    expected = [(folder / "human/agbooks/a.png", "human"), (folder / "human/b.jpg", "human"),
                (folder / "ai/codex/c.webp", "ai")]
    assert labelled_folder(folder) == [(s.path, LABELS[s.label]) for s in scan_folder(folder)] == expected
    with pytest.raises(ValueError, match="no labelled images"):
        labelled_folder(tmp_path / "run")
