"""`Detector`: one TFLite model, the shared preprocessing, TTA in a single invoke, and the verdict."""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from edge_runtime import bundle, preprocess
from edge_runtime.encoding import InputEncoder, dequantise, quantise
from edge_runtime.interpreter import make_interpreter, runtime_name


@dataclass
class Result:
    """The verdict on one image; `probability` is P(ai), the mean over the TTA views."""

    label: str
    probability: float
    view_probabilities: dict[str, float]
    threshold: float
    unsure_band: tuple[float, float]
    model_version: str
    variant: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = asdict(self)
        out["unsure_band"] = list(self.unsure_band)
        return out


def decide(probability: float, threshold: float, unsure_band: Sequence[float]) -> str:
    """'unsure' strictly inside the band, else 'ai' at or above the threshold, else 'human'."""
    low, high = unsure_band
    if low < probability < high:
        return "unsure"
    return "ai" if probability >= threshold else "human"


class Detector:
    """Classifies images as AI-generated or human-made with a TFLite model.

    `model` is None (the bundled default), a .tflite path, or a bundled short name such as "float16";
    its sidecar JSON gives the views (`tta_views`, the first is the primary view), the threshold and the
    unsure band unless they are passed here. All TTA views go
    through the interpreter in one invoke (batch = number of views). Not thread-safe: use one Detector
    per thread or guard it with a lock.
    """

    def __init__(self, model=None, threads: int | None = None, delegate: str | None = None, tta: bool = True,
                 views: Sequence[str] | None = None, threshold: float | None = None,
                 unsure_band: Sequence[float] | None = None):
        self.model_path = bundle.resolve_model(model)
        self.metadata = bundle.read_sidecar(self.model_path)
        self.threads = threads
        self.delegate = delegate
        self.tta = tta
        self.views = tuple(views or self.metadata.get("tta_views", preprocess.TTA_VIEWS))
        self.threshold = float(self.metadata["threshold"] if threshold is None else threshold)
        band = self.metadata.get("unsure_band", [self.threshold, self.threshold]) if unsure_band is None \
            else unsure_band
        self.unsure_band = (float(band[0]), float(band[1]))
        self.input_size = int(self.metadata.get("input_size", preprocess.INPUT_SIZE))
        self._model_content = self.model_path.read_bytes()
        self._interpreters: dict[int, object] = {}
        input_detail = self._interpreter(len(self.views) if tta else 1).get_input_details()[0]  # fails early
        self._encoders = {views: InputEncoder(views, input_detail) for views in (self.views, self.views[:1])}

    def info(self) -> dict:
        """The model's sidecar metadata plus the model file, runtime package, threads and delegate."""
        return {**self.metadata, "model_file": self.model_path.name, "runtime": runtime_name(),
                "threads": self.threads, "delegate": self.delegate}

    def check(self, source: preprocess.Source, tta: bool | None = None) -> Result:
        """Classify one image (path, bytes or binary stream); raises preprocess.ImageError for bad input."""
        views = self._views(tta)
        return self._verdict(*self._prepare(source, views), views)

    def check_many(self, sources: Iterable[preprocess.Source], tta: bool | None = None,
                   workers: int = 2) -> Iterator[Result | preprocess.ImageError]:
        """Classify many images in order, decoding ahead in `workers` threads while the model runs.

        Yields a Result per source, or the ImageError it raised (bad files do not stop the run).
        """
        views = self._views(tta)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            for source in sources:
                pending.append(pool.submit(self._prepare, source, views))
                if len(pending) > workers:
                    yield self._collect(pending.popleft(), views)
            while pending:
                yield self._collect(pending.popleft(), views)

    def _collect(self, future, views) -> Result | preprocess.ImageError:
        try:
            prepared = future.result()
        except preprocess.ImageError as exc:
            return exc
        return self._verdict(*prepared, views)

    def _views(self, tta: bool | None) -> tuple[str, ...]:
        """The views to run: all configured ones with TTA, else the first (primary) one only."""
        return self.views if (self.tta if tta is None else tta) else self.views[:1]

    def _prepare(self, source: preprocess.Source, views: tuple[str, ...]) -> tuple[np.ndarray, float]:
        """Decode one image into the model input for its views; returns (input, decode milliseconds)."""
        start = time.perf_counter()
        bases = preprocess.base_pixels(preprocess.load_image(source), views, self.input_size)
        return self._encoders[views].encode(bases), (time.perf_counter() - start) * 1e3

    def _verdict(self, model_input: np.ndarray, decode_ms: float, views: Sequence[str]) -> Result:
        start = time.perf_counter()
        probabilities = self._invoke(model_input)
        infer_ms = (time.perf_counter() - start) * 1e3
        probability = float(np.mean(probabilities))
        return Result(
            label=decide(probability, self.threshold, self.unsure_band),
            probability=probability,
            view_probabilities={name: float(p) for name, p in zip(views, probabilities)},
            threshold=self.threshold,
            unsure_band=self.unsure_band,
            model_version=str(self.metadata.get("model_version", "unknown")),
            variant=str(self.metadata.get("variant", "unknown")),
            timings_ms={"decode": round(decode_ms, 3), "infer": round(infer_ms, 3),
                        "total": round(decode_ms + infer_ms, 3)},
        )

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """P(ai) for a float32 batch (N, size, size, 3) in [-1, 1], in one invoke."""
        return self._invoke(quantise(batch, self._interpreter(len(batch)).get_input_details()[0]))

    def _invoke(self, model_input: np.ndarray) -> np.ndarray:
        """P(ai) per entry of an input already in the model's dtype, in one invoke."""
        interpreter = self._interpreter(len(model_input))
        output_detail = interpreter.get_output_details()[0]
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], model_input)
        interpreter.invoke()
        return dequantise(interpreter.get_tensor(output_detail["index"]), output_detail).reshape(-1)

    def _interpreter(self, batch_size: int):
        """The interpreter allocated for `batch_size` inputs (made once per batch size, then reused)."""
        if batch_size not in self._interpreters:
            interpreter = make_interpreter(self._model_content, self.threads, self.delegate)
            input_detail = interpreter.get_input_details()[0]
            if input_detail["shape"][0] != batch_size:
                interpreter.resize_tensor_input(input_detail["index"], [batch_size, *input_detail["shape"][1:]])
            interpreter.allocate_tensors()
            self._interpreters[batch_size] = interpreter
        return self._interpreters[batch_size]

