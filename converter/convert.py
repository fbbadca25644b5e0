"""Keras model -> TFLite flatbuffers: float32, float16, dynamic-range int8 and full-integer int8."""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

from converter import gpu_ops
from edge_runtime.interpreter import make_interpreter

VARIANTS = ("float32", "float16", "dynamic", "int8")
# Full-integer model: int8 input and int8 output (scale/zero point in the tensors' quantization params).
INT8_IO_TYPE = tf.int8


class GpuIncompatibleError(RuntimeError):
    """The TFLite model has ops that a GPU delegate would leave on the CPU."""


def convert(model, variant: str, representative: Callable[[], Iterable[list]] | None = None) -> bytes:
    """Convert a Keras model to one TFLite variant; `int8` needs a representative dataset generator.

    The batch dimension stays dynamic, so the runtime can resize the input to the number of TTA views.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if representative is None:
            raise ValueError("the int8 variant needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = INT8_IO_TYPE
        converter.inference_output_type = INT8_IO_TYPE
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # Keras' export prints every captured variable; int8 I/O warns that input statistics come from
        # the representative dataset, which is the intent.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


def representative_dataset(batch: np.ndarray) -> Callable[[], Iterable[list]]:
    """Generator factory yielding the calibration images one at a time, as the converter expects."""
    def generate():
        for image in batch:
            yield [image[np.newaxis].astype(np.float32)]
    return generate


def analyzer_report(tflite_model: bytes, gpu_compatibility: bool = True) -> str:
    """TensorFlow's model analyzer report (op list, and GPU compatibility warnings when asked)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_content=tflite_model, gpu_compatibility=gpu_compatibility)
    return out.getvalue()


def check_gpu_compatible(tflite_model: bytes) -> str:
    """Raise GpuIncompatibleError listing every op a GPU delegate would leave on the CPU; returns the report.

    TensorFlow 2.21's analyzer passes anything (it calls UNIQUE, WHERE and RFFT2D GPU-compatible), so its
    warnings are combined with our own check of the op list and tensor ranks (see gpu_ops.py).
    """
    report = analyzer_report(tflite_model, gpu_compatibility=True)
    problems = [line.strip() for line in report.splitlines() if "GPU COMPATIBILITY WARNING" in line]
    problems += gpu_ops.problems(report)
    if problems:
        raise GpuIncompatibleError("TFLite model is not fully GPU-delegate compatible:\n" + "\n".join(problems))
    return report


def op_list(tflite_model: bytes) -> list[str]:
    """Sorted names of the ops used by a TFLite model (from the analyzer's `Op#N NAME(...)` lines)."""
    return sorted(set(gpu_ops.ops(analyzer_report(tflite_model, gpu_compatibility=False))))


def io_types(tflite_model: bytes) -> dict:
    """Input and output tensor types of a TFLite model, e.g. {"input_type": "int8", "output_type": "int8"}."""
    interpreter = make_interpreter(tflite_model)
    return {"input_type": interpreter.get_input_details()[0]["dtype"].__name__,
            "output_type": interpreter.get_output_details()[0]["dtype"].__name__}
