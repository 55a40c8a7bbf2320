"""Gold for spans, boxes and polygons: the kinds' scores (hand-computed), and
gold answers that are partly right counted right or wrong by the project's
``gold_min_score``, in the stats and the pause, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from assay import kinds
from assay.errors import InvalidInput
from test_kinds_shapes import image_dataset

CAR = [0, 0, 10, 10, "car"]


def test_default_score_is_same():
    single = kinds.get("single")
    assert single.score("pos", "pos") == 1.0 and single.score("pos", "neg") == 0.0


def test_span_score_is_exact_span_f1():
    spans = kinds.get("spans")
    gold = [[0, 4, "PER"], [10, 15, "LOC"], [20, 25, "ORG"]]
    assert spans.score([], []) == 1.0
    assert spans.score(gold, gold) == 1.0
    assert spans.score([], gold) == 0.0 and spans.score(gold, []) == 0.0
    # two of three right, one boundary off by one: P 2/3, R 2/3 -> F1 2/3
    assert spans.score([[0, 4, "PER"], [10, 15, "LOC"], [20, 24, "ORG"]], gold) == pytest.approx(2 / 3)
    # right offsets but the wrong type is not a match: 1 of 2 predicted, 1 of 3 true -> 2*1/5
    assert spans.score([[0, 4, "PER"], [10, 15, "PER"]], gold) == pytest.approx(0.4)


def test_box_score_is_f1_of_one_to_one_matches():
    boxes = kinds.get("boxes")
    assert boxes.score([], []) == 1.0
    assert boxes.score([CAR], []) == 0.0 and boxes.score([], [CAR]) == 0.0
    # IoU of [0,0,10,10] and [5,0,15,10] is 50/150 = 1/3 < 0.5: no match
    assert boxes.score([[5, 0, 15, 10, "car"]], [CAR]) == 0.0
    # IoU of [0,0,10,10] and [2,0,12,10] is 80/120 = 2/3 >= 0.5: a match
    assert boxes.score([[2, 0, 12, 10, "car"]], [CAR]) == 1.0
    assert boxes.score([[2, 0, 12, 10, "person"]], [CAR]) == 0.0  # same place, another class
    # two answer boxes over one gold box: only one pairs (one to one): 2*1/(2+1)
    assert boxes.score([CAR, [1, 0, 11, 10, "car"]], [CAR]) == pytest.approx(2 / 3)
    # four of five gold boxes found, nothing extra: 2*4/9
    five = [[20 * i, 0, 20 * i + 10, 10, "car"] for i in range(5)]
    assert boxes.score(five[:4], five) == pytest.approx(8 / 9)
    assert boxes.matches([[2, 0, 12, 10, "car"]], [CAR]) == [pytest.approx(2 / 3)]


def test_polygon_score_is_f1_of_mask_matches():
    polys = kinds.get("polygons")
    sq = {"label": "car", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}
    ell = {"label": "car", "points": [[0, 0], [10, 0], [10, 5], [5, 5], [5, 10], [0, 10]]}  # IoU 0.75 with sq
    far = {"label": "car", "points": [[50, 50], [60, 50], [60, 60]]}
    assert polys.score([], []) == 1.0
    assert polys.score([sq], [sq]) == 1.0
    assert polys.score([far], [sq]) == 0.0
    assert polys.score([sq, far], [sq]) == pytest.approx(2 / 3)
    shifted = {"label": "car", "points": [[5, 0], [15, 0], [15, 10], [5, 10]]}  # IoU 1/3
    assert polys.score([shifted], [sq]) == 0.0
    # the L matches the square (one of two known found, nothing extra): 2*1/(1+2)
    assert polys.score([ell], [sq, far]) == pytest.approx(2 / 3)
    assert polys.matches([ell], [sq, far]) == [pytest.approx(0.75, abs=0.02)]
    assert polys.score([{**ell, "label": "person"}], [sq]) == 0.0


def test_gold_min_score_is_a_checked_setting(ws, tmp_path):
    ds, _ = image_dataset(ws, tmp_path, n=1)
    p = ws.create_project("b", ds["id"], ["car", "person"], kind="boxes")
    assert p["gold_min_score"] == 0.8  # the default
    for bad in (0, -0.1, 1.5, "high", True):
        with pytest.raises(InvalidInput, match="gold_min_score must be above 0 and at most 1"):
            ws.update_project(p["id"], gold_min_score=bad)
    ws.update_project(p["id"], gold_min_score=0.5)
    assert ws.get_project(p["id"])["gold_min_score"] == 0.5
    ws.update_project(p["id"], gold_min_score=None)
    assert ws.get_project(p["id"])["gold_min_score"] == 0.8


FIVE = [[20 * i, 0, 20 * i + 10, 10, "car"] for i in range(5)]


def _answer_everything(ws, p, people, answers, gold_items):
    for u in people:
        while (task := ws.next_task(p["id"], u)) is not None:
            iid = task["item"]["id"]
            ws.submit(task["id"], u, answers[u["username"]] if iid in gold_items else [])


def test_partly_right_gold_answers_count_by_the_bar_and_pause(ws, tmp_path):
    from assay.engine import gold

    ds, order = image_dataset(ws, tmp_path, n=12)
    p = ws.create_project("gold boxes", ds["id"], ["car", "person"], kind="boxes", gold_rate=0.5, overlap=2)
    ws.import_gold(p["id"], [{"item_id": i, "label": FIVE} for i in order[:4]])
    people = [ws.add_user("good")[0], ws.add_user("sloppy")[0]]
    for u in people:
        ws.add_member(p["id"], u["id"])
    answers = {"good": FIVE[:4],  # misses one of five: F1 0.89
               "sloppy": FIVE[:3]}  # misses two: F1 0.75
    gold.seed(7)
    try:
        _answer_everything(ws, p, people, answers, set(order[:4]))
    finally:
        gold.seed(None)
    stats = {s["username"]: s for s in ws.gold_stats(p["id"])}
    n_good, n_sloppy = stats["good"]["answers"], stats["sloppy"]["answers"]
    assert n_good >= 2 and n_sloppy >= 2  # scored at the answer (seeded draws)
    assert stats["good"]["correct"] == n_good and stats["sloppy"]["correct"] == 0
    # a lower bar re-scores every gold answer: now both are right, and nobody is paused
    ws.update_project(p["id"], gold_min_score=0.7, gold_min_accuracy=0.6, gold_min_answers=2)
    stats = {s["username"]: s for s in ws.gold_stats(p["id"])}
    assert stats["sloppy"]["correct"] == n_sloppy and stats["good"]["correct"] == n_good
    assert not stats["good"]["paused"] and not stats["sloppy"]["paused"]
    # a bar of 1: only exact work is right; the re-score pauses both (accuracy 0 < 0.6)
    ws.update_project(p["id"], gold_min_score=1.0)
    stats = {s["username"]: s for s in ws.gold_stats(p["id"])}
    assert stats["good"]["correct"] == 0 and stats["good"]["paused"] and stats["sloppy"]["paused"]


def test_reviewed_spans_score_by_f1(ws):
    from factories import text_dataset

    ds = text_dataset(ws, "notes", ["Ada Lovelace met Babbage in London", "Ada Lovelace met Babbage in Lisbon"])
    p = ws.create_project("ner", ds["id"], ["PER", "LOC"], kind="spans", overlap=2)
    admin = ws.add_user("boss", role="admin")[0]
    people = [ws.add_user("a")[0], ws.add_user("b")[0]]
    for u in people:
        ws.add_member(p["id"], u["id"])
    truth = [[0, 12, "PER"], [17, 24, "PER"], [28, 34, "LOC"]]
    drawn = {"a": truth[:2] + [[28, 34, "PER"]],  # one type wrong: F1 2/3
             "b": truth[:2] + [[28, 34, "LOC"]]}  # all right
    for u in people:
        while (task := ws.next_task(p["id"], u)) is not None:
            ws.submit(task["id"], u, drawn[u["username"]])
    for i in {t["item_id"] for t in ws.list_answers(p["id"], limit=10)[0]}:
        ws.review(p["id"], i, truth, admin)
    stats = {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])}
    assert stats == {"a": (2, 0), "b": (2, 2)}
    ws.update_project(p["id"], gold_min_score=0.6)
    stats = {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])}
    assert stats == {"a": (2, 2), "b": (2, 2)}
    skills = {x["username"]: x for x in ws.known_skills(p["id"])["annotators"]}
    a = skills["a"]
    assert (a["items"], a["matched"], a["predicted"], a["true"]) == (2, 4, 6, 6)
    assert a["types"]["PER"]["precision"] == pytest.approx(4 / 6) and a["types"]["PER"]["recall"] == 1.0
    assert a["types"]["LOC"]["recall"] == 0.0 and a["types"]["LOC"]["precision"] is None
    assert skills["b"]["f1"] == 1.0 and skills["b"]["types"]["LOC"]["f1"] == 1.0


# ---------------------------------------------------------------- skills


def test_shape_skills_hand_computed():
    from assay.quality.gold_skills import shape_skills

    got = shape_skills([("a", 3, 2, [0.9, 0.7]), ("a", 0, 1, []), ("b", 1, 1, [0.5]), ("c", 0, 0, [])])
    a = got["a"]
    assert (a["items"], a["matched"], a["predicted"], a["true"]) == (2, 2, 3, 3)
    assert a["precision"] == pytest.approx(2 / 3) and a["recall"] == pytest.approx(2 / 3)
    assert a["f1"] == pytest.approx(2 / 3) and a["mean_iou"] == pytest.approx(0.8)
    assert got["b"]["precision"] == 1.0 and got["b"]["mean_iou"] == 0.5
    assert got["c"]["precision"] is None and got["c"]["recall"] is None and got["c"]["mean_iou"] is None
    with pytest.raises(ValueError, match="more matches"):
        shape_skills([("a", 1, 2, [0.9, 0.8])])


def test_span_skills_per_type_hand_computed():
    from assay.quality.gold_skills import span_skills

    truth = [[0, 4, "PER"], [10, 15, "LOC"], [20, 25, "PER"]]
    got = span_skills([("a", [[0, 4, "PER"], [10, 15, "PER"], [20, 24, "PER"]], truth), ("a", [], [])])["a"]
    assert got["items"] == 2
    per, loc = got["types"]["PER"], got["types"]["LOC"]
    assert (per["matched"], per["predicted"], per["true"]) == (1, 3, 2)
    assert per["precision"] == pytest.approx(1 / 3) and per["recall"] == 0.5 and per["f1"] == pytest.approx(0.4)
    assert (loc["matched"], loc["predicted"], loc["true"], loc["precision"], loc["recall"]) == (0, 0, 1, None, 0.0)
    o = got["overall"]
    assert (o["matched"], o["predicted"], o["true"]) == (1, 3, 3) and o["f1"] == pytest.approx(1 / 3)


def test_known_skills_of_a_boxes_project_and_its_endpoint(ws, tmp_path):
    import httpx

    from _server import LiveServer
    from test_kinds_shapes import DRAWN, _answer_all

    ds, order = image_dataset(ws, tmp_path)
    p = ws.create_project("street", ds["id"], ["car", "person"], kind="boxes", overlap=3)
    people = [ws.add_user(f"u{i}")[0] for i in range(3)]
    admin, admin_token = ws.add_user("boss", role="admin")
    _, ann_token = ws.add_user("u9")
    for u in people:
        ws.add_member(p["id"], u["id"])
    ws.add_member(p["id"], ws.get_user("u9")["id"])
    _answer_all(ws, p, people, order)
    ws.review(p["id"], order[0], [[20, 30, 80, 90, "car"]], admin)
    ws.review(p["id"], order[2], [[40, 30, 100, 90, "car"], [100, 10, 130, 60, "person"]], admin)
    got = ws.known_skills(p["id"])
    assert got["basis"] == {"gold": 0, "review": 2} and got["kind"] == "boxes"
    by = {a["username"]: a for a in got["annotators"]}
    # u1: image 0 drew the car and an extra person; image 2 only the car (of car + person): 2 of 3 drawn, 2 of 3 found
    u1 = by["u1"]
    assert (u1["items"], u1["matched"], u1["predicted"], u1["true"]) == (2, 2, 3, 3)
    assert u1["precision"] == pytest.approx(2 / 3) and u1["recall"] == pytest.approx(2 / 3)
    iou0 = (58 * 59) / (58 * 60 + 60 * 60 - 58 * 59)  # [21,31,79,91] against [20,30,80,90]
    iou2 = (59 * 60) / (60 * 60)  # [41,30,100,90] inside [40,30,100,90]
    assert u1["mean_iou"] == pytest.approx((iou0 + iou2) / 2)
    assert u1["localisation_error"] == pytest.approx(1 - u1["mean_iou"])
    assert by["u0"]["recall"] == 1.0 and by["u0"]["precision"] == 1.0 and by["u0"]["mean_iou"] == 1.0
    single = ws.create_project("classes", ds["id"], ["a", "b"])
    with pytest.raises(InvalidInput, match="spans, boxes, polygons projects"):
        ws.known_skills(single["id"])
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base) as c:
        url = f"/api/projects/{p['id']}/skills/known"
        r = c.get(url, headers={"Authorization": f"Bearer {admin_token}"})
        assert r.status_code == 200 and r.json()["annotators"][1]["username"] == "u1"
        r = c.get(url, headers={"Authorization": f"Bearer {ann_token}"})
        assert r.status_code == 403 and "precision" not in r.text
        assert c.get(url).status_code == 401
