"""``assay simulate`` for spans and boxes: real answers (long JSON lines, as
``assay aggregate`` reads them) replayed under a redundancy policy by
:func:`assay.quality.shape_redundancy.replay_adaptive`.

- ``adaptive``: every item starts with ``overlap`` answers (default 2), then
  gets one more while its merged result's confidence is below ``target``
  (default 0.99), up to ``max_answers`` or what the item has;
- ``fixed``: every item gets ``overlap`` answers (default: all it has).

The result says how many answers the policy used and, with ``truth``, the
F1 of its consensus against the experts beside the F1 of the consensus of
every answer (the issue's bar: within 0.01 F1 using at most half)."""

from __future__ import annotations

from pathlib import Path

from assay.errors import InvalidInput

DEFAULT_TARGET = 0.99
DEFAULT_START = 2


def simulate_shapes(answers: Path, truth: Path | None = None, *, items: Path | None = None, kind: str | None = None,
                    policy: str = "adaptive", overlap: int | None = None, target: float | None = None,
                    max_answers: int | None = None, method: str = "auto", seed: int = 0) -> dict:
    """Replay span or box answers under ``policy``; one JSON-ready dict."""
    from assay.quality.io import read_items, read_jsonl, shape_kind
    from assay.quality.shape_redundancy import replay_adaptive

    rows = read_jsonl(answers)
    kind = shape_kind(rows, kind)
    if policy not in ("adaptive", "fixed"):
        raise InvalidInput(f"--policy for {kind} is adaptive or fixed, got {policy!r}")
    known = None
    if truth is not None:
        known = read_jsonl(truth, "true labels")
        bad = next((n for n, r in enumerate(known, 1) if "item" not in r or kind not in r), None)
        if bad is not None:
            raise InvalidInput(f"{truth}, line {bad}: a true label is {{\"item\", \"{kind}\": [...]}}")
    if policy == "fixed":
        if target is not None:
            raise InvalidInput("--target is for the adaptive policy")
        cap = overlap or max(sum(1 for r in rows if r["item"] == it) for it in {r["item"] for r in rows})
        start, top, goal = cap, cap, DEFAULT_TARGET
    else:
        start, top, goal = overlap or DEFAULT_START, max_answers, DEFAULT_TARGET if target is None else target
    try:
        out = replay_adaptive(rows, kind, start=start, max_answers=top, target=goal, seed=seed,
                              items=read_items(items), method=method, truth=known)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    res = {"kind": kind, "policy": policy, "start": start, "max_answers": top,
           "target": goal if policy == "adaptive" else None, "seed": seed, "items": len(out["used"]),
           "answers_used": out["answers_used"], "answers_all": out["answers_all"], "share": round(out["share"], 4),
           "fits": out["fits"], "f1_vs_all_answers_consensus": round(out["vs_consensus"]["f1"], 4)}
    if known is not None:
        res.update(f1_vs_truth=round(out["vs_truth"]["f1"], 4), f1_vs_truth_all_answers=round(out["all_vs_truth"]["f1"], 4))
    return res
