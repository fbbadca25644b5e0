"""On-device AI-art detector for anime images: TFLite model + the shared preprocessing, no TensorFlow.

    from edge_runtime import Detector
    result = Detector().check("image.png")   # result.label in {"ai", "human", "unsure"}
"""
from edge_runtime.detector import Detector, Result
from edge_runtime.interpreter import RuntimeMissingError
from edge_runtime.preprocess import TTA_VIEWS, ImageError

__all__ = ["Detector", "Result", "ImageError", "RuntimeMissingError", "TTA_VIEWS"]
