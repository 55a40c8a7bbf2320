"""Bring your own model: Label Studio compatible ML backends, and Python models.

A project's ``ml_backend_url`` names the model that pre-labels its items:

* ``http(s)://host:port`` — a server that speaks Label Studio's ML backend
  protocol (anything built on ``label-studio-ml-backend`` works unchanged;
  ``http://user:password@host`` sends HTTP basic auth, as such backends
  accept with ``BASIC_AUTH_USER`` / ``BASIC_AUTH_PASS``);
* ``python:<name>`` — a function registered in this process with
  :func:`register_model`.

The protocol, as Label Studio and the ML backend SDK implement it (sources
below; nothing here is copied from them):

``GET /health``
    ``{"status": "UP", "model_class": "MyModel"}`` (older SDKs: ``{"status":
    "UP", "model_dir": …}``). The SDK serves the same answer at ``GET /``.
``POST /setup``
    body ``{"project": "<id>.<created_at as int>", "schema": "<label config
    XML>", "hostname": "<where task URLs live>", "access_token": "…",
    "model_version": …, "extra_params": {…}}``; answer ``{"model_version":
    "…"}``. Label Studio sends the first four; SDK 1.0.x also reads
    ``model_version``, newer SDKs ``extra_params``. The SDK splits
    ``project`` on the first ``.``, so it is sent as Label Studio builds it:
    ``f"{project.id}.{int(created_at)}"``.
``POST /predict``
    body ``{"tasks": [{"id", "data": {…}}], "model_version", "project",
    "label_config", "params": {"login", "password", "context"}}``; answer
    ``{"results": [prediction, …]}`` — one entry per task, in the order
    sent. A prediction is ``{"result": [{"from_name", "to_name", "type":
    "choices", "value": {"choices": […]}}], "score": float,
    "model_version": str}``; since the SDK's ``ModelResponse`` an entry may
    also be a list of such predictions for one task. Older SDKs answer
    ``{"results": […], "model_version": "…"}``; some backends a bare list.
    All of these are accepted.
``POST /webhook``
    body ``{"action": "ANNOTATION_CREATED", "annotation": {"id", "result",
    "task", "project", "completed_by", "created_at", …}, "task": {"id",
    "data", …}, "project": {"id", "title", "label_config", …}}``. The SDK
    pops ``action``, ignores events other than ``ANNOTATION_CREATED``,
    ``ANNOTATION_UPDATED``, ``ANNOTATION_DELETED`` and ``START_TRAINING``,
    and reads ``project.id`` and ``project.label_config`` (so both are always
    sent); it answers 201 ``{"result": …, "status": "ok"}``.

Sources: ``label_studio_ml/api.py`` of HumanSignal/label-studio-ml-backend
(the ``/predict``, ``/setup``, ``/webhook``, ``/health`` handlers and their
request examples; ``label_studio_ml/response.py`` for ``ModelResponse``);
``label_studio/ml/api_connector.py`` of HumanSignal/label-studio (what Label
Studio sends: ``make_predictions``, ``setup``, ``_create_project_uid``,
timeouts of 1 s to connect and 100 s to answer); Label Studio's webhook
reference (https://labelstud.io/guide/webhook_reference: annotation events
carry ``annotation``, ``task`` and ``project``). Checked end to end (by
hand, not in the test suite) against the Flask server of ``label-studio-ml``
1.0.9 from PyPI: its own config parser read the generated label config,
``/setup`` and ``/predict`` answers (top-level ``model_version``) were
stored, and ``/webhook`` recorded the ``ANNOTATION_CREATED`` event.

How assay maps onto it:

* The label config is generated from the project's schema (:func:`label_config`):
  ``<Text name="text" value="$text"/>`` or ``<Image name="image"
  value="$image"/>`` and ``<Choices name="label" toName="…"
  choice="single|multiple">`` with one ``<Choice value="<class>"/>`` per class.
* A Label Studio *task* is one assay item: its ``id`` is the item id (in
  ``/predict`` and in webhooks alike), ``data.text`` the text, ``data.image``
  the URL of ``/api/items/{id}/content`` (absolute when a base URL is known).
  The backend fetches images with the ``access_token`` given to ``/setup``
  sent as ``Authorization: Bearer …`` (assay's scheme, not Label Studio's
  ``Token …``).
* Choices the project does not have are skipped and counted (never a
  crash); a task left without a known class gets no prediction.
* Unreachable backends and HTTP errors raise :class:`BackendUnreachable`
  (an :class:`~assay.errors.InvalidInput`); answers that are not the
  protocol raise :class:`BackendProtocolError` (an
  :class:`~assay.errors.Unsupported`).
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from assay.errors import InvalidInput, Unsupported

log = logging.getLogger("assay.backends")

FROM_NAME = "label"
#: seconds to wait for each call (Label Studio waits 100 s for /predict)
HEALTH_TIMEOUT = 10.0
SETUP_TIMEOUT = 30.0
PREDICT_TIMEOUT = 100.0
WEBHOOK_TIMEOUT = 10.0
#: answers larger than this are refused (a /predict answer for 64 tasks is a few kB)
MAX_RESPONSE_BYTES = 64 << 20


class BackendUnreachable(InvalidInput):
    """The backend could not be reached, or answered with an HTTP error."""


class BackendProtocolError(Unsupported):
    """The backend answered, but not in Label Studio's ML backend protocol."""


# ---------------------------------------------------------------- payloads


def object_tag(project: dict, kind: str) -> tuple[str, str]:
    """``(tag, name)`` of the data object for items of ``kind``."""
    return ("Image", "image") if kind == "image" else ("Text", "text")


def label_config(project: dict, kind: str = "text") -> str:
    """The Label Studio labeling config (XML) for a project whose items are
    of ``kind`` (``text`` or ``image``)."""
    tag, name = object_tag(project, kind)
    schema = project["schema"]
    view = ET.Element("View")
    instructions = (schema.get("instructions") or "").strip()
    if instructions:
        ET.SubElement(view, "Header", value=instructions)
    ET.SubElement(view, tag, name=name, value=f"${name}")
    choices = ET.SubElement(view, "Choices", name=FROM_NAME, toName=name,
                            choice="multiple" if schema["kind"] == "multi" else "single",
                            showInline="true")
    for c in schema["classes"]:
        attrs = {"value": c["name"]}
        if c.get("description"):
            attrs["hint"] = c["description"]
        ET.SubElement(choices, "Choice", attrs)
    return ET.tostring(view, encoding="unicode")


def project_uid(project: dict) -> str:
    """The ``project`` field as Label Studio sends it: ``"<id>.<created_at>"``."""
    return f"{project['id']}.{int(project.get('created_at') or 0)}"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def content_url(item_id: int, base_url: str | None) -> str:
    path = f"/api/items/{item_id}/content"
    return f"{base_url.rstrip('/')}{path}" if base_url else path


def ls_task(item: dict, base_url: str | None = None) -> dict:
    """A Label Studio task for an item (``{"id", "kind", "text"}`` at least)."""
    if item["kind"] == "image":
        data = {"image": content_url(item["id"], base_url)}
    else:
        data = {"text": item.get("text") or ""}
    return {"id": item["id"], "data": data}


def ls_project(project: dict, kind: str = "text") -> dict:
    """The ``project`` object of a webhook payload."""
    return {"id": project["id"], "title": project["name"], "label_config": label_config(project, kind),
            "created_at": _iso(project.get("created_at")), "uid": project_uid(project)}


def ls_result(project: dict, kind: str, label: Any) -> list[dict]:
    """An assay label as a Label Studio ``result`` list."""
    chosen = label if isinstance(label, list) else [label]
    return [{"from_name": FROM_NAME, "to_name": object_tag(project, kind)[1], "type": "choices",
             "value": {"choices": list(chosen)}, "origin": "manual"}]


def annotation_payload(answer: dict, project: dict, item: dict, base_url: str | None = None,
                       action: str = "ANNOTATION_CREATED") -> dict:
    """The webhook body Label Studio sends when an annotation is created."""
    kind = item["kind"]
    task = {**ls_task(item, base_url), "project": project["id"]}
    created = _iso(answer.get("created_at"))
    annotation = {
        "id": answer["id"], "result": ls_result(project, kind, answer["label"]),
        "task": item["id"], "project": project["id"], "completed_by": answer["annotator_id"],
        "created_at": created, "updated_at": created, "was_cancelled": False, "ground_truth": False,
        "lead_time": answer.get("lead_time"),
    }
    return {"action": action, "annotation": annotation, "task": task, "project": ls_project(project, kind)}


# ---------------------------------------------------------------- mapping answers back


def map_choices(choices: Sequence[str], names: Sequence[str], kind: str) -> tuple[Any, list[str]]:
    """``(label, unknown)``: the assay label for a backend's choices (None when
    no known class is left) and the choices the project does not have. An
    exact class name wins; else a unique case-insensitive match."""
    exact = set(names)
    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.casefold(), []).append(n)
    known, unknown = [], []
    for c in choices:
        if not isinstance(c, str):
            unknown.append(repr(c))
        elif c in exact:
            known.append(c)
        elif len(folded.get(c.strip().casefold(), [])) == 1:
            known.append(folded[c.strip().casefold()][0])
        else:
            unknown.append(c)
    if not known:
        return None, unknown
    if kind == "single":
        return known[0], unknown
    chosen = set(known)
    return [n for n in names if n in chosen], unknown


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    if v != v:  # NaN
        return None
    return min(1.0, max(0.0, v))


def parse_predict_response(body: Any, n_tasks: int, where: str = "the ML backend") -> tuple[list[list[dict]], str | None]:
    """``(per_task, model_version)``: each task's list of predictions (LS
    prediction dicts) and the answer's top-level model version, if any.
    Raises :class:`BackendProtocolError` for anything else."""
    top_version = None
    if isinstance(body, dict):
        if isinstance(body.get("model_version"), (str, int, float)) and not isinstance(body.get("model_version"), bool):
            top_version = str(body["model_version"])
        if "results" in body:
            results = body["results"]
        elif "predictions" in body:  # a ModelResponse dumped as is
            results = body["predictions"]
        else:
            raise BackendProtocolError(
                f"{where} answered /predict without 'results' (keys: {sorted(body)[:10]})")
    elif isinstance(body, list):
        results = body
    else:
        raise BackendProtocolError(f"{where} answered /predict with a {type(body).__name__}, not an object or a list")
    if isinstance(results, dict) and isinstance(results.get("predictions"), list):
        results = results["predictions"]  # {"results": ModelResponse}
    if not isinstance(results, list):
        raise BackendProtocolError(f"{where} answered /predict with 'results' that is not a list")
    if len(results) != n_tasks:
        raise BackendProtocolError(
            f"{where} answered /predict with {len(results)} result(s) for {n_tasks} task(s); "
            "it must answer one entry per task, in order")
    per_task = []
    for j, entry in enumerate(results):
        preds = entry if isinstance(entry, list) else [entry]
        for pr in preds:
            if not isinstance(pr, dict) or not isinstance(pr.get("result", []), list):
                raise BackendProtocolError(
                    f"{where} answered /predict with a malformed prediction for task #{j + 1}: "
                    "expected {\"result\": [...], \"score\": ...}")
        per_task.append(preds)
    return per_task, top_version


def pick_prediction(preds: list[dict]) -> dict | None:
    """The prediction to keep when a task has several: the highest score."""
    if not preds:
        return None
    return max(preds, key=lambda p: (_score(p.get("score")) is not None, _score(p.get("score")) or 0.0))


def prediction_choices(pred: dict) -> tuple[list[str] | None, float | None]:
    """The choices and score of one LS prediction (None choices: no
    ``choices`` result in it). Results for our ``from_name`` come first; any
    other ``choices`` result is used only when none has it."""
    results = [r for r in pred.get("result") or [] if isinstance(r, dict)
               and str(r.get("type", "")).lower() == "choices" and isinstance(r.get("value"), dict)]
    mine = [r for r in results if r.get("from_name") == FROM_NAME] or results
    if not mine:
        return None, _score(pred.get("score"))
    choices: list[str] = []
    scores = []
    for r in mine:
        got = r["value"].get("choices")
        if isinstance(got, str):
            got = [got]
        if isinstance(got, list):
            choices.extend(got)
        if _score(r.get("score")) is not None:
            scores.append(_score(r.get("score")))
    score = _score(pred.get("score"))
    if score is None and scores:
        score = max(scores)
    return choices, score


def proba_for(label: Any, score: float, names: Sequence[str]) -> list[float]:
    """Per-class probabilities stored with a backend's prediction (the
    ``predictions.proba`` column). A backend gives one score, not a
    distribution: single-label, the chosen class gets the score and the other
    classes share the rest evenly; multi-label, chosen classes get the score
    and the others ``1 - score``."""
    k = len(names)
    if isinstance(label, list):
        chosen = set(label)
        return [round(score if n in chosen else 1.0 - score, 6) for n in names]
    rest = (1.0 - score) / (k - 1) if k > 1 else 0.0
    return [round(score if n == label else rest, 6) for n in names]


# ---------------------------------------------------------------- URLs and clients


_PY = re.compile(r"python:([A-Za-z0-9_.\-]{1,100})")


def check_url(url: Any) -> str | None:
    """The canonical backend URL (None / empty: no backend), or InvalidInput."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise InvalidInput("ml_backend_url must be a string: http(s)://host:port or python:<name>")
    url = url.strip()
    if not url:
        return None
    if url.startswith("python:"):
        if not _PY.fullmatch(url):
            raise InvalidInput(f"bad python model name in {url!r}: use python:<name> (letters, digits, _ . -)")
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"ml_backend_url must be http(s)://host[:port][/path] or python:<name>, got {redact(url)!r}")
    if parts.query or parts.fragment:
        raise InvalidInput("ml_backend_url must not have a query or a fragment")
    if len(url) > 2000:
        raise InvalidInput("ml_backend_url is longer than 2000 characters")
    return url.rstrip("/")


def redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<bad url>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class HttpBackend:
    """A client for one Label Studio compatible ML backend (stdlib only)."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        url = check_url(url)
        if url is None or url.startswith("python:"):
            raise InvalidInput(f"not an HTTP backend URL: {url!r}")
        parts = urllib.parse.urlsplit(url)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "User-Agent": "assay-ml-client"}
        if parts.username is not None:
            cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        self.base = urllib.parse.urlunsplit(parts).rstrip("/")
        self.name = redact(url)
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body, default=str).encode()
        req = urllib.request.Request(f"{self.base}/{path}", data=data, method=method, headers=self.headers)
        where = f"the ML backend at {self.name}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout or timeout) as resp:
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            detail = ""
            try:
                text = e.read(4000).decode("utf-8", "replace")
                try:
                    j = json.loads(text)
                    detail = str(j.get("error") or j.get("message") or j.get("detail") or text) if isinstance(j, dict) else text
                except ValueError:
                    detail = text
            except Exception:  # noqa: BLE001 - the status alone is enough
                pass
            detail = " ".join(detail.split())[:300]
            raise BackendUnreachable(f"{where} answered {method} /{path} with HTTP {e.code}"
                                     + (f": {detail}" if detail else ""), status=e.code) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise BackendUnreachable(f"{where} is unreachable ({method} /{path}): {reason}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise BackendProtocolError(f"{where} answered /{path} with more than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            snippet = raw[:120].decode("utf-8", "replace")
            raise BackendProtocolError(f"{where} answered /{path} with something that is not JSON: {snippet!r}") from None

    def health(self) -> dict:
        body = self._call("GET", "health", timeout=HEALTH_TIMEOUT)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise BackendProtocolError(
                f"the ML backend at {self.name} answered /health without a status: expected {{\"status\": \"UP\"}}")
        if body["status"].upper() != "UP":
            raise BackendUnreachable(f"the ML backend at {self.name} reports status {body['status']!r}, not UP")
        return body

    def setup(self, payload: dict) -> dict:
        body = self._call("POST", "setup", payload, timeout=SETUP_TIMEOUT)
        if not isinstance(body, dict):
            raise BackendProtocolError(f"the ML backend at {self.name} answered /setup without a JSON object")
        return body

    def predict(self, payload: dict) -> Any:
        return self._call("POST", "predict", payload, timeout=PREDICT_TIMEOUT)

    def webhook(self, payload: dict) -> Any:
        return self._call("POST", "webhook", payload, timeout=WEBHOOK_TIMEOUT)


# ---------------------------------------------------------------- in-process models


_MODELS: dict[str, dict] = {}
_MODELS_LOCK = threading.Lock()


def register_model(name: str, predict: Callable[[list[dict]], list[dict]], *, version: str | None = None,
                   on_answer: Callable[[dict], Any] | None = None) -> str:
    """Register an in-process model; a project uses it with
    ``ml_backend_url = "python:<name>"``. Returns that URL.

    ``predict(items)`` gets a batch of ``{"id", "text"}`` (text items) or
    ``{"id", "image_bytes"}`` (images) and returns one dict per item, in
    order: ``{"label": "cat" | ["a", "b"], "score": 0.93}`` (``None`` for
    "no prediction"; ``"model_version"`` optional). ``on_answer(payload)``,
    if given, receives each new answer as a Label Studio ``ANNOTATION_CREATED``
    webhook body. ``version`` defaults to ``"python:<name>"``.
    """
    if not isinstance(name, str) or not _PY.fullmatch(f"python:{name}"):
        raise InvalidInput("model name must be 1-100 letters, digits, _ . -")
    if not callable(predict):
        raise InvalidInput("predict must be callable")
    with _MODELS_LOCK:
        _MODELS[name] = {"predict": predict, "version": version or f"python:{name}", "on_answer": on_answer}
    return f"python:{name}"


def unregister_model(name: str) -> None:
    with _MODELS_LOCK:
        _MODELS.pop(name, None)


def registered_models() -> list[str]:
    with _MODELS_LOCK:
        return sorted(_MODELS)


class PythonBackend:
    """A registered in-process model behind the same calls as :class:`HttpBackend`."""

    def __init__(self, url: str) -> None:
        self.model_name = url.split(":", 1)[1]
        self.name = url

    def _model(self) -> dict:
        with _MODELS_LOCK:
            m = _MODELS.get(self.model_name)
        if m is None:
            raise BackendUnreachable(f"no Python model named {self.model_name!r} is registered in this process "
                                     "(call assay.backends.register_model first)")
        return m

    def health(self) -> dict:
        self._model()
        return {"status": "UP", "model_class": self.model_name}

    def setup(self, payload: dict) -> dict:
        return {"model_version": self._model()["version"]}

    def predict_items(self, items: list[dict]) -> tuple[list[Any], str]:
        m = self._model()
        try:
            out = m["predict"](items)
        except Exception as e:  # noqa: BLE001 - the model's own failure, reported as one line
            raise BackendUnreachable(f"Python model {self.model_name!r} failed: {e.__class__.__name__}: {e}") from None
        out = list(out) if isinstance(out, (list, tuple)) else out
        if not isinstance(out, list) or len(out) != len(items):
            raise BackendProtocolError(
                f"Python model {self.model_name!r} must return a list with one dict per item "
                f"({len(items)}), got {type(out).__name__}" + (f" of {len(out)}" if isinstance(out, list) else ""))
        for j, o in enumerate(out):
            if o is not None and (not isinstance(o, dict) or "label" not in o):
                raise BackendProtocolError(
                    f"Python model {self.model_name!r}: item #{j + 1} must be {{\"label\", \"score\"}} or None")
        return out, m["version"]

    def webhook(self, payload: dict) -> Any:
        hook = self._model()["on_answer"]
        return hook(payload) if hook is not None else None


def connect(url: str | None) -> HttpBackend | PythonBackend:
    """The client for a backend URL (see :func:`check_url`)."""
    url = check_url(url)
    if url is None:
        raise InvalidInput("the project has no ML backend: set ml_backend_url first")
    return PythonBackend(url) if url.startswith("python:") else HttpBackend(url)


# ---------------------------------------------------------------- webhooks in the background


class Notifier:
    """Sends answers to backends' ``/webhook`` from one background thread, so
    that an answer never waits for (or fails because of) a backend.

    The queue is bounded (``maxsize``); when it is full, new notifications
    are dropped and counted. The thread starts on demand and ends after
    ``idle_seconds`` with nothing to do. ``stats`` counts sent, failed and
    dropped notifications.
    """

    def __init__(self, send: Callable[[Any], None], *, maxsize: int = 10_000, idle_seconds: float = 30.0) -> None:
        self._send = send
        self._q: queue.Queue = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.idle_seconds = idle_seconds
        self.stats = {"queued": 0, "sent": 0, "failed": 0, "dropped": 0}

    def put(self, job: Any) -> bool:
        try:
            self._q.put_nowait(job)
        except queue.Full:
            self.stats["dropped"] += 1
            log.warning("ML backend webhook queue is full: dropped a notification")
            return False
        self.stats["queued"] += 1
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="assay-backend-webhooks", daemon=True)
                self._thread.start()
        return True

    def _run(self) -> None:
        while True:
            try:
                job = self._q.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._q.empty():
                        self._thread = None
                        return
                continue
            try:
                self._send(job)
                self.stats["sent"] += 1
            except Exception as e:  # noqa: BLE001 - a backend's failure must never stop the queue
                self.stats["failed"] += 1
                log.warning("ML backend webhook failed: %s", getattr(e, "message", None) or e)
            finally:
                self._q.task_done()

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification was handled; False on timeout."""
        q = self._q
        end = time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                q.all_tasks_done.wait(left)
        return True
