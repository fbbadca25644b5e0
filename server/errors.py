"""Every failure becomes a JSON answer {"error": {"code": int, "reason": str}} with the right status."""
from __future__ import annotations

import logging
from typing import Mapping, Optional

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP status `code` and a short human-readable `reason`."""

    def __init__(self, code: int, reason: str, headers: Optional[Mapping[str, str]] = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.headers = dict(headers or {})

    def to_dict(self) -> dict:
        return {"code": self.code, "reason": self.reason}


def error_response(code: int, reason: str, headers: Optional[Mapping[str, str]] = None):
    """The JSON error response for `code` and `reason`."""
    response = jsonify(error={"code": code, "reason": reason})
    response.status_code = code
    response.headers.update(headers or {})
    return response


def register(app: Flask) -> None:
    """Install handlers so that no error leaves the app as HTML or as a bare 500."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.code, exc.reason, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        reason = {413: "request body too large", 429: f"rate limit exceeded ({exc.description})"}.get(
            exc.code, exc.description or exc.name)
        response = error_response(exc.code or 500, reason)
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal error")
