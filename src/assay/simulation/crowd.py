"""Replay real crowd answers through the real hand-out and aggregation.

``simulate(answers.csv, truth.csv, policy=...)`` builds a throw-away
workspace (SQLite in a temporary folder): one item per distinct item of the
answers file, one annotator per distinct worker, one project with the
policy's settings. It then works the way the hand-out does — the task with
room that the hand-out would give out next (``priority DESC, id``) — and,
whenever that task wants another answer, draws one of the answers real
workers gave to that item (without replacement, seeded), leases the task to
that worker with :meth:`Workspace.next_task` and stores the answer with
:meth:`Workspace.submit` (which runs adaptive redundancy's incremental
posterior in the same transaction). A worker is never shown an item they did
not answer in the data. An item whose real answers run out while it still
wants more is closed (status ``review`` under the adaptive policy).

Both policies re-fit annotator skills (:meth:`Workspace.refit_quality`)
the way a server would in the background: whenever the answers collected
since the last re-fit reach ``refit_growth`` of all answers so far (and at
least ``refit_min``). At the end the project's final labels — what
``assay export`` would write, from :mod:`assay.engine.resolver` — are
compared with the truth (``accuracy``; ``items_resolved``: exported with a
confidence of at least the target; ``label_sources``: how many came from
where). ``accuracy_offline`` is every used answer aggregated afresh with
``method`` (default ``auto``), a figure no export holds.

The adaptive policy's target defaults to :data:`DEFAULT_TARGET` (0.995): an
item stops once its label is right, or settled (the answers still allowed
would not change it), with that probability — see
:mod:`assay.engine.redundancy`.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from assay.errors import InvalidInput
from assay.engine import ledger
from assay.engine.ledger import POOL_ORDER
from assay.simulation.arrivals import Arrivals

POLICIES = ("fixed", "adaptive", "routed")
#: who drives the replay: ``items`` (the task the hand-out gives out next draws
#: one of its item's real answers: the default of fixed and adaptive, and of
#: every figure measured before the arrival model) or ``workers`` (the arrival
#: model, :mod:`assay.simulation.arrivals`: the default of routed, which
#: needs it: routing chooses the item for the worker who arrives)
ARRIVALS = ("items", "workers")
#: adaptive: stop once the label is right, or settled (the answers still
#: allowed would change it), with probability >= this. 1 - target is the share
#: of items allowed to end with another label than every allowed answer would
#: give them: 0.5 % -> at most about half a point of accuracy given up.
DEFAULT_TARGET = 0.995
REFIT_MIN = 200
REFIT_GROWTH = 0.25

# the task the hand-out gives out next: its own order (assay.engine.ledger.POOL_ORDER)
_NEXT_OPEN = text(
    f"SELECT t.id, t.item_id FROM tasks t WHERE t.project_id = :p AND t.open_slots > 0 ORDER BY {POOL_ORDER} LIMIT 1"
)
# A replay hands items out in file order, not shuffled (so that a run is
# reproducible and comparable across versions): there is no gold to hide.
_UNSHUFFLE = text("UPDATE tasks SET shuffle_key = 0 WHERE project_id = :p")
_TASK_NAMES = text("SELECT t.id, i.text AS name FROM tasks t JOIN items i ON i.id = t.item_id WHERE t.project_id = :p")
_ANSWERS = text(
    "SELECT i.text AS item, u.username AS worker, a.label AS label FROM answers a "
    "JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.annotator_id "
    "WHERE a.project_id = :p ORDER BY a.id")
_REVIEW = text("SELECT count(*) FROM item_consensus WHERE project_id = :p AND status = 'review'")
_SETTLED = text(
    "SELECT count(*) FROM item_consensus WHERE project_id = :p AND status = 'resolved' AND confidence < :t")


def _read(path, cols) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{p} does not exist")
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidInput(f"{p.name} lacks column(s) {', '.join(missing)} (header needs {','.join(cols)})")
    df = df[list(cols)]
    if df.empty:
        raise InvalidInput(f"{p.name} has no rows")
    if (df == "").any().any():
        raise InvalidInput(f"{p.name} has empty cells")
    return df


def _sort_classes(values) -> list[str]:
    vals = sorted(set(values))
    try:
        return sorted(vals, key=float)
    except ValueError:
        return vals


def shuffled_pools(df: pd.DataFrame, rng: np.random.Generator) -> dict[str, list]:
    """Each item's real ``(worker, label)`` answers in a seeded random order
    (popped from the end: drawn without replacement)."""
    pools: dict[str, list] = {}
    for it, w, lab in zip(df["item"], df["worker"], df["label"]):
        pools.setdefault(it, []).append((w, lab))
    for it in pools:
        pool = pools[it]
        pools[it] = [pool[j] for j in rng.permutation(len(pool))]
    return pools


def add_workers(ws, project_id: int, workers) -> dict:
    """One annotator per real worker, all members of the project."""
    users = {}
    for w in workers:
        u, _ = ws.add_user(f"w:{w}")
        users[w] = u
    with ws.db.write() as conn:
        conn.execute(text("INSERT INTO members (project_id, user_id, created_at) VALUES (:p, :u, 0)"),
                     [{"p": project_id, "u": u["id"]} for u in users.values()])
    return users


class Replay:
    """Real answers through the real hand-out: the task the hand-out gives out
    next gets one of the answers its item really got, from the worker who gave
    it (leased with ``Workspace.next_task``, stored with ``Workspace.submit``).

    ``task_name`` maps task id -> the item's name in the answers file.
    ``used``, ``exhausted`` (items whose answers ran out while they wanted
    more; closed, and sent to review with ``review_exhausted``) and
    ``mismatches`` (``next_task`` offered another task: not expected) count
    what happened.
    """

    def __init__(self, ws, project_id: int, pools: dict, users: dict, task_name: dict, *,
                 review_exhausted: bool = False) -> None:
        self.ws, self.pid, self.pools, self.users, self.task_name = ws, project_id, pools, users, task_name
        self.review_exhausted = review_exhausted
        self.used = self.exhausted = self.mismatches = 0
        with ws.db.write() as conn:
            conn.execute(_UNSHUFFLE, {"p": project_id})

    def step(self) -> bool | None:
        """One hand-out: None when no task has room, True when an answer was
        stored, False otherwise (the item's answers ran out)."""
        ws, pid = self.ws, self.pid
        with ws.db.fast_read() as conn:
            row = conn.execute(_NEXT_OPEN, {"p": pid}).first()
        if row is None:
            return None
        pool = self.pools[self.task_name[row.id]]
        if not pool:  # no real answer left for it: stop asking
            self.exhausted += 1
            with ws.db.write() as conn:
                ledger.withdraw(conn, row.id)
                if self.review_exhausted:
                    ledger.set_consensus_status(conn, pid, row.item_id, "review", only_from="open")
            return False
        w, lab = pool.pop()
        user = self.users[w]
        got = ws.next_task(pid, user)
        while got is not None and got["id"] != row.id:  # not expected: hand-out order is ours
            self.mismatches += 1
            ws.skip(got["id"], user)
            got = ws.next_task(pid, user)
        if got is None:
            return False
        ws.submit(got["id"], user, lab)
        self.used += 1
        return True


@dataclass
class Crowd:
    """An answers file, read and checked (one answer per item and worker, as
    the database keeps them), with its truth file if any."""

    df: pd.DataFrame  # item, worker, label
    duplicates: int  # (item, worker) rows dropped: the last one counts
    truth: dict | None  # item -> true label
    classes: list[str]
    per_item: pd.Series  # answers per item, in the file's order


def read_crowd(answers_path, truth_path=None) -> Crowd:
    df = _read(answers_path, ("item", "worker", "label"))
    n_rows = len(df)
    df = df.drop_duplicates(["item", "worker"], keep="last")  # one worker, one vote (as the database)
    truth = None
    if truth_path is not None:
        t = _read(truth_path, ("item", "label"))
        truth = dict(zip(t["item"], t["label"]))
    classes = _sort_classes(df["label"])
    if len(classes) < 2:
        classes = classes + ["__other__"]  # a project needs two classes; nobody answers this one
    return Crowd(df, n_rows - len(df), truth, classes, df.groupby("item", sort=False).size())


@dataclass
class Outcome:
    """What a replay left in its workspace, read before the workspace goes."""

    used: int
    exhausted: int
    mismatches: int
    refits: int
    finals: dict  # item name -> the exported label (an assay.engine.resolver.FinalLabel)
    answers: list  # rows (item, worker, label) of every stored answer, in order
    review: int  # items in the reviewer queue
    settled: int  # items resolved below the target (settled)


def _check_choices(policy: str, method: str, criterion: str | None) -> None:
    from assay.quality import METHODS
    from assay.quality.online import STOP_CRITERIA

    if policy not in POLICIES:
        raise InvalidInput(f"unknown policy {policy!r}: use fixed, adaptive or routed")
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if criterion is not None and criterion not in STOP_CRITERIA:
        raise InvalidInput(f"unknown criterion {criterion!r}; choose one of: {', '.join(STOP_CRITERIA)}")


def _policy_settings(policy: str, per_item: pd.Series, overlap: int | None, target: float,
                     max_answers: int | None) -> dict:
    """The project's settings for the policy (defaults from the data's answers per item)."""
    if policy == "fixed":
        k = overlap if overlap is not None else int(per_item.max())
        if not 1 <= k <= 100:
            raise InvalidInput("--overlap must be from 1 to 100")
        return {"overlap": k}
    typical = int(math.ceil(per_item.median()))
    k = overlap if overlap is not None else 1
    m = max_answers if max_answers is not None else max(typical, k)
    out = {"overlap": k, "target_confidence": target, "max_answers": min(m, 100)}
    return {**out, "routing": "skill"} if policy == "routed" else out


def _new_project(ws, order, crowd: Crowd, settings: dict) -> tuple[int, dict, dict]:
    """The replay's project, items in ``order`` (task ids follow it), one
    member per worker: ``(project id, users by worker, item name by task id)``."""
    ds = ws.create_dataset("sim")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"item {x}" for x in order], "item": order}))
    later = {k: settings[k] for k in ("routing",) if k in settings}  # set on the project once made
    made = {k: v for k, v in settings.items() if k not in later}
    pid = ws.create_project("sim", ds["id"], crowd.classes, lease_seconds=3600, **made)["id"]
    if later:
        ws.update_project(pid, **later)
    users = add_workers(ws, pid, crowd.df["worker"].unique())
    with ws.db.read() as conn:
        name_of = {r.id: r.name for r in conn.execute(_TASK_NAMES, {"p": pid})}
    return pid, users, {tid: nm[len("item "):] for tid, nm in name_of.items()}


def _replay(ws, pid: int, replay: Replay, refit_min: int, refit_growth: float, criterion: str | None) -> int:
    """Hand out until no task has room, re-fitting as a server would; returns the re-fits."""
    from assay.engine.redundancy import refit

    refits = last_refit = 0
    while (answered := replay.step()) is not None:
        if not answered:
            continue
        used = replay.used
        if used - last_refit >= max(refit_min, refit_growth * used):
            if criterion is None:
                ws.refit_quality(pid)
            else:  # what ws.refit_quality does, with the table's criterion
                refit(ws.db, ws.get_project(pid), criterion=criterion)
            refits += 1
            last_refit = used
    return refits


def _outcome(ws, pid: int, replay: Replay, refits: int, name_of: dict, target: float, export_path) -> Outcome:
    from assay.engine.resolver import iter_final

    # the labels a user exports (the one resolver), by item name
    finals = {name_of[f.task_id]: f for f in iter_final(ws.db, ws.get_project(pid))}
    if export_path is not None:
        ws.export(pid, export_path)
    with ws.db.read() as conn:
        rows = conn.execute(_ANSWERS, {"p": pid}).all()
        review = conn.execute(_REVIEW, {"p": pid}).scalar_one()
        settled = conn.execute(_SETTLED, {"p": pid, "t": target}).scalar_one()
    return Outcome(replay.used, replay.exhausted, replay.mismatches, refits, finals, rows, review, settled)


def _share(hits: list) -> float | None:
    return round(float(np.mean(hits)), 6) if hits else None


def _scores(crowd: Crowd, run: Outcome, method: str, target: float) -> dict:
    """Accuracy of the exported labels, of the resolved ones and of every
    used answer aggregated afresh with ``method``; where the labels came from."""
    import orjson

    from assay.quality import aggregate

    rows, truth = run.answers, crowd.truth or {}
    a_labels = [orjson.loads(r.label) if isinstance(r.label, (str, bytes)) else r.label for r in rows]
    res = aggregate([r.item[len("item "):] for r in rows], [r.worker for r in rows], a_labels, method=method,
                    classes=crowd.classes)
    offline = dict(zip(res.item_ids, res.labels))
    pred = {x: f.label for x, f in run.finals.items() if f.label is not None}
    correct = [pred[i] == truth[i] for i in pred if i in truth]
    resolved = [i for i in pred if (run.finals[i].confidence or 0.0) >= target]
    sources = Counter(f.source or "none" for f in run.finals.values())
    return {
        "method_chosen": getattr(res.model, "method_", method),
        "items_with_truth": len(correct),
        "accuracy": _share(correct),
        "items_resolved": len(resolved),
        "accuracy_resolved": _share([pred[i] == truth[i] for i in resolved if i in truth]),
        "accuracy_offline": _share([offline[i] == truth[i] for i in offline if i in truth]),
        "label_sources": dict(sorted(sources.items())),
    }


def _arrivals_of(policy: str, arrivals: str | None) -> str:
    if arrivals is None:
        return "workers" if policy == "routed" else "items"
    if arrivals not in ARRIVALS:
        raise InvalidInput(f"unknown arrivals {arrivals!r}: use items or workers")
    if policy == "routed" and arrivals == "items":
        raise InvalidInput("the routed policy needs --arrivals workers: routing picks the item for the worker "
                           "who arrives, and the item-driven replay picks the item first")
    return arrivals


def _not_in_data(crowd: Crowd, run: Outcome) -> int:
    """Stored answers whose (item, worker) pair is not in the answers file (0: nobody saw an item they did
    not really answer)."""
    real = set(zip(crowd.df["item"], crowd.df["worker"]))
    return sum((r.item[len("item "):], r.worker[len("w:"):]) not in real for r in run.answers)


def simulate(answers_path, truth_path=None, *, policy: str = "adaptive", overlap: int | None = None,
             target: float = DEFAULT_TARGET, max_answers: int | None = None, method: str = "auto", seed: int = 0,
             refit_min: int = REFIT_MIN, refit_growth: float = REFIT_GROWTH, criterion: str | None = None,
             export_path=None, arrivals: str | None = None) -> dict:
    """Run one replay; returns the result dict (see the module docstring and docs/quality.md).

    ``export_path``: also write the project's export there (``Workspace.export``,
    format from the suffix) — the file a user would get, each record's
    ``meta.item`` the answers file's item id.

    ``criterion`` (adaptive only): what the re-fits' settle table bounds,
    ``"flip"`` or ``"gain"`` (:func:`assay.quality.online.settle_margins`);
    None: :data:`assay.engine.redundancy.STOP_CRITERION`.

    ``arrivals`` (:data:`ARRIVALS`): ``"items"`` (the default of fixed and
    adaptive) or ``"workers"`` (the arrival model; the default of routed,
    which needs it). Compare policies side by side with the same arrivals.
    """
    from assay.engine.redundancy import STOP_CRITERION
    from assay.workspace import Workspace

    _check_choices(policy, method, criterion)
    arrivals = _arrivals_of(policy, arrivals)
    started = time.perf_counter()
    crowd = read_crowd(answers_path, truth_path)
    settings = _policy_settings(policy, crowd.per_item, overlap, target, max_answers)
    rng = np.random.default_rng(seed)
    item_names = crowd.per_item.index.to_numpy()
    order = item_names[rng.permutation(len(item_names))]  # processing (= task id) order
    pools = shuffled_pools(crowd.df, rng)
    with tempfile.TemporaryDirectory(prefix="assay-sim-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        try:
            pid, users, name_of = _new_project(ws, order, crowd, settings)
            if arrivals == "workers":
                ws.routing_rng = np.random.default_rng([seed, 1])  # the routed random share, seeded
                replay = Arrivals(ws, pid, crowd.df, users, name_of, rng)
            else:
                replay = Replay(ws, pid, pools, users, name_of, review_exhausted=True)
            refits = _replay(ws, pid, replay, refit_min, refit_growth, criterion)
            run = _outcome(ws, pid, replay, refits, name_of, target, export_path)
        finally:
            ws.close()
    scores = _scores(crowd, run, method, target)
    n, used = len(crowd.df), run.used
    return {
        "policy": policy,
        "arrivals": arrivals,
        "method": method,
        "method_chosen": scores.pop("method_chosen"),
        "seed": seed,
        "settings": (settings if policy != "adaptive" or criterion in (None, STOP_CRITERION)
                     else {**settings, "criterion": criterion}),
        "items": int(len(item_names)),
        "answers_available": int(n),
        "answers_duplicate_rows_dropped": int(crowd.duplicates),
        "answers_used": int(used),
        "answers_used_share": round(used / n, 4),
        "answers_per_item": round(used / len(item_names), 4),
        **scores,
        "items_review": int(run.review),
        "items_settled": int(run.settled),
        "items_exhausted": run.exhausted,
        "refits": run.refits,
        "handout_mismatches": run.mismatches,
        **({"arrivals_total": len(replay.queue), "arrivals_passed": replay.passed}
           if arrivals == "workers" else {}),
        "answers_not_in_data": _not_in_data(crowd, run),
        "seconds": round(time.perf_counter() - started, 2),
    }
