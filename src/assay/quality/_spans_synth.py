"""A seeded synthetic crowd of span annotators, for tests and benchmarks.

Sentences of words ``w0 .. w999`` joined by single spaces; true entities of
1-3 tokens. Each worker has a recall (chance to mark a true entity), a
boundary error rate (the marked span is one token longer or shorter), a type
accuracy and a false-positive rate per token; a share of workers are
spammers who mark random tokens with random types.
"""

from __future__ import annotations

import random


def _truth_spans(rnd: random.Random, n_tok: int, n_types: int) -> list[tuple[int, int, int]]:
    """Non-overlapping true entities as (first token, last token, type)."""
    out, t = [], 0
    while t < n_tok:
        if rnd.random() < 0.12:
            ln = min(rnd.choice((1, 1, 2, 2, 3)), n_tok - t)
            out.append((t, t + ln - 1, rnd.randrange(n_types)))
            t += ln + 1
        else:
            t += 1
    return out


def _worker_spans(rnd, w, truth, n_tok, n_types):
    recall, boundary, type_acc, fp, spam = w
    marked = []
    if spam:
        return [(t, t, rnd.randrange(n_types)) for t in range(n_tok) if rnd.random() < 0.15]
    for f, la, x in truth:
        if rnd.random() >= recall:
            continue
        if rnd.random() < boundary:
            la = la + 1 if (rnd.random() < 0.5 and la + 1 < n_tok) else max(f, la - 1)
        if rnd.random() >= type_acc:
            x = rnd.choice([y for y in range(n_types) if y != x] or [x])
        marked.append((f, la, x))
    covered = {t for f, la, _ in truth for t in range(f, la + 2)}
    marked += [(t, t, rnd.randrange(n_types)) for t in range(n_tok) if t not in covered and rnd.random() < fp]
    marked.sort()
    keep, end = [], -1
    for f, la, x in marked:  # drop overlaps (a worker's answer has none)
        if f > end:
            keep.append((f, la, x))
            end = la
    return keep


def synthetic_span_crowd(n_items: int = 500, n_workers: int = 30, per_item: int = 4, *, n_types: int = 4,
                         spammer_share: float = 0.1, seed: int = 0, return_workers: bool = False):
    """Return ``(items, rows, truth)``: ``items`` item -> {"text", "tokens"},
    ``rows`` the answers as :func:`assay.quality.spans.aggregate_spans` takes
    them, ``truth`` item -> true spans ``[[start, end, label], ...]``; with
    ``return_workers`` also worker id -> (recall, boundary error, type
    accuracy, false-positive rate, spammer)."""
    rnd = random.Random(seed)
    labels = ["PER", "LOC", "ORG", "MISC", "DATE", "MONEY", "EVENT", "LAW"][:n_types]
    workers = []
    for _ in range(n_workers):
        spam = rnd.random() < spammer_share
        workers.append((rnd.uniform(0.35, 0.95), rnd.uniform(0.0, 0.3), rnd.uniform(0.7, 1.0),
                        rnd.uniform(0.0, 0.03), spam))
    items, rows, truth = {}, [], {}
    for i in range(n_items):
        n_tok = rnd.randint(5, 25)
        words = [f"w{rnd.randrange(1000)}" for _ in range(n_tok)]
        starts, pos = [], 0
        for wd in words:
            starts.append(pos)
            pos += len(wd) + 1
        toks = [[s, s + len(wd)] for s, wd in zip(starts, words)]
        iid = f"s{i}"
        items[iid] = {"text": " ".join(words), "tokens": toks}
        tr = _truth_spans(rnd, n_tok, n_types)
        truth[iid] = [[toks[f][0], toks[la][1], labels[x]] for f, la, x in tr]
        for w in rnd.sample(range(n_workers), min(per_item, n_workers)):
            sp = _worker_spans(rnd, workers[w], tr, n_tok, n_types)
            rows.append({"item": iid, "worker": f"w{w}", "spans": [[toks[f][0], toks[la][1], labels[x]]
                                                                   for f, la, x in sp]})
    if return_workers:
        return items, rows, truth, {f"w{w}": p for w, p in enumerate(workers)}
    return items, rows, truth
