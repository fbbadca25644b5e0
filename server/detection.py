"""Checks for the relay: a small pool of Detectors (each used by one thread at a time) behind a result cache,
and one more Detector for explanations, which run one at a time."""
from __future__ import annotations

import base64
import hashlib
import io
import queue
import threading
import time
from contextlib import contextmanager
from typing import Callable, Optional

from edge_runtime import explain, preprocess
from edge_runtime.preprocess import ImageError

from .cache import ResultCache
from .errors import ApiError
from .metrics import Metrics


class DetectorPool:
    """Up to `size` Detectors made by `factory` as requests need them (a model nobody asks for costs no memory);
    `borrow()` lends one out exclusively (Detector is not thread-safe)."""

    def __init__(self, factory: Callable[[], object], size: int, wait_s: float):
        if size < 1:
            raise ValueError("a pool needs at least one Detector")
        self.size = size
        self.wait_s = wait_s
        self.factory = factory
        self._idle: queue.Queue = queue.Queue()
        self._made = 0
        self._making = threading.Lock()
        self._info: Optional[dict] = None

    @property
    def info(self) -> dict:
        """The model's `Detector.info()`; asking for it makes the pool's first Detector."""
        with self._making:
            if self._info is None:
                self._idle.put(self._make())
        return self._info

    def _make(self):
        detector = self.factory()
        self._made += 1
        if self._info is None:
            self._info = detector.info()
        return detector

    @contextmanager
    def borrow(self, wait_s: Optional[float] = None):
        """A Detector for this thread alone; 503 if none is free within `wait_s` (default: the pool's)."""
        detector = None
        with self._making:
            if self._idle.empty() and self._made < self.size:
                detector = self._make()
        if detector is None:
            try:
                detector = self._idle.get(timeout=self.wait_s if wait_s is None else wait_s)
            except queue.Empty:
                raise ApiError(503, "server busy, try again", {"Retry-After": "1"}) from None
        try:
            yield detector
        finally:
            self._idle.put(detector)

    def idle(self) -> int:
        """Detectors free for a request: those waiting, and those not made yet."""
        return self._idle.qsize() + self.size - self._made


class Checker:
    """Answers "is this image AI-made?" for raw bytes with one model, from the cache when it can.

    Several Checkers (one per served model) may share one cache: entries are keyed by the model file's sha256
    (`Detector.info()["model_sha256"]`), so no model ever answers with another's result.

    Explanations (about ten checks' work, and an interpreter of explain.BATCH inputs) run one at a time (per
    `explain_slot`, which the relay's Checkers share), on a Detector of their own made on first use, so that
    memory is held once, not by every Detector of the pool.
    Each also takes one place in the pool while it runs: decodes and CPU stay within what the pool allows.
    """

    def __init__(self, pool: DetectorPool, cache: ResultCache, metrics: Metrics, explain_wait_s: float = 10.0,
                 explain_slot: Optional[threading.Lock] = None):
        self.pool = pool
        self.cache = cache
        self.metrics = metrics
        self.explain_wait_s = explain_wait_s
        self._explain_slot = explain_slot or threading.Lock()
        self._explainer = None

    @property
    def model_version(self) -> str:
        return str(self.pool.info.get("model_version", "unknown"))

    @property
    def model_id(self) -> str:
        """The model file's sha256: what cache entries are keyed on."""
        return str(self.pool.info.get("model_sha256", self.model_version))

    def check(self, data: bytes, tta: str = "adaptive", wait_s: Optional[float] = None,
              trust_metadata: bool = True) -> dict:
        """The result dict for the image `data`: label, probability, ..., evidence, reason, sha256, cached,
        timings_ms. `trust_metadata=False` turns off the rule that metadata naming a generator means "ai".

        Raises ApiError 400 for an empty body, 422 for bytes that are not a usable image, and 503 when no
        Detector is free within `wait_s` seconds.
        """
        if not data:
            raise ApiError(400, "empty image (0 bytes)")
        start = time.perf_counter()
        sha256 = hashlib.sha256(data).hexdigest()
        key = (sha256, self.model_id, tta, trust_metadata)
        result = self.cache.get(key)
        self.metrics.observe_cache(hit=result is not None)
        if result is not None:
            elapsed_ms = (time.perf_counter() - start) * 1000
            return {**result, "sha256": sha256, "cached": True,
                    "timings_ms": {"decode": 0.0, "infer": 0.0, "total": round(elapsed_ms, 3)}}
        with self.pool.borrow(wait_s) as detector:
            try:
                result = detector.check(data, tta=tta, trust_metadata=trust_metadata).to_dict()
            except ImageError as exc:
                raise ApiError(422, exc.reason) from None
        self.cache.put(key, {name: value for name, value in result.items() if name != "timings_ms"})
        return {**result, "sha256": sha256, "cached": False}

    def explain(self, data: bytes, wait_s: Optional[float] = None) -> dict:
        """The explanation map of the image `data` (edge_runtime.explain) plus `overlay`, the picture tinted
        where the model sees AI as a JPEG data URL; cached like checks. Same errors as `check`."""
        if not data:
            raise ApiError(400, "empty image (0 bytes)")
        sha256 = hashlib.sha256(data).hexdigest()
        key = (sha256, self.model_id, "explain")
        answer = self.cache.get(key)
        self.metrics.observe_cache(hit=answer is not None)
        if answer is not None:
            return {**answer, "sha256": sha256, "cached": True}
        if not self._explain_slot.acquire(timeout=self.explain_wait_s if wait_s is None else wait_s):
            raise ApiError(429, "another explanation is running, try again", {"Retry-After": "2"})
        try:
            with self.pool.borrow(wait_s):
                if self._explainer is None:
                    self._explainer = self.pool.factory()
                start = time.perf_counter()
                try:
                    picture = preprocess.load_image(data)  # decoded once, under the check's limits
                    explanation = explain.window_map(self._explainer, picture)
                except ImageError as exc:
                    raise ApiError(422, exc.reason) from None
                explanation.cost_ms = round((time.perf_counter() - start) * 1e3, 3)
                image = io.BytesIO()
                explain.overlay(picture, explanation).save(image, "JPEG", quality=90)
        finally:
            self._explain_slot.release()
        answer = {**explanation.to_dict(), "grid_size": len(explanation.grid),
                  "overlay": "data:image/jpeg;base64," + base64.b64encode(image.getvalue()).decode("ascii")}
        self.cache.put(key, answer)
        return {**answer, "sha256": sha256, "cached": False}
