"""Needle mining in a live project: one round of search -> label -> re-rank
(:meth:`Mining.mine`). The confirmed positives are the seeds plus the items
whose final label is the wanted class; the rejected ones, the items with
another final label (:mod:`assay.engine.resolver`, the label's owner). Every
unlabeled item with a vector is scored by :mod:`assay.learn.mining` (max
similarity to the positives blended by rank with the in-loop regression)
and the best ``batch`` go to the front of the project's hand-out queue
(:meth:`~assay.workspace.slices.Slices.prioritize`, through the ledger).
People answer them as any task; the next round reads their answers, so
what they say sharpens the next search. ``assay simulate --mine`` replays
the same loop on real data.

Relies on the curation part for ``_curation_inputs``, on the slices part for
``prioritize``, on the core for ``db``.
"""

from __future__ import annotations

import numpy as np

from assay import kinds
from assay.engine import resolver as _resolver
from assay.errors import InvalidInput
from assay.learn import mining as _mining

#: candidate vectors scored at a time (bounded memory on a million items)
CHUNK = 65_536
#: items one round may send to the queue
MAX_BATCH = 1000


def _members(ids: np.ndarray, wanted) -> np.ndarray:
    wanted = np.asarray(sorted(wanted), np.int64)
    return wanted[np.isin(wanted, ids)]


class Mining:
    """One round of needle mining in a project."""

    def mine(self, project: int | str, label: str, *, seeds=(), batch: int = _mining.BATCH * 5,
             priority: float = 10.0, space: str | None = None) -> dict:
        """Find more items of class ``label`` from ``seeds`` (item ids of
        known examples) and the project's final labels so far; send the
        ``batch`` most promising unlabeled items to the front of the queue
        with ``priority``. Returns ``{label, positives, negatives,
        candidates, items: [{item_id, score}], tasks, priority}``; call again
        after people answered them."""
        p = self.get_project(project)
        if not kinds.of(p).aggregatable:
            raise InvalidInput("mining needs a project whose label is one class")
        classes = [c["name"] for c in p["schema"]["classes"]]
        if label not in classes:
            raise InvalidInput(f"{str(label)[:50]!r} is not a class of project {p['name']!r} "
                               f"({', '.join(classes)})")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
            raise InvalidInput(f"batch must be a whole number from 1 to {MAX_BATCH}")
        if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise InvalidInput("seeds are item ids (whole numbers)")
        _, ids, lookup, _ = self._curation_inputs(p["dataset_id"], space)
        missing = sorted(set(seeds) - set(_members(ids, seeds).tolist()))
        if missing:
            raise InvalidInput(f"seed item(s) {', '.join(map(str, missing[:5]))} are not items of the project's "
                               "dataset with a vector")
        finals = {f.item_id: f.label for f in _resolver.iter_labelled(self.db, p) if f.label is not None}
        pos = _members(ids, {i for i, lab in finals.items() if lab == label} | set(seeds))
        neg = _members(ids, {i for i, lab in finals.items() if lab != label} - set(seeds))
        if pos.size == 0:
            raise InvalidInput(f"no example of {label!r} yet: give seed items, or label one item {label!r}")
        known = np.union1d(pos, neg)
        cand = ids[~np.isin(ids, known)]
        cand = cand[~np.isin(cand, np.fromiter(finals, np.int64, len(finals)))]  # labelled, even without a vector
        if cand.size == 0:
            return {"label": label, "positives": int(pos.size), "negatives": int(neg.size), "candidates": 0,
                    "items": [], "tasks": 0, "priority": float(priority)}
        X_pos = lookup(pos)
        model = _mining.fit_model(X_pos, lookup(neg) if neg.size else np.empty((0, X_pos.shape[1])))
        sims, probs = [], []
        for start in range(0, cand.size, CHUNK):
            sim, prob = _mining.signals(lookup(cand[start:start + CHUNK]).astype(np.float32), X_pos, model)
            sims.append(sim)
            probs.append(prob)
        score = _mining.blend(np.concatenate(sims), None if model is None else np.concatenate(probs))
        top = np.argsort(-score, kind="stable")[:batch]
        chosen = [int(i) for i in cand[top]]
        sent = self.prioritize(p["id"], chosen, priority=priority)
        return {"label": label, "positives": int(pos.size), "negatives": int(neg.size),
                "candidates": int(cand.size), "items": [{"item_id": i, "score": float(s)}
                                                         for i, s in zip(chosen, score[top])],
                "tasks": sent["tasks"], "priority": sent["priority"]}
