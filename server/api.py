"""The relay's endpoints. State (config, checker, metrics) lives in `current_app.extensions["relay"]`."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

from flask import Flask, Response, current_app, jsonify, request, send_from_directory
from flask_limiter import Limiter

from edge_runtime.adaptive import DEFAULT_MODE, MODES

from . import fetcher
from .config import DEFAULT_MODEL_NAME, Config, limit_is_off
from .detection import Checker
from .errors import ApiError
from .metrics import Metrics

URL_FETCH_THREADS = 4  # concurrent remote fetches within one batch


@dataclass
class Relay:
    """What the views need, built once per app by `create_app`: one Checker per served model, "default" first."""

    config: Config
    checkers: Dict[str, Checker]
    metrics: Metrics

    @property
    def checker(self) -> Checker:
        """The Checker of the relay's own model (requests without ?model=)."""
        return self.checkers[DEFAULT_MODEL_NAME]


def relay() -> Relay:
    return current_app.extensions["relay"]


def register(app: Flask, limiter: Limiter) -> None:
    """Add the routes to `app`, with the configured rate limits on the check endpoints."""
    config = app.extensions["relay"].config

    def limited(view, limit: str):
        return view if limit_is_off(limit) else limiter.limit(limit)(view)

    app.add_url_rule("/", "demo", demo)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/metrics", "metrics", metrics)
    app.add_url_rule("/openapi.yaml", "openapi", openapi)
    app.add_url_rule("/api/v1/model", "model", model)
    app.add_url_rule("/api/v1/check", "check", limited(check, config.rate_limit), methods=["POST"])
    app.add_url_rule("/api/v1/check-url", "check_url", limited(check_url, config.rate_limit),
                     methods=["POST"])
    app.add_url_rule("/api/v1/check-batch", "check_batch", limited(check_batch, config.batch_rate_limit),
                     methods=["POST"])
    app.add_url_rule("/api/v1/explain", "explain", limited(explain, config.explain_rate_limit), methods=["POST"])


def demo():
    """The demo page (plain HTML + JS from server/static)."""
    return send_from_directory(current_app.static_folder, "index.html")


def openapi():
    """This API's OpenAPI description."""
    return send_from_directory(Path(__file__).parent, "openapi.yaml", mimetype="application/yaml")


def healthz():
    """Liveness: the process is up and its model is loaded."""
    state = relay()
    return jsonify(status="ok", model_loaded=state.checker.pool.size > 0, model_version=state.checker.model_version,
                   models=list(state.checkers))


def model():
    """The sidecar of the model `?model=` picks: version, threshold, variant, training data, measured figures."""
    return jsonify(_checker().pool.info)


def metrics():
    """Prometheus text exposition of this process's counters."""
    state = relay()
    info = state.checker.pool.info
    text = state.metrics.render(
        gauges={
            "relay_cache_entries": (len(state.checker.cache), "Results held in the LRU cache."),
            "relay_cache_bytes": (state.checker.cache.bytes, "Bytes held in the LRU cache (about)."),
            "relay_detectors_idle": (sum(checker.pool.idle() for checker in state.checkers.values()),
                                     "Detectors not serving a request right now (all models)."),
        },
        info={"model_version": info.get("model_version", "unknown"), "variant": info.get("variant", "unknown")},
    )
    return Response(text, mimetype="text/plain", content_type="text/plain; version=0.0.4; charset=utf-8")


def check():
    """Check one image sent as the request body or as multipart field `file`."""
    checker, tta, trust_metadata = _checker(), _tta_flag(), _metadata_flag()
    return jsonify(checker.check(_uploaded_image(), tta=tta, trust_metadata=trust_metadata))


def explain():
    """Where the model sees signs of generation in one image (body or multipart `file`): a window map of
    P(ai) and the picture tinted by it. About ten checks' work: its own rate limit, one at a time per process."""
    return jsonify(_checker().explain(_uploaded_image()))


def check_url():
    """Fetch a public image URL server-side (through the SSRF guard) and check it."""
    state = relay()
    checker, tta, trust_metadata = _checker(), _tta_flag(), _metadata_flag()
    if not state.config.allow_url_fetch:
        raise ApiError(403, "url fetching is disabled on this server")
    body = _json_body()
    if not isinstance(body, dict) or "url" not in body:
        raise ApiError(400, 'expected a JSON object {"url": "..."}')
    start = time.perf_counter()
    data = _fetch(body["url"], time.monotonic() + state.config.fetch_timeout_s, state.config)
    fetch_ms = (time.perf_counter() - start) * 1000
    result = _check_fetched(checker, data, tta, wait_s=state.config.detector_wait_s, trust_metadata=trust_metadata)
    result["timings_ms"]["fetch"] = round(fetch_ms, 3)
    return jsonify(result)


def check_batch():
    """Check up to `max_batch_items` images (multipart `file` / `url` fields, or JSON {"urls": [...]}).

    Answers 200 with one entry per item, in order; a failed item carries its own error.
    """
    state = relay()
    config = state.config
    checker, tta, trust_metadata = _checker(), _tta_flag(), _metadata_flag()
    files, urls = _batch_items()
    count = len(files) + len(urls)
    if count == 0:
        raise ApiError(400, "no items: send multipart 'file' fields or JSON {\"urls\": [...]}")
    if count > config.max_batch_items:
        raise ApiError(400, f"too many items: {count} (at most {config.max_batch_items})")
    deadline = time.monotonic() + config.batch_timeout_s
    items: List[Union[bytes, ApiError]] = list(files)
    if urls:
        with ThreadPoolExecutor(max_workers=min(URL_FETCH_THREADS, len(urls))) as pool:
            budget = ByteBudget(config.max_batch_bytes)
            items += list(pool.map(lambda url: _fetch_item(url, deadline, config, budget), urls))
    results = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, ApiError):
                raise item
            wait_s = max(0.0, deadline - time.monotonic())
            if index < len(files):
                result = checker.check(item, tta=tta, wait_s=wait_s, trust_metadata=trust_metadata)
            else:
                result = _check_fetched(checker, item, tta, wait_s=wait_s, trust_metadata=trust_metadata)
            results.append({"index": index, "ok": True, **result})
        except ApiError as exc:
            state.metrics.observe_item_error(exc.code)
            results.append({"index": index, "ok": False, "error": exc.to_dict()})
    return jsonify(results=results)


def _fetch(url, deadline: float, config: Config) -> bytes:
    """The remote bytes of `url`, fetched through the SSRF guard before `deadline` (time.monotonic)."""
    timeout = min(config.fetch_timeout_s, deadline - time.monotonic())
    if timeout <= 0:
        raise ApiError(504, "timed out before the url could be fetched")
    return fetcher.fetch(url, max_bytes=config.fetch_max_bytes, timeout=timeout,
                         max_redirects=config.fetch_max_redirects, ports=config.fetch_ports)


class ByteBudget:
    """The bytes of remote files one batch may still hold; shared by its fetch threads."""

    def __init__(self, total: int):
        self.left = total
        self._lock = threading.Lock()

    def take(self, count: int) -> bool:
        """Spend `count` bytes; False (and nothing spent) when fewer are left."""
        with self._lock:
            if count > self.left:
                return False
            self.left -= count
            return True


def _fetch_item(url, deadline: float, config: Config, budget: ByteBudget) -> Union[bytes, ApiError]:
    """`_fetch` for a batch item (runs in a helper thread: no app context here)."""
    if not config.allow_url_fetch:
        return ApiError(403, "url fetching is disabled on this server")
    over_budget = ApiError(413, f"the batch's remote files exceed {config.max_batch_bytes} bytes in all")
    if budget.left <= 0:
        return over_budget
    try:
        data = _fetch(url, deadline, config)
    except ApiError as exc:
        return exc
    return data if budget.take(len(data)) else over_budget


def _check_fetched(checker: Checker, data: bytes, tta: str, wait_s: float, trust_metadata: bool) -> dict:
    if not data:
        raise ApiError(422, "the url's file is empty (0 bytes)")
    return checker.check(data, tta=tta, wait_s=wait_s, trust_metadata=trust_metadata)


def _checker() -> Checker:
    """`?model=`: the Checker of one of the relay's models (default: its own model, `--model`)."""
    checkers = relay().checkers
    name = request.args.get("model", DEFAULT_MODEL_NAME).strip().lower() or DEFAULT_MODEL_NAME
    if name not in checkers:
        raise ApiError(400, f"model must be one of {', '.join(checkers)}")
    return checkers[name]


def _tta_flag() -> str:
    """`?tta=`: adaptive (default), always or never; 1/true/yes/on mean always, 0/false/no/off never."""
    value = request.args.get("tta", DEFAULT_MODE).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return "always"
    if value in ("0", "false", "no", "off"):
        return "never"
    if value in MODES:
        return value
    raise ApiError(400, "tta must be adaptive, always or never (or 1 / 0)")


def _metadata_flag() -> bool:
    """`?metadata=0` labels by the model alone, even when the file's metadata names an AI generator."""
    value = request.args.get("metadata", "1").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ApiError(400, "metadata must be 0 or 1")


def _uploaded_image() -> bytes:
    """The image bytes of a check request: multipart field `file`, or the raw body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "multipart field 'file' is missing")
        return upload.read()
    if mimetype and not (mimetype.startswith("image/") or mimetype == "application/octet-stream"):
        raise ApiError(415, f"unsupported content type {mimetype!r}: send image bytes "
                            "(image/* or application/octet-stream) or multipart field 'file'")
    return _read_body(relay().config.max_body_bytes)


def _batch_items():
    """(file contents, urls) of a batch request."""
    if request.mimetype == "multipart/form-data":
        return [upload.read() for upload in request.files.getlist("file")], request.form.getlist("url")
    body = _json_body()
    urls = body.get("urls") if isinstance(body, dict) else None
    if not isinstance(urls, list):
        raise ApiError(400, 'expected multipart "file" fields or a JSON object {"urls": [...]}')
    return [], urls


def _json_body():
    if request.mimetype != "application/json":
        raise ApiError(415, "send JSON with Content-Type: application/json")
    raw = _read_body(relay().config.max_json_bytes)
    if not raw:
        raise ApiError(400, "empty body")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"bad JSON: {exc}") from None


def _read_body(limit: int) -> bytes:
    """The request body, refusing (413) more than `limit` bytes, with or without Content-Length."""
    declared: Optional[int] = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(413, f"request body too large (limit {limit} bytes)")
    chunks, size = [], 0
    while True:
        chunk = request.stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body too large (limit {limit} bytes)")
        chunks.append(chunk)
