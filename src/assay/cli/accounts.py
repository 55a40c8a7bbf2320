"""People, their tokens, and what they did: ``assay user``, ``assay user token``,
``assay audit``."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, open_ws, token_app, user_app, when


@user_app.command("add")
@command
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin, reviewer or annotator.")] = "annotator",
    password: Annotated[Optional[str], typer.Option(help="Password for the browser login.")] = None,
    project: Annotated[Optional[list[str]], typer.Option(help="Add to this project (repeatable).")] = None,
    home: Home = None,
):
    """Add a user and print their API token (shown once). All or nothing:
    an unknown project adds nobody."""
    ws = open_ws(home)
    user, token = ws.add_user(username, role, password,
                              projects=[int(p) if p.isdigit() else p for p in project or []])
    typer.echo(f"user {user['username']!r} ({role}) added; API token: {token}")


@user_app.command("list")
@command
def user_list(home: Home = None):
    """List users: id, name, role, whether active."""
    ws = open_ws(home)
    for u in ws.list_users():
        typer.echo(f"{u['id']:>5}  {u['username']:<30} {u['role']:<10} {'active' if u['active'] else 'inactive'}")


@user_app.command("role")
@command
def user_role(username: str, role: Annotated[str, typer.Argument(help="admin, reviewer or annotator.")],
              home: Home = None):
    """Change a user's role (takes effect at once)."""
    ws = open_ws(home)
    u = ws.set_role(username, role)
    typer.echo(f"{u['username']!r} is now {u['role']}")


@token_app.command("list")
@command
def token_list(
    username: Annotated[Optional[str], typer.Argument(help="Only this user's tokens.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also expired and revoked tokens.")] = False,
    home: Home = None,
):
    """List API and session tokens (never their secrets)."""
    ws = open_ws(home)
    rows = ws.list_tokens(username, include_inactive=all_)
    typer.echo(f"{'id':>5}  {'user':<20} {'name':<16} {'kind':<8} {'created':<16} {'last used':<16} "
               f"{'expires':<16} status")
    for t in rows:
        state = "revoked" if t["revoked_at"] else ("active" if t["active"] else "expired")
        typer.echo(f"{t['id']:>5}  {t['username']:<20} {t['name'] or '':<16} {t['kind']:<8} "
                   f"{when(t['created_at']):<16} {when(t['last_used_at']):<16} {when(t['expires_at']):<16} {state}")


@token_app.command("new")
@command
def token_new(
    username: str,
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "cli",
    expires_days: Annotated[Optional[float], typer.Option(help="Days until it expires (default: never).")] = None,
    home: Home = None,
):
    """Issue a new API token for a user and print it (shown once)."""
    ws = open_ws(home)
    token = ws.create_token(username, name, expires_days=expires_days)
    typer.echo(f"new API token for {ws.get_user(username)['username']!r}: {token}")


@token_app.command("revoke")
@command
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see `assay user token list`).")],
                 home: Home = None):
    """Revoke a token; it stops working at once (other server processes: within 5 s)."""
    ws = open_ws(home)
    r = ws.revoke_token(token_id)
    typer.echo(f"token {r['id']} ({r['name']}) revoked")


@app.command("audit")
@command
def audit_(
    action: Annotated[Optional[str], typer.Option(help="Only this action (a prefix when it ends with '.', e.g. token.).")] = None,
    actor: Annotated[Optional[str], typer.Option(help="Only what this user (name or id, or cli:NAME) did.")] = None,
    target_kind: Annotated[Optional[str], typer.Option(help="project, user, token, dataset or address.")] = None,
    target_id: Annotated[Optional[int], typer.Option(help="Only this target id.")] = None,
    limit: Annotated[int, typer.Option(help="Records per page.")] = 50,
    before: Annotated[Optional[int], typer.Option(help="Records older than this id (paging).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    home: Home = None,
):
    """Read the audit log, newest first: who did what, when, to what."""
    ws = open_ws(home)
    rows, nxt = ws.audit_log(before=before, limit=limit, action=action, actor=actor,
                             target_kind=target_kind, target_id=target_id)
    for r in rows:
        if as_json:
            typer.echo(json.dumps(r, default=str))
        else:
            target = f"{r['target_kind'] or ''} {r['target_id'] or ''} {r['target'] or ''}".strip()
            typer.echo(f"{r['id']:>6}  {when(r['created_at'])}  {r['actor'] or '-':<16} {r['action']:<15} "
                       f"{target}  {json.dumps(r['details'], default=str)}")
    if nxt is not None and not as_json:
        typer.echo(f"(more: --before {nxt})", err=True)
