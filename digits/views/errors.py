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


# HTML forms that DIGITS' clients post with no Accept preference (its tests, curl) and expect a redirect from:
# 302 to the new job's page (DIGITS' scripts read the job id from Location), or to where sign-in leads.
FORM_ENDPOINTS = frozenset(
    {
        "datasets.create",
        "models.create",
        "pretrained.create",
        "auth.login",
        "auth.logout",
        "inference.classify_one",
        "inference.classify_many",
        "inference.top_n",
    }
)


def names_html() -> bool:
    """Whether the client's Accept header names text/html itself (a browser), not only through */*."""
    return any(value == "text/html" and q > 0 for value, q in request.accept_mimetypes)


def wants_json() -> bool:
    """JSON for /json and /status routes, for clients that prefer it, and for scripted (non-browser) changes.

    A POST to one of DIGITS' HTML forms (FORM_ENDPOINTS) is answered as a form unless the client asks for JSON
    (Accept: application/json, or the form's /json twin): a redirect when it worked, the form page otherwise.
    """
    if request.path.endswith(("/json", ".json", "/status")):
        return True
    accept = request.accept_mimetypes
    if accept.quality("application/json") > accept.quality("text/html"):
        return True
    if request.method == "POST" and request.endpoint in FORM_ENDPOINTS:
        return False
    return request.method not in ("GET", "HEAD") and not names_html()


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
