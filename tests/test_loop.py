"""Machine learning in the loop through the real code: ml_step on a
workspace (SQLite and PostgreSQL) and `simulate --ml` on a generated crowd
with known truth and given features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import JSON, text
from typer.testing import CliRunner

from assay.cli import app
from assay.learn.step import ml_step
from factories import count, embedded_dataset


def _crowd(tmp_path, n=400, seed=0, right=0.95):
    """Two well-separated classes in feature space; 12 workers, ``right``
    of the time right; 4 answers per item."""
    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=n)
    X = (np.where(y[:, None] == 1, 1.0, -1.0) * 1.5 + rng.normal(0, 1, (n, 8))).astype(np.float32)
    rows = []
    for i in range(n):
        for w in rng.choice(12, 4, replace=False):
            lab = y[i] if rng.random() < right else 1 - y[i]
            rows.append(f"i{i},w{w},{'ab'[lab]}")
    (tmp_path / "answers.csv").write_text("item,worker,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "truth.csv").write_text("item,label\n" + "\n".join(f"i{i},{'ab'[y[i]]}" for i in range(n)) + "\n")
    np.save(tmp_path / "f.npy", X)
    (tmp_path / "ids.txt").write_text("\n".join(f"i{i}" for i in range(n)) + "\n")
    return y


@pytest.mark.slow  # 5 s
def test_simulate_ml_auto_labels_and_saves_answers(tmp_path):
    _crowd(tmp_path)
    res = CliRunner().invoke(app, [
        "simulate", "--ml", "--answers", str(tmp_path / "answers.csv"), "--truth", str(tmp_path / "truth.csv"),
        "--features", str(tmp_path / "f.npy"), "--feature-ids", str(tmp_path / "ids.txt"), "--seed", "1",
        "--auto-target", "0.9"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    for key in ("answers_used", "answers_available", "answers_per_item", "items", "accuracy", "items_resolved",
                "accuracy_resolved", "items_auto_labeled", "accuracy_auto_labeled", "baseline"):
        assert key in r, key
    assert r["items"] == 400 and r["items_with_truth"] == 400
    assert r["items_auto_labeled"] > 10
    assert r["accuracy_auto_labeled"] >= 0.9
    assert r["answers_used"] < r["baseline"]["answers"]
    assert r["accuracy"] >= r["baseline"]["accuracy"] - 0.02
    assert r["handout_mismatches"] == 0


def test_ml_step_trains_predicts_and_a_failed_audit_stops_auto_labels(ws):
    n = 120
    ds, ids, y = embedded_dataset(ws, n, seed=3)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.95, max_answers=3)
    ws.update_project(p["id"], ml_space="f", auto_label_target=0.9, audit_rate=0.0)
    # cold start: a diverse batch gets the top priorities, no model yet
    first = ml_step(ws, p["id"], batch=10)
    assert first["version"] is None and first["batch"] == 10
    assert count(ws, "tasks", "project_id = :p AND priority >= 2 AND priority < 2.5", p=p["id"]) == 10
    # and a held-out validation share waits for people first (half of a small project)
    n_val = count(ws, "tasks", "project_id = :p AND priority = 2.5", p=p["id"])
    assert 0.3 * n < n_val < 0.7 * n
    # people verify 80 items (gold here), the model trains and auto-labels the rest
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(80)])
    step = ml_step(ws, p["id"])
    assert step["version"] == 1 and 20 < step["verified"] < 80 and step["oof_accuracy"] > 0.9
    # every item but the held-out validation share (people label those unaided)
    from assay.learn.step import validation_mask
    n_val = int(validation_mask(np.array(ids), n).sum())
    assert count(ws, "predictions", "project_id = :p", p=p["id"]) == n - n_val
    assert step["auto_state"] == "on" and step["auto_labeled"] > 10
    n_auto = count(ws, "auto_labels", "project_id = :p", p=p["id"])
    assert n_auto == step["auto_labeled"]
    # auto-labeled items left the pool (no audits at rate 0)
    assert count(ws, "tasks", "project_id = :p AND open_slots = 0 AND answer_count = 0 AND NOT is_gold",
                 p=p["id"]) == n_auto
    # audits come back wrong: mark auto-labels as audited and contradict them with gold
    with ws.db.write() as conn:
        conn.execute(text("UPDATE auto_labels SET audit = true WHERE project_id = :p"), {"p": p["id"]})
        labels = dict(conn.execute(text("SELECT item_id, label FROM auto_labels WHERE project_id = :p")
                                   .columns(label=JSON), {"p": p["id"]}).all())
    flip = {"a": "b", "b": "a"}
    ws.import_gold(p["id"], [{"item_id": i, "label": flip[lab]} for i, lab in labels.items()])
    step2 = ml_step(ws, p["id"])
    assert step2["audit_verdict"] == "fail"
    assert step2["auto_state"] == "stopped" or step2["threshold"] > step["threshold"]


def test_the_server_trains_the_model_in_the_background(ws):
    import time

    from fastapi.testclient import TestClient

    from assay.learn.step import ml_due
    from assay.server import create_app

    n = 60
    ds, ids, y = embedded_dataset(ws, n, seed=5)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1)
    ws.update_project(p["id"], ml_space="f")
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(40)])
    assert ml_due(ws) == [p["id"]]
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0.2)):
        deadline = time.monotonic() + 30
        while count(ws, "ml_models") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert count(ws, "ml_models", "project_id = :p", p=p["id"]) >= 1
    from assay.learn.step import validation_mask
    assert count(ws, "predictions", "project_id = :p", p=p["id"]) == n - int(validation_mask(np.array(ids), n).sum())
    assert ml_due(ws) == []  # nothing new since


def test_model_report_over_http(ws):
    from fastapi.testclient import TestClient

    from assay.server import create_app

    n = 240
    ds, ids, y = embedded_dataset(ws, n, seed=2)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1)
    ws.update_project(p["id"], ml_space="f", auto_label_target=0.9)
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(150)])
    step = ml_step(ws, p["id"])
    admin, atok = ws.add_user("root", "admin")
    ann, ntok = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], ann["id"])
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        r = c.get(f"/api/projects/{p['id']}/model", headers={"Authorization": f"Bearer {atok}"})
        assert r.status_code == 200
        body = r.json()
        assert [v["version"] for v in body["versions"]] == [1]
        v = body["versions"][0]
        assert v["oof_accuracy"] == pytest.approx(step["oof_accuracy"]) and v["n_train"] == step["verified"]
        assert body["auto_labeled"] == step["auto_labeled"]
        assert c.get(f"/api/projects/{p['id']}/model", headers={"Authorization": f"Bearer {ntok}"}).status_code == 403
