"""Teaching by nuance end to end, with synthetic annotators.

``simulate_teach(...)`` (``assay simulate --teach``) builds a throw-away
workspace (SQLite in a temporary folder) and runs a synthetic crowd through
the real hand-out, hidden checks, detection rounds, teaching items and
report of :mod:`assay.engine.teach`, then compares what the report measured
with what was simulated.

**The synthetic crowd** (all draws seeded):

* ``classes`` classes ``a``, ``b``, ``c``, … (an even number); the nuances
  are the pairs ``"a vs b"``, ``"c vs d"``, …; an item's nuance is the pair
  of its true class (uniform over the classes).
* Items: real work (enough for every annotator's budget at ``overlap`` 1),
  ``checks`` hidden checks per nuance (gold, purpose 'check', tagged with it)
  and ``teach_items_per_nuance`` teaching items per nuance (purpose 'teach',
  with an explanation). The project asks ``check_rate`` of the tasks as
  hidden checks (``gold_rate``), ``teach_bar``, ``serve_rate`` (the project's
  ``teach_rate``: share of requests served as teaching while a need is open)
  and ``teach_items`` (teaching items per need).
* ``annotators`` annotators, each with a base skill drawn uniformly from
  ``good ± spread`` (capped at 1). Each (annotator, nuance) pair is weak with
  probability ``weak_share``: its skill is ``weak`` instead of the base.
  Skill is the chance to answer an item of the nuance right; a wrong answer
  is the pair's other class (the confusion the nuance names). It applies
  to real work, hidden checks and teaching items alike.
* **Learning** (the issue's "given rate", ``teach_rate`` here, not the
  project's setting): after each teaching item a weak pair answers, with
  probability ``teach_rate`` its skill becomes the annotator's base skill
  (a switch, not a step; it never goes back). Nothing else changes a skill,
  so a need's true skill is constant before the first teaching item and
  constant after the last one: its true change is ``after - before``.

**The run**: each step an annotator drawn at random among those with budget
left (``answers`` tasks each, teaching items not counted) asks
:meth:`Workspace.next_task`, and answers with :meth:`Workspace.submit`, or a
teaching item with :meth:`Workspace.submit_practice`. A detection round
(:meth:`Workspace.refresh_teaching`) runs every ``refresh_every`` answers, as
the server's background round would. The engine's own coin flips (gold
claims, serving) draw from Python's ``random``, seeded for the run and
restored after.

**The result** (a dict, see :func:`summary_text` for the human version):
detection power (share of weak pairs with a need) and the false detection
rate (share of other pairs with one); hidden-check answers on the nuance at
detection (median, p90) and ``power_within``: of the weak pairs that
answered at least N checks on their nuance by the end, the share detected by N; the
teaching items served; per measured need (after-checks >= the engine's
MEASURE_CHECKS) the report's change and 90 % interval against the true
change; the share of intervals that cover it; and pooled over those needs,
the report-style pooled change against its expectation given the counts
(sum of after-checks x true after-skill / after-checks minus the same before).
``pooled_after_detection`` does the same for the report's
``change_since_detection`` ("before" only from the checks answered after
the detection), with its per-need coverage and a cross-check of its counts
against the raw answers. ``report_project``: the report's own pooled
figures (over every need taught, measured or not).
"""

from __future__ import annotations

import math
import string
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import JSON, text

from assay.engine import gold as engine_gold
from assay.errors import InvalidInput

#: power is reported at these numbers of hidden-check answers on the nuance
POWER_AT = (5, 10, 15, 20, 30)

_CHECKS = text("SELECT f.annotator_id, g.nuance, count(*) AS n FROM first_answers f JOIN gold g"
               " ON g.project_id = f.project_id AND g.item_id = f.item_id"
               " WHERE g.project_id = :p AND g.purpose = 'check' GROUP BY f.annotator_id, g.nuance")
_RAW = text("SELECT f.annotator_id, g.nuance, f.label AS answer, g.label AS gold, f.created_at FROM first_answers f"
             " JOIN gold g ON g.project_id = f.project_id AND g.item_id = f.item_id"
             " WHERE g.project_id = :p AND g.purpose = 'check'").columns(answer=JSON, gold=JSON)
_ITEMS = text("SELECT id, text FROM items WHERE dataset_id = :d")
_TASKS = text("SELECT id FROM tasks WHERE project_id = :p ORDER BY id")
_SHUFFLE = text("UPDATE tasks SET shuffle_key = :k WHERE id = :t")


@dataclass
class Config:
    """One simulation's settings (see the module notes)."""

    annotators: int = 30
    answers: int = 150
    classes: int = 4
    weak_share: float = 0.3
    good: float = 0.9
    spread: float = 0.05
    weak: float = 0.5
    teach_rate: float = 0.5
    check_rate: float = 0.3
    checks: int = 60
    teach_items_per_nuance: int = 6
    teach_bar: float = 0.75
    serve_rate: float = 0.2
    teach_items: int = 3
    refresh_every: int = 30
    seed: int = 0

    def check(self) -> None:
        """Refuse settings that cannot run, with a clear message."""
        def bad(cond: bool, msg: str) -> None:
            if cond:
                raise InvalidInput(msg)

        bad(not 2 <= self.annotators <= 2000, "annotators must be from 2 to 2000")
        bad(not 1 <= self.answers <= 100_000, "answers (tasks per annotator) must be from 1 to 100000")
        bad(self.classes % 2 or not 2 <= self.classes <= 26, "classes must be an even number from 2 to 26 "
            "(the nuances are the pairs a vs b, c vs d, …)")
        for name in ("weak_share", "good", "spread", "weak", "teach_rate"):
            bad(not 0.0 <= getattr(self, name) <= 1.0, f"{name.replace('_', '-')} must be from 0 to 1")
        bad(self.weak >= self.good, "the weak skill must be below the good one")
        bad(not 0.0 < self.check_rate <= 0.5, "check-rate (share of tasks that are hidden checks) must be above "
            "0 and at most 0.5")
        bad(not 1 <= self.checks <= 10_000, "checks (hidden checks per nuance) must be from 1 to 10000")
        bad(not 1 <= self.teach_items_per_nuance <= 1000, "teaching items per nuance must be from 1 to 1000")
        bad(not 0.0 < self.teach_bar <= 1.0, "teach-bar must be above 0 and at most 1")
        bad(not 0.0 < self.serve_rate <= 1.0, "serve-rate must be above 0 and at most 1")
        bad(not 1 <= self.teach_items <= 100, "teach-items must be from 1 to 100")
        bad(self.refresh_every < 1, "refresh-every must be at least 1")


@dataclass
class Crowd:
    """The synthetic annotators: skill per (annotator, nuance), what was true."""

    base: list[float]
    weak: set = field(default_factory=set)  # (annotator index, nuance)
    skill: dict = field(default_factory=dict)  # (annotator index, nuance) -> current skill
    taught: dict = field(default_factory=dict)  # (annotator index, nuance) -> teaching items answered
    learned: set = field(default_factory=set)


def nuances_of(classes: list[str]) -> list[str]:
    return [f"{classes[i]} vs {classes[i + 1]}" for i in range(0, len(classes), 2)]


def _crowd(cfg: Config, nuances: list[str], rng: np.random.Generator) -> Crowd:
    base = [float(min(1.0, rng.uniform(cfg.good - cfg.spread, cfg.good + cfg.spread))) for _ in range(cfg.annotators)]
    c = Crowd(base)
    for a in range(cfg.annotators):
        for n in nuances:
            weak = bool(rng.random() < cfg.weak_share)
            if weak:
                c.weak.add((a, n))
            c.skill[(a, n)] = cfg.weak if weak else base[a]
    return c


def _build(ws, cfg: Config, classes: list[str], rng: np.random.Generator) -> tuple[int, dict, set, set]:
    """The project: items with true classes, hidden checks and teaching items,
    the settings; a seeded hand-out order. Returns (project id, true class by
    item id, check ids, teaching ids)."""
    nuances = nuances_of(classes)
    n_real = int(math.ceil(cfg.annotators * cfg.answers * 1.1)) + 10
    n_gold = len(nuances) * (cfg.checks + cfg.teach_items_per_nuance)
    truth = list(rng.integers(0, len(classes), n_real))
    for k in range(len(nuances)):  # gold: each nuance's checks, then its teaching items, classes alternating
        truth += [2 * k + (j % 2) for j in range(cfg.checks + cfg.teach_items_per_nuance)]
    names = [f"s{i}" for i in range(n_real + n_gold)]
    ds = ws.create_dataset("teach-sim")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": names}))
    with ws.db.read() as conn:
        id_of = {r.text: r.id for r in conn.execute(_ITEMS, {"d": ds["id"]})}
    true = {id_of[nm]: classes[c] for nm, c in zip(names, truth)}
    pid = ws.create_project("teach-sim", ds["id"], classes, overlap=1, lease_seconds=3600)["id"]
    ws.update_project(pid, gold_rate=cfg.check_rate, teach_bar=cfg.teach_bar, teach_rate=cfg.serve_rate,
                      teach_items=cfg.teach_items)
    rows, check, teach = [], set(), set()
    for k, nuance in enumerate(nuances):
        start = n_real + k * (cfg.checks + cfg.teach_items_per_nuance)
        for j in range(cfg.checks + cfg.teach_items_per_nuance):
            i = id_of[names[start + j]]
            if j < cfg.checks:
                rows.append({"item_id": i, "label": true[i], "nuance": nuance})
                check.add(i)
            else:
                rows.append({"item_id": i, "label": true[i], "nuance": nuance, "purpose": "teach",
                             "explanation": f"{true[i]}: the simulated explanation of {nuance}"})
                teach.add(i)
    ws.import_gold(pid, rows)
    with ws.db.write() as conn:  # a seeded hand-out order instead of SQL's random()
        tasks = [r.id for r in conn.execute(_TASKS, {"p": pid})]
        keys = rng.permutation(len(tasks))
        conn.execute(_SHUFFLE, [{"k": int(k), "t": t} for k, t in zip(keys, tasks)])
    return pid, true, check, teach


def _label(true: str, skill: float, classes: list[str], rng: np.random.Generator) -> str:
    """The answer of someone with ``skill`` on the item's nuance: right, or the pair's other class."""
    if rng.random() < skill:
        return true
    c = classes.index(true)
    return classes[c ^ 1]


def _nuance(label: str, classes: list[str]) -> str:
    c = classes.index(label) & ~1
    return f"{classes[c]} vs {classes[c + 1]}"


def _practice(ws, task: dict, user: dict, a: int, crowd: Crowd, cfg: Config, true: dict, classes: list[str],
              rng: np.random.Generator) -> None:
    """Answer a teaching item with the current skill, then maybe learn."""
    label = true[task["item"]["id"]]
    n = _nuance(label, classes)
    ws.submit_practice(task["id"], user, _label(label, crowd.skill[(a, n)], classes, rng))
    crowd.taught[(a, n)] = crowd.taught.get((a, n), 0) + 1
    if crowd.skill[(a, n)] < crowd.base[a] and rng.random() < cfg.teach_rate:
        crowd.skill[(a, n)] = crowd.base[a]
        crowd.learned.add((a, n))


def _run(ws, pid: int, users: list[dict], crowd: Crowd, cfg: Config, true: dict, classes: list[str],
         rng: np.random.Generator) -> dict:
    """Annotators arrive at random until every budget is spent (or the work
    runs out); detection rounds every ``refresh_every`` answers."""
    left = [cfg.answers] * len(users)
    active = list(range(len(users)))
    done = practice = rounds = 0
    while active:
        j = int(rng.integers(len(active)))
        a = active[j]
        t = ws.next_task(pid, users[a]) if left[a] > 0 else None
        if t is None:
            active[j] = active[-1]
            active.pop()
            continue
        if "teach" in t:
            _practice(ws, t, users[a], a, crowd, cfg, true, classes, rng)
            practice += 1
        else:
            label = true[t["item"]["id"]]
            ws.submit(t["id"], users[a], _label(label, crowd.skill[(a, _nuance(label, classes))], classes, rng))
            left[a] -= 1
        done += 1
        if done % cfg.refresh_every == 0:
            ws.refresh_teaching(pid)
            rounds += 1
    ws.refresh_teaching(pid)  # a last round: needs measured at the end
    return {"answers": done - practice, "teaching_answers": practice, "rounds": rounds + 1,
            "unspent": int(sum(max(x, 0) for x in left))}


def _quantile(xs: list[float], q: float) -> float | None:
    return None if not xs else float(np.quantile(np.asarray(xs, float), q, method="inverted_cdf"))


def _share(k: int, n: int) -> float | None:
    return None if n == 0 else round(k / n, 4)


def _detection(needs: list[dict], crowd: Crowd, index_of: dict, checks: dict, pairs: list) -> dict:
    """Power, false detections, checks at detection, power within N checks."""
    found = {(index_of[n["user_id"]], n["nuance"]): n for n in needs}
    weak = [p for p in pairs if p in crowd.weak]
    strong = [p for p in pairs if p not in crowd.weak]
    at = [found[p]["detected"]["checks"] for p in weak if p in found]
    within = {}
    for k in POWER_AT:
        eligible = [p for p in weak if checks.get(p, 0) >= k]  # reached k checks by the end, detected or not
        hit = sum(1 for p in eligible if p in found and found[p]["detected"]["checks"] <= k)
        within[str(k)] = {"pairs": len(eligible), "power": _share(hit, len(eligible))}
    return {
        "pairs": len(pairs), "weak_pairs": len(weak), "detected_weak": sum(p in found for p in weak),
        "power": _share(sum(p in found for p in weak), len(weak)),
        "false_detections": sum(p in found for p in strong),
        "false_detection_rate": _share(sum(p in found for p in strong), len(strong)),
        "false_detected": [{"annotator": p[0], "nuance": p[1], **found[p]["detected"]} for p in strong if p in found],
        "checks_per_pair": {"median": _quantile([checks.get(p, 0) for p in pairs], 0.5),
                            "min": min((checks.get(p, 0) for p in pairs), default=None)},
        "checks_at_detection": {"median": _quantile(at, 0.5), "p90": _quantile(at, 0.9),
                                "max": max(at, default=None), "values": sorted(at)},
        "power_within": within,
    }


def _true_skills(n: dict, a: int, crowd: Crowd, cfg: Config) -> tuple[float, float]:
    """A need's true skill before its first teaching item and after its last."""
    key = (a, n["nuance"])
    before = cfg.weak if key in crowd.weak else crowd.base[a]
    return before, crowd.skill[key]


def _measurement(needs: list[dict], crowd: Crowd, index_of: dict, cfg: Config, measure_checks: int) -> dict:
    """Per measured need and pooled: the report's change and interval vs the true change."""
    rows, acc = [], [0.0, 0, 0.0, 0]  # before: sum n*p, n; after: sum n*p, n
    hb = nb = ha = na = 0
    for n in needs:
        if n["taught_at"] is None or n["after"]["checks"] < measure_checks or n["change"]["interval"] is None:
            continue
        a = index_of[n["user_id"]]
        pb, pa = _true_skills(n, a, crowd, cfg)
        b, af = n["before"], n["after"]
        acc = [acc[0] + b["checks"] * pb, acc[1] + b["checks"], acc[2] + af["checks"] * pa, acc[3] + af["checks"]]
        hb, nb, ha, na = hb + b["right"], nb + b["checks"], ha + af["right"], na + af["checks"]
        lo, hi = n["change"]["interval"]
        rows.append({"annotator": a, "nuance": n["nuance"], "weak": (a, n["nuance"]) in crowd.weak,
                     "learned": (a, n["nuance"]) in crowd.learned, "before_checks": b["checks"],
                     "after_checks": af["checks"], "true_change": round(pa - pb, 4),
                     "measured_change": round(n["change"]["skill"], 4), "interval": [round(lo, 4), round(hi, 4)],
                     "covers": bool(lo <= pa - pb <= hi)})
    pooled = None if not rows else {"needs": len(rows), **_pooled(hb, nb, ha, na, acc[2] / acc[3] - acc[0] / acc[1])}
    cover = sum(r["covers"] for r in rows)
    return {"needs_measured": len(rows), "coverage": _share(cover, len(rows)), "pooled": pooled,
            "mean_true_change": None if not rows else round(float(np.mean([r["true_change"] for r in rows])), 4),
            "mean_measured_change": None if not rows else round(float(np.mean([r["measured_change"] for r in rows])),
                                                                 4),
            "needs": rows}


def _pooled(hb: int, nb: int, ha: int, na: int, true: float) -> dict | None:
    """A pooled before/after change with its 90 % interval against the true one."""
    from assay.quality.skills import difference_interval

    if nb == 0 or na == 0:
        return None
    d, lo, hi = (float(x) for x in difference_interval(hb, nb, ha, na))
    return {"before_checks": nb, "after_checks": na, "true_change": round(true, 4), "measured_change": round(d, 4),
            "interval": [round(lo, 4), round(hi, 4)], "covers": bool(lo <= true <= hi)}


def _after_detection(needs: list[dict], crowd: Crowd, index_of: dict, cfg: Config, raw: dict,
                     measure_checks: int) -> dict | None:
    """The report's ``change_since_detection`` (before = only the checks
    answered after the detection and before the first teaching item: free of
    the detection's selection) against the truth: per measured need (where it
    has such checks) and pooled. ``raw_mismatches``: needs whose count of such
    checks differs from the simulation's own count from the raw answers (0)."""
    hb = nb = ha = na = covered = judged = mismatches = 0
    tb = ta = 0.0
    for n in needs:
        if n["taught_at"] is None or n["after"]["checks"] < measure_checks or "since_detection" not in n:
            continue
        a = index_of[n["user_id"]]
        pb, pa = _true_skills(n, a, crowd, cfg)
        since, af = n["since_detection"], n["after"]
        own = [ok for t, ok in raw.get((n["user_id"], n["nuance"]), ()) if n["detected_at"] <= t < n["started_at"]]
        mismatches += (len(own), sum(own)) != (since["checks"], since["right"])
        hb, nb, tb = hb + since["right"], nb + since["checks"], tb + since["checks"] * pb
        ha, na, ta = ha + af["right"], na + af["checks"], ta + af["checks"] * pa
        if n["change_since_detection"]["interval"] is not None:
            lo, hi = n["change_since_detection"]["interval"]
            judged, covered = judged + 1, covered + (lo <= pa - pb <= hi)
    if not nb or not na:
        return None
    return {**_pooled(hb, nb, ha, na, ta / na - tb / nb), "needs_with_checks": judged,
            "coverage": _share(covered, judged), "raw_mismatches": mismatches}


def simulate_teach(cfg: Config | None = None, **kw) -> dict:
    """Run one simulation (settings as :class:`Config` fields); returns the result dict."""
    from assay.workspace import Workspace

    cfg = cfg or Config(**kw)
    cfg.check()
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    classes = list(string.ascii_lowercase[:cfg.classes])
    nuances = nuances_of(classes)
    crowd = _crowd(cfg, nuances, rng)
    engine_gold.seed(cfg.seed)  # the engine's own coin flips (gold claims, teaching served)
    try:
        with tempfile.TemporaryDirectory(prefix="assay-teach-sim-") as tmp:
            ws = Workspace(Path(tmp) / "ws")
            try:
                pid, true, _, _ = _build(ws, cfg, classes, rng)
                users = []
                for a in range(cfg.annotators):
                    u, _ = ws.add_user(f"sim{a}")
                    ws.add_member(pid, u["id"])
                    users.append(u)
                run = _run(ws, pid, users, crowd, cfg, true, classes, rng)
                report = ws.teaching_report(pid)
                with ws.db.read() as conn:
                    counts = {(r.annotator_id, r.nuance): r.n for r in conn.execute(_CHECKS, {"p": pid})}
                    raw: dict = {}
                    for r in conn.execute(_RAW, {"p": pid}):
                        raw.setdefault((r.annotator_id, r.nuance), []).append((r.created_at, r.answer == r.gold))
            finally:
                ws.close()
    finally:
        engine_gold.seed()  # from the OS again
    index_of = {u["id"]: a for a, u in enumerate(users)}
    checks = {(index_of[u], n): c for (u, n), c in counts.items()}
    pairs = [(a, n) for a in range(cfg.annotators) for n in nuances]
    needs = report["needs"]
    return {
        "settings": {**cfg.__dict__, "nuances": nuances, "min_checks": report["min_checks"],
                     "measure_checks": report["measure_checks"]},
        **run,
        "detection": _detection(needs, crowd, index_of, checks, pairs),
        "teaching": {"needs": len(needs), "items_served": int(sum(crowd.taught.values())),
                     "needs_taught": sum(n["taught_at"] is not None for n in needs),
                     "learned": len(crowd.learned)},
        "measurement": {**_measurement(needs, crowd, index_of, cfg, report["measure_checks"]),
                        "pooled_after_detection": _after_detection(needs, crowd, index_of, cfg, raw,
                                                                   report["measure_checks"]),
                        "report_project": report["project"]},  # the report's own pooled figures (all needs taught)
        "seconds": round(time.perf_counter() - started, 2),
    }


def summary_text(r: dict) -> str:
    """A few lines for people (the JSON has everything)."""
    d, t, m = r["detection"], r["teaching"], r["measurement"]
    s = r["settings"]
    lines = [
        f"{s['annotators']} annotators x {s['answers']} tasks, {len(s['nuances'])} nuances, weak share "
        f"{s['weak_share']}, skill {s['weak']} -> base ~{s['good']}, learning chance per teaching item "
        f"{s['teach_rate']}, seed {s['seed']}",
        f"detection: {d['detected_weak']}/{d['weak_pairs']} weak pairs found (power {d['power']}), "
        f"false detections {d['false_detections']} of {d['pairs'] - d['weak_pairs']} "
        f"({d['false_detection_rate']}); checks on the nuance at detection: median "
        f"{d['checks_at_detection']['median']}, p90 {d['checks_at_detection']['p90']}",
        "power within N checks: " + ", ".join(f"{k}: {v['power']} ({v['pairs']})"
                                             for k, v in d["power_within"].items()),
        f"teaching: {t['items_served']} items served, {t['needs_taught']} needs taught, {t['learned']} learned",
        f"measurement: {m['needs_measured']} needs measured, 90 % intervals cover the true change in "
        f"{m['coverage']} of them",
    ]
    if m["pooled"] is not None:
        p = m["pooled"]
        lines.append(f"pooled: measured {p['measured_change']:+.3f} [{p['interval'][0]:+.3f}, "
                     f"{p['interval'][1]:+.3f}] vs true {p['true_change']:+.3f}: "
                     f"{'covered' if p['covers'] else 'NOT covered'}")
    if m.get("pooled_after_detection") is not None:
        p = m["pooled_after_detection"]
        lines.append(f"pooled since detection (before = {p['before_checks']} checks after the detection): measured "
                     f"{p['measured_change']:+.3f} [{p['interval'][0]:+.3f}, {p['interval'][1]:+.3f}] vs true "
                     f"{p['true_change']:+.3f}: {'covered' if p['covers'] else 'NOT covered'}; per need covered in "
                     f"{p['coverage']} of {p['needs_with_checks']}")
    return "\n".join(lines)
