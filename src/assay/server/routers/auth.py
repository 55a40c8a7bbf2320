"""Login, the current user, and user management."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from assay.server.deps import WS, Admin, User, json

router = APIRouter(tags=["users"])


class LoginIn(BaseModel):
    username: str
    password: str


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "reviewer", "annotator"] = "annotator"
    password: str | None = None


@router.post("/auth/login")
def login(body: LoginIn, ws: WS):
    """Exchange a username and password for an API token."""
    user, token = ws.login(body.username, body.password)
    return json({"token": token, "user": user})


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
