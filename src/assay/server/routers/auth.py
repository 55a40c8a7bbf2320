"""Login and logout, the current user, user management, API tokens and the
audit log."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from assay import audit
from assay.server.deps import WS, Admin, User, bearer_token, client_address, json

router = APIRouter(tags=["users"])


class LoginIn(BaseModel):
    username: str = Field(max_length=1000)
    password: str = Field(max_length=1000)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "reviewer", "annotator"] = "annotator"
    password: str | None = Field(default=None, max_length=1000)


class RoleIn(BaseModel):
    role: Literal["admin", "reviewer", "annotator"]


class TokenIn(BaseModel):
    user_id: int = Field(ge=1, le=2**62)
    name: str = Field(default="api", min_length=1, max_length=200)
    expires_days: float | None = Field(default=None, gt=0, le=3650)


@router.post("/auth/login", responses={
    401: {"description": "Wrong username or password"},
    429: {"description": "Too many failed logins for this name or address; wait Retry-After seconds"},
})
def login(body: LoginIn, request: Request, ws: WS):
    """Exchange a username and password for a session token (it expires
    after ``ASSAY_TOKEN_TTL_DAYS``). Repeated failures per username and per
    client address are answered 429 with ``Retry-After``."""
    with audit.acting(None, client_address(request)):
        user, token = ws.login(body.username, body.password, address=client_address(request))
    return json({"token": token, "user": user})


class SetupIn(BaseModel):
    code: str = Field(max_length=100)
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=1000)


@router.get("/setup")
def setup_state(ws: WS):
    """Whether the workspace still waits for its first admin (``/setup``)."""
    return json({"needed": ws.needs_setup(), "min_password_length": ws.accounts.min_password_length})


@router.post("/setup", status_code=201, responses={
    403: {"description": "Wrong one-time setup code"},
    409: {"description": "The workspace already has users"},
    429: {"description": "Too many wrong codes from this address; wait Retry-After seconds"},
})
def setup_claim(body: SetupIn, request: Request, ws: WS):
    """First run: create the first admin with the one-time code that
    ``assay serve`` printed, and log them in (a session token)."""
    with audit.acting(None, client_address(request)):
        user, token = ws.claim_setup(body.code, body.username, body.password,
                                     address=client_address(request))
    return json({"token": token, "user": user}, 201)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, ws: WS, _: User):
    """Revoke the token this request was sent with."""
    ws.logout(bearer_token(request))
    return Response(status_code=204)


@router.get("/me")
async def me(user: User):
    return json(user)


@router.get("/users")
def list_users(ws: WS, _: Admin):
    return json({"users": ws.list_users()})


@router.post("/users", status_code=201)
def add_user(body: UserIn, ws: WS, _: Admin):
    """Create a user. The returned token is shown only once."""
    user, token = ws.add_user(body.username, body.role, body.password)
    return json({"user": user, "token": token}, 201)


@router.put("/users/{user_id}/role")
def set_role(user_id: int, body: RoleIn, ws: WS, _: Admin):
    return json(ws.set_role(ws.get_user(user_id)["id"], body.role))


@router.get("/tokens")
def list_tokens(ws: WS, user: User, user_id: int | None = Query(default=None, ge=1, le=2**62),
                all: bool = False, include_inactive: bool = False):
    """Your own tokens (an admin: anybody's with ``user_id``, or everybody's
    with ``all=true``), without their secrets; live ones only unless
    ``include_inactive``."""
    if user["role"] != "admin":
        who = user["id"]
    else:
        who = None if (all and user_id is None) else (user_id or user["id"])
    return json({"tokens": ws.list_tokens(who, include_inactive=include_inactive)})


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, ws: WS, _: Admin):
    """An API token for a user (admins only); shown only once."""
    token = ws.create_token(ws.get_user(body.user_id)["id"], body.name, expires_days=body.expires_days)
    return json({"token": token}, 201)


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: int, ws: WS, user: User):
    """Revoke a token: your own, or (an admin) anybody's. It stops working at once."""
    if not 1 <= token_id <= 2**62:
        token_id = 0
    return json(ws.revoke_token(token_id, user=user))


@router.get("/audit")
def read_audit(ws: WS, _: Admin,
               before: int | None = Query(default=None, ge=1, le=2**62),
               limit: int = Query(default=100, ge=1, le=1000),
               action: str | None = Query(default=None, max_length=50),
               actor: str | None = Query(default=None, max_length=200),
               target_kind: str | None = Query(default=None, max_length=30),
               target_id: int | None = Query(default=None, ge=1, le=2**62),
               since: float | None = None, until: float | None = None):
    """The audit log, newest first (admins only). Page with ``before`` =
    the ``next_before`` of the previous page. ``action`` is exact, or a
    prefix ending in '.' (``token.``); ``actor`` is a username or an id."""
    records, nxt = ws.audit_log(before=before, limit=limit, action=action, actor=actor,
                                target_kind=target_kind, target_id=target_id, since=since, until=until)
    return json({"records": records, "next_before": nxt})
