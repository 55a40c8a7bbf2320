"""Domain errors. The HTTP edge maps each to one status code and the CLI edge
prints its message as one line; nothing else needs to know about them."""

from __future__ import annotations

from typing import Any


class AssayError(Exception):
    """Base class of every error assay raises on purpose."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(AssayError):
    """The caller sent something we cannot use; the message says what to fix."""

    code = "bad_request"
    status = 400


class Unauthorized(AssayError):
    code = "unauthorized"
    status = 401


class Forbidden(AssayError):
    code = "forbidden"
    status = 403


class Paused(Forbidden):
    """The annotator is paused in a project (gold accuracy below its bar)."""

    code = "paused"


class ExamFailed(Forbidden):
    """The annotator failed the project's qualification exam with no attempt left."""

    code = "exam_failed"


class NotFound(AssayError):
    code = "not_found"
    status = 404


class Conflict(AssayError):
    code = "conflict"
    status = 409


class TooLarge(AssayError):
    code = "too_large"
    status = 413


class TooManyRequests(AssayError):
    """Too many failed attempts; ``details["retry_after"]`` says how many
    seconds to wait (the HTTP edge sends it as ``Retry-After``)."""

    code = "too_many_requests"
    status = 429


class Unsupported(AssayError):
    code = "unsupported"
    status = 415


class Unavailable(AssayError):
    """A service assay depends on (the database server) cannot be reached."""

    code = "unavailable"
    status = 503
