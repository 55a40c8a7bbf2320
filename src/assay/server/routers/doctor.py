"""``assay doctor`` over HTTP: recount task counters and consensus rows (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from assay.server.deps import WS, Admin, json

router = APIRouter(tags=["admin"])


@router.get("/doctor")
def doctor_report(ws: WS, _: Admin, project_id: int | None = Query(default=None, ge=1, le=2**62)):
    """Every task counter (``answer_count``, ``needed``, ``open_slots``) and
    consensus row (``answers``) that disagrees with the answers and leases it
    summarises, of one project or all: ``{"drift": [{project_id, task_id,
    item_id, column, stored, expected}, …]}``. Reads only."""
    return json(ws.doctor(project_id))


@router.post("/doctor/fix")
def doctor_fix(ws: WS, _: Admin, project_id: int | None = Query(default=None, ge=1, le=2**62)):
    """Repair what ``GET /api/doctor`` reports, in one transaction, recorded
    in the audit log (``ledger.fix``); returns the drift that was repaired."""
    return json(ws.doctor(project_id, fix=True))
