"""The planning of one ML step (:func:`assay.learn.plan.plan_step`), in the
order the step thinks: the crowd's skills, training labels, the model, the
skills again with the model, the auto-label threshold, the verification
target, auto-labels, consensus, priorities. Pure: arrays in, a
:class:`~assay.learn.plan.StepPlan` out."""

from __future__ import annotations

from typing import Any

import numpy as np

from assay.learn.plan import (
    ALPHA, MIN_TRAIN, PRIORITY_BATCH, PRIORITY_STARTED, PRIORITY_VALIDATION, PRIORITY_VERIFY, TRAIN_CONFIDENCE,
    ItemRule, ModelVersion, NewAutoLabel, StepInput, StepPlan, _log, item_consensus, validation_mask,
    verification_region,
)


class Planner:
    """One step's working state; :meth:`plan` runs it once."""

    def __init__(self, inp: StepInput, *, batch: int, seed: int):
        self.inp, self.s, self.batch, self.seed = inp, inp.settings, batch, seed
        self.rng = np.random.default_rng(seed)
        self.k = len(self.s.classes)
        self.n = len(inp.task_ids)
        self.with_vec = inp.with_vec
        self.target_c = self.s.target_confidence
        self.autos = dict(inp.autos)  # what stays after reverts
        self.summary: dict[str, Any] = {}
        self.plan_ = StepPlan(summary=self.summary, classes=list(self.s.classes), overlap=max(int(self.s.overlap), 1),
                              max_answers=self.s.max_answers,
                              answer_count=dict(zip(inp.task_ids.tolist(), inp.answer_count.tolist())),
                              needed=dict(zip(inp.task_ids.tolist(), inp.needed.tolist())))

    def plan(self) -> StepPlan:
        self._crowd_from_last()
        self._labels()
        self._train()
        self._crowd_with_model()
        self.checked = self.unaided.copy()  # held to the stricter verification target (below)
        self.strict = (self.inp.last.metrics or {}).get("verify_target") if self.inp.last is not None else None
        if self.proba is not None:
            self._threshold()
            self._verification()
            self._predictions()
            self._reverts()
            self._new_auto_labels()
            self._consensus()
        self._priorities()
        return self.plan_

    # ---- crowd

    def _fit_crowd(self, pred_probs, gold, prior_weight: float | str = "learn"):
        from assay.quality.crowd_model import crowd_with_model

        inp = self.inp
        return crowd_with_model(inp.ans_task, inp.ans_user, inp.ans_label, pred_probs, gold=gold,
                                min_answers=MIN_TRAIN, prior_weight=prior_weight)

    def _loglik(self) -> tuple[np.ndarray, np.ndarray]:
        """Each item's answers' log-likelihood under the current skills, and its answers."""
        from assay.quality.crowd_model import answer_loglik

        inp = self.inp
        return answer_loglik(inp.ans_task, inp.ans_user, inp.ans_label, self.skills, self.default, self.n, self.k)

    def _crowd_from_last(self) -> None:
        """The skills that pick the training labels: learned with the last
        model's predictions as priors, as at the end of the last step — not the
        background re-fit's (items with two or more answers only, which with a
        model in the loop are mostly the annotators' mistakes; with many classes
        its confusion rows also sit near chance, and one such re-fit left almost
        no training labels)."""
        from assay.quality import online

        inp = self.inp
        self.skills = dict(inp.skills)
        self.default = inp.default or online.default_confusion(self.k)
        self.prior = np.asarray(inp.prior if inp.prior is not None else np.full(self.k, 1.0 / self.k))
        if inp.previous is not None:
            gold = np.where(inp.known_mask, inp.known_code, -1)
            first = self._fit_crowd(inp.previous, gold, 1.0)  # stored as the last step weighed them
            if first is not None:
                # its class prior too: with many classes and few items answered
                # twice, the re-fit's (answers alone) can collapse onto one class
                self.skills, self.default, self.prior = first.skills(), first.default_confusion.tolist(), first.prior
        self.ans_ll, self.n_ans = self._loglik()

    # ---- labels and the model

    def _labels(self) -> None:
        inp, n_ans = self.inp, self.n_ans
        lp = self.ans_ll + _log(self.prior)
        post = np.exp(lp - lp.max(axis=1, keepdims=True))
        self.post_answers = post / post.sum(axis=1, keepdims=True)
        self.val = validation_mask(inp.item_ids, self.n)
        done = ~inp.open_now & (n_ans > 0)
        y = np.full(self.n, -1, np.intp)
        # A training label is verified by its answers, not by the class prior:
        # decoded under a flat prior. Early on, Dawid-Skene on the few items
        # answered twice can put most of the class prior on one class (0.82 on
        # a weak 8-class crowd, with confusions at chance); decoded with it,
        # every single answer "verified" that class, the first model learned
        # it, and the loop locked onto it.
        evidence = np.exp(self.ans_ll - self.ans_ll.max(axis=1, keepdims=True))
        evidence /= evidence.sum(axis=1, keepdims=True)
        confident = (n_ans > 0) & (evidence.max(axis=1) >= TRAIN_CONFIDENCE)
        y[confident] = evidence[confident].argmax(axis=1)
        with_code = inp.known_mask & (inp.known_code >= 0)
        y[with_code] = inp.known_code[with_code]
        # validation items: people's answers alone, once they are done
        self.y_val = np.where(done & self.val, self.post_answers.argmax(axis=1), -1)
        self.val_known = self.val & inp.known_mask
        self.y_val[self.val_known] = y[self.val_known]  # gold on a validation item: its label is certain
        # audited auto-labels are judged by people unaided too (no suggestion, no prior)
        self.audit_mask = np.array([inp.autos[int(i)].audit if int(i) in inp.autos else False
                                    for i in inp.item_ids], bool)
        self.unaided = self.val | self.audit_mask
        self.y = y
        self.train = (y >= 0) & self.with_vec & ~self.val
        self.summary.update({"answers": inp.answers_total, "version": None, "verified": int(self.train.sum()),
                             "auto_labeled": 0, "auto_reverted": 0, "threshold": None, "auto_state": "off",
                             "items_without_vectors": int((~self.with_vec).sum())})

    def _train(self) -> None:
        from assay.learn.model import EmbeddingClassifier

        inp, y, train = self.inp, self.y, self.train
        self.proba = None
        if train.sum() < MIN_TRAIN or np.unique(y[train]).size < 2:
            return
        clf = EmbeddingClassifier(random_state=self.seed).fit(inp.X[inp.vec_row[train]], y[train], n_classes=self.k)
        proba_vec = clf.predict_proba(inp.X)
        proba = np.full((self.n, self.k), 1.0 / self.k)
        proba[self.with_vec] = proba_vec[inp.vec_row[self.with_vec]]
        self.proba, self.oof, self.clf = proba, clf.oof_proba_, clf
        self.oof_right = self.oof.argmax(axis=1) == y[train]
        self.version = (inp.last.version if inp.last is not None else 0) + 1
        held = self.held = (self.y_val >= 0) & self.with_vec
        # P(the model's label is the true one | people's answers): the crowd's
        # own labels are not certain, so count expected right answers
        guess = proba[held].argmax(axis=1)
        val_right = self.post_answers[held, guess]
        self.val_right = np.where(self.val_known[held], guess == self.y_val[held], val_right)
        self.summary.update(version=self.version, oof_accuracy=float(self.oof_right.mean()),
                            temperature=clf.temperature_, validation=int(held.sum()),
                            validation_accuracy=float(self.val_right.mean()) if held.any() else None)

    def _crowd_with_model(self) -> None:
        """Annotator skills, with the model's held-out prediction as each
        item's prior where there is a model (the class prior elsewhere)."""
        from assay.quality.crowd_model import admit_unseen, annotator_accuracy

        held_proba = np.full((self.n, self.k), np.nan)
        if self.proba is not None:
            out = self.with_vec & ~self.val
            held_proba[out] = self.proba[out]
            held_proba[np.flatnonzero(self.train)] = self.oof  # items it trained on: out-of-fold only
        # as a prior, a class the model never trained on is not ruled out (admit_unseen)
        self.held_proba = held_proba = admit_unseen(held_proba)
        self.prior_proba = None if self.proba is None else admit_unseen(self.proba)
        fit = self._fit_crowd(held_proba, np.where(self.inp.known_mask, self.y, -1))
        if fit is None:
            return
        self.skills, self.default, self.prior = fit.skills(), fit.default_confusion.tolist(), fit.prior
        # The model's weight as a prior, learned with the skills from the
        # answers (its temperature was fitted on noisy labels: under-confident
        # about the truth when the crowd is weak). Everything that uses the
        # model as a prior uses it so weighed: the stored predictions (the
        # re-fit's and the resolver's priors), the open items' consensus and
        # the matching target; the auto-label threshold keeps the model's own
        # calibrated confidence (chosen on held-out items, whatever its scale).
        self.held_proba = fit.item_prior(held_proba)
        if self.proba is not None:
            self.prior_proba = fit.item_prior(self.prior_proba)
        self.summary["prior_weight"] = round(float(fit.prior_weight), 4)
        self.ans_ll, _ = self._loglik()
        self.summary["skills_refit"] = len(self.skills)
        n_of = self.inp.answers_by_annotator
        if self.s.target_match and self.target_c is not None:
            tau = self._match_target()
            self.summary.update(target=tau[0], target_predicted_accuracy=tau[1], baseline_predicted_accuracy=tau[2])
            self.target_c = self.plan_.target_confidence = tau[0]
        self.plan_.skills = [{"u": int(u), "c": c, "a": annotator_accuracy(c, self.prior), "n": n_of.get(u, 0)}
                             for u, c in self.skills.items()]
        self.plan_.prior, self.plan_.default = [float(x) for x in self.prior], self.default

    def _match_target(self) -> tuple[float, float, float]:
        """(target, its predicted accuracy, the k-vote majority's) under this
        step's crowd model (:func:`assay.quality.matching.matching_target`)."""
        from assay.quality.matching import matching_target

        inp = self.inp
        users = sorted(self.skills)
        conf = np.array([self.skills[u] for u in users])
        weights = np.array([inp.answers_by_annotator.get(u, 0) for u in users], float)  # drawn as often as they answer
        # the model's held-out predictions (out-of-fold where it trained): its
        # in-sample ones on its own training labels would flatter the prediction
        proba = self.held_proba
        model_prior = np.where(np.isfinite(proba).all(axis=1)[:, None], _log(np.nan_to_num(proba)),
                               _log(self.prior)[None, :])
        lp = model_prior + self.ans_ll
        auto_only = np.array([int(i) in inp.autos and not inp.autos[int(i)].audit for i in inp.item_ids], bool)
        lp[auto_only] = model_prior[auto_only]
        is_gold = inp.is_gold | inp.known_mask
        finished = np.array([inp.status.get(int(i)) in ("resolved", "review") for i in inp.item_ids], bool)
        open_ = ~(finished | auto_only | is_gold)
        # held to the baseline: the items still to finish (a surplus of accuracy
        # on finished items is not spent on the rest)
        if not open_.any():
            return float(self.target_c), float("nan"), float("nan")
        return matching_target(lp[open_], self.n_ans[open_], open_[open_], self.prior, conf, weights,
                               max_answers=self.s.max_answers, k=int(self.s.target_match), seed=self.seed)

    # ---- auto-labels

    def _threshold(self) -> None:
        """The auto-label threshold: held-out verified items + audits so far."""
        from assay.learn.autolabel import audit_verdict, choose_threshold

        inp, last = self.inp, self.inp.last
        self.threshold, self.state = None, "off"
        target = self.s.auto_label_target
        if target is not None:
            y, pos = self.y, {int(i): j for j, i in enumerate(inp.item_ids)}
            audited = [(a.confidence, a.code == y[pos[i]]) for i, a in inp.autos.items()
                       if a.audit and i in pos and y[pos[i]] >= 0
                       and (self.n_ans[pos[i]] > 0 or inp.known_mask[pos[i]])]
            # held out: validation items (the model never trained on them),
            # gold items by their out-of-fold predictions, and the audits
            is_known = inp.known_mask[self.train]
            # While the surer labels are on, only validation items labeled under
            # them take part — those their answers made sure, or that used up
            # max_answers trying: a label made to the ordinary target (below the
            # region, or waiting to be re-asked as the region moves with the
            # model) would sit among the sure ones, and one doubt at the top
            # of the sequence fails every threshold.
            in_test = np.ones(int(self.held.sum()), bool)
            if self.strict is not None:
                in_test = ((self.post_answers.max(axis=1) >= 1.0 - 2.0 * (1.0 - self.strict))
                           | (self.n_ans >= (self.s.max_answers or 1)) | self.val_known)[self.held]
            conf_h = np.r_[self.proba[self.held][in_test].max(axis=1), self.oof[is_known].max(axis=1),
                           [c for c, _ in audited]]
            right_h = np.r_[self.val_right[in_test], self.oof_right[is_known], [r for _, r in audited]]
            ok_audits = sum(r for _, r in audited)
            verdict = audit_verdict(ok_audits, len(audited), target=target, alpha=ALPHA)
            if last is not None and last.auto_state == "stopped":
                self.state = "stopped"
            else:
                self.threshold = choose_threshold(conf_h, right_h, target=target, alpha=ALPHA)
                if verdict == "fail" and last is not None and last.threshold is not None:
                    if self.threshold is not None and self.threshold <= last.threshold:
                        self.threshold = None  # the audits say the old one was too low: no lower again
                    if self.threshold is None:
                        self.state = "stopped"
                if self.state != "stopped":
                    self.state = "on" if self.threshold is not None else "off"
            self.summary.update(audits=len(audited), audits_correct=int(ok_audits), audit_verdict=verdict)
        self.summary.update(threshold=self.threshold, auto_state=self.state)

    def _verification(self) -> None:
        """Labels that check auto-labels must be surer than the auto-labels
        they check (their error may use a tenth of the auto-label error
        budget) — but only audits and the region of the validation share that
        can decide a threshold (verification_region; items further down are
        labeled to the ordinary target and join it as the threshold comes
        down), and only while that can pay for itself: a threshold is on, or
        the answers auto-labels could save (items nobody answered that the
        calibrated model already puts above the target, times the answers an
        answered item has taken so far) exceed what the surer labels cost
        (about two more answers per region item) and the model's estimated
        accuracy on the region reaches the target."""
        from assay.learn.autolabel import precision_from_answers

        target, n_ans, proba = self.s.auto_label_target, self.n_ans, self.proba
        self.strict = None
        region = np.zeros(self.n, bool)
        reachable = int(((n_ans == 0) & ~self.val & self.with_vec & (proba.max(axis=1) >= (target or 1))).sum())
        self.summary["auto_reachable"] = reachable
        if target is not None and self.state != "stopped":
            vi = np.flatnonzero(self.val & self.with_vec)
            region[vi[verification_region(proba[vi].max(axis=1), self.threshold, target)]] = True
            m = int(region.sum())
            per_item = float(n_ans[n_ans > 0].mean()) if (n_ans > 0).any() else 1.0
            # the model's accuracy on the region from the answers so far, however
            # few (a mean posterior would sit near the class prior): below the
            # target, surer labels would only confirm that
            seen = region & (n_ans > 0) & ~self.val_known
            estimate = (precision_from_answers(self.ans_ll[seen], proba[seen].argmax(axis=1), self.prior)
                        if seen.sum() >= MIN_TRAIN else None)
            self.summary["verify_estimate"] = estimate
            if self.threshold is not None or (reachable * per_item > 2.0 * m and estimate is not None
                                              and estimate >= target):
                self.strict = max(float(self.target_c or 0.0), 1.0 - (1.0 - target) / 10.0)
                self.summary["verify_region"] = m
        self.checked = self.audit_mask | region

    def _predictions(self) -> None:
        names, hp, clf = self.s.classes, self.held_proba, self.clf
        s = self.summary
        self.plan_.model = ModelVersion(
            version=self.version, n_train=int(self.train.sum()), temperature=clf.temperature_,
            oof_accuracy=s["oof_accuracy"], threshold=self.threshold, auto_state=self.state,
            metrics={"classes": names, "answers": self.inp.answers_total, "validation": s.get("validation"),
                     "validation_accuracy": s.get("validation_accuracy"), "verify_target": self.strict})
        # validation, audits: people decide unaided. Items the model trained on
        # (gold, reviewed, verified) get their out-of-fold prediction: a
        # pre-label never repeats a label the model was given, so suggestions
        # on gold are no better than elsewhere.
        self.plan_.predictions = [
            (int(self.inp.item_ids[j]), names[int(hp[j].argmax())], float(hp[j].max()),
             [round(float(x), 6) for x in hp[j]])
            for j in np.flatnonzero(self.with_vec & ~self.unaided)]

    def _reverts(self) -> None:
        """Auto-labels go back to people only when the audits failed: those
        below the raised threshold, or all of them once auto-labeling stopped.
        (A new model version that cannot certify a threshold yet labels nothing
        new, but what an earlier, certified version labeled stands.)"""
        inp = self.inp
        pos = {int(i): j for j, i in enumerate(inp.item_ids)}
        failed = self.summary.get("audit_verdict") == "fail"
        revert = [i for i, a in inp.autos.items()
                  if failed and (self.state != "on" or a.confidence < self.threshold)
                  and i in pos and self.n_ans[pos[i]] == 0]
        for i in revert:
            self.plan_.revert.append((i, int(inp.task_ids[pos[i]])))
            self.autos.pop(i)
        self.summary["auto_reverted"] = len(revert)

    def _new_auto_labels(self) -> None:
        """Items nobody answered, above the threshold; a random ``audit_rate``
        share of them still goes to people."""
        if self.state != "on":
            return
        inp, names = self.inp, self.s.classes
        conf_now = self.proba.max(axis=1)
        cand = np.flatnonzero(self.with_vec & (self.n_ans == 0) & (conf_now >= self.threshold) & ~self.val)
        new = [j for j in cand if int(inp.item_ids[j]) not in self.autos and not inp.known_mask[j]
               and not inp.is_gold[j]]
        audit_rate = self.s.audit_rate or 0.0
        for j in new:
            audit = bool(self.rng.random() < audit_rate)
            self.unaided[j] |= audit
            self.checked[j] |= audit
            self.plan_.auto_labels.append(NewAutoLabel(int(inp.item_ids[j]), int(inp.task_ids[j]),
                                                       names[int(self.proba[j].argmax())], float(conf_now[j]), audit))
        self.summary["auto_labeled"] = len(new)

    # ---- consensus and priorities

    def _rule(self, j: int) -> ItemRule | None:
        """How item ``j`` is written: model-informed consensus for items still
        open; answers alone (to the verification target) for items people
        label unaided; None for items this step leaves alone."""
        inp, item = self.inp, int(self.inp.item_ids[j])
        status = inp.status.get(item)
        if inp.is_gold[j] or inp.known_mask[j] or status == "review":
            return None
        task = int(inp.task_ids[j])
        if self.unaided[j]:
            answered = self.target_c is not None and self.strict is not None and (
                bool(self.checked[j]) or status != "resolved")
            target = (self.strict if self.checked[j] else self.target_c) if answered else None
            return ItemRule(item, task, _log(self.prior), target, when_answered=answered)
        if not self.with_vec[j] or status == "resolved":
            return None
        return ItemRule(item, task, _log(self.prior_proba[j]), self.target_c)

    def _consensus(self) -> None:
        inp, plan = self.inp, self.plan_
        counts = {"resolved": 0, "review": 0, "open": 0}
        plan.crowd_skills, plan.crowd_default = self.skills, self.default
        for j in range(self.n):
            rule = self._rule(j)
            if rule is None:
                continue
            plan.rules[rule.item_id] = rule
            row = item_consensus(rule, self.ans_ll[j], int(self.n_ans[j]), int(inp.answer_count[j]),
                                 int(inp.needed[j]), self.s.classes, self.s.max_answers)
            if row is None:
                continue
            if not self.unaided[j]:
                counts[row.status] += 1
            plan.consensus.append(row)
        self.summary["consensus"] = counts

    def _open_after(self) -> np.ndarray:
        """Which tasks have open slots once the plan is applied (as the ledger
        will leave them, nothing else happening meanwhile)."""
        inp, plan = self.inp, self.plan_
        at = {int(t): j for j, t in enumerate(inp.task_ids)}
        open_ = inp.open_now.copy()
        for _, t in plan.revert:
            j = at[t]
            if not inp.is_gold[j] and inp.answer_count[j] < plan.overlap:
                open_[j] = plan.overlap - inp.answer_count[j] - inp.leases[j] > 0
        for a in plan.auto_labels:
            if not a.audit:
                open_[at[a.task_id]] = False
        for row in plan.consensus:
            if row.step is not None:
                open_[at[row.task_id]] = {"resolved": False, "review": False}.get(row.status, open_[at[row.task_id]])
                if row.step == "more":
                    open_[at[row.task_id]] = True
        return open_

    def _priorities(self) -> None:
        """Active learning: started items first, then an uncertain, diverse
        batch (cold start: a diverse cover); verification labels before all."""
        from assay.learn.active import select_batch

        inp, plan, n_ans = self.inp, self.plan_, self.n_ans
        open_after = self._open_after()
        labeled = ((n_ans > 0) | (self.y >= 0) | np.isin(inp.item_ids, np.array(list(self.autos), np.int64))
                   | inp.is_gold | self.val)
        fresh = open_after & ~labeled & self.with_vec
        chosen: list[int] = []
        if fresh.any():
            sub = np.flatnonzero(self.with_vec)
            pick = select_batch(inp.X[inp.vec_row[sub]], None if self.proba is None else self.proba[sub],
                                ~fresh[sub], self.batch, rng=self.rng)
            chosen = [int(inp.task_ids[sub[i]]) for i in pick]
        tid = inp.task_ids.tolist()
        pr = plan.priorities
        pr.update({tid[j]: PRIORITY_STARTED for j in np.flatnonzero(n_ans > 0)})
        pr.update({tid[j]: PRIORITY_VALIDATION for j in np.flatnonzero(self.val & (n_ans == 0))})
        pr.update({t: PRIORITY_BATCH + 0.4 * (len(chosen) - r) / (len(chosen) + 1) for r, t in enumerate(chosen)})
        verify = np.flatnonzero(self.checked) if self.strict is not None else []
        pr.update({tid[j]: PRIORITY_VERIFY for j in verify})
        plan.targets = {tid[j]: self.strict for j in verify}
        self.summary["verify_target"] = self.strict
        self.summary["batch"] = len(chosen)
