"""In-process models: a function registered here pre-labels the projects
whose ``ml_backend_url`` is ``python:<name>``, behind the same calls as an
HTTP backend."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from assay.errors import InvalidInput
from assay.learn.ml_backend.errors import BackendProtocolError, BackendUnreachable
from assay.learn.ml_backend.urls import _PY

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

