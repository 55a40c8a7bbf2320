"""What a label kind is: one class per kind owns every rule that depends on
the shape of a label.

A project has a ``kind`` (its name, stored in ``projects.schema_kind``) and a
``spec`` (the kind's schema, stored in ``projects.schema_spec``). Everything
that reads or compares labels asks the project's kind:

- ``normalize_schema(spec)``: check a schema spec, return its canonical form;
- ``validate(label, schema)``: the canonical stored form of an answer, or
  :class:`~assay.errors.InvalidInput` (submit, review, gold import, a model's
  suggestion, an ML backend's prediction);
- ``same(a, b)``: are two labels the same answer (gold scoring, suggestion
  statistics, majority confidence) — the one equality rule;
- ``score(label, known)``: how right an answer is against a known label, in
  [0, 1] (gold scoring against the project's ``gold_min_score``);
- ``majority(labels, classes)``: the label the answers agree on and how
  much they agree (export when no model decides);
- ``check_item(label, item)``: an answer that does not fit its item (spans
  past the end of the text), for kinds that set ``checks_item``;
- ``export_columns(label)``: the label in flat formats (CSV, Parquet);
- ``parse_text(cell)``: a label written in a text cell (CSV gold files);
- ``widget``: the name of the browser widget that renders answers
  (``static/kinds.js``);
- Label Studio: ``to_ls_results`` (a label as ``result`` entries),
  ``from_ls_results`` (an ML backend's results, lenient: what it cannot take
  is skipped and said) and ``from_ls_annotation`` (an export's annotation as
  gold, strict: the first bad result is refused, named);
- Hugging Face datasets: ``hf_columns`` and ``hf_values`` (the kind's columns).

A kind whose labels are one class out of K (``aggregatable``) goes through
the estimators of :mod:`assay.quality` (adaptive redundancy, the quality
report, the ML loop); others use what their kind module offers (multi-label:
:mod:`assay.quality.multilabel`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from assay.errors import InvalidInput


#: keys the labeling screen (label.js and its editors) keeps for itself, so
#: no class may take them (letters in either case): a accept, s skip, z undo,
#: n no entity / nothing, f fit, + = - _ zoom, space pan
RESERVED_KEYS = frozenset("aszfn+=-_ ")


def _class_key(name: str, key: Any, taken: dict[str, str]) -> str | None:
    """A class's own keyboard key (one printable character, not reserved, not
    another class's; letters compared in either case), or None: the screen's default."""
    if key is None or key == "":
        return None
    if not isinstance(key, str) or len(key) != 1 or not key.isprintable() or key.isspace():
        raise InvalidInput(f"class {name!r}: its key must be one printable character, got {key!r}")
    if key.lower() in RESERVED_KEYS:
        raise InvalidInput(f"class {name!r}: key {key!r} is kept by the labeling screen "
                           f"(a accept, s skip, z undo, n none, f fit, + = - _ zoom); choose another")
    other = taken.get(key.lower())
    if other is not None:
        raise InvalidInput(f"class {name!r}: key {key!r} is already the key of class {other!r}")
    taken[key.lower()] = name
    return key


def class_list(spec: dict) -> list[dict]:
    """The ``classes`` of a spec, canonical: ``[{name, description}]`` (and
    ``key`` when a class has its own keyboard key), names stripped, non-empty
    and distinct, keys checked by :func:`_class_key`."""
    raw = spec.get("classes")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("a classification schema needs a non-empty list of classes")
    out, seen, keys = [], set(), {}
    for c in raw:
        if isinstance(c, str):
            c = {"name": c}
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise InvalidInput(f"each class needs a non-empty name, got {c!r}")
        name = c["name"].strip()
        if name in seen:
            raise InvalidInput(f"class {name!r} is listed twice")
        seen.add(name)
        entry = {"name": name, "description": str(c.get("description") or "")}
        key = _class_key(name, c.get("key"), keys)
        if key is not None:
            entry["key"] = key
        out.append(entry)
    return out


#: the ``from_name`` of every Label Studio result assay writes (its control tag's name)
LS_FROM_NAME = "label"


def class_names(schema: dict) -> list[str]:
    return [c["name"] for c in schema.get("classes") or []]


def region_classes(value: Any, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(known, unknown)``: the class names of one Label Studio region's
    ``value[...labels]`` list (a string counts as one) mapped onto the
    project's classes: an exact name, else a unique case-insensitive match."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return [], ["a region without labels"]
    known, unknown = [], []
    for v in value:
        if isinstance(v, str) and v in names:
            known.append(v)
            continue
        folded = [n for n in names if isinstance(v, str) and n.casefold() == v.strip().casefold()]
        if len(folded) == 1:
            known.append(folded[0])
        else:
            unknown.append(str(v)[:80])
    return known, unknown


def region_labels(v: dict, key: str, names: Sequence[str]) -> tuple[list[str], list[str], str | None]:
    """``(known, unknown, why)``: the classes of one Label Studio region's
    ``value[key]`` (:func:`region_classes`); ``why`` when it holds no list of names."""
    if not isinstance(v.get(key), str | list):
        return [], [], f"value.{key} must be a list of class names"
    known, unknown = region_classes(v[key], names)
    return known, unknown, None


class LabelKind(ABC):
    """One kind of label. Subclasses set ``name``, ``widget`` and ``title``
    and implement :meth:`validate` and :meth:`majority`; the rest has
    defaults that fit labels compared with ``==``."""

    #: the kind's name, as projects store it
    name: ClassVar[str]
    #: the browser widget that renders answers of this kind (static/kinds.js)
    widget: ClassVar[str]
    #: the kind's own schema options beside classes and instructions, for a
    #: form (the wizard): name -> {type (JSON schema), default, description};
    #: :meth:`normalize_schema` checks them
    options: ClassVar[dict[str, dict]] = {}
    #: how people call it ("single label", "multi-label")
    title: ClassVar[str]
    #: answers are one class out of K: assay.quality's estimators apply
    aggregatable: ClassVar[bool] = False
    #: Label Studio ``Choices`` mode (``single`` / ``multiple``); None: no choices
    ls_choice: ClassVar[str | None] = None
    #: the Label Studio control tag of regions of this kind (``RectangleLabels``,
    #: ``PolygonLabels``, ``Labels``); None: choices (:attr:`ls_choice`) or nothing
    ls_tag: ClassVar[str | None] = None
    #: answers are checked against their item too (:meth:`check_item`): the
    #: server reads the item (one lookup by key) where an answer is taken
    checks_item: ClassVar[bool] = False
    #: export formats of this kind beside jsonl/csv/parquet (``assay.formats.export.KIND_FORMATS``)
    formats: ClassVar[tuple[str, ...]] = ()
    #: the kinds of item (``text``, ``image``) it labels; None: any (a project over other items is refused)
    item_kinds: ClassVar[tuple[str, ...] | None] = None
    #: labels are in the image's pixels: exports that carry the image's size
    #: (Label Studio, Hugging Face) hold the labeled items only, sized from their files
    in_pixels: ClassVar[bool] = False

    def normalize_schema(self, spec: dict | None) -> dict:
        """Check a schema spec and return it in canonical form (default: a
        list of classes and instructions)."""
        spec = dict(spec or {})
        return {"classes": class_list(spec), "instructions": str(spec.get("instructions") or "")}

    @abstractmethod
    def validate(self, label: Any, schema: dict) -> Any:
        """The canonical stored form of ``label``, or :class:`InvalidInput`."""

    def check_item(self, label: Any, item: dict) -> None:
        """Refuse (:class:`InvalidInput`) a canonical ``label`` that does not
        fit its item (``item``: its ``kind`` and ``text``); only called for
        kinds that set :attr:`checks_item`."""

    def same(self, a: Any, b: Any) -> bool:
        """Whether two canonical labels are the same answer."""
        return a == b

    def score(self, label: Any, known: Any) -> float:
        """How right ``label`` is against the ``known`` label, in [0, 1]
        (gold scoring: an answer counts right when this reaches the project's
        ``gold_min_score``). Default: 1.0 if :meth:`same`, else 0.0; kinds whose
        answers can be partly right (spans, shapes) give partial credit."""
        return 1.0 if self.same(label, known) else 0.0

    def agreement(self, labels: Sequence[Any]) -> float | None:
        """The share of pairs of answers that are the same (None under two answers)."""
        n = len(labels)
        if n < 2:
            return None
        agree = sum(self.same(labels[i], labels[j]) for i in range(n) for j in range(i + 1, n))
        return agree / (n * (n - 1) / 2)

    @abstractmethod
    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        """``(label, confidence)``: what the answers agree on most, and the
        share of answers that gave it (None where the kind has no such
        share). ``(None, None)`` for no answers."""

    #: answers merge into one label with a confidence (:meth:`item_consensus`,
    #: :meth:`fit_consensus`): adaptive redundancy (``target_confidence``)
    #: applies to its projects through the merged result (single-label kinds
    #: use the class posterior instead: :attr:`aggregatable`)
    merges_answers: ClassVar[bool] = False

    def item_consensus(self, labels: Sequence[Any], schema: dict) -> tuple[Any, float]:
        """``(label, confidence)``: one item's answers merged (cheap: runs in
        the answer's transaction), the confidence that the merged label is
        right, in [0, 1]. Only for kinds that set :attr:`merges_answers`."""
        raise InvalidInput(f"{self.title} projects have no merged consensus")

    def fit_consensus(self, rows: Sequence[tuple[int, int, Any]], schema: dict) -> tuple[str, dict]:
        """``(method, {item id: (label, confidence)})``: the merged result of
        every answered item from all of a project's answers ``(item id,
        annotator id, label)``, learning the annotators' skills where the kind
        can (the periodic re-fit). Default: :meth:`item_consensus` per item."""
        by_item: dict[int, list] = {}
        for item, _, label in rows:
            by_item.setdefault(item, []).append(label)
        return "vote", {i: self.item_consensus(labels, schema) for i, labels in by_item.items()}

    def export_columns(self, label: Any) -> dict:
        """The label in flat formats (CSV, Parquet): ``{"label": text or None}``;
        strings as they are, anything else as JSON."""
        if label is None:
            return {"label": None}
        return {"label": label if isinstance(label, str) else orjson.dumps(label).decode()}

    def parse_text(self, cell: str) -> Any:
        """A label written in a text cell (a CSV gold file), before :meth:`validate`."""
        return cell

    def to_choices(self, label: Any) -> list[str]:
        """The label as Label Studio ``choices``."""
        return list(label) if isinstance(label, list) else [label]

    def from_choices(self, known: list[str], classes: Sequence[str]) -> Any:
        """A label from a backend's (known) choices; None when there are none."""
        raise InvalidInput(f"{self.title} projects do not take Label Studio choices")

    @property
    def ls_type(self) -> str | None:
        """The Label Studio result ``type`` of this kind's labels (``choices``,
        ``labels``, ``rectanglelabels``, ``polygonlabels``); None: none."""
        if self.ls_tag is not None:
            return self.ls_tag.lower()
        return "choices" if self.ls_choice is not None else None

    def _ls_result(self, to: str, value: dict, **extra: Any) -> dict:
        return {"from_name": LS_FROM_NAME, "to_name": to, "type": self.ls_type, **extra, "value": value}

    def to_ls_results(self, label: Any, to: str, *, text: str | None = None,
                      size: tuple[int, int] | None = None) -> list[dict]:
        """A canonical label as Label Studio ``result`` entries for the object
        tag ``to`` (``text`` of the item for text regions, ``size`` (width,
        height) in pixels for image regions). Default: one ``choices`` result
        (:meth:`to_choices`), none when nothing is chosen."""
        if self.ls_choice is None:
            raise InvalidInput(f"{self.title} projects have no Label Studio form")
        chosen = [] if label is None else list(self.to_choices(label))
        return [self._ls_result(to, {"choices": chosen})] if chosen else []

    def _ls_region(self, r: dict, names: Sequence[str]) -> tuple[list, list[str], str | None]:
        """``(shapes, unknown, why)`` of one Label Studio region result of type
        :attr:`ls_type`: the label's parts it makes (one per known class), its
        unknown classes, and why it makes none (a bad field, named)."""
        raise InvalidInput(f"{self.title} projects do not take Label Studio regions")

    def from_ls_results(self, results: Sequence[dict], schema: dict) -> tuple[Any, list[str]]:
        """``(label, skipped)``: the canonical label an ML backend's region
        results make (Label Studio ``result`` entries of type :attr:`ls_tag`,
        percent coordinates for images, character offsets for text), and what
        was left out (unknown classes, regions the kind cannot hold); label
        None when nothing was left. :class:`InvalidInput` when the regions
        together are no valid label."""
        names, out, skipped = class_names(schema), [], []
        for r in results:
            shapes, unknown, why = self._ls_region(r, names)
            skipped.extend(unknown)
            if why:
                skipped.append(why)
            out.extend(shapes)
        return (self.validate(out, schema) if out else None), skipped

    def from_ls_choices(self, chosen: list[str], where: str) -> Any:
        """The label an annotation's ``choices`` make (strict, before
        :meth:`validate`); None for no label."""
        raise InvalidInput(f"{where}: {self.title} projects do not take Label Studio choices")

    def from_ls_annotation(self, results: list[dict], schema: dict, where: str) -> Any:
        """An annotation's ``result`` list (of a Label Studio export) as the
        canonical label, strictly: results of another type only are refused,
        and so is the first region that :meth:`from_ls_results` would skip;
        :class:`InvalidInput` names ``where`` (and the result). None: no label."""
        want = self.ls_type
        if want is None:
            raise InvalidInput(f"{where}: Label Studio import does not know {self.name!r} projects")
        mine = [r for r in results if str(r.get("type", "")).lower() == want]
        others = {str(r.get("type"))[:30] for r in results} - {want}
        if others and not mine:
            raise InvalidInput(f"{where}: {self.name} projects take {want!r} results, not {', '.join(sorted(others))}")
        if self.ls_tag is None:
            chosen = [c for r in mine for c in (r["value"].get("choices") or [])]
            if not all(isinstance(c, str) for c in chosen):
                raise InvalidInput(f"{where}: value.choices must be class names")
            label = self.from_ls_choices(chosen, where)
        else:
            names, label = class_names(schema), []
            for n, r in enumerate(mine):
                shapes, unknown, why = self._ls_region(r, names)
                if why or unknown:
                    raise InvalidInput(f"{where}, result {n}: "
                                       f"{why or f'unknown class(es) {unknown}: the project classes are {names}'}")
                label.extend(shapes)
        if label is None:
            return None
        try:
            return self.validate(label, schema)
        except InvalidInput as e:
            raise InvalidInput(f"{where}: {e}") from None

    def hf_columns(self, ds: Any, cls: Any) -> dict:
        """The kind's columns of a Hugging Face dataset (``ds``: the
        ``datasets`` module; ``cls``: the classes' ``ClassLabel``). Default:
        ``label`` as text, as :meth:`export_columns` writes it."""
        return {"label": ds.Value("string")}

    def hf_values(self, label: Any, idx: dict[str, int], rec: dict) -> dict:
        """The values of :meth:`hf_columns` for a final ``label`` (None: none
        yet; ``idx``: class name -> index; ``rec``: the export record)."""
        return self.export_columns(label)

    def proba(self, label: Any, score: float, classes: Sequence[str]) -> list[float]:
        """Per-class probabilities for a prediction that gives one ``score``
        (an ML backend's), as ``predictions.proba`` stores them."""
        raise InvalidInput(f"{self.title} projects do not take class predictions")

    def known_log_posterior(self, label: Any, classes: Sequence[str]) -> list[float]:
        """The consensus ``log_posterior`` of an item whose label is known
        (a reviewer's decision); empty where the kind keeps none."""
        return []

    def __repr__(self) -> str:
        return f"<label kind {self.name!r}>"
