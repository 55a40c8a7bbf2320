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

Where a backend may live (server-side request forgery): the server, not the
admin's browser, connects to the URL, so the URL is checked when it is set
and again at every call (DNS answers change), and the connection goes to
the very address that was checked (:func:`resolve`, then a socket to that
address; no second lookup):

* ``http`` or ``https`` only; no query, fragment, whitespace, control
  characters or backslashes. ``user:password@`` is kept for HTTP basic auth
  (the Label Studio SDK's ``BASIC_AUTH_USER``/``PASS``); it is never shown
  (:func:`redact`) and never sent anywhere but the checked host.
* Never allowed, whatever the settings: link-local addresses
  (``169.254.0.0/16``, ``fe80::/10``) and so the cloud metadata services
  (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``,
  ``metadata.google.internal``), multicast, unspecified (``0.0.0.0``,
  ``::``), broadcast and reserved addresses; an IPv4 address inside an
  IPv6 one (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``) is judged as the
  IPv4 address. A host name that resolves to any denied address is denied.
* Loopback (``127.0.0.0/8``, ``::1``) and private ranges (``10/8``,
  ``172.16/12``, ``192.168/16``, ``100.64/10``, ``fc00::/7``) are allowed
  by default: a model server on the same laptop or LAN is what most users
  connect, and the admin who sets the URL can reach those anyway on a
  single-user install. A shared server denies them with
  ``ASSAY_BACKEND_DENY=loopback,private``.
* ``ASSAY_BACKEND_DENY``: comma-separated CIDRs (``10.0.0.0/8``), addresses,
  host names (``ml.example.com``; ``.example.com`` or ``*.example.com`` for
  that name and every subdomain) or the words ``loopback``, ``private``, ``all``.
* ``ASSAY_BACKEND_ALLOW``: the same forms; when set, a backend must match
  it (its host name, or every address it resolves to). A deny entry wins
  over an allow entry; nothing allows the never-allowed addresses.
* Redirects are not followed: a ``3xx`` is an error (use the final URL), so
  neither the body nor the basic-auth header ever goes to a second address.
* The connection is direct: ``HTTP(S)_PROXY`` settings are not used (the
  address checked is the address connected to).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from assay import kinds
from assay.errors import InvalidInput, Unsupported
from assay.kinds import LabelKind

log = logging.getLogger("assay.learn.ml_backend")

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
    choice = kinds.get(schema["kind"]).ls_choice
    if choice is None:
        raise Unsupported(f"{kinds.get(schema['kind']).title} projects have no Label Studio labeling config")
    choices = ET.SubElement(view, "Choices", name=FROM_NAME, toName=name, choice=choice, showInline="true")
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
    chosen = kinds.of(project).to_choices(label)
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


def map_choices(choices: Sequence[str], names: Sequence[str], kind: str | LabelKind) -> tuple[Any, list[str]]:
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
    return (kind if isinstance(kind, LabelKind) else kinds.get(kind)).from_choices(known, names), unknown


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
            log.warning("%s answered /predict without 'results' (keys: %s)", where, sorted(body)[:10])
            raise BackendProtocolError(f"{where} answered /predict without 'results'")
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
    if len(url) > 2000:
        raise InvalidInput("ml_backend_url is longer than 2000 characters")
    if _BAD_URL_CHARS.search(url):
        raise InvalidInput("ml_backend_url must not contain spaces, control characters or backslashes")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"ml_backend_url is not a valid URL: {redact(url)[:200]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"ml_backend_url must be http(s)://host[:port][/path] or python:<name>, got {redact(url)[:200]!r}")
    if parts.query or parts.fragment:
        raise InvalidInput("ml_backend_url must not have a query or a fragment")
    if port == 0:
        raise InvalidInput("ml_backend_url has port 0")
    check_host(parts.hostname)
    return url.rstrip("/")


# ---------------------------------------------------------------- where a backend may live (SSRF)

ALLOW_ENV = "ASSAY_BACKEND_ALLOW"
DENY_ENV = "ASSAY_BACKEND_DENY"
_CONFIG_FIELD = {ALLOW_ENV: "backend_allow", DENY_ENV: "backend_deny"}  # assay.config
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
_Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _nets(*cidrs: str) -> tuple[_Net, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: never allowed (link-local and so cloud metadata, multicast, unspecified, broadcast, reserved)
NEVER_NETS = _nets("0.0.0.0/8", "169.254.0.0/16", "100.100.100.200/32", "224.0.0.0/4", "240.0.0.0/4",
                   "::/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128")
NEVER_HOSTS = ("metadata.google.internal", "metadata.goog", "metadata", "instance-data",
               "instance-data.ec2.internal")
_WORDS = {
    "loopback": _nets("127.0.0.0/8", "::1/128"),
    "private": _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
    "all": _nets("0.0.0.0/0", "::/0"),
}
_HOST_RE = re.compile(r"(\*?\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


def _policy(env: str) -> tuple[tuple[_Net, ...], tuple[str, ...]] | None:
    """``(networks, host patterns)`` of an allow/deny setting; None when unset."""
    from assay.config import config

    raw = getattr(config(), _CONFIG_FIELD[env]) or ""
    if not raw:
        return None
    nets: list[_Net] = []
    hosts: list[str] = []
    for entry in (e.strip().lower() for e in raw.split(",")):
        if not entry:
            continue
        if entry in _WORDS or entry == "*":
            nets.extend(_WORDS["all" if entry == "*" else entry])
            continue
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = entry.rstrip(".")
        if not _HOST_RE.fullmatch(host):
            raise InvalidInput(f"{env}: {entry[:100]!r} is not a CIDR, an address, a host name or "
                               "one of loopback, private, all")
        hosts.append(host[1:] if host.startswith("*.") else host)
    return tuple(nets), tuple(hosts)


def _host_matches(host: str, patterns: Sequence[str]) -> bool:
    """``ml.example.com`` matches itself; ``.example.com`` that name and every subdomain."""
    return any(host == p or (p.startswith(".") and (host.endswith(p) or host == p[1:])) for p in patterns)


def _canonical_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _plain(addr: _Addr) -> _Addr:
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr in _NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def check_host(hostname: str) -> None:
    """The checks that need no DNS: the host name against the deny and allow
    settings, and an address literal against the address rules."""
    host = _canonical_host(hostname)
    deny = _policy(DENY_ENV)
    _policy(ALLOW_ENV)  # a malformed allow list is an error now, not at the first call
    if host in NEVER_HOSTS:
        raise InvalidInput(f"ml_backend_url points at {host!r}, a cloud metadata service, which is never allowed")
    if deny is not None and _host_matches(host, deny[1]):
        raise InvalidInput(f"ml_backend_url points at {host!r}, which {DENY_ENV} denies")
    try:
        addr: _Addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        try:  # the old IPv4 forms a resolver also takes: 2852039166, 0xa9.0xfe.0xa9.0xfe, 127.1
            addr = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, UnicodeError, ValueError):
            return  # a host name: its addresses are checked when it is resolved, at every call
    check_addresses(host, [addr])


def check_addresses(hostname: str, addrs: Sequence[_Addr]) -> None:
    """InvalidInput unless every address ``hostname`` resolved to is allowed
    (see the module notes)."""
    host = _canonical_host(hostname)
    deny, allow = _policy(DENY_ENV), _policy(ALLOW_ENV)
    if not addrs:
        raise BackendUnreachable(f"the ML backend host {host!r} resolves to no address")
    for a in addrs:
        a = _plain(a)
        if a.is_link_local or a.is_multicast or a.is_unspecified or any(a in n for n in NEVER_NETS):
            raise InvalidInput(f"ml_backend_url host {host!r} is (or resolves to) {a}: link-local, cloud "
                               "metadata, multicast, unspecified and reserved addresses are never allowed")
        if deny is not None and any(a in n for n in deny[0]):
            raise InvalidInput(f"ml_backend_url host {host!r} is (or resolves to) {a}, which {DENY_ENV} denies")
    if allow is not None and not _host_matches(host, allow[1]):
        outside = [a for a in map(_plain, addrs) if not any(a in n for n in allow[0])]
        if outside:
            raise InvalidInput(f"ml_backend_url host {host!r} is (or resolves to) {outside[0]}, "
                               f"which is not in {ALLOW_ENV}")


def resolve(hostname: str, port: int) -> list[str]:
    """The host's addresses, each checked (:func:`check_addresses`): connect
    to one of these, never to the name again."""
    host = _canonical_host(hostname)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise BackendUnreachable(f"the ML backend host {host!r} does not resolve: {e}") from None
    seen: list[str] = []
    for *_, sockaddr in infos:
        ip = str(sockaddr[0]).split("%", 1)[0]
        if ip not in seen:
            seen.append(ip)
    check_addresses(host, [ipaddress.ip_address(ip) for ip in seen])
    return seen


def public_url(base_url: str | None = None) -> str | None:
    """Where a backend fetches item content: ``base_url`` if given, else
    ``ASSAY_PUBLIC_URL``; None when neither is set."""
    from assay.config import config

    url = base_url or config().public_url
    return url.strip().rstrip("/") if url else None


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
    """A client for one Label Studio compatible ML backend (stdlib only).

    Every call resolves the host, checks each address (:func:`resolve`) and
    connects to a checked address; TLS still verifies the certificate for
    the host name. Redirects are errors, not followed."""

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
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.name = redact(url)
        self.timeout = timeout
        self._url = url

    def _connection(self, address: str, timeout: float) -> http.client.HTTPConnection:
        try:
            host = self.host.encode("idna").decode("ascii") if not self.host.isascii() else self.host
        except UnicodeError:
            raise InvalidInput(f"ml_backend_url has a host name that is not valid: {self.host[:100]!r}") from None
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, self.port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, self.port, timeout=timeout)

        def pinned(addr, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):  # noqa: SLF001
            # The checked address, not a second DNS answer for the name
            # (http.client still sends Host and TLS SNI for the name).
            return socket.create_connection((address, addr[1]), timeout, source_address)

        conn._create_connection = pinned  # noqa: SLF001 - http.client's documented hook for the socket
        return conn

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body, default=str).encode()
        where = f"the ML backend at {self.name}"
        check_url(self._url)  # the allow/deny settings may have changed since
        addresses = resolve(self.host, self.port)
        wait = self.timeout or timeout
        status, raw, last_error = 0, b"", None
        for address in addresses:
            conn = self._connection(address, wait)
            try:
                conn.request(method, f"{self.prefix}/{path}", body=data, headers=self.headers)
                resp = conn.getresponse()
                status = resp.status
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
                location = resp.getheader("Location", "")
                break
            except (OSError, http.client.HTTPException, ValueError) as e:
                last_error = e
                continue
            finally:
                conn.close()
        else:
            reason = getattr(last_error, "reason", None) or last_error
            raise BackendUnreachable(f"{where} is unreachable ({method} /{path}): {reason}") from None
        if 300 <= status < 400:
            log.warning("%s answered %s /%s with HTTP %s to %r: redirects are not followed",
                        where, method, path, status, location[:300])
            raise BackendUnreachable(f"{where} answered {method} /{path} with a redirect (HTTP {status}); "
                                     "redirects are not followed: set the backend's final URL", status=status)
        if status >= 400:
            # The body is logged, never echoed: this URL may be some other server's.
            log.warning("%s answered %s /%s with HTTP %s: %r", where, method, path, status,
                        raw[:2000].decode("utf-8", "replace"))
            raise BackendUnreachable(f"{where} answered {method} /{path} with HTTP {status} "
                                     "(its answer is in the server log)", status=status)
        if len(raw) > MAX_RESPONSE_BYTES:
            raise BackendProtocolError(f"{where} answered /{path} with more than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            log.warning("%s answered %s /%s with something that is not JSON: %r", where, method, path,
                        raw[:2000].decode("utf-8", "replace"))
            raise BackendProtocolError(f"{where} answered /{path} with something that is not JSON "
                                       "(its answer is in the server log)") from None

    def health(self) -> dict:
        """``{"status": "UP", "model_class"?}``: only these fields of the
        answer are kept (the rest could be anything the URL serves)."""
        body = self._call("GET", "health", timeout=HEALTH_TIMEOUT)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise BackendProtocolError(
                f"the ML backend at {self.name} answered /health without a status: expected {{\"status\": \"UP\"}}")
        if body["status"].upper() != "UP":
            log.warning("the ML backend at %s reports status %r", self.name, body["status"][:300])
            raise BackendUnreachable(f"the ML backend at {self.name} reports a status other than UP")
        out = {"status": "UP"}
        if isinstance(body.get("model_class"), str):
            out["model_class"] = body["model_class"][:200]
        return out

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
                                     "(call assay.learn.ml_backend.register_model first)")
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
