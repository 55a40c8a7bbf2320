"""Skill-aware routing in the hand-out (the project setting ``routing = 'skill'``).

When an annotator asks for work in a routed project, :func:`candidates`
reads the next :data:`WINDOW` tasks they may get, in the pool's order (the
claim's own conditions, :data:`assay.engine.ledger.FOR_USER`) together with
their items' current posteriors (``item_consensus.log_post``: adaptive
redundancy keeps them current, every re-fit rewrites them; an item without
one has the re-fit's class prior) and answer counts. :func:`score` rates
each under the annotator's confusion matrix from the last re-fit (the
crowd's default when they have none): in a routed adaptive project, whose
re-fit stores a close table with the model, by the answers their answer is
expected to save (:func:`assay.quality.routing.answers_saved`, the rule of
:func:`assay.quality.routing.route`); before the first re-fit, or without
adaptive redundancy, by the information it is expected to add
(:func:`assay.quality.routing.expected_gain`, computed by :func:`gain` in
fewer numpy calls, equal to it). :func:`choose` picks the best (the rule of
:func:`assay.quality.routing.pick`: a share ``routing_random_share`` of
picks is a random candidate, so that skills keep being learned on every
kind of item). Only candidates of the window's highest priority compete:
priority still goes first. :func:`claim` then
takes that task by id in one atomic statement
(:data:`~assay.engine.ledger.CLAIM_ID_SQLITE` / ``CLAIM_ID_PG``, which checks
room and the user's conditions again); when it is gone (PostgreSQL: another
claim holds or took it) the caller falls back to the plain claim.

Constraints kept: with the random share every candidate can be picked, and
no item waits forever behind better ones (the window moves as the head is
taken; the cached lists below move through the whole pool); whoever has any task left gets
one (the fallback is the plain claim); gold stays indistinguishable
(:func:`assay.engine.handout.next_task` runs the window and the scoring before
it decides on gold, so both ways run the same statements).

The hand-out (unrestricted) uses :func:`cached_pick`: per (project,
annotator), in this process, a list of :data:`LIST_WINDOW` candidates read
and scored once, reused for :data:`LIST_ASKS` asks or :data:`LIST_SECONDS`
seconds (whichever ends first; at most :data:`LIST_MAX` lists, least
recently used dropped). A new list starts in the pool's order where the
last list read (anyone's) ended (:func:`_list_window`), so the lists of
annotators working at the same time hold different tasks: read from the
pool's head, every list held the same few, and with 50 annotators 97 % of
the picks had been taken by someone else before they were claimed (the
routed hand-out was then mostly the plain claim). A pass that reaches the
pool's end starts again at its head, and so does one when the pool's top
priority rises above the frontier's: priority goes first, and a task no list
picked waits at most one pass (the plain claim, the fallback, takes the
head meanwhile). Each ask takes the best remaining candidate (or, with the
random share, a random remaining one) and claims it by id, trying up to
:data:`LIST_TRIES` of the list before the plain claim: a candidate someone
else took meanwhile is only a failed claim (the claim re-checks room and the
user's conditions), so several processes, each with its own lists, stay
correct. Posteriors and skills may be up to :data:`LIST_SECONDS` old (a
re-fit is seen at the next read). Gold stays indistinguishable: the gold
decision comes after the pick, whichever way it was made, and uses the pick
as the "upcoming" task. One ask in :data:`LIST_ASKS` pays the bigger window;
the others pay no window at all (docs/benchmarks.md).

``restrict``: candidates only among these task ids (the simulation's arrival
model: an arriving worker may only get items they really answered).
"""

from __future__ import annotations

import json
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import orjson
from sqlalchemy import JSON, text

from assay.engine.ledger import CLAIM_ID_PG, CLAIM_ID_SQLITE, FOR_USER, POOL_ORDER
from assay.engine.settings import DEFAULT_ROUTING_RANDOM_SHARE
from assay.store.engine import dialect_of

#: candidates read per routed hand-out (the pool's next ones for this user):
#: the window's cost grows with it (~1.5 µs a row on SQLite), see
#: docs/benchmarks.md "Skill-aware routing"
WINDOW = 8
#: seconds an annotator's confusion matrix is reused in this process (a
#: re-fit, which changes ``quality_models.fitted_at``, ends it at once)
SKILL_SECONDS = 30.0

# The window comes back as ONE row, a JSON array of [id, priority, shuffle_key,
# log posterior or null, answers so far] in the pool's order (read with one parse), and
# ``fitted`` (the last re-fit's time: whether the annotator's confusion read
# before is current). One row, not one per candidate: one step of the driver
# (which lets go of the GIL at every row it steps to) and one parse.
_WINDOW = (
    "SELECT t.id, t.priority, t.shuffle_key, c.log_post AS lp, t.answer_count AS n FROM tasks t"
    " LEFT JOIN item_consensus c ON c.project_id = t.project_id AND c.item_id = t.item_id"
    " WHERE t.project_id = :project AND t.open_slots > 0" + FOR_USER
)
_FITTED = "(SELECT fitted_at FROM quality_models WHERE project_id = :project) AS fitted"
_AGG_SQLITE = "SELECT json_group_array(json_array(w.id, w.priority, w.shuffle_key, json(w.lp), w.n)) AS rows, "
_AGG_PG = ("SELECT json_agg(json_build_array(w.id, w.priority, w.shuffle_key, w.lp, w.n)"
           " ORDER BY w.priority DESC, w.shuffle_key, w.id) AS rows, ")
_ORDER = f" ORDER BY {POOL_ORDER} LIMIT :n) w"
# restricted to the task ids in ``:ids`` (a JSON array: one statement whatever their number)
_IN_SQLITE = " AND t.id IN (SELECT value FROM json_each(:ids))"
_IN_PG = " AND t.id IN (SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST(:ids AS JSONB)))"
_CANDIDATES_SQLITE = text(_AGG_SQLITE + _FITTED + " FROM (" + _WINDOW + _ORDER)
_CANDIDATES_PG = text(_AGG_PG + _FITTED + " FROM (" + _WINDOW + _ORDER)
_CANDIDATES_IN_SQLITE = text(_AGG_SQLITE + _FITTED + " FROM (" + _WINDOW + _IN_SQLITE + _ORDER)
_CANDIDATES_IN_PG = text(_AGG_PG + _FITTED + " FROM (" + _WINDOW + _IN_PG + _ORDER)
# after the position (:fp, :fs, :fi) in the pool's order (priority DESC, shuffle_key, id), at
# the same priority: two ranges of the hand-out index (ix_tasks_open), each sought, not
# scanned — the rest of the frontier's shuffle key, then the keys after it (a row-value
# "(shuffle_key, id) > (...)" is sought on its first column only by SQLite: with every
# shuffle key 0 it scanned every open task before the frontier, 7 ms at 50,000) — and the
# pool's top priority now (``top``: a list's frontier is dropped when it rose)
_PART = " ORDER BY t.shuffle_key, t.id LIMIT :n"
_AFTER_WINDOW = (
    "SELECT * FROM (SELECT * FROM (" + _WINDOW + " AND t.priority = :fp AND t.shuffle_key = :fs AND t.id > :fi"
    + _PART + ") a UNION ALL SELECT * FROM (" + _WINDOW + " AND t.priority = :fp AND t.shuffle_key > :fs"
    + _PART + ") b) u ORDER BY u.shuffle_key, u.id LIMIT :n) w"
)
_TOP = (", (SELECT t2.priority FROM tasks t2 WHERE t2.project_id = :project AND t2.open_slots > 0"
        " ORDER BY t2.priority DESC LIMIT 1) AS top")
_CANDIDATES_AFTER_SQLITE = text(_AGG_SQLITE + _FITTED + _TOP + " FROM (" + _AFTER_WINDOW)
_CANDIDATES_AFTER_PG = text(_AGG_PG + _FITTED + _TOP + " FROM (" + _AFTER_WINDOW)


class Candidate(NamedTuple):
    """A task routing may hand out (``lp``: its item's stored log posterior,
    None: none yet; ``n``: the answers its item has)."""

    id: int
    priority: float
    shuffle_key: int
    lp: list | None
    n: int = 0


class Window(list):
    """The candidates, in the pool's order; ``fitted``: the last re-fit's time
    (None: none yet); ``top``: the pool's highest priority (read with ``after`` only)."""

    fitted: float | None = None
    top: float | None = None


# the annotator's confusion matrix (last re-fit) and the class prior, in one statement
_SKILL = text(
    "SELECT (SELECT confusion FROM annotator_skills WHERE project_id = :project AND annotator_id = :user)"
    " AS confusion, (SELECT prior FROM quality_models WHERE project_id = :project) AS prior"
).columns(confusion=JSON, prior=JSON)
_DEFAULT = text("SELECT default_confusion FROM quality_models WHERE project_id = :project").columns(
    default_confusion=JSON)

_rng = None
# database (weakly held) -> (project, annotator) -> (fitted, until, confusion array, base log prior)
_skills: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _of_db(store: weakref.WeakKeyDictionary, conn, make):
    """This process's cache in ``store`` for the database behind ``conn`` (made by ``make``)."""
    db = getattr(conn, "db", None) or conn.engine
    mine = store.get(db)
    return mine if mine is not None else store.setdefault(db, make())


def default_rng():
    """The process's generator for the random share (numpy's, seeded by the OS)."""
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng


def candidates(conn, args: dict, restrict: Iterable[int] | None = None, n: int | None = None,
               after: tuple | None = None) -> Window:
    """The next ``n`` (:data:`WINDOW`) tasks ``args["user"]`` may get in
    ``args["project"]``, in the pool's order (:class:`Candidate` s); with
    ``restrict``, only among those task ids; with ``after`` (a candidate's
    ``(priority, shuffle_key, id)``), only those after it in the pool's order
    at its priority."""
    params = {**args, "n": WINDOW if n is None else n}
    pg = _is_pg(conn)
    if after is not None:
        stmt = _CANDIDATES_AFTER_PG if pg else _CANDIDATES_AFTER_SQLITE
        params.update(fp=after[0], fs=after[1], fi=after[2])
    elif restrict is None:
        stmt = _CANDIDATES_PG if pg else _CANDIDATES_SQLITE
    else:
        stmt = _CANDIDATES_IN_PG if pg else _CANDIDATES_IN_SQLITE
        params["ids"] = json.dumps([int(t) for t in restrict])
    row = conn.execute(stmt, params).first()
    out = Window()
    if row is None:
        return out
    got = row.rows
    if isinstance(got, (str, bytes)):
        got = orjson.loads(got)
    # in the pool's order: PostgreSQL's json_agg says so; SQLite fills json_group_array in the order
    # it reads its sub-query, a co-routine that yields the ORDER BY's rows in order (tests check it)
    out.extend(map(Candidate._make, got or ()))
    out.fitted = row.fitted
    out.top = getattr(row, "top", None)
    return out


def _is_pg(conn) -> bool:
    return dialect_of(conn) == "postgresql"


def _skill(conn, args: dict, k: int, fitted):
    """(the annotator's K x K confusion as an array, rows summing to 1, the
    entropy of each row, the log class prior as a list): read once per re-fit
    (``fitted``) and at most :data:`SKILL_SECONDS`."""

    mine = _of_db(_skills, conn, dict)
    key = (args["project"], args["user"])
    now = time.monotonic()
    hit = mine.get(key)
    if hit is not None and hit[0] == fitted and now < hit[1] and hit[2].shape == (k, k):
        return hit[2:]
    conf, prior = _confusion(conn, args, k)
    base = [math.log(max(float(x), 1e-300)) for x in prior] if prior is not None else [0.0] * k
    c = np.asarray(conf, dtype=float)
    c = c / np.maximum(c.sum(axis=1, keepdims=True), TINY)  # rows sum to 1, as expected_gain takes them
    h_rows = -(c * np.log(np.maximum(c, TINY))).sum(axis=1)  # H(answer | true class k)
    if len(mine) > 100_000:
        mine.clear()
    mine[key] = (fitted, now + SKILL_SECONDS, c, h_rows, base)
    return mine[key][2:]


def _confusion(conn, args: dict, k: int):
    """(the annotator's K x K confusion, the class prior or None)."""
    from assay.engine.redundancy import _model_parts
    from assay.quality import online

    row = conn.execute(_SKILL, args).first()
    conf = row.confusion if row is not None else None
    if conf is None or len(conf) != k:
        model = conn.execute(_DEFAULT, args).first()
        conf = _model_parts(model.default_confusion)[0] if model is not None else None
        if conf is None or len(conf) != k:
            conf = online.default_confusion(k)
    prior = row.prior if row is not None and row.prior is not None and len(row.prior) == k else None
    return conf, prior


def _log_posts(rows: Sequence, k: int, base: list):
    """(len(rows), K) log posteriors of the candidates (``base`` for an item
    without one, or one that is not K numbers)."""
    lps = [r.lp for r in rows]
    if None not in lps:
        try:
            lp = np.array(lps, dtype=float)
            if lp.shape == (len(rows), k):
                return lp
        except (TypeError, ValueError):
            pass
    return np.array([x if isinstance(x, list) and len(x) == k else base for x in lps], dtype=float)


TINY = 1e-300


def gain(post, conf, h_rows):
    """:func:`assay.quality.routing.expected_gain` (the rule; equal to it, a
    test checks) for one annotator whose parts were computed once
    (:func:`_skill`: ``conf`` rows summing to 1, ``h_rows`` their entropies):
    ``H(P(answer)) - sum_k p_k H(conf[k])``, in the fewest numpy calls (the
    hand-out's hot path)."""

    # products as element-wise sums (a K x K confusion, a window of a few rows: no BLAS call needed)
    a = (post[:, :, None] * conf).sum(axis=1)
    return np.maximum(-(a * np.log(np.maximum(a, TINY))).sum(axis=1) - (post * h_rows).sum(axis=1), 0.0)


def score(conn, project: dict, args: dict, rows: Sequence, fitted) -> np.ndarray:
    """Each candidate's score for this annotator: the answers their answer is
    expected to save (:func:`assay.quality.routing.answers_saved`) where the
    last re-fit stored a close table (a routed adaptive project), else the
    expected information gain (:func:`gain`)."""
    k = len(project["schema"]["classes"])
    conf, h_rows, base = _skill(conn, args, k, fitted)
    lp = _log_posts(rows, k, base)
    table = _close(conn, args, fitted)
    if table is not None:
        from assay.quality.routing import answers_saved

        return answers_saved(lp, np.fromiter((r.n for r in rows), np.intp, len(rows)), conf, table)
    post = np.exp(lp - lp.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    return gain(post, conf, h_rows)


# database (weakly held) -> project -> (fitted, close table or None)
_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _close(conn, args: dict, fitted):
    """The close table the last re-fit stored (read once per re-fit, per process), or None."""
    if fitted is None:
        return None
    mine = _of_db(_tables, conn, dict)
    hit = mine.get(args["project"])
    if hit is not None and hit[0] == fitted:
        return hit[1]
    from assay.engine.redundancy import model_close_table

    model = conn.execute(_DEFAULT, args).first()
    try:
        table = model_close_table(model.default_confusion) if model is not None else None
    except (KeyError, TypeError, ValueError):  # stored by another version: score by the gain
        table = None
    if len(mine) > 10_000:
        mine.clear()
    mine[args["project"]] = (fitted, table)
    return table


def choose(conn, project: dict, args: dict, rows: Sequence, rng=None) -> int:
    """The index in ``rows`` (from :func:`candidates`, not empty) of the task to
    hand out: the best :func:`score` among the candidates of the highest
    priority, or with the project's random share a random one."""

    share = project.get("routing_random_share")
    share = DEFAULT_ROUTING_RANDOM_SHARE if share is None else float(share)
    rng = rng if rng is not None else default_rng()
    top, m = rows[0].priority, 1
    while m < len(rows) and rows[m].priority == top:
        m += 1
    if share > 0.0 and rng.random() < share:  # the random share (quality.routing.pick's rule), unscored
        return int(rng.integers(m))
    # the best score, the first in pool order on ties (quality.routing.pick's rule without its share)
    return int(np.argmax(score(conn, project, args, rows[:m], getattr(rows, "fitted", None))))


#: cached picks tried by id and those that failed (another claim took the task first), this process
LIST_STATS = {"tried": 0, "failed": 0}


def claim(conn, args: dict, rows: Sequence, choice: int, *, pg: bool, others: bool = False):
    """Take one slot of ``rows[choice]`` for the user in one statement: the
    ``(id, item_id)`` row, or None when it is gone. ``others``: then try the
    other candidates in the pool's order (a restricted hand-out, which has no
    plain claim to fall back on)."""
    stmt = CLAIM_ID_PG if pg else CLAIM_ID_SQLITE
    order = [choice] + ([j for j in range(len(rows)) if j != choice] if others else [])
    for j in order:
        row = conn.execute(stmt, {**args, "task": rows[j].id}).first()
        if getattr(rows, "cached", False):
            LIST_STATS["tried"] += 1
            LIST_STATS["failed"] += row is None
        if row is not None:
            return row
    return None


#: candidates read at once for an annotator's cached list (:func:`cached_pick`)
LIST_WINDOW = 64
#: whether routed hand-outs use the cached lists (False: one scored window per ask)
LIST_CACHE = True
#: asks served from one list, and its seconds at most, before it is read again
LIST_ASKS = 16
LIST_SECONDS = 2.0
#: (project, annotator) lists kept per database in this process (least recently used dropped)
LIST_MAX = 10_000
#: candidates a cached pick tries by id before the plain claim
LIST_TRIES = 3
# database (weakly held) -> OrderedDict (project, annotator) -> [until, asks left, [(gain, Candidate)] best first]
_lists: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_pick(conn, project: dict, args: dict, rng=None) -> Window:
    """The next tasks to try for ``args["user"]`` (a routed, unrestricted
    hand-out), best first, at most :data:`LIST_TRIES`: from this annotator's
    scored list (:data:`LIST_WINDOW` candidates of the pool's highest
    priority, read and scored once, reused for :data:`LIST_ASKS` asks or
    :data:`LIST_SECONDS`); empty: nothing left for them. The candidates
    returned leave the list (a failed claim of one is a stale candidate)."""
    mine = _of_db(_lists, conn, OrderedDict)
    key = (args["project"], args["user"])
    now = time.monotonic()
    hit = mine.get(key)
    if hit is None or hit[1] <= 0 or now >= hit[0] or not hit[2]:
        hit = [now + LIST_SECONDS, LIST_ASKS, _scored(conn, project, args)]
        mine[key] = hit
        if len(mine) > LIST_MAX:
            mine.popitem(last=False)
    mine.move_to_end(key)
    hit[1] -= 1
    scored = hit[2]
    out = Window()
    if not scored:
        return out
    share = project.get("routing_random_share")
    share = DEFAULT_ROUTING_RANDOM_SHARE if share is None else float(share)
    rng = rng if rng is not None else default_rng()
    first = int(rng.integers(len(scored))) if share > 0.0 and rng.random() < share else 0
    out.append(scored.pop(first)[1])
    out.extend(c for _, c in scored[:LIST_TRIES - 1])
    del scored[:LIST_TRIES - 1]
    return out


# database (weakly held) -> project -> where in the pool's order the last list read ended
_fronts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _list_window(conn, args: dict) -> Window:
    """The candidates of a new list: the :data:`LIST_WINDOW` this user may
    get after the place where the last list read (anyone's, in this process)
    ended, so that lists read one after another hold different tasks (from
    the pool's head every list would hold the same few, and all but the
    first annotator's claims of them would fail); from the pool's head when
    fewer are left after it at its priority (a new pass, or the next
    priority) or when the pool's top priority rose above the frontier's
    (priority goes first)."""
    fronts = _of_db(_fronts, conn, dict)
    front = fronts.get(args["project"])
    rows = None
    if front is not None:
        rows = candidates(conn, args, n=LIST_WINDOW, after=front)
        if len(rows) < LIST_WINDOW or (rows.top is not None and rows.top > front[0]):
            rows = None
    if rows is None:
        rows = candidates(conn, args, n=LIST_WINDOW)
    if len(fronts) > LIST_MAX:
        fronts.clear()
    fronts[args["project"]] = (rows[-1].priority, rows[-1].shuffle_key, rows[-1].id) if rows else None
    return rows


def _scored(conn, project: dict, args: dict) -> list:
    """[(score, candidate)] of this user's next :data:`LIST_WINDOW`
    (:func:`_list_window`) of the highest priority among them, the best
    :func:`score` first (pool order on ties)."""
    rows = _list_window(conn, args)
    if not rows:
        return []
    top, m = rows[0].priority, 1
    while m < len(rows) and rows[m].priority == top:
        m += 1
    g = score(conn, project, args, rows[:m], getattr(rows, "fitted", None)).tolist()
    order = sorted(range(m), key=lambda j: -g[j])  # stable: pool order on ties
    return [(g[j], rows[j]) for j in order]
