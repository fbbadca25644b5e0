"""Which TFLite ops a GPU delegate runs: an op allowlist and a rank limit, checked on the analyzer's dump.

The allowlist is the set of builtin ops that TensorFlow Lite's GPU compatibility check
(tensorflow/lite/tools/versioning/gpu_compatibility.cc) accepts; anything else (SHAPE, WHERE, UNIQUE,
BROADCAST_TO, ...) falls back to the CPU. GPU tensors are at most 4-D (BHWC).
"""
from __future__ import annotations

import re

GPU_OPS = frozenset("""
ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS CUMSUM DENSIFY
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP FLOOR
FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL
LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD
PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT
SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE TRANSPOSE_CONV
""".split())
MAX_RANK = 4

_OP_LINE = re.compile(r"Op#(\d+) (\w+)\(")
_TENSOR_LINE = re.compile(r"T#(\d+)\(.*\) shape(?:_signature)?:\[([^\]]*)\]")


def ops(report: str) -> list[str]:
    """Op names in the analyzer's dump, in graph order."""
    return [name for _, name in _OP_LINE.findall(report)]


def problems(report: str) -> list[str]:
    """One line per op without a GPU kernel and per tensor of more than 4 dimensions."""
    found = [f"op #{index} {name}: no GPU delegate kernel" for index, name in _OP_LINE.findall(report)
             if name not in GPU_OPS]
    for index, dims in _TENSOR_LINE.findall(report):
        rank = len([d for d in dims.split(",") if d.strip()])
        if rank > MAX_RANK:
            found.append(f"tensor T#{index}: {rank}-D (GPU tensors are at most {MAX_RANK}-D)")
    return found
