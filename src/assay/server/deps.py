"""Request dependencies: the workspace and the authenticated user."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from starlette.responses import Response

from assay import audit
from assay.errors import Forbidden
from assay.workspace import Workspace


async def workspace(request: Request) -> Workspace:
    # async: a sync dependency costs a hop to the thread pool on every request.
    return request.app.state.workspace


async def current_user(request: Request) -> dict:
    # async on purpose: a sync dependency would cost a thread hop per request.
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    user = request.app.state.workspace.authenticate(token)
    audit.set_actor(user, client_address(request))  # who the audit log names for this request
    return user


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


async def admin_user(user: Annotated[dict, Depends(current_user)]) -> dict:
    if user["role"] != "admin":
        raise Forbidden("only an admin may do this")
    return user


async def staff_user(user: Annotated[dict, Depends(current_user)]) -> dict:
    if user["role"] not in ("admin", "reviewer"):
        raise Forbidden("only an admin or a reviewer may do this")
    return user


WS = Annotated[Workspace, Depends(workspace)]
User = Annotated[dict, Depends(current_user)]
Admin = Annotated[dict, Depends(admin_user)]
Staff = Annotated[dict, Depends(staff_user)]


def json(data, status: int = 200) -> Response:
    """A JSON response serialized with orjson (the hot paths skip pydantic)."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")
