"""Labeling projects and their members, as stored.

Functions here take a connection and plain values, never the workspace: a
project is created with its tasks (:func:`assay.engine.ledger.create_tasks`)
in the caller's transaction, read back as the dict every use-case works with
(:func:`load`), changed through :mod:`assay.engine.settings` (the one owner
of the settings' rules) with its gold scores re-computed (:func:`update`),
and joined or left by users. Each change writes its audit record on the same
connection. The workspace keeps the per-process caches (projects for a few
seconds, membership for a few seconds) and decides who may do what.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, text

from assay import audit as _audit
from assay import kinds
from assay.engine import gold as _gold
from assay.engine import instructions as _instructions
from assay.engine import ledger
from assay.engine import settings as _settings
from assay.errors import InvalidInput
from assay.learn import ml_backend as _ml_backend
from assay.store.schema import members, projects, users

#: what an annotator sees of a project: what labeling needs, nothing of
#: gold, pauses, the model or its backend
ANNOTATOR_KEYS = ("id", "name", "dataset_id", "schema", "widget", "lease_seconds", "show_fields")

_HAS_GOLD = text("SELECT 1 FROM tasks WHERE project_id = :p AND is_gold LIMIT 1")
_HAS_KNOWN = text("SELECT 1 FROM gold WHERE project_id = :p LIMIT 1")


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("project name must be 1–200 characters")
    return name


def create(conn, name: str, dataset_id: int, spec: dict, s: _settings.ProjectSettings) -> int:
    """Insert a project over a dataset (every item becomes a task wanting
    ``s.overlap`` answers); returns its id. A taken name raises the
    database's IntegrityError."""
    pid = conn.execute(insert(projects).values(
        name=name, dataset_id=dataset_id, schema_kind=s.kind, schema_spec=spec,
        created_at=time.time(), **s.columns(),
    ).returning(projects.c.id)).scalar_one()
    _audit.record(conn, "project.create", target_kind="project", target_id=pid, target=name,
                  details={"dataset_id": dataset_id, "kind": s.kind, "overlap": s.overlap})
    # no gold yet: in id order (gold.add shuffles the pool)
    ledger.create_tasks(conn, pid, dataset_id, s.overlap, "1 = 0")
    return pid


def load(conn, project: int | str) -> dict | None:
    """A project (by id or name) as a dict — settings, its label kind's
    schema and widget, whether it has gold or other known labels, the
    backend URL without its password — or None."""
    col = projects.c.id if isinstance(project, int) else projects.c.name
    r = conn.execute(select(projects).where(col == project)).first()
    if r is None:
        return None
    has_gold = conn.execute(_HAS_GOLD, {"p": r.id}).first() is not None
    # any known label (gold or a reviewer's): answers may need scoring
    has_known = has_gold or conn.execute(_HAS_KNOWN, {"p": r.id}).first() is not None
    return {
        "id": r.id, "name": r.name, "dataset_id": r.dataset_id,
        "schema": {"kind": r.schema_kind, **r.schema_spec},
        # the browser widget of the project's label kind (None: a kind this server lacks)
        "widget": kinds.get(r.schema_kind).widget if r.schema_kind in kinds.names() else None,
        "overlap": r.overlap, "lease_seconds": r.lease_seconds,
        "show_fields": list(r.show_fields), "created_at": r.created_at,
        "target_confidence": r.target_confidence, "max_answers": r.max_answers,
        "gold_rate": _gold.rate_of({"gold_rate": r.gold_rate}), "gold_min_accuracy": r.gold_min_accuracy,
        "gold_min_answers": r.gold_min_answers or _gold.DEFAULT_MIN_ANSWERS, "has_gold": has_gold,
        "gold_min_score": _gold.min_score_of({"gold_min_score": r.gold_min_score}),
        "has_known": has_known,
        "exam_size": r.exam_size, "exam_pass": r.exam_pass, "exam_retries": r.exam_retries,
        "teach_bar": r.teach_bar, "teach_rate": r.teach_rate, "teach_items": r.teach_items,
        "ml_space": r.ml_space, "auto_label_target": r.auto_label_target, "audit_rate": r.audit_rate,
        "target_match": r.target_match,
        "routing": r.routing, "routing_random_share": (
            _settings.DEFAULT_ROUTING_RANDOM_SHARE if r.routing_random_share is None else r.routing_random_share),
        "ml_backend_url": _ml_backend.redact(r.ml_backend_url) if r.ml_backend_url else None,
    }


def view(project: dict, role: str) -> dict:
    """``project`` as a user with ``role`` may see it: all of it for admins
    and reviewers, :data:`ANNOTATOR_KEYS` for annotators; both with the
    instructions rendered (``instructions_html``, :mod:`assay.engine.instructions`)."""
    html = _instructions.to_html((project.get("schema") or {}).get("instructions") or "")
    if role in ("admin", "reviewer"):
        return {**project, "instructions_html": html}
    return {**{k: project[k] for k in ANNOTATOR_KEYS}, "instructions_html": html}


def settings_of(conn, project_id: int) -> _settings.ProjectSettings:
    return _settings.ProjectSettings.from_row(conn.execute(select(projects).where(projects.c.id == project_id)).one())


def update(conn, p: dict, changes: Mapping[str, Any], *, vectors) -> None:
    """Change project ``p``'s settings (checked together with the unchanged
    ones by :mod:`assay.engine.settings`; a bad value raises before any
    write) and re-score its annotators against the new gold rules."""
    row = conn.execute(select(projects).where(projects.c.id == p["id"])).one()
    new = _settings.validate_change(_settings.ProjectSettings.from_row(row), **changes)
    values = {**new.columns(), **_settings.check_context(changes, new, vectors=vectors)}
    if "instructions" in changes:
        values["schema_spec"] = kinds.get(new.kind).normalize_schema(
            {**row.schema_spec, "instructions": new.instructions})
    conn.execute(projects.update().where(projects.c.id == p["id"]).values(**values))
    _gold.rescore(conn, {**p, "gold_rate": _gold.rate_of({"gold_rate": new.gold_rate}),
                         "gold_min_accuracy": new.gold_min_accuracy,
                         "gold_min_answers": new.gold_min_answers or _gold.DEFAULT_MIN_ANSWERS,
                         "gold_min_score": _gold.min_score_of({"gold_min_score": new.gold_min_score})})
    _audit.record(conn, "project.update", target_kind="project", target_id=p["id"], target=p["name"],
                  details={k: (_ml_backend.redact(v) if k == "ml_backend_url" and v else v)
                           for k, v in changes.items()})


def project_ids(conn, user: dict | None) -> list[int]:
    """Every project's id; with ``user`` (not an admin), those they are a member of."""
    q = select(projects.c.id).order_by(projects.c.id)
    if user is not None and user["role"] != "admin":
        q = q.where(projects.c.id.in_(select(members.c.project_id).where(members.c.user_id == user["id"])))
    return list(conn.execute(q).scalars())


# ------------------------------------------------------------ members

def add_member(conn, p: dict, u: dict) -> None:
    """``u`` joins ``p``; already a member raises the database's IntegrityError."""
    conn.execute(insert(members).values(project_id=p["id"], user_id=u["id"], created_at=time.time()))
    _audit.record(conn, "member.add", target_kind="project", target_id=p["id"], target=p["name"],
                  details={"user_id": u["id"], "username": u["username"]})


def remove_member(conn, p: dict, u: dict) -> None:
    gone = conn.execute(members.delete().where(members.c.project_id == p["id"],
                                               members.c.user_id == u["id"])).rowcount
    if gone:
        _audit.record(conn, "member.remove", target_kind="project", target_id=p["id"], target=p["name"],
                      details={"user_id": u["id"], "username": u["username"]})


def list_members(conn, project_id: int) -> list[dict]:
    rows = conn.execute(
        select(users.c.id.label("user_id"), users.c.username, users.c.role)
        .join(members, members.c.user_id == users.c.id)
        .where(members.c.project_id == project_id).order_by(users.c.id)
    ).all()
    return [{str(k): v for k, v in r._mapping.items()} for r in rows]


def is_member(conn, project_id: int, user_id: int) -> bool:
    return conn.execute(select(members.c.user_id).where(
        members.c.project_id == project_id, members.c.user_id == user_id)).first() is not None
