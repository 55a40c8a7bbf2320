"""Project settings (assay.engine.settings) and the configuration
(assay.config): every setting changes through the API and the CLI, bad values
are a clear 400 / InvalidInput that changes nothing, OpenAPI and --help list
the fields from the model, and a bad environment variable is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

import assay
from assay import config as assay_config
from assay.cli import app as cli_app
from assay.engine import settings
from assay.errors import InvalidInput
from assay.server import create_app
from assay.workspace import Workspace
from factories import embedded_dataset

#: a valid new value for every changeable setting, in an order where each
#: change is allowed (the model before what needs it); CLI text alongside
NEW_VALUES = [
    ("instructions", "Read the whole text first.", "Read the whole text first."),
    ("lease_seconds", 120, "120"),
    ("show_fields", ["source", "lang"], "source,lang"),
    ("target_confidence", 0.8, "0.8"),
    ("max_answers", 7, "7"),
    ("gold_rate", 0.2, "0.2"),
    ("gold_min_accuracy", 0.7, "0.7"),
    ("gold_min_score", 0.6, "0.6"),
    ("gold_min_answers", 3, "3"),
    ("exam_size", 4, "4"),
    ("exam_pass", 0.75, "0.75"),
    ("exam_retries", 0, "0"),
    ("teach_bar", 0.6, "0.6"),
    ("teach_rate", 0.3, "0.3"),
    ("teach_items", 4, "4"),
    ("ml_space", "f", "f"),
    ("auto_label_target", 0.9, "0.9"),
    ("audit_rate", 0.1, "0.1"),
    ("target_match", 3, "3"),
    ("routing", "skill", "skill"),
    ("routing_random_share", 0.2, "0.2"),
    ("ml_backend_url", "python:toy", "python:toy"),
]

#: bad values of each setting (the project is adaptive with overlap 2 and has a model)
BAD_VALUES = {
    "instructions": [3, None, "x" * 100_001],
    "lease_seconds": [4, 7 * 86400 + 1, 60.5, True, "60", None],
    "show_fields": ["source", [1], None],
    "target_confidence": [0.4, 1.0, 1.5, True, "0.9"],
    "max_answers": [1, 101, 3.5, False],  # 1 < overlap
    "gold_rate": [-0.1, 0.51, "0.1", True],
    "gold_min_accuracy": [0, 1.2, "high"],
    "gold_min_score": [0, -0.5, 1.01, "0.9", True],
    "gold_min_answers": [0, 1001, 2.5],
    "exam_size": [0, 201, 2.5, True, "3"],
    "exam_pass": [0, 1.01, "0.8", False],
    "exam_retries": [-1, 101, 1.5, "1"],
    "teach_bar": [0, 1.1, "0.6", True],
    "teach_rate": [0, 1.5, "0.2", False],
    "teach_items": [0, 101, 2.5, True, "3"],
    "ml_space": ["", "nope", 5],
    "auto_label_target": [0.3, 1, "0.9"],
    "audit_rate": [-0.01, 0.6, False],
    "target_match": [0, 16, 2.5, True, "3"],
    "routing": ["smart", None, 1, True, ""],
    "routing_random_share": [-0.1, 1.5, "0.1", True],
    "ml_backend_url": [5, "ftp://x", "http://169.254.169.254/", "python:bad name"],
}


def test_every_changeable_setting_has_new_and_bad_values():
    assert [n for n, *_ in NEW_VALUES] == list(settings.CHANGEABLE)
    assert set(BAD_VALUES) == set(settings.CHANGEABLE)
    assert "overlap" not in settings.CHANGEABLE and "kind" not in settings.CHANGEABLE


def _project(ws):
    ds, _, _ = embedded_dataset(ws, 20)
    return ws.create_project("p", ds["id"], ["a", "b"], overlap=2, target_confidence=0.9)


def _value(p: dict, name: str):
    return p["schema"]["instructions"] if name == "instructions" else p[name]


def _admin(ws):
    _, tok = ws.add_user("root", "admin")
    return {"Authorization": f"Bearer {tok}"}


def test_every_setting_round_trips_through_the_api(ws):
    p = _project(ws)
    h = _admin(ws)
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        for name, value, _ in NEW_VALUES:
            r = c.patch(f"/api/projects/{p['id']}/settings", headers=h, json={name: value})
            assert r.status_code == 200, (name, r.text)
            assert _value(r.json(), name) == value, name
            assert _value(c.get(f"/api/projects/{p['id']}", headers=h).json(), name) == value
        # null turns an optional setting off (or back to its default)
        r = c.patch(f"/api/projects/{p['id']}/settings", headers=h,
                    json={"gold_min_accuracy": None, "gold_rate": None, "target_match": None, "ml_space": None})
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["gold_min_accuracy"], got["gold_rate"], got["ml_space"], got["auto_label_target"],
                got["audit_rate"], got["target_match"]) == (None, settings.DEFAULT_GOLD_RATE, None, None, None, None)
    s = ws.project_settings(p["id"])
    assert (s.lease_seconds, s.show_fields, s.max_answers, s.instructions) == \
        (120, ("source", "lang"), 7, "Read the whole text first.")


def test_bad_values_are_a_clear_400_and_change_nothing(ws):
    p = _project(ws)
    ws.update_project(p["id"], ml_space="f")
    h = _admin(ws)
    before = ws.get_project(p["id"])
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        url = f"/api/projects/{p['id']}/settings"
        for name, bads in BAD_VALUES.items():
            for bad in bads:
                other = {"lease_seconds": 77} if name != "lease_seconds" else {"gold_rate": 0.3}
                r = c.patch(url, headers=h, json={**other, name: bad})
                assert r.status_code == 400, (name, bad, r.text)
                err = r.json()["error"]
                assert err["code"] == "bad_request"
                assert name in err["message"] or re.search("space|python model", err["message"]), (name, bad, err)
                assert "pydantic" not in err["message"] and "Value error" not in err["message"]
                ws.forget_project(p["id"])
                assert ws.get_project(p["id"]) == before, (name, bad)
        for body, message in (
                ({"overlap": 3}, "cannot change overlap; changeable: instructions, lease_seconds"),
                ({"kind": "multi"}, "cannot change kind"),
                ({"colour": "red"}, "cannot change colour"),
                ({"target_confidence": None}, "switched on or off only when a project is created"),
                ({"ml_space": "nope"}, "no vectors in space 'nope'"),
                ({"target_match": 2, "ml_space": None}, "target_match needs"),
                ({"ml_backend_url": "http://169.254.169.254/"}, "never allowed")):
            r = c.patch(url, headers=h, json=body)
            assert r.status_code == 400 and message in r.json()["error"]["message"], (body, r.text)
        assert c.patch(url, json={"gold_rate": 0.3}).status_code == 401  # admins only
    ws.forget_project(p["id"])
    assert ws.get_project(p["id"]) == before


def test_fixed_overlap_project_cannot_take_adaptive_settings(ws):
    ds, _, _ = embedded_dataset(ws, 10)
    p = ws.create_project("fixed", ds["id"], ["a", "b"], overlap=2)
    for changes, message in (({"max_answers": 5}, "max_answers needs target_confidence"),
                             ({"target_confidence": 0.9}, "switched on or off only when a project is created"),
                             ({"ml_space": "f", "target_match": 3}, "target_match needs adaptive redundancy")):
        with pytest.raises(InvalidInput, match=message):
            ws.update_project(p["id"], **changes)
    multi = ws.create_project("multi", ds["id"], ["a", "b"], kind="multi")
    with pytest.raises(InvalidInput, match="machine learning in the loop needs a single-label project"):
        ws.update_project(multi["id"], ml_space="f")
    # model settings follow the model: no model, no auto-labels
    got = ws.update_project(p["id"], ml_space="f", auto_label_target=0.95)
    assert (got["auto_label_target"], got["audit_rate"]) == (0.95, settings.DEFAULT_AUDIT_RATE)
    got = ws.update_project(p["id"], ml_space=None)
    assert (got["ml_space"], got["auto_label_target"], got["audit_rate"]) == (None, None, None)


def test_every_setting_round_trips_through_the_cli(home):
    with Workspace(home) as ws:
        p = _project(ws)
    runner = CliRunner()
    for name, value, text in NEW_VALUES:
        r = runner.invoke(cli_app, ["project", "set", "p", f"{name}={text}"])
        assert r.exit_code == 0, (name, r.output)
        with Workspace(home) as ws:
            assert _value(ws.get_project(p["id"]), name) == value, name
    r = runner.invoke(cli_app, ["project", "set", "p", "gold_min_accuracy=null", "lease_seconds=60",
                                "--gold-rate", "0.25"])
    assert r.exit_code == 0, r.output
    with Workspace(home) as ws:
        got = ws.get_project(p["id"])
    assert (got["gold_min_accuracy"], got["lease_seconds"], got["gold_rate"]) == (None, 60, 0.25)
    # bad values: one line naming the setting, exit 1, nothing changed
    for args, message in ((["lease_seconds=soon"], "lease_seconds must be an integer from 5 to 604800"),
                          (["lease_seconds=4"], "lease_seconds must be an integer"),
                          (["gold_rate=0.9", "lease_seconds=90"], "gold_rate (share of tasks"),
                          (["overlap=3"], "cannot change overlap"),
                          (["colour=red"], "unknown project setting 'colour'")):
        r = runner.invoke(cli_app, ["project", "set", "p", *args])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, (args, r.output)
    with Workspace(home) as ws:
        assert ws.get_project(p["id"]) == got
    r = runner.invoke(cli_app, ["project", "set", "p", "lease_seconds"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
    assert runner.invoke(cli_app, ["project", "set", "p"]).exit_code == 2


def test_cli_help_lists_the_settings_from_the_model():
    r = CliRunner().invoke(cli_app, ["project", "set", "--help"], terminal_width=200)
    assert r.exit_code == 0
    text = re.sub(r"\s+", " ", r.output)
    for name in settings.CHANGEABLE:
        description = settings.ProjectSettings.model_fields[name].description
        assert f"{name}: {description}" in text, name


def test_openapi_lists_every_setting_with_its_description(ws):
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        spec = c.get("/openapi.json").json()
    op = spec["paths"]["/api/projects/{project_id}/settings"]["patch"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    props = spec["components"]["schemas"][ref]["properties"]
    assert list(props) == list(settings.CHANGEABLE)
    for name, schema in props.items():
        assert schema["description"] == settings.ProjectSettings.model_fields[name].description
    assert props["lease_seconds"]["minimum"] == 5 and props["lease_seconds"]["maximum"] == 604800
    assert {"type": "number", "minimum": 0.5, "exclusiveMaximum": 1.0} in props["target_confidence"]["anyOf"]
    create = spec["components"]["schemas"]["ProjectIn"]["properties"]
    for name in settings.CREATE_FIELDS:
        assert create[name]["description"] == settings.ProjectSettings.model_fields[name].description


def test_the_model_is_frozen_and_validated_in_one_place():
    s = settings.validate_new(overlap=3, target_confidence=0.95)
    assert s.max_answers == 5 and s.overlap == 3  # the default max is max(overlap, 5)
    with pytest.raises(ValidationError):
        s.overlap = 4  # type: ignore[misc]
    assert settings.validate_change(s, max_answers=9).max_answers == 9
    assert s.max_answers == 5
    with pytest.raises(InvalidInput, match="max_answers must be an integer from overlap to 100"):
        settings.validate_change(s, max_answers=2)
    with pytest.raises(InvalidInput, match="unknown label kind"):
        settings.validate_new(kind="cuboids")
    # no rule is written twice: the old validators are gone
    src = Path(assay.__file__).resolve().parent
    for path in src.rglob("*.py"):
        if path.name != "settings.py":
            code = path.read_text()
            assert "def check_settings" not in code and "def check_match" not in code, path


# ---------------------------------------------------------------- configuration


NUMERIC = [v for v in assay_config.VARIABLES if v.default is not None and not isinstance(v.default, str)]


@pytest.mark.parametrize("var", NUMERIC, ids=lambda v: v.env)
def test_a_bad_environment_variable_is_named(var, monkeypatch):
    monkeypatch.setenv(var.env, "lots")
    with pytest.raises(InvalidInput, match=f"^{var.env} must be"):
        assay_config.config()
    monkeypatch.setenv(var.env, "-3")
    with pytest.raises(InvalidInput, match=f"^{var.env} must"):
        assay_config.Config.from_env()
    monkeypatch.delenv(var.env)
    assert getattr(assay_config.config(), var.field) == var.default


def test_config_is_read_once_and_again_when_the_environment_changes(monkeypatch):
    for v in assay_config.VARIABLES:
        monkeypatch.delenv(v.env, raising=False)
    first = assay_config.config()
    assert first == assay_config.Config() and assay_config.config() is first  # cached
    monkeypatch.setenv("ASSAY_MAX_UPLOAD_MB", "3")
    monkeypatch.setenv("ASSAY_REFIT_INTERVAL", "0")
    c = assay_config.config()
    assert (c.max_upload_mb, c.refit_interval, c.schedule.refit_interval) == (3.0, 0.0, 0.0)
    assert c.schedule.ml_min_new == assay_config.SCHEDULE.ml_min_new
    assert assay_config.reload() == c
    # the defaults are those the modules had before
    from assay import security
    from assay.formats import ingest
    assert ingest.Limits.from_env() == ingest.Limits()
    assert security.AccountSettings.from_env() == security.AccountSettings()


def test_only_the_config_module_reads_the_environment():
    src = Path(assay.__file__).resolve().parent
    readers = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if p.name != "config.py"
                     and re.search(r"os\.environ\.(get|items)|os\.getenv|os\.environ\[[^]]+\](?!\s*=)", p.read_text()))
    assert readers == [], readers  # (cli.py sets ASSAY_HOME for its server workers; that is a write)
    documented = {v.env for v in assay_config.VARIABLES}
    used = set()
    for p in src.rglob("*.py"):
        used |= set(re.findall(r"\bASSAY_[A-Z_]+\b", p.read_text()))
    assert used <= documented, used - documented


def test_create_project_takes_every_setting_of_the_model(ws):
    ds, _, _ = embedded_dataset(ws, 10)
    p = ws.create_project("routed", ds["id"], ["a", "b"], routing="skill", routing_random_share=0.2,
                          teach_bar=0.7, teach_rate=0.3)
    assert (p["routing"], p["routing_random_share"], p["teach_bar"], p["teach_rate"]) == ("skill", 0.2, 0.7, 0.3)
    # checked like every other setting; a bad one creates nothing
    for bad in ({"routing": "fast"}, {"no_such": 1}, {"ml_space": "x"}):
        with pytest.raises(InvalidInput):
            ws.create_project("bad", ds["id"], ["a", "b"], **bad)
    assert [q["name"] for q in ws.list_projects()] == ["routed"]
