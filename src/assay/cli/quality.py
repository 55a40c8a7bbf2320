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


@app.command()
@command
def aggregate(
    answers: Annotated[Path, typer.Argument(help="CSV with a header item,worker,label (any ids and labels).")],
    method: Annotated[str, typer.Option(help="auto, mv, wawa, ds, one-coin, glad, mace, bwa, bcc, ebcc or minimax.")] = "auto",
    gold: Annotated[Optional[Path], typer.Option(help="CSV item,label of known true labels (kept as given).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write item,label,confidence here (default: stdout).")] = None,
    multi_label: Annotated[bool, typer.Option(
        "--multi-label", help="Each label cell is a set of classes joined by --sep (binary relevance).")] = False,
    sep: Annotated[str, typer.Option(help="Separator of classes in a multi-label cell.")] = "|",
):
    """Infer one label per item from several people's answers (truth inference)."""
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


@app.command()
@command
def simulate(
    answers: Annotated[Path, typer.Option("--answers", help="Real crowd answers: CSV item,worker,label.")],
    truth: Annotated[Optional[Path], typer.Option("--truth", help="True labels: CSV item,label.")] = None,
    policy: Annotated[str, typer.Option(help="fixed (every item gets --overlap answers) or adaptive.")] = "adaptive",
    overlap: Annotated[Optional[int], typer.Option(help="fixed: answers per item (default: all); adaptive: answers to start with (default 1).")] = None,
    target: Annotated[Optional[str], typer.Option(
        help="Target confidence (adaptive; also what 'resolved' means). Default 0.995. With --ml: a confidence, "
             "or 'match' (the default): whatever makes the labels as accurate as a 3-vote majority.")] = None,
    max_answers: Annotated[Optional[int], typer.Option("--max-answers", help="adaptive: most answers per item (default: the data's median per item).")] = None,
    method: Annotated[str, typer.Option(help="Final aggregation: auto, mv, wawa, ds, one-coin, glad, mace or bwa.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (item order, answer draws).")] = 0,
    ml: Annotated[bool, typer.Option("--ml", help="Run the whole loop with the in-loop model (needs the ml extra).")] = False,
    items: Annotated[Optional[Path], typer.Option("--items", help="--ml: CSV item,text (embedded with the default text model).")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="--ml: folder of images, file name stem = item id.")] = None,
    features: Annotated[Optional[Path], typer.Option("--features", help="--ml: precomputed features, an .npy (n, d) array.")] = None,
    feature_ids: Annotated[Optional[Path], typer.Option("--feature-ids", help="--ml: one item id per line, aligned with --features.")] = None,
    auto_target: Annotated[float, typer.Option("--auto-target", help="--ml: accuracy auto-labels must reach (Clopper-Pearson, 95 %).")] = 0.95,
    audit_rate: Annotated[float, typer.Option("--audit-rate", help="--ml: share of auto-labels still sent to people.")] = 0.05,
    model: Annotated[Optional[str], typer.Option("--model", help="--ml: embedding model (default per input kind).")] = None,
    export: Annotated[Optional[Path], typer.Option("--export", help="Also write the simulated project's export here (jsonl, csv or parquet by suffix): the labels a user would get.")] = None,
):
    """Replay real crowd answers through the real hand-out and aggregation; print one JSON object."""
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
            max_answers=max_answers, method=method, seed=seed, export_path=export)
    typer.echo(json.dumps(r))
