"""The relay's settings: defaults that are safe on a laptop, overridable from ANIMEART_RELAY_* variables."""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Tuple

from limits import parse_many

ENV_PREFIX = "ANIMEART_RELAY_"
MB = 1024 * 1024
MIN_TOKEN_LENGTH = 16
DEFAULT_MODEL_NAME = "default"  # ?model=default (or no ?model) asks for the relay's own model, `Config.model`


@dataclasses.dataclass(frozen=True)
class Config:
    """Every knob of the relay. `Config.from_env()` reads ANIMEART_RELAY_<FIELD NAME IN CAPITALS>."""

    model: Optional[str] = None  # a .tflite path or bundled name; None -> the bundled default; requests name none
    models: Tuple[str, ...] = ("paper",)  # bundled models a request may also pick with ?model=NAME
    detectors: int = 1  # Detector instances per process; each serves one request at a time
    model_threads: int = 1  # interpreter threads per Detector
    detector_wait_s: float = 30.0  # how long a request waits for a free Detector before a 503
    max_body_bytes: int = 20 * MB  # image uploads, also chunked ones without Content-Length
    max_json_bytes: int = 64 * 1024  # JSON bodies of check-url / check-batch
    max_batch_items: int = 16
    max_batch_bytes: int = 32 * MB  # remote files one batch may hold in all (each also <= fetch_max_bytes)
    cache_entries: int = 4096  # LRU of results keyed by (image sha256, model file sha256, tta, metadata); 0: off
    cache_max_bytes: int = 64 * MB  # ... and at most this many bytes in all (an explain overlay is ~600 KiB)
    rate_limit: str = "20 per second;600 per minute"  # per client and endpoint; "off" disables
    batch_rate_limit: str = "2 per second;60 per minute"
    explain_rate_limit: str = "1 per second;20 per minute"  # per client; an explain costs ~10 checks
    explain_wait_s: float = 10.0  # one explain runs at a time per process; others wait this long, then 429
    token: Optional[str] = None  # when set, /api/* and /metrics need "Authorization: Bearer <token>"
    auth_failure_limit: str = "10 per minute"  # wrong or missing tokens per client, then 429 (brute force)
    allow_url_fetch: bool = True  # check-url and batch URLs (public addresses only)
    fetch_timeout_s: float = 10.0  # total time for one remote fetch, redirects included
    fetch_max_bytes: int = 20 * MB
    fetch_max_redirects: int = 3
    fetch_ports: Tuple[int, ...] = (80, 443)  # the only ports check-url connects to
    batch_timeout_s: float = 20.0  # total time for all remote fetches of one batch
    cors_origins: Tuple[str, ...] = ()  # exact origins allowed besides extensions and the demo page
    cors_extension_ids: Tuple[str, ...] = ()  # when set, only these extension IDs (else any extension)
    trusted_hosts: Tuple[str, ...] = ("localhost", "127.0.0.1")  # Host header check (DNS rebinding); "*" = any
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-For names the client; 0 ignores it
    json_logs: bool = False
    max_connections: int = 100  # open connections in all (waitress); past it the one waiting longest is closed
    connections_per_client: int = 32  # open connections per client address (waitress), likewise
    header_timeout_s: float = 10.0  # a connection not being served must send its request's headers within this

    def __post_init__(self):
        for name in ("detectors", "model_threads", "max_body_bytes", "max_json_bytes", "max_batch_items",
                     "max_batch_bytes", "fetch_max_bytes", "max_connections", "connections_per_client",
                     "cache_max_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("cache_entries", "fetch_max_redirects", "trusted_proxies", "detector_wait_s", "fetch_timeout_s", "batch_timeout_s",
                     "header_timeout_s", "explain_wait_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in self.models:
            if name == DEFAULT_MODEL_NAME or not name.replace("-", "").isalnum():
                raise ValueError(f"models: {name!r} is not a bundled model name (the relay's own model is "
                                 f"{DEFAULT_MODEL_NAME!r})")
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"token must be at least {MIN_TOKEN_LENGTH} characters, got {len(self.token)}")
        if not all(0 < port < 65536 for port in self.fetch_ports):
            raise ValueError(f"fetch_ports must be TCP ports (1-65535), got {self.fetch_ports}")
        for name in ("rate_limit", "batch_rate_limit", "explain_rate_limit", "auth_failure_limit"):
            value = getattr(self, name)
            if not limit_is_off(value):
                try:
                    parse_many(value)
                except ValueError:
                    raise ValueError(f"{name}: {value!r} is not a rate limit like '20 per second;600 per minute'"
                                     " or 'off'") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides) -> "Config":
        """Defaults, then ANIMEART_RELAY_* variables, then `overrides` (None values are ignored)."""
        values = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field, raw)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)


def limit_is_off(limit: str) -> bool:
    """True for a rate limit setting that means "no limit" ("off" or empty)."""
    return limit.strip().lower() in ("", "off")


def _parse(field: dataclasses.Field, raw: str):
    """Convert one environment string to the field's type (bool, int, float, str, tuple of str)."""
    kind = field.type
    name = ENV_PREFIX + field.name.upper()
    if kind == "bool":
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {raw!r}")
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    if kind.startswith("Tuple"):
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        if kind == "Tuple[int, ...]":
            try:
                return tuple(int(item) for item in items)
            except ValueError:
                raise ValueError(f"{name}: expected numbers separated by commas, got {raw!r}") from None
        return items
    if kind.startswith("Optional"):
        return raw or None
    return raw
