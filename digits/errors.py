"""Why a request cannot be done, as the core and the wings raise it (Flask-free). Each error has a kind;
digits.views.errors is the one place that turns a kind into an HTTP status and an answer."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """A request that cannot be done as asked; the message says why (bad input unless a subclass says)."""

    kind = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unauthorized(ApiError):
    kind = "unauthorized"


class Forbidden(ApiError):
    kind = "forbidden"


class NotFound(ApiError):
    kind = "not_found"


class Conflict(ApiError):
    kind = "conflict"


class FieldErrors(dict):
    """Messages by field name (what scripts key on), with the labels people know the fields by."""

    def __init__(self, labels: Mapping[str, str] | None = None):
        super().__init__()
        self.labels = dict(labels or {})


class FormErrors(ApiError):
    """Bad form input: {field: [messages]}; the message names each field by its label (from `labels`, or from
    the errors themselves when they are FieldErrors)."""

    def __init__(self, errors: Mapping[str, list[str]], labels: Mapping[str, str] | None = None):
        if labels is None:
            labels = errors.labels if isinstance(errors, FieldErrors) else {}
        super().__init__("; ".join(f"{labels.get(k, k)}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors
        self.labels = {k: labels.get(k, k) for k in errors}


class StorageUnavailable(ApiError):
    """The jobs folder could not take a write (read-only, an I/O error): nothing was changed."""

    kind = "storage_unavailable"


class InsufficientStorage(StorageUnavailable):
    """The disk holding the jobs folder (or the server's temporary folder) is full: nothing was changed."""

    kind = "insufficient_storage"


class Failed(ApiError):
    """The server could not do what was asked (a model that cannot run); the message says why, never a traceback."""

    kind = "inference_failed"


class ServiceUnavailable(ApiError):
    """Nothing can take the request now (no free worker, one still starting); sending it again may work."""

    kind = "service_unavailable"
