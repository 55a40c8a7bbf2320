"""One error shape at the HTTP edge: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from assay.errors import AssayError, InvalidInput

log = logging.getLogger("assay.server")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported", 429: "too_many_requests",
          422: "validation_error"}


#: An error message is cut in the middle past this many characters, so input it
#: echoes (a 10,000-character name, say) is shown truncated; strings in
#: ``details`` are cut at :data:`DETAIL_CHARS`.
MESSAGE_CHARS = 300
DETAIL_CHARS = 100


def error_response(status: int, code: str, message: str, details: dict | None = None,
                   headers: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": clip(message, MESSAGE_CHARS), "details": _clip_all(details or {})}}
    if status == 429 and details and "retry_after" in details:
        headers = {**(headers or {}), "Retry-After": str(details["retry_after"])}
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json",
                    headers=headers)


def code_of(status: int) -> str:
    return _CODES.get(status, "error")


def clip(text: str, limit: int = DETAIL_CHARS) -> str:
    """``text`` cut in the middle to about ``limit`` characters, as valid Unicode
    (lone surrogates escaped), so an echoed input can neither flood an error
    message nor break its encoding."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) > limit:
        keep = max(limit // 2 - 10, 1)
        text = f"{text[:keep]}…({len(text) - 2 * keep} characters cut)…{text[-keep:]}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _clip_all(value, depth: int = 0):
    if isinstance(value, str):
        return clip(value)
    if depth > 4:
        return clip(repr(value))
    if isinstance(value, dict):
        return {clip(str(k)): _clip_all(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_clip_all(v, depth + 1) for v in list(value)[:50]]
    return value


def input_error(exc: BaseException) -> AssayError | None:
    """The 400 for an exception that bad input caused deep down (a number too
    large for the database, text it cannot encode), else None. One place, so
    no route turns such input into a 500."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OverflowError) or getattr(exc, "sqlstate", None) == "22003":
            return InvalidInput("a number in the request is out of range: ids, counts and limits "
                                "must be integers below 2^63 (and fit the field)")
        if isinstance(exc, UnicodeError) or _is_text_data(exc):
            return InvalidInput("text in the request cannot be stored: it must be valid Unicode "
                                "without NUL characters")
        exc, seen = exc.__cause__ or getattr(exc, "orig", None), seen + 1
    return None


def _is_text_data(exc: BaseException) -> bool:
    # PostgreSQL: character not in repertoire, untranslatable character, value too
    # long; psycopg refuses NUL in text on the client (a DataError without SQLSTATE)
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in ("22021", "22P05", "22001")
    return type(exc).__name__ == "DataError" and type(exc).__module__.startswith("psycopg")


def install(app: FastAPI) -> None:
    @app.exception_handler(AssayError)
    async def _assay(_req: Request, exc: AssayError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "bad_request", "the request body is not valid JSON",
                                  {"errors": _clean(errors)})
        first = errors[0] if errors else {}
        if tuple(first.get("loc", ())) == ("body",) and first.get("type") in ("model_attributes_type", "dict_type"):
            return error_response(400, "bad_request",
                                  "the request body must be a JSON object (Content-Type: application/json)",
                                  {"errors": _clean(errors)})
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        msg = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid input")
        return error_response(422, "validation_error", msg, {"errors": _clean(errors)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        code = _CODES.get(exc.status_code, "error")
        msg = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, msg, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception):
        bad = input_error(exc)
        if bad is not None:
            return error_response(bad.status, bad.code, bad.message)
        log.exception("unhandled error")
        return error_response(500, "internal", "internal server error; see the server log")


def _clean(errors: list[dict]) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
