/* People (issue 16 part 4): users and their roles, adding a user, login
 * links (/login#token=…: the secret stays in the fragment, never in a server
 * log), a person's tokens with revoke, and one person's projects: membership,
 * pause, skill and recent answers. Admins see everything; reviewers see the
 * people who answered in their projects, with skills and answers only. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  const MAX_PROJECTS = 50; // the person view reads at most this many projects
  let me = null, isAdmin = false, people = [], person = null;

  function $(id) { return document.getElementById(id); }
  function when(t) { return t ? new Date(t * 1000).toLocaleString() : "—"; }
  function pct(x) { return typeof x === "number" ? (100 * x).toFixed(0) + " %" : "—"; }
  function loginLink(secret) { return location.origin + "/login#token=" + encodeURIComponent(secret); }
  function labelText(label) { return typeof label === "string" ? label : JSON.stringify(label); }

  /* ------------------------------------------------------------ the list */

  function roleCell(u) {
    if (!isAdmin) return el("td", { text: u.role || "annotator" });
    const sel = el("select", { class: "role-select", "aria-label": "Role of " + u.username });
    ["annotator", "reviewer", "admin"].forEach(function (r) {
      sel.append(el("option", { value: r, selected: r === u.role, text: r }));
    });
    const status = el("span", { class: "muted small", role: "status" });
    sel.addEventListener("change", async function () {
      const want = sel.value;
      sel.disabled = true;
      try {
        const got = await api.request("PUT", "/api/users/" + u.id + "/role", { body: { role: want } });
        u.role = got.role || want;
        status.textContent = " saved";
        if (person && person.id === u.id) openPerson(u);
      } catch (err) {
        sel.value = u.role;
        api.showError(err, "Could not change the role of " + u.username);
      } finally { sel.disabled = false; }
    });
    return el("td", null, sel, status);
  }

  function userRow(u) {
    const open = el("button", { type: "button", class: "btn btn-small", "aria-label": "Open " + u.username, text: "Open" });
    open.addEventListener("click", function () { openPerson(u); });
    return el("tr", { "data-user-id": u.id }, el("td", { text: u.username }), roleCell(u),
      el("td", { text: u.created_at ? when(u.created_at) : "" }), el("td", null, open));
  }

  function renderPeople() {
    const tbody = $("users").querySelector("tbody");
    const rows = people.map(userRow);
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "4", class: "muted", text: "Nobody yet" })));
    tbody.replaceChildren.apply(tbody, rows);
  }

  /** Reviewers may not list users: the people who answered in their projects. */
  async function reviewerPeople(projects) {
    const seen = new Map();
    const all = await Promise.all(projects.slice(0, MAX_PROJECTS).map(function (p) {
      return api.get("/api/projects/" + p.id + "/progress").catch(function () { return { annotators: [] }; });
    }));
    all.forEach(function (prog) {
      (prog.annotators || []).forEach(function (a) {
        if (a.user_id && !seen.has(a.user_id)) seen.set(a.user_id, { id: a.user_id, username: a.username, role: "annotator" });
      });
    });
    return Array.from(seen.values()).sort(function (a, b) { return a.id - b.id; });
  }

  async function addUser(e) {
    e.preventDefault();
    api.clearError();
    const name = $("new-username").value.trim();
    if (!name) { api.showError("Enter a username."); $("new-username").focus(); return; }
    const body = { username: name, role: $("new-role").value };
    if ($("new-password").value) body.password = $("new-password").value;
    const btn = $("add-user-submit");
    btn.disabled = true;
    try {
      const r = await api.post("/api/users", body);
      people.push(r.user);
      renderPeople();
      $("add-user-form").reset();
      const url = loginLink(r.token);
      $("new-user-result").replaceChildren(
        el("p", { text: "Added " + r.user.username + " (" + r.user.role + "). Their first login link, shown only now:" }),
        el("label", { for: "new-user-link", class: "visually-hidden", text: "Login link of " + r.user.username }),
        el("input", { id: "new-user-link", readonly: true, value: url }));
      openPerson(r.user);
    } catch (err) {
      api.showError(err, "Could not add the user");
    } finally { btn.disabled = false; }
  }

  /* ------------------------------------------------------------ access */

  function tokenRow(t) {
    const revoke = el("button", { type: "button", class: "btn btn-small", "aria-label": "Revoke token " + t.id, text: "Revoke" });
    revoke.addEventListener("click", async function () {
      revoke.disabled = true;
      try {
        await api.del("/api/tokens/" + t.id);
        await loadTokens();
      } catch (err) {
        revoke.disabled = false;
        api.showError(err, "Could not revoke token " + t.id);
      }
    });
    return el("tr", { "data-token-id": t.id }, el("td", { class: "num", text: String(t.id) }),
      el("td", { text: t.name || "" }), el("td", { text: t.kind || "" }), el("td", { text: when(t.created_at) }),
      el("td", { text: when(t.last_used_at) }), el("td", { text: t.expires_at ? when(t.expires_at) : "never" }),
      el("td", null, revoke));
  }

  async function loadTokens() {
    const r = await api.get("/api/tokens?user_id=" + person.id);
    const tbody = $("tokens").querySelector("tbody");
    const rows = (r.tokens || []).map(tokenRow);
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "7", class: "muted", text: "No live tokens: nothing logs this person in." })));
    tbody.replaceChildren.apply(tbody, rows);
  }

  async function createLink(e) {
    e.preventDefault();
    api.clearError();
    const days = Number($("link-days").value);
    if (!Number.isFinite(days) || days < 1 || days > 3650) {
      api.showError("The link's life is a number of days from 1 to 3650.");
      return;
    }
    $("link-create").disabled = true;
    try {
      const r = await api.post("/api/tokens", { user_id: person.id, name: "login link", expires_days: days });
      $("link-url").value = loginLink(r.token);
      $("link-copied").textContent = "";
      $("link-result").hidden = false;
      $("link-url").select();
      await loadTokens();
    } catch (err) {
      api.showError(err, "Could not create the login link");
    } finally { $("link-create").disabled = false; }
  }

  async function copyLink() {
    const input = $("link-url");
    try {
      await navigator.clipboard.writeText(input.value);
      $("link-copied").textContent = "Copied.";
    } catch (e) {
      input.select(); // no clipboard permission: leave it selected for Ctrl+C
      $("link-copied").textContent = "Select and copy the link by hand (Ctrl+C).";
    }
  }

  /* ------------------------------------------------------------ one person's projects */

  function skillText(s) {
    const row = s && (s.annotators || []).find(function (a) { return a.user_id === person.id; });
    if (!row) return "—";
    const classes = (row.classes || []).map(function (c) { return c["class"] + " " + pct(c.skill); }).join(", ");
    return pct(row.accuracy) + " (" + (row.answers_scored || 0) + ")" + (classes ? " · " + classes : "");
  }

  function answersCell(r) {
    const list = (r && r.answers) || [];
    if (!list.length) return el("td", { class: "muted", text: "none" });
    const ul = el("ul", { class: "small recent-answers" });
    list.forEach(function (a) {
      ul.append(el("li", { text: "item " + a.item_id + ": " + labelText(a.label) + " · " + when(a.created_at) }));
    });
    return el("td", null, ul);
  }

  function pauseCell(p, stats) {
    const g = stats && (stats.annotators || []).find(function (a) { return a.user_id === person.id; });
    if (!g) return el("td", { class: "muted", text: "—" });
    if (!g.paused) return el("td", { text: "no" });
    const cell = el("td", null, el("span", { class: "badge badge-warn", text: "paused" }));
    if (isAdmin) {
      const lift = el("button", { type: "button", class: "btn btn-small", text: "Lift pause",
        "aria-label": "Lift the pause of " + person.username + " in " + p.name });
      lift.addEventListener("click", async function () {
        lift.disabled = true;
        try {
          await api.post("/api/projects/" + p.id + "/annotators/" + person.id + "/unpause");
          cell.replaceChildren("no (pause lifted)");
        } catch (err) { lift.disabled = false; api.showError(err, "Could not lift the pause"); }
      });
      cell.append(" ", lift);
    }
    return cell;
  }

  function soft(promise) { return promise.catch(function () { return null; }); }

  async function projectRow(p) {
    const base = "/api/projects/" + p.id;
    const u = person.id;
    // The skill map of a big project may take seconds the first time (then it
    // is kept): its cell fills in when it comes, the rest of the row does not wait.
    const skill = el("td", { class: "skill-cell muted", text: "computing…" });
    soft(api.get(base + "/skills?limit=1&after=" + (u - 1))).then(function (skills) {
      skill.textContent = skillText(skills);
      skill.classList.remove("muted");
      skill.dataset.ready = "1";
    });
    const [members, stats, answers] = await Promise.all([
      isAdmin ? soft(api.get(base + "/members")) : Promise.resolve(null),
      soft(api.get(base + "/annotators/gold")),
      soft(api.get(base + "/answers?order=desc&limit=5&user_id=" + u)),
    ]);
    const member = members ? ((members.members || []).some(function (m) { return m.user_id === u; }) ? "yes" : "no")
      : "—";
    return el("tr", { "data-project-id": p.id },
      el("td", null, el("a", { href: "/admin/projects/" + p.id, text: p.name })), el("td", { text: member }),
      pauseCell(p, stats), skill, answersCell(answers));
  }

  async function openPerson(u) {
    person = u;
    api.clearError();
    $("person").hidden = false;
    $("person-name").textContent = u.username;
    $("person-role").textContent = "Role: " + (u.role || "annotator") + " · user id " + u.id;
    $("link-result").hidden = true;
    $("person-access").hidden = !isAdmin;
    const url = new URL(location.href);
    url.searchParams.set("user", String(u.id));
    history.replaceState(null, "", url.pathname + url.search);
    const tbody = $("person-projects").querySelector("tbody");
    tbody.replaceChildren(el("tr", null, el("td", { colspan: "5", class: "muted", text: "Loading…" })));
    try {
      if (isAdmin) await loadTokens();
      const projects = (await api.get("/api/projects")).projects || [];
      const rows = await Promise.all(projects.slice(0, MAX_PROJECTS).map(projectRow));
      if (person !== u) return; // another person was opened meanwhile
      if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "5", class: "muted", text: "No projects yet" })));
      tbody.replaceChildren.apply(tbody, rows);
    } catch (err) {
      api.showError(err, "Could not load " + u.username);
    }
  }

  /* ------------------------------------------------------------ start */

  async function main() {
    if (!api.requireToken()) return;
    me = await api.get("/api/me");
    $("me").textContent = me.username;
    $("loading").hidden = true;
    if (me.role !== "admin" && me.role !== "reviewer") {
      api.showError("Only an admin or a reviewer may see people.");
      return;
    }
    isAdmin = me.role === "admin";
    $("people").hidden = false;
    if (isAdmin) {
      people = (await api.get("/api/users")).users || [];
      $("add-user-form").hidden = false;
      $("add-user-form").addEventListener("submit", addUser);
      $("link-form").addEventListener("submit", createLink);
      $("link-copy").addEventListener("click", copyLink);
    } else {
      people = await reviewerPeople((await api.get("/api/projects")).projects || []);
      $("people-title").textContent = "Annotators in your projects";
      $("people-note").textContent = "Only an admin may add people, change roles or make login links.";
      $("people-note").hidden = false;
    }
    renderPeople();
    const want = Number(new URLSearchParams(location.search).get("user"));
    const found = people.find(function (u) { return u.id === want; });
    if (found) await openPerson(found);
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("logout").addEventListener("click", function (e) { e.preventDefault(); api.logout(); });
    main().catch(function (err) { if (err.status !== 401) api.showError(err); });
  });
})();
