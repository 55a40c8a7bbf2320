"""The HTTP client for one Label Studio compatible ML backend (stdlib only),
and :func:`connect`, which picks it or an in-process Python model for a URL."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import urllib.parse
from typing import Any

from assay.errors import InvalidInput
from assay.learn.ml_backend.errors import BackendProtocolError, BackendUnreachable
from assay.learn.ml_backend.models import PythonBackend
from assay.learn.ml_backend.urls import check_url, redact, resolve

log = logging.getLogger("assay.learn.ml_backend")

#: seconds to wait for each call (Label Studio waits 100 s for /predict)
HEALTH_TIMEOUT = 10.0
SETUP_TIMEOUT = 30.0
PREDICT_TIMEOUT = 100.0
WEBHOOK_TIMEOUT = 10.0
#: answers larger than this are refused (a /predict answer for 64 tasks is a few kB)
MAX_RESPONSE_BYTES = 64 << 20


class HttpBackend:
    """A client for one Label Studio compatible ML backend (stdlib only).

    Every call resolves the host, checks each address (:func:`resolve`) and
    connects to a checked address; TLS still verifies the certificate for
    the host name. Redirects are errors, not followed."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        url = check_url(url)
        if url is None or url.startswith("python:"):
            raise InvalidInput(f"not an HTTP backend URL: {url!r}")
        parts = urllib.parse.urlsplit(url)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "User-Agent": "assay-ml-client"}
        if parts.username is not None:
            cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.name = redact(url)
        self.timeout = timeout
        self._url = url

    def _connection(self, address: str, timeout: float) -> http.client.HTTPConnection:
        try:
            host = self.host.encode("idna").decode("ascii") if not self.host.isascii() else self.host
        except UnicodeError:
            raise InvalidInput(f"ml_backend_url has a host name that is not valid: {self.host[:100]!r}") from None
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, self.port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, self.port, timeout=timeout)

        def pinned(addr, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):  # noqa: SLF001
            # The checked address, not a second DNS answer for the name
            # (http.client still sends Host and TLS SNI for the name).
            return socket.create_connection((address, addr[1]), timeout, source_address)

        conn._create_connection = pinned  # noqa: SLF001 - http.client's documented hook for the socket
        return conn

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body, default=str).encode()
        where = f"the ML backend at {self.name}"
        check_url(self._url)  # the allow/deny settings may have changed since
        addresses = resolve(self.host, self.port)
        wait = self.timeout or timeout
        status, raw, last_error = 0, b"", None
        for address in addresses:
            conn = self._connection(address, wait)
            try:
                conn.request(method, f"{self.prefix}/{path}", body=data, headers=self.headers)
                resp = conn.getresponse()
                status = resp.status
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
                location = resp.getheader("Location", "")
                break
            except (OSError, http.client.HTTPException, ValueError) as e:
                last_error = e
                continue
            finally:
                conn.close()
        else:
            reason = getattr(last_error, "reason", None) or last_error
            raise BackendUnreachable(f"{where} is unreachable ({method} /{path}): {reason}") from None
        if 300 <= status < 400:
            log.warning("%s answered %s /%s with HTTP %s to %r: redirects are not followed",
                        where, method, path, status, location[:300])
            raise BackendUnreachable(f"{where} answered {method} /{path} with a redirect (HTTP {status}); "
                                     "redirects are not followed: set the backend's final URL", status=status)
        if status >= 400:
            # The body is logged, never echoed: this URL may be some other server's.
            log.warning("%s answered %s /%s with HTTP %s: %r", where, method, path, status,
                        raw[:2000].decode("utf-8", "replace"))
            raise BackendUnreachable(f"{where} answered {method} /{path} with HTTP {status} "
                                     "(its answer is in the server log)", status=status)
        if len(raw) > MAX_RESPONSE_BYTES:
            raise BackendProtocolError(f"{where} answered /{path} with more than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            log.warning("%s answered %s /%s with something that is not JSON: %r", where, method, path,
                        raw[:2000].decode("utf-8", "replace"))
            raise BackendProtocolError(f"{where} answered /{path} with something that is not JSON "
                                       "(its answer is in the server log)") from None

    def health(self) -> dict:
        """``{"status": "UP", "model_class"?}``: only these fields of the
        answer are kept (the rest could be anything the URL serves)."""
        body = self._call("GET", "health", timeout=HEALTH_TIMEOUT)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise BackendProtocolError(
                f"the ML backend at {self.name} answered /health without a status: expected {{\"status\": \"UP\"}}")
        if body["status"].upper() != "UP":
            log.warning("the ML backend at %s reports status %r", self.name, body["status"][:300])
            raise BackendUnreachable(f"the ML backend at {self.name} reports a status other than UP")
        out = {"status": "UP"}
        if isinstance(body.get("model_class"), str):
            out["model_class"] = body["model_class"][:200]
        return out

    def setup(self, payload: dict) -> dict:
        body = self._call("POST", "setup", payload, timeout=SETUP_TIMEOUT)
        if not isinstance(body, dict):
            raise BackendProtocolError(f"the ML backend at {self.name} answered /setup without a JSON object")
        return body

    def predict(self, payload: dict) -> Any:
        return self._call("POST", "predict", payload, timeout=PREDICT_TIMEOUT)

    def webhook(self, payload: dict) -> Any:
        return self._call("POST", "webhook", payload, timeout=WEBHOOK_TIMEOUT)


def connect(url: str | None) -> HttpBackend | PythonBackend:
    """The client for a backend URL (see :func:`check_url`)."""
    url = check_url(url)
    if url is None:
        raise InvalidInput("the project has no ML backend: set ml_backend_url first")
    return PythonBackend(url) if url.startswith("python:") else HttpBackend(url)
