"""The Flask app factory: wires config, detectors, cache, metrics, rate limits, CORS, auth and logging."""
from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from functools import partial
from typing import Callable, Optional

from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

from . import api, errors
from .cache import ResultCache
from .config import DEFAULT_MODEL_NAME, Config, limit_is_off
from .detection import Checker, DetectorPool
from .errors import ApiError
from .metrics import Metrics

access_log = logging.getLogger("server.access")

EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://")
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(config: Optional[Config] = None, detector_factory: Optional[Callable[[], object]] = None) -> Flask:
    """A relay app. `config` defaults to `Config.from_env()`; `detector_factory` to the edge runtime's Detector."""
    config = config or Config.from_env()
    if detector_factory is None:
        from edge_runtime import Detector

        def detector_factory():
            return Detector(model=config.model, threads=config.model_threads)

    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        TRUSTED_HOSTS=None if "*" in config.trusted_hosts else list(config.trusted_hosts),
    )
    app.json.sort_keys = False
    if config.trusted_proxies:  # opt-in: behind N proxies, the client is X-Forwarded-For's Nth address from the end
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies)
    metrics = Metrics()
    cache = ResultCache(config.cache_entries, config.cache_max_bytes)
    explain_slot = threading.Lock()  # one explanation at a time per process, whichever model it asks for
    checkers = {DEFAULT_MODEL_NAME: Checker(DetectorPool(detector_factory, config.detectors, config.detector_wait_s),
                                            cache, metrics, config.explain_wait_s, explain_slot)}
    _ = checkers[DEFAULT_MODEL_NAME].pool.info  # makes its first Detector: a relay that cannot load its model fails at start
    for name in config.models:  # the bundled models a request may pick with ?model=NAME, loaded on first use
        check_bundled(name)
        checkers[name] = Checker(DetectorPool(partial(bundled_detector, name, config), config.detectors,
                                              config.detector_wait_s), cache, metrics, config.explain_wait_s,
                                 explain_slot)
    app.extensions["relay"] = api.Relay(config, checkers, metrics)
    app.extensions["auth_failures"] = AuthFailureLimiter(config.auth_failure_limit)

    app.before_request(_start_timer)
    app.before_request(_refuse_foreign_origin)
    app.before_request(_require_token)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True,
                      enabled=not all(limit_is_off(limit) for limit in
                                      (config.rate_limit, config.batch_rate_limit, config.explain_rate_limit)))
    errors.register(app)
    api.register(app, limiter)
    app.after_request(_security_headers)
    app.after_request(_cors_headers)
    app.after_request(_observe)
    return app


def check_bundled(name: str) -> None:
    """FileNotFoundError unless `name` is a bundled model (names come from the relay's settings, never paths)."""
    from edge_runtime.bundle import bundled_models

    models = bundled_models()
    if name not in models:
        raise FileNotFoundError(f"models: {name!r} is not bundled ({', '.join(models) or 'none'})")


def bundled_detector(name: str, config: Config):
    """A Detector of the bundled model `name`."""
    from edge_runtime import Detector
    from edge_runtime.bundle import bundled_models

    check_bundled(name)
    return Detector(model=bundled_models()[name], threads=config.model_threads)


def _start_timer():
    g.start = time.perf_counter()


def origin_allowed(origin: str) -> bool:
    """Browser extensions (the configured IDs, if any), configured extra origins, and the demo page: the
    origin of this request's own URL, when its host is one of the configured trusted names. Never the Host
    header alone: with a DNS-rebinding name it matches the attacker's page."""
    config = api.relay().config
    if origin.startswith(EXTENSION_SCHEMES):
        return not config.cors_extension_ids or origin.split("://", 1)[1] in config.cors_extension_ids
    if origin in config.cors_origins:
        return True
    names = [name for name in config.trusted_hosts if name != "*"]
    return bool(names) and origin == request.host_url.rstrip("/") and host_is_trusted(urlsplit(origin).netloc, names)


def _refuse_foreign_origin():
    """Refuse requests that a browser sends on behalf of any other web page (CSRF, drive-by scans)."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin):
        raise ApiError(403, "origin not allowed")


class AuthFailureLimiter:
    """Counts wrong or missing tokens per client; past the limit, the client's wrong tokens get 429."""

    def __init__(self, limit: str):
        self.items = [] if limit_is_off(limit) else parse_many(limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def blocked(self, client: str) -> bool:
        return not all(self.limiter.test(item, client) for item in self.items)

    def fail(self, client: str) -> None:
        for item in self.items:
            self.limiter.hit(item, client)


def _require_token():
    """With a configured token, every /api/ request (except CORS preflights) and /metrics must carry it.

    The right token always passes: one address can be many clients (behind a proxy, or NAT), and one of them
    sending wrong tokens must not lock the others out. Past `auth_failure_limit`, the address's wrong tokens
    get 429 instead of 401; what stops guessing is the token's length (16+ characters, random).
    """
    token = api.relay().config.token
    protected = request.path.startswith("/api/") or request.path == "/metrics"
    if not token or not protected or request.method == "OPTIONS":
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    failures: AuthFailureLimiter = current_app.extensions["auth_failures"]
    client = get_remote_address()
    if failures.blocked(client):
        raise ApiError(429, "too many wrong tokens, try again later", {"Retry-After": "60"})
    failures.fail(client)
    raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="relay"'})


def _security_headers(response):
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _cors_headers(response):
    origin = request.headers.get("Origin")
    if origin is None or not origin_allowed(origin):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining"
    response.vary.add("Origin")
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _observe(response):
    """Count the request in the metrics and write its one access-log line."""
    state = api.relay()
    seconds = time.perf_counter() - g.get("start", time.perf_counter())
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    state.metrics.observe_request(endpoint, response.status_code, seconds)
    fields = {
        "client": request.remote_addr,
        "method": request.method,
        "path": request.full_path.rstrip("?"),
        "status": response.status_code,
        "ms": round(seconds * 1000, 1),
        # Static files stream from disk (no body to measure) but declare their Content-Length.
        "bytes": response.content_length if response.content_length is not None
        else response.calculate_content_length(),
    }
    if state.config.json_logs:
        access_log.info(json.dumps(fields))
    else:
        path = json.dumps(fields["path"])[1:-1]  # control characters escaped: one request, one line
        size = "-" if fields["bytes"] is None else f"{fields['bytes']}B"  # "-": length unknown (streamed)
        access_log.info('%s "%s %s" %s %.1fms %s', fields["client"], fields["method"], path,
                        fields["status"], fields["ms"], size)
    return response
