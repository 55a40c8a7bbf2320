"""What every ``assay`` command shares: the typer app and its groups
(``project``, ``user``, ``user token``), the ``--home`` option, the
:func:`command` decorator that turns domain errors into one line on stderr,
and small helpers to open the workspace and print."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.errors import AssayError

app = typer.Typer(
    name="assay",
    help="assay — turn raw data into trusted labeled datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
project_app = typer.Typer(help="Labeling projects.", no_args_is_help=True)
user_app = typer.Typer(help="People and their API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: list, issue, revoke.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
user_app.add_typer(token_app, name="token")

Home = Annotated[
    Optional[Path],
    typer.Option("--home", envvar="ASSAY_HOME", help="Workspace folder (default ./assay-data)."),
]


def open_ws(home: Path | None):
    """The workspace at ``--home`` (created and migrated on first use)."""
    from assay.workspace import Workspace

    return Workspace(home)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): still record the CLI
        return "?"


def fail(message: str, code: int = 1) -> None:
    """Stop with ``error: message`` on stderr and exit ``code`` (2: bad usage)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def command(f):
    """Turn domain errors into one line on stderr."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from assay import audit

        try:
            with audit.acting({"id": None, "username": f"cli:{_os_user()}"}):  # the audit log names the CLI's user
                return f(*args, **kwargs)
        except AssayError as exc:
            fail(exc.message)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


def print_json(data) -> None:
    """Print ``data`` as indented JSON."""
    typer.echo(json.dumps(data, indent=2, default=str))


def find_project(ws, project: str) -> dict:
    """A project by id (digits) or name."""
    return ws.get_project(int(project) if project.isdigit() else project)


def when(t) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (UTC); ``-`` for None."""
    import datetime

    return "-" if t is None else datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
