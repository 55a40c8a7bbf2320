"""What the workspace holds: ``assay doctor`` (counters against answers),
``assay status``, ``assay report`` and ``assay export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, find_project, open_ws, print_json


@app.command()
@command
def doctor(
    project: Annotated[Optional[str], typer.Option(help="Only this project (name or id); default: all.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Repair the drift found (one transaction, audited).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    home: Home = None,
):
    """Recount task counters and consensus rows from answers and leases.
    Exit code 1 when drift is found and not fixed (for cron and CI)."""
    ws = open_ws(home)
    report = ws.doctor(None if project is None else find_project(ws, project)["id"], fix=fix)
    drift = report["drift"]
    if as_json:
        print_json(report)
    else:
        for d in drift:
            typer.echo(f"project {d['project_id']} task {d['task_id']} (item {d['item_id']}): "
                       f"{d['column']} is {d['stored']}, expected {d['expected']}")
        verdict = "repaired" if fix else "found"
        typer.echo(f"{len(drift)} drift(s) {verdict}" if drift else "counters agree with answers and leases")
    if drift and not fix:
        raise typer.Exit(1)


@app.command()
@command
def status(home: Home = None):
    """Show what the workspace holds."""
    ws = open_ws(home)
    print_json(ws.status())


def _print_report(r: dict) -> None:
    pr, ag, lab, acc = r["progress"], r["agreement"], r["labels"], r["accuracy"]
    scope = f"slice {r['slice']!r}" if r["slice"] is not None else "all items"
    typer.echo(f"{scope}: {r['items']} items, {pr['tasks']} tasks, {pr['done']} done, "
               f"{pr['remaining']} remaining, {pr['answers']} answers")
    pair = "-" if ag["pairwise"] is None else f"{ag['pairwise']:.3f}"
    alpha = "-" if ag["krippendorff_alpha"] is None else f"{ag['krippendorff_alpha']:.3f}"
    typer.echo(f"agreement: pairwise {pair} over {ag['items_with_several_answers']} items, alpha {alpha}")
    typer.echo(f"final labels: {lab['labeled']} ({', '.join(f'{k} {v}' for k, v in lab['sources'].items()) or '-'})")
    for name, n in lab["distribution"].items():
        typer.echo(f"  {name}: {n}")
    if acc["accuracy"] is None:
        typer.echo("accuracy: no answers on items with a known truth")
        return
    typer.echo(f"accuracy vs gold/reviews: {acc['accuracy']:.3f} ({acc['right']}/{acc['answers']} answers "
               f"on {acc['items_with_truth']} items)")
    for a in acc["annotators"]:
        typer.echo(f"  {a['username']}: {a['accuracy']:.3f} ({a['right']}/{a['answers']})")


@app.command()
@command
def report(
    project: str,
    slice_name: Annotated[Optional[str], typer.Option(
        "--slice", help="Only the items of this slice of the project's dataset.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    home: Home = None,
):
    """Progress, agreement, final labels and accuracy against gold/reviews (of a slice's items with --slice)."""
    ws = open_ws(home)
    r = ws.project_report(find_project(ws, project)["id"], slice=slice_name)
    if as_json:
        print_json(r)
    else:
        _print_report(r)


@app.command()
@command
def export(
    project: str,
    out: Annotated[Path, typer.Argument(help="Output file: .jsonl, .csv or .parquet (span projects: .conll too; "
                                             "boxes/polygons: .json for COCO, a folder for yolo/voc).")],
    format: Annotated[Optional[str], typer.Option(
        help="jsonl, csv or parquet; span projects also spacy (spaCy-compatible JSON lines) and conll "
             "(BIO tags); boxes and polygons also coco, yolo and voc (boxes); every kind labelstudio "
             "(Label Studio's JSON export) and hf (a Hugging Face datasets folder, the hf extra) "
             "(default: from the file name).")] = None,
    labeled_only: Annotated[bool, typer.Option(help="Only items with at least one answer.")] = False,
    slice_name: Annotated[Optional[str], typer.Option(
        "--slice", help="Only the items of this slice of the project's dataset (jsonl, csv, parquet).")] = None,
    tag: Annotated[Optional[str], typer.Option(help="Only items with this tag (jsonl, csv, parquet).")] = None,
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", help="Only items whose final label comes from this source (repeat): gold, review, consensus, "
                         "auto, majority (jsonl, csv, parquet).")] = None,
    home: Home = None,
):
    """Export a snapshot of a project's labels (streams; constant memory)."""
    ws = open_ws(home)
    r = ws.export(int(project) if project.isdigit() else project, out, format, labeled_only=labeled_only,
                  slice=slice_name, tag=tag, sources=source or None)
    typer.echo(f"wrote {r['items']} items to {r['path']} ({r['format']})")
