"""Run one crowd-kit aggregator on the seeded synthetic crowd; prints one JSON
line. Runs in crowd-kit's own virtualenv (never assay's): it imports only
numpy, pandas, crowd-kit and synth.py beside it.

    _crowdkit_child.py METHOD N_ITER [--items N] [--workers W] [--tol T] [--save out.npz]

``--items``/``--workers`` shrink the crowd (10 answers per item as in the
default 1M set); ``--save`` writes the per-item labels and posteriors (and
GLAD's alpha/beta) so assay's output can be compared item by item.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synth import make_crowd  # noqa: E402


def peak_mb() -> float:
    """High-water RSS of this process (VmHWM; unlike ru_maxrss it is not
    inherited across exec from the parent that started us)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("method", choices=["ds", "glad"])
    ap.add_argument("n_iter", type=int)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2_000)
    ap.add_argument("--tol", type=float, help="crowd-kit's tol (default: its own, 1e-5)")
    ap.add_argument("--save")
    ap.add_argument("--trace", help="GLAD: append one JSON line per E-step (elapsed s, accuracy of its labels)")
    args = ap.parse_args()
    from crowdkit import aggregation as agg
    import importlib.metadata as md

    m_steps: list[dict] = []
    if args.method == "glad":  # record how far each M-step's optimiser got (read-only probe)
        import crowdkit.aggregation.classification.glad as ck_glad

        minimize = ck_glad.minimize

        def probed(*a, **k):
            res = minimize(*a, **k)
            m_steps.append({"nit": int(res.nit), "nfev": int(res.nfev), "minus_q": float(res.fun),
                            "max_abs_grad": float(np.abs(res.jac).max()), "message": str(res.message)})
            return res

        ck_glad.minimize = probed

    items, workers, labels, truth = make_crowd(n_items=args.items, n_workers=args.workers)
    if args.method == "glad" and args.trace:  # read-only probe: the labels each E-step gives
        e_step = ck_glad.GLAD._e_step

        def traced(self, data):
            out = e_step(self, data)
            lab = self.probas_.idxmax(axis=1).sort_index()
            acc_now = float((lab.to_numpy() == truth[lab.index.to_numpy()]).mean())
            with open(args.trace, "a") as fh:
                fh.write(json.dumps({"e_step": len(m_steps), "elapsed_s": time.perf_counter() - t0,
                                     "accuracy": acc_now, "peak_mb": peak_mb()}) + "\n")
            return out

        ck_glad.GLAD._e_step = traced
    df = pd.DataFrame({"task": items, "worker": workers, "label": labels})
    kw = {"n_iter": args.n_iter}
    if args.tol is not None:
        kw["tol"] = args.tol
    model = {"ds": agg.DawidSkene, "glad": agg.GLAD}[args.method](**kw)
    t0 = time.perf_counter()  # the trace's clock too
    pred = model.fit_predict(df)
    seconds = time.perf_counter() - t0
    # loss_history_ has one entry per EM iteration run (it may stop before n_iter)
    iters = len(getattr(model, "loss_history_", []) or []) or args.n_iter
    idx = np.sort(pred.index.to_numpy())
    acc = float((pred.sort_index().to_numpy() == truth[idx]).mean())
    if args.save:
        probas = model.probas_.sort_index()
        probas = probas[sorted(probas.columns)]
        extra = {}
        if args.method == "glad":
            extra = {"alpha": model.alphas_.sort_index().to_numpy(), "worker_ids": model.alphas_.sort_index().index.to_numpy(),
                     "b": model.betas_.sort_index().to_numpy()}
        np.savez(args.save, items=idx, labels=pred.sort_index().to_numpy(), proba=probas.to_numpy(),
                 loss=np.asarray(model.loss_history_), **extra)
    print(json.dumps({"method": args.method, "seconds": seconds, "iterations": iters, "per_iter_s": seconds / iters,
                      "accuracy": acc, "peak_mb": peak_mb(), "n_answers": int(items.size), "m_steps": m_steps,
                      "crowd_kit": md.version("crowd-kit")}))


if __name__ == "__main__":
    main()
