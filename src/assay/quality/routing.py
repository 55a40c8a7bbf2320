"""Skill-aware routing: which open item should this annotator answer next?

When an annotator asks for work, every open item they may answer (a window
of them, in pool order) is scored by what their answer is expected to add,
given what is known now: the item's online posterior
(:mod:`assay.quality.online`), its answers so far, and the annotator's
confusion matrix (rows = true class, columns = answer; the last re-fit's,
or the crowd's default for someone not yet measured).

The rule (:func:`route`), binary projects:

    score = answers_saved = E[answers the item still needs]
                            - 1 - E[answers it still needs after this answer]

"answers it still needs" is the expected cost of closing the item under
adaptive redundancy's own stop rule (posterior >= target, the
``max_answers`` cap, the re-fit's settle table), every further answer from
an annotator drawn the way the crowd's answers are (the settle table's
model), plus ``error_cost`` answers per expected wrong label when it
closes, with ``error_cost = 1 / (1 - target)``: the price at which the stop
rule itself asks for one more answer (a perfect answer is worth asking for
while the chance of error exceeds 1 - target). :func:`close_table` tabulates
that cost once per re-fit (backward induction over answers so far, on a
grid of the log-odds margin); a pick is a table look-up per candidate.
The candidate with the largest score wins (:func:`pick`), except that with
probability ``random_share`` a uniformly random candidate is handed out.

Why it should hold on crowds it was not tuned on: it has no parameter of
its own beyond the random share. Everything else is the project's stop
rule and the crowd as the last re-fit measured it. It sends an annotator
where their answer replaces the most answers the crowd would otherwise
have to give: a strong annotator to an item their answer can close; a weak
one to where a crowd answer would not have done better (the last slots of
items that will reach the cap anyway, items already all but sure), so that
the answers a weak annotator must be given (nobody is starved) replace as
many crowd answers as they can. The error term keeps the contested items
for annotators whose answers can settle them. More than two classes: the
same on the item's top class against the rest (:func:`top_vs_rest`, no
settle table). Before the first re-fit (no close table) the score is the
expected information gain :func:`expected_gain`.

``expected_gain`` is the mutual information between the annotator's
answer ``A`` and the item's true class ``T`` (in nats)::

    I(A; T) = H(A) - H(A | T)
    P(A = a) = sum_k p_k C[k, a],   H(A | T) = sum_k p_k H(C[k, :])

0 for an annotator whose answer does not depend on the truth (a spammer:
every row of ``C`` the same) and for an item whose class is certain; the
item's whole entropy ``H(p)`` for a perfect annotator; never more.

Use (measured with ``benchmarks/quality/bench_routing.py``, docs/quality.md
"Skill-aware routing"): build the close table at every re-fit, with the
skills learned from every answered item (on items with two or more answers
only, a re-fit under routing can go degenerate: those items are a selected
few); score at least 64 candidates per pick (16 lose the saving).

No one is starved: the rule ranks candidates, it never refuses one (an
annotator gets an item whenever one of theirs is open). Gold stays
indistinguishable as long as the caller scores a gold task from its
answers-only posterior like any other task (never from its known label).

Pure numpy over arrays; no storage.
"""

from __future__ import annotations

import numpy as np

TINY = 1e-300
#: floor for probabilities before a log, as in :mod:`assay.quality.online`
LOG_FLOOR = 1e-12
#: the share of picks that are uniformly random (the default of :func:`route`)
RANDOM_SHARE = 0.1


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis`` (0 log 0 = 0)."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(np.maximum(p, TINY)), 0.0)
    return -t.sum(axis=axis)


def expected_gain(posteriors: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """Expected information gain (nats) of one answer by an annotator with
    ``confusion`` (K, K; rows = true class, columns = answer) on each of
    ``n`` items with posteriors ``posteriors`` (n, K; rows sum to 1).

    Returns (n,): ``I(A; T)`` per item, the mutual information between
    the answer and the item's true class (see the module docstring).
    ``confusion`` may also be (n, K, K): one matrix per item.
    """
    p = np.asarray(posteriors, dtype=float)
    c = np.asarray(confusion, dtype=float)
    if p.ndim == 1:
        p = p[None, :]
    k = p.shape[1]
    if c.shape[-2:] != (k, k):
        raise ValueError(f"confusion must be ({k}, {k}) for {k} classes, got {c.shape}")
    c = c / np.maximum(c.sum(axis=-1, keepdims=True), TINY)
    if c.ndim == 2:
        answer = p @ c  # (n, K): P(A = a)
        h_rows = _entropy(c, axis=1)  # (K,)
        h_cond = p @ h_rows
    else:
        answer = np.einsum("nk,nka->na", p, c)
        h_cond = (p * _entropy(c, axis=2)).sum(axis=1)
    gain = _entropy(answer, axis=1) - h_cond
    return np.maximum(gain, 0.0)


def pick(gains: np.ndarray, rng: np.random.Generator, random_share: float = 0.0) -> int:
    """The index of the item to hand out among ``len(gains)`` candidates.

    With probability ``random_share`` a uniformly random candidate (so that
    every annotator keeps meeting every kind of item and their skills keep
    being learned, and the pick cannot be steered); otherwise the candidate
    with the largest gain (the first one, in the candidates' order, on ties:
    callers list candidates in pool order, so ties keep the pool's order).
    """
    g = np.asarray(gains, dtype=float)
    if g.ndim != 1 or g.size == 0:
        raise ValueError("pick needs a non-empty 1-d array of gains")
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")
    if random_share > 0.0 and rng.random() < random_share:
        return int(rng.integers(g.size))
    g = np.where(np.isnan(g), -np.inf, g)
    return int(np.argmax(g))



# ------------------------------------------------------------ answers to close
#
# Binary projects: how many more answers an item still needs before the
# adaptive stop rule closes it, if every further answer comes from an
# annotator drawn the way the crowd's answers are (the settle table's own
# model of who answers next). The state is (answers so far n, margin
# L = log_post[1] - log_post[0]); the table is built once per re-fit by
# backward induction over n on a grid of L.

#: grid step (nats) and half-width of the margin grid
CLOSE_STEP = 0.05
CLOSE_CLIP = 16.0


class CloseTable:
    """``expected[n, g]``: expected further answers before an item with ``n``
    answers and margin ``grid[g]`` is closed (0 where it is closed)."""

    def __init__(self, grid: np.ndarray, expected: np.ndarray):
        self.grid, self.expected = grid, expected

    def as_dict(self) -> dict:
        """JSON-ready form (to store with the re-fit's model)."""
        return {"step": CLOSE_STEP, "clip": CLOSE_CLIP, "expected": np.round(self.expected, 6).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> CloseTable:
        if float(d["step"]) != CLOSE_STEP or float(d["clip"]) != CLOSE_CLIP:
            raise ValueError("close table stored with another grid")
        expected = np.asarray(d["expected"], dtype=float)
        return cls(np.arange(-CLOSE_CLIP, CLOSE_CLIP + CLOSE_STEP / 2, CLOSE_STEP), expected)

    def lookup(self, n: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Expected answers to close, linear in the margin between grid points."""
        n = np.minimum(np.asarray(n, dtype=np.intp), self.expected.shape[0] - 1)
        x = (np.clip(margin, -CLOSE_CLIP, CLOSE_CLIP) + CLOSE_CLIP) / CLOSE_STEP
        lo = np.minimum(np.floor(x).astype(np.intp), self.grid.size - 2)
        f = x - lo
        return (1.0 - f) * self.expected[n, lo] + f * self.expected[n, lo + 1]


def _closed(grid: np.ndarray, n: int, target: float, max_answers: int, settle) -> np.ndarray:
    """Whether the stop rule closes an item with ``n`` answers at each margin."""
    conf = 1.0 / (1.0 + np.exp(-np.abs(grid)))
    out = (conf >= target) | (n >= max_answers)
    left = max_answers - n
    if settle and 1 <= left <= len(settle):
        for best, rival in ((1, 0), (0, 1)):
            need = settle[left - 1][best][rival]
            if need is not None:
                side = grid > 0 if best == 1 else grid <= 0  # argmax: the lowest code on ties
                out |= side & (np.abs(grid) >= need)
    return out


def close_table(confusions: np.ndarray, weights: np.ndarray, target: float, max_answers: int,
                settle=None, error_cost: float | None = None) -> CloseTable:
    """The expected answers an item still needs under the adaptive stop rule
    (posterior >= ``target``, ``max_answers`` cap, ``settle`` table of
    :func:`assay.quality.online.settle_margins` if any), every further
    answer from annotator w with probability proportional to ``weights[w]``
    (``confusions`` (W, K, K)). With more than two classes the table is
    for the top class against the rest (:func:`top_vs_rest`).

    ``error_cost``: answers charged per expected wrong label when the item
    closes (None: ``1 / (1 - target)``, see the module docstring; 0: count
    answers only)."""
    if error_cost is None:
        error_cost = 1.0 / max(1.0 - target, LOG_FLOOR)
    c = top_vs_rest(confusions)
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    grid = np.arange(-CLOSE_CLIP, CLOSE_CLIP + CLOSE_STEP / 2, CLOSE_STEP)
    logc = np.log(np.maximum(c, LOG_FLOOR))
    # One answer moves the margin by inc = log C[w,1,l] - log C[w,0,l]; from a
    # grid point that lands s = inc / step points away, between two points
    # (linear weights). So E[left after one answer | truth t] is one
    # correlation of the next row with a kernel K_t (offsets -> weight), summed
    # over every (annotator, answer) once: O(grid x offsets) per row.
    inc = (logc[:, 1, :] - logc[:, 0, :]).ravel() / CLOSE_STEP  # (W*2,) in grid steps
    lo = np.floor(inc).astype(np.intp)
    frac = inc - lo
    span = int(np.abs(lo).max()) + 2
    kernels = np.zeros((2, 2 * span + 1))
    for t in range(2):
        mass = (w[:, None] * c[:, t, :]).ravel()  # P(annotator w, answer l | truth t)
        np.add.at(kernels[t], lo + span, mass * (1.0 - frac))
        np.add.at(kernels[t], lo + 1 + span, mass * frac)
    p1 = 1.0 / (1.0 + np.exp(-grid))  # P(truth = 1 | margin)
    # the cost of closing: error_cost answers per expected wrong label
    stop_cost = float(error_cost) * (1.0 - np.maximum(p1, 1.0 - p1))
    expected = np.tile(stop_cost, (max_answers + 1, 1))
    table = CloseTable(grid, expected)
    for n in range(max_answers - 1, -1, -1):
        padded = np.pad(expected[n + 1], span, mode="edge")  # beyond the grid: its end value
        after = [np.correlate(padded, kernels[t], mode="valid") for t in range(2)]
        value = 1.0 + (1.0 - p1) * after[0] + p1 * after[1]
        expected[n] = np.where(_closed(grid, n, target, max_answers, settle), stop_cost, value)
    return table


def top_vs_rest(confusion: np.ndarray) -> np.ndarray:
    """(..., K, K) confusion matrices -> (..., 2, 2): unchanged for K = 2;
    for K > 2 the one-coin channel "is the item's top class / is it not"
    (row 0 = truth is another class, row 1 = truth is the top class;
    column 1 = the answer names the top class): right with the annotator's
    mean accuracy ``a`` over the classes, naming the top class by mistake
    with ``(1 - a) / (K - 1)``."""
    c = np.asarray(confusion, dtype=float)
    k = c.shape[-1]
    if c.shape[-2] != k:
        raise ValueError(f"confusion matrices must be square, got {c.shape}")
    if k == 2:
        return c
    a = np.clip(np.diagonal(c, axis1=-2, axis2=-1).mean(axis=-1), LOG_FLOOR, 1.0 - LOG_FLOOR)
    q = (1.0 - a) / (k - 1)
    return np.stack([np.stack([1.0 - q, q], axis=-1), np.stack([1.0 - a, a], axis=-1)], axis=-2)


def answers_saved(log_post: np.ndarray, answers: np.ndarray, confusion: np.ndarray, table: CloseTable) -> np.ndarray:
    """For each item: the crowd answers this annotator's answer is expected
    to save, minus the one it costs: ``E[left now] - 1 - E[left after their
    answer]`` (left: :class:`CloseTable`). More than two classes: the top
    class against the rest (:func:`top_vs_rest`)."""
    lp = np.asarray(log_post, dtype=float)
    n = np.asarray(answers, dtype=np.intp)
    c = top_vs_rest(confusion)
    if lp.shape[1] == 2:
        margin = lp[:, 1] - lp[:, 0]
    else:
        p = _posteriors(lp).max(axis=1)
        margin = np.log(np.maximum(p, LOG_FLOOR)) - np.log(np.maximum(1.0 - p, LOG_FLOOR))
    logc = np.log(np.maximum(c, LOG_FLOOR))
    p1 = 1.0 / (1.0 + np.exp(-margin))
    after = np.zeros(len(lp))
    for lab in range(2):
        p_lab = (1.0 - p1) * c[0, lab] + p1 * c[1, lab]
        after += p_lab * table.lookup(n + 1, margin + logc[1, lab] - logc[0, lab])
    return table.lookup(n, margin) - 1.0 - after


def _posteriors(log_post: np.ndarray) -> np.ndarray:
    lp = np.asarray(log_post, dtype=float)
    p = np.exp(lp - lp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def route(log_post: np.ndarray, confusion: np.ndarray, answers: np.ndarray, rng: np.random.Generator, *,
          random_share: float = RANDOM_SHARE, table: CloseTable | None = None, rule: str = "saved") -> int:
    """The candidate to hand out, as an index into the candidates.

    ``log_post`` (n, K): the candidates' log posteriors (unnormalised);
    ``confusion`` (K, K): the annotator's; ``answers`` (n,): answers each
    candidate has; ``table``: the project's :func:`close_table` (binary
    projects, after a re-fit). ``rule="saved"`` (the default) scores by
    :func:`answers_saved` where there is a table, else by
    :func:`expected_gain`; ``rule="gain"`` always by the gain.
    """
    lp = np.asarray(log_post, dtype=float)
    if lp.ndim != 2 or lp.shape[0] == 0:
        raise ValueError("route needs a non-empty (n, K) array of log posteriors")
    if rule not in ("saved", "gain"):
        raise ValueError(f"unknown rule {rule!r}")
    if rule == "saved" and table is not None:
        score = answers_saved(lp, answers, confusion, table)
    else:
        score = expected_gain(_posteriors(lp), confusion)
    return pick(score, rng, random_share)

