"""The paper's attention MobileNetV2 classifier and its ablation variants.

`build_model("enhanced")` is the paper's model: MobileNetV2 (no top) -> squeeze-and-excitation gate on the
7x7x1280 features -> GAP -> Dense 256/128/64 with dropout 0.3/0.4/0.2 -> sigmoid
(3,447,937 parameters, 1,189,953 trainable with the backbone frozen).
"""
from __future__ import annotations

import keras
from keras import layers

from edge_runtime.preprocess import INPUT_SIZE
from trainer.backbone import mobilenet_v2

ENHANCED_HEAD = ((256, 0.3), (128, 0.4), (64, 0.2))
BASELINE_HEAD = ((512, 0.3), (256, 0.4), (128, 0.5))
SE_SQUEEZE = 320

# name -> (squeeze-and-excitation attention?, dense head)
VARIANTS = {
    "enhanced": (True, ENHANCED_HEAD),
    "baseline": (False, BASELINE_HEAD),
    "no_attention": (False, ENHANCED_HEAD),
    "no_enhanced_head": (True, BASELINE_HEAD),
}
# Stage 2 unfreezes the last 30 backbone layers; the tensor feeding them is what the trainer caches.
FINE_TUNE_LAYERS = 30
FEATURES_LAYER = "out_relu"


def squeeze_excitation(features, squeeze: int = SE_SQUEEZE):
    """Channel attention: GAP -> Dense(squeeze, relu) -> Dense(C, sigmoid) -> reshape -> scale features."""
    channels = features.shape[-1]
    gate = layers.GlobalAveragePooling2D(name="se_squeeze")(features)
    gate = layers.Dense(squeeze, activation="relu", name="se_reduce")(gate)
    gate = layers.Dense(channels, activation="sigmoid", name="se_expand")(gate)
    gate = layers.Reshape((1, 1, channels), name="se_reshape")(gate)
    return layers.Multiply(name="se_scale")([features, gate])


def classifier_head(features, head=ENHANCED_HEAD):
    """GAP -> (Dense relu -> Dropout) per head entry -> Dense(1, sigmoid) probability of 'ai'."""
    x = layers.GlobalAveragePooling2D(name="head_pool")(features)
    for i, (units, rate) in enumerate(head, start=1):
        x = layers.Dense(units, activation="relu", name=f"head_dense{i}")(x)
        x = layers.Dropout(rate, name=f"head_dropout{i}")(x)
    return layers.Dense(1, activation="sigmoid", name="ai_probability")(x)


def build_model(variant: str = "enhanced", weights: str | None = "imagenet",
                input_size: int = INPUT_SIZE) -> keras.Model:
    """Build a variant by name with the backbone frozen; input is [-1, 1] RGB, output P(ai).

    The graph is flat (backbone layers at the top level, names as in keras.applications), so the
    trainer can cut it at any backbone layer and the converter can find every layer by name.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    attention, head = VARIANTS[variant]
    backbone = mobilenet_v2(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
    features = backbone.get_layer(FEATURES_LAYER).output
    if attention:
        features = squeeze_excitation(features)
    model = keras.Model(backbone.input, classifier_head(features, head), name=f"animeart_{variant}")
    set_backbone_trainable(model, 0)
    return model


def backbone_layers(model: keras.Model) -> list:
    """The MobileNetV2 layers of a model built by `build_model`, input to `out_relu`, in order."""
    names = [layer.name for layer in model.layers]
    return model.layers[1:names.index(FEATURES_LAYER) + 1]


def set_backbone_trainable(model: keras.Model, count: int) -> None:
    """Make the last `count` backbone layers trainable and freeze the rest (0 = stage 1).

    BatchNorm layers stay frozen in both stages (they then run in inference mode, as Keras'
    fine-tuning guide recommends for small datasets).
    """
    layers_ = backbone_layers(model)
    for i, layer in enumerate(layers_):
        unfrozen = i >= len(layers_) - count
        layer.trainable = unfrozen and not isinstance(layer, layers.BatchNormalization)
