"""A project's settings: one typed, frozen model, validated in one place.

:class:`ProjectSettings` holds every setting of a labeling project, with its
description, its range and the rules between settings (``max_answers``
needs ``target_confidence``, ``target_match`` needs a model, ...). Creating a
project (:func:`validate_new`) and changing one (:func:`validate_change`) go
through it, and so do the HTTP settings route (:func:`patch_model` builds its
request model from these fields, so OpenAPI shows each with its description)
and ``assay project set PROJECT key=value`` (:func:`parse_value` reads a
value by its field's type). Checks that need the database or the vector
store — does the embedding space exist, may the server call that backend URL
— are :func:`check_context`, called from the same place
(:func:`assay.engine.projects.update`, behind
:meth:`assay.workspace.Workspace.update_project`).

Every error is an :class:`~assay.errors.InvalidInput` with one sentence that
names the setting and its allowed values, never a pydantic dump.

Settings fixed when a project is created (``kind``, ``overlap``: every task
was made wanting that many answers) are in the model but not changeable;
:data:`CHANGEABLE` lists the rest.
"""

from __future__ import annotations

import copy
import functools
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, create_model, \
    model_validator

from assay.errors import InvalidInput

#: ``max_answers`` when adaptive redundancy is on and none is given: max(overlap, this)
DEFAULT_MAX_ANSWERS = 5
#: share of auto-labels still sent to people when ``auto_label_target`` is set and no rate is given
DEFAULT_AUDIT_RATE = 0.05
#: what ``gold_rate`` / ``gold_min_answers`` mean when unset (the gold module's rules)
DEFAULT_GOLD_RATE = 0.05
DEFAULT_GOLD_MIN_ANSWERS = 5
#: what ``gold_min_score`` means when unset: the score (the kind's
#: ``score``, in [0, 1]) at which a gold answer counts right. Only kinds with
#: partial credit (spans, boxes, polygons: an F1) are affected; with 0.8 an
#: answer that misses one object of five (F1 0.89) is right, one that misses
#: two (0.75) or adds a stray box to a single one (0.67) is not.
DEFAULT_GOLD_MIN_SCORE = 0.8
#: what ``exam_pass`` / ``exam_retries`` mean when unset (the exam module's rules)
DEFAULT_EXAM_PASS = 0.8
DEFAULT_EXAM_RETRIES = 1
#: what ``teach_rate`` / ``teach_items`` mean when unset (the teaching module's rules)
DEFAULT_TEACH_RATE = 0.2
DEFAULT_TEACH_ITEMS = 3
#: skill-aware routing: what ``routing`` may be ('off': the pool's order), and
#: the share of routed hand-outs that take a random candidate when
#: ``routing_random_share`` is unset (skills keep being learned on every kind of item)
ROUTING = ("off", "skill")
DEFAULT_ROUTING_RANDOM_SHARE = 0.1


class _Rule(ValueError):
    """A rule's own message (kept as is when pydantic reports it)."""


def _number(v: Any) -> Any:
    """A JSON number: no booleans, no strings (``"0.5"`` is a typo, not 0.5)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("not a number")
    return v


def _whole(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("not a whole number")
    return v


def _text(v: Any) -> Any:
    if not isinstance(v, str):
        raise ValueError("not text")
    return v


def _routing(v: Any) -> Any:
    if v not in ROUTING:
        raise ValueError("not a routing")
    return v


def _names(v: Any) -> Any:
    if isinstance(v, str) or not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ValueError("not a list of names")
    return tuple(v)


def _number_in(**bounds: Any) -> Any:
    """A number within ``bounds`` (``ge``, ``gt``, ``le``, ``lt``)."""
    return Annotated[float, Field(**bounds), BeforeValidator(_number)]


def _whole_in(**bounds: Any) -> Any:
    return Annotated[int, Field(**bounds), BeforeValidator(_whole)]


def _text_of(**bounds: Any) -> Any:
    return Annotated[str, Field(**bounds), BeforeValidator(_text)]


Names = Annotated[tuple[str, ...], BeforeValidator(_names)]


def _setting(default: Any, description: str, rule: str, *, changeable: bool = True):
    """A field with its description (OpenAPI, ``assay project set --help``),
    the sentence a bad value gets (``rule``) and whether it may change after
    the project is created."""
    return Field(default, description=description, json_schema_extra={"changeable": changeable, "rule": rule})


class ProjectSettings(BaseModel):
    """Every setting of a labeling project (see the module notes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: _text_of() = _setting(
        "single", "The label kind (assay.kinds): single, multi, …", "kind must be a registered label kind",
        changeable=False)
    instructions: _text_of(max_length=100_000) = _setting(
        "", "Instructions shown to annotators above every task.", "instructions must be text (at most 100,000 "
        "characters)")
    overlap: _whole_in(ge=1, le=100) = _setting(
        1, "Answers wanted per item (fixed when the project is created).",
        "overlap (answers wanted per item) must be an integer from 1 to 100", changeable=False)
    lease_seconds: _whole_in(ge=5, le=7 * 86400) = _setting(
        600, "How long a task handed out stays reserved for its annotator, in seconds.",
        "lease_seconds must be an integer from 5 to 604800")
    show_fields: Names = _setting(
        (), "Metadata fields of an item that annotators may see.", "show_fields must be a list of field names")
    target_confidence: _number_in(ge=0.5, lt=1.0) | None = _setting(
        None, "Adaptive redundancy: an item gets one more answer while its confidence is below this "
        "(null: a fixed overlap). On or off is chosen when the project is created.",
        "target_confidence must be a number in [0.5, 1)")
    max_answers: _whole_in(ge=1, le=100) | None = _setting(
        None, f"Adaptive redundancy: the most answers an item gets (default max(overlap, {DEFAULT_MAX_ANSWERS})).",
        "max_answers must be an integer from overlap to 100")
    gold_rate: _number_in(ge=0.0, le=0.5) | None = _setting(
        None, f"Share of each annotator's tasks that are gold questions (null: {DEFAULT_GOLD_RATE}).",
        "gold_rate (share of tasks that are gold questions) must be from 0 to 0.5")
    gold_min_accuracy: _number_in(gt=0.0, le=1.0) | None = _setting(
        None, "Pause an annotator whose accuracy on gold falls below this (null: never pause).",
        "gold_min_accuracy must be above 0 and at most 1")
    gold_min_score: _number_in(gt=0.0, le=1.0) | None = _setting(
        None, f"Score (span or shape F1 against the gold label; 0 or 1 for class labels) at which a gold answer "
        f"counts right (null: {DEFAULT_GOLD_MIN_SCORE}).", "gold_min_score must be above 0 and at most 1")
    gold_min_answers: _whole_in(ge=1, le=1000) | None = _setting(
        None, f"Gold answers before the accuracy bar applies (null: {DEFAULT_GOLD_MIN_ANSWERS}).",
        "gold_min_answers must be an integer from 1 to 1000")
    exam_size: _whole_in(ge=1, le=200) | None = _setting(
        None, "Qualification exam: exam items (gold with purpose 'exam') per attempt, answered before any real "
        "work (null: no exam).", "exam_size (exam items per attempt) must be an integer from 1 to 200 (or null)")
    exam_pass: _number_in(gt=0.0, le=1.0) | None = _setting(
        None, f"Qualification exam: share of an attempt's items answered right to pass (null: {DEFAULT_EXAM_PASS}).",
        "exam_pass (share right to pass the exam) must be above 0 and at most 1")
    exam_retries: _whole_in(ge=0, le=100) | None = _setting(
        None, f"Qualification exam: attempts allowed after a failed one (null: {DEFAULT_EXAM_RETRIES}).",
        "exam_retries (attempts after a failed exam) must be an integer from 0 to 100")
    teach_bar: _number_in(gt=0.0, le=1.0) | None = _setting(
        None, "Teaching: an annotator whose skill on a nuance (share right on its hidden checks) is below this "
        "with 90 % confidence gets teaching items (gold with purpose 'teach') for it (null: no teaching).",
        "teach_bar (skill below which a nuance is taught) must be above 0 and at most 1 (or null)")
    teach_rate: _number_in(gt=0.0, le=1.0) | None = _setting(
        None, f"Teaching: share of an annotator's next tasks that are teaching items while they have a nuance to "
        f"learn (null: {DEFAULT_TEACH_RATE}).", "teach_rate (share of tasks that are teaching items) must be "
        "above 0 and at most 1")
    teach_items: _whole_in(ge=1, le=100) | None = _setting(
        None, f"Teaching: teaching items per weak nuance before its skill is measured again (null: "
        f"{DEFAULT_TEACH_ITEMS}).", "teach_items (teaching items per weak nuance) must be an integer from 1 to 100")
    ml_space: _text_of(min_length=1, max_length=200) | None = _setting(
        None, "Machine learning in the loop: the embedding space of the project's model (`assay embed`; "
        "null: no model).", "ml_space must be the name of an embedding space (or null)")
    auto_label_target: _number_in(ge=0.5, lt=1.0) | None = _setting(
        None, "Accuracy the model's auto-labels must reach (null: no auto-labels; needs ml_space).",
        "auto_label_target must be a number in [0.5, 1)")
    audit_rate: _number_in(ge=0.0, le=0.5) | None = _setting(
        None, f"Share of auto-labeled items still sent to people (default {DEFAULT_AUDIT_RATE} with "
        "auto_label_target).", "audit_rate must be a number from 0 to 0.5")
    target_match: _whole_in(ge=1, le=15) | None = _setting(
        None, "k: each model step sets target_confidence so labels are as accurate as a k-vote majority "
        "(needs target_confidence and ml_space; null: keep target_confidence as set).",
        "target_match must be a whole number of votes from 1 to 15 (or None)")
    routing: Annotated[str, BeforeValidator(_routing)] = _setting(
        "off", "Skill-aware routing: 'skill' hands each annotator the open item where their answer is expected "
        "to add the most (their confusion matrix and the item's posterior, among the next candidates in the "
        "pool's order); 'off': the pool's order.", "routing must be 'off' or 'skill'")
    routing_random_share: _number_in(ge=0.0, le=1.0) | None = _setting(
        None, f"Skill-aware routing: share of hand-outs that take a random candidate instead (null: "
        f"{DEFAULT_ROUTING_RANDOM_SHARE}).", "routing_random_share must be a number from 0 to 1")
    ml_backend_url: _text_of(max_length=2000) | None = _setting(
        None, "A Label Studio compatible ML backend (http(s)://host:port) or python:<name> that pre-labels "
        "items (null: none).", "ml_backend_url must be a string: http(s)://host:port or python:<name>")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Defaults that depend on other settings (before the fields are checked)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("ml_space") is None:  # no model: nothing of the model's applies
            data["auto_label_target"] = data["audit_rate"] = None
        elif data.get("auto_label_target") is not None and data.get("audit_rate") is None:
            data["audit_rate"] = DEFAULT_AUDIT_RATE
        overlap = data.get("overlap", 1)
        if data.get("target_confidence") is not None and data.get("max_answers") is None \
                and isinstance(overlap, int) and not isinstance(overlap, bool):
            data["max_answers"] = max(overlap, DEFAULT_MAX_ANSWERS)
        return data

    @model_validator(mode="after")
    def _rules(self) -> ProjectSettings:
        """The rules between settings."""
        from assay import kinds

        kind = kinds.get(self.kind)  # an unknown kind: InvalidInput naming the known ones
        if self.target_confidence is None:
            if self.max_answers is not None:
                raise _Rule("max_answers needs target_confidence (adaptive redundancy)")
        else:
            if not (kind.aggregatable or kind.merges_answers):
                raise _Rule(f"adaptive redundancy (target_confidence) is for {', '.join(kinds.adaptive())} "
                            f"projects, not {self.kind}")
            if self.max_answers < self.overlap:
                raise _Rule("max_answers must be an integer from overlap to 100")
            if kind.merges_answers and not kind.aggregatable and self.overlap < 2:
                # a lone answer agrees with itself: its merged confidence says nothing
                raise _Rule(f"adaptive redundancy on {self.kind} projects needs overlap of 2 or more: "
                            "one answer cannot be checked against another")
        if self.ml_space is not None and not kind.aggregatable:
            raise _Rule("machine learning in the loop needs a single-label project")
        if self.routing != "off" and not kind.aggregatable:
            raise _Rule("skill-aware routing (routing = 'skill') needs a single-label project")
        if self.target_match is not None and (self.ml_space is None or self.target_confidence is None):
            raise _Rule("target_match needs adaptive redundancy (target_confidence) and a model (ml_space)")
        return self

    @classmethod
    def from_row(cls, row: Any) -> ProjectSettings:
        """The settings of a ``projects`` row as stored (validated when they
        were written, so not again: an old row never makes a project unreadable)."""
        spec = row.schema_spec or {}
        return cls.model_construct(
            kind=row.schema_kind, instructions=str(spec.get("instructions") or ""), overlap=row.overlap,
            lease_seconds=row.lease_seconds, show_fields=tuple(row.show_fields or ()),
            target_confidence=row.target_confidence, max_answers=row.max_answers, gold_rate=row.gold_rate,
            gold_min_accuracy=row.gold_min_accuracy, gold_min_answers=row.gold_min_answers,
            gold_min_score=row.gold_min_score, exam_size=row.exam_size,
            exam_pass=row.exam_pass, exam_retries=row.exam_retries, teach_bar=row.teach_bar,
            teach_rate=row.teach_rate, teach_items=row.teach_items, ml_space=row.ml_space,
            auto_label_target=row.auto_label_target, audit_rate=row.audit_rate, target_match=row.target_match,
            ml_backend_url=row.ml_backend_url, routing=row.routing,
            routing_random_share=row.routing_random_share)

    def columns(self) -> dict[str, Any]:
        """The ``projects`` columns these settings are stored in, but the
        schema (``kind`` and ``instructions`` live in ``schema_kind`` /
        ``schema_spec``, which the label kind owns)."""
        out = self.model_dump(exclude={"kind", "instructions"})
        out["show_fields"] = list(self.show_fields)
        return out


#: the settings a project's owner may change after creating it
CHANGEABLE: tuple[str, ...] = tuple(
    name for name, f in ProjectSettings.model_fields.items() if (f.json_schema_extra or {}).get("changeable"))


def rule(name: str) -> str:
    """The sentence a bad value of setting ``name`` gets."""
    return ProjectSettings.model_fields[name].json_schema_extra["rule"]  # type: ignore[index]


def _invalid(exc: ValidationError) -> InvalidInput:
    """One clear sentence for the first problem pydantic found."""
    err = exc.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _Rule):
        return InvalidInput(str(cause))
    loc = err.get("loc") or ()
    if loc and loc[0] in ProjectSettings.model_fields:
        return InvalidInput(rule(str(loc[0])))
    return InvalidInput(f"bad project settings: {err.get('msg')}")


def _build(values: Mapping[str, Any]) -> ProjectSettings:
    try:
        return ProjectSettings(**values)
    except ValidationError as exc:
        raise _invalid(exc) from None


def validate_new(**values: Any) -> ProjectSettings:
    """The settings of a new project (missing ones take their defaults), or
    InvalidInput. ``None`` for ``instructions`` / ``show_fields`` is the default."""
    unknown = sorted(set(values) - set(ProjectSettings.model_fields))
    if unknown:
        raise InvalidInput(f"unknown project setting(s) {', '.join(unknown)}; "
                           f"known: {', '.join(ProjectSettings.model_fields)}")
    for name in ("instructions", "show_fields"):
        if values.get(name, "") is None:
            values.pop(name)
    return _build(values)


def validate_change(current: ProjectSettings, **changes: Any) -> ProjectSettings:
    """``current`` with ``changes`` applied, checked as a whole, or
    InvalidInput (nothing changes then). Only :data:`CHANGEABLE` settings
    change; adaptive redundancy stays on or off as the project was made."""
    fixed = sorted(set(changes) - set(CHANGEABLE))
    if fixed:
        raise InvalidInput(f"cannot change {', '.join(fixed)}; changeable: {', '.join(CHANGEABLE)}")
    if "target_confidence" in changes and (changes["target_confidence"] is None) != (current.target_confidence is None):
        raise InvalidInput("adaptive redundancy (target_confidence) is switched on or off only when a project is "
                           "created; a project that has it may change its target and max_answers")
    return _build({**current.model_dump(), **changes})


def check_context(changes: Mapping[str, Any], settings: ProjectSettings, *, vectors) -> dict[str, Any]:
    """The checks that need more than the values: the embedding space exists
    in ``vectors`` (when ``ml_space`` is given) and the backend URL passes the
    server-side request checks (:func:`assay.learn.ml_backend.check_url`). Returns the
    canonical backend URL as ``{"ml_backend_url": ...}`` when it was given."""
    from assay.learn import ml_backend
    from assay.errors import NotFound

    if "ml_space" in changes and settings.ml_space is not None:
        try:
            vectors.meta(settings.ml_space)
        except NotFound:
            raise InvalidInput(f"no vectors in space {settings.ml_space!r}: embed the project's dataset first") \
                from None
    if "ml_backend_url" in changes:
        return {"ml_backend_url": ml_backend.check_url(changes["ml_backend_url"])}
    return {}


# ---------------------------------------------------------------- edges: HTTP and CLI


@functools.cache
def _properties() -> dict[str, Any]:
    """The model's JSON-schema properties, made once per process (~5 ms each time)."""
    return ProjectSettings.model_json_schema()["properties"]


def _json_schema(name: str) -> dict[str, Any]:
    schema = copy.deepcopy(_properties()[name])
    schema.pop("changeable", None)
    schema.pop("rule", None)
    schema.pop("default", None)
    return schema


#: the settings a new project takes besides its schema (kind, classes,
#: instructions); the model's are set afterwards (they need embeddings or a reachable backend)
CREATE_FIELDS = ("overlap", "lease_seconds", "show_fields", "target_confidence", "max_answers", "gold_rate",
                 "gold_min_accuracy", "gold_min_answers", "exam_size", "exam_pass", "exam_retries")


def create_fields() -> dict[str, Any]:
    """Fields of :data:`CREATE_FIELDS` for a request model (``create_model``),
    typed and bounded as here, so the route refuses a value out of range
    before it runs (422); the rules between settings come from
    :func:`validate_new` (400)."""
    out = {}
    for name in CREATE_FIELDS:
        f = ProjectSettings.model_fields[name]
        typ = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
        out[name] = (typ, Field(f.default, description=f.description))
    return out


def patch_model() -> type[BaseModel]:
    """The request body of the settings route: each changeable setting,
    optional, with its type, range and description in the JSON schema. Values
    are checked by :func:`validate_change` (a bad one is a 400 with the
    setting's rule, like every other bad input), so here they pass as sent."""
    fields: dict[str, Any] = {
        name: (Annotated[Any, WithJsonSchema(_json_schema(name))],
               Field(None, description=ProjectSettings.model_fields[name].description))
        for name in CHANGEABLE}
    # other keys pass through to validate_change, which says which settings are changeable
    return create_model("ProjectSettingsPatch", __config__=ConfigDict(extra="allow"),
                        __doc__="Settings to change; only the keys sent change (null: the setting's off/default).",
                        **fields)


_NULL = ("null", "none", "")


def parse_value(name: str, raw: str) -> Any:
    """A setting's value written on a command line (``key=value``), read by
    the setting's type: numbers, whole numbers, comma-separated names for
    ``show_fields``; ``null``/``none``/empty turns an optional setting off."""
    if name not in ProjectSettings.model_fields:
        raise InvalidInput(f"unknown project setting {name!r}; changeable: {', '.join(CHANGEABLE)}")
    ann = ProjectSettings.model_fields[name].annotation
    args = typing.get_args(ann)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), ann) if optional else ann
    base = typing.get_args(base)[0] if typing.get_origin(base) is Annotated else base
    text = raw.strip()
    if optional and text.lower() in _NULL:
        return None
    if typing.get_origin(base) is tuple:
        return [x.strip() for x in text.split(",") if x.strip()]
    try:
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise InvalidInput(rule(name) + f", got {raw[:40]!r}") from None
    return raw


def describe() -> str:
    """One line per changeable setting (``assay project set --help``)."""
    lines = []
    for name in CHANGEABLE:
        f = ProjectSettings.model_fields[name]
        lines.append(f"{name}: {f.description}")
    return "\n".join(lines)


def schema() -> list[dict[str, Any]]:
    """Every setting, in model order, for a form built from the model (the
    admin wizard): name, JSON-schema type and bounds, default, description,
    whether it may change after creation and whether creation takes it."""
    out = []
    for name, f in ProjectSettings.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        out.append({"name": name, "default": f.default, "description": f.description or "",
                    "changeable": bool(extra.get("changeable", True)), "at_create": name in CREATE_FIELDS,
                    "schema": _json_schema(name)})
    return out
