"""How far can a pick rule take adaptive redundancy's stop rule? Each item's
real answers replayed best annotator first, with the annotators' TRUE skills.

    python benchmarks/quality/bench_routing_bound.py [--sets d_product,...] [--seeds 0,1,2]

Skills and class prior: ``DawidSkene()`` over every answer (the oracle), the
same stop rule as the replica (:mod:`bench_routing`: posterior >= 0.995, the
``max_answers`` cap = median answers per item, the settle table of a re-fit
on every answer). Per item the real answers come in one of two orders:
``random`` (seeded) or ``best_first`` (by each annotator's expected
information gain on an item at the class prior, :func:`routing.expected_gain`;
random among equals). The item stops where the rule says. No arrival model
limits who answers when, so ``best_first`` is an optimistic reference for
any pick rule under this stop rule: a routed hand-out can only approach it.
Final labels: ``DawidSkene()`` over the used answers, minus ds-all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "src"))

from bench_routing import BAR_SETS, TARGET, Crowd, accuracy, final_labels  # noqa: E402

from assay.engine import redundancy  # noqa: E402
from assay.quality import DawidSkene, online, routing  # noqa: E402


def replay(c: Crowd, conf, prior, table, order: np.ndarray) -> list[int]:
    starts = np.searchsorted(c.items[order], np.arange(c.n + 1))
    logc = np.log(np.maximum(conf, online.TINY))
    used = []
    for i in range(c.n):
        lp = np.log(np.maximum(prior, online.TINY))
        for n, r in enumerate(order[starts[i]:starts[i + 1]], start=1):
            lp = lp + logc[c.workers[r]][:, c.labels[r]]
            used.append(int(r))
            p = np.exp(lp - lp.max())
            if p.max() / p.sum() >= TARGET or n >= c.max_answers or \
                    online.settled(lp.tolist(), c.max_answers - n, table):
                break
    return used


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    ap.add_argument("--sets", default=",".join(BAR_SETS))
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    for s in args.sets.split(","):
        c = Crowd(Path(args.data) / s)
        m = DawidSkene().fit(c.items, c.workers, c.labels, n_classes=c.k)
        conf, prior = np.asarray(m.confusion_), np.asarray(m.prior_)
        fit = redundancy.fit_crowd(c.items, c.workers, c.labels, {i: i for i in range(c.k)}, {}, {})
        table = redundancy._settle_table(fit, c.k, TARGET, c.max_answers, "flip")
        gain = routing.expected_gain(np.tile(prior, (c.w, 1)), conf)
        base = accuracy(c, final_labels(c, np.arange(len(c.items)), "ds"))
        for seed in [int(x) for x in args.seeds.split(",")]:
            rnd = np.random.default_rng(seed).random(len(c.items))
            for name, key in (("random", np.zeros(len(c.items))), ("best_first", -gain[c.workers])):
                used = replay(c, conf, prior, table, np.lexsort((rnd, key, c.items)))
                acc = accuracy(c, final_labels(c, np.asarray(used), "ds"))
                print(json.dumps({"set": s, "seed": seed, "order": name, "answers_used": len(used),
                                  "share": round(100 * len(used) / len(c.items), 1),
                                  "delta": round(acc - base, 2)}), flush=True)


if __name__ == "__main__":
    main()
