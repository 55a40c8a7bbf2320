"""Pre-labels from a project's own model: a Label Studio compatible ML
backend or a registered Python model (:mod:`assay.learn.ml_backend` speaks
the protocol; this module runs it over a project's items and stores what it
says).

:func:`predict` asks the model for a label for each item, in batches, and
stores them in ``predictions`` (one row per item) under integer model
versions (:func:`model_versions`); :func:`setup` sends the project's label
config. Functions take the :class:`~assay.store.Database` (or a connection)
and the project dict, never the workspace: the workspace resolves the
project, stores a changed backend URL through its settings, and keeps the
"any backend at all?" cache (:func:`any_backend`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, bindparam, text
from sqlalchemy.exc import IntegrityError

from assay import kinds
from assay.errors import InvalidInput
from assay.learn import ml_backend as _ml_backend

_ANY_BACKEND = text("SELECT 1 FROM projects WHERE ml_backend_url IS NOT NULL LIMIT 1")
_STORED_URL = text("SELECT ml_backend_url FROM projects WHERE id = :p")
_FIRST_ITEM_KIND = text("SELECT kind FROM items WHERE dataset_id = :d ORDER BY id LIMIT 1")
_ITEMS = ("SELECT i.id, i.kind, i.text, i.blob FROM tasks t JOIN items i ON i.id = t.item_id "
          "WHERE t.project_id = :p ")
_ITEMS_LISTED = text(_ITEMS + "AND t.item_id IN :ids ORDER BY t.item_id").bindparams(
    bindparam("ids", expanding=True))
_ITEMS_PAGE = text(_ITEMS + "AND t.item_id > :after ORDER BY t.item_id LIMIT :n")
_DROP_PREDICTIONS = text("DELETE FROM predictions WHERE project_id = :p AND item_id IN :ids").bindparams(
    bindparam("ids", expanding=True))
_ADD_PREDICTION = text(
    "INSERT INTO predictions (project_id, item_id, model_version, label, confidence, proba) "
    "VALUES (:p, :i, :v, :label, :c, :pr)"
).bindparams(bindparam("label", type_=JSON), bindparam("pr", type_=JSON))
_MODEL_ROWS = text(
    "SELECT version, threshold, auto_state, metrics FROM ml_models WHERE project_id = :p ORDER BY version"
).columns(metrics=JSON)
_ADD_MODEL = text(
    "INSERT INTO ml_models (project_id, version, trained_at, n_train, temperature, oof_accuracy, "
    "threshold, auto_state, metrics) VALUES (:p, :v, :now, 0, 1.0, NULL, :th, :st, :m)"
).bindparams(bindparam("m", type_=JSON))


def any_backend(db) -> bool:
    """Whether any project has an ML backend (one indexed read)."""
    with db.read() as conn:
        return conn.execute(_ANY_BACKEND).first() is not None


def stored_url(db, project_id: int) -> str | None:
    """The stored URL, password included (the project dict shows it redacted)."""
    with db.read() as conn:
        return conn.execute(_STORED_URL, {"p": project_id}).scalar()


def backend(db, p: dict):
    """A client for the project's backend; InvalidInput when it has none."""
    url = stored_url(db, p["id"])
    if not url:
        raise InvalidInput(f"project {p['name']!r} has no ML backend: set one first "
                           "(assay project backend, or PUT /api/projects/{id}/ml-backend)")
    return _ml_backend.connect(url)


def item_kind(db, p: dict) -> str:
    """What the project's items are (``text`` or ``image``), from its dataset's first item."""
    with db.read() as conn:
        kind = conn.execute(_FIRST_ITEM_KIND, {"d": p["dataset_id"]}).scalar()
    return kind or "text"


def setup(db, p: dict, client, *, base_url: str | None = None, access_token: str | None = None,
          extra_params: dict | None = None) -> dict:
    """Send the project's label config to the backend (``/setup``); returns
    ``{"project_id", "model_version", "response"}``."""
    payload = {"project": _ml_backend.project_uid(p),
               "schema": _ml_backend.label_config(p, item_kind(db, p)),
               "hostname": _ml_backend.public_url(base_url) or "", "access_token": access_token or "",
               "model_version": None, "extra_params": extra_params or {}}
    body = client.setup(payload)
    mv = body.get("model_version")
    return {"project_id": p["id"], "model_version": None if mv is None else str(mv)[:200], "response": body}


def items(db, p: dict, item_ids: Sequence[int] | None, batch: int) -> Iterator[list]:
    """The project's items in pages of ``batch`` (``id, kind, text, blob``):
    all of them, or ``item_ids`` (every one must be in the project)."""
    if item_ids is not None:
        wanted = sorted(set(item_ids))
        rows: list = []
        with db.read() as conn:
            for k in range(0, len(wanted), 1000):
                rows.extend(conn.execute(_ITEMS_LISTED, {"p": p["id"], "ids": wanted[k:k + 1000]}).all())
        missing = sorted(set(wanted) - {r.id for r in rows})
        if missing:
            raise InvalidInput(f"{len(missing)} item(s) are not in project {p['name']!r}: {missing[:10]}")
        for k in range(0, len(rows), batch):
            yield rows[k:k + batch]
        return
    after = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(_ITEMS_PAGE, {"p": p["id"], "after": after, "n": batch}).all()
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = rows[-1].id


# ---------------------------------------------------------------- prediction runs

@dataclass
class _Run:
    """What one prediction run has found so far."""

    names: list[str]
    label_kind: Any
    schema: dict
    stats: dict = field(default_factory=lambda: {
        "tasks": 0, "no_prediction": 0, "skipped_unknown": 0, "unknown_choices": 0, "without_score": 0})
    unknown_seen: dict[str, int] = field(default_factory=dict)
    #: (item id, label, confidence, backend version string)
    found: list[tuple[int, Any, float, str]] = field(default_factory=list)


def predict(db, blobs, p: dict, item_ids: Sequence[int] | None = None, batch: int = 64,
            base_url: str | None = None) -> dict:
    """Ask the project's model for a label for each item (all, or
    ``item_ids``), ``batch`` items per call, and store them in
    ``predictions`` (one row per item: label, confidence = the backend's
    score — 1.0 when it gives none — and ``model_version``, see
    :func:`model_versions`).

    All or nothing: an unreachable backend or a malformed answer raises and
    stores nothing. Choices the project does not have are skipped and
    counted. Returns counts: ``tasks`` (sent), ``stored``,
    ``no_prediction``, ``skipped_unknown`` (tasks with no known class),
    ``unknown_choices``, ``without_score``, ``model_versions`` ({backend
    version: int}) and ``seconds``.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 1000:
        raise InvalidInput("batch must be an integer from 1 to 1000")
    if item_ids is not None:
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in item_ids):
            raise InvalidInput("item_ids must be integers")
    client = backend(db, p)
    started = time.monotonic()
    run = _Run(names=[c["name"] for c in p["schema"]["classes"]], label_kind=kinds.of(p), schema=p["schema"])
    request = {"model_version": None, "project": _ml_backend.project_uid(p),
               "label_config": _ml_backend.label_config(p, item_kind(db, p)),
               "params": {"login": None, "password": None, "context": None}}
    for rows in items(db, p, item_ids, batch):
        if isinstance(client, _ml_backend.PythonBackend):
            outcomes = _python_outcomes(client, rows, blobs, run.label_kind)
        else:
            outcomes = _http_outcomes(client, rows, request, base_url, run.label_kind)
        _tally(run, rows, outcomes)
    if run.unknown_seen:
        _ml_backend.log.warning("project %s: %d choice(s) the project does not have were skipped: %s",
                                p["id"], run.stats["unknown_choices"],
                                ", ".join(f"{k!r}×{v}" for k, v in sorted(run.unknown_seen.items())[:10]))
    url = _ml_backend.redact(stored_url(db, p["id"]) or client.name)
    versions = _store(db, p, url, run) if run.found else {}
    return {"project_id": p["id"], "url": url, **run.stats, "stored": len(run.found),
            "model_versions": versions, "seconds": round(time.monotonic() - started, 3)}


def _python_outcomes(client, rows, blobs, label_kind) -> list[tuple[Any, float | None, str | None]]:
    """(choices, score, version) per row from a registered Python model."""
    batch_items = [{"id": r.id, "image_bytes": blobs.get(r.blob)} if r.kind == "image"
                   else {"id": r.id, "text": r.text or ""} for r in rows]
    out, version = client.predict_items(batch_items)
    outcomes: list[tuple[Any, float | None, str | None]] = []
    for o in out:
        if o is None or o.get("label") is None:
            outcomes.append((None, None, version))
            continue
        mv = o.get("model_version")
        got = _Given(o["label"]) if label_kind.ls_tag else label_kind.to_choices(o["label"])
        outcomes.append((got, _ml_backend.clamp_score(o.get("score")), version if mv is None else str(mv)))
    return outcomes


def _http_outcomes(client, rows, request: dict, base_url: str | None,
                   label_kind) -> list[tuple[Any, float | None, str | None]]:
    """(choices, score, version) per row from a backend's ``/predict``
    (region kinds: the regions, :class:`_Regions`, in place of choices)."""
    tasks = [_ml_backend.ls_task({"id": r.id, "kind": r.kind, "text": r.text}, _ml_backend.public_url(base_url))
             for r in rows]
    body = client.predict({"tasks": tasks, **request})
    per_task, top = _ml_backend.parse_predict_response(body, len(tasks), f"the ML backend at {client.name}")
    outcomes: list[tuple[Any, float | None, str | None]] = []
    for preds in per_task:
        pr = _ml_backend.pick_prediction(preds)
        if pr is None:
            outcomes.append((None, None, top))
            continue
        if label_kind.ls_tag:
            regions, score = _ml_backend.prediction_regions(pr, label_kind.ls_tag)
            choices = _Regions(regions) if regions else None
        else:
            choices, score = _ml_backend.prediction_choices(pr)
        mv = pr.get("model_version")
        outcomes.append((choices, score, top if mv in (None, "") else str(mv)))
    return outcomes


def _tally(run: _Run, rows, outcomes) -> None:
    """Count each row's outcome; keep the ones with a label the project has."""
    stats = run.stats
    for r, (choices, score, version) in zip(rows, outcomes):
        stats["tasks"] += 1
        if not choices:
            stats["no_prediction"] += 1
            continue
        label, unknown = _to_label(run, r, choices)
        for u in unknown:
            run.unknown_seen[u] = run.unknown_seen.get(u, 0) + 1
        stats["unknown_choices"] += len(unknown)
        if label is None:
            stats["skipped_unknown"] += 1
            continue
        if score is None:
            stats["without_score"] += 1
        run.found.append((r.id, label, 1.0 if score is None else score, version or "unversioned"))


@dataclass
class _Regions:
    """A backend's region results for one item (boxes, polygons, spans)."""

    results: list[dict]


@dataclass
class _Given:
    """A registered Python model's label, in the kind's own form."""

    label: Any


def _to_label(run: _Run, row, got) -> tuple[Any, list[str]]:
    """``(label, unknown)`` of one row's prediction: choices mapped onto the
    classes, or (region kinds) the kind's conversion, checked like an answer;
    a prediction the kind refuses is skipped, saying why."""
    k = run.label_kind
    if k.ls_tag is None:
        return _ml_backend.map_choices(got, run.names, k)
    try:
        if isinstance(got, _Regions):
            label, unknown = k.from_ls_results(got.results, run.schema)
        else:
            label, unknown = k.validate(got.label, run.schema), []
        if label is not None and k.checks_item:
            k.check_item(label, {"kind": row.kind, "text": row.text})
    except InvalidInput as e:
        return None, [f"invalid prediction: {e.message}"[:160]]
    return label, unknown


def _store(db, p: dict, url: str, run: _Run) -> dict[str, int]:
    """Replace the items' predictions in one transaction; the version numbers used."""
    tries = 0
    while True:
        try:
            with db.write() as conn:
                versions = model_versions(conn, p, url, {f[3] for f in run.found})
                ids = [f[0] for f in run.found]
                for k in range(0, len(ids), 1000):
                    conn.execute(_DROP_PREDICTIONS, {"p": p["id"], "ids": ids[k:k + 1000]})
                conn.execute(_ADD_PREDICTION, [
                    {"p": p["id"], "i": i, "v": versions[v], "label": lab, "c": float(sc),
                     "pr": [] if run.label_kind.ls_tag else run.label_kind.proba(lab, sc, run.names)}
                    for i, lab, sc, v in run.found])
            return versions
        except IntegrityError:  # another run numbered the same version: read again (three tries)
            tries += 1
            if tries == 3:
                raise


def model_versions(conn, p: dict, url: str, wanted: set[str]) -> dict[str, int]:
    """Integer ``model_version`` for each backend version string: each
    distinct (backend URL, version string) gets an ``ml_models`` row
    (``metrics`` ``{"source": "backend", "backend_version", "url",
    "classes"}``, numbered after the project's existing versions, carrying
    over the last model's threshold and auto-label state) and keeps that
    number."""
    rows = conn.execute(_MODEL_ROWS, {"p": p["id"]}).all()
    have: dict[str, int] = {}
    for r in rows:
        m = r.metrics if isinstance(r.metrics, dict) else {}
        if m.get("source") == "backend" and m.get("url") == url and m.get("backend_version") in wanted:
            have[m["backend_version"]] = r.version
    last = rows[-1] if rows else None
    nxt = (last.version if last is not None else 0) + 1
    for s in sorted(wanted - set(have)):
        conn.execute(_ADD_MODEL, {"p": p["id"], "v": nxt, "now": time.time(),
                                  "th": last.threshold if last is not None else None,
                                  "st": last.auto_state if last is not None else "off",
                                  "m": {"source": "backend", "backend_version": s, "url": url,
                                        "classes": [c["name"] for c in p["schema"]["classes"]]}})
        have[s] = nxt
        nxt += 1
    return have
