"""The bundled `paper` model (the 2025 paper's attention MobileNetV2, shipped beside the default): its sidecar, the
runtime against the Keras model it was converted from, the CLI without TensorFlow, and the relay's `?model=`."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import pick
from converter.parity import MEAN_TOLERANCE
from edge_runtime import TTA_VIEWS, Detector
from edge_runtime.bundle import MODELS_DIR, bundled_models, read_sidecar

REPO = MODELS_DIR.parents[1]
# Written by `python -m converter runs/paper ... --install-as paper` from the Keras model (runs/paper/model.keras):
# its P(ai) for every view of every test-split image.
KERAS_REFERENCE = REPO / "docs" / "model" / "paper" / "keras_reference.csv"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def paper() -> Detector:
    return Detector(model="paper", tta="always")


def test_paper_is_bundled_with_its_own_sidecar(data_root):
    path = bundled_models()["paper"]
    meta = read_sidecar(path)
    assert path.name == "model-paper.tflite" and meta["tflite_sha256"] == sha256(path)
    assert meta["architecture"] == "enhanced" and meta["tta_views"] == list(TTA_VIEWS)  # the paper's four views
    assert meta["training_data"]["manifest_sha256"] == sha256(data_root / "manifest.csv")  # data v3
    low, high = meta["unsure_band"]
    assert low < meta["threshold"] < high
    assert meta["metrics"]["parity_images"] == len(keras_reference_rows())
    assert path.stat().st_size < 8 * 1024 * 1024
    assert meta["model_version"] != read_sidecar(bundled_models()["default"])["model_version"]


def keras_reference_rows() -> list[dict]:
    with open(KERAS_REFERENCE, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_runtime_equals_the_keras_model_on_its_test_images(paper, data_root):
    """The bundled file against the Keras model it came from, view by view, on every fourth test-split image."""
    rows = keras_reference_rows()[::4]
    runtime, keras = [], []
    for row in rows:
        result = paper.check(data_root / row["path"], trust_metadata=False)
        assert result.views_run == list(TTA_VIEWS)
        runtime.append([result.view_probabilities[view] for view in TTA_VIEWS])
        keras.append([float(row[f"p_{view}"]) for view in TTA_VIEWS])
    runtime, keras = np.array(runtime), np.array(keras)
    assert len(rows) >= 100
    assert np.abs(runtime - keras).mean() <= MEAN_TOLERANCE[paper.info()["variant"]]
    threshold = paper.threshold
    agreement = np.mean((runtime.mean(axis=1) >= threshold) == (keras.mean(axis=1) >= threshold))
    assert agreement >= 0.97, f"labels agree on {agreement:.1%} of images"
    labels = np.array([1 if row["label"] == "ai" else 0 for row in rows])
    accuracy = {name: np.mean((p.mean(axis=1) >= threshold) == labels) for name, p in (("runtime", runtime),
                                                                                      ("keras", keras))}
    assert abs(accuracy["runtime"] - accuracy["keras"]) <= 0.02, accuracy


CLI_WITHOUT_TENSORFLOW = """
import runpy, sys

class NoTensorFlow:  # a fresh install without TensorFlow: importing it fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"No module named {name!r}")

sys.meta_path.insert(0, NoTensorFlow())
sys.argv = ["python -m edge_runtime", "--model", "paper", "--json", *sys.argv[1:]]
try:
    runpy.run_module("edge_runtime", run_name="__main__")
finally:
    assert not {"tensorflow", "keras"} & set(sys.modules), "TensorFlow was imported"
"""


def test_cli_runs_the_paper_model_without_tensorflow(data_root, manifest_rows):
    images = pick(manifest_rows, "hdm-xut", 1) + pick(manifest_rows, "katawa-shoujo", 1)
    run = subprocess.run([sys.executable, "-c", CLI_WITHOUT_TENSORFLOW, *map(str, images)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line) for line in run.stdout.splitlines()]
    meta = read_sidecar(bundled_models()["paper"])
    assert [r["path"] for r in results] == [str(p) for p in images]
    assert all(r["ok"] and r["model_version"] == meta["model_version"] for r in results)
    assert all(r["threshold"] == meta["threshold"] and r["label"] in ("ai", "human", "unsure") for r in results)


def test_relay_answers_with_the_model_a_request_names_and_caches_each_apart(manifest_rows):
    from server import Config, create_app

    app = create_app(Config(rate_limit="off", batch_rate_limit="off"))
    client = app.test_client()
    assert client.get("/healthz").json["models"] == ["default", "paper"]
    paper_pool = app.extensions["relay"].checkers["paper"].pool
    assert paper_pool._made == 0 and paper_pool.idle() == paper_pool.size  # no memory until a request names it
    image = pick(manifest_rows, "animaginexl4-gallery", 1)[0].read_bytes()
    paper_version = read_sidecar(bundled_models()["paper"])["model_version"]

    def check(query: str) -> dict:
        answer = client.post(f"/api/v1/check{query}", data=image, content_type="image/webp")
        assert answer.status_code == 200, answer.json
        return answer.json

    default = check("?tta=always")
    assert paper_pool._made == 0
    first, again = check("?tta=always&model=paper"), check("?tta=always&model=paper")
    assert paper_pool._made == 1  # one at a time here: one Detector made
    assert not default["cached"] and not first["cached"] and again["cached"]  # the cache keys on the model file
    assert first["model_version"] == again["model_version"] == paper_version != default["model_version"]
    assert first["views_run"] == list(TTA_VIEWS) and first["probability"] == again["probability"]
    assert check("?tta=always&model=default")["cached"] and check("?tta=always")["model_version"] != paper_version
    assert client.get("/api/v1/model?model=paper").json["model_version"] == paper_version
    refused = client.post("/api/v1/check?model=../model.tflite", data=image, content_type="image/webp")
    assert refused.status_code == 400 and "default, paper" in refused.json["error"]["reason"]
    batch = client.post("/api/v1/check-batch?model=paper", data={"file": [(io.BytesIO(image), "a")]},
                        content_type="multipart/form-data").json
    assert batch["results"][0]["model_version"] == paper_version and batch["results"][0]["cached"] is False


def test_relay_serves_only_its_own_model_when_told(manifest_rows):
    from server import Config, create_app

    client = create_app(Config(rate_limit="off", models=())).test_client()
    assert client.get("/healthz").json["models"] == ["default"]
    image = pick(manifest_rows, "hdm-xut", 1)[0].read_bytes()
    assert client.post("/api/v1/check?model=paper", data=image, content_type="image/webp").status_code == 400
    with pytest.raises(ValueError, match="not a bundled model name"):
        Config(models=("default",))


def test_converter_reads_the_views_of_a_run_the_paper_trainer_wrote(tmp_path):
    """trainer/train.py writes threshold.json with "views": "tta-mean" (a description, not a list of views)."""
    from converter.run import open_run

    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "threshold.json").write_text('{"threshold": 0.83, "unsure_band": [0.68, 0.98], "views": "tta-mean"}')
    assert open_run(tmp_path).views == TTA_VIEWS
    (tmp_path / "threshold.json").write_text('{"threshold": 0.7, "views": ["original", "crop"]}')
    assert open_run(tmp_path).views == ("original", "crop")
