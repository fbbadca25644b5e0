"""The edge runtime with the bundled model: TTA views, one invoke per image, verdicts, errors, no TensorFlow."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, pick
from edge_runtime import Detector, ImageError, Result, RuntimeMissingError, TTA_VIEWS
from edge_runtime import bundle, detector, preprocess
from edge_runtime.encoding import InputEncoder, dequantise, quantise
from edge_runtime.interpreter import interpreter_module


@pytest.fixture(scope="module")
def images(manifest_rows):
    """Two AI renders (WebP) and two human face crops (JPEG) from the real dataset."""
    return pick(manifest_rows, "wfjsw-prompt-builder", 2) + pick(manifest_rows, "danbooru-facecrops", 2)


@pytest.fixture(scope="module")
def det():
    return Detector()


def test_tta_views_are_the_papers(images):
    pixels = preprocess.resize(preprocess.load_image(images[0]))
    batch = preprocess.tta_batch(pixels, TTA_VIEWS)
    original = pixels.astype(np.float32)
    assert TTA_VIEWS == ("original", "flip", "bright+5", "bright-5")
    assert batch.shape == (4, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], original / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(batch[1], np.fliplr(original) / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(batch[2], np.clip(original * 1.05, 0, 255) / 127.5 - 1, atol=1e-5)
    np.testing.assert_allclose(batch[3], original * 0.95 / 127.5 - 1, atol=1e-5)
    assert batch[2].max() == pytest.approx(1.0)  # bright pixels saturate instead of leaving [-1, 1]
    assert np.any(original * 1.05 > 255)


def test_tta_batch_is_one_invoke(det, images):
    interpreter = det._interpreter(len(det.views))
    calls = []
    real_invoke = interpreter.invoke
    interpreter.invoke = lambda: (calls.append(interpreter.get_input_details()[0]["shape"].tolist()), real_invoke())
    try:
        result = det.check(images[0], tta="always")
    finally:
        del interpreter.invoke
    assert calls == [[len(det.views), 224, 224, 3]]
    assert list(result.view_probabilities) == result.views_run == list(det.views)
    assert result.probability == pytest.approx(np.mean(list(result.view_probabilities.values())), abs=1e-7)


def test_batched_views_match_single_invokes(det, images):
    batch = preprocess.preprocess_tta(images[2], det.views)
    batched = det.predict(batch)
    single = np.array([det.predict(batch[i:i + 1])[0] for i in range(len(batch))])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert det.check(images[2], tta="always").view_probabilities == pytest.approx(dict(zip(det.views, batched)),
                                                                                 abs=1e-6)


def test_check_without_tta_is_the_original_view(det, images):
    plain = det.check(images[1], tta=False)
    assert list(plain.view_probabilities) == plain.views_run == [det.views[0]] and plain.tta == "never"
    assert plain.probability == pytest.approx(det.check(images[1], tta=True).view_probabilities[det.views[0]],
                                              abs=1e-6)
    assert set(plain.timings_ms) == {"decode", "infer", "total"} and plain.timings_ms["total"] > 0


def test_path_bytes_and_stream_give_the_same_result(det, images):
    path = images[3]
    data = path.read_bytes()
    from_path = det.check(path).probability
    assert det.check(str(path)).probability == from_path
    assert det.check(data).probability == from_path
    assert det.check(io.BytesIO(data)).probability == from_path


def test_result_is_json_ready(det, images):
    result = det.check(images[0])
    assert isinstance(result, Result)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["label"] in ("ai", "human", "unsure")
    assert record["model_version"] == det.info()["model_version"]
    assert record["unsure_band"] == list(det.unsure_band)


def test_decide_uses_threshold_and_band():
    assert detector.decide(0.9, 0.5, (0.4, 0.6)) == "ai"
    assert detector.decide(0.6, 0.5, (0.4, 0.6)) == "ai"
    assert detector.decide(0.55, 0.5, (0.4, 0.6)) == "unsure"
    assert detector.decide(0.41, 0.5, (0.4, 0.6)) == "unsure"
    assert detector.decide(0.4, 0.5, (0.4, 0.6)) == "human"
    assert detector.decide(0.5, 0.5, (0.5, 0.5)) == "ai"


def test_threshold_and_band_override_the_sidecar(images):
    probability = Detector().check(images[0]).probability
    assert Detector(threshold=probability - 0.01, unsure_band=(0, 0)).check(images[0]).label == "ai"
    assert Detector(threshold=probability + 0.01, unsure_band=(0, 0)).check(images[0]).label == "human"
    wide = Detector(unsure_band=(probability - 0.01, probability + 0.01)).check(images[0])
    assert wide.label == "unsure" and wide.unsure_band == (probability - 0.01, probability + 0.01)


def test_bad_inputs_raise_image_error(det, images, tmp_path):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(images[2].read_bytes()[:2000])
    cases = {b"": "empty", b"plain text, not an image": "not an image", truncated: "truncated",
             tmp_path / "missing.png": "cannot read file"}
    for source, reason in cases.items():
        with pytest.raises(ImageError) as err:
            det.check(source)
        assert reason in err.value.reason


def test_decompression_bomb_is_refused(det):
    buffer = io.BytesIO()
    Image.new("L", (9000, 9000)).save(buffer, "PNG")  # 81 MP, above the 20 MP limit; compresses to ~80 kB
    with pytest.raises(ImageError, match="too large"):
        det.check(buffer.getvalue())


def test_check_many_keeps_order_and_reports_bad_files(det, images):
    outcomes = list(det.check_many([images[0], b"junk", images[2]]))
    assert isinstance(outcomes[1], ImageError)
    assert outcomes[0].probability == pytest.approx(det.check(images[0]).probability, abs=1e-6)
    assert outcomes[2].probability == pytest.approx(det.check(images[2]).probability, abs=1e-6)


def test_quantise_round_trip_uses_tensor_params():
    detail = {"dtype": np.int8, "quantization": (2 / 255, -1)}
    x = np.linspace(-1, 1, 256, dtype=np.float32)
    q = quantise(x, detail)
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 126
    np.testing.assert_allclose(dequantise(q, detail), x, atol=1 / 255 + 1e-6)
    assert quantise(np.array([5.0]), detail)[0] == 127  # clipped, not wrapped
    uint8 = {"dtype": np.uint8, "quantization": (1 / 256, 0)}
    np.testing.assert_allclose(dequantise(np.array([0, 128, 255], np.uint8), uint8), [0, 0.5, 255 / 256])


@pytest.mark.parametrize("detail", [{"dtype": np.float32, "quantization": (0.0, 0)},
                                    {"dtype": np.int8, "quantization": (2 / 255, -1)},
                                    {"dtype": np.uint8, "quantization": (2 / 255, 127)}])
def test_lookup_table_encoding_equals_the_preprocessing(images, detail):
    views = (*TTA_VIEWS, *preprocess.CROP_VIEWS)
    encoder = InputEncoder(views, detail)
    assert [mirrored for _, mirrored in encoder.tables] == [False, True, False, False, False, True]
    for path in images[::2]:
        img = preprocess.load_image(path)
        encoded = encoder.encode(preprocess.base_pixels(img, views))
        assert encoded.dtype == detail["dtype"]
        np.testing.assert_array_equal(encoded, quantise(preprocess.view_batch(img, views), detail))


def test_crop_views_keep_native_resolution_and_enlarge_small_images(images):
    img = preprocess.load_image(images[0])
    large = img.resize((600, 400))
    crop = preprocess.view_batch(large, ["crop"])[0]
    expected = np.asarray(large.crop((188, 88, 412, 312)), dtype=np.uint8)
    np.testing.assert_array_equal(crop, preprocess.normalise(expected))
    small = preprocess.centre_crop(img.resize((100, 50)))
    assert small.shape == (224, 224, 3)
    flipped = preprocess.view_batch(large, ["crop", "crop-flip"])
    np.testing.assert_array_equal(flipped[1], flipped[0][:, ::-1])


def test_bundled_models_and_sidecars_are_consistent():
    names = bundle.bundled_models()
    assert {"default", "float16"} <= set(names)
    for name, path in names.items():
        meta = bundle.read_sidecar(path)
        assert meta["tflite_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), name
        assert meta["input_size"] == 224 and meta["labels"] == ["human", "ai"]
        assert meta["unsure_band"][0] <= meta["threshold"] <= meta["unsure_band"][1]
    assert bundle.read_sidecar(names["float16"])["variant"] == "float16"
    assert Detector("float16").info()["variant"] == "float16"


def test_unknown_model_and_missing_sidecar(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled"):
        Detector("no-such-model")
    lone = tmp_path / "lone.tflite"
    lone.write_bytes(bundle.DEFAULT_MODEL.read_bytes())
    with pytest.raises(FileNotFoundError, match="metadata"):
        Detector(lone)


# LiteRT's Delegate.__del__ trips over its own failed load (AttributeError, ignored): not ours to fix.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_missing_delegate_library_fails_at_construction():
    with pytest.raises(ValueError, match="cannot load TFLite delegate /nonexistent/libdelegate.so"):
        Detector(delegate="/nonexistent/libdelegate.so")


def test_missing_runtime_names_the_package(monkeypatch):
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    with pytest.raises(RuntimeMissingError, match="pip install ai-edge-litert"):
        interpreter_module()
    with pytest.raises(RuntimeMissingError, match="pip install ai-edge-litert"):
        Detector()


def test_falls_back_to_tflite_runtime(monkeypatch):
    import ai_edge_litert.interpreter as litert
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", litert)  # same API, stands in for the old wheel
    assert interpreter_module() is litert
    assert Detector().predict(np.zeros((1, 224, 224, 3), np.float32)).shape == (1,)


def test_runtime_never_imports_tensorflow_or_ray(images):
    """The bottom layer stays numpy + Pillow + LiteRT: no TensorFlow, and nothing of the archive scan's Ray."""
    code = ("import sys; from edge_runtime import Detector; import edge_runtime.cli; "
            f"r = Detector().check({str(images[0])!r}); "
            "bad = [m for m in ('tensorflow', 'keras', 'tf_keras', 'ray', 'pyarrow', 'archive_scan') "
            "if m in sys.modules]; "
            "print(r.label, bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split()[0] in ("ai", "human", "unsure")
