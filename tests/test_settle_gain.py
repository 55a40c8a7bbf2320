"""Stopping by the accuracy more answers could add ("gain"): the settle
table against brute-force enumeration, the stored criterion, and simulate's
option. Not the default (docs/quality.md, "Cost of labels", "Tried and not
adopted")."""

from __future__ import annotations

import numpy as np
import pytest

from assay.quality import online
from factories import turn_probabilities

CONF = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.7, 0.3], [0.3, 0.7]], [[0.95, 0.05], [0.4, 0.6]]])
WEIGHTS = [5, 3, 2]


# ------------------------------------------------------------------ the "gain" criterion


def test_gain_margins_bound_the_accuracy_more_answers_could_add():
    budget = 0.01
    table = online.settle_margins(CONF, WEIGHTS, budget, 3, criterion="gain")
    flip = online.settle_margins(CONF, WEIGHTS, budget, 3)
    assert len(table) == 3
    for m in (1, 2, 3):
        for c, j in ((0, 1), (1, 0)):
            need = table[m - 1][c][j]
            assert need is not None
            wrong, right = turn_probabilities(CONF, WEIGHTS, need, m, c, j)
            assert right - wrong <= budget + 1e-12  # safe side
            # not far too strict: somewhere a little below, the gain exceeds the budget (it need not
            # fall steadily with the margin: the table keeps the margin from which it stays within)
            if need > 0:
                below = np.arange(max(0.0, need - 0.3 - 2 * m * online.SETTLE_STEP), need, 0.01)
                gains = [np.subtract(*turn_probabilities(CONF, WEIGHTS, x, m, c, j)[::-1]) for x in below]
                assert max(gains) > budget
            # the gain never exceeds the chance of a flip: it stops no later
            assert need <= flip[m - 1][c][j] + 1e-9


def test_criterion_is_checked():
    with pytest.raises(ValueError):
        online.settle_margins(CONF, WEIGHTS, 0.01, 2, criterion="nope")


def test_refit_stores_the_criterion_and_the_old_format_still_reads(ws):
    from assay.engine import redundancy
    from factories import text_dataset

    ds = text_dataset(ws, "d", [f"t{i}" for i in range(6)])
    p = ws.create_project("p", ds["id"], ["x", "y"], target_confidence=0.99, max_answers=4, overlap=2)
    users = []
    for i in range(3):
        u, _ = ws.add_user(f"a{i}")
        ws.add_member(p["id"], u["id"])
        users.append(u)
    for u in users[:2]:
        while (t := ws.next_task(p["id"], u)) is not None:
            ws.submit(t["id"], u, "x")
    redundancy.refit(ws.db, ws.get_project(p["id"]), criterion="gain")
    from sqlalchemy import JSON, text

    with ws.db.read() as conn:
        dc = conn.execute(text("SELECT default_confusion FROM quality_models WHERE project_id = :p")
                          .columns(default_confusion=JSON), {"p": p["id"]}).scalar_one()
    assert dc["criterion"] == "gain" and dc["settle"]
    conf, table = redundancy._model_parts(dc)
    assert len(conf) == 2 and table == dc["settle"]
    assert redundancy._model_parts(conf) == (conf, None)  # a bare K x K list: no table


def test_simulate_takes_the_criterion(tmp_path):
    import random

    from assay.errors import InvalidInput
    from assay.simulation.crowd import simulate
    from factories import write_csv

    rng = random.Random(2)
    rows, truth = [], {}
    for n in range(40):
        t = rng.choice("ab")
        truth[f"i{n}"] = t
        for w in rng.sample(range(8), 5):
            ok = rng.random() < (0.9 if w < 6 else 0.4)
            rows.append((f"i{n}", f"w{w}", t if ok else ("b" if t == "a" else "a")))
    a = write_csv(tmp_path / "a.csv", ["item", "worker", "label"], rows)
    t = write_csv(tmp_path / "t.csv", ["item", "label"], sorted(truth.items()))
    flip = simulate(a, t, target=0.99, seed=1, refit_min=20)
    gain = simulate(a, t, target=0.99, seed=1, refit_min=20, criterion="gain")
    assert "criterion" not in flip["settings"] and gain["settings"]["criterion"] == "gain"
    assert gain["answers_used"] <= flip["answers_used"]
    assert simulate(a, t, target=0.99, seed=1, refit_min=20, criterion="flip")["answers_used"] \
        == flip["answers_used"]
    with pytest.raises(InvalidInput):
        simulate(a, t, criterion="nope")


# ------------------------------------------------------------------ the difficulty model
