"""Skill-aware routing: a DB-free replica of ``assay simulate``'s arrival model.

    python benchmarks/quality/bench_routing.py [--sets d_product,rte,...] [--seeds 0,1,2]
        [--policies fixed,adaptive,routed] [--rule saved|gain] [--random-share 0.1]
        [--error-cost X] [--window N [--window-random]] [--fit-all] [--no-multi] [--oracle]
        [--decline saved|info [--decline-info F] [--rescue-price X]]
        [--data ../shared/data/crowd] [--out results.jsonl] [--final ds|auto]
    python benchmarks/quality/bench_routing.py --render results.jsonl [...]

Annotators arrive in a random order (seeded): each worker as many times as
they really answered. On arrival the policy picks among the items this
worker really answered, has not answered yet and that are still open; their
real answer is revealed. Nobody is starved: an arrival gets an item whenever
one of theirs is open (an arrival with nothing open is lost: no answer).

- ``fixed``: every item stays open until all its answers are in; the worker
  gets their first open item in pool order (items in a seeded random order,
  the hand-out's ``priority DESC, id``). Uses every answer.
- ``adaptive``: the same pick; items close under the adaptive stop rule of
  :mod:`assay.engine.redundancy` (confidence >= target 0.995, review at
  ``max_answers`` = the set's median answers per item, settle table for
  binary sets, re-fit of the skills with ``redundancy.fit_crowd`` when the
  answers grew by 25 % (>= 200), the online posterior in between).
- ``routed``: adaptive's stopping; the pick by
  :func:`assay.quality.routing.route` (``--rule saved``, the default: the
  answers-saved score with the close table built at every re-fit, error cost
  ``1 / (1 - target)`` unless ``--error-cost``; ``--rule gain``: the
  expected information gain) with a random share (``--random-share``,
  default ``routing.RANDOM_SHARE``), among all the worker's open candidates
  or the first ``--window`` of them in pool order. ``--fit-all``: its
  re-fits learn the skills from every answered item (the recommended set-up
  for routed projects: see docs/quality.md "Skill-aware routing").

``--decline`` (routed, with a close table; issue 13 research): an arrival may
be declined: it is lost and no answer is used (this drops "nobody is
starved" for that arrival). Only annotators a re-fit measured on >= 20
answers are declined. ``saved``: when no candidate's ``answers_saved`` is
>= 0 (their answer is expected to save less than the one it costs);
``info``: when they carry less than ``--decline-info`` (0.5) of the
crowd's answer-weighted mean information per answer (mutual information
between answer and class under the fit's prior). A declined annotator
still answers the candidate with the largest ``d ** (max_answers - n - 1)
* error_cost * (P(wrong label now) - E[P(wrong label) after the answer])``
when that is >= 1 answer (``_rescue``): ``d`` is the share of arrivals
declined so far, the power the chance that none of the item's remaining
slots goes to an accepted annotator; an item with no answer has no label
(wrong); ``error_cost`` is the close table's unless ``--rescue-price``
(diagnosis: the trade-off below the stop rule's own price).

``--oracle`` (diagnosis): every re-fit uses the skills of all the set's
answers. Final labels: ``DawidSkene()`` over the used answers (``--final
auto``: ``auto``), against the truth, minus the same over every answer
(ds-all). Prints one JSON line per (set, seed, policy) and a markdown table;
``--render`` prints the bar's table from earlier JSON lines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from assay.engine import redundancy  # noqa: E402
from assay.quality import make_aggregator, online, routing  # noqa: E402

BAR_SETS = ["d_product", "d_possent", "rte", "sentiment_polarity"]
CHECK_SETS = ["s_rel", "web", "duck"]
TARGET = 0.995
REFIT_MIN, REFIT_GROWTH = 200, 0.25
ERROR_COST = None  # None: routing's default, 1 / (1 - target)
MULTI = True  # the close table for more than two classes too (top class vs the rest)
WINDOW_RANDOM = False  # --window-random: the window is a random sample of the candidates
WINDOW = 0  # candidates scored per pick, in pool order (0: all)
FIT_ALL = False  # --fit-all: skills from every answered item
ORIENT = True  # re-fits name their classes by routing.orientation (--no-orient: as fitted)
ORACLE = None  # diagnosis only (--oracle): skills from every answer
DECLINE = ""  # --decline: "saved" or "info" (routed): arrivals may be declined
DECLINE_INFO = 0.5  # --decline-info: the share of the crowd's mean information below which "info" declines
RESCUE_PRICE = None  # --rescue-price: answers per wrong label in _rescue (None: the error cost)
DECLINE_MIN = 20  # only annotators a re-fit measured on at least this many answers are declined


class Crowd:
    """A set's answers coded: items 0..n-1, workers 0..W-1, classes 0..K-1."""

    def __init__(self, folder: Path):
        a = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
        a = a.drop_duplicates(["item", "worker"], keep="last")
        t = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
        classes = sorted(set(a["label"]), key=lambda s: (len(s), s))
        self.k = len(classes)
        code = {c: i for i, c in enumerate(classes)}
        self.item_names, self.items = np.unique(a["item"].to_numpy(), return_inverse=True)
        self.worker_names, self.workers = np.unique(a["worker"].to_numpy(), return_inverse=True)
        self.labels = a["label"].map(code).to_numpy().astype(np.intp)
        self.n, self.w = len(self.item_names), len(self.worker_names)
        tr = dict(zip(t["item"], t["label"]))
        self.truth = np.array([code.get(tr.get(i, ""), -1) for i in self.item_names])
        per_item = np.bincount(self.items, minlength=self.n)
        self.max_answers = int(math.ceil(np.median(per_item)))


def final_labels(crowd: Crowd, idx: np.ndarray, method: str) -> np.ndarray:
    """Labels of the final aggregation over the answers ``idx`` (-1: no answer)."""
    out = np.full(crowd.n, -1)
    items_u, ic = np.unique(crowd.items[idx], return_inverse=True)
    _, wc = np.unique(crowd.workers[idx], return_inverse=True)
    model = make_aggregator(method).fit(ic, wc, crowd.labels[idx], n_classes=crowd.k)
    out[items_u] = np.asarray(model.labels_)
    return out


def accuracy(crowd: Crowd, labels: np.ndarray) -> float:
    has = crowd.truth >= 0
    return 100.0 * float((labels[has] == crowd.truth[has]).mean())


def orientation(confusions: np.ndarray, weights: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Diagnosis (``renamed_fits`` in the output): the naming of a fit's
    latent classes under which the crowd, answer-weighted, is right most
    often (``perm``: new class k = the fit's class ``perm[k]``; the identity
    when the fit is already named so). A check that a degenerate re-fit is
    not a mere label switch: on d_product seed 5 (routed, skills from items
    with two or more answers) a re-fit went to a prior of 0.023 / 0.977 with
    every later item closed on the wrong label, and this check did not fire
    there (the crowd still looked better than chance under that fit); what
    cured it was fitting the skills on every answered item (``--fit-all``).
    """
    c = np.asarray(confusions, dtype=float)
    w = np.asarray(weights, dtype=float)
    k = c.shape[-1]
    if c.shape[0] == 0 or w.sum() <= 0:
        return np.arange(k)
    score = np.asarray(prior, dtype=float)[:, None] * np.tensordot(w / w.sum(), c, axes=1)  # [old, answer]
    if k <= 7:
        from itertools import permutations

        perms = np.array(list(permutations(range(k))))
        best = perms[np.argmax(score[perms, np.arange(k)].sum(axis=1))]
    else:  # greedy: the largest remaining cell first
        best, free_old, free_new = np.full(k, -1), set(range(k)), set(range(k))
        for flat in np.argsort(-score, axis=None):
            z, a = divmod(int(flat), k)
            if z in free_old and a in free_new:
                best[a] = z
                free_old.discard(z)
                free_new.discard(a)
    ident = np.arange(k)
    # keep the fit's naming on ties (no change without a reason)
    if score[best, ident].sum() <= score[ident, ident].sum() + 1e-12:
        return ident
    return np.asarray(best, dtype=np.intp)


def _fit_all(c: Crowd, idx: np.ndarray):
    """``redundancy.fit_crowd``'s result, but Dawid-Skene over every used answer."""
    from types import SimpleNamespace

    from assay.quality import DawidSkene

    items_u, ic = np.unique(c.items[idx], return_inverse=True)
    users_u, uc = np.unique(c.workers[idx], return_inverse=True)
    m = DawidSkene().fit(ic, uc, c.labels[idx], n_classes=c.k)
    conf = np.asarray(m.confusion_)
    per = np.bincount(uc, minlength=len(users_u))
    return SimpleNamespace(items=items_u, users=users_u, confusion=conf, per_worker=per, prior=list(m.prior_),
                           log_proba=np.log(np.maximum(np.asarray(m.proba_), online.TINY)),
                           default=online.crowd_confusion(conf, per).tolist())


class Replay:
    """One run of one policy on one set and seed."""

    def __init__(self, crowd: Crowd, seed: int, policy: str, rule: str, random_share: float):
        self.c, self.policy, self.rule, self.random_share = crowd, policy, rule, random_share
        rng = np.random.default_rng(seed)
        self.rng = np.random.default_rng([seed, 1])
        rank = np.empty(crowd.n, np.intp)
        rank[rng.permutation(crowd.n)] = np.arange(crowd.n)  # pool order
        self.rank = rank
        order = np.lexsort((rank[crowd.items], crowd.workers))
        starts = np.searchsorted(crowd.workers[order], np.arange(crowd.w + 1))
        self.w_rows = [order[starts[w]:starts[w + 1]] for w in range(crowd.w)]  # answer rows, pool order
        self.w_items = [crowd.items[r] for r in self.w_rows]
        self.w_done = [np.zeros(len(r), bool) for r in self.w_rows]
        self.arrivals = rng.permutation(crowd.workers)
        k = crowd.k
        self.prior = np.full(k, 1.0 / k)
        self.conf = np.tile(np.asarray(online.default_confusion(k)), (crowd.w, 1, 1))
        self.lp = np.zeros((crowd.n, k))
        self.n_ans = np.zeros(crowd.n, np.intp)
        self.closed = np.zeros(crowd.n, bool)
        self.table = None
        self.close = None
        self.used: list[int] = []
        self.last_fit, self.refits, self.flips = 0, 0, 0
        self.weights = np.ones(crowd.w)  # answers per worker in the last fit (the crowd's mixture)
        self.known = np.zeros(crowd.w, bool)  # measured by a re-fit
        self.info = np.zeros(crowd.w)  # information per answer (nats) under the last re-fit
        self.crowd_info = 0.0  # its answer-weighted mean
        self.declined, self.handed, self.rescued = 0, 0, 0

    # ----------------------------------------------------------- stopping
    def _decide(self, i: int) -> bool:
        if self.policy == "fixed":
            return False
        lp = self.lp[i]
        p = np.exp(lp - lp.max())
        conf = p.max() / p.sum()
        if conf >= TARGET or self.n_ans[i] >= self.c.max_answers:
            return True
        return online.settled(lp.tolist(), self.c.max_answers - int(self.n_ans[i]), self.table)

    def _refit(self) -> None:
        c = self.c
        idx = np.asarray(self.used) if ORACLE is None else np.arange(len(c.items))
        code_of = {i: i for i in range(c.k)}
        fit = redundancy.fit_crowd(c.items[idx], c.workers[idx], c.labels[idx], code_of, {}, {})
        if FIT_ALL and self.policy == "routed":  # skills from every answered item, not only those with 2+ answers
            fit = _fit_all(c, idx)
        if ORIENT:  # name the latent classes so that the crowd is right more often than not
            perm = orientation(fit.confusion, fit.per_worker, fit.prior)
            if (perm != np.arange(c.k)).any():
                self.flips += 1
                fit.confusion = fit.confusion[:, perm, :]
                fit.prior = [fit.prior[j] for j in perm]
                fit.log_proba = fit.log_proba[:, perm]
                fit.default = np.asarray(fit.default)[perm].tolist()
        default = np.asarray(fit.default)
        self.conf[:] = default
        self.known[:] = False
        self.conf[fit.users] = fit.confusion
        self.known[fit.users] = True
        self.weights = np.zeros(c.w)
        self.weights[fit.users] = fit.per_worker
        self.prior = np.asarray(fit.prior)
        self.lp[:] = np.log(np.maximum(self.prior, online.TINY))
        self.lp[fit.items] = fit.log_proba
        if ORACLE is not None:  # diagnosis: the skills of every answer, the posteriors of the used ones
            self.lp[:] = np.log(np.maximum(self.prior, online.TINY))
            for row in self.used:
                self.lp[c.items[row]] += np.log(np.maximum(self.conf[c.workers[row]][:, c.labels[row]], online.TINY))
        self.table = redundancy._settle_table(fit, c.k, TARGET, c.max_answers, "flip")
        if self.policy == "routed" and (c.k == 2 or MULTI):
            self.close = routing.close_table(fit.confusion, fit.per_worker, TARGET, c.max_answers, self.table,
                                                 error_cost=ERROR_COST)
        if self.policy != "fixed":
            answered = np.flatnonzero(self.n_ans > 0)
            self.closed[:] = False
            for i in answered:
                self.closed[i] = self._decide(i)
        self.last_fit = len(self.used)
        self.refits += 1
        self.info = routing.expected_gain(np.tile(self.prior, (c.w, 1)), self.conf)
        self.crowd_info = float((self.weights * self.info).sum() / max(self.weights.sum(), 1.0))

    # ----------------------------------------------------------- picking
    def _pick(self, w: int, cand: np.ndarray) -> int:
        """Index into ``cand`` (positions in the worker's rows, pool order)."""
        if self.policy != "routed":
            return 0
        if WINDOW and WINDOW_RANDOM and cand.size > WINDOW:  # a random window, kept in pool order
            cand = np.sort(self.rng.choice(cand, WINDOW, replace=False))
        elif WINDOW:  # the hand-out scores the first open candidates only
            cand = cand[:WINDOW]
        items = self.w_items[w][cand]
        return routing.route(self.lp[items], self.conf[w], self.n_ans[items], self.rng,
                             random_share=self.random_share, rule=self.rule, table=self.close)

    # ----------------------------------------------------------- declining
    def _declines(self, w: int, cand: np.ndarray) -> bool:
        """Whether a routed arrival is declined (``--decline``)."""
        if self.policy != "routed" or not DECLINE or self.close is None:
            return False
        if not self.known[w] or self.weights[w] < DECLINE_MIN:  # only the measured are declined
            return False
        if DECLINE == "info":
            return bool(self.info[w] < DECLINE_INFO * self.crowd_info)
        items = self.w_items[w][cand]
        return float(np.max(routing.answers_saved(self.lp[items], self.n_ans[items], self.conf[w], self.close))) < 0.0

    def _rescue(self, w: int, cand: np.ndarray):
        """Index into ``cand`` that a declined annotator still answers, or None.

        If declined, an item keeps its label (or has none: wrong) unless one
        of its remaining ``max_answers - n - 1`` slots goes to an accepted
        annotator; each is declined with the share ``d`` of arrivals
        declined so far. The expected wrong labels this answer avoids,
        times the stop rule's price of a wrong label, against the one
        answer it costs."""
        c = self.c
        items = self.w_items[w][cand]
        n = self.n_ans[items]
        d = self.declined / max(self.declined + self.handed, 1)
        risk = d ** np.maximum(c.max_answers - n - 1, 0)
        p = np.exp(self.lp[items] - self.lp[items].max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        wrong_now = np.where(n == 0, 1.0, 1.0 - p.max(axis=1))
        wrong_after = np.zeros(len(items))
        for a in range(c.k):  # P(answer a) * P(wrong | answer a) = sum - max of the joint
            joint = p * self.conf[w][:, a]
            wrong_after += joint.sum(axis=1) - joint.max(axis=1)
        price = 1.0 / (1.0 - TARGET) if ERROR_COST is None else ERROR_COST
        price = price if RESCUE_PRICE is None else RESCUE_PRICE
        value = risk * price * (wrong_now - wrong_after)
        j = int(np.argmax(value))
        return j if value[j] >= 1.0 else None

    def run(self) -> dict:
        c = self.c
        t0 = time.perf_counter()
        for w in self.arrivals:
            cand = np.flatnonzero(~self.w_done[w] & ~self.closed[self.w_items[w]])
            if not cand.size:
                continue
            if self._declines(w, cand):
                j = self._rescue(w, cand)
                if j is None:
                    self.declined += 1
                    continue
                j = cand[j]
                self.rescued += 1
            else:
                j = cand[self._pick(w, cand)]
            self.handed += 1
            self.w_done[w][j] = True
            row = self.w_rows[w][j]
            i, lab = c.items[row], c.labels[row]
            self.lp[i] += np.log(np.maximum(self.conf[w][:, lab], online.TINY))
            self.n_ans[i] += 1
            self.used.append(row)
            self.closed[i] = self._decide(i)
            if self.policy != "fixed" and len(self.used) - self.last_fit >= max(REFIT_MIN, REFIT_GROWTH * len(self.used)):
                self._refit()
        return {"answers_used": len(self.used), "share": 100.0 * len(self.used) / len(c.items),
                "declined": self.declined, "rescued": self.rescued, "unanswered": int((self.n_ans == 0).sum()),
                "refits": self.refits, "renamed_fits": self.flips, "seconds": round(time.perf_counter() - t0, 2)}


def render(rows: list[dict]) -> str:
    """The bar's table from result rows: per set, adaptive and routed share /
    delta per seed, routed's share of adaptive's answers, and the two checks."""
    out = ["| set | adaptive: share / Δ per seed | routed: share / Δ per seed | routed / adaptive answers "
           "| ≤ 60 % and Δ ≥ −0.5 (every seed) | ≤ 85 % of adaptive, mean Δ ≥ adaptive − 0.2 |",
           "|---|---|---|---|---|---|"]
    for s in dict.fromkeys(r["set"] for r in rows):
        ad = sorted((r for r in rows if r["set"] == s and r["policy"] == "adaptive"), key=lambda r: r["seed"])
        ro = sorted((r for r in rows if r["set"] == s and r["policy"] == "routed"), key=lambda r: r["seed"])
        if not ad or not ro:
            continue
        cell = lambda rs: " · ".join(f"{r['share']:.1f} % / {r['delta']:+.2f}" for r in rs)  # noqa: E731
        ratio = sum(r["answers_used"] for r in ro) / sum(r["answers_used"] for r in ad)
        bar1 = all(r["share"] <= 60 and r["delta"] >= -0.5 for r in ro)
        d_ad = sum(r["delta"] for r in ad) / len(ad)
        d_ro = sum(r["delta"] for r in ro) / len(ro)
        bar2 = ratio <= 0.85 and d_ro >= d_ad - 0.2  # at least as accurate, within 0.2
        out.append(f"| {s} | {cell(ad)} | {cell(ro)} | {100 * ratio:.1f} % (Δ {d_ro - d_ad:+.2f}) "
                   f"| {'holds' if bar1 else 'fails'} | {'holds' if bar2 else 'fails'} |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    ap.add_argument("--sets", default=",".join(BAR_SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--policies", default="fixed,adaptive,routed")
    ap.add_argument("--rule", default="saved", choices=["saved", "gain"])
    ap.add_argument("--random-share", type=float, default=routing.RANDOM_SHARE)
    ap.add_argument("--final", default="ds")
    ap.add_argument("--out")
    ap.add_argument("--render", nargs="*", help="print the bar's table from these JSON-lines files, run nothing")
    ap.add_argument("--error-cost", type=float, default=None,
                    help="answers per expected wrong label in the close table (default: 1 / (1 - target))")
    ap.add_argument("--fit-all", action="store_true", help="routed: re-fit skills on every answered item (as recommended for routed projects)")
    ap.add_argument("--no-orient", action="store_true", help="keep each re-fit's class naming as EM left it")
    ap.add_argument("--no-multi", action="store_true", help="more than two classes: the gain rule, no close table")
    ap.add_argument("--window-random", action="store_true", help="the window: a random sample of the candidates")
    ap.add_argument("--window", type=int, default=0, help="score only the first N open candidates (pool order)")
    ap.add_argument("--oracle", action="store_true", help="diagnosis: skills fitted on every answer")
    ap.add_argument("--decline", default="", choices=["", "saved", "info"],
                    help="routed: decline arrivals whose answer is not worth buying (see the docstring)")
    ap.add_argument("--decline-info", type=float, default=0.5,
                    help="--decline info: the share of the crowd's mean information per answer below which to decline")
    ap.add_argument("--rescue-price", type=float, default=None,
                    help="--decline: answers per wrong label when a declined annotator is still given an item (default: the error cost)")
    args = ap.parse_args(argv)
    if args.render:
        print(render([json.loads(line) for f in args.render for line in open(f) if line.strip()]))
        return
    data = Path(args.data)
    global ORACLE, ERROR_COST, WINDOW, MULTI, ORIENT, FIT_ALL, WINDOW_RANDOM, DECLINE, DECLINE_INFO, RESCUE_PRICE
    DECLINE, DECLINE_INFO, RESCUE_PRICE = args.decline, args.decline_info, args.rescue_price
    WINDOW_RANDOM = args.window_random
    ORIENT = not args.no_orient
    FIT_ALL = args.fit_all
    MULTI = not args.no_multi
    WINDOW = args.window
    ERROR_COST = args.error_cost
    ORACLE = True if args.oracle else None
    out = open(args.out, "a") if args.out else None
    rows = []
    for s in args.sets.split(","):
        crowd = Crowd(data / s)
        base = accuracy(crowd, final_labels(crowd, np.arange(len(crowd.items)), args.final))
        for seed in [int(x) for x in args.seeds.split(",")]:
            for pol in args.policies.split(","):
                rep = Replay(crowd, seed, pol, args.rule, args.random_share)
                res = rep.run()
                acc = accuracy(crowd, final_labels(crowd, np.asarray(rep.used), args.final))
                rec = {"oracle": bool(args.oracle), "set": s, "seed": seed, "policy": pol, "rule": args.rule if pol == "routed" else None,
                       "random_share": args.random_share if pol == "routed" else None,
                       "error_cost": ERROR_COST if pol == "routed" else None, "orient": ORIENT, "fit_all": FIT_ALL and pol == "routed", "window": WINDOW if pol == "routed" else None,
                       "window_random": WINDOW_RANDOM if pol == "routed" else None, "final": args.final,
                       "decline": (DECLINE or None) if pol == "routed" else None,
                       "decline_info": DECLINE_INFO if pol == "routed" and DECLINE == "info" else None,
                       "rescue_price": RESCUE_PRICE if pol == "routed" and DECLINE else None,
                       "ds_all": round(base, 2), "accuracy": round(acc, 2), "delta": round(acc - base, 2), **res}
                rows.append(rec)
                line = json.dumps(rec)
                print(line, flush=True)
                if out:
                    out.write(line + "\n")
                    out.flush()
    print("\n| set | seed | policy | used (share) | acc | Δ ds-all |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['seed']} | {r['policy']} | {r['answers_used']:,} ({r['share']:.1f} %) "
              f"| {r['accuracy']:.2f} | {r['delta']:+.2f} |")


if __name__ == "__main__":
    main()
