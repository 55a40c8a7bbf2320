"""Real-browser test of the People page (/admin/people) and the Members
section of a project page (issue 16 part 4): an admin adds an annotator,
changes a role, makes a login link that logs a fresh browser in as that user,
revokes it (that browser's next call is refused and says so), adds and
removes a project member and lifts a pause that failed gold answers caused.
Hostile checks over real HTTP: what annotators and reviewers may not do.
Headless Chromium against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from test_browser import ARTIFACTS, Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import answer_item, item_ids, project_with_annotators

pytestmark = pytest.mark.browser


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _pause(ws, base: str, p, user) -> None:
    """Pause ``user`` the real way, over HTTP: wrong answers to gold questions
    until the pause rule (checked at random on a third of the answers) fires."""
    ids = item_ids(ws, p["dataset_id"])
    ws.update_project(p["id"], gold_rate=0.5, gold_min_accuracy=0.9, gold_min_answers=2)
    ws.import_gold(p["id"], [{"item_id": i, "label": "pos"} for i in ids[: len(ids) // 2]])
    h = _bearer(ws.create_token(user["id"], "work"))
    with httpx.Client(base_url=base, timeout=30, headers=h) as c:
        for _ in range(len(ids)):
            r = c.post(f"/api/projects/{p['id']}/tasks/next")
            if r.status_code == 403:
                assert r.json()["error"]["code"] == "paused"
                return
            task = r.json()["task"]
            assert task is not None, "ran out of tasks before the pause"
            assert c.post(f"/api/tasks/{task['id']}/answers", json={"label": "neg"}).status_code == 201
    raise AssertionError("the annotator was never paused")


def test_admin_manages_people_links_members_and_pauses(ws, server, tabs):  # noqa: F811
    p, (worker,) = project_with_annotators(ws, 120, 1, overlap=1)
    _pause(ws, server.base, p, worker)
    _, admin_token = ws.add_user("boss", "admin")
    tab = tabs()
    page = tab.page
    tab.login_link(admin_token)
    tab.goto("/admin")
    page.click("nav a[href='/admin/people']")
    page.wait_for_url(f"{tab.base}/admin/people")

    # add an annotator: the token shows once, as a login link
    page.fill("#new-username", "carol")
    page.select_option("#new-role", "annotator")
    page.click("#add-user-submit")
    page.locator("#users tbody tr").filter(has_text="carol").wait_for()
    carol = ws.get_user("carol")
    assert carol["role"] == "annotator"
    row = page.locator(f"#users tr[data-user-id='{carol['id']}']")
    assert page.input_value("#new-user-link").startswith(f"{tab.base}/login#token=")

    # change a role: reviewer, then back to annotator
    row.locator("select.role-select").select_option("reviewer")
    row.locator("[role=status]").filter(has_text="saved").wait_for()
    assert ws.get_user("carol")["role"] == "reviewer"
    row.locator("select.role-select").select_option("annotator")
    row.locator("select.role-select:not([disabled])").wait_for()
    assert ws.get_user("carol")["role"] == "annotator"

    # a login link with a chosen life, opened in a fresh browser
    row.locator("button").click()
    page.locator("#person-name").filter(has_text="carol").wait_for()
    page.fill("#link-days", "3")
    page.click("#link-create")
    page.locator("#link-result").wait_for()
    url = page.input_value("#link-url")
    assert url.startswith(f"{tab.base}/login#token=")
    secret = url.split("#token=", 1)[1]
    link_tokens = [t for t in ws.list_tokens(carol["id"]) if t["name"] == "login link"]
    assert len(link_tokens) == 1 and link_tokens[0]["expires_at"] is not None
    token_id = link_tokens[0]["id"]
    page.locator(f"#tokens tr[data-token-id='{token_id}']").wait_for()

    other = tabs()
    other.goto(url[len(tab.base):])
    other.page.wait_for_url(other.base + "/")
    assert "token" not in other.page.url  # the fragment is gone from the address bar
    me = other.page.evaluate("() => AssayAPI.get('/api/me')")
    assert me["username"] == "carol"
    assert other.page.evaluate("() => localStorage.getItem('assay_token')") == secret

    # revoke it: that browser's next call is a 401 and its page says so
    page.locator(f"#tokens tr[data-token-id='{token_id}'] button").click()
    page.locator(f"#tokens tr[data-token-id='{token_id}']").wait_for(state="detached")
    with other.page.expect_response(lambda r: r.url.endswith("/api/me") and r.status == 401):
        other.page.reload()
    other.page.wait_for_url("**/login**")
    other.page.locator("#error").filter(has_text="revoked").wait_for()
    assert other.page.evaluate("() => localStorage.getItem('assay_token')") is None
    late = tabs()  # the revoked link, opened later: refused with a clear message, nothing stored
    late.goto(url[len(tab.base):])
    late.page.locator("#error").filter(has_text="not valid any more").wait_for()
    assert late.page.evaluate("() => localStorage.getItem('assay_token')") is None

    # the person view: projects, pause, skill and recent answers of the worker
    tab.goto(f"/admin/people?user={worker['id']}")
    prow = page.locator(f"#person-projects tr[data-project-id='{p['id']}']")
    prow.locator(".recent-answers li").first.wait_for()
    newest, _ = ws.list_answers(p["id"], annotator_id=worker["id"], newest_first=True, limit=5)
    shown = prow.locator(".recent-answers li").all_inner_texts()
    assert [t.split(":")[0] for t in shown] == [f"item {a['item_id']}" for a in newest]  # newest first
    assert "paused" in prow.inner_text()
    prow.locator("td.skill-cell[data-ready='1']").wait_for()
    skill = [a for a in ws.skill_map(p["id"])["annotators"] if a["user_id"] == worker["id"]][0]
    assert prow.locator("td.skill-cell").inner_text().startswith(
        f"{100 * skill['accuracy']:.0f} % ({skill['answers_scored']})")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin_people-{ws.db.dialect}.png"), full_page=True)

    # the Members section: add, remove, lift the pause
    tab.goto(f"/admin/projects/{p['id']}")
    page.locator("#members-list tbody tr[data-user-id]").first.wait_for()
    page.fill("#member-username", "carol")
    page.click("#member-add")
    page.locator(f"#members-list tr[data-user-id='{carol['id']}']").wait_for()
    assert ws.is_member(p["id"], carol["id"])
    page.click(f"#members-list tr[data-user-id='{carol['id']}'] button")
    page.locator(f"#members-list tr[data-user-id='{carol['id']}']").wait_for(state="detached")
    assert {m["user_id"] for m in ws.list_members(p["id"])} == {worker["id"]}
    page.click(f"#paused-list button[data-lift='{worker['id']}']")
    page.locator("#members-status").filter(has_text="Lifted the pause").wait_for()
    assert not any(s["paused"] for s in ws.gold_stats(p["id"]) if s["user_id"] == worker["id"])
    tab.assert_clean()


def test_people_routes_refuse_annotators_and_limit_reviewers(ws, server):  # noqa: F811
    p, (ann, peer) = project_with_annotators(ws, 6, 2, overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    answer_item(ws, p["id"], ids[0], peer, "pos")
    _, ann_token = ws.add_user("mallory", "annotator")
    ws.add_member(p["id"], ws.get_user("mallory")["id"])
    rev, rev_token = ws.add_user("rita", "reviewer")
    ws.add_member(p["id"], rev["id"])
    peer_token = ws.create_token(peer["id"], "old")
    with httpx.Client(base_url=server.base, timeout=30) as c:
        h = _bearer(ann_token)
        assert c.get("/api/users", headers=h).status_code == 403
        assert c.post("/api/users", headers=h, json={"username": "x"}).status_code == 403
        assert c.post("/api/tokens", headers=h, json={"user_id": peer["id"]}).status_code == 403
        assert c.put(f"/api/users/{peer['id']}/role", headers=h, json={"role": "admin"}).status_code == 403
        assert c.get(f"/api/projects/{p['id']}/answers", headers=h,
                     params={"user_id": peer["id"], "order": "desc"}).status_code == 403
        assert c.get(f"/api/projects/{p['id']}/skills", headers=h).status_code == 403
        assert c.get(f"/api/projects/{p['id']}/members", headers=h).status_code == 403
        # tokens: only their own, even when asking for another user's
        mine = c.get("/api/tokens", headers=h, params={"user_id": peer["id"]}).json()["tokens"]
        assert mine and {t["user_id"] for t in mine} == {ws.get_user("mallory")["id"]}
        # another person's token: not revocable by them; once revoked, dead to everyone
        peer_tid = [t for t in ws.list_tokens(peer["id"]) if t["name"] == "old"][0]["id"]
        assert c.delete(f"/api/tokens/{peer_tid}", headers=h).status_code in (403, 404)
        assert c.get("/api/me", headers=_bearer(peer_token)).status_code == 200
        ws.revoke_token(peer_tid)
        assert c.get("/api/me", headers=_bearer(peer_token)).status_code == 401
        assert c.get(f"/api/projects/{p['id']}/answers", headers=_bearer(peer_token)).status_code == 401
        # a reviewer sees skills and one person's recent answers, but adds nobody
        r = _bearer(rev_token)
        got = c.get(f"/api/projects/{p['id']}/answers", headers=r,
                    params={"user_id": peer["id"], "order": "desc", "limit": 5})
        assert got.status_code == 200 and [a["annotator_id"] for a in got.json()["answers"]] == [peer["id"]]
        assert c.get(f"/api/projects/{p['id']}/skills", headers=r).status_code == 200
        assert c.post("/api/users", headers=r, json={"username": "y"}).status_code == 403
        assert c.post("/api/tokens", headers=r, json={"user_id": ann["id"]}).status_code == 403
        assert c.get("/api/users", headers=r).status_code == 403


def test_answers_newest_first_in_keyset_pages(ws, server):  # noqa: F811
    p, (a, b) = project_with_annotators(ws, 7, 2, overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    for i in ids:
        answer_item(ws, p["id"], i, a, "pos")
    answer_item(ws, p["id"], ids[0], b, "neg")
    _, token = ws.add_user("boss", "admin")
    with httpx.Client(base_url=server.base, timeout=30, headers=_bearer(token)) as c:
        seen, after = [], None
        while True:
            params = {"user_id": a["id"], "order": "desc", "limit": 3, **({"after": after} if after else {})}
            body = c.get(f"/api/projects/{p['id']}/answers", params=params).json()
            seen += body["answers"]
            after = body["next_after"]
            if after is None:
                break
        assert [x["item_id"] for x in seen] == ids[::-1]
        assert {x["annotator_id"] for x in seen} == {a["id"]}
        assert c.get(f"/api/projects/{p['id']}/answers", params={"order": "sideways"}).status_code in (400, 422)


def test_reviewer_sees_people_of_their_projects_read_only(ws, tabs):  # noqa: F811
    p, (ann,) = project_with_annotators(ws, 6, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    answer_item(ws, p["id"], ids[0], ann, "pos")
    answer_item(ws, p["id"], ids[1], ann, "neg")
    rev, rev_token = ws.add_user("rita", "reviewer")
    ws.add_member(p["id"], rev["id"])
    tab = tabs()
    page = tab.page
    tab.login_link(rev_token)
    tab.goto("/admin/people")
    row = page.locator(f"#users tr[data-user-id='{ann['id']}']")
    row.wait_for()
    assert page.locator("#people-title").inner_text() == "Annotators in your projects"
    assert row.locator("select").count() == 0  # no role changes
    assert not page.locator("#add-user-form").is_visible()
    row.locator("button").click()
    prow = page.locator(f"#person-projects tr[data-project-id='{p['id']}']")
    prow.locator(".recent-answers li").first.wait_for()
    assert prow.locator(".recent-answers li").all_inner_texts()[0].startswith(f"item {ids[1]}: neg")
    assert not page.locator("#person-access").is_visible()  # no login links or tokens
    assert prow.locator("button").count() == 0  # no lifting pauses
    tab.assert_clean()
