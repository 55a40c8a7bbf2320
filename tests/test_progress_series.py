"""Live progress over time (issue 16 part 6): answers per bucket, per hour,
seconds per item, agreement with the final label, per annotator, and the
model's accuracy per version — Python and HTTP (annotators 403), SQLite and
PostgreSQL. The expected numbers are counted here from the answers given."""

from __future__ import annotations

import math

import httpx
import pytest
from sqlalchemy import JSON, bindparam, text

from _server import LiveServer
from assay.errors import InvalidInput
from factories import answer_item, item_ids, project_with_annotators

H = 3600.0
# item index -> (hours ago, [(annotator index, label, lead time seconds)])
PLAN = {0: (2, [(0, "pos", 10.0), (1, "pos", 20.0), (2, "neg", 30.0)]),
        1: (2, [(0, "neg", 4.0), (1, "neg", 6.0)]),
        2: (1, [(0, "pos", 8.0), (2, "pos", None)]),
        3: (0, [(1, "neg", 12.0)])}
# known truth: item 0 gold "pos" (two of three agree), item 1 reviewed "pos" (none agree)
TRUTH = {0: "pos", 1: "pos"}


def _setup(ws, now):
    p, people = project_with_annotators(ws, 6, 3, overlap=3)
    ids = item_ids(ws, p["dataset_id"])
    for k, (_, answers) in PLAN.items():
        for u, label, _ in answers:
            answer_item(ws, p["id"], ids[k], people[u], label)
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": TRUTH[0]}])
    rev, _ = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    ws.review(p["id"], ids[1], TRUTH[1], rev)
    # place each answer in its hour, with its lead time
    with ws.db.write() as conn:
        for k, (ago, answers) in PLAN.items():
            for u, _, lead in answers:
                conn.execute(text("UPDATE answers SET created_at = :t, lead_time = :lt "
                                  "WHERE item_id = :i AND annotator_id = :u"),
                             {"t": _hour_start(now, ago) + 60 * (u + 1), "lt": lead, "i": ids[k],
                              "u": people[u]["id"]})
        conn.execute(text("INSERT INTO ml_models (project_id, version, trained_at, n_train, temperature, "
                          "oof_accuracy, auto_state, metrics) VALUES (:p, :v, :t, :n, 1.0, :acc, 'off', :m)")
                     .bindparams(bindparam("m", type_=JSON)),
                     [{"p": p["id"], "v": 1, "t": now - 30 * H, "n": 5, "acc": 0.5, "m": {}},
                      {"p": p["id"], "v": 2, "t": now - 1.5 * H, "n": 9, "acc": 0.7,
                       "m": {"validation_accuracy": 0.72}}])
    return p, people, ids


def _hour_start(now, ago):
    return (math.floor(now / H) - ago) * H


def _expected(people):
    """Per hour (0 = the open one) and per annotator: answers, lead times, judged, agree."""
    per_hour, per_user = {}, {}
    for k, (ago, answers) in PLAN.items():
        for u, label, lead in answers:
            for key, table in ((ago, per_hour), (people[u]["id"], per_user)):
                n, leads, judged, agree = table.get(key, (0, [], 0, 0))
                truth = TRUTH.get(k)
                table[key] = (n + 1, leads + ([lead] if lead is not None else []),
                              judged + (truth is not None), agree + (truth == label))
    return per_hour, per_user


def _check(r, now, people):
    per_hour, per_user = _expected(people)
    assert r["bucket"] == "hour" and r["seconds"] == 3600 and len(r["series"]) == 5
    assert r["since"] == _hour_start(now, 4) and r["agreement_measured"] is True
    for i, point in enumerate(r["series"]):
        ago = 4 - i
        assert point["start"] == _hour_start(now, ago)
        n, leads, judged, agree = per_hour.get(ago, (0, [], 0, 0))
        assert point["answers"] == n and point["judged"] == judged
        assert point["agreement"] == (pytest.approx(agree / judged) if judged else None)
        assert point["seconds_per_item"] == (pytest.approx(sum(leads) / len(leads)) if leads else None)
        if ago > 0:
            assert point["per_hour"] == pytest.approx(n)
    open_ = r["series"][-1]  # the open hour: its rate over the time it has run
    assert open_["per_hour"] == pytest.approx(open_["answers"] * H / max(1.0, now - open_["start"]))
    got = {a["user_id"]: a for a in r["annotators"]}
    assert set(got) == set(per_user)
    for u, (n, leads, judged, agree) in per_user.items():
        a = got[u]
        assert a["username"] == next(p["username"] for p in people if p["id"] == u)
        assert a["answers"] == n == sum(pt["answers"] for pt in a["series"])
        assert a["agreement"] == (pytest.approx(agree / judged) if judged else None)
        assert a["seconds_per_item"] == pytest.approx(sum(leads) / len(leads))
    assert r["window"]["answers"] == sum(v[0] for v in per_hour.values())
    # only the version trained in the window, with its accuracies
    assert [(m["version"], m["oof_accuracy"], m["validation_accuracy"]) for m in r["model"]] == [(2, 0.7, 0.72)]


def test_series_counts_per_bucket_and_annotator(ws):
    import time

    now = time.time()
    p, people, ids = _setup(ws, now)
    r = ws.progress_series(p["id"], bucket="hour", buckets=5, now=now)
    _check(r, now, people)
    # a new answer shows at the next poll: the open bucket is read again, closed ones come from the cache
    answer_item(ws, p["id"], ids[4], people[2], "pos")
    with ws.db.write() as conn:  # in the open hour
        conn.execute(text("UPDATE answers SET created_at = :t WHERE item_id = :i"),
                     {"t": _hour_start(now, 0) + 1, "i": ids[4]})
    r2 = ws.progress_series(p["id"], bucket="hour", buckets=5, now=now + 1)
    assert r2["series"][-1]["answers"] == r["series"][-1]["answers"] + 1
    assert [pt["answers"] for pt in r2["series"][:-1]] == [pt["answers"] for pt in r["series"][:-1]]
    # a fresh workspace cache (another process) reads the same window whole
    ws._series_cache.__init__()
    r3 = ws.progress_series(p["id"], bucket="hour", buckets=5, now=now + 1)
    assert [pt["answers"] for pt in r3["series"]] == [pt["answers"] for pt in r2["series"]]
    # polls within one open bucket keep the cached closed rows; when it closes, it is read as closed
    again = ws.progress_series(p["id"], bucket="hour", buckets=5, now=now + 2)
    assert [pt["answers"] for pt in again["series"]] == [pt["answers"] for pt in r3["series"]]
    later = ws.progress_series(p["id"], bucket="hour", buckets=5, now=_hour_start(now, 0) + 3601)
    assert [pt["answers"] for pt in later["series"][:-1]] == [pt["answers"] for pt in r3["series"][1:]]
    assert later["series"][-1]["answers"] == 0
    # a wider window than the kept one is read whole, not filled with zeros
    wide = ws.progress_series(p["id"], bucket="hour", buckets=2, now=now + 3)
    ws._series_cache.__init__()
    ws.progress_series(p["id"], bucket="hour", buckets=2, now=now + 3)
    wider = ws.progress_series(p["id"], bucket="hour", buckets=5, now=now + 4)
    assert [pt["answers"] for pt in wider["series"]] == [pt["answers"] for pt in r3["series"]]
    assert wide["series"][-1]["answers"] == r3["series"][-1]["answers"]
    # day buckets hold every answer of the window
    d = ws.progress_series(p["id"], bucket="day", buckets=3, now=now + 1)
    assert sum(pt["answers"] for pt in d["series"]) == sum(len(a) for _, a in PLAN.values()) + 1
    with pytest.raises(InvalidInput, match="unknown bucket"):
        ws.progress_series(p["id"], bucket="week")
    with pytest.raises(InvalidInput, match="between 1 and"):
        ws.progress_series(p["id"], buckets=0)


def test_series_kind_without_one_class_labels_has_no_agreement(ws):
    p, people = project_with_annotators(ws, 3, 2, overlap=2, kind="multi", classes=("a", "b"))
    ids = item_ids(ws, p["dataset_id"])
    answer_item(ws, p["id"], ids[0], people[0], ["a"])
    r = ws.progress_series(p["id"], bucket="minute", buckets=10)
    assert r["agreement_measured"] is False and r["window"]["answers"] == 1
    assert r["series"][-1]["answers"] == 1 and r["series"][-1]["agreement"] is None


def test_series_over_http(ws):
    import time

    now = time.time()
    p, people, ids = _setup(ws, now)
    _, admin = ws.add_user("boss", "admin")
    _, atok = ws.add_user("mallory", "annotator")
    ws.add_member(p["id"], "mallory")
    with LiveServer(ws) as srv:
        url = f"{srv.base}/api/projects/{p['id']}/progress/series"
        r = httpx.get(url, params={"bucket": "hour", "buckets": 5}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        _check(r.json(), r.json()["now"], people)
        assert httpx.get(url, headers={"Authorization": f"Bearer {atok}"}).status_code == 403
        # whose per-bucket series come along: all (default), none, or one annotator's
        one = people[0]["id"]
        for value, carry in (("none", set()), (str(one), {one}), ("all", {u["user_id"] for u in r.json()["annotators"]})):
            got = httpx.get(url, params={"bucket": "hour", "buckets": 5, "series_of": value},
                            headers={"Authorization": f"Bearer {admin}"}).json()
            assert {a["user_id"] for a in got["annotators"] if "series" in a} == carry
            assert [a["answers"] for a in got["annotators"]] == [a["answers"] for a in r.json()["annotators"]]
        assert len(carry) >= 2  # the set-up has several annotators: "one" differs from "all"
        for bad in ({"bucket": "week"}, {"buckets": 0}, {"buckets": 201}, {"series_of": "me"},
                    {"series_of": "-1"}):
            assert httpx.get(url, params=bad, headers={"Authorization": f"Bearer {admin}"}).status_code in (400, 422)
        assert httpx.get(f"{srv.base}/api/projects/999/progress/series",
                         headers={"Authorization": f"Bearer {admin}"}).status_code == 404
