"""The HTTP edge: what every request and response goes through before routing.

:class:`Edge` is one ASGI middleware, outermost, that

* bounds request bodies **while they stream** (not only by
  ``Content-Length``): JSON and other small bodies to ``max_body`` bytes,
  uploads (``POST …/import``) to ``max_upload`` bytes. Past the limit the
  request gets a 413 and the connection is closed, so nothing more is read;
* authenticates uploads **before** reading their body: an anonymous or
  non-admin upload gets its 401/403 without a byte of it being spooled;
* refuses JSON text the database cannot store, in one place for every route:
  lone surrogates (``"\\ud800"``) and NUL (``"\\u0000"``), with a 400;
* answers input the storage layer cannot represent (ids ≥ 2^63, a number
  too large for its column) with a 400 instead of a 500, wherever it surfaces;
* adds the security headers: on HTML pages a strict CSP without inline
  script or style, ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``,
  ``nosniff``, ``Referrer-Policy: no-referrer`` and
  ``Cross-Origin-Opener-Policy``; on every other response ``nosniff`` and
  ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``.
"""

from __future__ import annotations

import re

from fastapi import HTTPException

from assay.errors import AssayError, Forbidden
from assay.server import errors

#: The pages' policy: scripts, styles, fonts and fetches from this origin only;
#: images also as ``data:`` (the favicon) and ``blob:`` (item images fetched with
#: the token). No inline script, no inline style attribute, no framing.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
#: Everything that is not a page (JSON, files, item content) may load nothing
#: and be framed nowhere.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_PAGE_HEADERS = [_NOSNIFF, (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
                 (b"cross-origin-opener-policy", b"same-origin"), (b"content-security-policy", PAGE_CSP.encode())]
# Two headers, not five, on the API: each costs the hot path (uvicorn checks
# and copies every header); framing, referrers and openers concern pages.
_OTHER_HEADERS = [_NOSNIFF, (b"content-security-policy", OTHER_CSP.encode())]

#: The annotator's hot paths (POST): see :meth:`Edge._hot`.
_HOT_ENDINGS = ("/tasks/next", "/answers")
#: Routes that take an upload (multipart): admin only, authenticated before the body is read.
_UPLOAD = re.compile(r"/api/datasets/[^/]+/import/?")
_ESCAPE = re.compile(rb"(\\+)u([0-9a-fA-F]{4})")


class Rejected(HTTPException):
    """Raised from ``receive`` when a body breaks a rule. An ``HTTPException`` so
    that FastAPI's body parsing re-raises it instead of turning it into a 400."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(status, message, headers={"Connection": "close"} if close else None)


def json_text_problem(raw: bytes) -> str | None:
    """Why the JSON text ``raw`` cannot be stored, or None: a ``\\u`` escape
    of a lone UTF-16 surrogate or of NUL (neither can be stored as UTF-8 text)."""
    if b"\\u" not in raw:
        return None
    high_end = -1  # where an escaped high surrogate ended, waiting for its low half
    for m in _ESCAPE.finditer(raw):
        escaped = len(m.group(1)) % 2 == 1  # "\\\\u" is a backslash, then a plain "u"
        cp = int(m.group(2), 16) if escaped else -1
        if high_end >= 0:
            if 0xDC00 <= cp <= 0xDFFF and m.start() == high_end and len(m.group(1)) == 1:
                high_end = -1
                continue
            break
        if not escaped:
            continue
        if cp == 0:
            return "text must not contain NUL characters (\\u0000)"
        if 0xD800 <= cp <= 0xDBFF:
            high_end = m.end()
        elif 0xDC00 <= cp <= 0xDFFF:
            break
    else:
        if high_end < 0:
            return None
    return "text must be valid Unicode: it contains a lone UTF-16 surrogate (\\ud800-\\udfff)"


class Edge:
    """ASGI middleware; see the module's docstring. ``max_body`` and
    ``max_upload`` are in bytes."""

    def __init__(self, app, *, max_body: int, max_upload: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "POST" and scope["path"].endswith(_HOT_ENDINGS):
            return await self._hot(scope, receive, send)
        started = False

        async def send_with_headers(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.setdefault("headers", [])
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                message["headers"] = [*headers, *(_PAGE_HEADERS if html else _OTHER_HEADERS)]
            await send(message)

        try:
            if scope["method"] in ("GET", "HEAD", "OPTIONS"):
                # bodies are not read there; still bounded if someone reads one
                return await self.app(scope, self._limited(scope, receive, self.max_body, upload=False, check_text=False),
                                      send_with_headers)
            upload = scope["method"] == "POST" and _UPLOAD.fullmatch(_route_path(scope)) is not None
            if upload:
                self._authorize_upload(scope)
            limit = self.max_upload if upload else self.max_body
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise Rejected(413, _too_large(declared.decode(), limit, upload), close=True)
            await self.app(scope, self._limited(scope, receive, limit, upload=upload, check_text=not upload),
                           send_with_headers)
        except HTTPException as exc:  # Rejected, raised where no FastAPI handler saw it
            if started:
                raise
            code = errors.code_of(exc.status_code)
            resp = errors.error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)
            await resp(scope, receive, send_with_headers)
        except AssayError as exc:
            if started:
                raise
            resp = errors.error_response(exc.status, exc.code, exc.message, exc.details,
                                         headers={"Connection": "close"})
            await resp(scope, receive, send_with_headers)
        except Exception as exc:
            bad = errors.input_error(exc)
            if bad is None or started:
                raise
            resp = errors.error_response(bad.status, bad.code, bad.message, bad.details)
            await resp(scope, receive, send_with_headers)

    async def _hot(self, scope, receive, send) -> None:
        """The annotator's hot paths (``tasks/next``, answers) with the least
        work: the body is counted against ``max_body`` and every response is
        JSON, so it gets the API headers without a look at its content type.
        Their bodies need no text check: every string in them is a class name
        (checked against the project's classes) and orjson refuses lone
        surrogates."""
        limit, size = self.max_body, 0

        async def counted():
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                raise Rejected(413, _too_large(None, limit, False), close=True)
            return message

        started = False

        async def with_headers(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *_OTHER_HEADERS]
            await send(message)

        try:
            await self.app(scope, counted, with_headers)
        except Rejected as exc:
            if started:
                raise
            await errors.error_response(exc.status_code, errors.code_of(exc.status_code), str(exc.detail),
                                        headers=exc.headers)(scope, receive, with_headers)
        except Exception as exc:  # what the storage layer cannot represent (ids >= 2^63): a 400
            bad = errors.input_error(exc)
            if bad is None or started:
                raise
            await errors.error_response(bad.status, bad.code, bad.message, bad.details)(scope, receive, with_headers)

    def _authorize_upload(self, scope) -> None:
        auth = (_header(scope, b"authorization") or b"").decode("latin-1")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        user = scope["app"].state.workspace.authenticate(token)  # Unauthorized (401) if not valid
        if user["role"] != "admin":
            raise Forbidden("only an admin may do this")

    def _limited(self, scope, receive, limit: int, *, upload: bool, check_text: bool):
        """``receive`` that counts the body and stops it at ``limit`` bytes; with
        ``check_text``, a JSON body is checked for text that cannot be stored."""
        size = 0
        chunks: list[bytes] = []
        check_text = check_text and _is_json(scope)

        async def limited():
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                size += len(body)
                if size > limit:
                    raise Rejected(413, _too_large(None, limit, upload), close=True)
                if check_text:
                    chunks.append(body)
                    if not message.get("more_body", False):
                        problem = json_text_problem(body if len(chunks) == 1 else b"".join(chunks))
                        if problem:
                            raise Rejected(400, problem)
            return message

        return limited


def _too_large(declared: str | None, limit: int, upload: bool) -> str:
    what = f"the request body ({declared} bytes)" if declared else "the request body"
    hint = ("set ASSAY_MAX_UPLOAD_MB or import from the CLI" if upload
            else "set ASSAY_MAX_BODY_KB; files go through POST /api/datasets/{id}/import")
    return f"{what} is larger than the limit of {limit} bytes ({hint})"


def _header(scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return v
    return None


def _is_json(scope) -> bool:
    ctype = _header(scope, b"content-type")
    if ctype is None:
        return True  # FastAPI parses a body without a content type as JSON
    base = ctype.partition(b";")[0].strip().lower()
    return base == b"application/json" or base.endswith(b"+json")


def _route_path(scope) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
