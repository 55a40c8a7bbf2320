"""Adaptive redundancy for spans: can *any* stop rule reach the issue 14 bar
(<= 50 % of the answers, F1 vs truth >= all-answers F1 - 0.01)?

Research bench behind docs/spans.md, "Adaptive redundancy (replayed)". Sets:
``../shared/data/spans/conll_crowd_val`` and the synthetic crowd
(``assay.quality._spans_synth``, 1,500 sentences, 40 workers, 4 answers
each, seed 11). Seeds 0-2 are the answers' arrival orders, drawn exactly as
:func:`assay.quality.shape_redundancy.replay_adaptive` draws them.

Three parts (``--part``):

``bound``  the sequence model (``seq``, what ``auto`` picks here) is fitted
    on every answer; with those parameters held fixed, each sentence is
    decoded from the first k answers of its arrival order (k = 1 .. all).
    *Consensus oracle*: per sentence, the smallest k >= start whose spans
    equal the all-answers spans (what a perfect "stop when it will not
    change" rule needs). *Truth oracle*: the fewest answers, choosing k per
    sentence with the truth in hand, that keep F1 >= all - 0.01 (F1 >= F is
    linear in the counts, 2 TP - F * predicted >= F * true, so it is a
    knapsack; the Lagrangian's infeasible side is a lower bound, its
    feasible side a plan that meets it).
``fixed``  stop rules with the same fixed parameters (skills as well known
    as they can be), sentence by sentence: ``product`` (the replay's rule:
    P(every token's tag right) >= t), ``experr`` (expected span errors
    E[FP] + E[FN] = sum over kept spans of (1 - p) + E[true spans] - sum of
    kept p, <= 1 - t), ``voi`` (myopic value of one more answer: expected
    errors now minus their expectation after one simulated answer -- true
    tags drawn from the posterior chain, a worker drawn by workload, that
    worker's tags from their confusion; 8 draws -- stop when below c).
``refit``  the real replay (every round re-fits ``auto`` on the answers
    revealed) with the ``product`` and ``experr`` rules, start 2.

    python benchmarks/quality/bench_spans_stop_rules.py [--part bound fixed refit] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from assay.quality._spans_synth import synthetic_span_crowd  # noqa: E402
from assay.quality.io import read_jsonl  # noqa: E402
from assay.quality.spans import SPAN_METHODS, SequenceCrowd, TokenAnswers, choose_method, encode_span_rows  # noqa: E402

CONLL = HERE.parents[2] / "shared" / "data" / "spans" / "conll_crowd_val"
OUT = HERE.parent / "results" / "2026-12-04" / "issue14_spans_stop_rules.jsonl"
SEEDS = (0, 1, 2)
FIXED_RULES = {"product": [0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5],
               "experr": [0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3],
               "voi": [0.02, 0.05, 0.1, 0.15, 0.2]}
REFIT_RULES = [(2, "product", t) for t in (0.99, 0.95, 0.6, 0.4, 0.2)] + \
    [(2, "experr", t) for t in (0.99, 0.95, 0.8, 0.7, 0.5)] + [(1, "product", 0.99), (1, "experr", 0.99)]


def load(name: str):
    if name == "conll_crowd_val":
        truth = {r["item"]: r["spans"] for r in read_jsonl(CONLL / "truth.jsonl")}
        return {r["item"]: r for r in read_jsonl(CONLL / "items.jsonl")}, read_jsonl(CONLL / "answers.jsonl"), truth
    return synthetic_span_crowd(1500, 40, 4, seed=11)


class Crowd:
    """One set encoded once; answer rows selected by masks."""

    def __init__(self, items, rows, truth) -> None:
        self.rows = rows
        self.flat, self.toks, self.ta = encode_span_rows(rows, items)
        self.n_items, self.n_workers = len(self.flat.items), len(self.flat.workers)
        self.avail = np.bincount(self.ta.row_item, minlength=self.n_items)
        ptr, ix = self.toks.sent_ptr, {it: i for i, it in enumerate(self.flat.items)}
        self.truth = [set() for _ in range(self.n_items)]
        for it, spans in truth.items():
            i = ix[it]
            st, en = self.toks.start[ptr[i]:ptr[i + 1]], self.toks.end[ptr[i]:ptr[i + 1]]
            for s, e, lab in spans:
                f, la = int(np.searchsorted(st, s)), int(np.searchsorted(en, e))
                exact = f < st.size and la < en.size and st[f] == s and en[la] == e
                self.truth[i].add((int(ptr[i]) + f, int(ptr[i]) + la, lab) if exact else ("off-token", s, e, lab))

    def ranks(self, seed: int) -> np.ndarray:
        """Each answer row's place in its item's arrival order (replay_adaptive's draw)."""
        by_item: dict = {}
        for r in self.rows:
            by_item.setdefault(r["item"], []).append(r["worker"])
        rng, place = np.random.default_rng(seed), {}
        for it, ws in by_item.items():
            for pos, j in enumerate(rng.permutation(len(ws))):
                place[(it, ws[j])] = pos
        f = self.flat
        return np.array([place[(f.items[i], f.workers[w])] for i, w in zip(self.ta.row_item, self.ta.row_worker)])

    def sub(self, keep) -> TokenAnswers:
        ta = self.ta
        return TokenAnswers(ta.lengths, ta.row_item[keep], ta.row_worker[keep],
                            ta.tags[np.repeat(keep, ta.lengths[ta.row_item])], ta.n_types)

    def fit(self, ta: TokenAnswers, model):
        return model.fit(ta.lengths, ta.row_item, ta.row_worker, ta.tags, n_types=ta.n_types,
                         n_workers=self.n_workers)

    def spans(self, m) -> list[set]:
        out = [set() for _ in range(self.n_items)]
        owner = np.searchsorted(self.toks.sent_ptr, m.span_first_, side="right") - 1
        for o, f, la, t in zip(owner, m.span_first_, m.span_last_, m.span_type_):
            out[o].add((int(f), int(la), self.flat.types[t]))
        return out

    def counts(self, spans) -> np.ndarray:
        """(I, 3): true positives, predicted, true per sentence."""
        return np.array([(len(s & t), len(s), len(t)) for s, t in zip(spans, self.truth)])

    def expected_errors(self, m) -> np.ndarray:
        """E[FP] + E[FN] per sentence under the model (span probabilities and P(B-) per token)."""
        ptr = self.toks.sent_ptr
        owner = np.searchsorted(ptr, m.span_first_, side="right") - 1
        kept_p = np.bincount(owner, weights=m.span_confidence_, minlength=self.n_items)
        kept_q = np.bincount(owner, weights=1 - m.span_confidence_, minlength=self.n_items)
        e_true = np.add.reduceat(np.append(m.proba_[:, 1::2].sum(1), 0.0), ptr[:-1]) * (np.diff(ptr) > 0)
        return kept_q + np.maximum(e_true - kept_p, 0.0)


class Fixed(SequenceCrowd):
    """``seq`` with a fitted model's parameters held fixed: one E-step and the decode."""

    def __init__(self, base) -> None:
        super().__init__(max_iter=1)
        self.base = base

    def _m_confusion(self, d, gamma):
        self.confusion_ = self.base.confusion_
        return self.base.log_confusion_

    def _pair_counts(self, d, gamma):
        return None

    def _e_step(self, d, chain, log_e, gamma, xi):
        self.log_transition_, self.log_start_ = self.base.log_transition_, self.base.log_start_
        return chain.forward_backward(log_e, self.log_transition_, self.log_start_)


def f1(c) -> float:
    tp, pred, true = np.asarray(c).reshape(-1, 3).sum(0)
    return float(2 * tp / (pred + true))


def _draw(p, rng):
    p = p / p.sum(1, keepdims=True)
    return np.minimum((np.cumsum(p, 1) < rng.random(p.shape[0])[:, None]).sum(1), p.shape[1] - 1)


def simulate_answer(m, worker_p, rng):
    """One more answer for every sentence: true tags drawn from the posterior
    chain (forward sampling with the backward messages), a worker drawn by
    workload, that worker's tags from their previous-class-aware confusion."""
    ch, st = m._chain, m._state
    a, e, beta = (st[k].astype(float) for k in ("a", "e", "beta"))
    g = m.proba_[ch.token_of]
    n_s = ch.first_rows.size
    w, cls = rng.choice(worker_p.size, size=n_s, p=worker_p), np.zeros(n_s, np.int64)
    y, o = np.zeros(ch.n_tokens, np.int64), np.zeros(ch.n_tokens, np.int64)
    prev = None
    for j, sl, n in ch._blocks():
        y[sl] = _draw(g[sl] if j == 0 else a[y[prev.start:prev.start + n]] * e[sl] * beta[sl] + 1e-300, rng)
        r = np.arange(n)
        o[sl] = _draw(m.confusion_[w[r], cls[r], :, y[sl]] + 1e-300, rng)
        cls[r] = (o[sl] + 1) // 2
        prev = sl
    tags = np.empty(ch.n_tokens, np.int64)
    tags[ch.token_of] = o
    w_item = np.empty(ch.lengths.size, np.int64)
    w_item[ch.order[:n_s]] = w
    return tags, w_item


def value_of_one_more(crowd, base, ta, m, worker_p, rng, draws=8) -> np.ndarray:
    now = crowd.expected_errors(m)
    has = ta.lengths > 0
    after = []
    for _ in range(draws):
        tags, w_item = simulate_answer(m, worker_p, rng)
        plus = TokenAnswers(ta.lengths, np.concatenate([ta.row_item, np.flatnonzero(has)]),
                            np.concatenate([ta.row_worker, w_item[has]]), np.concatenate([ta.tags, tags]), ta.n_types)
        after.append(crowd.expected_errors(crowd.fit(plus, Fixed(base))))
    return now - np.mean(after, axis=0)


def per_k(crowd, base, rank, with_voi: bool, seed: int) -> dict:
    """Fixed-parameter decodes from the first k answers, k = 1 .. max."""
    worker_p = np.bincount(crowd.ta.row_worker, minlength=crowd.n_workers) / crowd.ta.row_worker.size
    rng = np.random.default_rng(100 + seed)
    out = {"spans": [], "counts": [], "product": [], "experr": [], "voi": []}
    for k in range(1, int(crowd.avail.max()) + 1):
        ta = crowd.sub(rank < k)
        m = crowd.fit(ta, Fixed(base))
        out["spans"].append(crowd.spans(m))
        out["counts"].append(crowd.counts(out["spans"][-1]))
        out["product"].append(m.item_confidence_)
        out["experr"].append(crowd.expected_errors(m))
        if with_voi:
            out["voi"].append(value_of_one_more(crowd, base, ta, m, worker_p, rng))
    return {k: (np.stack(v) if k not in ("spans",) and v else v) for k, v in out.items()}


def truth_oracle(counts, avail, start, n_true, f_need) -> tuple[float, float]:
    """Knapsack over k per sentence (F1 >= f_need is linear); returns (lower bound, feasible) shares."""
    ks = np.arange(1, counts.shape[0] + 1)[:, None]
    ok = ((ks >= start) & (ks <= avail[None])) | ((ks == avail[None]) & (avail[None] < start))
    value = 2 * counts[:, :, 0] - f_need * counts[:, :, 1]
    cols = np.arange(avail.size)

    def plan(lam):
        pick = np.where(ok, value - lam * ks, -np.inf).argmax(0)
        return value[pick, cols].sum(), (pick + 1).sum() / avail.sum()

    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if plan(mid)[0] >= f_need * n_true else (lo, mid)
    return plan(hi)[1], plan(lo)[1]


def stop_at(stat_ok, avail, start) -> np.ndarray:
    """Index (k - 1) of the first k >= start whose rule says stop, else all answers."""
    ks = np.arange(1, stat_ok.shape[0] + 1)[:, None]
    return np.minimum(((stat_ok & (ks >= start)) | (ks >= avail[None])).argmax(0), avail - 1)


def fixed_rows(name, crowd, parts) -> list[dict]:
    base = crowd.fit(crowd.sub(np.ones(crowd.ta.row_item.size, bool)), SequenceCrowd())
    full = crowd.spans(base)
    f_all = f1(crowd.counts(full))
    n_true = sum(map(len, crowd.truth))
    rows = []
    for seed in SEEDS:
        pk = per_k(crowd, base, crowd.ranks(seed), "fixed" in parts, seed)
        cols = np.arange(crowd.n_items)

        def row(part, start, rule, th, kk, **extra):
            c = pk["counts"][kk, cols]
            same = np.mean([pk["spans"][kk[i]][i] == full[i] for i in cols])
            return {"set": name, "part": part, "seed": seed, "start": start, "rule": rule, "threshold": th,
                    "share": round(float((kk + 1).sum() / crowd.avail.sum()), 4), "f1_truth": round(f1(c), 4),
                    "f1_truth_all": round(f_all, 4), "same_as_all": round(float(same), 4), **extra}

        for start in (1, 2):
            if "bound" in parts:
                same_k = np.array([[pk["spans"][k][i] == full[i] for i in cols] for k in range(len(pk["spans"]))])
                kk = stop_at(same_k, crowd.avail, start)
                low, feas = truth_oracle(pk["counts"], crowd.avail, start, n_true, f_all - 0.01)
                rows.append(row("bound", start, "consensus oracle", None, kk, truth_oracle_share_lower=round(low, 4),
                                truth_oracle_share_feasible=round(feas, 4)))
            if "fixed" in parts:
                for rule, ths in FIXED_RULES.items():
                    for th in ths:
                        ok = {"product": pk["product"] >= th, "experr": pk["experr"] <= 1 - th,
                              "voi": pk["voi"] < th}[rule]
                        rows.append(row("fixed", start, rule, th, stop_at(ok, crowd.avail, start)))
    return rows


def _fit_auto(crowd, keep, seed):
    ta = crowd.sub(keep)
    method, _ = choose_method(ta, seed=seed)
    return crowd.fit(ta, SPAN_METHODS[method]())


def refit_rows(name, crowd) -> list[dict]:
    """The replay's rounds (as replay_adaptive: re-fit ``auto`` each round), start and rule pluggable
    (start 1 is what replay_adaptive refuses: shown here to say why)."""
    full = crowd.spans(_fit_auto(crowd, np.ones(crowd.ta.row_item.size, bool), 0))
    f_all, n_full = f1(crowd.counts(full)), sum(map(len, full))
    rows = []
    for seed in SEEDS:
        rank = crowd.ranks(seed)
        for start, rule, target in REFIT_RULES:
            t0 = time.perf_counter()
            used, fits = np.minimum(start, crowd.avail), 0
            open_ = used < crowd.avail
            while open_.any():
                m = _fit_auto(crowd, rank < used[crowd.ta.row_item], seed)
                fits += 1
                sure = m.item_confidence_ >= target if rule == "product" else crowd.expected_errors(m) <= 1 - target
                grow = open_ & ~sure
                used, open_ = used + grow, grow & (used + grow < crowd.avail)
            sp = crowd.spans(_fit_auto(crowd, rank < used[crowd.ta.row_item], seed))
            agree = 2 * sum(len(a & b) for a, b in zip(sp, full)) / (sum(map(len, sp)) + n_full)
            rows.append({"set": name, "part": "refit", "seed": seed, "start": start, "rule": rule, "threshold": target,
                         "share": round(float(used.sum() / crowd.avail.sum()), 4),
                         "f1_truth": round(f1(crowd.counts(sp)), 4), "f1_truth_all": round(f_all, 4),
                         "f1_vs_all": round(agree, 4), "fits": fits + 1, "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", nargs="+", default=["bound", "fixed", "refit"], choices=["bound", "fixed", "refit"])
    ap.add_argument("--sets", nargs="+", default=["conll_crowd_val", "synthetic_s11"])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    stamp = {"date": dt.date.today().isoformat(), "machine": "2-core AMD EPYC (shared, noisy)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        crowd = Crowd(*load(name))
        rows = fixed_rows(name, crowd, args.part) if {"bound", "fixed"} & set(args.part) else []
        rows += refit_rows(name, crowd) if "refit" in args.part else []
        with open(args.out, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({**r, **stamp}) + "\n")
                print(json.dumps(r))


if __name__ == "__main__":
    main()
