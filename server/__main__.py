"""`python -m server [--host H] [--port P] [--model M]`: start the relay with a production WSGI server.

waitress by default: it reads each request whole before a thread serves it, so clients that send slowly
cannot take every thread (slowloris), and server/connections.py closes connections that do not finish their
headers in time or that crowd out new ones (half-open connections). `--server gunicorn` (gthread workers)
hands a thread to a connection as soon as it sends anything: use it only behind a reverse proxy that buffers
requests. Settings not on the
command line come from ANIMEART_RELAY_* variables (see server/config.py), e.g. the Bearer token:
ANIMEART_RELAY_TOKEN.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys

from edge_runtime import bundle

from .app import create_app
from .config import ENV_PREFIX, Config

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
MAX_REQUESTS = 2000  # requests a gunicorn worker serves before it is replaced (staggered by up to 10%)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    parser.add_argument("--model", help='.tflite file or bundled name such as "paper": the model of requests that '
                                        'name none (default: the bundled default model)')
    parser.add_argument("--models", nargs="*", metavar="NAME",
                        help="bundled models a request may also pick with ?model=NAME (default: paper; none: "
                             "--models with no name)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (gunicorn) or Detectors (waitress); default: min(2, CPUs)")
    parser.add_argument("--threads", type=int, default=4, help="request threads per worker (default: 4)")
    parser.add_argument("--server", choices=("waitress", "gunicorn"), default="waitress",
                        help="WSGI server (default: waitress; gunicorn only behind a buffering reverse proxy)")
    parser.add_argument("--rate-limit", help='per-client limit of the check endpoints, e.g. "20 per second"; '
                                             '"off" disables')
    parser.add_argument("--no-url-fetch", action="store_true", help="refuse check-url and batch URLs")
    parser.add_argument("--json-logs", action="store_true", help="access log lines as JSON")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    return args


def build_config(args: argparse.Namespace, environ=os.environ) -> Config:
    """Config from the environment and the command line; the Host check follows the bind address, and each
    Detector's interpreter threads are the CPUs divided among the --workers."""
    overrides = {"model": args.model, "rate_limit": args.rate_limit,
                 "models": None if args.models is None else tuple(args.models)}
    if args.no_url_fetch:
        overrides["allow_url_fetch"] = False
    if args.json_logs:
        overrides["json_logs"] = True
    if ENV_PREFIX + "MODEL_THREADS" not in environ:
        # Interpreters sized to the cores: --workers processes (or Detectors) share out the CPUs.
        overrides["model_threads"] = max(1, (os.cpu_count() or 1) // args.workers)
    config = Config.from_env(environ, **overrides)
    if args.host not in LOOPBACK_NAMES:
        # Reachable from other machines: only under names the deployer lists (DNS rebinding) and with a token.
        named = ENV_PREFIX + "TRUSTED_HOSTS" in environ and "*" not in config.trusted_hosts
        if not (named and config.token):
            raise ValueError(f"--host {args.host} is not loopback: set {ENV_PREFIX}TRUSTED_HOSTS to the host names "
                             f"clients use (no '*') and {ENV_PREFIX}TOKEN, or bind to 127.0.0.1 behind a reverse "
                             "proxy")
    return config


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = build_config(args)
        for model in (config.model, *config.models):  # a missing model fails here, not in each worker
            bundle.read_sidecar(bundle.resolve_model(model))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO,
                        format="%(message)s" if config.json_logs else "%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.server == "gunicorn":
        if not _gunicorn_available():
            print("error: gunicorn is not installed (or this is Windows); use --server waitress", file=sys.stderr)
            return 2
        _serve_gunicorn(config, args)
    else:
        _serve_waitress(config, args)
    return 0


def _gunicorn_available() -> bool:
    if sys.platform == "win32":
        return False
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return False
    return True


def gunicorn_settings(args: argparse.Namespace) -> dict:
    """gunicorn's settings for the command line `args`."""
    host = f"[{args.host}]" if ":" in args.host else args.host
    return {
        "bind": f"{host}:{args.port}", "workers": args.workers, "threads": args.threads,
        "worker_class": "gthread", "timeout": 60, "graceful_timeout": 10, "keepalive": 5,
        # A fresh worker now and then returns what decoding large images left in the heap to the OS.
        "max_requests": MAX_REQUESTS, "max_requests_jitter": MAX_REQUESTS // 10,
        "accesslog": None,  # the app logs one line per request itself
    }


def _serve_gunicorn(config: Config, args: argparse.Namespace) -> None:
    from gunicorn.app.base import BaseApplication

    class RelayApplication(BaseApplication):
        """gunicorn with its settings given here; each worker builds its own app (and Detectors)."""

        def load_config(self):
            for name, value in gunicorn_settings(args).items():
                self.cfg.set(name, value)

        def load(self):
            return create_app(config)

    RelayApplication().run()


def _serve_waitress(config: Config, args: argparse.Namespace) -> None:
    from .connections import serve

    if ENV_PREFIX + "DETECTORS" not in os.environ:
        config = dataclasses.replace(config, detectors=args.workers)  # one process: parallel Detectors instead
    app = create_app(config)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # waitress stops cleanly on SystemExit
    logging.getLogger("server").info("serving with waitress on %s:%s", args.host, args.port)
    serve(app, host=args.host, port=args.port, threads=args.threads, max_connections=config.max_connections,
          per_client=config.connections_per_client, header_timeout_s=config.header_timeout_s,
          max_request_body_size=config.max_body_bytes + 1024 * 1024, channel_timeout=60)


if __name__ == "__main__":
    sys.exit(main())
