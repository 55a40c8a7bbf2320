"""``assay simulate --ml``: the whole loop, replayed on real answers.

Like :mod:`assay.simulation.crowd` (real crowd answers drawn per item without
replacement, through the real hand-out and ``Workspace.submit`` with
adaptive redundancy), plus the model's side (:func:`assay.learn.step.ml_step`):
items are embedded (``--items`` texts with the default text model,
``--images`` with the default image model, or ``--features`` given), the
in-loop model is retrained as answers arrive, auto-labels items above its
guaranteed threshold (a share audited by people), feeds its calibrated
prediction into the consensus, and orders the hand-out (active learning).

The baseline is measured in the same run: every item answered by 3 people
(3 of its real answers, drawn with the same seed), majority vote.

``answers_used`` counts human answers only. Final labels are what ``assay
export`` writes (:mod:`assay.engine.resolver`): the consensus where people
answered (the online posterior with the model's prior), the auto-label
where the model labeled alone. An item with only the model's uncertified
guess (a model-only consensus) has no label: it is counted in
``items_model_only`` and left out of ``accuracy``.
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
from sqlalchemy import JSON, text

from assay.engine.resolver import iter_final
from assay.errors import InvalidInput
from assay.simulation.crowd import Crowd, Replay, _read, _sort_classes, add_workers, shuffled_pools


#: ``target="match"``: the target before the first model step sets one
MATCH_START = 0.95
#: what the result's ``steps`` shows of each model step
STEP_FIELDS = ("answers", "version", "verified", "oof_accuracy", "validation_accuracy", "target", "threshold",
               "auto_labeled", "verify_target", "auto_reachable", "verify_region", "verify_estimate")

_ITEMS = text("SELECT id, text FROM items WHERE dataset_id = :d")
_TASKS = text("SELECT id, item_id FROM tasks WHERE project_id = :p")
_ANSWERS_PER_ITEM = text("SELECT item_id, count(*) AS n FROM answers WHERE project_id = :p GROUP BY item_id")
_CONSENSUS = text("SELECT item_id, label, confidence, answers FROM item_consensus WHERE project_id = :p"
                  ).columns(label=JSON)
_AUTO_LABELS = text("SELECT item_id, label, audit FROM auto_labels WHERE project_id = :p").columns(label=JSON)
_USED_ANSWERS = text("SELECT item_id, label FROM answers WHERE project_id = :p ORDER BY id").columns(label=JSON)
_PREDICTED = text("SELECT item_id, label FROM predictions WHERE project_id = :p").columns(label=JSON)


def _features(items, features_path, ids_path) -> tuple[np.ndarray, dict]:
    f = Path(features_path)
    if not f.is_file():
        raise InvalidInput(f"{f} does not exist")
    X = np.load(f)
    if X.ndim != 2:
        raise InvalidInput(f"{f.name} must hold a 2-d array (one row per item)")
    if ids_path is None:
        raise InvalidInput("--features needs --feature-ids (one item id per line, aligned with the rows)")
    ids = [ln.strip() for ln in Path(ids_path).read_text().splitlines() if ln.strip()]
    if len(ids) != X.shape[0]:
        raise InvalidInput(f"{len(ids)} ids for {X.shape[0]} feature rows")
    row = {i: j for j, i in enumerate(ids)}
    missing = [i for i in items if i not in row]
    if missing:
        raise InvalidInput(f"{len(missing)} answered items have no feature row (first: {missing[0]!r})")
    return X.astype(np.float32), row


def baseline_mv(df: pd.DataFrame, truth: dict, k: int, seed: int) -> dict:
    """Every item answered by ``k`` people (drawn from its real answers), majority vote."""
    rng = np.random.default_rng(seed)
    used, right, n = 0, 0, 0
    for item, grp in df.groupby("item", sort=False):
        labs = grp["label"].to_numpy()
        pick = labs[rng.permutation(len(labs))[:k]]
        used += len(pick)
        counts = Counter(pick)
        top = max(counts.values())
        winners = sorted(c for c, v in counts.items() if v == top)
        label = winners[int(rng.integers(len(winners)))]  # ties broken at random
        if item in truth:
            n += 1
            right += label == truth[item]
    return {"answers": used, "accuracy": right / n if n else None, "overlap": k}


@dataclass(frozen=True)
class ItemSource:
    """Where the items' vectors come from: exactly one of a CSV of texts, a
    folder of images or given features (with their ids); ``model``: the
    embedding model for texts or images (None: the default for the kind)."""

    items_path: Path | str | None = None
    images_dir: Path | str | None = None
    features_path: Path | str | None = None
    feature_ids_path: Path | str | None = None
    model: str | None = None


@dataclass
class LoopRun:
    """One replay of the loop: its items, the model steps it ran, and what it
    left in its workspace (read before the workspace goes)."""

    ids: np.ndarray  # item ids, in processing (= task id) order
    name_of: dict  # item id -> the answers file's item name
    space: str  # the vector space the model learns from
    embed_seconds: float
    steps: list  # every ml_step's result
    used: int
    exhausted: int
    mismatches: int
    finals: dict  # item name -> the exported label (an assay.engine.resolver.FinalLabel)
    per_item_answers: dict  # item id -> people's answers
    cons: dict  # item id -> (label, confidence, answers) of its consensus row
    autos: dict  # item id -> (label, audit) of its auto-label
    answered: dict  # item id -> the labels people gave it (in the order given)
    predicted: dict  # item id -> the last model's held-out label (no row: validation, audits)


def _check(target, source: ItemSource) -> None:
    if target != "match" and (isinstance(target, str) or not 0.5 <= target < 1):
        raise InvalidInput(f"--target must be 'match' or a confidence in [0.5, 1), got {target!r}")
    if sum(x is not None for x in (source.items_path, source.images_dir, source.features_path)) != 1:
        raise InvalidInput("--ml needs exactly one of --items, --images or --features")


def _read_crowd(answers_path, truth_path) -> Crowd:
    df = _read(answers_path, ("item", "worker", "label"))
    n_rows = len(df)
    df = df.drop_duplicates(["item", "worker"], keep="last")
    t = _read(truth_path, ("item", "label"))
    truth = dict(zip(t["item"], t["label"]))
    classes = _sort_classes(set(df["label"]) | set(truth.values()))
    return Crowd(df, n_rows - len(df), truth, classes, df.groupby("item", sort=False).size())


def _texts(items_path, order) -> list[str]:
    it = _read(items_path, ("item", "text"))
    by = dict(zip(it["item"], it["text"]))
    missing = [x for x in order if x not in by]
    if missing:
        raise InvalidInput(f"{len(missing)} answered items have no text in {Path(items_path).name}")
    return [by[x] for x in order]


def _image_blobs(images_dir, order) -> list[bytes]:
    folder = Path(images_dir)
    files = {f.stem: f for f in folder.rglob("*") if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")}
    missing = [x for x in order if str(x) not in files]
    if missing:
        raise InvalidInput(f"{len(missing)} answered items have no image in {folder} (first: {missing[0]!r})")
    return [files[str(x)].read_bytes() for x in order]


def _embed(ws, ids, order, source: ItemSource, texts) -> str:
    """Store the items' vectors (given features, or embedded texts or images); returns the space."""
    model = source.model
    if source.features_path is not None:
        X, row = _features(order, source.features_path, source.feature_ids_path)
        ws.vectors.add("features", ids, X[[row[x] for x in order]], {"model": "features", "kind": "given"})
        return "features"
    from assay.learn.embedders import get_embedder

    if texts is not None:
        emb = get_embedder(model, kind="text")
        vecs = np.concatenate([emb.embed(texts[i:i + 256]) for i in range(0, len(texts), 256)])
        ws.vectors.add("sim-text", ids, vecs, {"model": emb.name, "kind": "text"})
        return "sim-text"
    blobs = _image_blobs(source.images_dir, order)
    emb = get_embedder(model, kind="image")
    vecs = np.concatenate([emb.embed(blobs[i:i + 64]) for i in range(0, len(blobs), 64)])
    ws.vectors.add("sim-images", ids, vecs, {"model": emb.name, "kind": "image"})
    return "sim-images"


def _import_items(ws, order) -> tuple[int, np.ndarray]:
    """A dataset with one placeholder item per name in ``order``: (its id, the item ids in that order)."""
    ds = ws.create_dataset("sim")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"item {x}" for x in order], "item": order}))
    with ws.db.read() as conn:
        item_of = {r.text[len("item "):]: r.id for r in conn.execute(_ITEMS, {"d": ds["id"]})}
    return ds["id"], np.array([item_of[x] for x in order], np.int64)


def _run_loop(ws, pid: int, replay: Replay, *, batch: int, seed: int, ml_every: float, ml_min: int) -> list:
    """Hand out until no task has room: the crowd re-fit and the model step
    on a server's schedule, and both once more at the end; returns the steps."""
    from assay.learn.step import ml_step

    steps = [ml_step(ws, pid, batch=batch, seed=seed)]
    last_ml = last_refit = 0
    while (answered := replay.step()) is not None:
        if not answered:
            continue
        used = replay.used
        if used - last_refit >= max(200, 0.25 * used):
            ws.refit_quality(pid)
            last_refit = used
            last_ml = -10**9  # the model's prior goes back in right after a re-fit
        if used - last_ml >= max(ml_min, ml_every * used):
            steps.append(ml_step(ws, pid, batch=batch, seed=seed + len(steps)))
            last_ml = used
    ws.refit_quality(pid)
    steps.append(ml_step(ws, pid, batch=batch, seed=seed + len(steps)))
    return steps


def _stored(ws, pid: int) -> tuple[dict, dict, dict, dict, dict]:
    """(answers per item, consensus rows, auto-labels, people's labels, the
    model's predicted labels) of the project, by item id."""
    with ws.db.read() as conn:
        per_item_answers = {r.item_id: r.n for r in conn.execute(_ANSWERS_PER_ITEM, {"p": pid})}
        cons = {r.item_id: (r.label, r.confidence, r.answers) for r in conn.execute(_CONSENSUS, {"p": pid})}
        autos = {r.item_id: (r.label, bool(r.audit)) for r in conn.execute(_AUTO_LABELS, {"p": pid})}
        answered: dict = {}
        for r in conn.execute(_USED_ANSWERS, {"p": pid}):
            answered.setdefault(r.item_id, []).append(r.label)
        predicted = {r.item_id: r.label for r in conn.execute(_PREDICTED, {"p": pid})}
    return per_item_answers, cons, autos, answered, predicted


def _replay_loop(ws, crowd: Crowd, order, pools, *, match: bool, target, m: int, auto_target: float,
                 audit_rate: float, baseline_k: int, batch: int, seed: int, ml_every: float, ml_min: int,
                 source: ItemSource, export_path) -> LoopRun:
    """Set the project up in ``ws``, run the loop and read back what it left."""
    texts = _texts(source.items_path, order) if source.items_path is not None else None
    ds_id, ids = _import_items(ws, order)
    embed_t = time.perf_counter()
    space = _embed(ws, ids, order, source, texts)
    embed_seconds = time.perf_counter() - embed_t
    pid = ws.create_project("sim", ds_id, crowd.classes, lease_seconds=3600, overlap=1,
                            target_confidence=MATCH_START if match else target,
                            max_answers=min(max(m, 1), 100))["id"]
    ws.update_project(pid, ml_space=space, auto_label_target=auto_target, audit_rate=audit_rate,
                      target_match=baseline_k if match else None)
    users = add_workers(ws, pid, crowd.df["worker"].unique())
    name_of = {int(i): x for i, x in zip(ids, order)}
    with ws.db.read() as conn:
        task_name = {r.id: name_of[r.item_id] for r in conn.execute(_TASKS, {"p": pid})}
    replay = Replay(ws, pid, pools, users, task_name)
    steps = _run_loop(ws, pid, replay, batch=batch, seed=seed, ml_every=ml_every, ml_min=ml_min)
    finals = {name_of[f.item_id]: f for f in iter_final(ws.db, ws.get_project(pid))}
    if export_path is not None:
        ws.export(pid, export_path)
    return LoopRun(ids, name_of, space, embed_seconds, steps, replay.used, replay.exhausted, replay.mismatches,
                   finals, *_stored(ws, pid))


def _label_scores(run: LoopRun, truth: dict) -> tuple[dict, list]:
    """Accuracy of the exported labels: all, people's, the model's auto-labels;
    also returns the scored item names."""
    # the exported labels: people's (consensus, gold, review, majority) or the model's auto-label
    final = {name: f.label for name, f in run.finals.items() if f.label is not None}
    how = {name: "auto" if f.source == "auto" else "people" for name, f in run.finals.items() if f.label is not None}
    model_only = [name for i, name in run.name_of.items() if name not in final and i in run.cons]
    scored = [x for x in final if x in truth]
    people_items = [x for x in scored if how[x] == "people"]
    acc = lambda xs: round(float(np.mean([final[x] == truth[x] for x in xs])), 6) if xs else None  # noqa: E731
    return {
        "items_with_truth": len(scored),
        "accuracy": acc(scored),
        "items_resolved": len(people_items),
        "accuracy_resolved": acc(people_items),
        "items_auto_labeled": len([x for x in final if how[x] == "auto"]),
        "accuracy_auto_labeled": acc([x for x in scored if how[x] == "auto"]),
        "items_model_only": len(model_only),
        "label_sources": dict(sorted(Counter(f.source or "none" for f in run.finals.values()).items())),
    }, scored


def parts_scores(run: LoopRun, truth: dict, final: dict, seed: int) -> dict:
    """The loop's parts, each scored against the truth: majority vote over
    the answers the loop bought (items with answers; ties at random), the
    last model's held-out label (out-of-fold where it trained; items with a
    prediction), and the final labels on the same items; ``parts_gap``:
    final accuracy minus the better part (the bar: >= -0.01)."""
    rng = np.random.default_rng(seed)
    mv_right, mv_final, model_right, model_final = [], [], [], []
    for i, labels in run.answered.items():
        name = run.name_of.get(i)
        if name not in truth:
            continue
        counts = Counter(labels)
        top = max(counts.values())
        winners = sorted(c for c, v in counts.items() if v == top)
        mv_right.append(winners[int(rng.integers(len(winners)))] == truth[name])
        mv_final.append(final.get(name) == truth[name])
    for i, label in run.predicted.items():
        name = run.name_of.get(i)
        if name in truth:
            model_right.append(label == truth[name])
            model_final.append(final.get(name) == truth[name])
    from assay.learn.step import validation_mask

    is_val = dict(zip(run.ids.tolist(), validation_mask(run.ids, len(run.ids)).tolist()))
    by_role: dict = {}
    for i, name in run.name_of.items():
        if name in truth and name in final:
            role = "validation" if is_val.get(i) else ("audit" if run.autos.get(i, (None, False))[1] else "other")
            by_role.setdefault(role, []).append(final[name] == truth[name])
    mean = lambda xs: round(float(np.mean(xs)), 6) if xs else None  # noqa: E731
    return {"accuracy_by_role": {r: [len(v), mean(v)] for r, v in sorted(by_role.items())},
            "items_answered": len(mv_right), "majority_used_accuracy": mean(mv_right),
            "accuracy_on_answered": mean(mv_final), "items_predicted": len(model_right),
            "model_heldout_accuracy": mean(model_right), "accuracy_on_predicted": mean(model_final)}


def _answers_by_role(run: LoopRun) -> dict:
    """People's answers on the model's validation items, on audits, elsewhere."""
    from assay.learn.step import validation_mask

    is_val = dict(zip(run.ids.tolist(), validation_mask(run.ids, len(run.ids)).tolist()))
    by_role = Counter()
    for i, n in run.per_item_answers.items():
        role = "validation" if is_val.get(i) else ("audit" if i in run.autos else "other")
        by_role[role] += n
    return dict(by_role)


def _step_rows(steps: list) -> list[dict]:
    """Each step that trained a model version, its main figures."""
    return [{k: st.get(k) for k in STEP_FIELDS} for st in steps if st.get("version")]


def simulate_ml(answers_path, truth_path, *, items_path=None, images_dir=None, features_path=None,
                feature_ids_path=None, target: float | str = "match", max_answers: int | None = None,
                auto_target: float = 0.95, audit_rate: float = 0.05, batch: int = 100, seed: int = 0,
                model: str | None = None, ml_every: float = 0.1, ml_min: int = 100, baseline_k: int = 3,
                progress: bool = False, export_path=None) -> dict:
    """One replay of the loop; ``export_path``: also write the project's export
    there (what a user gets; each record's ``meta.item`` is the item id)."""
    from assay.workspace import Workspace

    source = ItemSource(items_path, images_dir, features_path, feature_ids_path, model)
    _check(target, source)
    match = target == "match"
    started = time.perf_counter()
    crowd = _read_crowd(answers_path, truth_path)
    m = max_answers if max_answers is not None else int(math.ceil(crowd.per_item.median()))
    rng = np.random.default_rng(seed)
    item_names = crowd.per_item.index.to_numpy()
    order = item_names[rng.permutation(len(item_names))]
    pools = shuffled_pools(crowd.df, rng)
    with tempfile.TemporaryDirectory(prefix="assay-simml-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        try:
            run = _replay_loop(ws, crowd, order, pools, match=match, target=target, m=m, auto_target=auto_target,
                               audit_rate=audit_rate, baseline_k=baseline_k, batch=batch, seed=seed,
                               ml_every=ml_every, ml_min=ml_min, source=source, export_path=export_path)
        finally:
            ws.close()
    truth, used = crowd.truth, run.used
    targets = [st["target"] for st in run.steps if st.get("target") is not None]
    scores, scored = _label_scores(run, truth)
    base = baseline_mv(crowd.df, truth, baseline_k, seed)
    final = {name: f.label for name, f in run.finals.items() if f.label is not None}
    parts = parts_scores(run, truth, final, seed)
    best_part = max([x for x in (parts["majority_used_accuracy"], parts["model_heldout_accuracy"]) if x is not None],
                    default=None)
    parts["parts_gap"] = (round(scores["accuracy"] - best_part, 6)
                          if best_part is not None and scores["accuracy"] is not None else None)
    last = run.steps[-1]
    return {
        "ml": True,
        "seed": seed,
        "settings": {"target_confidence": target, "target_final": targets[-1] if targets else target,
                     "target_range": [min(targets), max(targets)] if targets else None, "max_answers": m,
                     "auto_label_target": auto_target,
                     "audit_rate": audit_rate, "batch": batch, "space": run.space},
        "items": int(len(item_names)),
        "items_with_truth": scores.pop("items_with_truth"),
        "answers_available": int(len(crowd.df)),
        "answers_used": int(used),
        "answers_used_share": round(used / len(crowd.df), 4),
        "answers_per_item": round(used / len(item_names), 4),
        **scores,
        "auto_audits": sum(1 for a in run.autos.values() if a[1]),
        "model_versions": sum(1 for s in run.steps if s.get("version")),
        "threshold": last.get("threshold"),
        "auto_state": last.get("auto_state"),
        "model_oof_accuracy": last.get("oof_accuracy"),
        "baseline": base,
        "parts": parts,
        "answers_vs_baseline": round(used / base["answers"], 4) if base["answers"] else None,
        "accuracy_vs_baseline": (round(scores["accuracy"] - base["accuracy"], 6)
                                 if scored and base["accuracy"] is not None else None),
        "answers_histogram": {str(k): v for k, v in sorted(Counter(
            (run.cons.get(i) or (None, None, 0))[2] for i in run.name_of).items())},
        "answers_by_role": _answers_by_role(run),
        "steps": _step_rows(run.steps),
        "items_exhausted": run.exhausted,
        "handout_mismatches": run.mismatches,
        "embed_seconds": round(run.embed_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }
