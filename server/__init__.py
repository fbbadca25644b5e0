"""The relay: a small Flask service that checks images for the browser extension (see server/openapi.yaml)."""
from .app import create_app
from .config import Config

__all__ = ["Config", "create_app"]
