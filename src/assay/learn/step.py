"""Machine learning in the loop: one step of the model's side of a project.

:func:`ml_step` is what the background worker runs after answers arrive
(debounced), and what ``assay simulate --ml`` runs through the same code:

1. **Verified labels**: gold, reviewers' decisions, and items whose human
   answers alone (annotator confusion matrices of the last re-fit) reach
   the verification confidence.
2. **Train** the calibrated classifier (:class:`assay.learn.model.
   EmbeddingClassifier`) on their embeddings; store a new model version and
   every item's prediction.
3. **Auto-label** with a precision guarantee: the threshold comes from the
   out-of-fold predictions on verified items plus the audits so far
   (Clopper-Pearson, :func:`assay.learn.autolabel.choose_threshold`). Items
   nobody answered yet above it are labeled by the model; a random
   ``audit_rate`` share of them still goes to people. If the audits show the
   auto-labels fall short, the threshold is raised (auto-labels below the new
   one go back to people) or auto-labeling stops.
4. **Model-informed consensus**: for items people are still answering, the
   model's calibrated probabilities are the prior their answers update, so
   one answer that agrees with a confident model can settle an item. The
   annotators' skills are learned with the model too
   (:func:`assay.quality.crowd_with_model`).
5. **Active learning**: the hand-out's priorities put started items first,
   then an uncertain-and-diverse batch (cold start: a diverse cover).

How: a plan, then one write. :func:`read_step` loads the project into arrays
(one read transaction); :func:`assay.learn.plan.plan_step` decides all of the
above with no database; :func:`apply_plan` writes it in one transaction,
task counters and consensus rows through :mod:`assay.engine.ledger`. Answers
keep arriving meanwhile: an item whose task's counts moved since the read is
recomputed from its answers at write time (with the plan's skills and its
task's counts then), an item answered since is not auto-labeled nor given
back, and priorities apply to the tasks still open after the write. Nothing
an annotator did during the step is overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import JSON, bindparam, text

from assay.config import SCHEDULE
from assay.engine import ledger
from assay.errors import InvalidInput
from assay.learn.plan import (  # noqa: F401  (re-exported: the loop's constants and rules live in learn.plan)
    ALPHA, MIN_TRAIN, PRIORITY_BATCH, PRIORITY_STARTED, PRIORITY_VALIDATION, PRIORITY_VERIFY, TRAIN_CONFIDENCE,
    VALIDATION_MIN, VALIDATION_SHARE, AutoLabel, ConsensusRow, LastModel, StepInput, StepPlan, StepSettings,
    item_consensus, validation_mask, verification_region,
)


def ml_due(ws, *, growth: float = SCHEDULE.ml_growth, min_new: int = SCHEDULE.ml_min_new) -> list[int]:
    """Projects with a model whose answers grew by ``growth`` (and at least
    ``min_new``) since its last version, or that have none yet: what the
    server's background worker trains next (debounced by its interval).
    The defaults are the schedule's (:data:`assay.config.SCHEDULE`)."""
    with ws.db.read() as conn:
        rows = conn.execute(text(
            "SELECT p.id, (SELECT count(*) FROM answers a WHERE a.project_id = p.id) AS n, "
            "(SELECT m.metrics FROM ml_models m WHERE m.project_id = p.id ORDER BY m.version DESC LIMIT 1) AS metrics "
            "FROM projects p WHERE p.ml_space IS NOT NULL ORDER BY p.id").columns(metrics=JSON)).all()
    due = []
    for r in rows:
        before = (r.metrics or {}).get("answers") if r.metrics else None
        if before is None or r.n - before >= max(min_new, growth * before):
            due.append(r.id)
    return due


def ml_step(ws, project: int | str, *, batch: int = 100, seed: int = 0, now: float | None = None,
            before_write: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run one step (see the module docstring); returns what it did.

    Reads in short read transactions, plans with no database
    (:func:`assay.learn.plan.plan_step`), then applies the plan in one write
    transaction (:func:`apply_plan`). ``before_write`` is called between the
    two (tests answer tasks there, as people do while a step plans)."""
    from assay.learn.plan import plan_step

    p = ws.get_project(project)
    if p["ml_space"] is None:
        raise InvalidInput(f"project {p['name']!r} has no model: set ml_space first")
    now = time.time() if now is None else now
    plan = plan_step(read_step(ws, p), batch=batch, seed=seed)
    if before_write is not None:
        before_write()
    with ws.db.write() as conn:
        apply_plan(conn, p, plan, now=now)
    if plan.target_confidence is not None:
        ws.forget_project(p["id"])  # the new target applies to the next answer
    return plan.summary


# ---------------------------------------------------------------- read


def _code(label, code: dict[str, int]) -> int:
    return code.get(label, -1) if isinstance(label, str) else -1


def _read_rows(conn, pid: int) -> dict[str, Any]:
    """Everything the step reads of a project, in one read transaction."""
    q = {"p": pid}
    return {
        "tasks": conn.execute(text(
            "SELECT id, item_id, answer_count, needed, open_slots, is_gold FROM tasks WHERE project_id = :p "
            "ORDER BY item_id"), q).all(),
        "leases": dict(conn.execute(text(
            "SELECT task_id, count(*) FROM leases WHERE project_id = :p GROUP BY task_id"), q).all()),
        "answers": conn.execute(text(
            "SELECT item_id, annotator_id, label FROM answers WHERE project_id = :p").columns(label=JSON), q).all(),
        "skills": {r.annotator_id: r.confusion for r in conn.execute(text(
            "SELECT annotator_id, confusion FROM annotator_skills WHERE project_id = :p").columns(confusion=JSON), q)},
        "previous": {r.item_id: r.proba for r in conn.execute(text(
            "SELECT item_id, proba FROM predictions WHERE project_id = :p").columns(proba=JSON), q)},
        "qm": conn.execute(text("SELECT prior, default_confusion FROM quality_models WHERE project_id = :p")
                           .columns(prior=JSON, default_confusion=JSON), q).first(),
        "known": {r.item_id: r.label for r in conn.execute(text(
            "SELECT item_id, label FROM gold WHERE project_id = :p").columns(label=JSON), q)},
        "autos": conn.execute(text(
            "SELECT item_id, label, confidence, audit FROM auto_labels WHERE project_id = :p").columns(label=JSON),
            q).all(),
        "status": {r.item_id: r.status for r in conn.execute(text(
            "SELECT item_id, status FROM item_consensus WHERE project_id = :p"), q)},
        "last": conn.execute(text(
            "SELECT version, threshold, auto_state, metrics FROM ml_models WHERE project_id = :p "
            "ORDER BY version DESC LIMIT 1").columns(metrics=JSON), q).first(),
    }


def read_step(ws, p: dict) -> StepInput:
    """The read phase: the project's tasks, answers, gold, auto-labels, crowd
    model, last model and vectors as arrays (:class:`assay.learn.plan.StepInput`)."""
    from assay.engine import redundancy

    names = [c["name"] for c in p["schema"]["classes"]]
    code = {n: i for i, n in enumerate(names)}
    with ws.db.read() as conn:
        r = _read_rows(conn, p["id"])
    tasks = r["tasks"]
    item_ids = np.array([t.item_id for t in tasks], np.int64)
    task_ids = np.array([t.id for t in tasks], np.int64)
    pos = {int(i): j for j, i in enumerate(item_ids)}
    ok = [(pos[a.item_id], a.annotator_id, _code(a.label, code)) for a in r["answers"] if a.item_id in pos]
    ok = [a for a in ok if a[2] >= 0]
    by_annotator: dict[int, int] = {}
    for a in r["answers"]:
        by_annotator[a.annotator_id] = by_annotator.get(a.annotator_id, 0) + 1
    have = ws.vectors.ids(p["ml_space"])
    with_vec = np.isin(item_ids, have)
    x_ids, X = ws.vectors.load(p["ml_space"], item_ids[with_vec])
    row_of = {int(i): j for j, i in enumerate(x_ids)}
    qm, last, known = r["qm"], r["last"], r["known"]
    default = None
    if qm is not None:
        default = qm.default_confusion["confusion"] if isinstance(qm.default_confusion, dict) else qm.default_confusion
    return StepInput(
        settings=StepSettings(names, int(p["overlap"]), p["target_confidence"], p["max_answers"], p["target_match"],
                              p["auto_label_target"], p["audit_rate"]),
        task_ids=task_ids, item_ids=item_ids,
        answer_count=np.array([t.answer_count for t in tasks], np.int64),
        needed=np.array([t.needed for t in tasks], np.int64),
        is_gold=np.array([bool(t.is_gold) for t in tasks], bool),
        open_now=np.array([t.open_slots > 0 for t in tasks], bool),
        leases=np.array([r["leases"].get(t.id, 0) for t in tasks], np.int64),
        ans_task=np.array([a[0] for a in ok], np.intp), ans_user=np.array([a[1] for a in ok], np.int64),
        ans_label=np.array([a[2] for a in ok], np.intp), answers_total=len(r["answers"]),
        answers_by_annotator=by_annotator, skills=r["skills"], default=default,
        prior=qm.prior if qm is not None else None,
        previous=redundancy.model_priors(r["previous"], item_ids, len(names)),
        known_mask=np.array([int(i) in known for i in item_ids], bool),
        known_code=np.array([_code(known.get(int(i)), code) for i in item_ids], np.intp),
        autos={a.item_id: AutoLabel(_code(a.label, code), float(a.confidence), bool(a.audit)) for a in r["autos"]},
        status=r["status"],
        last=None if last is None else LastModel(last.version, last.threshold, last.auto_state, last.metrics),
        X=X, vec_row=np.array([row_of.get(int(i), -1) for i in item_ids], np.intp))


# ---------------------------------------------------------------- write


def _changed_since(conn, pid: int, plan: StepPlan) -> tuple[dict[int, Any], set[int]]:
    """Tasks whose counts moved since the read phase (task id -> current
    row), and those of them that got or lost answers."""
    rows = conn.execute(text("SELECT id, item_id, answer_count, needed FROM tasks WHERE project_id = :p"),
                        {"p": pid}).all()
    moved = {r.id: r for r in rows if (r.answer_count, r.needed) != (plan.answer_count.get(r.id),
                                                                     plan.needed.get(r.id))}
    answered = {t for t, r in moved.items() if r.answer_count != plan.answer_count.get(t)}
    return moved, answered


def _write_model(conn, pid: int, plan: StepPlan, now: float) -> None:
    m = plan.model
    if m is not None:
        conn.execute(text(
            "INSERT INTO ml_models (project_id, version, trained_at, n_train, temperature, oof_accuracy, "
            "threshold, auto_state, metrics) VALUES (:p, :v, :now, :n, :t, :acc, :th, :st, :m)"
        ).bindparams(bindparam("m", type_=JSON)),
            {"p": pid, "v": m.version, "now": now, "n": m.n_train, "t": m.temperature, "acc": m.oof_accuracy,
             "th": m.threshold, "st": m.auto_state, "m": m.metrics})
        conn.execute(text("DELETE FROM predictions WHERE project_id = :p"), {"p": pid})
        if plan.predictions:
            conn.execute(text(
                "INSERT INTO predictions (project_id, item_id, model_version, label, confidence, proba) "
                "VALUES (:p, :i, :v, :label, :c, :pr)").bindparams(
                    bindparam("label", type_=JSON), bindparam("pr", type_=JSON)),
                [{"p": pid, "i": i, "v": m.version, "label": lab, "c": c, "pr": pr}
                 for i, lab, c, pr in plan.predictions])
    if plan.skills is not None:
        from assay.engine import redundancy

        redundancy.store_skills(conn, pid, plan.skills)
        redundancy.store_crowd(conn, pid, plan.prior, plan.default)
    if plan.target_confidence is not None:
        # target_match's own target, not an owner's change: engine.projects.update would audit and re-score gold
        conn.execute(text("UPDATE projects SET target_confidence = :t WHERE id = :p"),
                     {"t": plan.target_confidence, "p": pid})


def _write_auto_labels(conn, pid: int, plan: StepPlan, answered: set[int], now: float) -> None:
    """Take back the planned auto-labels (their tasks want people again,
    leases kept) and add the new ones (non-audits leave the pool). An item
    answered since the read keeps what it has: auto-labels are for items
    nobody answered."""
    revert = [(i, t) for i, t in plan.revert if t not in answered]
    if revert:
        conn.execute(text("DELETE FROM auto_labels WHERE project_id = :p AND item_id = :i"),
                     [{"p": pid, "i": i} for i, _ in revert])
        gold = {r.id for r in conn.execute(text("SELECT id FROM tasks WHERE project_id = :p AND is_gold"),
                                           {"p": pid})}
        ledger.set_needed(conn, [t for _, t in revert if t not in gold], plan.overlap, now=now, only_below=True)
    new = [a for a in plan.auto_labels if a.task_id not in answered]
    if new:
        conn.execute(text(
            "INSERT INTO auto_labels (project_id, item_id, label, confidence, model_version, audit, created_at) "
            "VALUES (:p, :i, :label, :c, :v, :a, :now)").bindparams(bindparam("label", type_=JSON)),
            [{"p": pid, "i": a.item_id, "label": a.label, "c": a.confidence, "v": plan.model.version,
              "a": a.audit, "now": now} for a in new])
    for a in new:
        if not a.audit:  # out of the pool; audits keep their slots for people
            ledger.withdraw(conn, a.task_id)


def _recompute(conn, p: dict, plan: StepPlan, moved: dict[int, Any]) -> list[ConsensusRow]:
    """Consensus rows for planned items whose task moved since the read:
    from their answers now, with the plan's skills and their task's counts now."""
    from assay.quality.crowd_model import answer_loglik

    rows = {r.item_id: r for r in moved.values() if r.item_id in plan.rules}
    if not rows:
        return []
    names = plan.classes
    code = {n: i for i, n in enumerate(names)}
    index = {i: j for j, i in enumerate(rows)}
    found = conn.execute(text(
        "SELECT item_id, annotator_id, label FROM answers WHERE project_id = :p AND item_id IN :items"
    ).bindparams(bindparam("items", expanding=True)).columns(label=JSON), {"p": p["id"], "items": list(rows)}).all()
    found = [(index[a.item_id], a.annotator_id, _code(a.label, code)) for a in found]
    found = [a for a in found if a[2] >= 0]
    ll, n = answer_loglik([a[0] for a in found], [a[1] for a in found], [a[2] for a in found],
                          plan.crowd_skills, plan.crowd_default, len(rows), len(names))
    out = []
    for item, j in index.items():
        row = item_consensus(plan.rules[item], ll[j], int(n[j]), rows[item].answer_count, rows[item].needed,
                             names, plan.max_answers)
        if row is not None:
            out.append(row)
    return out


def apply_plan(conn, p: dict, plan: StepPlan, *, now: float) -> None:
    """The write phase, inside one write transaction: the model version and
    predictions, the crowd, auto-labels, consensus and the tasks' counters
    (through :mod:`assay.engine.ledger`). An item answered since the read is
    not given the plan's stale consensus: it is recomputed from its answers
    now (:func:`_recompute`); the plan's priorities apply to the tasks still
    open."""
    pid = p["id"]
    moved, answered = _changed_since(conn, pid, plan)
    _write_model(conn, pid, plan, now)
    _write_auto_labels(conn, pid, plan, answered, now)
    late = _recompute(conn, p, plan, moved)
    rows = [r for r in plan.consensus if r.task_id not in moved] + late
    consensus = []
    for r in rows:
        status = ledger.apply_step(conn, r.task_id, r.step) if r.step is not None else r.status
        consensus.append({"p": pid, "i": r.item_id, "label": r.label, "conf": r.confidence, "lp": r.log_post,
                          "n": r.answers, "status": status, "now": now})
    ledger.upsert_consensus(conn, consensus)
    plan.summary["recomputed"] = len(late)
    still_open = {r.id for r in conn.execute(text("SELECT id FROM tasks WHERE project_id = :p AND open_slots > 0"),
                                              {"p": pid})}
    ledger.set_targets(conn, pid, plan.targets)
    ledger.set_priorities(conn, pid, {t: v for t, v in plan.priorities.items() if t in still_open})
