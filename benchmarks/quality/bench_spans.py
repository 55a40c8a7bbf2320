"""Span consensus (issue 14, part 4): exact-span F1 / P / R of every method
on the real CoNLL crowd set, and the speed of aggregating 1M span answers.

    python benchmarks/quality/bench_spans.py              # accuracy on spans/conll_crowd_val
    python benchmarks/quality/bench_spans.py --speed      # 1,000,000 synthetic spans, each method in a fresh child

Accuracy: token-level majority vote ("mv") and token Dawid-Skene ("ds") are
the baselines, measured in the same run as the sequence model ("seq") and
the default ("auto"); an exact span = same item, start, end and label.
Published on the held-out test part of the same collection (Simpson &
Gurevych 2019, exact-span F1): MV 65.4, DS 74.4, HMM-Crowd 74.2, BSC-seq 77.4.

Speed: synthetic sentences (``assay.quality._spans_synth``, 4 answers per
sentence, 2,000 workers) until the answers hold ``--spans`` spans, written to
a JSON-lines file; each method then runs in its own child process that reads
the file and times ``aggregate_spans`` (the reading is not timed) and
reports its peak RSS (with the rows loaded). Bar: <= 30 s.

Raw results go to benchmarks/results/2026-12-04/issue14_spans.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "src"))

from _common import machine, peak_rss_mb, run_child  # noqa: E402

ROOT = HERE.parents[1]
DATA = Path(os.environ.get("ASSAY_SHARED_DATA") or ROOT.parent / "shared" / "data") / "spans" / "conll_crowd_val"
OUT = ROOT / "benchmarks" / "results" / "2026-12-04" / "issue14_spans.jsonl"
METHODS = ["mv", "ds", "seq", "auto"]
PUBLISHED_TEST = {"mv": 65.4, "MACE": 70.0, "ds": 74.4, "IBCC": 74.4, "HMM-Crowd": 74.2, "BSC-seq": 77.4}


def exact_prf(out: list[dict], truth: dict) -> tuple[float, float, float]:
    pred = {(o["item"], s, e, lab) for o in out for s, e, lab, _ in o["spans"]}
    gold = {(it, s, e, lab) for it, sp in truth.items() for s, e, lab in sp}
    tp = len(pred & gold)
    p, r = tp / max(len(pred), 1), tp / max(len(gold), 1)
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def calibration(out: list[dict], truth: dict) -> dict:
    """Mean span confidence next to the share of spans right, mean item
    confidence next to the share of items with every span right."""
    gold = {(it, s, e, lab) for it, sp in truth.items() for s, e, lab in sp}
    conf = [(c, (o["item"], s, e, lab) in gold) for o in out for s, e, lab, c in o["spans"]]
    items_right = [{(s, e, lab) for s, e, lab, _ in o["spans"]} == {tuple(x) for x in truth[o["item"]]} for o in out]
    return {"span_conf_mean": round(sum(c for c, _ in conf) / max(len(conf), 1), 4),
            "span_right_share": round(sum(ok for _, ok in conf) / max(len(conf), 1), 4),
            "item_conf_mean": round(sum(o["confidence"] for o in out) / max(len(out), 1), 4),
            "item_right_share": round(sum(items_right) / max(len(out), 1), 4)}


def accuracy(args) -> list[dict]:
    from assay.quality.io import read_jsonl
    from assay.quality.spans import aggregate_spans, choose_method, encode_span_rows

    items = {r["item"]: r for r in read_jsonl(DATA / "items.jsonl")}
    rows = read_jsonl(DATA / "answers.jsonl")
    truth = {r["item"]: r["spans"] for r in read_jsonl(DATA / "truth.jsonl")}
    results = []
    for method in METHODS:
        t0 = time.perf_counter()
        out = aggregate_spans(rows, items, method)
        sec = time.perf_counter() - t0
        f1, p, r = exact_prf(out, truth)
        res = {"bench": "spans_accuracy", "set": "conll_crowd_val", "method": method, "f1": round(f1, 4),
               "precision": round(p, 4), "recall": round(r, 4), "seconds": round(sec, 3),
               "spans": len({(o["item"], s, e, lab) for o in out for s, e, lab, _ in o["spans"]}),
               **calibration(out, truth)}
        if method == "auto":
            chosen, scores = choose_method(encode_span_rows(rows, items)[2])
            res["chosen"], res["heldout_loglik"] = chosen, {k: round(v, 5) for k, v in scores.items()}
        if args.no_items:
            out2 = aggregate_spans(rows, None, method)
            res["f1_without_items"] = round(exact_prf(out2, truth)[0], 4)
        results.append(res)
    print(f"conll_crowd_val: {len(items)} sentences, {len(rows)} answers; published test-part F1: {PUBLISHED_TEST}")
    print()
    extra = " F1 without items |" if args.no_items else ""
    print("| method | F1 | P | R | seconds | span conf / right | item conf / right |" + extra)
    print("|---|---|---|---|---|---|---|" + ("---|" if args.no_items else ""))
    for r in results:
        name = r["method"] + (f" (chose {r['chosen']})" if "chosen" in r else "")
        tail = f" {r['f1_without_items']:.3f} |" if args.no_items else ""
        print(f"| {name} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['seconds']:.2f} | "
              f"{r['span_conf_mean']:.2f} / {r['span_right_share']:.2f} | "
              f"{r['item_conf_mean']:.2f} / {r['item_right_share']:.2f} |" + tail)
    return results


def child(path: str, method: str) -> None:
    from assay.quality.spans import aggregate_spans

    with open(path) as fh:
        data = json.load(fh)
    items, rows = data["items"], data["rows"]
    load_mb = peak_rss_mb()
    t0 = time.perf_counter()
    out = aggregate_spans(rows, items, method)
    sec = time.perf_counter() - t0
    print(json.dumps({"seconds": round(sec, 2), "peak_mb": round(peak_rss_mb(), 1), "loaded_mb": round(load_mb, 1),
                      "items_out": len(out)}))


def speed(args) -> list[dict]:
    from assay.quality._spans_synth import synthetic_span_crowd

    n_items = max(1, int(args.spans / 5.0))  # about 5 spans per sentence (4 answers)
    items, rows, _ = synthetic_span_crowd(n_items, 2000, 4, seed=args.seed, spammer_share=0.1)
    n_spans = sum(len(r["spans"]) for r in rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spans.json")
        with open(path, "w") as fh:
            json.dump({"items": items, "rows": rows}, fh)
        del items, rows
        for method in args.methods:
            res = run_child([__file__, "--child", path, method])
            res.update({"bench": "spans_speed", "method": method, "spans": n_spans, "answers": n_items * 4,
                        "sentences": n_items})
            results.append(res)
            print(json.dumps(res), flush=True)
    print()
    print(f"{n_spans:,} span answers ({n_items:,} sentences x 4 answers, 2,000 workers); bar <= 30 s")
    print()
    print("| method | seconds | peak RSS MB (rows loaded) |")
    print("|---|---|---|")
    for r in results:
        print(f"| {r['method']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} ({r['loaded_mb']:.0f}) |")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", action="store_true", help="time 1M synthetic span answers instead")
    ap.add_argument("--spans", type=int, default=1_000_000, help="synthetic spans for --speed")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-items", action="store_true", help="also score every method without the items' tokens")
    ap.add_argument("--child", nargs=2, metavar=("PATH", "METHOD"), help=argparse.SUPPRESS)
    ap.add_argument("--no-save", action="store_true", help="do not append to the results file")
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    results = speed(args) if args.speed else accuracy(args)
    if not args.no_save:
        mach = machine()
        mach["load_avg"] = os.getloadavg()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with open(OUT, "a") as fh:
            for r in results:
                fh.write(json.dumps({**r, "machine": mach}) + "\n")


if __name__ == "__main__":
    main()
