"""The ``assay`` command: a thin shell over :class:`assay.Workspace`.

Errors are one readable line on stderr (exit 1); bad usage exits 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.errors import AssayError

app = typer.Typer(
    name="assay",
    help="assay — turn raw data into trusted labeled datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
project_app = typer.Typer(help="Labeling projects.", no_args_is_help=True)
user_app = typer.Typer(help="People and their API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: list, issue, revoke.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
user_app.add_typer(token_app, name="token")

Home = Annotated[
    Optional[Path],
    typer.Option("--home", envvar="ASSAY_HOME", help="Workspace folder (default ./assay-data)."),
]


def _ws(home: Path | None):
    from assay.workspace import Workspace

    return Workspace(home)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): still record the CLI
        return "?"


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def command(f):
    """Turn domain errors into one line on stderr."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from assay import audit

        try:
            with audit.acting({"id": None, "username": f"cli:{_os_user()}"}):  # the audit log names the CLI's user
                return f(*args, **kwargs)
        except AssayError as exc:
            _fail(exc.message)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


def _print(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# ---------------------------------------------------------------- commands


@app.command()
@command
def init(home: Home = None):
    """Create (or open and migrate) a workspace."""
    ws = _ws(home)
    typer.echo(f"workspace ready: {ws.home} ({ws.db.dialect})")


@app.command("import")
@command
def import_(
    dataset: Annotated[str, typer.Argument(help="Dataset name (created if missing).")],
    path: Annotated[Path, typer.Argument(help="A .csv/.jsonl/.parquet file, a .zip of images, or a folder of images.")],
    text_column: Annotated[str, typer.Option(help="Column holding the text.")] = "text",
    source: Annotated[Optional[str], typer.Option(help="Where the data came from (provenance).")] = None,
    license: Annotated[Optional[str], typer.Option(help="License of the data.")] = None,
    consent: Annotated[Optional[str], typer.Option(help="Consent note for the data.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip files that are not images instead of failing.")] = False,
    home: Home = None,
):
    """Import items into a dataset. All or nothing; re-importing adds nothing."""
    ws = _ws(home)
    r = ws.import_file(dataset, path, text_column=text_column, source=source, license=license,
                       consent=consent, progress=sys.stderr.isatty(),
                       on_invalid="skip" if skip_invalid else "error", create=True)
    typer.echo(f"imported {r['added']} new items into {dataset!r} ({r['skipped']} already there)")


@project_app.command("create")
@command
def project_create(
    name: str,
    dataset: Annotated[str, typer.Option(help="Dataset to label.")],
    classes: Annotated[str, typer.Option(help="Comma-separated class names, e.g. pos,neg.")],
    kind: Annotated[str, typer.Option(help="Label kind (assay.kinds): single or multi (multi-label).")] = "single",
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
    home: Home = None,
):
    """Create a labeling project over a dataset."""
    ws = _ws(home)
    p = ws.create_project(
        name, dataset, [c.strip() for c in classes.split(",") if c.strip()], kind=kind,
        overlap=overlap, instructions=instructions, lease_seconds=lease_seconds,
        show_fields=[f.strip() for f in show_fields.split(",") if f.strip()],
        target_confidence=target_confidence, max_answers=max_answers, gold_rate=gold_rate,
        gold_min_accuracy=gold_min_accuracy, gold_min_answers=gold_min_answers,
    )
    typer.echo(f"project {p['name']!r} created (id {p['id']}) with {ws.progress(p['id'])['tasks']} tasks")


@project_app.command("list")
@command
def project_list(home: Home = None):
    """List projects with their progress."""
    ws = _ws(home)
    for p in ws.list_projects():
        pr = ws.progress(p["id"])
        typer.echo(f"{p['id']:>4}  {p['name']:<30} {pr['done']}/{pr['tasks']} done, {pr['answers']} answers")


@project_app.command("add-member")
@command
def project_add_member(project: str, usernames: list[str], home: Home = None):
    """Let users work on a project."""
    ws = _ws(home)
    p = ws.get_project(int(project) if project.isdigit() else project)
    people = [ws.get_user(u) for u in usernames]  # every name checked before anybody is added
    for u in people:
        ws.add_member(p["id"], u["id"])
    typer.echo(f"{len(usernames)} member(s) added to {p['name']!r}")


@app.command()
@command
def embed(
    dataset: str,
    model: Annotated[Optional[str], typer.Option(
        help="Model name or path (default: all-MiniLM-L6-v2 for text, efficientnet-lite0 for images).")] = None,
    home: Home = None,
):
    """Embed a dataset's items that have no vector yet (needs the ml extra of assay)."""
    ws = _ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    r = ws.embed(ds["id"], model=model)
    typer.echo(f"{r['embedded']} items embedded, {r['already']} already had a vector "
               f"({r['model']}, {r['dim']}-d, {r['seconds']} s) -> vectors/{r['space']}")


def _project(ws, project: str) -> dict:
    return ws.get_project(int(project) if project.isdigit() else project)


def _aggregate_multilabel(answers: Path, method: str, gold: Path | None, out: Path | None, sep: str) -> None:
    import sys

    from assay.quality.io import read_answers_csv, read_gold_csv
    from assay.quality.multilabel import aggregate_multilabel

    if not sep:
        _fail("--sep must not be empty")
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


@project_app.command("gold")
@command
def project_gold(
    project: str,
    path: Annotated[Path, typer.Argument(help="CSV or JSONL with item_id (or the --key column) and label.")],
    key: Annotated[Optional[str], typer.Option(
        help="Match items on this metadata field (a column of the imported data) instead of item_id.")] = None,
    home: Home = None,
):
    """Import gold answers; their items become hidden gold questions."""
    ws = _ws(home)
    p = _project(ws, project)
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
    home: Home = None,
):
    from assay.engine import settings

    changes = {k: v for k, v in (("gold_rate", gold_rate), ("gold_min_accuracy", gold_min_accuracy),
                                 ("gold_min_answers", gold_min_answers)) if v is not None}
    if no_pause:
        changes["gold_min_accuracy"] = None
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            _fail(f"{pair!r} is not KEY=VALUE (see assay project set --help)", 2)
        changes[key.strip()] = settings.parse_value(key.strip(), value)
    if not changes:
        _fail("nothing to change: give KEY=VALUE pairs (assay project set --help lists the settings)", 2)
    ws = _ws(home)
    p = ws.update_project(_project(ws, project)["id"], **changes)
    _print({k: p[k] if k in p else p["schema"].get(k) for k in changes})


@project_app.command("unpause")
@command
def project_unpause(project: str, username: Annotated[str, typer.Argument(help="The annotator's username.")],
                    home: Home = None):
    """Lift an annotator's pause (their gold record starts a fresh window)."""
    ws = _ws(home)
    p = _project(ws, project)
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
    ws = _ws(home)
    p = _project(ws, project)
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
    ws = _ws(home)
    p = _project(ws, project)
    _print(ws.backend_predict(p["id"], batch=batch, base_url=public_url))


@user_app.command("add")
@command
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin, reviewer or annotator.")] = "annotator",
    password: Annotated[Optional[str], typer.Option(help="Password for the browser login.")] = None,
    project: Annotated[Optional[list[str]], typer.Option(help="Add to this project (repeatable).")] = None,
    home: Home = None,
):
    """Add a user and print their API token (shown once). All or nothing:
    an unknown project adds nobody."""
    ws = _ws(home)
    user, token = ws.add_user(username, role, password,
                              projects=[int(p) if p.isdigit() else p for p in project or []])
    typer.echo(f"user {user['username']!r} ({role}) added; API token: {token}")


@user_app.command("list")
@command
def user_list(home: Home = None):
    """List users: id, name, role, whether active."""
    ws = _ws(home)
    for u in ws.list_users():
        typer.echo(f"{u['id']:>5}  {u['username']:<30} {u['role']:<10} {'active' if u['active'] else 'inactive'}")


@user_app.command("role")
@command
def user_role(username: str, role: Annotated[str, typer.Argument(help="admin, reviewer or annotator.")],
              home: Home = None):
    """Change a user's role (takes effect at once)."""
    ws = _ws(home)
    u = ws.set_role(username, role)
    typer.echo(f"{u['username']!r} is now {u['role']}")


def _when(t) -> str:
    import datetime

    return "-" if t is None else datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


@token_app.command("list")
@command
def token_list(
    username: Annotated[Optional[str], typer.Argument(help="Only this user's tokens.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also expired and revoked tokens.")] = False,
    home: Home = None,
):
    """List API and session tokens (never their secrets)."""
    ws = _ws(home)
    rows = ws.list_tokens(username, include_inactive=all_)
    typer.echo(f"{'id':>5}  {'user':<20} {'name':<16} {'kind':<8} {'created':<16} {'last used':<16} "
               f"{'expires':<16} status")
    for t in rows:
        state = "revoked" if t["revoked_at"] else ("active" if t["active"] else "expired")
        typer.echo(f"{t['id']:>5}  {t['username']:<20} {t['name'] or '':<16} {t['kind']:<8} "
                   f"{_when(t['created_at']):<16} {_when(t['last_used_at']):<16} {_when(t['expires_at']):<16} {state}")


@token_app.command("new")
@command
def token_new(
    username: str,
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "cli",
    expires_days: Annotated[Optional[float], typer.Option(help="Days until it expires (default: never).")] = None,
    home: Home = None,
):
    """Issue a new API token for a user and print it (shown once)."""
    ws = _ws(home)
    token = ws.create_token(username, name, expires_days=expires_days)
    typer.echo(f"new API token for {ws.get_user(username)['username']!r}: {token}")


@token_app.command("revoke")
@command
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see `assay user token list`).")],
                 home: Home = None):
    """Revoke a token; it stops working at once (other server processes: within 5 s)."""
    ws = _ws(home)
    r = ws.revoke_token(token_id)
    typer.echo(f"token {r['id']} ({r['name']}) revoked")


@app.command("audit")
@command
def audit_(
    action: Annotated[Optional[str], typer.Option(help="Only this action (a prefix when it ends with '.', e.g. token.).")] = None,
    actor: Annotated[Optional[str], typer.Option(help="Only what this user (name or id, or cli:NAME) did.")] = None,
    target_kind: Annotated[Optional[str], typer.Option(help="project, user, token, dataset or address.")] = None,
    target_id: Annotated[Optional[int], typer.Option(help="Only this target id.")] = None,
    limit: Annotated[int, typer.Option(help="Records per page.")] = 50,
    before: Annotated[Optional[int], typer.Option(help="Records older than this id (paging).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    home: Home = None,
):
    """Read the audit log, newest first: who did what, when, to what."""
    ws = _ws(home)
    rows, nxt = ws.audit_log(before=before, limit=limit, action=action, actor=actor,
                             target_kind=target_kind, target_id=target_id)
    for r in rows:
        if as_json:
            typer.echo(json.dumps(r, default=str))
        else:
            target = f"{r['target_kind'] or ''} {r['target_id'] or ''} {r['target'] or ''}".strip()
            typer.echo(f"{r['id']:>6}  {_when(r['created_at'])}  {r['actor'] or '-':<16} {r['action']:<15} "
                       f"{target}  {json.dumps(r['details'], default=str)}")
    if nxt is not None and not as_json:
        typer.echo(f"(more: --before {nxt})", err=True)


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
    ws = _ws(home)
    report = ws.doctor(None if project is None else _project(ws, project)["id"], fix=fix)
    drift = report["drift"]
    if as_json:
        _print(report)
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
    ws = _ws(home)
    _print(ws.status())


@app.command()
@command
def export(
    project: str,
    out: Annotated[Path, typer.Argument(help="Output file: .jsonl, .csv or .parquet.")],
    format: Annotated[Optional[str], typer.Option(help="jsonl, csv or parquet (default: from the file name).")] = None,
    labeled_only: Annotated[bool, typer.Option(help="Only items with at least one answer.")] = False,
    home: Home = None,
):
    """Export a snapshot of a project's labels (streams; constant memory)."""
    ws = _ws(home)
    r = ws.export(int(project) if project.isdigit() else project, out, format, labeled_only=labeled_only)
    typer.echo(f"wrote {r['items']} items to {r['path']} ({r['format']})")


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
        _fail(f"--target must be a number (or 'match' with --ml), got {text_value!r}")


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
            _fail("--ml needs --truth")
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


@app.command()
@command
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (use >1 with PostgreSQL).")] = 1,
    home: Home = None,
):
    """Run the HTTP server (API, docs at /docs, labeling UI)."""
    ws = _ws(home)  # migrate once, up front
    ws.close()
    sock = _listen(host, port)  # before saying "serving": a port in use is one line, not a lie
    os.environ["ASSAY_HOME"] = str(ws.home)
    typer.echo(f"assay serving {ws.home} on http://{_url_host(host)}:{port}/  (API docs: /docs)")
    _run_server(sock, workers)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _listen(host: str, port: int):
    """A listening socket on host:port, or one line saying why not."""
    import errno
    import socket

    if not 0 <= port <= 65535:
        _fail(f"--port must be 0–65535, got {port}", 2)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            _fail(f"port {port} on {host} is already in use (another assay serve?): stop that server "
                  "or choose another --port")
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


def _run_server(sock, workers: int) -> None:
    import uvicorn

    options = dict(factory=True, log_level="warning", access_log=False, loop="auto", http="auto")
    if workers > 1:  # the workers inherit the bound socket
        uvicorn.run("assay.server:app_from_env", fd=sock.fileno(), workers=workers, **options)
    else:
        uvicorn.Server(uvicorn.Config("assay.server:app_from_env", **options)).run(sockets=[sock])


@app.command()
@command
def quickstart(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    data: Annotated[Optional[Path], typer.Option(help="Your own CSV/JSONL/Parquet (text column 'text') or image folder instead of the sample.")] = None,
    classes: Annotated[str, typer.Option(help="Classes of the demo project.")] = "positive,negative,neutral",
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set everything up but do not start the server.")] = False,
):
    """Create a workspace with a sample dataset, a demo project, an admin and
    two annotators, then start the server and print login links. Run again,
    it reuses the demo and prints fresh links; it never changes other data."""
    from assay.quickstart import login_link, setup_demo

    sock = None if no_serve else _listen(host, port)  # a port in use fails before anything is set up
    info = setup_demo(home, data=data, classes=[c.strip() for c in classes.split(",") if c.strip()])
    base = f"http://{_url_host(host)}:{port}"
    typer.echo(f"\nassay workspace: {info['home']}")
    if info["reused"]:
        typer.echo(f"using the existing demo project {info['project']['name']!r} (nothing imported): "
                   f"{info['tasks']} tasks, classes {info['classes']}")
    else:
        typer.echo(f"project {info['project']['name']!r}: {info['tasks']} tasks, classes {info['classes']}")
    typer.echo(f"\nOpen the labeling UI at {base}/  — log in with a link:")
    for u in info["users"]:
        typer.echo(f"  {u['role']:<10} {u['username']:<8} {login_link(base, u)}"
                   + (f"   (password: {u['password']})" if u.get("password") else ""))
    typer.echo(f"\nAdmin page: {base}/admin   API docs: {base}/docs")
    if sock is None:
        return
    typer.echo("Press Ctrl+C to stop.\n")
    os.environ["ASSAY_HOME"] = info["home"]
    _run_server(sock, 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
