"""A real uvicorn server over ``create_app(ws)``, in a background thread.

The test and the server share one :class:`assay.Workspace` object, so a
test can read the database (``ws.list_answers`` …) while a browser talks to
the server over real HTTP. The listening socket is bound here, before the
server starts, so there is no race for a "free" port.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from assay.server import create_app


class LiveServer:
    """``with LiveServer(ws) as srv: srv.base`` → ``http://127.0.0.1:PORT``."""

    def __init__(self, ws, *, reclaim_interval: float = 0.0, start_timeout: float = 15.0) -> None:
        self.ws = ws
        self.app = create_app(ws, reclaim_interval=reclaim_interval)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=0.5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self.start_timeout = start_timeout
        self.error: BaseException | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self.error = exc

    def start(self) -> LiveServer:
        self.thread.start()
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start: {self.error!r}")
            if self.server.started:
                # One real request, so the first test request never races the startup.
                r = httpx.get(self.base + "/login", timeout=5, follow_redirects=True)
                r.raise_for_status()
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"uvicorn did not start within {self.start_timeout}s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        if self.thread.is_alive():  # pragma: no cover - a hung connection
            self.server.force_exit = True
            self.thread.join(5)
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
