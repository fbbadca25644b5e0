"""Find a TFLite interpreter: LiteRT (`ai_edge_litert`) first, then the older `tflite_runtime`."""
from __future__ import annotations

import importlib

INSTALL_HINT = "pip install ai-edge-litert"
_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


class RuntimeMissingError(ImportError):
    """Neither LiteRT nor tflite_runtime can be imported."""


def interpreter_module():
    """The first importable interpreter module; raises RuntimeMissingError naming the package to install."""
    errors = []
    for name in _MODULES:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise RuntimeMissingError(
        "No TFLite interpreter found. Install LiteRT with `" + INSTALL_HINT + "` "
        "(or the older tflite-runtime). Tried: " + "; ".join(errors))


def make_interpreter(model_content: bytes, threads: int | None = None, delegate: str | None = None):
    """A TFLite interpreter for an in-memory model, optionally with a delegate shared library (.so)."""
    module = interpreter_module()
    delegates = None
    if delegate:
        try:
            delegates = [module.load_delegate(delegate)]
        except (ValueError, OSError) as exc:
            raise ValueError(f"cannot load TFLite delegate {delegate}: {exc}") from exc
    return module.Interpreter(model_content=model_content, num_threads=threads,
                              experimental_delegates=delegates)


def runtime_name() -> str:
    """Name of the interpreter package in use, e.g. 'ai_edge_litert'."""
    return interpreter_module().__name__.split(".")[0]
