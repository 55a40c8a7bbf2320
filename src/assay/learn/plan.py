"""One step of the model's side of a project, planned without a database.

:func:`plan_step` takes what :mod:`assay.learn.step` read (:class:`StepInput`:
tasks, answers, gold, auto-labels, the last model, vectors) and returns a
:class:`StepPlan`: the new model version and its predictions, the crowd's
skills re-learned with the model, auto-labels to add and to take back, each
open item's model-informed consensus with the step to carry out on its task,
every task's priority and verification target, and a summary. Nothing here
writes; :mod:`assay.learn.step` applies the plan in one transaction through the
ledger. An item whose answers changed after the read is recomputed there
from its answers at write time with :func:`item_consensus` and the plan's
skills (:attr:`StepPlan.rules`), so an answer that arrives mid-step is never
overwritten by a stale decision.

What the step does (and why) is told in :mod:`assay.learn.step`'s docstring.
numpy and sklearn only (the learn layer): no SQL, no workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ALPHA = 0.05
MIN_TRAIN = 20
#: training labels: people's answers alone must put at least this on a class
#: (a classifier tolerates some label noise; the threshold is chosen on the
#: validation share, never on these)
TRAIN_CONFIDENCE = 0.7
#: labels that check auto-labels, while they are held to the stricter target:
#: they come first, since the certification (and so every auto-label) waits on them
PRIORITY_VERIFY = 3.5
PRIORITY_STARTED = 3.0
PRIORITY_VALIDATION = 2.5
PRIORITY_BATCH = 2.0
#: the validation share: at least this many items (or 5 %), labeled by people
#: alone, held out of training; the auto-label threshold is chosen on them
VALIDATION_MIN = 200
VALIDATION_SHARE = 0.05


def validation_mask(item_ids: np.ndarray, n_items: int) -> np.ndarray:
    """A fixed pseudo-random share of the items (by id): people label them
    without the model's help and the model never trains on them."""
    rate = min(0.5, max(VALIDATION_SHARE, VALIDATION_MIN / max(n_items, 1)))
    h = (np.asarray(item_ids, np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h.astype(np.float64) / 2**32) < rate


def verification_region(confidence: np.ndarray, threshold: float | None, target: float,
                        alpha: float = ALPHA) -> np.ndarray:
    """Which validation items (indices into ``confidence``, the model's
    held-out confidence on each) can decide the auto-label threshold, and so
    need labels surer than the auto-labels they check: the most confident
    ones that the first test of :func:`assay.learn.autolabel.choose_threshold`
    reads, or those down to the certified ``threshold``, whichever is more,
    and a quarter of the first test's size below (where the next tests
    read)."""
    from assay.learn.autolabel import first_test_size

    conf = np.asarray(confidence, float)
    first = first_test_size(target, alpha)
    above = int((conf >= threshold).sum()) if threshold is not None else 0
    m = min(conf.size, max(first, above) + int(np.ceil(first / 4)))
    return np.argsort(-conf, kind="stable")[:m]


# ---------------------------------------------------------------- input


@dataclass(frozen=True)
class StepSettings:
    """The project settings a step reads."""

    classes: list[str]
    overlap: int
    target_confidence: float | None
    max_answers: int | None
    target_match: int | None
    auto_label_target: float | None
    audit_rate: float | None


@dataclass(frozen=True)
class AutoLabel:
    code: int  # class code of the auto-label, -1 if not a class any more
    confidence: float
    audit: bool


@dataclass(frozen=True)
class LastModel:
    version: int
    threshold: float | None
    auto_state: str | None
    metrics: dict | None


@dataclass
class StepInput:
    """What the read phase loaded. Arrays over tasks are in item-id order;
    answers are long rows whose ``ans_task`` indexes those arrays (answers
    with a label that is not a class are left out, but counted in
    ``answers_total`` and ``answers_by_annotator``)."""

    settings: StepSettings
    task_ids: np.ndarray
    item_ids: np.ndarray
    answer_count: np.ndarray
    needed: np.ndarray
    is_gold: np.ndarray
    open_now: np.ndarray  #: open_slots > 0
    leases: np.ndarray  #: lease rows per task (the ledger counts them all until swept)
    ans_task: np.ndarray
    ans_user: np.ndarray
    ans_label: np.ndarray
    answers_total: int
    answers_by_annotator: dict[int, int]
    skills: dict[int, Any]  #: stored annotator confusions (the last re-fit's)
    default: Any  #: stored crowd default confusion, or None
    prior: Any  #: stored class prior, or None
    previous: np.ndarray | None  #: (n, K) last predictions (NaN rows: none), None: no predictions
    known_mask: np.ndarray  #: gold / reviewed items
    known_code: np.ndarray  #: their class code (-1: unknown or not a class)
    autos: dict[int, AutoLabel]  #: item id -> its auto-label
    status: dict[int, str]  #: item id -> consensus status
    last: LastModel | None
    X: np.ndarray  #: vectors of the items that have one
    vec_row: np.ndarray  #: row of X per task (-1: no vector)

    @property
    def with_vec(self) -> np.ndarray:
        return self.vec_row >= 0


# ---------------------------------------------------------------- output


@dataclass(frozen=True)
class ItemRule:
    """How an open item's consensus is computed from its answers:
    ``log_prior`` (the model's log probabilities, or the class prior for
    items people label unaided) plus the answers' log-likelihood under the
    plan's skills; ``target``: the confidence to stop at (None: no decision on
    the task); ``when_answered``: whether the item is written at all once it
    has answers."""

    item_id: int
    task_id: int
    log_prior: np.ndarray
    target: float | None
    when_answered: bool = True


@dataclass(frozen=True)
class ConsensusRow:
    item_id: int
    task_id: int
    label: str
    confidence: float
    log_post: list[float]
    answers: int
    status: str  #: "open", "resolved" or "review" (what ``step`` leads to)
    step: str | None  #: the decision to carry out on the task (ledger.apply_step), None: none


@dataclass(frozen=True)
class NewAutoLabel:
    item_id: int
    task_id: int
    label: str
    confidence: float
    audit: bool


@dataclass(frozen=True)
class ModelVersion:
    version: int
    n_train: int
    temperature: float
    oof_accuracy: float
    threshold: float | None
    auto_state: str
    metrics: dict


@dataclass
class StepPlan:
    """Everything one step changes (see the module docstring)."""

    summary: dict[str, Any]
    classes: list[str] = field(default_factory=list)
    model: ModelVersion | None = None
    #: (item id, label, confidence, rounded probabilities) per predicted item
    predictions: list[tuple[int, str, float, list[float]]] = field(default_factory=list)
    #: the re-learned crowd: rows {"u", "c", "a", "n"}, class prior, default confusion (None: not re-learned)
    skills: list[dict] | None = None
    prior: list[float] | None = None
    default: list | None = None
    #: the new project target_confidence (target_match), None: unchanged
    target_confidence: float | None = None
    revert: list[tuple[int, int]] = field(default_factory=list)  #: (item id, task id)
    auto_labels: list[NewAutoLabel] = field(default_factory=list)
    consensus: list[ConsensusRow] = field(default_factory=list)
    #: the crowd model items are recomputed with: skills, default, and the rule per item
    crowd_skills: dict[int, Any] = field(default_factory=dict)
    crowd_default: Any = None
    rules: dict[int, ItemRule] = field(default_factory=dict)
    max_answers: int | None = None
    #: task id -> priority (applied to tasks still open after the write; the rest 0)
    priorities: dict[int, float] = field(default_factory=dict)
    #: task id -> verification target (the rest None)
    targets: dict[int, float] = field(default_factory=dict)
    overlap: int = 1
    answer_count: dict[int, int] = field(default_factory=dict)  #: task id -> answers when read
    needed: dict[int, int] = field(default_factory=dict)  #: task id -> needed when read


# ---------------------------------------------------------------- per item


def _log(p) -> np.ndarray:
    return np.log(np.maximum(p, 1e-12))


def _decide(lp, confidence: float, answers: int, needed: int, target: float, max_answers: int) -> str:
    """``online.next_step`` without a settle table (the ML step's targets are its own)."""
    from assay.quality import online

    settled = confidence < target and answers < max_answers and online.settled(lp, max_answers - answers, None)
    return online.next_step(confidence, answers, needed, target=target, max_answers=max_answers, settled=settled)


_STATUS = {"resolved": "resolved", "settled": "resolved", "review": "review"}


def item_consensus(rule: ItemRule, loglik: np.ndarray, n: int, answer_count: int, needed: int,
                   classes: list[str], max_answers: int | None) -> ConsensusRow | None:
    """An item's consensus row from its answers' log-likelihood ``loglik``
    (``n`` answers) and its task's counts (None: the item is left alone)."""
    from assay.quality import online

    if n > 0 and not rule.when_answered:
        return None
    lp = (rule.log_prior + loglik).tolist() if n > 0 else list(map(float, rule.log_prior))
    best, conf = online.decision(lp)
    step = None
    if n > 0 and rule.target is not None:
        step = _decide(lp, conf, answer_count, needed, rule.target, max_answers)
    return ConsensusRow(rule.item_id, rule.task_id, classes[best], conf, lp, int(n),
                        _STATUS.get(step, "open"), step)


def plan_step(inp: StepInput, *, batch: int = 100, seed: int = 0) -> StepPlan:
    """Plan one step (see the module docstring); pure."""
    from assay.learn.planner import Planner

    return Planner(inp, batch=batch, seed=seed).plan()
