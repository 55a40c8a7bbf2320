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
  :class:`~assay.errors.Unsupported`). Their messages name the backend, the
  call and the HTTP status, never what the backend's body said: that goes to
  the server log (``assay.learn.ml_backend``), so a URL pointed at some other server
  cannot be used to read it.

Where a backend may live (server-side request forgery) is
:mod:`assay.learn.ml_backend.urls`: the URL is checked when it is set and
again at every call, and the connection goes to the very address checked.

The modules: :mod:`~assay.learn.ml_backend.payloads` (what is sent: label
config, tasks, webhook bodies), :mod:`~assay.learn.ml_backend.predictions`
(``/predict`` answers read back into labels), :mod:`~assay.learn.ml_backend.urls`
(URL checks), :mod:`~assay.learn.ml_backend.client` (the HTTP client and
:func:`connect`), :mod:`~assay.learn.ml_backend.models` (Python models). Every
public name is importable from here.
"""

from assay.learn.ml_backend.client import (
    HEALTH_TIMEOUT,
    MAX_RESPONSE_BYTES,
    PREDICT_TIMEOUT,
    SETUP_TIMEOUT,
    WEBHOOK_TIMEOUT,
    HttpBackend,
    connect,
    log,
)
from assay.learn.ml_backend.errors import BackendProtocolError, BackendUnreachable
from assay.learn.ml_backend.models import PythonBackend, register_model, registered_models, unregister_model
from assay.learn.ml_backend.payloads import (
    FROM_NAME,
    annotation_payload,
    content_url,
    deletion_payload,
    label_config,
    ls_project,
    ls_result,
    ls_task,
    object_tag,
    project_uid,
)
from assay.learn.ml_backend.predictions import (
    clamp_score,
    map_choices,
    parse_predict_response,
    pick_prediction,
    prediction_choices,
    prediction_regions,
)
from assay.learn.ml_backend.urls import (
    ALLOW_ENV,
    DENY_ENV,
    NEVER_HOSTS,
    NEVER_NETS,
    check_addresses,
    check_host,
    check_url,
    public_url,
    redact,
    resolve,
)

__all__ = [
    "ALLOW_ENV", "DENY_ENV", "FROM_NAME", "HEALTH_TIMEOUT", "MAX_RESPONSE_BYTES", "NEVER_HOSTS", "NEVER_NETS",
    "PREDICT_TIMEOUT", "SETUP_TIMEOUT", "WEBHOOK_TIMEOUT", "BackendProtocolError", "BackendUnreachable",
    "HttpBackend", "PythonBackend", "annotation_payload", "deletion_payload", "check_addresses", "check_host", "check_url",
    "clamp_score", "connect", "content_url", "label_config", "log", "ls_project", "ls_result", "ls_task",
    "map_choices", "object_tag", "parse_predict_response", "pick_prediction", "prediction_choices", "prediction_regions",
    "project_uid", "public_url", "redact", "register_model", "registered_models", "resolve", "unregister_model",
]
