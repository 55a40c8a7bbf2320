import pickle, sys, numpy as np
from sklearn.metrics import roc_auc_score
from assay.quality.crowd_model import crowd_with_model, answer_loglik, weigh
from assay.quality.label_errors import crowd_label_errors
sys.path[:0] = ["/tmp/cl/unp", "/tmp/cl/deps"]
import pandas as pd
from cleanlab.multiannotator import get_label_quality_multiannotator
inp = pickle.load(open(sys.argv[1], "rb"))
for (name, seed), d in inp.items():
    n, k = d["truth"].size, d["k"]; pp = d["pp"]
    fit = crowd_with_model(d["items"], d["workers"], d["labels"], pp)
    ll, cnt = answer_loglik(d["items"], d["workers"], d["labels"], fit.skills(), fit.default_confusion, n, k)
    lpp = np.log(np.maximum(weigh(pp, fit.prior_weight), 1e-12))
    res = {"w": round(fit.prior_weight, 3)}
    for a in (0.5, 0.75, 1.0, 1.25, 1.5):
        lp = lpp + a * ll
        pr = np.exp(lp - lp.max(1, keepdims=True)); pr /= pr.sum(1, keepdims=True)
        cons = pr.argmax(1); wrong = cons != d["truth"]
        res[f"a{a}"] = (round(roc_auc_score(wrong, -pr.max(1)), 4), int(wrong.sum()))
    # margin score instead of max
    pr = fit.proba; s = np.sort(pr, 1); wrong = fit.consensus_label != d["truth"]
    res["margin"] = round(roc_auc_score(wrong, -(s[:, -1] - s[:, -2])), 4)
    m = np.full((n, int(d["workers"].max()) + 1), np.nan); m[d["items"], d["workers"]] = d["labels"]
    lq = get_label_quality_multiannotator(pd.DataFrame(m), pp, verbose=False)["label_quality"]
    cw = lq["consensus_label"].to_numpy(int) != d["truth"]
    res["cleanlab"] = (round(roc_auc_score(cw, -lq["consensus_quality_score"].to_numpy(float)), 4), int(cw.sum()))
    print(name, seed, res, flush=True)
