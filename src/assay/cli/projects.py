"""Labeling projects: ``assay project create|list|add-member|gold|set|unpause|backend|predict|label-errors``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, command, fail, find_project, open_ws, print_json, project_app


@project_app.command("create")
@command
def project_create(
    name: str,
    dataset: Annotated[str, typer.Option(help="Dataset to label.")],
    classes: Annotated[str, typer.Option(help="Comma-separated class names, e.g. pos,neg.")],
    kind: Annotated[str, typer.Option(
        help="Label kind (assay.kinds): single, multi (multi-label), spans (text spans, NER), "
             "boxes or polygons (shapes on images).")] = "single",
    option: Annotated[Optional[list[str]], typer.Option(
        help="A schema option of the kind, KEY=VALUE (JSON values), e.g. --option overlap=true "
             "(spans may share characters).")] = None,
    overlap: Annotated[int, typer.Option(help="Answers wanted per item.")] = 1,
    instructions: Annotated[str, typer.Option(help="Instructions shown to annotators.")] = "",
    show_fields: Annotated[str, typer.Option(help="Comma-separated metadata fields annotators may see.")] = "",
    lease_seconds: Annotated[int, typer.Option(help="How long a task stays reserved for an annotator.")] = 600,
    target_confidence: Annotated[Optional[float], typer.Option(
        help="Adaptive redundancy: ask for more answers while an item's confidence is below this (e.g. 0.95).")] = None,
    max_answers: Annotated[Optional[int], typer.Option(help="Adaptive redundancy: most answers per item.")] = None,
    gold_rate: Annotated[Optional[float], typer.Option(help="Share of tasks that are gold questions (default 0.05).")] = None,
    gold_min_accuracy: Annotated[Optional[float], typer.Option(
        help="Pause annotators whose gold accuracy falls below this (default: never pause).")] = None,
    gold_min_answers: Annotated[Optional[int], typer.Option(help="Gold answers before the bar applies (default 5).")] = None,
    exam_size: Annotated[Optional[int], typer.Option(
        help="Qualification exam: exam items (gold with purpose 'exam') per attempt before any real work "
             "(default: no exam).")] = None,
    exam_pass: Annotated[Optional[float], typer.Option(help="Exam: share right to pass (default 0.8).")] = None,
    exam_retries: Annotated[Optional[int], typer.Option(help="Exam: attempts after a failed one (default 1).")] = None,
    home: Home = None,
):
    """Create a labeling project over a dataset."""
    ws = open_ws(home)
    p = ws.create_project(
        name, dataset, [c.strip() for c in classes.split(",") if c.strip()], kind=kind,
        overlap=overlap, instructions=instructions, lease_seconds=lease_seconds,
        show_fields=[f.strip() for f in show_fields.split(",") if f.strip()],
        target_confidence=target_confidence, max_answers=max_answers, gold_rate=gold_rate,
        gold_min_accuracy=gold_min_accuracy, gold_min_answers=gold_min_answers,
        exam_size=exam_size, exam_pass=exam_pass, exam_retries=exam_retries,
        kind_options=_options(option) if option else None,
    )
    typer.echo(f"project {p['name']!r} created (id {p['id']}) with {ws.progress(p['id'])['tasks']} tasks")


def _options(given: list[str]) -> dict:
    """``KEY=VALUE`` pairs as a dict; a value is read as JSON (``true``, ``3``), else kept as text."""
    import json

    out = {}
    for pair in given:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            fail(f"--option takes KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@project_app.command("list")
@command
def project_list(home: Home = None):
    """List projects with their progress."""
    ws = open_ws(home)
    for p in ws.list_projects():
        pr = ws.progress(p["id"])
        typer.echo(f"{p['id']:>4}  {p['name']:<30} {pr['done']}/{pr['tasks']} done, {pr['answers']} answers")


@project_app.command("add-member")
@command
def project_add_member(project: str, usernames: list[str], home: Home = None):
    """Let users work on a project."""
    ws = open_ws(home)
    p = ws.get_project(int(project) if project.isdigit() else project)
    people = [ws.get_user(u) for u in usernames]  # every name checked before anybody is added
    for u in people:
        ws.add_member(p["id"], u["id"])
    typer.echo(f"{len(usernames)} member(s) added to {p['name']!r}")


@project_app.command("gold")
@command
def project_gold(
    project: str,
    path: Annotated[Path, typer.Argument(
        help="CSV or JSONL with item_id (or the --key column) and label; spans: spaCy JSONL or CoNLL (.conll); "
        "boxes/polygons: a COCO .json, or a YOLO or Pascal VOC folder (or a .zip of one).")],
    key: Annotated[Optional[str], typer.Option(
        help="Match items on this metadata field (a column of the imported data) instead of item_id.")] = None,
    home: Home = None,
):
    """Import gold answers; their items become hidden gold questions."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.import_gold_file(p["id"], path, key=key)
    typer.echo(f"gold for {p['name']!r}: {r['added']} added, {r['updated']} updated, {r['gold']} in all")
    for w in r.get("warnings", []):
        typer.echo(f"warning: {w}", err=True)


def _settings_help() -> str:
    from assay.engine import settings

    rows = "\n".join(f"  {line}" for line in settings.describe().splitlines())
    return ("Change a project's settings: KEY=VALUE pairs, checked together; a bad value changes nothing. "
            "Values are read by the setting's type; null turns an optional setting off (or back to its "
            "default); show_fields takes comma-separated names. "
            "Example: assay project set sentiment gold_rate=0.1 ml_space=<space> auto_label_target=0.95"
            f"\n\n\b\nSettings:\n{rows}")


@project_app.command("set", help=_settings_help())
@command
def project_set(
    project: str,
    pairs: Annotated[Optional[list[str]], typer.Argument(metavar="KEY=VALUE...", show_default=False,
                                                         help="Settings to change (listed below).")] = None,
    gold_rate: Annotated[Optional[float], typer.Option(help="Same as gold_rate=VALUE.")] = None,
    gold_min_accuracy: Annotated[Optional[float], typer.Option(help="Same as gold_min_accuracy=VALUE.")] = None,
    no_pause: Annotated[bool, typer.Option("--no-pause", help="Same as gold_min_accuracy=null.")] = False,
    gold_min_answers: Annotated[Optional[int], typer.Option(help="Same as gold_min_answers=VALUE.")] = None,
    exam_size: Annotated[Optional[int], typer.Option(help="Same as exam_size=VALUE (exam_size=null: no exam).")] = None,
    exam_pass: Annotated[Optional[float], typer.Option(help="Same as exam_pass=VALUE.")] = None,
    exam_retries: Annotated[Optional[int], typer.Option(help="Same as exam_retries=VALUE.")] = None,
    home: Home = None,
):
    from assay.engine import settings

    changes = {k: v for k, v in (("gold_rate", gold_rate), ("gold_min_accuracy", gold_min_accuracy),
                                 ("gold_min_answers", gold_min_answers), ("exam_size", exam_size),
                                 ("exam_pass", exam_pass), ("exam_retries", exam_retries)) if v is not None}
    if no_pause:
        changes["gold_min_accuracy"] = None
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            fail(f"{pair!r} is not KEY=VALUE (see assay project set --help)", 2)
        changes[key.strip()] = settings.parse_value(key.strip(), value)
    if not changes:
        fail("nothing to change: give KEY=VALUE pairs (assay project set --help lists the settings)", 2)
    ws = open_ws(home)
    p = ws.update_project(find_project(ws, project)["id"], **changes)
    print_json({k: p[k] if k in p else p["schema"].get(k) for k in changes})


@project_app.command("unpause")
@command
def project_unpause(project: str, username: Annotated[str, typer.Argument(help="The annotator's username.")],
                    home: Home = None):
    """Lift an annotator's pause (their gold record starts a fresh window)."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.lift_pause(p["id"], username)
    typer.echo(f"{r['username']} may work on {p['name']!r} again")


@project_app.command("backend")
@command
def project_backend(
    project: str,
    url: Annotated[str, typer.Argument(
        help="A Label Studio compatible ML backend (http://host:9090), or 'none' to disconnect. "
             "(python:<name> models are registered in your own process: use ws.connect_backend there.)")],
    public_url: Annotated[Optional[str], typer.Option(
        help="This server's address as the backend reaches it (sent to /setup as hostname).")] = None,
    home: Home = None,
):
    """Connect a project to a model (checks /health and /setup first)."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.connect_backend(p["id"], None if url.strip().lower() in ("", "none", "off") else url, base_url=public_url)
    if r["url"] is None:
        typer.echo(f"{p['name']!r} has no ML backend now")
    else:
        typer.echo(f"{p['name']!r} uses the ML backend at {r['url']} (model version {r['model_version']})")


@project_app.command("predict")
@command
def project_predict(
    project: str,
    batch: Annotated[int, typer.Option(help="Items per /predict call.")] = 64,
    public_url: Annotated[Optional[str], typer.Option(
        help="This server's address, for image URLs the backend fetches.")] = None,
    home: Home = None,
):
    """Store the ML backend's prediction for every item of a project."""
    ws = open_ws(home)
    p = find_project(ws, project)
    print_json(ws.backend_predict(p["id"], batch=batch, base_url=public_url))


@project_app.command("label-errors")
@command
def project_label_errors(
    project: str,
    method: Annotated[str, typer.Option(
        help="crowd: the consensus of several answers with the model's predictions; model: one answer per "
             "item against the model's prediction (confident learning); auto: picks.")] = "auto",
    limit: Annotated[int, typer.Option(help="Show at most this many items, most probably wrong first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
    home: Home = None,
):
    """Items whose label is probably wrong, most probable first."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.label_errors(p["id"], method=method, limit=limit)
    if as_json:
        print_json(r)
        return
    typer.echo(f"{p['name']!r} ({r['method']}): {r['items_scored']} items scored, {r['flagged']} flagged "
               f"(about {r['estimated_errors']} wrong labels expected)")
    for it in r["items"]:
        mark = "!" if it["flagged"] else " "
        typer.echo(f"{mark} item {it['item_id']}: {it['label']} (quality {it['quality']:.3f}; "
                   f"else {it['suggested']}; {it['answers']} answers)")
