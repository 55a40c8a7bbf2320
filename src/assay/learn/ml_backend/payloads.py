"""What assay sends a Label Studio ML backend: the labeling config generated
from a project's schema, tasks for items, and webhook bodies for answers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any

from assay import kinds
from assay.errors import Unsupported
from assay.kinds.base import LS_FROM_NAME

#: the ``name`` of the control tag, so the ``from_name`` of every result
FROM_NAME = LS_FROM_NAME


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
    label_kind = kinds.get(schema["kind"])
    if label_kind.ls_tag is not None:  # regions: RectangleLabels, PolygonLabels, Labels
        control, child = ET.SubElement(view, label_kind.ls_tag, name=FROM_NAME, toName=name), "Label"
    elif label_kind.ls_choice is not None:
        control = ET.SubElement(view, "Choices", name=FROM_NAME, toName=name, choice=label_kind.ls_choice,
                                showInline="true")
        child = "Choice"
    else:
        raise Unsupported(f"{label_kind.title} projects have no Label Studio labeling config")
    for c in schema["classes"]:
        attrs = {"value": c["name"]}
        if c.get("description"):
            attrs["hint"] = c["description"]
        ET.SubElement(control, child, attrs)
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


def ls_result(project: dict, kind: str, label: Any, item: dict | None = None) -> list[dict]:
    """An assay label as a Label Studio ``result`` list, as the project's kind
    writes it (regions from the item's ``text`` or ``size`` (width, height))."""
    item = item or {}
    results = kinds.of(project).to_ls_results(label, object_tag(project, kind)[1],
                                              text=item.get("text"), size=item.get("size"))
    return [{**r, "origin": "manual"} for r in results]


def deletion_payload(answer: dict, project: dict) -> dict:
    """The webhook body Label Studio sends when annotations are deleted
    (``ANNOTATIONS_DELETED``: the ids of the annotations that are gone)."""
    return {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": answer["id"]}],
            "project": {"id": project["id"], "title": project["name"], "uid": project_uid(project)}}


def annotation_payload(answer: dict, project: dict, item: dict, base_url: str | None = None,
                       action: str = "ANNOTATION_CREATED") -> dict:
    """The webhook body Label Studio sends when an annotation is created."""
    kind = item["kind"]
    task = {**ls_task(item, base_url), "project": project["id"]}
    created = _iso(answer.get("created_at"))
    annotation = {
        "id": answer["id"], "result": ls_result(project, kind, answer["label"], item),
        "task": item["id"], "project": project["id"], "completed_by": answer["annotator_id"],
        "created_at": created, "updated_at": created, "was_cancelled": False, "ground_truth": False,
        "lead_time": answer.get("lead_time"),
    }
    return {"action": action, "annotation": annotation, "task": task, "project": ls_project(project, kind)}
