"""Label kinds: the registry of what a label can be (``single``, ``multi``, ``spans``…).

``get(name)`` is the :class:`~assay.kinds.base.LabelKind` that owns every
rule depending on the shape of a project's labels: its schema, validating an
answer, equality, majority, export columns and the browser widget. A new
kind is one module with a ``LabelKind`` subclass, ``register(...)`` of an
instance, and a widget in ``server/static/kinds.js``.
"""

from __future__ import annotations

from assay.errors import InvalidInput
from assay.kinds.base import LabelKind
from assay.kinds.multi import Multi
from assay.kinds.shapes import Boxes, Polygons
from assay.kinds.single import Single
from assay.kinds.spans import Spans

__all__ = ["LabelKind", "adaptive", "aggregatable", "get", "merging", "names", "of", "register", "unregister"]

_KINDS: dict[str, LabelKind] = {}


def register(kind: LabelKind) -> LabelKind:
    """Add a kind (an instance); its ``name`` must be new."""
    if not isinstance(kind, LabelKind):
        raise TypeError(f"register() takes a LabelKind instance, got {kind!r}")
    if not isinstance(kind.name, str) or not kind.name or len(kind.name) > 30:
        raise ValueError("a kind's name must be 1-30 characters")
    if kind.name in _KINDS:
        raise ValueError(f"label kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests; projects of that kind stop working)."""
    _KINDS.pop(name, None)


def get(name: str) -> LabelKind:
    """The kind called ``name``; :class:`InvalidInput` naming the known ones."""
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        known = ", ".join(repr(n) for n in _KINDS)
        raise InvalidInput(f"unknown label kind {str(name)[:40]!r}: use one of {known}")
    return kind


def of(project: dict) -> LabelKind:
    """The kind of a project (a dict with ``schema.kind``, as ``Workspace.get_project`` gives)."""
    return get(project["schema"]["kind"])


def names() -> list[str]:
    """Names of the registered kinds, in registration order."""
    return list(_KINDS)


def aggregatable() -> list[str]:
    """Names of the kinds whose answers :mod:`assay.quality`'s estimators take."""
    return [n for n, k in _KINDS.items() if k.aggregatable]


def merging() -> list[str]:
    """Names of the kinds whose answers merge into one label with a confidence
    (:attr:`LabelKind.merges_answers`: spans, boxes, polygons)."""
    return [n for n, k in _KINDS.items() if k.merges_answers and not k.aggregatable]


def adaptive() -> list[str]:
    """Names of the kinds whose projects may turn on adaptive redundancy
    (``target_confidence``): class posteriors or merged answers."""
    return [n for n, k in _KINDS.items() if k.aggregatable or k.merges_answers]


register(Single())
register(Multi())
register(Boxes())
register(Polygons())
register(Spans())


def describe() -> list[dict]:
    """Every registered kind for a form (the admin wizard): its name, title,
    description (the class's docstring, first paragraph) and what it needs
    (the kinds of item it labels; None: any), offers and its own schema
    options (:attr:`LabelKind.options`)."""
    out = []
    for n, k in _KINDS.items():
        doc = (type(k).__doc__ or "").strip().split("\n\n")[0]
        out.append({"name": n, "title": k.title, "description": " ".join(doc.split()) or k.title, "widget": k.widget,
                    "item_kinds": list(k.item_kinds) if k.item_kinds is not None else None,
                    "aggregatable": k.aggregatable, "merges_answers": k.merges_answers,
                    "formats": list(k.formats), "options": {o: dict(spec) for o, spec in k.options.items()}})
    return out
