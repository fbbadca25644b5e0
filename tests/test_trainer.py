"""The paper's model and variants, and a tiny end-to-end train + evaluate run on real images."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from trainer.model import VARIANTS, backbone_layers, build_model, set_backbone_trainable


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_enhanced_model_has_the_papers_parameter_counts():
    model = build_model("enhanced", weights=None)
    assert model.count_params() == 3_447_937
    assert trainable_count(model) == 1_189_953
    assert model.output.shape[1:] == (1,)
    assert model.get_layer("se_scale").output.shape[1:] == (7, 7, 1280)


@pytest.mark.parametrize("variant, attention, first_dense", [
    ("baseline", False, 512), ("no_attention", False, 256), ("no_enhanced_head", True, 512)])
def test_variants_are_selected_by_name(variant, attention, first_dense):
    model = build_model(variant, weights=None)
    names = {layer.name for layer in model.layers}
    assert ("se_scale" in names) == attention
    assert model.get_layer("head_dense1").units == first_dense
    rates = [model.get_layer(f"head_dropout{i}").rate for i in (1, 2, 3)]
    assert rates == ([0.3, 0.4, 0.5] if first_dense == 512 else [0.3, 0.4, 0.2])


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown variant"):
        build_model("resnet", weights=None)
    assert set(VARIANTS) == {"enhanced", "baseline", "no_attention", "no_enhanced_head"}


def test_stage_two_unfreezes_only_the_last_30_backbone_layers():
    model = build_model("enhanced", weights=None)
    set_backbone_trainable(model, 30)
    layers = backbone_layers(model)
    assert layers[-1].name == "out_relu"
    trainable = [layer.name for layer in layers if layer.trainable]
    assert trainable and all(layer in layers[-30:] for layer in layers if layer.trainable)
    assert "block_16_project" in trainable and "block_16_project_BN" not in trainable
    assert trainable_count(model) > 1_189_953


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_root):
    run = tmp_path_factory.mktemp("run") / "tiny"
    cmd = [sys.executable, "-m", "trainer", "train", "--data", str(data_root), "--out", str(run),
           "--limit", "16", "--stage1-epochs", "1", "--stage2-epochs", "1", "--views-per-image", "1",
           "--views-per-rare-image", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return run, done


@pytest.mark.slow
def test_tiny_training_run_writes_a_complete_run_directory(tiny_run):
    run, done = tiny_run
    for name in ("model.keras", "config.json", "split.csv", "threshold.json", "history.json",
                 "report/report.json", "report/report.md", "report/roc.png", "report/confusion.png",
                 "report/training_curves.png"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["parameters"] == {"total": 3_447_937, "trainable_stage1": 1_189_953}
    assert len(config["manifest_sha256"]) == 64
    history = json.loads((run / "history.json").read_text())
    assert set(history) == {"stage1", "stage2"} and "val_loss" in history["stage2"]
    threshold = json.loads((run / "threshold.json").read_text())
    assert 0.5 <= threshold["threshold"] < 1 and threshold["chosen_on"] == "val"
    assert "| tta |" in done.stdout


@pytest.mark.slow
def test_evaluate_from_files_matches_the_cached_report(tiny_run):
    run, _ = tiny_run
    cached = json.loads((run / "report" / "report.json").read_text())
    done = subprocess.run([sys.executable, "-m", "trainer", "evaluate", str(run)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads((run / "report" / "report.json").read_text())
    for name in ("standard", "tta", "tta_equalised"):
        assert fresh[name]["confusion"] == cached[name]["confusion"]
        assert fresh[name]["auc"] == pytest.approx(cached[name]["auc"], abs=1e-3)
