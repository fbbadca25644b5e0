"""Rebuild a trained model so its attention block stays 4-D, the form TFLite GPU delegates and int8 like.

Keras exports the squeeze-and-excitation block as GAP -> 2-D Dense -> Dense -> Reshape (SHAPE/STRIDED_SLICE/
PACK ops) -> broadcast Multiply. Here the two Dense layers become 1x1 convolutions with the same weights on
a keep-dims GAP (1x1xC), so the graph computes the same function with every attention tensor 4-D.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

SE_LAYERS = ("se_squeeze", "se_reduce", "se_expand", "se_reshape", "se_scale")


def has_attention(model: keras.Model) -> bool:
    """Whether the model has the squeeze-and-excitation block built by trainer.model."""
    return any(layer.name == "se_scale" for layer in model.layers)


def dense_as_conv(dense: layers.Dense) -> layers.Conv2D:
    """A 1x1 Conv2D computing `dense` on every pixel, with its weights (kernel reshaped to 1x1xInxOut)."""
    kernel, bias = dense.get_weights()
    conv = layers.Conv2D(kernel.shape[1], 1, activation=dense.activation, name=dense.name)
    conv.build((None, 1, 1, kernel.shape[0]))
    conv.set_weights([kernel.reshape(1, 1, *kernel.shape), bias])
    return conv


def delegate_friendly(model: keras.Model) -> keras.Model:
    """The same model with the SE block as GAP(keepdims) -> 1x1 conv -> 1x1 conv -> 4-D multiply.

    Models without the block are returned unchanged. Layers after the block (the dense head) are
    reused as they are; the head must be a single chain, as trainer.model builds it.
    """
    if not has_attention(model):
        return model
    names = [layer.name for layer in model.layers]
    features = model.get_layer("se_squeeze").input
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(features)
    gate = dense_as_conv(model.get_layer("se_reduce"))(gate)
    gate = dense_as_conv(model.get_layer("se_expand"))(gate)
    x = layers.Multiply(name="se_scale")([features, gate])
    for layer in model.layers[names.index("se_scale") + 1:]:
        x = layer(x)
    return keras.Model(model.input, x, name=model.name)


def max_abs_difference(a: keras.Model, b: keras.Model, batch: np.ndarray) -> float:
    """Largest absolute difference between two models' outputs on `batch`."""
    return float(np.max(np.abs(a.predict(batch, verbose=0) - b.predict(batch, verbose=0))))
