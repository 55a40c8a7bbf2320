"""Label schemas. A project has a ``kind`` and a ``spec``; this module knows
how to validate a spec and an answer against it. New kinds (boxes, spans…)
register a validator here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.errors import InvalidInput

KINDS: dict[str, Callable[[dict], dict]] = {}


def _classes(spec: dict) -> list[dict]:
    raw = spec.get("classes")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("a classification schema needs a non-empty list of classes")
    out, seen = [], set()
    for c in raw:
        if isinstance(c, str):
            c = {"name": c}
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise InvalidInput(f"each class needs a non-empty name, got {c!r}")
        name = c["name"].strip()
        if name in seen:
            raise InvalidInput(f"class {name!r} is listed twice")
        seen.add(name)
        out.append({"name": name, "description": str(c.get("description") or "")})
    return out


def normalize_schema(kind: str, spec: dict | None) -> dict:
    """Check a schema spec and return it in canonical form."""
    if kind not in ("single", "multi"):
        raise InvalidInput(f"unknown schema kind {kind!r}: use 'single' or 'multi'")
    spec = dict(spec or {})
    return {
        "classes": _classes(spec),
        "instructions": str(spec.get("instructions") or ""),
    }


def validate_label(kind: str, spec: dict, label: Any) -> Any:
    """Return the canonical stored form of ``label`` or raise InvalidInput."""
    names = [c["name"] for c in spec["classes"]]
    if kind == "single":
        if not isinstance(label, str):
            raise InvalidInput(f"label must be one class name (a string), one of {names}")
        if label not in names:
            raise InvalidInput(f"unknown class {label!r}: the project's classes are {names}")
        return label
    if kind == "multi":
        if isinstance(label, str):
            label = [label]
        if not isinstance(label, list) or not all(isinstance(x, str) for x in label):
            raise InvalidInput(f"label must be a list of class names from {names}")
        unknown = [x for x in label if x not in names]
        if unknown:
            raise InvalidInput(f"unknown class(es) {unknown}: the project's classes are {names}")
        chosen = set(label)
        return [n for n in names if n in chosen]  # canonical order, no duplicates
    raise InvalidInput(f"unknown schema kind {kind!r}")
