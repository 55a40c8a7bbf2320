"""One error shape at the HTTP edge: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from assay.errors import AssayError

log = logging.getLogger("assay.server")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported",
          422: "validation_error"}


def error_response(status: int, code: str, message: str, details: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json")


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
        return error_response(exc.status_code, code, msg)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal", "internal server error; see the server log")


def _clean(errors: list[dict]) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
