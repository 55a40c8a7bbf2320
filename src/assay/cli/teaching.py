"""Teaching by nuance (:mod:`assay.engine.teach`): ``assay teaching report|refresh``.

A project teaches with ``assay project set P teach_bar=0.7`` and teaching
items imported as gold with ``purpose`` ``teach`` (``assay project gold``)."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.cli.common import Home, app, command, find_project, open_ws, print_json

teaching_app = typer.Typer(help="Teaching by nuance: who is taught what, and whether it worked.",
                           no_args_is_help=True)
app.add_typer(teaching_app, name="teaching")


def _share(side: dict | None) -> str:
    if not side or side.get("skill") is None:
        return "-"
    lo, hi = side["interval"]
    return f"{100 * side['skill']:.0f}% ({side['right']}/{side['checks']}; {100 * lo:.0f}-{100 * hi:.0f})"


def _change(c: dict | None) -> str:
    if not c or c.get("skill") is None:
        return "-"
    lo, hi = c["interval"]
    return f"{100 * c['skill']:+.0f} pts ({100 * lo:+.0f} to {100 * hi:+.0f})"


@teaching_app.command("report")
@command
def teaching_report(
    project: str,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON (what GET .../teaching returns).")] = False,
    home: Home = None,
):
    """Who is taught which nuance, and skill on its hidden checks before vs after, with 90 % intervals."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.teaching_report(p["id"])
    if as_json:
        print_json(r)
        return
    if r["teach_bar"] is None:
        typer.echo(f"{p['name']!r} does not teach (teach_bar is not set)")
        return
    items = ", ".join(f"{k} ({v})" for k, v in sorted(r["teaching_items"].items())) or "none"
    typer.echo(f"{p['name']!r}: bar {100 * r['teach_bar']:.0f}%, {100 * r['teach_rate']:.0f}% of tasks while "
               f"a need is open, {r['teach_items']} per nuance; teaching items: {items}")
    if not r["needs"]:
        typer.echo("no weak nuance found yet")
        return
    typer.echo(f"{'user':<16} {'nuance':<20} {'status':<9} {'taught':>6}  {'before (all checks)':<22} "
               f"{'since detection':<22} {'after':<22} change since detection")
    for n in r["needs"]:
        name = n["username"] or f"#{n['user_id']}"
        typer.echo(f"{name:<16} {n['nuance']:<20} {n['status']:<9} {n['taught']:>6}  "
                   f"{_share(n['before']):<22} {_share(n['since_detection']):<22} {_share(n['after']):<22} "
                   f"{_change(n['change_since_detection'])}")
    pooled = r["project"]
    if pooled:
        typer.echo(f"project, {pooled['needs']} need(s) taught: change {_change(pooled['change_since_detection'])} "
                   f"(before = checks after detection); counting the checks that found the weakness: "
                   f"{_change(pooled['change'])} (overstates)")


@teaching_app.command("refresh")
@command
def teaching_refresh(project: str, home: Home = None):
    """Run a detection round now (the server runs one in the background): needs opened and measured."""
    ws = open_ws(home)
    p = find_project(ws, project)
    r = ws.refresh_teaching(p["id"])
    typer.echo(f"{p['name']!r}: {len(r['opened'])} need(s) opened, {len(r['measured'])} measured")
    for kind in ("opened", "measured"):
        for n in r[kind]:
            typer.echo(f"  {kind}: user #{n['user_id']} on {n['nuance']!r}")
