"""The qualification exam (:mod:`assay.engine.exam`): ``assay exam report|reset``.

A project asks for an exam with ``assay project create … --exam-size N`` (or
``assay project set P exam_size=N``) and gets its items from gold with
``purpose`` ``exam`` (``assay project gold``)."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.cli.common import Home, app, command, find_project, open_ws, print_json, when

exam_app = typer.Typer(help="Qualification exam: who passed, failed or is taking it; grant another attempt.",
                       no_args_is_help=True)
app.add_typer(exam_app, name="exam")


def _score(v) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


@exam_app.command("report")
@command
def exam_report(
    project: str,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON (what GET .../exam returns).")] = False,
    home: Home = None,
):
    """Each annotator's exam status, attempts, scores and attempts left."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.exam_report(p["id"])
    if as_json:
        print_json(r)
        return
    if r["exam_size"] is None:
        typer.echo(f"{p['name']!r} has no qualification exam (exam_size is not set); "
                   f"{r['exam_items']} exam items")
    else:
        typer.echo(f"{p['name']!r}: {r['exam_size']} questions per attempt from {r['exam_items']} exam items, "
                   f"pass at {_score(r['exam_pass'])}, {r['exam_retries']} retries")
    if not r["annotators"]:
        typer.echo("nobody has started the exam")
        return
    typer.echo(f"{'user':<24} {'status':<7} {'attempts':>8} {'best':>5} {'last':>5} {'left':>4}  last attempt")
    for a in r["annotators"]:
        last = a["attempts"][-1] if a["attempts"] else None
        progress = "-" if last is None else (
            f"{last['correct']}/{last['questions']} right, {when(last['finished_at'])}" if last["finished_at"]
            else f"running: {last['answered']}/{last['questions']} answered")
        name = a["username"] or f"#{a['user_id']}"
        typer.echo(f"{name:<24} {a['status']:<7} {len(a['attempts']):>8} {_score(a['best_score']):>5} "
                   f"{_score(last and last['score']):>5} {a['attempts_left']:>4}  {progress}")


@exam_app.command("reset")
@command
def exam_reset(project: str, username: Annotated[str, typer.Argument(help="The annotator's username.")],
               home: Home = None):
    """Grant one more attempt to an annotator refused after failing the exam (audited: exam.reset)."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.reset_exam(p["id"], username)
    typer.echo(f"{r['username']} may take the exam of {p['name']!r} again (attempts granted: {r['granted']})")
