"""Speed and memory of every aggregator on the seeded synthetic crowd
(1,000,000 answers: 100k items x 10, 2,000 workers, 5 classes), each method
in a fresh child process, optionally side by side with crowd-kit running in
its own virtualenv.

    python benchmarks/quality/bench_speed.py                     # assay only
    python benchmarks/quality/bench_speed.py --crowd-kit /tmp/ckvenv/bin/python
    python benchmarks/quality/bench_speed.py --crowd-kit /tmp/ckvenv/bin/python --glad-parity

Bars (issue): auto to convergence <= 5 s, peak <= 1 GB; DS >= 10x and GLAD
>= 50x faster than crowd-kit per iteration; accuracy equal within 0.2 points.

How the comparisons are made (the same run, the same data):

- DS: crowd-kit runs at its defaults and stops after N iterations; assay then
  runs exactly N iterations (``max_iter=N, tol=0``, so it cannot stop
  early). Both also run 1 iteration, so the marginal cost of an iteration,
  (T(N) - T(1)) / (N - 1), is measured without set-up (assay: validation and
  one sort; crowd-kit: majority vote and data-frame joins). Both libraries
  get the same number of timed runs (``--repeat``) and keep the fastest,
  interleaved so that load on a shared machine hits both alike.
- GLAD: crowd-kit takes minutes per iteration at this size, so it runs once,
  ``--ck-glad-iters`` (2) iterations; assay runs the same number at its
  defaults and with crowd-kit's set-up (``b_mean=1, init="params",
  newton_steps=25``). crowd-kit's labels come from the E-step *before* its
  last M-step, so its reported accuracy after n iterations is compared with
  assay's after n - 1; its final alpha and beta are also turned into labels
  by one more E-step (computed here, untimed) and compared with assay's
  after n.
- ``--glad-parity``: converged GLAD on smaller crowds of the same recipe
  (2,000 and 10,000 items x 10 answers), where crowd-kit finishes in minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "src"))

METHODS = ["mv", "wawa", "one-coin", "ds", "glad", "mace", "bwa", "auto"]
#: assay's GLAD set up as crowd-kit's: its prior and start, a near-complete M-step
CK_GLAD_SETUP = {"b_mean": 1.0, "init": "params", "newton_steps": 25}
#: assay's GLAD defaults before 2026-11-26 (N(0, 1) prior on log-easiness, start from the votes)
OLD_GLAD = {"b_mean": 0.0, "init": "votes"}
PARITY_SIZES = [(2_000, 200), (10_000, 1_000)]  # (items, workers), 10 answers per item


def child(method: str, data: str, params: dict) -> None:
    import numpy as np

    from assay.quality import make_aggregator
    from assay.quality._answers import Answers

    z = np.load(data)
    items, workers, labels, truth = z["items"], z["workers"], z["labels"], z["truth"]
    base_mb = peak_mb()
    t0 = time.perf_counter()
    Answers(items, workers, labels)
    setup = time.perf_counter() - t0
    model = make_aggregator(method, **params)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(items, workers, labels)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    iters = int(getattr(model, "n_iter_", 0))
    if method == "auto":  # count every EM iteration auto ran, candidates included
        iters = None
    print(json.dumps({
        "method": method, "params": params, "seconds": seconds, "cpu_seconds": cpu, "setup_seconds": setup,
        "iterations": iters,
        "per_iter_ms": seconds / iters * 1000 if iters else None,  # set-up included, as for crowd-kit
        "accuracy": float((model.labels_ == truth).mean()), "chosen": getattr(model, "method_", None),
        "converged": bool(getattr(model, "converged_", True)),
        "peak_mb": peak_mb(), "baseline_mb": base_mb, "load_1min": os.getloadavg()[0],
    }))


def run(cmd: list[str], timeout: float) -> dict:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": [f"timed out after {timeout:.0f} s"]}
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def fastest(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    best = dict(min(ok, key=lambda r: r["seconds"]))
    best["all_seconds"] = [round(r["seconds"], 4) for r in ok]
    return best


def peak_mb() -> float:
    """High-water RSS of this process (VmHWM; unlike ru_maxrss it is not
    inherited across exec from the parent that started us)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def glad_from_params(items, workers, labels, truth, saved: str, q_params: dict | None = None) -> dict:
    """Accuracy of the labels that crowd-kit's final GLAD parameters give
    (one E-step, uniform class prior, as crowd-kit's own E-step)."""
    import numpy as np

    from assay.quality import GLAD
    from assay.quality._answers import Answers

    z = np.load(saved, allow_pickle=True)
    data = Answers(items, workers, labels)
    alpha = np.zeros(data.n_workers)
    alpha[z["worker_ids"].astype(np.intp)] = z["alpha"]
    b = np.zeros(data.n_items)
    b[z["items"].astype(np.intp)] = z["b"]
    k = data.n_classes
    post, _ = GLAD()._e_step(data, alpha, b, np.full(k, 1.0 / k), np.zeros(0, np.intp), np.zeros(0, np.intp))
    return {"accuracy": float((post.argmax(axis=1) == truth).mean()),
            "agree_with_reported": float((post.argmax(axis=1)[z["items"]] == z["labels"]).mean())}


def glad_m_step_q(items, workers, labels, truth) -> dict:
    """crowd-kit's M-step objective Q (its optimiser minimises -Q) after
    assay's first M-step with crowd-kit's set-up, to set beside the value
    crowd-kit's optimiser stopped at; and the accuracy of the E-step after it."""
    import numpy as np

    from assay.quality import GLAD
    from assay.quality._answers import Answers

    data = Answers(items, workers, labels)
    k = data.n_classes
    none = np.zeros(0, np.intp)
    prior = np.full(k, 1.0 / k)
    model = GLAD(**CK_GLAD_SETUP)
    alpha, b = np.ones(data.n_workers), np.ones(data.n_items)
    post, _ = model._e_step(data, alpha, b, prior, none, none)
    model._m_step(data, post, alpha, b)
    x = alpha[data.workers] * np.exp(b)[data.items]
    p_right = data.at_answers(post)
    log_right = -np.logaddexp(0.0, -x)
    log_wrong = -np.logaddexp(0.0, x) - np.log(k - 1)
    q = float(np.sum(p_right * log_right + (1 - p_right) * log_wrong))
    half_log_2pi = 0.5 * np.log(2 * np.pi)  # crowd-kit adds log N(0, 1) densities, constants included
    q -= float(np.sum(0.5 * (alpha - 1) ** 2 + half_log_2pi) + np.sum(0.5 * (b - 1) ** 2 + half_log_2pi))
    after, _ = model._e_step(data, alpha, b, prior, none, none)
    return {"minus_q": -q, "accuracy_after_m1": float((after.argmax(axis=1) == truth).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child")
    ap.add_argument("--data")
    ap.add_argument("--params", default="{}", help="JSON constructor parameters for --child")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--crowd-kit", help="python of a virtualenv with crowd-kit installed")
    ap.add_argument("--ck-ds-iters", type=int, default=100, help="crowd-kit DS n_iter (100 = its default)")
    ap.add_argument("--ck-glad-iters", type=int, default=2)
    ap.add_argument("--no-ck-glad", action="store_true", help="skip crowd-kit's GLAD at 1M (minutes per iteration)")
    ap.add_argument("--glad-parity", action="store_true", help="also compare converged GLAD on smaller crowds")
    ap.add_argument("--parity-sizes", default=",".join(f"{i}x{w}" for i, w in PARITY_SIZES),
                    help="ITEMSxWORKERS,... for --glad-parity")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timed configuration; the fastest is kept")
    ap.add_argument("--json-out", help="also write the JSON results here")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, json.loads(args.params))
        return

    import numpy as np
    from _common import machine
    from synth import make_crowd

    items, workers, labels, truth = make_crowd()
    tmp = tempfile.mkdtemp()
    data = os.path.join(tmp, "crowd.npz")
    np.savez(data, items=items, workers=workers, labels=labels, truth=truth)
    me = [sys.executable, __file__, "--data", data]
    ck = [args.crowd_kit, str(HERE / "_crowdkit_child.py")] if args.crowd_kit else None
    results = {"machine": machine(), "load_avg_before": os.getloadavg(), "answers": int(items.size),
               "repeat": args.repeat, "assay": {}, "crowd_kit": {}, "compare": {}}

    def ours(method: str, params: dict | None = None) -> list[str]:
        return me + ["--child", method, "--params", json.dumps(params or {})]

    def log(name: str, r: dict) -> None:
        print(name, {k: v for k, v in r.items() if k != "m_steps"}, file=sys.stderr, flush=True)

    for m in args.methods.split(","):
        results["assay"][m] = fastest([run(ours(m), 600) for _ in range(args.repeat)])
        log(m, results["assay"][m])
    extra = {"glad@2": {"max_iter": 2}}
    if "glad" in args.methods.split(","):
        extra["glad, old defaults"] = OLD_GLAD
    for key, params in extra.items():
        results["assay"][key] = fastest([run(ours("glad", params), 600) for _ in range(args.repeat)])
        log(key, results["assay"][key])

    if ck:
        # ---- DS at equal iterations, interleaved runs, fastest of each
        first = run(ck + ["ds", str(args.ck_ds_iters)], 3600)
        if "error" in first:
            results["crowd_kit"]["ds"] = first
        else:
            n = int(first["iterations"])
            ck_n, ck_1, ours_n, ours_1 = [first], [], [], []
            for i in range(args.repeat):
                ours_n.append(run(ours("ds", {"max_iter": n, "tol": 0}), 600))
                if i:
                    ck_n.append(run(ck + ["ds", str(args.ck_ds_iters)], 3600))
                ours_1.append(run(ours("ds", {"max_iter": 1}), 600))
                ck_1.append(run(ck + ["ds", "1"], 3600))
            rc = results["crowd_kit"]
            ra = results["assay"]
            rc["ds"], rc["ds@1"] = fastest(ck_n), fastest(ck_1)
            ra[f"ds@{n}"], ra["ds@1"] = fastest(ours_n), fastest(ours_1)
            for name, r in (("crowd-kit ds", rc["ds"]), ("crowd-kit ds@1", rc["ds@1"]),
                            (f"ds@{n}", ra[f"ds@{n}"]), ("ds@1", ra["ds@1"])):
                log(name, r)
            if all("error" not in r for r in (rc["ds"], rc["ds@1"], ra[f"ds@{n}"], ra["ds@1"])):
                o_tot, c_tot = ra[f"ds@{n}"]["seconds"], rc["ds"]["seconds"]
                o_marg = (o_tot - ra["ds@1"]["seconds"]) / (n - 1) if n > 1 else float("nan")
                c_marg = (c_tot - rc["ds@1"]["seconds"]) / (n - 1) if n > 1 else float("nan")
                results["compare"]["ds"] = {
                    "iterations": n, "assay_s": o_tot, "crowd_kit_s": c_tot,
                    "assay_ms_per_iter": o_tot / n * 1000, "crowd_kit_ms_per_iter": c_tot / n * 1000,
                    "ratio_total": c_tot / o_tot,
                    "assay_marginal_ms": o_marg * 1000, "crowd_kit_marginal_ms": c_marg * 1000,
                    "ratio_marginal": c_marg / o_marg,
                    "assay_1_iter_s": ra["ds@1"]["seconds"], "crowd_kit_1_iter_s": rc["ds@1"]["seconds"],
                    "assay_accuracy": ra[f"ds@{n}"]["accuracy"], "crowd_kit_accuracy": rc["ds"]["accuracy"],
                }
        # ---- GLAD at a fixed, small number of iterations (crowd-kit: one run)
        g = args.ck_glad_iters
        ra = results["assay"]
        for it in sorted({g, max(g - 1, 1)}):
            key = f"glad, crowd-kit set-up @{it}"
            ra[key] = fastest([run(ours("glad", {**CK_GLAD_SETUP, "max_iter": it}), 600)
                               for _ in range(args.repeat)])
            log(key, ra[key])
        if not args.no_ck_glad:
            saved = os.path.join(tmp, "ck_glad.npz")
            r = run(ck + ["glad", str(g), "--save", saved], 7200)
            results["crowd_kit"]["glad"] = r
            log("crowd-kit glad", r)
            if "error" not in r:
                r["from_final_params"] = glad_from_params(items, workers, labels, truth, saved)
                q = glad_m_step_q(items, workers, labels, truth)
                o2 = ra["glad@2"] if g == 2 else None
                results["compare"]["glad"] = {
                    "iterations": g, "crowd_kit_s": r["seconds"],
                    "ratio_total_default": r["seconds"] / o2["seconds"] if o2 and "error" not in o2 else None,
                    "ratio_total_ck_setup": r["seconds"] / ra[f"glad, crowd-kit set-up @{g}"]["seconds"],
                    "crowd_kit_reported_accuracy": r["accuracy"],
                    "assay_ck_setup_accuracy_at_n_minus_1": ra[f"glad, crowd-kit set-up @{max(g - 1, 1)}"]["accuracy"],
                    "crowd_kit_accuracy_from_final_params": r["from_final_params"]["accuracy"],
                    "assay_ck_setup_accuracy_at_n": ra[f"glad, crowd-kit set-up @{g}"]["accuracy"],
                    "assay_default_accuracy_at_n": o2["accuracy"] if o2 else None,
                    "crowd_kit_first_m_step": (r.get("m_steps") or [None])[0],
                    "assay_first_m_step_minus_q": q["minus_q"],
                }
    if ck and args.glad_parity:
        sizes = [tuple(int(v) for v in x.split("x")) for x in args.parity_sizes.split(",")]
        results["glad_parity"] = parity(ck, args.repeat, tmp, sizes)
    results["load_avg_after"] = os.getloadavg()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print()
    print_tables(results)


def parity(ck: list[str], repeat: int, tmp: str, sizes: list[tuple[int, int]]) -> list[dict]:
    """Converged GLAD, assay (default and crowd-kit set-up) and crowd-kit, on
    smaller crowds of the same recipe."""
    import numpy as np
    from synth import make_crowd

    out = []
    for n_items, n_workers in sizes:
        items, workers, labels, truth = make_crowd(n_items=n_items, n_workers=n_workers)
        data = os.path.join(tmp, f"crowd_{n_items}.npz")
        np.savez(data, items=items, workers=workers, labels=labels, truth=truth)
        row = {"items": n_items, "workers": n_workers, "answers": int(items.size)}
        for name, params in (("glad", {}), ("glad, crowd-kit set-up", CK_GLAD_SETUP), ("glad, old defaults", OLD_GLAD)):
            cmd = [sys.executable, __file__, "--data", data, "--child", "glad", "--params", json.dumps(params)]
            row[name] = fastest([run(cmd, 600) for _ in range(repeat)])
        row["crowd-kit glad"] = run(ck + ["glad", "100", "--items", str(n_items), "--workers", str(n_workers)], 3600)
        print("parity", n_items, {k: (v.get("accuracy"), v.get("iterations"), v.get("seconds"))
                                  if isinstance(v, dict) else v for k, v in row.items()}, file=sys.stderr, flush=True)
        out.append(row)
    return out


def print_tables(results: dict) -> None:
    print("| method | wall s | cpu s | iterations | ms / iteration | peak MB | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for m, r in results["assay"].items():
        if "error" in r:
            print(f"| {m} | error: {r['error']} |")
            continue
        per = f"{r['per_iter_ms']:.0f}" if r["per_iter_ms"] else "–"
        it = r["iterations"] or "–" if r["iterations"] is not None else f"(chose {r['chosen']})"
        print(f"| {m} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {it} | {per} | {r['peak_mb']:.0f} "
              f"| {r['accuracy'] * 100:.2f} |")
    for m, r in results["crowd_kit"].items():
        if "error" in r:
            print(f"| crowd-kit {m} | error: {r['error']} |")
            continue
        print(f"| crowd-kit {m} | {r['seconds']:.2f} | – | {r['iterations']} | {r['per_iter_s'] * 1000:.0f} | "
              f"{r['peak_mb']:.0f} | {r['accuracy'] * 100:.2f} |")
    c = results["compare"].get("ds")
    if c:
        print()
        print(f"DS, both at {c['iterations']} iterations: assay {c['assay_s']:.2f} s, crowd-kit "
              f"{c['crowd_kit_s']:.2f} s -> {c['ratio_total']:.1f}x ({c['assay_ms_per_iter']:.0f} vs "
              f"{c['crowd_kit_ms_per_iter']:.0f} ms / iteration, set-up included); marginal iteration "
              f"{c['assay_marginal_ms']:.1f} vs {c['crowd_kit_marginal_ms']:.0f} ms -> {c['ratio_marginal']:.1f}x; "
              f"1 iteration incl. set-up {c['assay_1_iter_s']:.3f} vs {c['crowd_kit_1_iter_s']:.2f} s; "
              f"accuracy {c['assay_accuracy'] * 100:.2f} vs {c['crowd_kit_accuracy'] * 100:.2f}")
    g = results["compare"].get("glad")
    if g:
        n = g["iterations"]
        rd = f"{g['ratio_total_default']:.0f}x" if g["ratio_total_default"] else "–"
        print(f"GLAD, {n} iterations: crowd-kit {g['crowd_kit_s']:.1f} s; faster: assay default {rd}, "
              f"crowd-kit set-up {g['ratio_total_ck_setup']:.0f}x. Accuracy: crowd-kit as reported "
              f"{g['crowd_kit_reported_accuracy'] * 100:.2f} vs assay (crowd-kit set-up) after {max(n - 1, 1)} "
              f"{g['assay_ck_setup_accuracy_at_n_minus_1'] * 100:.2f}; crowd-kit from its final parameters "
              f"{g['crowd_kit_accuracy_from_final_params'] * 100:.2f} vs assay after {n}: crowd-kit set-up "
              f"{g['assay_ck_setup_accuracy_at_n'] * 100:.2f}, default "
              f"{(g['assay_default_accuracy_at_n'] or float('nan')) * 100:.2f}")
        m1 = g["crowd_kit_first_m_step"]
        if m1:
            print(f"  first M-step: crowd-kit's optimiser stopped at -Q = {m1['minus_q']:.1f} after {m1['nit']} "
                  f"iterations, max |gradient| {m1['max_abs_grad']:.2g} ({m1['message']}); assay's "
                  f"{CK_GLAD_SETUP['newton_steps']} Newton rounds reach -Q = {g['assay_first_m_step_minus_q']:.1f}")
    for row in results.get("glad_parity", []):
        print()
        print(f"GLAD to convergence, {row['items']:,} items x 10 answers, {row['workers']:,} workers:")
        print("| method | wall s | iterations | ms / iteration | accuracy |")
        print("|---|---|---|---|---|")
        for k in ("glad", "glad, crowd-kit set-up", "glad, old defaults", "crowd-kit glad"):
            r = row[k]
            if "error" in r:
                print(f"| {k} | error: {r['error']} |")
                continue
            per = r["per_iter_ms"] if "per_iter_ms" in r else r["per_iter_s"] * 1000
            print(f"| {k} | {r['seconds']:.3f} | {r['iterations']} | {per:.1f} | {r['accuracy'] * 100:.2f} |")


if __name__ == "__main__":
    main()
