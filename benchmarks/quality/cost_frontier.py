"""Cost frontier of adaptive redundancy with ORACLE worker skills.

Question: if the hand-out knew every worker's confusion matrix and the class
prior perfectly from the start, what is the best possible trade-off between
answers used and accuracy, and can ONE price per answer meet the bar
(<= 60 % of the available answers, accuracy within 0.5 points of Dawid-Skene
over all answers, "ds-all") on d_product, d_possent, rte and
sentiment_polarity at once?

    python benchmarks/quality/cost_frontier.py [--sets d_product,rte,...] [--seeds 0,1,2]
                                               [--lams 0.002,0.005,...] [--data ../shared/data/crowd]
                                               [--out results.jsonl] [--step 0.01] [--max-answers M]

Per set:

1. ``DawidSkene()`` is fitted on ALL answers (duplicate (item, worker) rows:
   the last is kept). Its ``confusion_`` and ``prior_`` are the oracle; ds-all
   accuracy is argmax ``proba_`` against truth.
2. Policy: Bayes-optimal stopping with a price ``lam`` per answer. The state
   is (answers still allowed r, log-odds L = log P(1|answers)/P(0|answers)
   under the oracle). The next answer is modelled as coming from a worker
   drawn like the crowd's answers (workers weighted by their answer counts)
   with that worker's oracle confusion; the truth is 1 w.p. sigmoid(L).
   ``V_0(L) = max(p, 1-p)``; ``V_r(L) = max(V_0(L), -lam + E[V_{r-1}(L')])``,
   by backward induction on a log-odds grid (``--step`` nats over [-15, 15],
   linear interpolation; the increment distribution per truth is a mixture
   of point masses, each split linearly onto the two neighbouring grid
   shifts, which is exactly linear interpolation of V; V is held constant
   beyond the grid's ends). Each item may get at most M = ceil(median
   answers per item) answers and never more than it has, r counts down from
   min(M, its answers); every item gets at least 1 answer.
3. Replay: per item the real answers arrive in the order
   ``numpy.random.default_rng(seed).permutation`` (one generator per seed,
   one permutation per item in item order); each real answer moves L by the
   real worker's oracle log-likelihood ratio for the real label; the item
   stops when the DP says stopping is worth at least as much as continuing.

Reported per set, lam and seed (``lam = 0`` is in the default grid: every
allowed answer, i.e. a fixed overlap of min(M, answers), the best any lam can
do under the cap):

- ``share``: answers used / all available answers of the set (answers beyond
  M count as available but are never usable);
- ``exp_loss``: expected accuracy loss in points, from the DP (no Monte
  Carlo): mean over items of F_r(L_stop) - max(p_stop, 1-p_stop), where
  F_r is the Bayes expected accuracy of taking all r answers still allowed
  at the stopping state (the model's own estimate of what stopping cost);
- ``d_oracle``: measured accuracy of the oracle posterior label of the used
  answers minus ds-all, in points;
- ``d_refit``: measured accuracy of ``DawidSkene()`` refitted on only the
  used answers (what a real run's final aggregation does) minus ds-all;
- ``model_share`` / ``model_loss``: the same share and loss as the model
  predicts them ex ante from the prior (if the crowd really were i.i.d.
  draws of workers), to compare with the replay.

Sanity checks printed first (per set): the all-answers oracle posterior
equals DS's ``proba_``; the DP value of stopping at the start is max(prior);
one forced answer's DP expectation matches the exact mixture sum; a Monte
Carlo run of the policy under the model matches the DP's expected accuracy
and answers; lam -> 0 gives loss ~ 0 and a share near the all-allowed share.

The summary says, for each lam, whether all four bar sets hold both <= 60 %
and d_refit >= -0.5 on every seed, and the smallest share each set reaches
with d_refit >= -0.5 on every seed. Prints markdown tables; ``--out`` writes
the raw results as JSON lines.
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

BAR_SETS = ["d_product", "d_possent", "rte", "sentiment_polarity"]
# lam = 0 means "take every allowed answer" (min(M, answers) per item): the
# cap's own cost, the ceiling any lam can reach
LAMS = [0.0, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.0135, 0.015, 0.02, 0.03]
XMAX = 15.0


# ------------------------------------------------------------------ data

def load(folder: Path, max_answers: int | None = None) -> dict:
    from assay.quality import DawidSkene

    a = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
    a = a.drop_duplicates(["item", "worker"], keep="last")
    t = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    item_ids = np.array(sorted(a["item"].unique()))
    worker_ids = np.array(sorted(a["worker"].unique()))
    classes = sorted(set(a["label"]) | set(t["label"]))
    if len(classes) != 2:
        raise SystemExit(f"{folder.name}: not binary ({classes})")
    it = np.searchsorted(item_ids, a["item"].to_numpy())
    wk = np.searchsorted(worker_ids, a["worker"].to_numpy())
    lab = np.searchsorted(np.array(classes), a["label"].to_numpy())
    # answers sorted by item (stable: the file's order within an item)
    o = np.argsort(it, kind="stable")
    it, wk, lab = it[o], wk[o], lab[o]
    n_items, n_workers = item_ids.size, worker_ids.size
    truth = np.full(n_items, -1)
    tk = t[t["item"].isin(set(item_ids))]
    truth[np.searchsorted(item_ids, tk["item"].to_numpy())] = np.searchsorted(np.array(classes), tk["label"].to_numpy())
    m = DawidSkene().fit(it, wk, lab, n_items=n_items, n_workers=n_workers, n_classes=2)
    has = truth >= 0
    counts = np.bincount(it, minlength=n_items)
    return dict(
        it=it, wk=wk, lab=lab, n_items=n_items, n_workers=n_workers, truth=truth, has=has,
        counts=counts, starts=np.concatenate([[0], np.cumsum(counts)[:-1]]),
        conf=m.confusion_, prior=m.prior_, proba=m.proba_,
        ds_acc=float(np.mean(m.labels_[has] == truth[has])),
        M=int(max_answers or math.ceil(np.median(counts))),
        wweight=np.bincount(wk, minlength=n_workers) / wk.size,
    )


def llr(conf: np.ndarray) -> np.ndarray:
    """(W, 2): log-odds increment of label l from worker w, log C[1,l]/C[0,l]."""
    return np.log(conf[:, 1, :]) - np.log(conf[:, 0, :])


# -------------------------------------------------------------------- DP

class Dp:
    """Backward induction on the log-odds grid for one set (independent of items)."""

    def __init__(self, d: dict, step: float):
        self.h = step
        self.x = np.arange(-round(XMAX / step), round(XMAX / step) + 1) * step
        self.p = 1.0 / (1.0 + np.exp(-self.x))
        self.S = np.maximum(self.p, 1.0 - self.p)
        inc = llr(d["conf"]).ravel()                                   # (W*2,)
        # per-truth mass of each (worker, label): weight_w * C_w[t, l]
        q = [(d["wweight"][:, None] * d["conf"][:, t, :]).ravel() for t in (0, 1)]
        s = np.clip(inc / step, -2 * XMAX / step, 2 * XMAX / step)
        lo = np.floor(s).astype(int)
        fr = s - lo
        self.smin, smax = lo.min(), lo.max() + 1
        self.kern = []
        for t in (0, 1):
            k = np.zeros(smax - self.smin + 1)
            np.add.at(k, lo - self.smin, q[t] * (1 - fr))
            np.add.at(k, lo + 1 - self.smin, q[t] * fr)
            self.kern.append(k)
        self.pad = max(-self.smin, smax)
        self.inc, self.q = inc, q

    def expect(self, v: np.ndarray) -> np.ndarray:
        """E[v(L')] at each grid point: p * E_1 + (1-p) * E_0."""
        vp = np.concatenate([np.full(self.pad, v[0]), v, np.full(self.pad, v[-1])])
        n = v.size
        out = []
        for k in self.kern:
            # sum_s k[s - smin] * v[j + s]  ==  correlate(vpad, k) starting at offset pad + smin
            c = np.correlate(vp, k, mode="valid")
            j0 = self.pad + self.smin
            out.append(c[j0:j0 + n])
        return self.p * out[1] + (1 - self.p) * out[0]

    def solve(self, lam: float, R: int) -> dict:
        """Tables by answers still allowed r = 0..R: continue (bool), V (value
        with cost), F (accuracy taking all r), G (accuracy under the policy),
        N (expected further answers under the policy)."""
        V, F, G, N = [self.S], [self.S], [self.S], [np.zeros_like(self.S)]
        cont, adv = [np.zeros(self.S.size, bool)], [-np.ones_like(self.S)]
        for r in range(1, R + 1):
            ev = self.expect(V[-1])
            # continue - stop; continue where > 0 (lam = 0: always, up to the cap)
            adv.append(-lam + ev - self.S if lam > 0 else np.ones_like(self.S))
            c = adv[-1] > 0
            cont.append(c)
            V.append(np.where(c, -lam + ev, self.S))
            F.append(self.expect(F[-1]))
            G.append(np.where(c, self.expect(G[-1]), self.S))
            N.append(np.where(c, 1.0 + self.expect(N[-1]), 0.0))
        return dict(cont=cont, V=V, F=F, G=G, N=N, adv=adv)

    def at(self, tab: np.ndarray, L: np.ndarray) -> np.ndarray:
        return np.interp(L, self.x, tab)


# ---------------------------------------------------------------- replay

def arrival(d: dict, seed: int) -> np.ndarray:
    """Rank of each answer (sorted by item) in its item's seeded arrival order."""
    rng = np.random.default_rng(seed)
    rank = np.empty(d["it"].size, np.intp)
    for s, n in zip(d["starts"], d["counts"]):
        rank[s + rng.permutation(n)] = np.arange(n)
    return rank


def replay(d: dict, dp: Dp, tabs: dict, rank: np.ndarray) -> dict:
    n_items, M = d["n_items"], d["M"]
    inc = llr(d["conf"])[d["wk"], d["lab"]]
    seq = np.zeros((n_items, M))
    keep = rank < M
    seq[d["it"][keep], rank[keep]] = inc[keep]
    cap = np.minimum(d["counts"], M)
    L0 = math.log(d["prior"][1] / d["prior"][0])
    L = L0 + seq[:, 0]
    used = np.ones(n_items, np.intp)
    active = np.ones(n_items, bool)
    for m in range(1, M):                      # m answers so far
        r = cap - m                            # answers still allowed
        go = active & (r > 0)
        for rr in np.unique(r[go]):
            sel = go & (r == rr)
            go[sel] = dp.at(tabs["adv"][rr], L[sel]) > 0
        active = go
        L[go] += seq[go, m]
        used[go] += 1
    r_left = cap - used
    S = np.maximum(1 / (1 + np.exp(-L)), 1 / (1 + np.exp(L)))
    Fv = np.empty(n_items)
    for rr in np.unique(r_left):
        sel = r_left == rr
        Fv[sel] = dp.at(tabs["F"][rr], L[sel])
    return dict(used=used, L=L, exp_loss=float(np.mean(Fv - S)), exp_acc=float(np.mean(S)))


def refit_acc(d: dict, rank: np.ndarray, used: np.ndarray) -> float:
    from assay.quality import DawidSkene

    k = rank < used[d["it"]]
    m = DawidSkene().fit(d["it"][k], d["wk"][k], d["lab"][k], n_items=d["n_items"],
                         n_workers=d["n_workers"], n_classes=2)
    h = d["has"]
    return float(np.mean(m.labels_[h] == d["truth"][h]))


def model_start(d: dict, dp: Dp, tabs: dict) -> tuple[float, float]:
    """Ex-ante model share and loss (points): first answer forced, then the policy."""
    L0 = math.log(d["prior"][1] / d["prior"][0])
    cap = np.minimum(d["counts"], d["M"])
    ans = loss = 0.0
    for c in np.unique(cap):
        w = np.sum(cap == c)
        n1 = dp.at(dp.expect(tabs["N"][c - 1]), np.array([L0]))[0]
        f1 = dp.at(dp.expect(tabs["F"][c - 1]), np.array([L0]))[0]
        g1 = dp.at(dp.expect(tabs["G"][c - 1]), np.array([L0]))[0]
        ans += w * (1 + n1)
        loss += w * (f1 - g1)
    return ans / d["it"].size, 100 * loss / d["n_items"]


# ----------------------------------------------------------------- checks

def monte_carlo(d: dict, dp: Dp, tabs: dict, n: int = 200_000, seed: int = 12345) -> tuple[float, float]:
    """Policy under the model itself (horizon M, i.i.d. workers): (accuracy, answers per item)."""
    rng = np.random.default_rng(seed)
    M = d["M"]
    inc = llr(d["conf"])
    t = (rng.random(n) < d["prior"][1]).astype(int)
    L = np.full(n, math.log(d["prior"][1] / d["prior"][0]))
    used = np.zeros(n, np.intp)
    active = np.ones(n, bool)
    for m in range(M):
        if m > 0:
            active &= dp.at(tabs["adv"][M - m], L) > 0
        k = np.flatnonzero(active)
        w = rng.choice(d["n_workers"], size=k.size, p=d["wweight"])
        lab = (rng.random(k.size) < d["conf"][w, t[k], 1]).astype(int)
        L[k] += inc[w, lab]
        used[k] += 1
    return float(np.mean((L > 0) == (t == 1))), float(used.mean())


def sanity(d: dict, dp: Dp) -> list[str]:
    out = []
    # 1. the oracle posterior over all answers is DS's proba_
    L0 = math.log(d["prior"][1] / d["prior"][0])
    Lall = L0 + np.bincount(d["it"], weights=llr(d["conf"])[d["wk"], d["lab"]], minlength=d["n_items"])
    err = np.max(np.abs(1 / (1 + np.exp(-Lall)) - d["proba"][:, 1]))
    out.append(f"oracle posterior vs DS proba_: max |Δp| = {err:.1e}; "
               f"labels agree {np.mean((Lall > 0) == (d['proba'][:, 1] > 0.5)):.4f}")
    # 2. stop-at-start value = max(prior); V with lam huge = S
    v0 = dp.at(dp.S, np.array([L0]))[0]
    big = dp.solve(10.0, d["M"])
    vb = dp.at(big["V"][d["M"]], np.array([L0]))[0]
    out.append(f"stop-at-start value {v0:.6f} vs max(prior) {d['prior'].max():.6f}; "
               f"V_M(prior) at lam=10: {vb:.6f}")
    # 3. one forced answer: grid expectation vs exact mixture
    p1 = d["prior"][1]
    exact = 0.0
    for w in range(d["n_workers"]):
        for l in (0, 1):
            exact += d["wweight"][w] * max(p1 * d["conf"][w, 1, l], (1 - p1) * d["conf"][w, 0, l])
    grid = dp.at(dp.expect(dp.S), np.array([L0]))[0]
    out.append(f"accuracy after 1 answer: DP grid {grid:.6f} vs exact {exact:.6f}")
    # 4. Monte Carlo under the model vs DP (lam = 0.01, items with M allowed)
    tabs = dp.solve(0.01, d["M"])
    acc_mc, n_mc = monte_carlo(d, dp, tabs)
    g = dp.at(dp.expect(tabs["G"][d["M"] - 1]), np.array([L0]))[0]
    nn = 1 + dp.at(dp.expect(tabs["N"][d["M"] - 1]), np.array([L0]))[0]
    out.append(f"lam=0.01 under the model: MC acc {acc_mc:.4f} / answers {n_mc:.3f} vs DP {g:.4f} / {nn:.3f}")
    return out


# ------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    ap.add_argument("--sets", default=",".join(BAR_SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lams", default=",".join(map(str, LAMS)))
    ap.add_argument("--step", type=float, default=0.01, help="log-odds grid step (nats)")
    ap.add_argument("--max-answers", type=int, default=None,
                    help="answers allowed per item (default: ceil of the set's median answers per item)")
    ap.add_argument("--out", default=None, help="write raw results as JSON lines here")
    args = ap.parse_args()
    t_start = time.time()
    sets = args.sets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    lams = [float(x) for x in args.lams.split(",")]
    rows = []
    fout = open(args.out, "w") if args.out else None
    for name in sets:
        t0 = time.time()
        d = load(Path(args.data) / name, args.max_answers)
        dp = Dp(d, args.step)
        n_all = d["it"].size
        allowed = int(np.minimum(d["counts"], d["M"]).sum())
        print(f"## {name}: {d['n_items']:,} items, {n_all:,} answers, {d['n_workers']} workers, M = {d['M']}, "
              f"all-allowed share {100 * allowed / n_all:.1f} %, prior {np.round(d['prior'], 4).tolist()}, "
              f"ds-all {100 * d['ds_acc']:.2f}")
        for line in sanity(d, dp):
            print("  check:", line)
        ranks = {s: arrival(d, s) for s in seeds}
        # lam -> 0: share near all-allowed, loss ~ 0
        tiny = dp.solve(1e-5, d["M"])
        r = replay(d, dp, tiny, ranks[seeds[0]])
        h = d["has"]
        d_tiny = 100 * (np.mean((r["L"][h] > 0) == (d["truth"][h] == 1)) - d["ds_acc"])
        print(f"  check: lam=1e-5: share {100 * r['used'].sum() / n_all:.1f} % (all-allowed "
              f"{100 * allowed / n_all:.1f} %), expected loss {100 * r['exp_loss']:.4f} pts, "
              f"oracle label - ds-all {d_tiny:+.2f} pts (stops only where no further allowed answer could flip it)")
        for lam in lams:
            tabs = dp.solve(lam, d["M"])
            mshare, mloss = model_start(d, dp, tabs)
            for s in seeds:
                r = replay(d, dp, tabs, ranks[s])
                h = d["has"]
                acc_o = float(np.mean((r["L"][h] > 0) == (d["truth"][h] == 1)))
                acc_r = refit_acc(d, ranks[s], r["used"])
                row = dict(set=name, lam=lam, seed=s, answers_available=n_all, answers_used=int(r["used"].sum()),
                           share=float(r["used"].sum() / n_all), exp_loss=100 * r["exp_loss"],
                           exp_acc=100 * r["exp_acc"], ds_all=100 * d["ds_acc"],
                           acc_oracle=100 * acc_o, acc_refit=100 * acc_r,
                           d_oracle=100 * (acc_o - d["ds_acc"]), d_refit=100 * (acc_r - d["ds_acc"]),
                           model_share=mshare, model_loss=mloss, M=d["M"], step=args.step)
                rows.append(row)
                if fout:
                    fout.write(json.dumps(row) + "\n")
                    fout.flush()
        print(f"  ({time.time() - t0:.1f} s)")
    if fout:
        fout.close()
    render(rows, sets, seeds, lams)
    print(f"\ntotal runtime {time.time() - t_start:.1f} s")


def _holds(share: float, diff: float) -> bool:
    # accuracies are multiples of 1/items: compare the rounded difference (-0.50 is within 0.5)
    return share <= 0.60 and round(diff, 6) >= -0.5


def render(rows: list[dict], sets: list[str], seeds: list[int], lams: list[float]) -> None:
    by = {(r["set"], r["lam"], r["seed"]): r for r in rows}
    sl = "/".join(map(str, seeds))
    print()
    print(f"Per set and lam; per-seed values are for seeds {sl}. Expected loss: DP, at the stopping state, "
          "mean over seeds; model: ex-ante share / loss under the model.")
    print()
    print(f"| set | lam | share % ({sl}) | model share % | exp loss pts | model loss | "
          f"Δ oracle-label ({sl}) | Δ refit ({sl}) | bar |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sets:
        for lam in lams:
            rr = [by[(s, lam, x)] for x in seeds]
            share = "/".join(f"{100 * r['share']:.1f}" for r in rr)
            do = "/".join(f"{r['d_oracle']:+.2f}" for r in rr)
            dr = "/".join(f"{r['d_refit']:+.2f}" for r in rr)
            bar = "".join("✓" if _holds(r["share"], r["d_refit"]) else "✗" for r in rr)
            print(f"| {s} | {lam:g} | {share} | {100 * rr[0]['model_share']:.1f} | "
                  f"{np.mean([r['exp_loss'] for r in rr]):.2f} | {rr[0]['model_loss']:.2f} | {do} | {dr} | {bar} |")
    bar_sets = [s for s in BAR_SETS if s in sets]
    print()
    print(f"Bar (every seed: share <= 60 % and Δ refit >= -0.5) on {', '.join(bar_sets)}:")
    print()
    print("| lam | " + " | ".join(bar_sets) + " | all |")
    print("|---|" + "---|" * (len(bar_sets) + 1))
    any_pass = []
    for lam in lams:
        ok = {s: all(_holds(by[(s, lam, x)]["share"], by[(s, lam, x)]["d_refit"]) for x in seeds) for s in bar_sets}
        allok = all(ok.values())
        if allok:
            any_pass.append(lam)
        print(f"| {lam:g} | " + " | ".join("holds" if ok[s] else "fails" for s in bar_sets)
              + f" | {'YES' if allok else 'no'} |")
    print()
    print("Smallest share with Δ refit >= -0.5 on every seed (mean share over seeds):")
    print()
    print("| set | smallest share % | at lam | Δ refit there |")
    print("|---|---|---|---|")
    for s in sets:
        best = None
        for lam in lams:
            rr = [by[(s, lam, x)] for x in seeds]
            if all(round(r["d_refit"], 6) >= -0.5 for r in rr):
                sh = np.mean([r["share"] for r in rr])
                if best is None or sh < best[0]:
                    best = (sh, lam, "/".join(f"{r['d_refit']:+.2f}" for r in rr))
        if best is None:
            print(f"| {s} | – | – | – |")
        else:
            print(f"| {s} | {100 * best[0]:.1f} | {best[1]:g} | {best[2]} |")
    print()
    print("Verdict: " + (f"a single lam passes all sets on all seeds: {', '.join(map(str, any_pass))}"
                         if any_pass else "no single lam in the grid passes all sets on all seeds"))


if __name__ == "__main__":
    main()
