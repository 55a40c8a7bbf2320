"""Reports on a project, read-only: how good the labels are
(:func:`quality_report`), each annotator's skill per class and the class
pairs they confuse (:func:`skill_map`), how answers treated the model's pre-labels
(:func:`suggestion_stats`), the in-loop model's learning curve
(:func:`model_report`), the counts an annotator's screen polls
(:func:`count_progress`, :func:`annotator_progress`) and pages of answers
(:func:`answers_page`).

Functions here take the :class:`~assay.store.Database` (or a connection) and
the project dict :func:`assay.engine.projects.load` builds, never the
workspace; the workspace resolves the project, checks who may ask and keeps
the progress cache. Nothing is re-derived here that has an owner: final
labels come from :mod:`assay.engine.resolver`, gold records from
:mod:`assay.engine.gold`, the fit's numbers from :mod:`assay.quality`. Long
tables are read in keyset pages, each on its own short read transaction.
"""

from __future__ import annotations

import json

import time

import numpy as np
from sqlalchemy import JSON, select, text

from assay import kinds
from assay.engine import gold as _gold
from assay.engine import resolver as _resolver
from assay.engine import skillmap as _skillmap
from assay.engine.skillmap import SKILL_TRUTH_CONFIDENCE
from assay.errors import InvalidInput
from assay.store.schema import answers, users

# ---------------------------------------------------------------- statements

_ANSWER_PAGE = text(
    "SELECT id, item_id, annotator_id, label FROM answers WHERE project_id = :p AND id > :after "
    "ORDER BY id LIMIT :n"
).columns(label=JSON)
_FIT = text("SELECT method, answers, fitted_at FROM quality_models WHERE project_id = :p")
_SKILLS = text(
    "SELECT annotator_id, confusion, accuracy, answers FROM annotator_skills WHERE project_id = :p"
).columns(confusion=JSON)
_STATUS_COUNTS = text("SELECT status, count(*) AS n FROM item_consensus WHERE project_id = :p GROUP BY status")
_KNOWN = text("SELECT item_id, label FROM gold WHERE project_id = :p").columns(label=JSON)
_CONFIDENCE_PAGE = text(
    "SELECT item_id, confidence FROM item_consensus WHERE project_id = :p "
    "AND item_id > :after ORDER BY item_id LIMIT :n"
)
_HAS_MODEL = text("SELECT 1 FROM ml_models WHERE project_id = :p LIMIT 1")
_PAUSES = text(
    "SELECT count(*) AS n, sum(CASE WHEN paused THEN 1 ELSE 0 END) AS paused, max(paused_at) AS paused_at,"
    " max(lifted_at) AS lifted_at FROM gold_stats WHERE project_id = :p"
)

# Answers shown a pre-label, with the item's truth where it is known (gold or
# a review, else a resolved consensus).
_SUGGESTED_PAGE = text(
    "SELECT a.id, a.label, a.suggestion, a.suggestion_accepted, g.label AS gold_label, "
    "c.label AS cons_label FROM answers a "
    "LEFT JOIN gold g ON g.project_id = a.project_id AND g.item_id = a.item_id "
    "LEFT JOIN item_consensus c ON c.project_id = a.project_id AND c.item_id = a.item_id "
    "AND c.status = 'resolved' "
    "WHERE a.project_id = :p AND a.suggestion IS NOT NULL AND a.id > :after ORDER BY a.id LIMIT :n"
).columns(label=JSON, suggestion=JSON, gold_label=JSON, cons_label=JSON)

_MODEL_VERSIONS = text(
    "SELECT version, trained_at, n_train, temperature, oof_accuracy, threshold, auto_state, metrics "
    "FROM ml_models WHERE project_id = :p ORDER BY version"
).columns(metrics=JSON)
_COUNT_PREDICTIONS = text("SELECT count(*) FROM predictions WHERE project_id = :p")
_COUNT_AUTO_LABELS = text("SELECT count(*) FROM auto_labels WHERE project_id = :p")

_TASK_TOTALS = text(
    "SELECT count(*) AS tasks, "
    "COALESCE(SUM(CASE WHEN answer_count >= needed THEN 1 ELSE 0 END), 0) AS done, "
    "COALESCE(SUM(answer_count), 0) AS answers FROM tasks WHERE project_id = :p AND NOT is_gold"
)
_LIVE_LEASES = text("SELECT count(*) FROM leases WHERE project_id = :p AND expires_at > :now")
_PER_ANNOTATOR = text(
    "SELECT u.id AS user_id, u.username, "
    "(SELECT count(*) FROM answers a WHERE a.project_id = :p AND a.annotator_id = u.id) AS answers, "
    "(SELECT count(*) FROM skips s WHERE s.project_id = :p AND s.annotator_id = u.id) AS skips "
    "FROM users u WHERE u.id IN (SELECT user_id FROM members WHERE project_id = :p) "
    "OR u.id IN (SELECT DISTINCT annotator_id FROM answers WHERE project_id = :p) ORDER BY u.id"
)
_OWN_ANSWERS = text("SELECT count(*) FROM answers WHERE annotator_id = :u AND project_id = :p")
_OWN_SKIPS = text("SELECT count(*) FROM skips WHERE annotator_id = :u AND project_id = :p")


def _row(r) -> dict:
    # Plain str keys: SQLAlchemy's keys are a str subclass that orjson refuses.
    return {str(k): v for k, v in r._mapping.items()}


# ---------------------------------------------------------------- quality report

def quality_key(db, p: dict) -> tuple:
    """The key of the state :func:`quality_report` of ``p`` is computed from:
    the skill map's (:func:`assay.engine.skillmap.inputs`: counts and last
    ids of answers and gold rows — reviews are gold rows —, the last re-fit,
    the model's version, auto-labels), the annotators' pauses, and the
    project's settings. Index look-ups only; equal keys give the same report."""
    with db.read() as conn:
        pauses = tuple(conn.execute(_PAUSES, {"p": p["id"]}).one())
    return _skillmap.inputs(db, p), pauses, json.dumps(p, sort_keys=True, default=str)


def quality_report(db, p: dict, *, page_size: int = 5000) -> dict:
    """How good the labels are: per annotator (answers, accuracy with a 95 %
    Wilson interval and what it rests on — ``basis``: gold answers, answers
    on items shared with someone else, the in-loop model; with no basis the
    accuracy and confusion are None, not a fit to one's own answers — and
    confusion matrix), Krippendorff's alpha, a 10-bin histogram of consensus
    confidence and the items per consensus status. Single-label projects only.

    Skills come from the last re-fit (``annotator_skills``) when there is one
    (``source: "refit"``); otherwise Dawid-Skene is fitted on the fly over all
    answers (``source: "fit"``), nothing is stored. The histogram is over
    ``item_consensus`` when the project has rows there, else over the fit's
    posteriors. Answers are read in keyset pages of ``page_size``.
    """
    from assay.quality.agreement import krippendorff_alpha

    label_kind = kinds.of(p)
    if not label_kind.aggregatable:
        raise InvalidInput(f"the quality report needs a single-label project; {p['name']!r} is {label_kind.title}")
    names = [c["name"] for c in p["schema"]["classes"]]
    code_of = {n: i for i, n in enumerate(names)}
    pid = p["id"]
    item_ids, user_ids, labels = _answer_codes(db, pid, code_of, page_size)
    model_row, skill_rows, status_counts = _stored_fit(db, pid)
    users_u, ucode = np.unique(user_ids, return_inverse=True)
    method, skills, posteriors = _skills(db, pid, model_row, skill_rows, item_ids, users_u, ucode, labels,
                                         code_of)
    histogram = _confidence_histogram(db, pid, sum(status_counts.values()) > 0, posteriors, page_size)
    alpha = krippendorff_alpha(item_ids, user_ids, labels, n_classes=len(names)) if labels.size else float("nan")
    with db.read() as conn:
        on_gold = {g["user_id"]: g for g in _gold.stats(conn, pid)}
        has_model = conn.execute(_HAS_MODEL, {"p": pid}).first() is not None
    annotators = _annotators(db, item_ids, users_u, ucode, skills, on_gold, has_model)
    return {
        "project_id": pid, "classes": names, **method,
        "answers": int(labels.size), "items": int(np.unique(item_ids).size),
        "annotators": annotators,
        "agreement": {"krippendorff_alpha": None if np.isnan(alpha) else alpha},
        "confidence_histogram": histogram,
        "status_counts": status_counts,
        # what an export holds: items with a final label, by source (assay.engine.resolver)
        "final_labels": _resolver.summary(db, p),
        "paused": [{"user_id": g["user_id"], "username": g["username"], "paused_at": g["paused_at"]}
                   for g in on_gold.values() if g["paused"]],
    }


def _answer_codes(db, pid: int, code_of: dict[str, int], page_size: int):
    """Every answer as (item id, annotator id, class code) arrays."""
    item_l, user_l, lab_l = [], [], []
    after = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(_ANSWER_PAGE, {"p": pid, "after": after, "n": page_size}).all()
        for r in rows:
            if r.label in code_of:  # a class is never removed, but stay safe
                item_l.append(r.item_id)
                user_l.append(r.annotator_id)
                lab_l.append(code_of[r.label])
        if len(rows) < page_size:
            break
        after = rows[-1].id
    return (np.asarray(item_l, dtype=np.int64), np.asarray(user_l, dtype=np.int64),
            np.asarray(lab_l, dtype=np.intp))


def _stored_fit(db, pid: int):
    """The last re-fit (or None), its skills, and items per consensus status: one read."""
    with db.read() as conn:
        model_row = conn.execute(_FIT, {"p": pid}).first()
        skill_rows = conn.execute(_SKILLS, {"p": pid}).all()
        status_rows = conn.execute(_STATUS_COUNTS, {"p": pid}).all()
    status_counts = {"open": 0, "resolved": 0, "review": 0}
    for r in status_rows:
        status_counts[r.status] = int(r.n)
    return model_row, skill_rows, status_counts


def _skills(db, pid: int, model_row, skill_rows, item_ids, users_u, ucode, labels, code_of: dict):
    """``(method, {user id: (confusion, accuracy)}, posteriors or None)``:
    the stored re-fit's, else a Dawid-Skene fit now (known labels clamped)."""
    from assay.quality import DawidSkene

    method = {"method": "ds", "source": None, "fitted_at": None, "fitted_answers": None}
    if model_row is not None:
        method.update(method=model_row.method, source="refit", fitted_at=model_row.fitted_at,
                      fitted_answers=model_row.answers)
        return method, {int(r.annotator_id): (r.confusion, r.accuracy) for r in skill_rows}, None
    if not labels.size:
        return method, {}, None
    items_u, icode = np.unique(item_ids, return_inverse=True)
    # known labels (gold, reviewers' decisions) are clamped in the fit
    with db.read() as conn:
        known = {int(r.item_id): r.label for r in conn.execute(_KNOWN, {"p": pid})}
    gold_codes = np.array([code_of.get(known.get(int(i)), -1) for i in items_u], dtype=np.intp)
    model = DawidSkene().fit(icode, ucode, labels, n_classes=len(code_of),
                             gold=gold_codes if (gold_codes >= 0).any() else None)
    method.update(source="fit", fitted_answers=int(labels.size))
    skills = {int(u): (model.confusion_[j].tolist(),
                       None if np.isnan(model.accuracy_[j]) else float(model.accuracy_[j]))
              for j, u in enumerate(users_u)}
    return method, skills, model.proba_.max(axis=1)


def _confidence_histogram(db, pid: int, has_consensus: bool, posteriors, page_size: int) -> dict:
    """10 bins of consensus confidence: ``item_consensus``'s, else the fit's posteriors."""
    if has_consensus:
        conf_l, after_item = [], 0
        while True:
            with db.read() as conn:
                rows = conn.execute(_CONFIDENCE_PAGE, {"p": pid, "after": after_item, "n": page_size}).all()
            conf_l.extend(r.confidence for r in rows)
            if len(rows) < page_size:
                break
            after_item = rows[-1].item_id
        confidences, source = np.asarray(conf_l, dtype=float), "item_consensus"
    elif posteriors is not None:
        confidences, source = posteriors, "fit"
    else:
        confidences, source = np.zeros(0), None
    counts, edges = np.histogram(np.clip(confidences, 0.0, 1.0), bins=10, range=(0.0, 1.0))
    return {"edges": [round(float(e), 10) for e in edges], "counts": [int(c) for c in counts], "source": source}


def _annotators(db, item_ids, users_u, ucode, skills: dict, on_gold: dict, has_model: bool) -> list[dict]:
    """The report's row per annotator, the accuracy with what it rests on."""
    from assay.quality.agreement import wilson_interval

    per_user = np.bincount(ucode, minlength=len(users_u))
    usernames = {}
    if users_u.size:
        with db.read() as conn:
            usernames = dict(conn.execute(select(users.c.id, users.c.username)
                                          .where(users.c.id.in_([int(u) for u in users_u]))).all())
    # What each estimate rests on: answers on items someone else answered
    # too, gold answers, the in-loop model. With none of them an accuracy
    # would be a fit to one's own answers: it is not reported.
    if item_ids.size:
        _, icode_all = np.unique(item_ids, return_inverse=True)
        shared_answer = np.bincount(icode_all)[icode_all] >= 2
        shared = np.bincount(ucode, weights=shared_answer, minlength=len(users_u)).astype(int)
    else:
        shared = np.zeros(len(users_u), int)
    out = []
    for j, u in enumerate(users_u):
        conf, acc = skills.get(int(u), (None, None))
        g = on_gold.get(int(u), {})
        basis = {"gold": int(g.get("answers", 0)), "shared": int(shared[j]), "model": has_model}
        n_eff = basis["gold"] + basis["shared"] + (int(per_user[j]) if has_model else 0)
        if n_eff == 0:
            acc = conf = None
        interval = None if acc is None else [round(x, 4) for x in wilson_interval(acc, n_eff)]
        out.append({"user_id": int(u), "username": usernames.get(int(u)), "answers": int(per_user[j]),
                    "accuracy": acc, "accuracy_interval": interval, "basis": basis,
                    "confusion": conf, "gold_answers": g.get("answers", 0),
                    "gold_accuracy": g.get("accuracy"), "paused": bool(g.get("paused", False))})
    return out


# ---------------------------------------------------------------- skill map

def skill_map(db, p: dict, *, min_confidence: float = SKILL_TRUTH_CONFIDENCE, top: int = 3,
              page_size: int = 5000, data: _skillmap.SkillData | None = None) -> dict:
    """Each annotator's skill per class (the chance they answer the class
    when it is the truth) with a 90 % interval, and the class pairs they
    confuse most (the nuances found in the answers), from
    :func:`assay.quality.skills.estimate_skills` over their answers on items
    whose truth is known: gold, reviewers' decisions, and final labels from
    the answers with confidence >= ``min_confidence`` (``truth_basis`` says
    how many of each). Single-label projects only. ``data``: its inputs,
    already read (:mod:`assay.engine.skillmap`; None: read them here)."""
    from assay.quality.skills import confused_pairs, estimate_skills

    label_kind = kinds.of(p)
    if not label_kind.aggregatable:
        raise InvalidInput(f"the skill map needs a single-label project; {p['name']!r} is {label_kind.title}")
    names = [c["name"] for c in p["schema"]["classes"]]
    code_of = {n: i for i, n in enumerate(names)}
    if data is None:
        data = _skillmap.read(db, p, min_confidence, page_size=page_size)
    item_ids, user_ids, labels = data.item_ids, data.user_ids, data.labels
    t = data.truth_codes()
    keep = t >= 0
    out = {"project_id": p["id"], "classes": names, "truth_basis": data.basis(), "min_confidence": min_confidence,
           "strength": None, "annotators": [], "nuances": []}
    if not keep.any():
        return out
    users_u, ucode = np.unique(user_ids[keep], return_inverse=True)
    est = estimate_skills(ucode, t[keep], labels[keep], n_classes=len(names), n_workers=len(users_u))
    mean, low, high = est.class_skill()
    seen = est.counts.sum(axis=2)
    with db.read() as conn:
        usernames = dict(conn.execute(select(users.c.id, users.c.username)
                                      .where(users.c.id.in_([int(u) for u in users_u]))).all())
    out["strength"] = est.strength
    out["nuances"] = _nuance_skills(db, p["id"], item_ids, user_ids, labels, code_of, usernames)
    for a, u in enumerate(users_u):
        out["annotators"].append({
            "user_id": int(u), "username": usernames.get(int(u)), "answers_scored": int(seen[a].sum()),
            "accuracy": float(est.accuracy[a]),
            "classes": [{"class": names[c], "skill": float(mean[a, c]), "interval": [float(low[a, c]),
                                                                                     float(high[a, c])],
                         "answers": int(seen[a, c])} for c in range(len(names))],
            "confused": [{"truth": names[ti], "answer": names[j], "rate": rate, "low": lo}
                         for ti, j, rate, lo in confused_pairs(est, a, top=top)]})
    return out


# hidden checks only: exam and teaching items are shown as such (their answers are kept apart)
_NUANCED_GOLD = text("SELECT item_id, label, nuance FROM gold WHERE project_id = :p AND nuance IS NOT NULL"
                     " AND purpose = 'check'").columns(label=JSON)


def _nuance_skills(db, pid: int, item_ids, user_ids, labels, code_of: dict, usernames: dict) -> list[dict]:
    """Per named nuance (the gold items tagged with it): each annotator's share
    of right answers on them, shrunk towards the crowd's with a 90 % interval."""
    from assay.quality.skills import rate_skills

    with db.read() as conn:
        tagged = [r for r in conn.execute(_NUANCED_GOLD, {"p": pid}).all() if r.label in code_of]
    out = []
    for tag in sorted({r.nuance for r in tagged}):
        right = {r.item_id: code_of[r.label] for r in tagged if r.nuance == tag}
        keys = np.fromiter(right, dtype=np.int64, count=len(right))
        order = np.argsort(keys)
        keys, truth = keys[order], np.fromiter(right.values(), dtype=np.intp, count=len(right))[order]
        on = np.isin(item_ids, keys)
        ok = truth[np.searchsorted(keys, item_ids[on])] == labels[on]
        users_u, ucode = np.unique(user_ids[on], return_inverse=True)
        n = np.bincount(ucode, minlength=len(users_u))
        hits = np.bincount(ucode, weights=ok, minlength=len(users_u))
        mean, low, high = rate_skills(hits, n) if len(users_u) else ([], [], [])
        out.append({"nuance": tag, "items": len(right), "annotators": [
            {"user_id": int(u), "username": usernames.get(int(u)), "answers": int(n[a]), "skill": float(mean[a]),
             "interval": [float(low[a]), float(high[a])]} for a, u in enumerate(users_u)]})
    return out


# ---------------------------------------------------------------- pre-labels and the model

def suggestion_stats(db, p: dict, *, page_size: int = 5000) -> dict:
    """How answers treated the model's pre-labels (anchoring): answers shown
    a suggestion, how many accepted it, and — where the item's true label is
    known (gold, a review, or a resolved consensus) — the accuracy of
    accepted against overridden answers and of the suggestions themselves."""
    same = kinds.of(p).same
    n = acc = 0
    known = {True: [0, 0], False: [0, 0]}  # accepted? -> [answers with truth, correct]
    sugg_known = sugg_right = 0
    after = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(_SUGGESTED_PAGE, {"p": p["id"], "after": after, "n": page_size}).all()
        for r in rows:
            accepted = bool(r.suggestion_accepted)
            n += 1
            acc += accepted
            truth = r.gold_label if r.gold_label is not None else r.cons_label
            if truth is None:
                continue
            known[accepted][0] += 1
            known[accepted][1] += same(r.label, truth)
            sugg_known += 1
            sugg_right += same(r.suggestion, truth)
        if len(rows) < page_size:
            break
        after = rows[-1].id
    return {
        "project_id": p["id"], "answers_with_suggestion": n, "accepted": acc, "overridden": n - acc,
        "acceptance_rate": _share(acc, n), "with_truth": sugg_known,
        "accepted_with_truth": known[True][0], "accepted_correct": known[True][1],
        "accepted_accuracy": _share(known[True][1], known[True][0]),
        "overridden_with_truth": known[False][0], "overridden_correct": known[False][1],
        "overridden_accuracy": _share(known[False][1], known[False][0]),
        "suggestion_accuracy": _share(sugg_right, sugg_known),
    }


def _share(k: int, m: int) -> float | None:
    return k / m if m else None


def model_report(db, p: dict) -> dict:
    """The in-loop model's learning curve: one row per version (answers spent
    when it was trained, verified labels, out-of-fold and validation
    accuracy, auto-label threshold and state) plus counts of predictions and
    auto-labels."""
    with db.read() as conn:
        rows = conn.execute(_MODEL_VERSIONS, {"p": p["id"]}).all()
        n_pred = conn.execute(_COUNT_PREDICTIONS, {"p": p["id"]}).scalar_one()
        n_auto = conn.execute(_COUNT_AUTO_LABELS, {"p": p["id"]}).scalar_one()
    versions = []
    for r in rows:
        m = r.metrics or {}
        versions.append({"version": r.version, "trained_at": r.trained_at, "n_train": r.n_train,
                         "answers": m.get("answers"), "oof_accuracy": r.oof_accuracy,
                         "validation": m.get("validation"), "validation_accuracy": m.get("validation_accuracy"),
                         "threshold": r.threshold, "auto_state": r.auto_state,
                         "source": m.get("source", "loop")})
    return {"project_id": p["id"], "ml_space": p["ml_space"], "auto_label_target": p["auto_label_target"],
            "versions": versions, "predictions": n_pred, "auto_labeled": n_auto}


# ---------------------------------------------------------------- progress and answers

def count_progress(db, p: dict) -> dict:
    """Tasks, done (enough answers), remaining, answers, live leases, and
    per annotator (members and whoever answered) answers and skips: exact."""
    with db.read() as conn:
        tot = conn.execute(_TASK_TOTALS, {"p": p["id"]}).one()
        in_progress = conn.execute(_LIVE_LEASES, {"p": p["id"], "now": time.time()}).scalar_one()
        per = conn.execute(_PER_ANNOTATOR, {"p": p["id"]}).all()
    return {
        "project_id": p["id"], "tasks": tot.tasks, "done": int(tot.done),
        "remaining": tot.tasks - int(tot.done), "answers": int(tot.answers),
        "in_progress": in_progress, "annotators": [_row(r) for r in per],
    }


def annotator_progress(db, project_id: int, user_id: int) -> dict:
    """One annotator's own counts (always exact; index lookups only)."""
    with db.read() as conn:
        n = conn.execute(_OWN_ANSWERS, {"u": user_id, "p": project_id}).scalar_one()
        k = conn.execute(_OWN_SKIPS, {"u": user_id, "p": project_id}).scalar_one()
    return {"answers": n, "skips": k}


def answers_page(db, project_id: int, *, after: int | None = None, limit: int = 100,
                 annotator_id: int | None = None, newest_first: bool = False) -> tuple[list[dict], int | None]:
    """A keyset page of the project's answers (one annotator's, if given), in
    id order (``newest_first``: descending, ``after`` then is the id to go
    below), without the lead time; and the cursor of the next page. An index
    covers both orders (``ix_answers_project_id``, ``ix_answers_annotator``)."""
    limit = max(1, min(int(limit), 1000))
    q = select(answers).where(answers.c.project_id == project_id)
    if newest_first:
        q = q.where(answers.c.id < after) if after else q
        q = q.order_by(answers.c.id.desc())
    else:
        q = q.where(answers.c.id > (after or 0)).order_by(answers.c.id)
    if annotator_id is not None:
        q = q.where(answers.c.annotator_id == annotator_id)
    q = q.limit(limit)
    with db.read() as conn:
        rows = [_row(r) for r in conn.execute(q)]
    for r in rows:
        r.pop("lead_time", None)
    return rows, (rows[-1]["id"] if len(rows) == limit else None)
