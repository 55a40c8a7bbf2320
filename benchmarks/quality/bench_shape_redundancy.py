"""Adaptive redundancy for shapes (issue 14): replay "stop when the merged
result is settled" on real crowds where every answer was collected, and
compare with the consensus of all answers.

Sets: ``../shared/data/boxes/pedestrians_a`` (724 images, 7 answers each,
expert boxes on 469) and ``../shared/data/spans/conll_crowd_val`` (2,743
sentences, about 4.2 answers each, expert spans on all). For each seed, each
item's real answers are revealed in one seeded random order
(:func:`assay.quality.shape_redundancy.replay_adaptive`, start 2, consensus
``method="auto"``); the item stops when its confidence is >= ``--target``.
Baselines in the same run: the all-answers consensus, and a fixed budget of
``k`` answers per item (the first ``k`` in the same order) for k = 2, 3.

Columns: share of answers used, F1 of the adaptive shapes against the
all-answers shapes (1.0: the same merged set; boxes matched at IoU >= 0.5,
spans exactly), and F1 against the experts for the policy and for all
answers. Bar: within 0.01 F1 of the all-answers consensus with <= 50 % of
the answers.

    python benchmarks/quality/bench_shape_redundancy.py [--seeds 3] [--target 0.99 0.95] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from assay.quality.io import read_jsonl  # noqa: E402
from assay.quality.shape_redundancy import replay_adaptive  # noqa: E402

DATA = HERE.parents[2] / "shared" / "data"
SETS = {"boxes": DATA / "boxes" / "pedestrians_a", "spans": DATA / "spans" / "conll_crowd_val"}
OUT = HERE.parent / "results" / "2026-12-04" / "issue14_shape_redundancy.jsonl"


def _row(kind: str, policy: str, seed: int, out: dict, seconds: float) -> dict:
    return {"set": SETS[kind].name, "kind": kind, "policy": policy, "seed": seed,
            "share": round(out["share"], 4), "answers_used": out["answers_used"], "answers_all": out["answers_all"],
            "fits": out["fits"], "f1_vs_all": round(out["vs_consensus"]["f1"], 4),
            "f1_truth": round(out["vs_truth"]["f1"], 4), "f1_truth_all": round(out["all_vs_truth"]["f1"], 4),
            "precision_truth": round(out["vs_truth"]["precision"], 4),
            "recall_truth": round(out["vs_truth"]["recall"], 4), "seconds": round(seconds, 2)}


def run_set(kind: str, seeds: int, targets: list[float], fixed: list[int]) -> list[dict]:
    path = SETS[kind]
    rows, truth = read_jsonl(path / "answers.jsonl"), read_jsonl(path / "truth.jsonl")
    items = {r["item"]: r for r in read_jsonl(path / "items.jsonl")}
    consensus, out = None, []
    for seed in range(seeds):
        for target in targets:
            t = time.perf_counter()
            res = replay_adaptive(rows, kind, target=target, seed=seed, items=items, truth=truth, consensus=consensus)
            consensus = res["consensus"]
            out.append(_row(kind, f"adaptive target {target}", seed, res, time.perf_counter() - t))
        for k in fixed:
            t = time.perf_counter()
            res = replay_adaptive(rows, kind, start=k, max_answers=k, seed=seed, items=items, truth=truth,
                                  consensus=consensus)
            out.append(_row(kind, f"fixed {k} per item", seed, res, time.perf_counter() - t))
    return out


def table(rows: list[dict]) -> str:
    lines = ["| set | policy | seeds | share of answers | F1 vs all-answers consensus | F1 vs truth | "
             "F1 vs truth, all answers | bar (<= 0.50 share, truth F1 >= all - 0.01) |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["set"], r["policy"]), []).append(r)
    for (name, policy), rs in groups.items():
        def span(key, rs=rs):
            vals = [r[key] for r in rs]
            lo, hi = min(vals), max(vals)
            return f"{lo:.3f}" if round(lo, 3) == round(hi, 3) else f"{lo:.3f}-{hi:.3f}"
        ok = all(r["share"] <= 0.5 and r["f1_truth"] >= r["f1_truth_all"] - 0.01 for r in rs)
        lines.append(f"| {name} | {policy} | {len(rs)} | {span('share')} | {span('f1_vs_all')} | {span('f1_truth')} | "
                     f"{span('f1_truth_all')} | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--target", type=float, nargs="+", default=[0.99, 0.95])
    ap.add_argument("--fixed", type=int, nargs="*", default=[2, 3])
    ap.add_argument("--kinds", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    stamp = {"date": dt.date.today().isoformat(),
             "machine": f"{platform.machine()}, 2-core AMD EPYC (shared, noisy)", "python": platform.python_version()}
    rows = []
    for kind in args.kinds:
        for r in run_set(kind, args.seeds, args.target, args.fixed):
            rows.append({**r, **stamp})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
