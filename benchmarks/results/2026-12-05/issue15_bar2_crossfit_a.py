"""Bar-2 experiment: a cross-fitted evidence weight `a` for the answers (issue 15)."""
import sys, pickle, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/main/benchmarks/quality")
import bench_label_errors as B
from sklearn.metrics import roc_auc_score
from assay.quality.majority import MajorityVote
from assay.quality.crowd_model import crowd_with_model, answer_loglik, weigh

cache = Path("/tmp/assay-ml-cache")
GRID = np.round(np.arange(0.3, 2.01, 0.05), 2)


def rows_ll(fit, it, us, lab, n, k):
    sk = {u: np.asarray(v, float) for u, v in fit.skills().items()}
    dc = np.asarray(fit.default_confusion, float)
    conf_rows = np.stack([sk.get(int(u), dc)[:, l] for u, l in zip(us, lab)])  # (m, k): P(answer | class)
    return conf_rows


def learn_a(d, pp, w, seed=0):
    n, k = pp.shape
    it, us, lab = d["items"], d["workers"], d["labels"]
    fold = np.random.default_rng(seed).random(n) < 0.5
    lpp = np.log(np.maximum(weigh(pp, w), 1e-12))
    tot = np.zeros(len(GRID))
    for learn in (fold, ~fold):
        on = learn[it]
        fit = crowd_with_model(it[on], us[on], lab[on], np.where(learn[:, None], pp, np.nan), prior_weight=w)
        ti, tu, tl = it[~on], us[~on], lab[~on]
        cr = rows_ll(fit, ti, tu, tl, n, k)
        lr = np.log(np.maximum(cr, 1e-12))
        ll = np.zeros((n, k)); np.add.at(ll, ti, lr)
        for g, a in enumerate(GRID):
            lp = lpp[ti] + a * (ll[ti] - lr)
            post = np.exp(lp - lp.max(1, keepdims=True)); post /= post.sum(1, keepdims=True)
            tot[g] += float(np.log(np.maximum((post * cr).sum(1), 1e-12)).sum())
    return float(GRID[int(np.argmax(tot))]), dict(zip(GRID.tolist(), np.round(tot, 1).tolist()))


def auroc(score_bad, wrong):
    return round(float(roc_auc_score(wrong, score_bad)), 4)


def main(names):
    from cleanlab.multiannotator import get_label_quality_multiannotator
    for name in names:
        d = B._load(name, cache)
        if name in B.BAR2_PER_ITEM:
            d = B._first_answers(d, B.BAR2_PER_ITEM[name])
        n, k = d["truth"].size, d["k"]
        it, us, lab = d["items"], d["workers"], d["labels"]
        mv = MajorityVote().fit(it, us, lab, n_classes=k, n_items=n).labels_
        for seed in (0, 1, 2):
            pp = B._oof(d["X"], mv, k, seed)
            fit = crowd_with_model(it, us, lab, pp)
            w = fit.prior_weight
            cr = rows_ll(fit, it, us, lab, n, k)
            ll = np.zeros((n, k)); np.add.at(ll, it, np.log(np.maximum(cr, 1e-12)))
            lpp = np.log(np.maximum(weigh(pp, w), 1e-12))
            a, curve = learn_a(d, pp, w)
            res = {}
            base = fit.proba
            cons1 = base.argmax(1)
            for aa in (1.0, a):
                lp = lpp + aa * ll
                pr = np.exp(lp - lp.max(1, keepdims=True)); pr /= pr.sum(1, keepdims=True)
                wrong = pr.argmax(1) != d["truth"]
                wrong1 = cons1 != d["truth"]
                res[aa] = {"full": (auroc(-pr.max(1), wrong), int(wrong.sum())),
                           "rank_only": (auroc(-pr[np.arange(n), cons1], wrong1), int(wrong1.sum()))}
            m = np.full((n, int(us.max()) + 1), np.nan); m[it, us] = lab
            lq = get_label_quality_multiannotator(pd.DataFrame(m), pp, verbose=False)["label_quality"]
            cons = lq["consensus_label"].to_numpy(int); wr = cons != d["truth"]
            cl = (auroc(-lq["consensus_quality_score"].to_numpy(float), wr), int(wr.sum()))
            print(name, seed, "w", round(w, 3), "a", a, res, "cleanlab", cl, flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","))
