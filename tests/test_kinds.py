"""Label kinds (assay.kinds): the registry, the built-in kinds, and that a
new kind is one module — here a toy ``rating`` kind defined in this file —
that projects accept, validate, score, aggregate and export without any other
module knowing about it. And one equality rule: nothing outside kinds/
compares labels or branches on a kind's name."""

from __future__ import annotations

import ast
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import assay
from assay import kinds
from assay.errors import InvalidInput
from assay.kinds import LabelKind
from factories import item_ids, text_dataset

SRC = Path(assay.__file__).resolve().parent


# ---------------------------------------------------------------- the registry


def test_registry_names_and_unknown_kind():
    assert kinds.names()[:2] == ["single", "multi"]
    assert kinds.get("single").widget == "single" and kinds.get("multi").widget == "multi"
    assert kinds.aggregatable() == ["single"]
    with pytest.raises(InvalidInput, match="unknown label kind 'cuboids'.*'single', 'multi'"):
        kinds.get("cuboids")
    with pytest.raises(ValueError, match="already registered"):
        kinds.register(type(kinds.get("single"))())
    with pytest.raises(TypeError):
        kinds.register("single")  # type: ignore[arg-type]


def test_single_and_multi_rules():
    single, multi = kinds.get("single"), kinds.get("multi")
    schema = {"classes": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
    assert single.validate("b", schema) == "b"
    assert multi.validate(["c", "a", "c"], schema) == ["a", "c"]  # schema order, no duplicates
    assert multi.validate("b", schema) == ["b"]
    for bad in (["a"], 3, "z"):
        with pytest.raises(InvalidInput):
            single.validate(bad, schema)
    for bad in (3, ["z"], [1]):
        with pytest.raises(InvalidInput):
            multi.validate(bad, schema)
    assert multi.same(["a", "b"], ["b", "a"]) and not multi.same(["a"], ["a", "b"])
    assert single.same("a", "a") and not single.same("a", "b")
    assert single.majority(["b", "a", "a", "b"]) == ("b", 0.5)  # a tie goes to the label given first
    assert single.majority([]) == (None, None)
    assert multi.majority([["b", "a"], ["a"], ["b", "c"]], ["a", "b", "c"]) == (["a", "b"], None)
    assert single.agreement(["a", "a", "b"]) == pytest.approx(1 / 3)
    assert single.export_columns("a") == {"label": "a"} and multi.export_columns(["a", "b"]) == {"label": '["a","b"]'}
    assert multi.parse_text("a|b|") == ["a", "b"] and single.parse_text("a|b") == "a|b"
    assert single.codes(["b", "z"], ["a", "b"]) == [1, -1]
    assert multi.codes([["b"], []], ["a", "b"]) == [[0, 1], [0, 0]]


# ---------------------------------------------------------------- a new kind: a module


class Rating(LabelKind):
    """A toy kind: a rating from ``low`` to ``high`` (1-5), an integer. The
    final label is the (lower) median rating, not the most frequent one."""

    name = "rating"
    widget = "rating"
    title = "rating"

    def normalize_schema(self, spec: dict | None) -> dict:
        spec = dict(spec or {})
        scale = [str(c["name"] if isinstance(c, dict) else c) for c in spec.get("classes") or []]
        if not scale or scale != [str(i) for i in range(int(scale[0]), int(scale[0]) + len(scale))]:
            raise InvalidInput("a rating scale lists consecutive integers, e.g. 1,2,3,4,5")
        return {"classes": [{"name": s, "description": ""} for s in scale],
                "instructions": str(spec.get("instructions") or ""), "low": int(scale[0]), "high": int(scale[-1])}

    def validate(self, label: Any, schema: dict) -> int:
        if isinstance(label, bool) or not isinstance(label, int) or not schema["low"] <= label <= schema["high"]:
            raise InvalidInput(f"a rating is an integer from {schema['low']} to {schema['high']}")
        return label

    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        if not labels:
            return None, None
        label = statistics.median_low(labels)
        return label, sum(1 for x in labels if x == label) / len(labels)


@pytest.fixture
def rating():
    kind = kinds.register(Rating())
    try:
        yield kind
    finally:
        kinds.unregister("rating")


def test_a_new_kind_is_a_module(ws, rating, tmp_path):
    ds = text_dataset(ws, "films", ["Heat", "Cats"])
    with pytest.raises(InvalidInput, match="consecutive"):
        ws.create_project("bad", ds["id"], ["1", "3"], kind="rating")
    p = ws.create_project("stars", ds["id"], ["1", "2", "3", "4", "5"], kind="rating", overlap=3)
    assert (p["schema"]["kind"], p["schema"]["low"], p["schema"]["high"], p["widget"]) == ("rating", 1, 5, "rating")
    people = [ws.add_user(f"u{i}")[0] for i in range(3)]
    admin = ws.add_user("boss", role="admin")[0]
    for u in people:
        ws.add_member(p["id"], u["id"])
    heat, cats = item_ids(ws, ds["id"])
    given = {heat: [5, 2, 4], cats: [1, 1, 3]}
    for n, u in enumerate(people):
        for _ in range(2):
            task = ws.next_task(p["id"], u)
            for bad in (6, 0, "3", True, 2.5, [3]):
                with pytest.raises(InvalidInput, match="integer from 1 to 5"):
                    ws.submit(task["id"], u, bad)
            ws.submit(task["id"], u, given[task["item"]["id"]][n])

    recs = {r["item_id"]: r for r in ws.export_records(p["id"])}
    assert (recs[heat]["label"], recs[heat]["label_method"], recs[heat]["confidence"]) == (4, "majority", pytest.approx(1 / 3))
    assert (recs[cats]["label"], recs[cats]["confidence"]) == (1, pytest.approx(2 / 3))
    ws.export(p["id"], tmp_path / "stars.csv")
    ws.export(p["id"], tmp_path / "stars.jsonl")
    assert pd.read_csv(tmp_path / "stars.csv")["label"].tolist() == [4, 1]
    lines = [json.loads(x) for x in (tmp_path / "stars.jsonl").read_text().splitlines()]
    assert [x["label"] for x in lines] == [4, 1] and [a["label"] for a in lines[0]["answers"]] == [5, 2, 4]

    # a reviewer's decision is validated by the kind and scores the annotators with its equality
    with pytest.raises(InvalidInput, match="integer from 1 to 5"):
        ws.review(p["id"], heat, 9, admin)
    ws.review(p["id"], heat, 4, admin)
    assert {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])} == \
        {"u0": (1, 0), "u1": (1, 0), "u2": (1, 1)}
    assert next(r for r in ws.export_records(p["id"]) if r["item_id"] == heat)["label_method"] == "review"


# ---------------------------------------------------------------- one equality rule


def _py_files():
    return [f for f in SRC.rglob("*.py") if "kinds" not in f.relative_to(SRC).parts[:1]
            and "migrations" not in f.parts]


#: modules still branching on a kind's name; each must go 
PENDING: set[str] = set()


def test_one_equality_rule_and_no_kind_names_outside_kinds():
    """No label-equality function and no comparison with ``"single"`` /
    ``"multi"`` outside :mod:`assay.kinds`: the project's kind decides."""
    same_defs, branches = [], []
    for f in _py_files():
        rel = f.relative_to(SRC).as_posix()
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    node.name in ("same", "same_label", "labels_equal") or node.name.startswith("same_")):
                same_defs.append(f"{rel}:{node.lineno} def {node.name}")
            if isinstance(node, ast.Compare) and rel not in PENDING:
                consts = [c for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(c.value in ("single", "multi") for c in consts):
                    branches.append(f"{rel}:{node.lineno}")
    assert same_defs == [], same_defs
    assert branches == [], branches
    assert not (SRC / "schemas.py").exists()


def test_static_pages_use_the_widget_registry():
    static = SRC / "server" / "static"
    for js in static.glob("*.js"):
        if js.name == "kinds.js":
            continue
        text = js.read_text(encoding="utf-8")
        assert '=== "multi"' not in text and '=== "single"' not in text, js.name
    for page in ("label", "index", "admin", "quality"):
        html = (static / f"{page}.html").read_text(encoding="utf-8")
        assert html.index("/static/kinds.js") < html.index(f"/static/{page}.js"), page
