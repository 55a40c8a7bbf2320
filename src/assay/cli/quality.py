"""Truth inference and simulation over CSV files, no workspace needed:
``assay aggregate`` and ``assay simulate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import app, command, fail


def _aggregate_multilabel(answers: Path, method: str, gold: Path | None, out: Path | None, sep: str) -> None:
    import sys

    from assay.quality.io import read_answers_csv, read_gold_csv
    from assay.quality.multilabel import aggregate_multilabel

    if not sep:
        fail("--sep must not be empty")
    df = read_answers_csv(answers)
    split = [[c for c in cell.split(sep) if c] for cell in df["label"]]
    gold_map = None
    if gold is not None:
        gold_map = {k: [c for c in v.split(sep) if c] for k, v in read_gold_csv(gold).items()}
    r = aggregate_multilabel(df["item"].to_numpy(), df["worker"].to_numpy(), split, method=method, gold=gold_map)
    frame = r.to_frame(sep)
    frame["confidence"] = frame["confidence"].map(lambda c: f"{c:.6f}")
    if out is None:
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
    else:
        frame.to_csv(out, index=False, lineterminator="\n")
        typer.echo(f"wrote {len(frame)} items to {out} (multi-label, {len(r.classes)} classes, method {method})")


def _aggregate_shapes(answers: Path, kind: str | None, items: Path | None, method: str, out: Path | None) -> None:
    """Long JSON lines of spans or boxes -> one JSON row per item (written whole or not at all)."""
    import os
    import sys
    import tempfile

    from assay.quality.io import aggregate_shapes, read_items, read_jsonl, shape_kind, write_jsonl

    rows = read_jsonl(answers)
    kind = shape_kind(rows, kind)
    result = aggregate_shapes(rows, kind, items=read_items(items), method=method)
    if out is None:
        write_jsonl(result, sys.stdout.buffer)
        return
    fd, tmp = tempfile.mkstemp(dir=out.resolve().parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write_jsonl(result, f)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    typer.echo(f"wrote {len(result)} items to {out} ({kind}, method {method})")


@app.command()
@command
def aggregate(
    answers: Annotated[Path, typer.Argument(help="CSV with a header item,worker,label (any ids and labels); or JSON lines of spans or boxes, one answer per line: item, worker and a list of spans (start, end, label) or of boxes (x1, y1, x2, y2, label).")],
    method: Annotated[str, typer.Option(help="auto, mv, wawa, ds, one-coin, glad, mace, bwa, bcc, ebcc or minimax; spans: auto, mv, ds or seq; boxes: auto, vote or em.")] = "auto",
    gold: Annotated[Optional[Path], typer.Option(help="CSV item,label of known true labels (kept as given).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write item,label,confidence here (default: stdout).")] = None,
    multi_label: Annotated[bool, typer.Option(
        "--multi-label", help="Each label cell is a set of classes joined by --sep (binary relevance).")] = False,
    sep: Annotated[str, typer.Option(help="Separator of classes in a multi-label cell.")] = "|",
    kind: Annotated[Optional[str], typer.Option(help="spans or boxes: the kind of JSON-lines answers (default: read from the rows).")] = None,
    items: Annotated[Optional[Path], typer.Option(help="Spans: JSON lines {item, text, tokens}; boxes: {item, width, height} (optional).")] = None,
):
    """Infer one label per item from several people's answers (truth inference).

    JSON-lines answers of spans or boxes give one JSON row per item: its
    item, its spans (start, end, label, confidence) or boxes (x1, y1, x2, y2,
    label, confidence) in the input's coordinates, and the item's confidence."""
    if kind is not None or answers.suffix.lower() in (".jsonl", ".ndjson"):
        return _aggregate_shapes(answers, kind, items, method, out)
    if items is not None:
        fail("--items is for JSON-lines answers of spans or boxes")
    if multi_label:
        return _aggregate_multilabel(answers, method, gold, out, sep)
    from assay.quality.io import aggregate_csv

    r = aggregate_csv(answers, method=method, gold=gold, out=out)
    if out is not None:
        chosen = getattr(r.model, "method_", None)
        typer.echo(f"wrote {len(r.item_ids)} items to {out} (method {method}{f' -> {chosen}' if chosen else ''})")


def _confidence(text_value: str) -> float:
    try:
        return float(text_value)
    except ValueError:
        fail(f"--target must be a number (or 'match' with --ml), got {text_value!r}")


def _mine(features, feature_ids, truth, rare_class, rare_share, seeds, seed) -> None:
    if features is None or truth is None or rare_class is None:
        fail("--mine needs --features, --feature-ids, --truth and --rare-class", 2)
    from assay.simulation.mine import simulate_mine

    typer.echo(json.dumps(simulate_mine(features, feature_ids, truth, rare_class, rare_share=rare_share,
                                        seeds=seeds, seed=seed)))


@app.command()
@command
def simulate(
    answers: Annotated[Optional[Path], typer.Option("--answers", help="Real crowd answers: CSV item,worker,label (needed unless --teach).")] = None,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="True labels: CSV item,label.")] = None,
    policy: Annotated[str, typer.Option(help="fixed (every item gets --overlap answers), adaptive, or routed (adaptive with skill-aware routing: each arriving worker gets the item where their answer adds the most).")] = "adaptive",
    arrivals: Annotated[Optional[str], typer.Option(help="items (the next task draws one of its real answers; default of fixed and adaptive) or workers (workers arrive in a random order, as often as they answered, and the hand-out picks among their real items; default of routed). Same --arrivals to compare policies.")] = None,
    overlap: Annotated[Optional[int], typer.Option(help="fixed: answers per item (default: all); adaptive: answers to start with (default 1).")] = None,
    target: Annotated[Optional[str], typer.Option(
        help="Target confidence (adaptive; also what 'resolved' means). Default 0.995. With --ml: a confidence, "
             "or 'match' (the default): whatever makes the labels as accurate as a 3-vote majority.")] = None,
    max_answers: Annotated[Optional[int], typer.Option("--max-answers", help="adaptive: most answers per item (default: the data's median per item).")] = None,
    method: Annotated[str, typer.Option(help="Final aggregation: auto, mv, wawa, ds, one-coin, glad, mace or bwa.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (item order, answer draws).")] = 0,
    ml: Annotated[bool, typer.Option("--ml", help="Run the whole loop with the in-loop model (needs the ml extra).")] = False,
    items: Annotated[Optional[Path], typer.Option("--items", help="--ml: CSV item,text (embedded with the default text model); spans/boxes: JSON lines as for aggregate.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="--ml: folder of images, file name stem = item id.")] = None,
    features: Annotated[Optional[Path], typer.Option("--features", help="--ml: precomputed features, an .npy (n, d) array.")] = None,
    feature_ids: Annotated[Optional[Path], typer.Option("--feature-ids", help="--ml: one item id per line, aligned with --features.")] = None,
    auto_target: Annotated[float, typer.Option("--auto-target", help="--ml: accuracy auto-labels must reach (Clopper-Pearson, 95 %).")] = 0.95,
    audit_rate: Annotated[float, typer.Option("--audit-rate", help="--ml: share of auto-labels still sent to people.")] = 0.05,
    model: Annotated[Optional[str], typer.Option("--model", help="--ml: embedding model (default per input kind).")] = None,
    export: Annotated[Optional[Path], typer.Option("--export", help="Also write the simulated project's export here (jsonl, csv or parquet by suffix): the labels a user would get.")] = None,
    teach: Annotated[bool, typer.Option("--teach", help="Teaching by nuance end to end with synthetic annotators (no --answers): weak nuances detected on hidden checks, teaching served, before/after measured vs simulated. JSON on stdout, a summary on stderr.")] = False,
    teach_rate: Annotated[float, typer.Option("--teach-rate", help="--teach: chance that one teaching item fixes a weak nuance (the simulated effect; not the project's teach_rate).")] = 0.5,
    annotators: Annotated[int, typer.Option("--annotators", help="--teach: synthetic annotators.")] = 30,
    weak_share: Annotated[float, typer.Option("--weak-share", help="--teach: share of (annotator, nuance) pairs that are weak.")] = 0.3,
    kind: Annotated[Optional[str], typer.Option(help="spans or boxes: --answers are JSON lines as `assay aggregate` reads them (default for a .jsonl file: read from the rows); --truth then JSON lines {item, spans|boxes}, --items as for aggregate.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Needle mining: from --seeds examples of --rare-class, search -> label -> re-rank until 80 % of the class is found (needs --features, --feature-ids, --truth; no --answers).")] = False,
    rare_class: Annotated[Optional[str], typer.Option("--rare-class", help="--mine: the class to find (a label in --truth).")] = None,
    rare_share: Annotated[float, typer.Option("--rare-share", help="--mine: the rare class is down-sampled to this share of the pool.")] = 0.01,
    seeds: Annotated[int, typer.Option("--seeds", help="--mine: known examples to start from.")] = 5,
):
    """Replay real crowd answers through the real hand-out and aggregation; print one JSON object."""
    if mine:
        _mine(features, feature_ids, truth, rare_class, rare_share, seeds, seed)
        return
    if teach:
        if answers is not None or truth is not None or ml:
            fail("--teach runs synthetic annotators: it takes no --answers, --truth or --ml", 2)
        from assay.simulation.teach import simulate_teach, summary_text

        r = simulate_teach(teach_rate=teach_rate, annotators=annotators, weak_share=weak_share, seed=seed)
        typer.echo(summary_text(r), err=True)
        typer.echo(json.dumps(r))
        return
    if answers is None:
        fail("--answers is required (or --teach for the synthetic teaching simulation)", 2)
    if kind is not None or answers.suffix.lower() in (".jsonl", ".ndjson"):
        from assay.simulation.shapes import simulate_shapes

        typer.echo(json.dumps(simulate_shapes(
            answers, truth, items=items, kind=kind, policy=policy, overlap=overlap,
            target=None if target is None else _confidence(target), max_answers=max_answers, method=method, seed=seed)))
        return
    if ml:
        from assay.simulation.ml import simulate_ml

        if truth is None:
            fail("--ml needs --truth")
        r = simulate_ml(answers, truth, items_path=items, images_dir=images, features_path=features,
                        feature_ids_path=feature_ids, target="match" if target in (None, "match") else _confidence(target),
                        max_answers=max_answers,
                        auto_target=auto_target, audit_rate=audit_rate, seed=seed, model=model, export_path=export)
        typer.echo(json.dumps(r))
        return
    from assay.simulation.crowd import DEFAULT_TARGET
    from assay.simulation.crowd import simulate as run

    r = run(answers, truth, policy=policy, overlap=overlap, target=DEFAULT_TARGET if target is None else _confidence(target),
            max_answers=max_answers, method=method, seed=seed, export_path=export, arrivals=arrivals)
    typer.echo(json.dumps(r))
