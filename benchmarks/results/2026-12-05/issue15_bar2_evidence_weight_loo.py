import pickle, sys, numpy as np
from sklearn.metrics import roc_auc_score
from assay.quality.crowd_model import crowd_with_model, answer_loglik, weigh
inp = pickle.load(open(sys.argv[1], "rb"))
for (name, seed), d in inp.items():
    n, k = d["truth"].size, d["k"]; pp = d["pp"]
    fit = crowd_with_model(d["items"], d["workers"], d["labels"], pp)
    sk = {u: np.asarray(v, float) for u, v in fit.skills().items()}; dc = np.asarray(fit.default_confusion, float)
    it, us, lab = d["items"], d["workers"], d["labels"]
    row_ll = np.stack([np.log(np.maximum(sk.get(int(u), dc)[:, l], 1e-12)) for u, l in zip(us, lab)])
    ll = np.zeros((n, k)); np.add.at(ll, it, row_ll)
    lpp = np.log(np.maximum(weigh(pp, fit.prior_weight), 1e-12))
    conf_rows = np.stack([sk.get(int(u), dc)[:, l] for u, l in zip(us, lab)])
    out = {}
    for a in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5):
        lp = lpp[it] + a * (ll[it] - row_ll)
        post = np.exp(lp - lp.max(1, keepdims=True)); post /= post.sum(1, keepdims=True)
        out[a] = round(float(np.log(np.maximum((post * conf_rows).sum(1), 1e-12)).mean()), 5)
    print(name, seed, out, flush=True)
    grid = np.round(np.arange(0.5, 1.51, 0.05), 2); best, bl = None, -np.inf
    for a in grid:
        lp = lpp[it] + a * (ll[it] - row_ll)
        post = np.exp(lp - lp.max(1, keepdims=True)); post /= post.sum(1, keepdims=True)
        v = float(np.log(np.maximum((post * conf_rows).sum(1), 1e-12)).mean())
        if v > bl: best, bl = a, v
    r = {}
    for a in (1.0, best):
        lp = lpp + a * ll
        pr = np.exp(lp - lp.max(1, keepdims=True)); pr /= pr.sum(1, keepdims=True)
        wrong = pr.argmax(1) != d["truth"]
        r[float(a)] = (round(roc_auc_score(wrong, -pr.max(1)), 4), int(wrong.sum()))
    print("CHOSEN", name, seed, best, r, flush=True)
