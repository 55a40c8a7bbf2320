"""Consensus for bounding boxes (issue 14, part 4): the skill model against the
vote baseline on real crowd boxes, and its speed on a million boxes.

Accuracy (default): ``../shared/data/boxes/pedestrians_a`` (724 street
images, 7 MTurk annotators each, expert boxes on 469). Each method's boxes are
scored against the experts' with :func:`assay.quality.boxes.score_boxes`
(greedy one-to-one match at IoU >= 0.5: precision, recall, F1, and the mean
IoU of the matched boxes), side by side in one run:

* ``one``: one annotator's boxes (every answer scored alone, counts pooled);
* ``vote``: the baseline (greedy clusters on the running median, IoU >= 0.5,
  kept with >= 3 of 7 votes, per-edge median);
* ``em``, ``auto``: :func:`assay.quality.boxes.aggregate_boxes`.

Also on synthetic crowds with known skills (``--synthetic``, several seeds):
the same scores plus how well the estimated recall, false-box rate and
localisation error follow the true ones (Pearson r).

Speed (``--speed``): a synthetic crowd of about 1M boxes (7 annotators per
image, so about 7 boxes per object less misses plus false boxes), generated
and aggregated (``method="auto"``) in a fresh child process: seconds and peak
RSS (VmHWM, generation included). Bar: <= 30 s, <= 2 GB.

Halves (``--halves N``): the real set cut at random into two halves of
images N times, each half aggregated on its own (skills learned from it
alone, as on a held-out part) and scored: how often, and by how much, the
skill model beats the vote on each half.

Small (``--small``): synthetic crowds of 5-50 images, em against vote.

    python benchmarks/quality/bench_boxes.py [--synthetic 3] [--halves 10] [--small] [--speed] [--boxes 1000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "src"))

import numpy as np  # noqa: E402

from assay.quality.io import read_jsonl  # noqa: E402
from assay.quality._boxes_synth import synthetic_crowd  # noqa: E402
from assay.quality.boxes import fit_boxes, score_boxes  # noqa: E402

DATA = HERE.parents[2] / "shared" / "data" / "boxes" / "pedestrians_a"
OUT = HERE.parent / "results" / "2026-12-04" / "issue14_boxes.jsonl"
#: synthetic images per million boxes (1.5 objects, 7 annotators, their recall and false boxes: ~9.3 boxes/image)
ITEMS_PER_BOX = 1 / 9.3


def _one_annotator(rows: list[dict], truth: list[dict]) -> dict:
    """Every answer scored alone against the truth, counts pooled over all answers."""
    by_item = {r["item"]: r["boxes"] for r in truth}
    matched = predicted = true = 0
    iou_sum = 0.0
    for r in rows:
        if r["item"] in by_item:
            s = score_boxes({0: r["boxes"]}, {0: by_item[r["item"]]})
            matched, predicted, true = matched + s["matched"], predicted + s["predicted"], true + s["true"]
            iou_sum += s["mean_iou"] * s["matched"] if s["matched"] else 0.0
    return {"precision": matched / predicted, "recall": matched / true, "f1": 2 * matched / (predicted + true),
            "mean_iou": iou_sum / matched, "matched": matched, "predicted": predicted, "true": true}


def _score_methods(rows: list[dict], truth: list[dict], items: dict | None) -> list[dict]:
    out = [{"method": "one", "seconds": 0.0, **_one_annotator(rows, truth)}]
    for method in ("vote", "em", "auto"):
        t = time.perf_counter()
        fit = fit_boxes(rows, items, method)
        out.append({"method": method, "seconds": round(time.perf_counter() - t, 3), **score_boxes(fit.results, truth)})
    return out


def real() -> list[dict]:
    rows, truth = read_jsonl(DATA / "answers.jsonl"), read_jsonl(DATA / "truth.jsonl")
    items = {r["item"]: r for r in read_jsonl(DATA / "items.jsonl")}
    return [{"set": "pedestrians_a", **r} for r in _score_methods(rows, truth, items)]


def halves(n_splits: int, seed: int = 0) -> list[dict]:
    """The real set cut at random into two halves of images, ``n_splits`` times; each half
    aggregated on its own (skills learned from that half only, as on a held-out part) and
    scored: the difference em - vote on each half."""
    rows, truth = read_jsonl(DATA / "answers.jsonl"), read_jsonl(DATA / "truth.jsonl")
    item_ids = sorted({r["item"] for r in rows})
    rng = np.random.default_rng(seed)
    out = []
    for split in range(n_splits):
        half = set(rng.permutation(item_ids)[: len(item_ids) // 2].tolist())
        for side in (True, False):
            part = [r for r in rows if (r["item"] in half) == side]
            t = [r for r in truth if (r["item"] in half) == side]
            v = score_boxes(fit_boxes(part, method="vote").results, t)
            e = score_boxes(fit_boxes(part, method="auto").results, t)
            out.append({"set": f"pedestrians_a half {split}{'ab'[not side]}", "images_scored": len(t),
                        "vote_f1": v["f1"], "auto_f1": e["f1"], "vote_mean_iou": v["mean_iou"],
                        "auto_mean_iou": e["mean_iou"]})
    return out


def small() -> list[dict]:
    """Small synthetic crowds (5-50 images, 10 annotators, 3 or 5 per image, seeds 0-4):
    does EM already match the vote there? (``auto`` votes below 10 images of 2+ annotators.)"""
    out = []
    for n in (5, 10, 20, 50):
        for per in (3, 5):
            for seed in range(5):
                rows, truth, _ = synthetic_crowd(n, n_workers=10, per_item=per, seed=seed)
                e = score_boxes(fit_boxes(rows, method="em").results, truth)
                v = score_boxes(fit_boxes(rows, method="vote").results, truth)
                out.append({"set": f"small synthetic {n}x{per} seed {seed}", "em_f1": e["f1"], "vote_f1": v["f1"]})
    return out


def synthetic(seeds: int, n_items: int = 2000) -> list[dict]:
    out = []
    for seed in range(seeds):
        rows, truth, skills = synthetic_crowd(n_items, seed=seed)
        res = _score_methods(rows, truth, None)
        fit = fit_boxes(rows, method="em")
        order = [int(w[1:]) for w in fit.workers]
        corr = {f"r_{k}": round(float(np.corrcoef(est, skills[k][order])[0, 1]), 3)
                for k, est in (("recall", fit.recall), ("false_rate", fit.false_rate), ("jitter", fit.loc_error))}
        out += [{"set": f"synthetic seed {seed}", **r, **(corr if r["method"] == "em" else {})} for r in res]
    return out


def _child(n_boxes: int, method: str) -> None:
    from _common import peak_rss_mb

    rows, _, _ = synthetic_crowd(int(n_boxes * ITEMS_PER_BOX), seed=0)
    boxes = sum(len(r["boxes"]) for r in rows)
    rss_rows = peak_rss_mb()
    t, cpu = time.perf_counter(), time.process_time()
    fit = fit_boxes(rows, method=method)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"boxes": boxes, "answers": len(rows), "images": len(fit.results), "method": fit.method,
                      "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mb_after_rows": round(rss_rows, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def speed(n_boxes: int, method: str = "auto") -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", str(n_boxes), "--child-method", method],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> None:
    print("\n| set | method | precision | recall | F1 | mean IoU | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['method']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
              f"{r['mean_iou']:.3f} | {r['seconds']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synthetic", type=int, default=0, help="also score this many synthetic crowds (seeds 0..n-1)")
    ap.add_argument("--halves", type=int, default=0, help="also score random halves of the real set this many times")
    ap.add_argument("--small", action="store_true", help="also compare em and vote on small synthetic crowds")
    ap.add_argument("--speed", action="store_true", help="only the speed run on --boxes synthetic boxes")
    ap.add_argument("--boxes", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=OUT, help="append the raw results here (JSON lines)")
    ap.add_argument("--speed-methods", default="vote,auto",
                    help="with --speed: the methods timed, one fresh process each, in this order (the vote baseline first)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-method", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.child_method)
        return
    head = {"bench": "boxes", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.processor() or platform.machine()}, 2-core AMD EPYC (shared)"}
    if args.speed:
        recs = []
        for method in args.speed_methods.split(","):
            rec = {**head, "kind": "speed", "asked": method, **speed(args.boxes, method)}
            print(json.dumps(rec))
            print(f"\n{method}: {rec['boxes']:,} boxes ({rec['images']:,} images): {rec['seconds']:.1f} s "
                  f"({rec['cpu_seconds']:.1f} s CPU), peak RSS {rec['peak_rss_mb']:.0f} MB (bar: <= 30 s, <= 2048 MB)")
            recs.append(rec)
    else:
        rows = real() + synthetic(args.synthetic)
        recs = [{**head, "kind": "accuracy", **r} for r in rows]
        _table(rows)
        if args.small:
            sm = small()
            recs += [{**head, "kind": "small", **r} for r in sm]
            ok = sum(round(r["em_f1"], 2) >= round(r["vote_f1"], 2) for r in sm)
            print(f"\nsmall crowds: em F1 >= vote F1 (2 decimals) in {ok} of {len(sm)}")
        if args.halves:
            hv = halves(args.halves)
            recs += [{**head, "kind": "halves", **r} for r in hv]
            d_f1 = np.array([r["auto_f1"] - r["vote_f1"] for r in hv])
            d_iou = np.array([r["auto_mean_iou"] - r["vote_mean_iou"] for r in hv])
            print(f"\nrandom halves ({len(hv)}): auto - vote F1 mean {d_f1.mean():+.3f} (min {d_f1.min():+.3f}, "
                  f"better on {(d_f1 > 0).sum()}); mean IoU mean {d_iou.mean():+.3f} (min {d_iou.min():+.3f}, "
                  f"better on {(d_iou > 0).sum()})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
