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
   one answer that agrees with a confident model can settle an item.
5. **Active learning**: the hand-out's priorities put started items first,
   then an uncertain-and-diverse batch (cold start: a diverse cover).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import JSON, bindparam, text

from assay.errors import InvalidInput, NotFound

DEFAULT_AUTO_TARGET = 0.95
DEFAULT_AUDIT_RATE = 0.05
ALPHA = 0.05
MIN_TRAIN = 20
VERIFY_CONFIDENCE = 0.95
#: training labels: people's answers alone must put at least this on a class
#: (a classifier tolerates some label noise; the threshold is chosen on the
#: validation share, never on these)
TRAIN_CONFIDENCE = 0.7
#: labels that check auto-labels, while they are held to the stricter target:
#: they come first, since the certification (and so every auto-label) waits on them
PRIORITY_VERIFY = 3.5
PRIORITY_STARTED = 3.0
PRIORITY_VALIDATION = 2.5
PRIORITY_BATCH = 2.0
#: the validation share: at least this many items (or 5 %), labeled by people
#: alone, held out of training; the auto-label threshold is chosen on them
VALIDATION_MIN = 200
VALIDATION_SHARE = 0.05


def validation_mask(item_ids: np.ndarray, n_items: int) -> np.ndarray:
    """A fixed pseudo-random share of the items (by id): people label them
    without the model's help and the model never trains on them."""
    rate = min(0.5, max(VALIDATION_SHARE, VALIDATION_MIN / max(n_items, 1)))
    h = (np.asarray(item_ids, np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h.astype(np.float64) / 2**32) < rate


def verification_region(confidence: np.ndarray, threshold: float | None, target: float,
                        alpha: float = ALPHA) -> np.ndarray:
    """Which validation items (indices into ``confidence``, the model's
    held-out confidence on each) can decide the auto-label threshold, and so
    need labels surer than the auto-labels they check: the most confident
    ones that the first test of :func:`assay.learn.autolabel.choose_threshold`
    reads, or those down to the certified ``threshold``, whichever is more,
    and a quarter of the first test's size below (where the next tests
    read)."""
    from assay.learn.autolabel import first_test_size

    conf = np.asarray(confidence, float)
    first = first_test_size(target, alpha)
    above = int((conf >= threshold).sum()) if threshold is not None else 0
    m = min(conf.size, max(first, above) + int(np.ceil(first / 4)))
    return np.argsort(-conf, kind="stable")[:m]


def check_settings(project: dict, space, target, audit, vectors) -> tuple[str | None, float | None, float | None]:
    if space is None:
        return None, None, None
    if project["schema"]["kind"] != "single":
        raise InvalidInput("machine learning in the loop needs a single-label project")
    try:
        vectors.meta(space)
    except NotFound:
        raise InvalidInput(f"no vectors in space {space!r}: embed the project's dataset first") from None
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, int | float) or not 0.5 <= target < 1:
            raise InvalidInput("auto_label_target must be a number in [0.5, 1)")
        target = float(target)
    if audit is not None:
        if isinstance(audit, bool) or not isinstance(audit, int | float) or not 0 <= audit <= 0.5:
            raise InvalidInput("audit_rate must be a number from 0 to 0.5")
        audit = float(audit)
    elif target is not None:
        audit = DEFAULT_AUDIT_RATE
    return space, target, audit


def check_match(project: dict, space, match) -> int | None:
    """``target_match``: None, or k >= 1 (needs adaptive redundancy and a model)."""
    if match is None:
        return None
    if isinstance(match, bool) or not isinstance(match, int) or not 1 <= match <= 15:
        raise InvalidInput("target_match must be a whole number of votes from 1 to 15 (or None)")
    if space is None or project["target_confidence"] is None:
        raise InvalidInput("target_match needs adaptive redundancy (target_confidence) and a model (ml_space)")
    return match


def ml_due(ws, *, growth: float = 0.1, min_new: int = 50) -> list[int]:
    """Projects with a model whose answers grew by ``growth`` (and at least
    ``min_new``) since its last version, or that have none yet: what the
    server's background worker trains next (debounced by its interval)."""
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


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(p, 1e-12))


def _answer_loglik(answers, pos, code, k, skills, default) -> tuple[np.ndarray, np.ndarray]:
    """(n_tasks, K) sum of log P(answer | class) per item under ``skills``
    (``default`` for annotators without), and the answers per item."""
    ll = np.zeros((len(pos), k))
    n = np.zeros(len(pos), np.intp)
    for a in answers:
        j = pos.get(a.item_id)
        if j is None or a.label not in code:
            continue
        ll[j] += _log(np.asarray(skills.get(a.annotator_id, default))[:, code[a.label]])
        n[j] += 1
    return ll, n


def _accuracy(confusion, prior) -> float:
    c = np.asarray(confusion)
    return float(np.sum(np.asarray(prior) * np.diag(c)))


def _skills_with_model(answers, pos, code, k, held_proba, y, known_mask):
    """Re-estimate every annotator's confusion matrix by Dawid-Skene over all
    answered items, with the model's held-out prediction as each item's prior
    (out-of-fold for the items it trained on; the class prior for validation
    items, which people label unaided). Without it skills are learned from
    items with two or more answers only, and with a model in the loop those
    are mostly items whose first answer disagreed with the model: a sample
    of the annotators' mistakes, so their skills come out too low and every
    item asks for more answers than it needs. Items with one answer and no
    model prior are left out. The confusion rows are shrunk towards each
    annotator's own overall accuracy (``DawidSkene(prior="one-coin")``): with
    many classes an annotator has few answers per true class. Returns
    ({annotator: K x K list}, the crowd's default confusion, the class prior)
    or None when there is too little."""
    from assay.quality import DawidSkene, online

    rows = [(pos[a.item_id], a.annotator_id, code[a.label]) for a in answers
            if a.item_id in pos and a.label in code]
    # an item with one answer and no prior only "agrees" with its annotator:
    # it would inflate their skill, so such items are left out
    per_item = np.bincount([r[0] for r in rows], minlength=len(held_proba)) if rows else np.zeros(0, int)
    has_prior = np.isfinite(held_proba).all(axis=1)
    rows = [r for r in rows if has_prior[r[0]] or per_item[r[0]] >= 2]
    if len(rows) < MIN_TRAIN:
        return None
    it = np.array([r[0] for r in rows], np.intp)
    users_u, ucode = np.unique(np.array([r[1] for r in rows], np.int64), return_inverse=True)
    lab = np.array([r[2] for r in rows], np.intp)
    items_u, icode = np.unique(it, return_inverse=True)
    gold = np.where(known_mask[items_u], y[items_u], -1)
    ds = DawidSkene(prior="one-coin").fit(icode, ucode, lab, n_classes=k, n_items=len(items_u),
                          item_prior=held_proba[items_u], gold=gold if (gold >= 0).any() else None)
    conf = np.asarray(ds.confusion_)
    default = online.crowd_confusion(conf, np.bincount(ucode, minlength=len(users_u))).tolist()
    return {int(u): conf[j].tolist() for j, u in enumerate(users_u)}, default, np.asarray(ds.prior_, float)


def _match_target(p, tasks, item_ids, skills, n_of, prior, proba, ans_ll, n_ans, status, autos, known, seed):
    """(target, its predicted accuracy, the k-vote majority's) under the crowd
    model of this step (:func:`assay.quality.matching.matching_target`)."""
    from assay.quality.matching import matching_target

    users = sorted(skills)
    conf = np.array([skills[u] for u in users])
    weights = np.array([n_of.get(u, 0) for u in users], float)  # annotators drawn as often as they answer
    # the model's held-out predictions (out-of-fold where it trained): its
    # in-sample ones on its own training labels would flatter the prediction
    model_prior = np.where(np.isfinite(proba).all(axis=1)[:, None], _log(np.nan_to_num(proba)), _log(prior)[None, :])
    lp = model_prior + ans_ll
    auto_only = np.array([int(i) in autos and not autos[int(i)].audit for i in item_ids], bool)
    lp[auto_only] = model_prior[auto_only]
    is_gold = np.array([bool(t.is_gold) or int(i) in known for t, i in zip(tasks, item_ids)], bool)
    finished = np.array([status.get(int(i)) in ("resolved", "review") for i in item_ids], bool)
    open_ = ~(finished | auto_only | is_gold)
    # held to the baseline: the items still to finish (a surplus of accuracy
    # on finished items is not spent on the rest)
    keep = open_
    if not keep.any():
        return float(p["target_confidence"]), float("nan"), float("nan")
    return matching_target(lp[keep], n_ans[keep], open_[keep], prior, conf, weights,
                           max_answers=p["max_answers"], k=int(p["target_match"]), seed=seed)


def ml_step(ws, project: int | str, *, batch: int = 100, seed: int = 0, now: float | None = None) -> dict[str, Any]:
    """Run one step (see the module docstring); returns what it did."""
    from assay import redundancy
    from assay.learn.active import select_batch
    from assay.learn.autolabel import audit_verdict, choose_threshold, precision_from_answers
    from assay.learn.model import EmbeddingClassifier
    from assay.quality import online

    p = ws.get_project(project)
    if p["ml_space"] is None:
        raise InvalidInput(f"project {p['name']!r} has no model: set ml_space first")
    now = time.time() if now is None else now
    rng = np.random.default_rng(seed)
    names = [c["name"] for c in p["schema"]["classes"]]
    k = len(names)
    code = {n: i for i, n in enumerate(names)}
    pid = p["id"]

    with ws.db.read() as conn:
        tasks = conn.execute(text(
            "SELECT id, item_id, answer_count, needed, open_slots, is_gold FROM tasks WHERE project_id = :p "
            "ORDER BY item_id"), {"p": pid}).all()
        answers = conn.execute(text(
            "SELECT item_id, annotator_id, label FROM answers WHERE project_id = :p").columns(label=JSON),
            {"p": pid}).all()
        skills = {r.annotator_id: r.confusion for r in conn.execute(text(
            "SELECT annotator_id, confusion FROM annotator_skills WHERE project_id = :p").columns(confusion=JSON),
            {"p": pid})}
        previous = {r.item_id: r.proba for r in conn.execute(text(
            "SELECT item_id, proba FROM predictions WHERE project_id = :p").columns(proba=JSON), {"p": pid})}
        qm = conn.execute(text("SELECT prior, default_confusion FROM quality_models WHERE project_id = :p")
                          .columns(prior=JSON, default_confusion=JSON), {"p": pid}).first()
        known = {r.item_id: r.label for r in conn.execute(text(
            "SELECT item_id, label FROM gold WHERE project_id = :p").columns(label=JSON), {"p": pid})}
        autos = {r.item_id: r for r in conn.execute(text(
            "SELECT item_id, label, confidence, audit FROM auto_labels WHERE project_id = :p").columns(label=JSON),
            {"p": pid})}
        status = {r.item_id: r.status for r in conn.execute(text(
            "SELECT item_id, status FROM item_consensus WHERE project_id = :p"), {"p": pid})}
        last = conn.execute(text(
            "SELECT version, threshold, auto_state, metrics FROM ml_models WHERE project_id = :p "
            "ORDER BY version DESC LIMIT 1").columns(metrics=JSON), {"p": pid}).first()

    item_ids = np.array([t.item_id for t in tasks], np.int64)
    have = ws.vectors.ids(p["ml_space"])
    with_vec = np.isin(item_ids, have)
    pos = {int(i): j for j, i in enumerate(item_ids)}
    X_ids, X = ws.vectors.load(p["ml_space"], item_ids[with_vec])
    row_of = {int(i): j for j, i in enumerate(X_ids)}

    # answers-only posteriors (the last re-fit's confusions; crowd default otherwise)
    default = None
    if qm is not None:
        default = qm.default_confusion["confusion"] if isinstance(qm.default_confusion, dict) else qm.default_confusion
    default = default or online.default_confusion(k)
    prior = np.asarray(qm.prior if qm is not None else np.full(k, 1.0 / k))
    # The skills that pick the training labels: learned with the last model's
    # predictions as priors, as at the end of the last step — not the
    # background re-fit's (items with two or more answers only, which with a
    # model in the loop are mostly the annotators' mistakes; with many classes
    # its confusion rows also sit near chance, and one such re-fit left almost
    # no training labels).
    if previous:
        prev = redundancy.model_priors(previous, item_ids, k)
        gold_y = np.array([code.get(known.get(int(i)), -1) if int(i) in known else -1 for i in item_ids], np.intp)
        first = _skills_with_model(answers, pos, code, k, prev, gold_y, gold_y >= 0)
        if first is not None:
            # its class prior too: with many classes and few items answered
            # twice, the re-fit's (answers alone) can collapse onto one class
            skills, default, prior = first
    ans_ll, n_ans = _answer_loglik(answers, pos, code, k, skills, default)
    lp_answers = ans_ll + _log(prior)
    post_answers = np.exp(lp_answers - lp_answers.max(axis=1, keepdims=True))
    post_answers /= post_answers.sum(axis=1, keepdims=True)

    verify_at = TRAIN_CONFIDENCE
    val = validation_mask(item_ids, len(tasks))
    with ws.db.read() as conn:
        open_now = {r.id for r in conn.execute(text(
            "SELECT id FROM tasks WHERE project_id = :p AND open_slots > 0"), {"p": pid})}
    done = np.array([t.id not in open_now for t in tasks], bool) & (n_ans > 0)
    y = np.full(len(tasks), -1, np.intp)
    answered = n_ans > 0
    confident = answered & (post_answers.max(axis=1) >= verify_at)
    y[confident] = post_answers[confident].argmax(axis=1)
    for item, lab in known.items():
        if item in pos and lab in code:
            y[pos[item]] = code[lab]
    # validation items: people's answers alone, once they are done
    y_val = np.where(done & val, post_answers.argmax(axis=1), -1)
    known_mask = np.array([int(i) in known for i in item_ids], bool)
    val_known = val & known_mask
    y_val[val_known] = y[val_known]  # gold on a validation item: its label is certain
    # audited auto-labels are judged by people unaided too (no suggestion, no prior)
    audit_mask = np.array([bool(autos[int(i)].audit) if int(i) in autos else False for i in item_ids], bool)
    unaided = val | audit_mask
    checked = unaided.copy()  # which of them the stricter verification target applies to (below)
    train = (y >= 0) & with_vec & ~val
    result: dict[str, Any] = {"answers": len(answers), "version": None, "verified": int(train.sum()),
                              "auto_labeled": 0, "auto_reverted": 0,
                              "threshold": None, "auto_state": "off", "items_without_vectors": int((~with_vec).sum())}

    proba = None
    strict = (last.metrics or {}).get("verify_target") if last is not None else None
    if train.sum() >= MIN_TRAIN and np.unique(y[train]).size >= 2:
        rows = np.array([row_of[int(i)] for i in item_ids[train]])
        clf = EmbeddingClassifier(random_state=seed).fit(X[rows], y[train], n_classes=k)
        proba_vec = clf.predict_proba(X)
        proba = np.full((len(tasks), k), 1.0 / k)
        proba[with_vec] = proba_vec[[row_of[int(i)] for i in item_ids[with_vec]]]
        oof = clf.oof_proba_
        oof_right = oof.argmax(axis=1) == y[train]
        version = (last.version if last is not None else 0) + 1
        held = (y_val >= 0) & with_vec
        # P(the model's label is the true one | people's answers): the crowd's
        # own labels are not certain, so count expected right answers
        val_right = post_answers[held, proba[held].argmax(axis=1)]
        val_right = np.where(val_known[held], proba[held].argmax(axis=1) == y_val[held], val_right)
        result.update(version=version, oof_accuracy=float(oof_right.mean()), temperature=clf.temperature_,
                      validation=int(held.sum()),
                      validation_accuracy=float(val_right.mean()) if held.any() else None)

    # ---- annotator skills, with the model's held-out prediction as each item's
    # prior where there is a model (the class prior elsewhere)
    held_proba = np.full((len(tasks), k), np.nan)
    if proba is not None:
        held_proba[with_vec & ~val] = proba[with_vec & ~val]
        held_proba[np.flatnonzero(train)] = oof  # items it trained on: out-of-fold only
    new_skills = _skills_with_model(answers, pos, code, k, held_proba, y, known_mask)
    if new_skills is not None:
        skills, default, prior = new_skills
        ans_ll, _ = _answer_loglik(answers, pos, code, k, skills, default)
        result["skills_refit"] = len(skills)
        n_of: dict[int, int] = {}
        for a in answers:
            n_of[a.annotator_id] = n_of.get(a.annotator_id, 0) + 1
        # ---- the target that matches a k-vote majority (target_match)
        if p["target_match"] and p["target_confidence"] is not None:
            tau = _match_target(p, tasks, item_ids, skills, n_of, prior, held_proba, ans_ll, n_ans, status, autos,
                                known, seed)
            result.update(target=tau[0], target_predicted_accuracy=tau[1], baseline_predicted_accuracy=tau[2])
            p = {**p, "target_confidence": tau[0]}
        with ws.db.write() as conn:
            redundancy.store_skills(conn, pid, [{"u": int(u), "c": c, "a": _accuracy(c, prior), "n": n_of.get(u, 0)}
                                                for u, c in skills.items()])
            redundancy.store_crowd(conn, pid, prior, default)
            if result.get("target") is not None:
                conn.execute(text("UPDATE projects SET target_confidence = :t WHERE id = :p"),
                             {"t": result["target"], "p": pid})

    if proba is not None:
        # ---- auto-label threshold: held-out verified items + audits so far
        threshold, state = None, "off"
        target = p["auto_label_target"]
        if target is not None:
            audited = [(a.confidence, code.get(a.label) == y[pos[i]]) for i, a in autos.items()
                       if a.audit and i in pos and y[pos[i]] >= 0 and (n_ans[pos[i]] > 0 or i in known)]
            # held out: validation items (the model never trained on them),
            # gold items by their out-of-fold predictions, and the audits
            is_known = np.array([int(i) in known for i in item_ids[train]], bool)
            # While the surer labels are on, only validation items labeled under
            # them take part — those their answers made sure, or that used up
            # max_answers trying: a label made to the ordinary target (below the
            # region, or waiting to be re-asked as the region moves with the
            # model) would sit among the sure ones, and one doubt at the top
            # of the sequence fails every threshold.
            in_test = np.ones(int(held.sum()), bool)
            if strict is not None:
                in_test = ((post_answers.max(axis=1) >= 1.0 - 2.0 * (1.0 - strict))
                           | (n_ans >= (p["max_answers"] or 1)) | val_known)[held]
            conf_h = np.r_[proba[held][in_test].max(axis=1), oof[is_known].max(axis=1), [c for c, _ in audited]]
            right_h = np.r_[val_right[in_test], oof_right[is_known], [r for _, r in audited]]
            ok_audits = sum(r for _, r in audited)
            verdict = audit_verdict(ok_audits, len(audited), target=target, alpha=ALPHA)
            if last is not None and last.auto_state == "stopped":
                state = "stopped"
            else:
                threshold = choose_threshold(conf_h, right_h, target=target, alpha=ALPHA)
                if verdict == "fail" and last is not None and last.threshold is not None:
                    if threshold is not None and threshold <= last.threshold:
                        threshold = None  # the audits say the old one was too low: no lower again
                    if threshold is None:
                        state = "stopped"
                state = state if state == "stopped" else ("on" if threshold is not None else "off")
            result.update(audits=len(audited), audits_correct=int(ok_audits), audit_verdict=verdict)
        result.update(threshold=threshold, auto_state=state)
        # Labels that check auto-labels must be surer than the auto-labels
        # they check (their error may use a tenth of the auto-label error
        # budget) — but only audits and the region of the validation share
        # that can decide a threshold (verification_region; items further
        # down are labeled to the ordinary target and join it as the
        # threshold comes down), and only while that can pay for itself: a
        # threshold is on, or the answers auto-labels could save (items nobody
        # answered that the calibrated model already puts above the target,
        # times the answers an answered item has taken so far) exceed what
        # the surer labels cost (about two more answers per region item) and
        # the model's estimated accuracy on the region reaches the target.
        strict = None
        region = np.zeros(len(tasks), bool)
        reachable = int(((n_ans == 0) & ~val & with_vec & (proba.max(axis=1) >= (target or 1))).sum())
        result["auto_reachable"] = reachable
        if target is not None and state != "stopped":
            vi = np.flatnonzero(val & with_vec)
            region[vi[verification_region(proba[vi].max(axis=1), threshold, target)]] = True
            m = int(region.sum())
            per_item = float(n_ans[n_ans > 0].mean()) if (n_ans > 0).any() else 1.0
            # the model's accuracy on the region from the answers so far, however
            # few (a mean posterior would sit near the class prior): below the
            # target, surer labels would only confirm that
            seen = region & (n_ans > 0) & ~val_known
            estimate = (precision_from_answers(ans_ll[seen], proba[seen].argmax(axis=1), prior)
                        if seen.sum() >= MIN_TRAIN else None)
            result["verify_estimate"] = estimate
            if threshold is not None or (reachable * per_item > 2.0 * m and estimate is not None
                                         and estimate >= target):
                strict = max(float(p["target_confidence"] or 0.0), 1.0 - (1.0 - target) / 10.0)
                result["verify_region"] = m
        checked = audit_mask | region  # held to `strict` while it is on

        with ws.db.write() as conn:
            conn.execute(text(
                "INSERT INTO ml_models (project_id, version, trained_at, n_train, temperature, oof_accuracy, "
                "threshold, auto_state, metrics) VALUES (:p, :v, :now, :n, :t, :acc, :th, :st, :m)"
            ).bindparams(bindparam("m", type_=JSON)),
                {"p": pid, "v": version, "now": now, "n": int(train.sum()), "t": clf.temperature_,
                 "acc": result["oof_accuracy"], "th": threshold, "st": state,
                 "m": {"classes": names, "answers": len(answers), "validation": result.get("validation"),
                       "validation_accuracy": result.get("validation_accuracy"), "verify_target": strict}})
            conn.execute(text("DELETE FROM predictions WHERE project_id = :p"), {"p": pid})
            conn.execute(text(
                "INSERT INTO predictions (project_id, item_id, model_version, label, confidence, proba) "
                "VALUES (:p, :i, :v, :label, :c, :pr)").bindparams(
                    bindparam("label", type_=JSON), bindparam("pr", type_=JSON)),
                [{"p": pid, "i": int(item_ids[j]), "v": version, "label": names[int(held_proba[j].argmax())],
                  "c": float(held_proba[j].max()), "pr": [round(float(x), 6) for x in held_proba[j]]}
                 # validation, audits: people decide unaided. Items the model
                 # trained on (gold, reviewed, verified) get their out-of-fold
                 # prediction: a pre-label never repeats a label the model was
                 # given, so suggestions on gold are no better than elsewhere.
                 for j in np.flatnonzero(with_vec & ~unaided)])

            # ---- revert auto-labels only when the audits failed: those below the
            # raised threshold, or all of them once auto-labeling stopped. (A new
            # model version that cannot certify a threshold yet labels nothing
            # new, but what an earlier, certified version labeled stands.)
            failed = result.get("audit_verdict") == "fail"
            revert = [i for i, a in autos.items()
                      if failed and (state != "on" or a.confidence < threshold)
                      and i in pos and n_ans[pos[i]] == 0]
            for i in revert:
                conn.execute(text("DELETE FROM auto_labels WHERE project_id = :p AND item_id = :i"),
                             {"p": pid, "i": i})
                t = tasks[pos[i]]
                conn.execute(text("UPDATE tasks SET needed = :k, open_slots = :k - answer_count "
                                  "WHERE id = :t AND NOT is_gold AND answer_count < :k"),
                             {"t": t.id, "k": max(p["overlap"], 1)})
                autos.pop(i)
            result["auto_reverted"] = len(revert)

            # ---- new auto-labels: items nobody answered, above the threshold
            if state == "on":
                conf_now = proba.max(axis=1)
                new = [j for j in np.flatnonzero(with_vec & (n_ans == 0) & (conf_now >= threshold) & ~val)
                       if int(item_ids[j]) not in autos and int(item_ids[j]) not in known and not tasks[j].is_gold]
                audit_rate = p["audit_rate"] or 0.0
                rows_in = []
                for j in new:
                    audit = bool(rng.random() < audit_rate)
                    unaided[j] |= audit
                    checked[j] |= audit
                    rows_in.append({"p": pid, "i": int(item_ids[j]), "label": names[int(proba[j].argmax())],
                                    "c": float(conf_now[j]), "v": version, "a": audit, "now": now})
                    if not audit:  # out of the pool; audits keep their slots for people
                        conn.execute(redundancy.WITHDRAW, {"t": tasks[j].id})
                if rows_in:
                    conn.execute(text(
                        "INSERT INTO auto_labels (project_id, item_id, label, confidence, model_version, audit, "
                        "created_at) VALUES (:p, :i, :label, :c, :v, :a, :now)").bindparams(
                            bindparam("label", type_=JSON)), rows_in)
                result["auto_labeled"] = len(rows_in)

            # ---- model-informed consensus for items still open
            target_c, max_answers = p["target_confidence"], p["max_answers"]
            upserts = []
            counts = {"resolved": 0, "review": 0, "open": 0}
            for j, t in enumerate(tasks):
                item = int(item_ids[j])
                if t.is_gold or item in known or status.get(item) == "review":
                    continue
                if unaided[j]:  # answers alone, to the verification target
                    if n_ans[j] == 0:  # no model prior waiting in its posterior
                        lp = _log(prior).tolist()
                        best, confv = online.decision(lp)
                        upserts.append({"p": pid, "i": item, "label": names[best], "conf": confv, "lp": lp,
                                        "n": 0, "status": "open", "now": now})
                    elif target_c is not None and strict is not None and (
                            checked[j] or status.get(item) != "resolved"):
                        lp = (ans_ll[j] + _log(prior)).tolist()
                        best, confv = online.decision(lp)
                        cur = conn.execute(text("SELECT answer_count, needed FROM tasks WHERE id = :t"),
                                           {"t": t.id}).one()
                        st = redundancy.apply_step(conn, t.id, redundancy.decide(
                            lp, confv, cur.answer_count, cur.needed,
                            strict if checked[j] else target_c, max_answers, None))
                        upserts.append({"p": pid, "i": item, "label": names[best], "conf": confv, "lp": lp,
                                        "n": int(n_ans[j]), "status": st, "now": now})
                    continue
                if not with_vec[j] or status.get(item) == "resolved":
                    continue
                lp = (_log(proba[j]) + ans_ll[j]).tolist()
                best, confv = online.decision(lp)
                st = "open"
                if n_ans[j] > 0 and target_c is not None:
                    cur = conn.execute(text("SELECT answer_count, needed FROM tasks WHERE id = :t"),
                                       {"t": t.id}).one()
                    step = redundancy.decide(lp, confv, cur.answer_count, cur.needed, target_c, max_answers, None)
                    st = redundancy.apply_step(conn, t.id, step)
                counts[st] += 1
                upserts.append({"p": pid, "i": item, "label": names[best], "conf": confv, "lp": lp,
                                "n": int(n_ans[j]), "status": st, "now": now})
            if upserts:
                conn.execute(redundancy.UPSERT_CONSENSUS, upserts)
            result["consensus"] = counts

    # ---- active learning: started items first, then an uncertain, diverse batch
    is_gold = np.array([bool(t.is_gold) for t in tasks], bool)
    labeled = (n_ans > 0) | (y >= 0) | np.isin(item_ids, np.array(list(autos), np.int64)) | is_gold | val
    with ws.db.read() as conn:
        open_now = {r.id for r in conn.execute(text(
            "SELECT id FROM tasks WHERE project_id = :p AND open_slots > 0"), {"p": pid})}
    fresh = np.array([t.id in open_now for t in tasks], bool) & ~labeled & with_vec
    chosen: list[int] = []
    if fresh.any():
        sub = np.flatnonzero(with_vec)
        Xs = X[[row_of[int(i)] for i in item_ids[sub]]]
        lab_sub = ~fresh[sub]
        pick = select_batch(Xs, None if proba is None else proba[sub], lab_sub, batch, rng=rng)
        chosen = [int(tasks[sub[i]].id) for i in pick]
    started = [t.id for j, t in enumerate(tasks) if n_ans[j] > 0 and t.id in open_now]
    validating = [t.id for j, t in enumerate(tasks) if val[j] and n_ans[j] == 0 and t.id in open_now]
    verifying = [t.id for j, t in enumerate(tasks) if strict is not None and checked[j] and t.id in open_now]
    result["verify_target"] = strict
    with ws.db.write() as conn:
        conn.execute(text("UPDATE tasks SET target = NULL WHERE project_id = :p AND target IS NOT NULL"), {"p": pid})
        if strict is not None:
            conn.execute(text("UPDATE tasks SET target = :s WHERE id = :t"),
                         [{"t": t.id, "s": strict} for j, t in enumerate(tasks) if checked[j]])
        conn.execute(text("UPDATE tasks SET priority = 0 WHERE project_id = :p AND priority <> 0"), {"p": pid})
        if started:
            conn.execute(text("UPDATE tasks SET priority = :pr WHERE id = :t"),
                         [{"t": t, "pr": PRIORITY_STARTED} for t in started])
        if validating:
            conn.execute(text("UPDATE tasks SET priority = :pr WHERE id = :t"),
                         [{"t": t, "pr": PRIORITY_VALIDATION} for t in validating])
        if chosen:
            conn.execute(text("UPDATE tasks SET priority = :pr WHERE id = :t"),
                         [{"t": t, "pr": PRIORITY_BATCH + 0.4 * (len(chosen) - r) / (len(chosen) + 1)}
                          for r, t in enumerate(chosen)])
        if verifying:
            conn.execute(text("UPDATE tasks SET priority = :pr WHERE id = :t"),
                         [{"t": t, "pr": PRIORITY_VERIFY} for t in verifying])
    result["batch"] = len(chosen)
    if result.get("target") is not None:
        ws.forget_project(pid)  # the new target applies to the next answer
    return result
