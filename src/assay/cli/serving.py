"""The HTTP server from the command line: ``assay serve`` and ``assay quickstart``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, fail, open_ws


@app.command()
@command
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (use >1 with PostgreSQL).")] = 1,
    home: Home = None,
):
    """Run the HTTP server (API, docs at /docs, labeling UI)."""
    ws = open_ws(home)  # migrate once, up front
    sock = _listen(host, port)  # before saying "serving": a port in use is one line, not a lie
    code = ws.setup_code()  # first run only: the code that claims the first admin
    ws.close()
    os.environ["ASSAY_HOME"] = str(ws.home)
    base = f"http://{_url_host(host)}:{port}"
    typer.echo(f"assay serving {ws.home} on {base}/  (API docs: /docs)")
    if code:
        typer.echo(f"\nFirst run: no users yet. Open {base}/setup and enter the one-time code\n\n"
                   f"    {code}\n\nto create the first admin (or run `assay user add NAME --role admin`).\n")
    _run_server(sock, workers)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _listen(host: str, port: int):
    """A listening socket on host:port, or one line saying why not."""
    import errno
    import socket

    if not 0 <= port <= 65535:
        fail(f"--port must be 0–65535, got {port}", 2)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use (another assay serve?): stop that server "
                  "or choose another --port")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


def _run_server(sock, workers: int) -> None:
    import uvicorn

    options = dict(factory=True, log_level="warning", access_log=False, loop="auto", http="auto")
    if workers > 1:  # the workers inherit the bound socket
        uvicorn.run("assay.server:app_from_env", fd=sock.fileno(), workers=workers, **options)
    else:
        uvicorn.Server(uvicorn.Config("assay.server:app_from_env", **options)).run(sockets=[sock])


@app.command()
@command
def quickstart(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    data: Annotated[Optional[Path], typer.Option(help="Your own CSV/JSONL/Parquet (text column 'text') or image folder instead of the sample.")] = None,
    classes: Annotated[str, typer.Option(help="Classes of the demo project.")] = "positive,negative,neutral",
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set everything up but do not start the server.")] = False,
):
    """Create a workspace with a sample dataset, a demo project, an admin and
    two annotators, then start the server and print login links. Run again,
    it reuses the demo and prints fresh links; it never changes other data."""
    from assay.quickstart import login_link, setup_demo

    sock = None if no_serve else _listen(host, port)  # a port in use fails before anything is set up
    info = setup_demo(home, data=data, classes=[c.strip() for c in classes.split(",") if c.strip()])
    base = f"http://{_url_host(host)}:{port}"
    typer.echo(f"\nassay workspace: {info['home']}")
    if info["reused"]:
        typer.echo(f"using the existing demo project {info['project']['name']!r} (nothing imported): "
                   f"{info['tasks']} tasks, classes {info['classes']}")
    else:
        typer.echo(f"project {info['project']['name']!r}: {info['tasks']} tasks, classes {info['classes']}")
    typer.echo(f"\nOpen the labeling UI at {base}/  — log in with a link:")
    for u in info["users"]:
        typer.echo(f"  {u['role']:<10} {u['username']:<8} {login_link(base, u)}"
                   + (f"   (password: {u['password']})" if u.get("password") else ""))
    typer.echo(f"\nAdmin page: {base}/admin   API docs: {base}/docs")
    if sock is None:
        return
    typer.echo("Press Ctrl+C to stop.\n")
    os.environ["ASSAY_HOME"] = info["home"]
    _run_server(sock, 1)
