"""The arrival model of ``assay simulate --arrivals workers``.

Workers arrive in a seeded random order, each as often as they really
answered (:func:`arrival_order`). On arrival the real hand-out
(:meth:`Workspace.next_task` with ``restrict``: the policy's own choice —
the pool's order, or skill-aware routing — among the items this worker
really answered and has not answered yet that still want an answer) leases
one task, and the worker's real answer to that item is stored
(:meth:`Workspace.submit`, which runs adaptive redundancy as in
production). An arrival with nothing open for that worker passes. A worker
is never shown an item they did not answer in the data.

When every arrival has come, items that still want answers have used all
of theirs (every worker who answered them arrived as often as they
answered): they are closed, and sent to review like the item-driven
replay's exhausted items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import text

from assay.engine import ledger

_WANTING = text("SELECT id, item_id FROM tasks WHERE project_id = :p AND open_slots > 0 AND NOT is_gold")


def arrival_order(df: pd.DataFrame, rng: np.random.Generator) -> list:
    """Each worker of ``df`` (columns item, worker) as many times as they
    answered, in a seeded random order."""
    workers = df["worker"].to_numpy()
    return [workers[j] for j in rng.permutation(len(workers))]


class Arrivals:
    """Workers arrive, the hand-out picks among their real items (see the module notes).

    ``used`` (answers stored), ``passed`` (arrivals with nothing open for
    the worker), ``exhausted`` (items closed at the end still wanting
    answers) and ``mismatches`` (a task outside the worker's items was
    offered: never expected, the hand-out is restricted) count what happened.
    """

    def __init__(self, ws, project_id: int, df: pd.DataFrame, users: dict, task_name: dict,
                 rng: np.random.Generator) -> None:
        self.ws, self.pid, self.users = ws, project_id, users
        task_of = {name: tid for tid, name in task_name.items()}
        self.label = {(w, it): lab for it, w, lab in zip(df["item"], df["worker"], df["label"])}
        self.remaining: dict = {}  # worker -> task ids they answered in the data and not yet here
        self.item_of = dict(task_name)
        for it, w in zip(df["item"], df["worker"]):
            self.remaining.setdefault(w, set()).add(task_of[it])
        self.queue = arrival_order(df, rng)
        self.pos = 0
        self.used = self.passed = self.exhausted = self.mismatches = 0
        self._closed = False
        with ws.db.write() as conn:  # reproducible and comparable: the pool in task id order
            conn.execute(text("UPDATE tasks SET shuffle_key = 0 WHERE project_id = :p"), {"p": project_id})

    def step(self) -> bool | None:
        """One arrival: True when an answer was stored, False when the worker
        passed, None when every arrival has come (items still wanting
        answers are closed then)."""
        if self.pos >= len(self.queue):
            if not self._closed:
                self._close_exhausted()
            return None
        w = self.queue[self.pos]
        self.pos += 1
        mine = self.remaining[w]
        if not mine:
            self.passed += 1
            return False
        user = self.users[w]
        got = self.ws.next_task(self.pid, user, restrict=sorted(mine))
        if got is None:
            self.passed += 1
            return False
        if got["id"] not in mine:  # not expected: the hand-out was restricted to these
            self.mismatches += 1
            self.ws.skip(got["id"], user)
            return False
        mine.discard(got["id"])
        self.ws.submit(got["id"], user, self.label[(w, self.item_of[got["id"]])])
        self.used += 1
        return True

    def _close_exhausted(self) -> None:
        self._closed = True
        with self.ws.db.write() as conn:
            rows = conn.execute(_WANTING, {"p": self.pid}).all()
            for r in rows:
                ledger.withdraw(conn, r.id)
                ledger.set_consensus_status(conn, self.pid, r.item_id, "review", only_from="open")
        self.exhausted = len(rows)
