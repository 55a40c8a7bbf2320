"""What a Label Studio ML backend answers to ``/predict``, read back into
assay labels: the answer's shapes (every SDK's), the prediction to keep for a
task, its choices and score, and those choices mapped onto the project's
classes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from assay import kinds
from assay.kinds import LabelKind
from assay.learn.ml_backend.errors import BackendProtocolError
from assay.learn.ml_backend.payloads import FROM_NAME

log = logging.getLogger("assay.learn.ml_backend")


def map_choices(choices: Sequence[str], names: Sequence[str], kind: str | LabelKind) -> tuple[Any, list[str]]:
    """``(label, unknown)``: the assay label for a backend's choices (None when
    no known class is left) and the choices the project does not have. An
    exact class name wins; else a unique case-insensitive match."""
    exact = set(names)
    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.casefold(), []).append(n)
    known, unknown = [], []
    for c in choices:
        if not isinstance(c, str):
            unknown.append(repr(c))
        elif c in exact:
            known.append(c)
        elif len(folded.get(c.strip().casefold(), [])) == 1:
            known.append(folded[c.strip().casefold()][0])
        else:
            unknown.append(c)
    if not known:
        return None, unknown
    return (kind if isinstance(kind, LabelKind) else kinds.get(kind)).from_choices(known, names), unknown


def clamp_score(value: Any) -> float | None:
    """A prediction's score as a confidence in [0, 1]; None when it is not a number (or NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    if v != v:  # NaN
        return None
    return min(1.0, max(0.0, v))


def parse_predict_response(body: Any, n_tasks: int, where: str = "the ML backend") -> tuple[list[list[dict]], str | None]:
    """``(per_task, model_version)``: each task's list of predictions (LS
    prediction dicts) and the answer's top-level model version, if any.
    Raises :class:`BackendProtocolError` for anything else."""
    top_version = None
    if isinstance(body, dict):
        if isinstance(body.get("model_version"), (str, int, float)) and not isinstance(body.get("model_version"), bool):
            top_version = str(body["model_version"])
        if "results" in body:
            results = body["results"]
        elif "predictions" in body:  # a ModelResponse dumped as is
            results = body["predictions"]
        else:
            log.warning("%s answered /predict without 'results' (keys: %s)", where, sorted(body)[:10])
            raise BackendProtocolError(f"{where} answered /predict without 'results'")
    elif isinstance(body, list):
        results = body
    else:
        raise BackendProtocolError(f"{where} answered /predict with a {type(body).__name__}, not an object or a list")
    if isinstance(results, dict) and isinstance(results.get("predictions"), list):
        results = results["predictions"]  # {"results": ModelResponse}
    if not isinstance(results, list):
        raise BackendProtocolError(f"{where} answered /predict with 'results' that is not a list")
    if len(results) != n_tasks:
        raise BackendProtocolError(
            f"{where} answered /predict with {len(results)} result(s) for {n_tasks} task(s); "
            "it must answer one entry per task, in order")
    per_task = []
    for j, entry in enumerate(results):
        preds = entry if isinstance(entry, list) else [entry]
        for pr in preds:
            if not isinstance(pr, dict) or not isinstance(pr.get("result", []), list):
                raise BackendProtocolError(
                    f"{where} answered /predict with a malformed prediction for task #{j + 1}: "
                    "expected {\"result\": [...], \"score\": ...}")
        per_task.append(preds)
    return per_task, top_version


def pick_prediction(preds: list[dict]) -> dict | None:
    """The prediction to keep when a task has several: the highest score."""
    if not preds:
        return None
    return max(preds, key=lambda p: (clamp_score(p.get("score")) is not None, clamp_score(p.get("score")) or 0.0))


def prediction_choices(pred: dict) -> tuple[list[str] | None, float | None]:
    """The choices and score of one LS prediction (None choices: no
    ``choices`` result in it). Results for our ``from_name`` come first; any
    other ``choices`` result is used only when none has it."""
    results = [r for r in pred.get("result") or [] if isinstance(r, dict)
               and str(r.get("type", "")).lower() == "choices" and isinstance(r.get("value"), dict)]
    mine = [r for r in results if r.get("from_name") == FROM_NAME] or results
    if not mine:
        return None, clamp_score(pred.get("score"))
    choices: list[str] = []
    scores = []
    for r in mine:
        got = r["value"].get("choices")
        if isinstance(got, str):
            got = [got]
        if isinstance(got, list):
            choices.extend(got)
        if clamp_score(r.get("score")) is not None:
            scores.append(clamp_score(r.get("score")))
    score = clamp_score(pred.get("score"))
    if score is None and scores:
        score = max(scores)
    return choices, score


def prediction_regions(pred: dict, tag: str) -> tuple[list[dict], float | None]:
    """The region results of one LS prediction whose type is ``tag``
    (``rectanglelabels`` …; ours by ``from_name`` first, any other only when
    none is ours) and its score (the prediction's, else its best region's)."""
    results = [r for r in pred.get("result") or [] if isinstance(r, dict)
               and str(r.get("type", "")).lower() == tag.lower() and isinstance(r.get("value"), dict)]
    mine = [r for r in results if r.get("from_name") == FROM_NAME] or results
    score = clamp_score(pred.get("score"))
    if score is None:
        scores = [clamp_score(r.get("score")) for r in mine if clamp_score(r.get("score")) is not None]
        score = max(scores) if scores else None
    return mine, score
