"""Teaching by nuance end to end: ``assay simulate --teach`` over a few settings.

    python benchmarks/quality/bench_teach.py [--seeds 0,1,2] [--settings base,checks15,...]
        [--out results.jsonl]

Each setting is :class:`assay.simulation.teach.Config` with a few fields
changed from the base (30 annotators x 150 tasks, 2 nuances, 30 % of
(annotator, nuance) pairs weak at 0.5 against a base skill 0.85-0.95,
hidden checks 30 % of tasks, teach_bar 0.75, teaching served on 20 % of
requests, 3 teaching items per need, learning chance 0.5 per item). One
JSON line per (setting, seed) goes to ``--out``; a markdown table
(sums and pooled shares over the seeds) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from assay.simulation.teach import POWER_AT, simulate_teach  # noqa: E402

SETTINGS = {
    "base": {},
    "checks15": {"check_rate": 0.15},
    "long": {"answers": 300},
    "annot60": {"annotators": 60},
    "learn0": {"teach_rate": 0.0},
    "learn1": {"teach_rate": 1.0},
    "serve05": {"serve_rate": 0.05},
    "weak50": {"weak_share": 0.5},
}


def _row(name: str, runs: list[dict]) -> dict:
    """One table row: counts summed over the seeds, shares pooled."""
    det = [r["detection"] for r in runs]
    weak = sum(d["weak_pairs"] for d in det)
    strong = sum(d["pairs"] - d["weak_pairs"] for d in det)
    at = [n for r in runs for n in _checks_at(r)]
    within = {}
    for k in POWER_AT:
        n = sum(d["power_within"][str(k)]["pairs"] for d in det)
        hit = sum(round((d["power_within"][str(k)]["power"] or 0) * d["power_within"][str(k)]["pairs"]) for d in det)
        within[k] = (None if n == 0 else hit / n, n)
    ms = [r["measurement"] for r in runs]
    needs = [x for m in ms for x in m["needs"]]
    pooled = [m["pooled"] for m in ms if m["pooled"] is not None]
    clean = [m["pooled_after_detection"] for m in ms if m["pooled_after_detection"] is not None]
    return {
        "setting": name, "seeds": len(runs),
        "power": sum(d["detected_weak"] for d in det) / max(weak, 1), "weak_pairs": weak,
        "false_rate": sum(d["false_detections"] for d in det) / max(strong, 1),
        "at_median": float(np.median(at)) if at else None,
        "at_p90": float(np.quantile(at, 0.9, method="inverted_cdf")) if at else None,
        "within": within,
        "served": sum(r["teaching"]["items_served"] for r in runs),
        "measured": len(needs), "coverage": None if not needs else sum(x["covers"] for x in needs) / len(needs),
        "pooled": pooled, "clean": clean,
        "seconds": sum(r["seconds"] for r in runs),
    }


def _checks_at(r: dict) -> list[int]:
    return r["detection"]["checks_at_detection"]["values"]


def _fmt(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _pooled_cell(ps: list[dict]) -> str:
    if not ps:
        return "-"
    m = np.mean([p["measured_change"] for p in ps])
    t = np.mean([p["true_change"] for p in ps])
    return f"{m:+.2f} vs {t:+.2f} ({sum(p['covers'] for p in ps)}/{len(ps)})"


def table(rows: list[dict]) -> str:
    head = ("| setting | power (weak pairs) | power within 10 / 20 / 30 checks (pairs that reached N) | false det. | checks at detection "
            "(median, p90) | teaching served | needs measured | per-need coverage | pooled: measured vs true "
            "(covered) | pooled, before after detection only |")
    out = [head, "|" + "---|" * 10]
    for r in rows:
        w = r["within"]
        out.append(f"| {r['setting']} | {_fmt(r['power'])} ({r['weak_pairs']}) | "
                   + " / ".join(f"{_fmt(w[k][0])} ({w[k][1]})" for k in (10, 20, 30))
                   + f" | {_fmt(r['false_rate'], 3)} | {_fmt(r['at_median'], 0)}, {_fmt(r['at_p90'], 0)} "
                   f"| {r['served']} | {r['measured']} | {_fmt(r['coverage'])} | {_pooled_cell(r['pooled'])} | "
                   f"{_pooled_cell(r['clean'])} |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--table", type=Path, default=None, help="only print the table of an --out file")
    ap.add_argument("--detect-own", action="store_true",
                    help="experiment: a need also needs the annotator's own (unshrunk) 90 %% upper end below the "
                         "bar (patches rate_skills in this process only)")
    a = ap.parse_args(argv)
    if a.detect_own:
        _patch_detection()
    if a.table is not None:
        runs: dict[str, list] = {}
        for line in a.table.read_text().splitlines():
            r = json.loads(line)
            runs.setdefault(r["setting"], []).append(r)
        print(table([_row(k, v) for k, v in runs.items()]))
        print(_bias(runs))
        return
    seeds = [int(s) for s in a.seeds.split(",")]
    by_setting: dict[str, list] = {}
    for name in a.settings.split(","):
        runs = by_setting.setdefault(name, [])
        for seed in seeds:
            r = simulate_teach(**{**SETTINGS[name], "seed": seed})
            r["setting"] = name
            if a.out is not None:
                with a.out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
            runs.append(r)
            print(f"{name} seed {seed}: {r['seconds']} s", file=sys.stderr, flush=True)
    print(table([_row(k, v) for k, v in by_setting.items()]))
    print(_bias(by_setting))


def _patch_detection() -> None:
    """The detection rule proposed for the engine, tried here without touching
    it: the upper end of the interval is the larger of the shrunk one and the
    annotator's own Wilson interval on their raw counts."""
    from assay.quality import skills

    shrunk = skills.rate_skills

    def rate_skills(hits, n):
        mean, low, high = shrunk(hits, n)
        own = skills.rate_interval(np.asarray(hits, float), np.asarray(n, float))[2]
        return mean, low, np.maximum(high, np.nan_to_num(own, nan=1.0))

    skills.rate_skills = rate_skills


def _bias(runs: dict) -> str:
    """Measured minus true pooled change over all runs, for the report's
    "before" and for "before" from post-detection checks only."""
    out = []
    for key in ("pooled", "pooled_after_detection"):
        ps = [r["measurement"][key] for v in runs.values() for r in v if r["measurement"][key] is not None]
        gap = [p["measured_change"] - p["true_change"] for p in ps]
        out.append(f"{key}: {len(ps)} runs, covered {sum(p['covers'] for p in ps)}, measured - true: mean "
                   f"{np.mean(gap):+.3f}, min {min(gap):+.3f}, max {max(gap):+.3f}")
    ps = [r["measurement"]["pooled_after_detection"] for v in runs.values() for r in v]
    ps = [p for p in ps if p is not None and "coverage" in p and p["needs_with_checks"]]
    if ps:
        judged = sum(p["needs_with_checks"] for p in ps)
        hit = sum(round(p["coverage"] * p["needs_with_checks"]) for p in ps)
        out.append(f"per need, since detection: {judged} with checks after the detection, 90 % interval covers "
                   f"the true change in {hit} ({hit / judged:.3f}); raw count mismatches "
                   f"{sum(p['raw_mismatches'] for p in ps)}")
    needs = [n for v in runs.values() for r in v for n in r["measurement"]["needs"]]
    out.append(f"per need: {len(needs)} measured, 90 % interval covers the true change in "
               f"{sum(n['covers'] for n in needs)} ({sum(n['covers'] for n in needs) / len(needs):.3f}); "
               f"measured - true: mean {np.mean([n['measured_change'] - n['true_change'] for n in needs]):+.3f}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
