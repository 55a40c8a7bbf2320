"""Adaptive redundancy: ask for another answer only while an item is unsure.

A project with ``target_confidence`` set starts every item at ``overlap``
answers. After each answer (:func:`after_answer`, inside the answer's own
transaction) the item's posterior is updated incrementally from the
annotator's confusion matrix of the last re-fit (:mod:`assay.quality.online`)
and stored in ``item_consensus``. Then:

* confidence >= target: resolved; open slots nobody holds are withdrawn
  (``needed`` drops to answers + live leases);
* below target with ``max_answers`` answers: status ``review`` (the reviewer
  queue);
* below target, but settled: the answers still allowed (``max_answers`` minus
  those in) could not plausibly change the label — with probability at most
  ``1 - target``, for answers from annotators drawn like the crowd's answers,
  by the last re-fit's table (:func:`assay.quality.online.settle_margins`):
  resolved, as above;
* below target, every planned answer in, room left: ``needed`` and
  ``open_slots`` go up by one, so the hand-out gives the item to one more
  annotator (its ``NOT EXISTS`` on answers keeps everyone who answered away).

:func:`refit` re-estimates every annotator's confusion matrix with
Dawid-Skene over all answers (outside any write transaction), stores them,
then rewrites the posteriors and re-applies the rules above in short write
transactions of :data:`REWRITE_CHUNK` items each, so that answers keep
flowing while a large project is rewritten (on SQLite one writer at a time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, bindparam, text

from assay import kinds
from assay.config import SCHEDULE
from assay.engine import ledger

# assay.quality (pandas) is imported on first use: ``import assay`` stays light.

#: what the re-fit's settle table bounds (``online.settle_margins``): "flip",
#: the chance that the answers still allowed turn the label (the default), or
#: "gain", the accuracy they could add to it (stops sooner; an option, see
#: docs/quality.md "Cost of labels")
STOP_CRITERION = "flip"

_SKILL = text(
    "SELECT confusion FROM annotator_skills WHERE project_id = :p AND annotator_id = :u"
).columns(confusion=JSON)
_MODEL = text(
    "SELECT prior, default_confusion FROM quality_models WHERE project_id = :p"
).columns(prior=JSON, default_confusion=JSON)
_CONSENSUS = text(
    "SELECT log_post, answers FROM item_consensus WHERE project_id = :p AND item_id = :i"
).columns(log_post=JSON)
_COUNTS = text("SELECT needed, answer_count, open_slots, target FROM tasks WHERE id = :t")
# the re-fit's reads and writes
_ANSWERS = text("SELECT item_id, annotator_id, label FROM answers WHERE project_id = :p ORDER BY id"
                ).columns(label=JSON)
_GOLD = text("SELECT item_id, label, source FROM gold WHERE project_id = :p").columns(label=JSON)
_PREDICTIONS = text("SELECT item_id, proba FROM predictions WHERE project_id = :p").columns(proba=JSON)
_DELETE_MODEL = text("DELETE FROM quality_models WHERE project_id = :p")
_INSERT_MODEL = text(
    "INSERT INTO quality_models (project_id, method, prior, default_confusion, answers, fitted_at) "
    "VALUES (:p, 'ds', :prior, :dc, :n, :now)").bindparams(bindparam("prior", type_=JSON), bindparam("dc", type_=JSON))
_ANSWERED_TASKS = text(
    "SELECT id, item_id, needed, answer_count, open_slots, target FROM tasks "
    "WHERE project_id = :p AND item_id >= :lo AND item_id < :hi AND answer_count > 0 AND NOT is_gold")
_TASK_ANSWERS = text("SELECT annotator_id, label FROM answers WHERE task_id = :t").columns(label=JSON)

#: items per write transaction when a re-fit rewrites the posteriors: the
#: write lock is held for one chunk at a time (a few milliseconds), not for
#: the whole project
REWRITE_CHUNK = 2000
_NO_ID = 2 ** 62  # above every item id: the last chunk's open end


def class_names(project: dict) -> list[str]:
    return [c["name"] for c in project["schema"]["classes"]]


def _model_parts(default_confusion) -> tuple[list | None, list | None]:
    """``quality_models.default_confusion`` -> (confusion, settle table).

    A re-fit stores ``{"confusion": K x K, "settle": table}``; rows written
    before the settle rule hold the bare K x K list (no table: the posterior
    rule alone decides until the next re-fit).
    """
    if default_confusion is None:
        return None, None
    if isinstance(default_confusion, dict):
        return default_confusion.get("confusion"), default_confusion.get("settle")
    return default_confusion, None


def decide(lp, confidence: float, answers: int, needed: int, target: float, max_answers: int, table) -> str:
    from assay.quality import online

    settled = (confidence < target and answers < max_answers
               and online.settled(lp, max_answers - answers, table))
    return online.next_step(confidence, answers, needed, target=target, max_answers=max_answers, settled=settled)


def after_answer(conn, project: dict, task_id: int, item_id: int, user_id: int, label: Any,
                 now: float | None = None, *, known: Any = None) -> dict:
    """Update the item's posterior with one new answer and decide whether it
    needs another. Runs on the answer's transaction (``conn``), after the
    answer was counted: the task row is already locked by that update, so
    concurrent answers to the same item take turns here.

    ``known``: the item's label when it is known (gold, a reviewer's
    decision): the same work is done (gold must cost what real work costs)
    but the item stays resolved at that label.

    Returns ``{"label", "confidence", "status", "step"}``. Kinds whose
    answers merge (spans, boxes, polygons) go to :mod:`assay.engine.merged_redundancy`.
    """
    from assay.quality import online

    if not kinds.of(project).aggregatable:
        from assay.engine import merged_redundancy

        return merged_redundancy.after_answer(conn, project, task_id, item_id, now, known=known)
    now = time.time() if now is None else now
    names = class_names(project)
    k = len(names)
    code = names.index(label)
    pid = project["id"]
    model = conn.execute(_MODEL, {"p": pid}).first()
    default, table = _model_parts(model.default_confusion if model is not None else None)
    skill = conn.execute(_SKILL, {"p": pid, "u": user_id}).first()
    if skill is not None:
        conf = skill.confusion
    elif default is not None:
        conf = default
    else:
        conf = online.default_confusion(k)
    row = conn.execute(_CONSENSUS, {"p": pid, "i": item_id}).first()
    lp = row.log_post if row is not None else online.initial_log_post(model.prior if model else None, k)
    lp = online.update(lp, conf, code)
    best, confidence = online.decision(lp)
    t = conn.execute(_COUNTS, {"t": task_id}).one()
    # a task's own target (the ML loop's validation share and audits) replaces
    # the project's; the settle table was built for the project's, so not then
    target = project["target_confidence"] if t.target is None or project["target_confidence"] is None else t.target
    step = decide(lp, confidence, t.answer_count, t.needed, target, project["max_answers"],
                  table if t.target is None else None)
    if known is not None and known in names:
        lp = [0.0 if c == known else -1e9 for c in names]
        best, confidence, step = names.index(known), 1.0, "resolved"
    status = ledger.apply_step(conn, task_id, step)
    ledger.upsert_consensus(conn, {"p": pid, "i": item_id, "label": names[best], "conf": confidence, "lp": lp,
                                   "n": t.answer_count, "status": status, "now": now})
    return {"label": names[best], "confidence": confidence, "status": status, "step": step}


def store_skills(conn, project_id: int, rows: list[dict]) -> None:
    """Replace the project's annotator skills: rows of ``{"u": annotator id,
    "c": K x K confusion, "a": accuracy or None, "n": answers}`` (shared by
    the re-fit and the ML loop)."""
    conn.execute(text("DELETE FROM annotator_skills WHERE project_id = :p"), {"p": project_id})
    if rows:
        conn.execute(text(
            "INSERT INTO annotator_skills (project_id, annotator_id, confusion, accuracy, answers) "
            "VALUES (:p, :u, :c, :a, :n)").bindparams(bindparam("c", type_=JSON)),
            [{"p": project_id, **r} for r in rows])


def model_priors(predicted: dict, item_ids, k: int):
    """(len(item_ids), k) model probabilities per item from ``{item_id:
    proba}`` (rows renormalised; NaN where there is none or it is not a
    distribution), or None when there are no predictions at all."""
    import numpy as np

    if not predicted:
        return None
    out = np.full((len(item_ids), k), np.nan)
    for j, i in enumerate(item_ids):
        pr = predicted.get(int(i))
        if pr is not None and len(pr) == k:
            out[j] = pr
    ok = np.isfinite(out).all(axis=1) & (out >= 0).all(axis=1) & (out.sum(axis=1) > 0)
    out[~ok] = np.nan
    out[ok] /= out[ok].sum(axis=1, keepdims=True)
    return out


def store_crowd(conn, project_id: int, prior, default) -> None:
    """Replace the stored crowd model's class prior and default confusion
    (what an annotator without skills of their own is taken to be), keeping
    the re-fit's settle table and bookkeeping; the ML loop writes its
    model-informed estimates here. Nothing to replace before a first re-fit."""
    row = conn.execute(text("SELECT default_confusion FROM quality_models WHERE project_id = :p")
                       .columns(default_confusion=JSON), {"p": project_id}).first()
    if row is None:
        return
    dc = row.default_confusion
    dc = {**dc, "confusion": default} if isinstance(dc, dict) else default
    conn.execute(text("UPDATE quality_models SET prior = :prior, default_confusion = :dc WHERE project_id = :p"
                      ).bindparams(bindparam("prior", type_=JSON), bindparam("dc", type_=JSON)),
                 {"p": project_id, "prior": [float(x) for x in prior], "dc": dc})


@dataclass
class CrowdFit:
    """A re-fit's estimates, before they are written. Arrays over items follow
    ``items`` (the answered items, sorted), over annotators ``users``."""

    items: Any  # (N,) item ids
    fitted_n: Any  # (N,) answers per item the fit saw
    users: Any  # (A,) the annotators skills were learned for
    per_worker: Any  # (A,) their answers the fit used
    confusion: Any  # (A, K, K)
    accuracy: Any  # (A,) the fit's accuracy per annotator (NaN: unknown)
    skills: dict  # annotator id -> K x K confusion (lists)
    default: list  # K x K: an annotator without skills of their own
    prior: list  # (K,) class prior
    log_proba: Any  # (N, K) each item's log posterior

    def index(self) -> dict[int, int]:
        return {int(i): j for j, i in enumerate(self.items)}


def fit_crowd(item_ids, user_ids, labels, code_of: dict, gold: dict, predicted: dict, *,
              every_item: bool = False) -> CrowdFit:
    """Dawid-Skene over the answers ``(item_ids, user_ids, labels)`` (numpy
    arrays; labels as class codes of ``code_of``, class name -> code);
    ``gold``: item id -> its known label (clamped in the fit); ``predicted``:
    item id -> the in-loop model's probabilities (the item's prior);
    ``every_item``: learn skills from every answered item, not only from
    those with two or more answers (a routed project: see below).

    With predictions this is :func:`assay.quality.crowd_with_model`'s fit (the
    same skills and posteriors, measured to 1e-15), which it does not call:
    without predictions a plain project needs full Dawid-Skene (no one-coin
    shrinkage) and the fallback to every answer, and the stored accuracy is
    Dawid-Skene's (its answers' posterior), not the prior-weighted diagonal."""
    import numpy as np

    from assay.quality import DawidSkene, online

    k = len(code_of)
    items_u, icode = np.unique(item_ids, return_inverse=True)
    fitted_n = np.bincount(icode, minlength=len(items_u))
    # Skills are learned from items with two or more answers only: under
    # adaptive redundancy many items stop at one answer, and such an item
    # only "agrees" with the one annotator who answered it, which would
    # inflate that annotator's estimated accuracy (and so stop more items
    # after one answer). Their posteriors still use the fitted skills.
    #
    # In an ML project the model's prediction is each item's prior (as in the
    # ML loop's own fit, :func:`assay.quality.crowd_with_model`): the prior, not
    # the lone answer, says what such an item's class likely is, so those
    # items count too, and the confusion rows are shrunk towards each
    # annotator's own accuracy. Answers alone on the few items answered twice
    # can collapse onto one class when there are many classes.
    #
    # Under skill-aware routing (``every_item``) the items with two or more
    # answers are a chosen few — the ones whose first answers left them
    # unsure — and a fit on them alone learns a class prior from the
    # contested items only: in the arrival-model replica of d_product (seed
    # 5) one re-fit put the prior at 0.023 / 0.977 for a 0.895 / 0.105 set and
    # every later item closed on the wrong class (-5.5 points). Fitting on
    # every answered item removed this in all ten seeds measured
    # (benchmarks/quality/bench_routing.py --fit-all; docs/quality.md).
    item_prior = model_priors(predicted, items_u, k)
    has_prior = np.isfinite(item_prior).all(axis=1) if item_prior is not None else np.zeros(len(items_u), bool)
    multi = (fitted_n[icode] >= 2) | has_prior[icode]
    if every_item:
        multi = np.ones_like(multi)
    if not multi.any():
        multi = np.ones_like(multi)
    users_u, ucode = np.unique(user_ids[multi], return_inverse=True)
    m_items, m_icode = np.unique(icode[multi], return_inverse=True)
    gold_codes = np.array([code_of.get(gold.get(int(items_u[j])), -1) for j in m_items], dtype=np.intp)
    gold_arg = gold_codes if (gold_codes >= 0).any() else None
    if has_prior.any():
        model = DawidSkene(prior="one-coin").fit(m_icode, ucode, labels[multi], n_classes=k,
                                                 item_prior=item_prior[m_items], gold=gold_arg)
    else:
        model = DawidSkene().fit(m_icode, ucode, labels[multi], n_classes=k, gold=gold_arg)
    confusion = np.asarray(model.confusion_)
    per_worker = np.bincount(ucode, minlength=len(users_u))
    prior = [float(x) for x in model.prior_]
    skills = {int(u): confusion[j].tolist() for j, u in enumerate(users_u)}
    dlist = online.crowd_confusion(confusion, per_worker).tolist()
    log_proba = np.empty((len(items_u), k))
    log_proba[m_items] = np.log(np.maximum(model.proba_, online.TINY))
    lp0 = online.initial_log_post(prior, k)
    for j in np.flatnonzero(~np.isin(np.arange(len(items_u)), m_items)):
        log_proba[j] = lp0
    single = ~multi  # items with one answer and no prior: the prior times that answer's likelihood
    if single.any():
        known_user = np.isin(user_ids[single], users_u)
        conf_of = np.concatenate([confusion, np.asarray(dlist, dtype=float)[None]])  # last row: the crowd's
        who = np.where(known_user, np.searchsorted(users_u, user_ids[single]), len(users_u))
        lik = conf_of[who, :, labels[single]]  # (n, K): P(answer | true class)
        np.add.at(log_proba, icode[single], np.log(np.maximum(lik, online.TINY)))
    return CrowdFit(items_u, fitted_n, users_u, per_worker, confusion, model.accuracy_, skills, dlist, prior,
                    log_proba)


def _close_table(fit: CrowdFit, project: dict, settle) -> dict | None:
    """A routed adaptive project's close table (:func:`assay.quality.routing.close_table`:
    the answers an item still needs under this project's stop rule — its
    ``settle`` table too —, by answers so far and posterior margin), built
    from the fit's skills; None for any other project."""
    from assay.quality import routing

    target = project.get("target_confidence")
    if project.get("routing") != "skill" or target is None or project["max_answers"] <= 1:
        return None
    table = routing.close_table(fit.confusion, fit.per_worker, target, project["max_answers"], settle=settle)
    return table.as_dict()


def model_close_table(default_confusion):
    """The close table a re-fit stored with the model (``quality_models.default_confusion``),
    as a :class:`assay.quality.routing.CloseTable`, or None."""
    if not isinstance(default_confusion, dict) or default_confusion.get("close") is None:
        return None
    from assay.quality.routing import CloseTable

    return CloseTable.from_dict(default_confusion["close"])


def _settle_table(fit: CrowdFit, k: int, target: float | None, max_answers: int, criterion: str):
    """The settle table for the project's target (None where the rule does not apply)."""
    from assay.quality import online

    # Binary projects only, for now: with more classes the table (built from
    # the crowd's smoothed confusions) called items settled after a single
    # answer from a sharply-estimated annotator — on a 10-class crowd it
    # stopped most items at one answer (69 % accurate, against 83 % for a
    # 3-vote majority). Measured and trusted on binary crowds only.
    if target is None or k != 2 or max_answers <= 1:
        return None
    # for every (label, rival, answers left): the margin from which the
    # answers still allowed turn the label with probability <= 1 - target
    return online.settle_margins(fit.confusion, fit.per_worker, (1.0 - target) / (k - 1),
                                 min(online.SETTLE_MAX_LEFT, max_answers - 1), criterion=criterion)


def _store_fit(conn, pid: int, fit: CrowdFit, stored_default, answers: int, now: float) -> None:
    import numpy as np

    store_skills(conn, pid, [{"u": int(u), "c": fit.skills[int(u)],
                              "a": None if np.isnan(fit.accuracy[j]) else float(fit.accuracy[j]),
                              "n": int(fit.per_worker[j])} for j, u in enumerate(fit.users)])
    conn.execute(_DELETE_MODEL, {"p": pid})
    conn.execute(_INSERT_MODEL, {"p": pid, "prior": fit.prior, "dc": stored_default, "n": answers, "now": now})


def _late_answers(conn, changed: list, code_of: dict) -> dict[int, list]:
    """item id -> [(annotator, class code)] of the tasks ``changed`` (their answers
    changed since the fit read them), read on the write transaction ``conn``."""
    return {t.item_id: [(r.annotator_id, code_of[r.label]) for r in conn.execute(_TASK_ANSWERS, {"t": t.id}).all()]
            for t in changed}


def _item_log_post(fit: CrowdFit, k: int, item_id: int, late: dict, late_prior: dict) -> list:
    """The log posterior of an item whose answers came in (or went) after the fit read them:
    recomputed from its answers with the fit's skills."""
    import numpy as np

    from assay.quality import online

    pr = late_prior.get(item_id)
    lp = (np.log(np.maximum(pr, online.TINY)).tolist() if pr is not None and np.isfinite(pr).all()
          else online.initial_log_post(fit.prior, k))
    for u, lab in late[item_id]:
        lp = online.update(lp, fit.skills.get(u, fit.default), lab)
    return lp


@dataclass
class _Decided:
    """The fit's decision for every fitted item, computed once outside the write transactions."""

    index: dict  # item id -> row of the fit
    best: list  # (N,) class code
    conf: list  # (N,) its probability
    lp: list  # (N,) log posterior (lists, ready to store)

    @classmethod
    def of(cls, fit: CrowdFit) -> _Decided:
        import numpy as np

        lp = np.asarray(fit.log_proba, dtype=float)
        if not len(lp):
            return cls({}, [], [], [])
        best = lp.argmax(axis=1)  # the lowest code on ties, as online.decision
        conf = 1.0 / np.exp(lp - lp[np.arange(len(lp)), best][:, None]).sum(axis=1)
        return cls(fit.index(), best.tolist(), conf.tolist(), lp.tolist())


def _rewrite_chunk(conn, project: dict, fit: CrowdFit, decided: _Decided, known: dict, predicted: dict,
                   table, now: float, lo: int, hi: int, counts: dict) -> list:
    """The posteriors and statuses of the answered items with ids in ``[lo, hi)``
    under the new fit, on the write transaction ``conn`` (the ledger steps are
    applied there); returns their consensus rows and adds to ``counts``."""
    from assay.quality import online

    names = class_names(project)
    k, pid = len(names), project["id"]
    code_of = {n: i for i, n in enumerate(names)}
    target, max_answers = project["target_confidence"], project["max_answers"]
    index = decided.index
    # gold tasks are hidden questions, not items to settle
    tasks_now = conn.execute(_ANSWERED_TASKS, {"p": pid, "lo": lo, "hi": hi}).all()
    changed = [t for t in tasks_now if t.item_id not in index or fit.fitted_n[index[t.item_id]] != t.answer_count]
    late = _late_answers(conn, changed, code_of)
    late_rows = model_priors(predicted, list(late), k)
    late_prior = dict(zip(list(late), late_rows)) if late_rows is not None else {}
    upserts = []
    for t in tasks_now:
        item_id = t.item_id
        row = {"p": pid, "i": item_id, "n": t.answer_count, "now": now}
        if item_id in known and known[item_id][0] in code_of:  # a reviewer's decision is final
            lab = code_of[known[item_id][0]]
            counts["resolved"] += 1
            upserts.append({**row, "label": names[lab], "conf": 1.0,
                            "lp": [0.0 if c == lab else -1e9 for c in range(k)], "status": "resolved"})
            continue
        if item_id in late:
            lp = _item_log_post(fit, k, item_id, late, late_prior)
            best, conf = online.decision(lp)
        else:
            j = index[item_id]
            lp, best, conf = decided.lp[j], decided.best[j], decided.conf[j]
        status = "open"
        if target is not None:
            own = t.target is not None  # a task's own target: no settle table (built for the project's)
            step = decide(lp, conf, t.answer_count, t.needed, t.target if own else target, max_answers,
                          None if own else table)
            status = ledger.apply_step(conn, t.id, step)
            counts["more"] += step == "more"
        counts[status] += 1
        upserts.append({**row, "label": names[best], "conf": conf, "lp": lp, "status": status})
    return upserts


def _chunk_bounds(item_ids, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` item id ranges of about ``size`` fitted items each, covering
    every id (items first answered after the fit fall in one of them)."""
    ids = [int(i) for i in item_ids[::size]]
    return list(zip([0] + ids[1:], ids[1:] + [_NO_ID])) if ids else [(0, _NO_ID)]


def refit(db, project: dict, *, now: float | None = None, criterion: str | None = None) -> dict:
    """Re-estimate annotator skills with Dawid-Skene over all the project's
    answers and rewrite every item's posterior and status with them.

    Also builds the settle table for the project's target and ``max_answers``
    (:func:`assay.quality.online.settle_margins`, stored with the model as
    ``default_confusion = {"confusion": ..., "settle": ...}``), which
    :func:`after_answer` consults to stop an item whose remaining allowed
    answers could not plausibly change its label.

    ``criterion`` (default :data:`STOP_CRITERION`) says what the settle table
    bounds: ``"flip"`` or ``"gain"`` (:func:`assay.quality.online.settle_margins`).

    The fit runs outside any transaction; the skills are stored in one
    transaction, then the items are rewritten in chunks of
    :data:`REWRITE_CHUNK` (one transaction each, on the fast lane: a re-fit
    writes one row per answered item). Items that got answers since the fit
    read them are recomputed from their answers with the new skills, in the
    chunk's transaction, so no answer is lost; an answer that lands between
    the skills and its item's chunk is counted the same way.
    """
    import numpy as np

    if not kinds.of(project).aggregatable:  # spans, boxes, polygons: the kind's merged result
        from assay.engine import merged_redundancy

        return merged_redundancy.refit(db, project, now=now)
    now = time.time() if now is None else now
    names = class_names(project)
    k, pid = len(names), project["id"]
    code_of = {n: i for i, n in enumerate(names)}
    with db.fast_read() as conn:  # one snapshot; the fast lane: a row per answer
        rows = conn.execute(_ANSWERS, {"p": pid}).all()
        # known labels (gold questions, reviewers' decisions) are clamped in the fit
        known = {r.item_id: (r.label, r.source) for r in conn.execute(_GOLD, {"p": pid}).all()}
        # the in-loop model's predictions (ML projects): each item's prior
        predicted = {r.item_id: r.proba for r in conn.execute(_PREDICTIONS, {"p": pid}).all()}
    if not rows:
        return {"answers": 0, "annotators": 0, "items": 0}
    fit = fit_crowd(np.fromiter((r.item_id for r in rows), dtype=np.int64, count=len(rows)),
                    np.fromiter((r.annotator_id for r in rows), dtype=np.int64, count=len(rows)),
                    np.fromiter((code_of[r.label] for r in rows), dtype=np.intp, count=len(rows)), code_of,
                    {i: lab for i, (lab, _) in known.items()}, predicted,
                    every_item=project.get("routing") == "skill")
    criterion = criterion or STOP_CRITERION
    table = _settle_table(fit, k, project["target_confidence"], project["max_answers"], criterion)
    stored_default = {"confusion": fit.default, "settle": table, "criterion": criterion} if table else fit.default
    close = _close_table(fit, project, table)
    if close is not None:  # a routed project: what each item still needs, for the routing rule
        stored_default = {**(stored_default if isinstance(stored_default, dict) else {"confusion": fit.default}),
                          "settle": table, "close": close}
    decided = _Decided.of(fit)
    with db.write() as conn:
        _store_fit(conn, pid, fit, stored_default, len(rows), now)
    counts, items = {"resolved": 0, "review": 0, "open": 0, "more": 0}, 0
    for lo, hi in _chunk_bounds(fit.items, REWRITE_CHUNK):
        with db.fast_write() as conn:
            upserts = _rewrite_chunk(conn, project, fit, decided, known, predicted, table, now, lo, hi, counts)
            ledger.upsert_consensus(conn, upserts)
        items += len(upserts)
    return {"answers": len(rows), "annotators": len(fit.users), "items": items,
            "resolved": counts["resolved"], "review": counts["review"], "open": counts["open"],
            "reopened": counts["more"]}


def consensus(db, project_id: int, *, status: str | None = None, after: int | None = None,
              limit: int = 100) -> tuple[list[dict], int | None]:
    """A keyset page of the items' consensus rows (``status='review'``: the reviewer queue)."""
    limit = max(1, min(int(limit), 1000))
    sql = ("SELECT item_id, label, confidence, answers, status, updated_at FROM item_consensus "
           "WHERE project_id = :p AND item_id > :after")
    args: dict = {"p": project_id, "after": after or 0, "n": limit}
    if status is not None:
        sql += " AND status = :s"
        args["s"] = status
    q = text(sql + " ORDER BY item_id LIMIT :n").columns(label=JSON)
    with db.read() as conn:
        rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q, args)]
    return rows, (rows[-1]["item_id"] if len(rows) == limit else None)


# A fixed-overlap project with one answer per item and nothing known (no gold,
# no reviewer's decision, no model prediction) has nothing to learn skills
# from: every item's only answer agrees with itself. It is not fitted (its
# final labels are its answers), so the re-fitter does not spend a pass over
# its answers, and holds no lock, for nothing.
_FITTED_AND_ANSWERS = text(
    "SELECT p.id, p.target_confidence IS NULL AS fixed, q.answers AS fitted, "
    "(SELECT count(*) FROM answers a WHERE a.project_id = p.id) AS n "
    "FROM projects p LEFT JOIN quality_models q ON q.project_id = p.id "
    "WHERE (p.schema_kind IN :kinds AND (p.target_confidence IS NOT NULL OR p.overlap >= 2 "
    "OR EXISTS (SELECT 1 FROM gold g WHERE g.project_id = p.id) "
    "OR EXISTS (SELECT 1 FROM predictions pr WHERE pr.project_id = p.id))) "
    "OR (p.schema_kind IN :merging AND p.target_confidence IS NOT NULL) ORDER BY p.id"
).bindparams(bindparam("kinds", expanding=True), bindparam("merging", expanding=True))


def refits_due(db, aggregatable: list[str], *, growth: float, min_new: int,
               growth_fixed: float | None = None, merging: list[str] = ()) -> list[int]:
    """Projects of an ``aggregatable`` kind whose answers grew by ``growth``
    and at least ``min_new`` answers since their last re-fit (or that have
    ``min_new`` answers and were never fitted), in id order.

    A fixed-overlap project grows by ``growth_fixed`` (default
    :attr:`assay.config.Schedule.refit_growth_fixed`) instead: its fit shapes
    only its final labels, and the answers after the fit are scored with the
    stored skills anyway (:mod:`assay.engine.resolver`), while an adaptive
    project's skills decide who answers next. A fixed-overlap project needs
    something to learn from: overlap of two or more, gold or reviewers'
    decisions, or the model's predictions. Projects of a ``merging`` kind
    (spans, boxes, polygons) are due only with adaptive redundancy on: their
    re-fit rewrites the merged confidences that decide the next hand-out."""
    growth_fixed = SCHEDULE.refit_growth_fixed if growth_fixed is None else growth_fixed
    with db.read() as conn:
        rows = conn.execute(_FITTED_AND_ANSWERS, {"kinds": aggregatable, "merging": list(merging)}).all()
    due = []
    for r in rows:
        fitted = r.fitted or 0
        if r.n - fitted >= max(min_new, (growth_fixed if r.fixed else growth) * fitted):
            due.append(r.id)
    return due
