"""Errors as a person or a script should see them: JSON {"error": {message, type}} or a readable page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from digits.errors import ApiError, FormErrors

log = logging.getLogger(__name__)


# The HTTP status of each kind of digits.errors error.
HTTP_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "inference_failed": 500,
    "service_unavailable": 503,
    "storage_unavailable": 503,
    "insufficient_storage": 507,
}


def wants_json() -> bool:
    """JSON for /json and /status routes, for clients that prefer it, and for scripted (non-browser) changes."""
    if request.path.endswith(("/json", "/status")):
        return True
    accept = request.accept_mimetypes
    if accept.quality("application/json") > accept.quality("text/html"):
        return True
    names_html = any(value == "text/html" and q > 0 for value, q in accept)
    return request.method not in ("GET", "HEAD") and not names_html


def _respond(status: int, kind: str, message: str, extra: dict | None = None):
    if wants_json():
        body = {"error": {"message": message, "type": kind}}
        body.update(extra or {})
        return jsonify(body), status
    return render_template("error.html", status=status, kind=kind, message=message, extra=extra or {}), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        extra = {"errors": e.errors} if isinstance(e, FormErrors) else None
        return _respond(HTTP_STATUS.get(e.kind, 400), e.kind, e.message, extra)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        kind = (e.name or "error").lower().replace(" ", "_")
        return _respond(e.code or 500, kind, e.description or e.name)

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _respond(500, "internal_error", "Something went wrong on the server; the details are in its log.")
