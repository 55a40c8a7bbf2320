"""Teaching by nuance: teach annotators the edge cases they get wrong, and
measure whether it worked.

A project turns teaching on with ``teach_bar`` (:mod:`assay.engine.settings`).
Its teaching items are gold rows with ``purpose`` 'teach', each with a
``nuance`` (the edge case, e.g. "cilantro vs parsley") and an
``explanation`` (:mod:`assay.engine.gold`). They are shown openly as
practice, never as hidden checks or real work: their tasks are out of the
pool like every gold task and :func:`assay.engine.gold.claim` passes them over.

**Detection** (:func:`detect`, a background round, never on the hand-out
path): an annotator's skill on a nuance is their share of right first
answers on the project's hidden checks (gold with purpose 'check') tagged
with it — for a nuance named after two classes, "A vs B", also every check
labelled A or B (:func:`pair_of`: class pairs need no tags) — shrunk towards the crowd's share with a 90 % interval
(:func:`assay.quality.skills.rate_skills`, as the skill map shows it). When
the interval's upper end is below ``teach_bar`` after at least
:data:`MIN_CHECKS` such answers, and the project has teaching items for the
nuance, a need is opened (``teach_needs``, status 'open'). Because it runs
at rounds, not at the answer, the moment a need opens tells nobody which
answer was a check.

**Serving** (:func:`serve`, from the workspace's next task, like the exam):
while an annotator has an open need, each request for a task is, with
probability ``teach_rate`` (default 0.2), a teaching item of one of their
open nuances that they have not had, on a lease of the project's
``lease_seconds``. It costs one indexed read of ``teach_needs`` in a project
with teaching, nothing elsewhere. A teaching item handed out and not yet
answered is handed back first (unless the client excludes it).

**Answers** (:func:`answer`) go to ``teach_answers`` only — never to
``answers``: no consensus, no gold score, no export — through their own
endpoint, which takes nothing but a teaching item leased to the caller (a
real task or a hidden check gets the same refusal as an unknown one, and no
feedback). The reply is the feedback: right or wrong, the right label, the
explanation and the reference items (those that are teaching items with
their label; hidden checks are never shown, :func:`check_references`).
After ``teach_items`` (default 3) teaching answers on a nuance (or when its
teaching items run out) the need is 'taught'; once :data:`MEASURE_CHECKS`
more hidden checks on it were answered it is 'measured'.

**Measurement** (:func:`report`): per need, the share right on the nuance's
hidden checks answered before the first teaching item against those
answered after the last, each with a 90 % Wilson interval, and the change
with a 90 % interval (:func:`assay.quality.skills.difference_interval`);
pooled per nuance and for the project over the needs taught.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
from sqlalchemy import JSON, bindparam, text

from assay import audit as _audit
from assay import kinds
from assay.engine import gold as _gold
from assay.engine.settings import DEFAULT_TEACH_ITEMS, DEFAULT_TEACH_RATE
from assay.errors import Conflict, InvalidInput
from assay.store import engine

#: hidden-check answers on a nuance an annotator needs before a weakness on it may be declared
MIN_CHECKS = 3
#: hidden-check answers on a nuance after its teaching before the need counts as measured
MEASURE_CHECKS = 5

_OPEN_NEEDS_SQL = ("SELECT nuance FROM teach_needs WHERE project_id = :p AND annotator_id = :u AND status = 'open'"
                   " ORDER BY nuance")
_OPEN_NEEDS = text(_OPEN_NEEDS_SQL)
#: PostgreSQL: the learner's open needs locked, so that their asks in flight serve one teaching item at a time
_OPEN_NEEDS_LOCK = text(_OPEN_NEEDS_SQL + " FOR UPDATE")
_IN_HAND = text("SELECT ta.item_id, t.id AS task_id FROM teach_answers ta JOIN tasks t ON t.project_id = ta.project_id"
                " AND t.item_id = ta.item_id WHERE ta.project_id = :p AND ta.annotator_id = :u"
                " AND ta.answered_at IS NULL LIMIT 1")
_CANDIDATES = text(
    "SELECT g.item_id, t.id AS task_id FROM gold g JOIN tasks t ON t.project_id = g.project_id AND t.item_id = g.item_id"
    " WHERE g.project_id = :p AND g.purpose = 'teach' AND g.nuance = :n AND NOT EXISTS (SELECT 1 FROM teach_answers ta"
    " WHERE ta.project_id = :p AND ta.annotator_id = :u AND ta.item_id = g.item_id) ORDER BY g.item_id")
_SERVE = text("INSERT INTO teach_answers (project_id, annotator_id, item_id, nuance, served_at, expires_at)"
              " VALUES (:p, :u, :i, :n, :now, :exp) ON CONFLICT DO NOTHING")
_RELEASE = text("UPDATE teach_answers SET expires_at = :exp WHERE project_id = :p AND annotator_id = :u AND item_id = :i")
_TAUGHT = text("UPDATE teach_needs SET status = 'taught', taught_at = :now"
               " WHERE project_id = :p AND annotator_id = :u AND nuance = :n AND status = 'open'")
_HELD = text("SELECT nuance, expires_at, answered_at FROM teach_answers"
             " WHERE project_id = :p AND annotator_id = :u AND item_id = :i")
_TEACH_GOLD = text("SELECT label, nuance, explanation, reference_items FROM gold"
                   " WHERE project_id = :p AND item_id = :i AND purpose = 'teach'"
                   ).columns(label=JSON, reference_items=JSON)
_ANSWER = text("UPDATE teach_answers SET label = :label, correct = :ok, answered_at = :now"
               " WHERE project_id = :p AND annotator_id = :u AND item_id = :i AND answered_at IS NULL"
               ).bindparams(bindparam("label", type_=JSON))
_COUNT = text("UPDATE teach_needs SET taught = taught + 1, started_at = COALESCE(started_at, :now)"
              " WHERE project_id = :p AND annotator_id = :u AND nuance = :n AND status = 'open' RETURNING taught")
_REFERENCES = text(
    "SELECT i.id, i.kind, i.text, g.label, g.purpose, g.source FROM items i LEFT JOIN gold g ON g.project_id = :p"
    " AND g.item_id = i.id WHERE i.id IN :ids ORDER BY i.id").columns(label=JSON).bindparams(
    bindparam("ids", expanding=True))
_PRACTICE = text("SELECT annotator_id, nuance, correct FROM teach_answers"
                 " WHERE project_id = :p AND answered_at IS NOT NULL")
_ITEMS_PER_TAG = text("SELECT nuance, count(*) FROM gold WHERE project_id = :p AND purpose = 'teach' GROUP BY nuance")
_TEACH_REFS = text("SELECT item_id, reference_items FROM gold WHERE project_id = :p AND purpose = 'teach'"
                   ).columns(reference_items=JSON)
_PURPOSES = text("SELECT item_id, purpose FROM gold WHERE project_id = :p AND source = 'import' AND item_id IN :ids"
                 ).bindparams(bindparam("ids", expanding=True))
_TAGS = text("SELECT DISTINCT nuance FROM gold WHERE project_id = :p AND purpose = 'teach'")
_CHECK_ANSWERS = text(
    "SELECT f.annotator_id, g.nuance, f.label AS answer, g.label AS gold, f.created_at FROM first_answers f"
    " JOIN gold g ON g.project_id = f.project_id AND g.item_id = f.item_id"
    " WHERE g.project_id = :p AND g.purpose = 'check' AND g.nuance IN :tags"
).columns(answer=JSON, gold=JSON).bindparams(bindparam("tags", expanding=True))
#: every hidden check's first answers (for nuances named after two classes)
_ALL_CHECK_ANSWERS = text(
    "SELECT f.annotator_id, g.nuance, f.label AS answer, g.label AS gold, f.created_at FROM first_answers f"
    " JOIN gold g ON g.project_id = f.project_id AND g.item_id = f.item_id"
    " WHERE g.project_id = :p AND g.purpose = 'check' AND g.source = 'import'"
).columns(answer=JSON, gold=JSON)
_NEEDS = text("SELECT n.annotator_id, u.username, n.nuance, n.status, n.detected_at, n.checks, n.skill, n.skill_low,"
              " n.skill_high, n.taught, n.started_at, n.taught_at, n.measured_at FROM teach_needs n"
              " JOIN users u ON u.id = n.annotator_id WHERE n.project_id = :p ORDER BY n.annotator_id, n.nuance")
_OPEN = text("INSERT INTO teach_needs (project_id, annotator_id, nuance, status, detected_at, checks, skill, skill_low,"
             " skill_high, taught) VALUES (:p, :u, :n, 'open', :now, :checks, :skill, :lo, :hi, 0)"
             " ON CONFLICT DO NOTHING")
_MEASURED = text("UPDATE teach_needs SET status = 'measured', measured_at = :now"
                 " WHERE project_id = :p AND annotator_id = :u AND nuance = :n AND status = 'taught'")


def is_on(project: dict) -> bool:
    return project.get("teach_bar") is not None


def rate_of(project: dict) -> float:
    v = project.get("teach_rate")
    return DEFAULT_TEACH_RATE if v is None else v


def items_of(project: dict) -> int:
    v = project.get("teach_items")
    return DEFAULT_TEACH_ITEMS if v is None else v


# ---------------------------------------------------------------- serving


def open_needs(conn, project_id: int, user_id: int) -> list[str]:
    """The nuances ``user_id`` is being taught in the project: one indexed
    read (the whole cost of teaching for someone with nothing to learn)."""
    return [r.nuance for r in conn.execute(_OPEN_NEEDS, {"p": project_id, "u": user_id}).all()]


def serve(conn, project: dict, user_id: int, lease_seconds: float, exclude=(), now: float | None = None,
          rng: random.Random | None = None) -> tuple[int, int, float] | None:
    """A teaching item for ``user_id`` now, leased to them: ``(task id, item
    id, lease expiry)``, or None (then real work as usual)."""
    now = time.time() if now is None else now
    args = {"p": project["id"], "u": user_id}
    lock = _OPEN_NEEDS_LOCK if engine.dialect_of(conn) == "postgresql" else _OPEN_NEEDS
    needs = [r.nuance for r in conn.execute(lock, args).all()]
    if not needs:
        return None
    _gold.check_not_paused(conn, project, user_id)
    exp = now + lease_seconds
    held = conn.execute(_IN_HAND, args).first()
    if held is not None:  # one teaching item in hand at a time
        if held.task_id in exclude:
            return None
        conn.execute(_RELEASE, {**args, "i": held.item_id, "exp": exp})
        return held.task_id, held.item_id, exp
    rng = rng or _gold.draws()
    if rng.random() >= rate_of(project):
        return None
    for nuance in rng.sample(needs, len(needs)):
        found = conn.execute(_CANDIDATES, {**args, "n": nuance}).all()
        if not found:  # its teaching items ran out: taught as far as it goes
            conn.execute(_TAUGHT, {**args, "n": nuance, "now": now})
            continue
        pick = rng.choice(found)
        if conn.execute(_SERVE, {**args, "i": pick.item_id, "n": nuance, "now": now, "exp": exp}).rowcount != 1:
            return None  # the same ask in flight from another request served it first: real work this time
        return pick.task_id, pick.item_id, exp
    return None


def answer(conn, project: dict, user_id: int, task_id: int, item_id: int, label: Any,
           now: float | None = None) -> dict:
    """Take ``user_id``'s answer (validated by the caller) to the teaching item
    they hold and return the feedback. Anything else — a real task, a hidden
    check, an item never handed to them as teaching — is refused alike,
    with no feedback."""
    now = time.time() if now is None else now
    _gold.check_not_paused(conn, project, user_id)  # as for every answer
    args = {"p": project["id"], "u": user_id, "i": item_id}
    held = conn.execute(_HELD, args).first()
    g = conn.execute(_TEACH_GOLD, args).first() if held is not None else None
    if g is None:
        raise Conflict(f"task {task_id} is not a teaching item handed to you; teaching answers are taken only "
                       "for the teaching item tasks/next gave you")
    if held.answered_at is not None:
        raise Conflict(f"you already answered task {task_id}")
    if held.expires_at <= now:
        raise Conflict(f"your lease on task {task_id} expired; ask for the next task")
    ok = _gold.is_right(project, label, g.label)
    if conn.execute(_ANSWER, {**args, "label": label, "ok": ok, "now": now}).rowcount != 1:
        raise Conflict(f"you already answered task {task_id}")
    taught = conn.execute(_COUNT, {**args, "n": held.nuance, "now": now}).scalar()
    if taught is not None and taught >= items_of(project):
        conn.execute(_TAUGHT, {**args, "n": held.nuance, "now": now})
    return {"task_id": task_id, "item_id": item_id, "project_id": project["id"], "label": label,
            "created_at": now, "teach": {
                "correct": ok, "right_label": g.label, "nuance": g.nuance, "explanation": g.explanation,
                "reference_items": references(conn, project["id"], g.reference_items or [])}}


def references(conn, project_id: int, ids: list[int]) -> list[dict]:
    """The reference items of a teaching item as the label page shows them:
    id, kind, text (or a content URL) and, for teaching items, their label.
    Never a hidden check or an exam item (they are refused at import too)."""
    if not ids:
        return []
    out = []
    for r in conn.execute(_REFERENCES, {"p": project_id, "ids": list(ids)}):
        if r.source == "import" and r.purpose in ("check", "exam"):
            continue
        out.append({"id": r.id, "kind": r.kind, "text": r.text,
                    "content_url": f"/api/items/{r.id}/content" if r.kind == "image" or r.text is None else None,
                    "label": r.label if r.purpose == "teach" else None})
    return out


def check_references(conn, project_id: int, rows: dict[int, dict]) -> None:
    """Refuse gold rows (``{item id: nuance fields}``, about to be stored) that
    would show a hidden check or an exam item as a teaching item's
    reference, or make a referenced item one. InvalidInput; nothing stored."""
    refs = {x for extra in rows.values() if extra.get("purpose") == "teach" for x in extra.get("reference_items") or ()}
    hidden = {i for i, extra in rows.items() if extra.get("purpose", "check") in ("check", "exam")}
    for r in conn.execute(_TEACH_REFS, {"p": project_id}):
        if r.item_id not in rows:  # (a row of this import replaces it)
            refs.update(r.reference_items or ())
    known: dict[int, str] = {}
    if refs:
        known = dict(conn.execute(_PURPOSES, {"p": project_id, "ids": sorted(refs)}).all())
    bad = sorted(i for i in refs if (i in rows and i in hidden)
                 or (i not in rows and known.get(i) in ("check", "exam")))
    if bad:
        raise InvalidInput(f"{len(bad)} item(s) would be both a hidden check or exam item and a reference item of a "
                           f"teaching item (first: {bad[:5]}): references are shown to annotators; pick other items; "
                           "nothing was stored", items=bad[:20])


# ---------------------------------------------------------------- detection and measurement


def pair_of(project: dict, tag: str) -> tuple[str, str] | None:
    """The two classes a nuance named "A vs B" stands for, when A and B are
    classes of a single-label project; else None (a free-form tag)."""
    if not kinds.of(project).aggregatable:
        return None
    a, sep, b = tag.partition(" vs ")
    names = {c["name"] for c in project["schema"]["classes"]}
    pair = (a.strip(), b.strip())
    return pair if sep and pair[0] != pair[1] and set(pair) <= names else None


def _check_answers(conn, project: dict, tags) -> list:
    """First answers to the project's hidden checks on each of ``tags``:
    (annotator, nuance, right, answered at). A check is on a nuance when it
    is tagged with it, or, for a nuance named after two classes ("A vs B",
    :func:`pair_of`), when its label is A or B."""
    if not tags:
        return []
    def right(answer, gold):
        return _gold.is_right(project, answer, gold)

    pairs = {t: p for t in tags if (p := pair_of(project, t)) is not None}
    rows = (conn.execute(_ALL_CHECK_ANSWERS, {"p": project["id"]}) if pairs
            else conn.execute(_CHECK_ANSWERS, {"p": project["id"], "tags": sorted(tags)}))
    out = []
    for r in rows:
        ok = right(r.answer, r.gold)
        on = {r.nuance} & set(tags) | {t for t, pair in pairs.items() if r.gold in pair}
        out.extend((r.annotator_id, t, ok, r.created_at) for t in sorted(on))
    return out


def detect(conn, project: dict, now: float | None = None) -> dict:
    """One detection round (see the module notes): open a need for each
    annotator × nuance that has teaching items and whose skill on it is
    confidently below ``teach_bar``; mark 'taught' needs 'measured' once
    :data:`MEASURE_CHECKS` hidden checks on the nuance followed the teaching.
    Returns ``{"opened": [(user id, nuance)], "measured": [...]}``."""
    from assay.quality.skills import rate_interval, rate_skills

    out: dict[str, list] = {"opened": [], "measured": []}
    if not is_on(project):
        return out
    now = time.time() if now is None else now
    pid, bar = project["id"], project["teach_bar"]
    tags = {r.nuance for r in conn.execute(_TAGS, {"p": pid})}
    rows = _check_answers(conn, project, tags)
    needs = {(r.annotator_id, r.nuance): r for r in conn.execute(_NEEDS, {"p": pid})}
    for tag in sorted(tags):
        mine = [r for r in rows if r[1] == tag]
        users = sorted({r[0] for r in mine})
        if not users:
            continue
        code = {u: a for a, u in enumerate(users)}
        n, hits = np.zeros(len(users)), np.zeros(len(users))
        for u, _, ok, _ in mine:
            n[code[u]] += 1
            hits[code[u]] += ok
        mean, low, high = rate_skills(hits, n)
        own_high = rate_interval(hits, n)[2]
        for u in users:
            a = code[u]
            # confidently below on the shrunk interval and on their own answers alone (Wilson on the raw
            # counts): at a first round, with a few checks each, the pull towards the crowd can be strong
            # enough to flag someone who answered every check right when the crowd's share is below the bar
            if (u, tag) not in needs and n[a] >= MIN_CHECKS and high[a] < bar and own_high[a] < bar:
                conn.execute(_OPEN, {"p": pid, "u": u, "n": tag, "now": now, "checks": int(n[a]),
                                     "skill": float(mean[a]), "lo": float(low[a]), "hi": float(high[a])})
                out["opened"].append((u, tag))
                _audit.record(conn, "teach.need", target_kind="project", target_id=pid, target=project["name"],
                              details={"user_id": u, "nuance": tag, "checks": int(n[a]), "skill": float(mean[a]),
                                       "interval": [float(low[a]), float(high[a])], "bar": bar})
    for (u, tag), need in needs.items():
        if need.status == "taught" and need.taught_at is not None:
            after = sum(1 for r in rows if r[0] == u and r[1] == tag and r[3] > need.taught_at)
            if after >= MEASURE_CHECKS:
                conn.execute(_MEASURED, {"p": pid, "u": u, "n": tag, "now": now})
                out["measured"].append((u, tag))
                _audit.record(conn, "teach.measured", target_kind="project", target_id=pid, target=project["name"],
                              details={"user_id": u, "nuance": tag, "checks_after": after})
    return out


def _side(h: float, n: float) -> dict:
    """A share right with its 90 % interval (None without checks)."""
    from assay.quality.skills import rate_interval

    m, lo, hi = (float(x) for x in rate_interval(h, n))
    return {"checks": int(n), "right": int(h), "skill": None if n == 0 else m, "interval": None if n == 0 else [lo, hi]}


def _change(hb: float, nb: float, ha: float, na: float) -> dict:
    from assay.quality.skills import difference_interval

    d, lo, hi = (float(x) for x in difference_interval(hb, nb, ha, na))
    both = nb > 0 and na > 0
    return {"skill": d if both else None, "interval": [lo, hi] if both else None}


def _compare(hb: float, nb: float, hs: float, ns: float, ha: float, na: float) -> dict:
    """Before (all, and since detection only), after, and the change from each."""
    return {"before": _side(hb, nb), "since_detection": _side(hs, ns), "after": _side(ha, na),
            "change": _change(hb, nb, ha, na), "change_since_detection": _change(hs, ns, ha, na)}


def _practice(conn, pid: int) -> dict[tuple, list[int]]:
    """(annotator, nuance) -> [teaching answers, right]."""
    out: dict[tuple, list[int]] = {}
    for r in conn.execute(_PRACTICE, {"p": pid}):
        c = out.setdefault((r.annotator_id, r.nuance), [0, 0])
        c[0] += 1
        c[1] += int(bool(r.correct))
    return out


def report(conn, project: dict) -> dict:
    """Teaching's settings and, per need, the skill on its nuance's hidden
    checks before the first teaching item vs after the last one (each with a
    90 % interval, and the change with its interval) — "before" from all the
    checks before teaching, and from those answered after the detection only
    (``since_detection``: free of the selection that made the skill look low,
    so of regression to the mean, but fewer) — and the teaching answers
    given (and how many were right); pooled per nuance and for the project
    over the needs taught. Staff only."""
    pid = project["id"]
    needs = conn.execute(_NEEDS, {"p": pid}).all()
    rows = _check_answers(conn, project, {n.nuance for n in needs})
    practice = _practice(conn, pid)
    out_needs, pooled = [], {}
    for n in needs:
        mine = [r for r in rows if r[0] == n.annotator_id and r[1] == n.nuance]
        start = n.started_at if n.started_at is not None else float("inf")
        before = [r[2] for r in mine if r[3] < start]
        since = [r[2] for r in mine if n.detected_at <= r[3] < start]
        after = [r[2] for r in mine if n.taught_at is not None and r[3] > n.taught_at]
        counts = (sum(before), len(before), sum(since), len(since), sum(after), len(after))
        if n.taught_at is not None:
            for key in (n.nuance, None):
                acc = pooled.setdefault(key, [0] * 7)
                acc[:6] = [x + y for x, y in zip(acc[:6], counts)]
                acc[6] += 1
        given, right = practice.get((n.annotator_id, n.nuance), (0, 0))
        out_needs.append({
            "user_id": n.annotator_id, "username": n.username, "nuance": n.nuance, "status": n.status,
            "detected_at": n.detected_at, "detected": {"checks": n.checks, "skill": n.skill,
                                                       "interval": [n.skill_low, n.skill_high]},
            "taught": n.taught, "practice_right": right if given else None, "started_at": n.started_at,
            "taught_at": n.taught_at, "measured_at": n.measured_at, **_compare(*counts)})
    nuances = [{"nuance": k, "needs": v[6], **_compare(*v[:6])}
               for k, v in sorted(pooled.items(), key=lambda kv: str(kv[0])) if k is not None]
    items = dict(conn.execute(_ITEMS_PER_TAG, {"p": pid}).all())
    total = pooled.get(None)
    return {"teach_bar": project.get("teach_bar"), "teach_rate": rate_of(project), "teach_items": items_of(project),
            "min_checks": MIN_CHECKS, "measure_checks": MEASURE_CHECKS, "teaching_items": items,
            "needs": out_needs, "nuances": nuances,
            "project": None if total is None else {"needs": total[6], **_compare(*total[:6])}}
