"""`Detector`: one TFLite model, the shared preprocessing, adaptive TTA, a pipelined scan, and the verdict."""
from __future__ import annotations

import hashlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from edge_runtime import adaptive, bundle, explain, preprocess, provenance
from edge_runtime.encoding import InputEncoder, dequantise, quantise
from edge_runtime.interpreter import make_interpreter, runtime_name

DEFAULT_WORKERS = 2  # decode threads of a scan: Pillow releases the GIL while decoding and resizing
DEFAULT_BATCH = 4  # images whose primary views share one invoke in a scan


@dataclass
class Result:
    """The verdict on one image; `probability` is P(ai), the mean over the TTA views.

    `evidence` lists what the file's metadata says about its origin (`provenance.inspect`); `reason` is
    "model", or "metadata" when that metadata names an AI generator and so decided the label "ai".
    """

    label: str
    probability: float
    view_probabilities: dict[str, float]
    threshold: float
    unsure_band: tuple[float, float]
    model_version: str
    variant: str
    tta: str  # the TTA mode asked for: adaptive, always or never
    views_run: list[str]  # the views that ran: the primary alone, or all when TTA ran or escalated
    timings_ms: dict[str, float] = field(default_factory=dict)
    evidence: list[dict] = field(default_factory=list)
    reason: str = "model"

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = asdict(self)
        out["unsure_band"] = list(self.unsure_band)
        return out


@dataclass
class Prepared:
    """One decoded image: uint8 pixels per view geometry, decode milliseconds, metadata evidence."""

    bases: dict[str, np.ndarray]
    decode_ms: float
    evidence: list[dict]


def lookahead(workers: int, batch_size: int) -> int:
    """How many sources `Detector.check_many` reads ahead of the last outcome it yielded: two batches
    (the one being classified and the next, decoding meanwhile) plus one image per decode worker."""
    return 2 * batch_size + workers


def decide(probability: float, threshold: float, unsure_band: Sequence[float]) -> str:
    """'unsure' strictly inside the band, else 'ai' at or above the threshold, else 'human'."""
    low, high = unsure_band
    if low < probability < high:
        return "unsure"
    return "ai" if probability >= threshold else "human"


class Detector:
    """Classifies images as AI-generated or human-made with a TFLite model.

    `model` is None (the bundled default), a .tflite path, or a bundled short name such as "paper" (the paper's
    attention model) or "float16" (see `bundle.bundled_models`);
    its sidecar JSON gives the views (`tta_views`, the first is the primary view), the threshold and the
    unsure band unless they are passed here. `tta` (default 'adaptive') runs the primary view and, only
    when its P is strictly inside the escalation band (sidecar `escalation_band`, else
    `adaptive.default_band`), the remaining views in one more invoke; 'always' runs all views in one
    invoke, 'never' the primary view alone (True / False mean always / never). With `trust_metadata`
    (default), a file whose metadata names an AI generator is labelled "ai" (reason "metadata"; the model's
    P is still given).
    Not thread-safe: use one Detector per thread or guard it with a lock.
    """

    def __init__(self, model=None, threads: int | None = None, delegate: str | None = None,
                 tta: str | bool = adaptive.DEFAULT_MODE, views: Sequence[str] | None = None,
                 threshold: float | None = None, unsure_band: Sequence[float] | None = None,
                 trust_metadata: bool = True, escalation_band: Sequence[float] | None = None):
        self.model_path = bundle.resolve_model(model)
        self.metadata = bundle.read_sidecar(self.model_path)
        self.threads = threads
        self.delegate = delegate
        self.tta = adaptive.tta_mode(tta)
        self.trust_metadata = trust_metadata
        self.views = tuple(views or self.metadata.get("tta_views", preprocess.TTA_VIEWS))
        self.threshold = float(self.metadata["threshold"] if threshold is None else threshold)
        band = self.metadata.get("unsure_band", [self.threshold, self.threshold]) if unsure_band is None \
            else unsure_band
        self.unsure_band = (float(band[0]), float(band[1]))
        band = escalation_band or self.metadata.get("escalation_band") or \
            adaptive.default_band(self.threshold, self.unsure_band)
        self.escalation_band = (float(band[0]), float(band[1]))
        self.input_size = int(self.metadata.get("input_size", preprocess.INPUT_SIZE))
        self._model_content = self.model_path.read_bytes()
        self.model_sha256 = hashlib.sha256(self._model_content).hexdigest()
        self._interpreters: dict[int, object] = {}
        input_detail = self._interpreter(1).get_input_details()[0]  # a bad model or delegate fails here
        self._encoders = {views: InputEncoder(views, input_detail)
                          for views in (self.views, self.views[:1], self.views[1:]) if views}

    def info(self) -> dict:
        """The model's sidecar metadata plus the model file and its sha256, runtime, threads, delegate and TTA
        settings."""
        return {**self.metadata, "model_file": self.model_path.name,
                "model_sha256": self.model_sha256, "runtime": runtime_name(),
                "threads": self.threads, "delegate": self.delegate, "tta": self.tta,
                "escalation_band": list(self.escalation_band)}

    def check(self, source: preprocess.Source, tta: str | bool | None = None,
              trust_metadata: bool | None = None) -> Result:
        """Classify one image (path, bytes or binary stream); raises preprocess.ImageError for bad input.

        `tta`: 'adaptive' (the primary view, all views only when its P is inside the escalation band),
        'always', 'never', or True / False for always / never; None uses the Detector's setting.
        """
        result = self._classify([self._prepare(source)], self._mode(tta))[0]
        return self._metadata_rule(result, trust_metadata)

    def prepare(self, source: preprocess.Source) -> Prepared:
        """Decode one image for `classify`: the first half of `check`, for pipelines that decode in other
        threads or processes (thread-safe; picklable result). Raises preprocess.ImageError for bad input."""
        return self._prepare(source)

    def classify(self, images: Sequence[Prepared], tta: str | bool | None = None,
                 batch_size: int = DEFAULT_BATCH) -> list[Result]:
        """The verdicts on decoded images, as `check_many` gives them: the primary views of `batch_size`
        images per invoke, then the metadata rule."""
        mode = self._mode(tta)
        return [self._metadata_rule(result, None)
                for start in range(0, len(images), batch_size)
                for result in self._classify(list(images[start:start + batch_size]), mode, pad_to=batch_size)]

    def explain(self, source: preprocess.Source, grid: int = explain.GRID) -> explain.Explanation:
        """Where the model sees signs of generation: P(ai) of local windows (see edge_runtime.explain)."""
        return explain.window_map(self, source, grid)

    def check_many(self, sources: Iterable[preprocess.Source], tta: str | bool | None = None,
                   workers: int = DEFAULT_WORKERS, batch_size: int = DEFAULT_BATCH
                   ) -> Iterator[Result | preprocess.ImageError]:
        """Classify many images, streaming the outcomes in input order.

        `workers` threads decode and resize ahead while the model runs on the images before them, the
        primary views of `batch_size` images go through one invoke, and at most `lookahead(workers,
        batch_size)` sources are read ahead of the last outcome yielded (memory stays bounded).
        Yields a Result per source, or the ImageError it raised (bad files do not stop the run).
        """
        mode = self._mode(tta)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            for source in sources:
                pending.append(pool.submit(self._prepare, source))
                if len(pending) >= lookahead(workers, batch_size):
                    yield from self._finish(pending, batch_size, mode)
            while pending:
                yield from self._finish(pending, batch_size, mode)

    def _finish(self, pending: deque, batch_size: int, mode: str) -> Iterator[Result | preprocess.ImageError]:
        """Classify the oldest `batch_size` pending images together; yield their outcomes in order."""
        outcomes = []
        for _ in range(min(batch_size, len(pending))):
            try:
                outcomes.append(pending.popleft().result())
            except preprocess.ImageError as exc:
                outcomes.append(exc)
        results = iter(self._classify([o for o in outcomes if isinstance(o, Prepared)], mode, pad_to=batch_size))
        for outcome in outcomes:
            yield outcome if isinstance(outcome, preprocess.ImageError) else self._metadata_rule(next(results), None)

    def _metadata_rule(self, result: Result, trust_metadata: bool | None) -> Result:
        """Label "ai" (reason "metadata") when the evidence names a generator and the rule is on."""
        if (self.trust_metadata if trust_metadata is None else trust_metadata) and \
                provenance.names_generator(result.evidence):
            result.label, result.reason = "ai", "metadata"
        return result

    def _mode(self, tta: str | bool | None) -> str:
        """The TTA mode of one call: `tta`, or the Detector's when None."""
        return self.tta if tta is None else adaptive.tta_mode(tta)

    def _prepare(self, source: preprocess.Source) -> Prepared:
        """Decode one image into the base pixels of every geometry its views use (thread-safe)."""
        start = time.perf_counter()
        evidence = provenance.inspect(source)
        bases = preprocess.base_pixels(preprocess.load_image(source), self.views, self.input_size)
        return Prepared(bases, (time.perf_counter() - start) * 1e3, evidence)

    def _classify(self, images: list[Prepared], mode: str, pad_to: int = 1) -> list[Result]:
        """Results for decoded images: primary views batched in one invoke (padded to `pad_to` when there are
        several), then per image the remaining views in one invoke where `mode` asks for them."""
        if not images:
            return []
        if mode == "always":
            encoder = self._encoders[self.views]
            return [self._result(image, mode, self.views, *self._timed(encoder.encode(image.bases)))
                    for image in images]
        primary_input = np.concatenate([self._encoders[self.views[:1]].encode(image.bases) for image in images])
        if 1 < len(images) < pad_to:
            primary_input = np.concatenate([primary_input, np.zeros_like(primary_input[:pad_to - len(images)])])
        primaries, primary_ms = self._timed(primary_input)
        results = []
        for image, primary in zip(images, primaries):
            views, probabilities, infer_ms = self.views[:1], primary[None], primary_ms / len(images)
            if mode == "adaptive" and len(self.views) > 1 and adaptive.escalates(primary, self.escalation_band):
                rest, rest_ms = self._timed(self._encoders[self.views[1:]].encode(image.bases))
                views, probabilities, infer_ms = self.views, np.concatenate([probabilities, rest]), infer_ms + rest_ms
            results.append(self._result(image, mode, views, probabilities, infer_ms))
        return results

    def _timed(self, model_input: np.ndarray) -> tuple[np.ndarray, float]:
        """(P(ai) per entry, milliseconds) of one invoke."""
        start = time.perf_counter()
        probabilities = self._invoke(model_input)
        return probabilities, (time.perf_counter() - start) * 1e3

    def _result(self, image: Prepared, mode: str, views: Sequence[str], probabilities: np.ndarray,
                infer_ms: float) -> Result:
        probability = float(np.mean(probabilities))
        return Result(
            label=decide(probability, self.threshold, self.unsure_band),
            probability=probability,
            view_probabilities={name: float(p) for name, p in zip(views, probabilities)},
            threshold=self.threshold,
            unsure_band=self.unsure_band,
            model_version=str(self.metadata.get("model_version", "unknown")),
            variant=str(self.metadata.get("variant", "unknown")),
            tta=mode,
            views_run=list(views),
            timings_ms={"decode": round(image.decode_ms, 3), "infer": round(infer_ms, 3),
                        "total": round(image.decode_ms + infer_ms, 3)},
            evidence=image.evidence,
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

