/* One project's members (issue 16 part 4): the members (GET …/members),
 * add one by username, remove one, and the annotators that gold paused with
 * "Lift pause" (GET …/annotators/gold, POST …/annotators/{id}/unpause).
 * Admins only: the section stays hidden for reviewers. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  const m = /\/admin\/projects\/(\d+)/.exec(location.pathname);
  if (!m) return;
  const base = "/api/projects/" + m[1];
  let root = null;

  function status(text) { root.querySelector("#members-status").textContent = text; }

  function memberRow(u, paused) {
    const remove = el("button", { type: "button", class: "btn btn-small", "aria-label": "Remove " + u.username, text: "Remove" });
    remove.addEventListener("click", async function () {
      remove.disabled = true;
      try {
        await api.del(base + "/members/" + u.user_id);
        status("Removed " + u.username + ".");
        await load();
      } catch (err) {
        remove.disabled = false;
        api.showError(err, "Could not remove " + u.username);
      }
    });
    return el("tr", { "data-user-id": u.user_id },
      el("td", null, el("a", { href: "/admin/people?user=" + u.user_id, text: u.username })),
      el("td", { text: u.role }),
      el("td", null, paused ? el("span", { class: "badge badge-warn", text: "paused" }) : "no"),
      el("td", null, remove));
  }

  function pausedRow(a) {
    const lift = el("button", { type: "button", class: "btn btn-small", "data-lift": a.user_id, text: "Lift pause",
      "aria-label": "Lift the pause of " + a.username });
    lift.addEventListener("click", async function () {
      lift.disabled = true;
      try {
        await api.post(base + "/annotators/" + a.user_id + "/unpause");
        status("Lifted the pause of " + a.username + ": a fresh gold window starts.");
        await load();
      } catch (err) {
        lift.disabled = false;
        api.showError(err, "Could not lift the pause of " + a.username);
      }
    });
    const acc = typeof a.accuracy === "number" ? (100 * a.accuracy).toFixed(0) + " %" : "—";
    return el("li", { "data-user-id": a.user_id },
      a.username + " — paused " + (a.paused_at ? new Date(a.paused_at * 1000).toLocaleString() : "") +
      ", gold accuracy " + acc + " over " + (a.answers || 0) + " gold answers ", lift);
  }

  async function load() {
    const [mem, gold] = await Promise.all([api.get(base + "/members"), api.get(base + "/annotators/gold")]);
    const paused = (gold.annotators || []).filter(function (a) { return a.paused; });
    const pausedIds = new Set(paused.map(function (a) { return a.user_id; }));
    const tbody = root.querySelector("#members-list tbody");
    const rows = (mem.members || []).map(function (u) { return memberRow(u, pausedIds.has(u.user_id)); });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "4", class: "muted", text: "No members yet: only admins can work here." })));
    tbody.replaceChildren.apply(tbody, rows);
    const list = root.querySelector("#paused-list");
    const items = paused.map(pausedRow);
    if (!items.length) items.push(el("li", { class: "muted", text: "Nobody is paused." }));
    list.replaceChildren.apply(list, items);
  }

  async function add(e) {
    e.preventDefault();
    const input = root.querySelector("#member-username");
    const name = input.value.trim();
    if (!name) { status("Enter a username."); input.focus(); return; }
    const btn = root.querySelector("#member-add");
    btn.disabled = true;
    try {
      await api.post(base + "/members", { username: name });
      input.value = "";
      status("Added " + name + ".");
      await load();
    } catch (err) {
      status("");
      api.showError(err, "Could not add " + name);
    } finally { btn.disabled = false; }
  }

  function build() {
    const form = el("form", { id: "member-form", class: "filters" },
      el("label", { for: "member-username", text: "Username " }),
      el("input", { id: "member-username", name: "username", autocomplete: "off", autocapitalize: "none", spellcheck: "false" }),
      el("button", { type: "submit", id: "member-add", class: "btn btn-small btn-primary", text: "Add member" }));
    form.addEventListener("submit", add);
    root.replaceChildren(
      el("h2", { class: "card-title", id: "members-title", text: "Members" }),
      el("p", { class: "small" }, "Who may work on this project. Add people first on the ",
        el("a", { href: "/admin/people", text: "People page" }), "."),
      form,
      el("p", { id: "members-status", class: "small", role: "status" }),
      el("div", { class: "table-scroll" }, el("table", { class: "annotators", id: "members-list" },
        el("caption", { class: "small muted", text: "Members of this project" }),
        el("thead", null, el("tr", null, el("th", { scope: "col", text: "username" }),
          el("th", { scope: "col", text: "role" }), el("th", { scope: "col", text: "paused" }),
          el("th", { scope: "col", text: "action" }))), el("tbody"))),
      el("h3", { class: "card-title", text: "Paused annotators" }),
      el("p", { class: "muted small", text: "Gold answers below the project's bar pause an annotator. Lifting the pause starts a fresh gold window." }),
      el("ul", { id: "paused-list" }));
    root.setAttribute("aria-labelledby", "members-title");
  }

  document.addEventListener("DOMContentLoaded", async function () {
    root = document.getElementById("members");
    if (!root || !api.getToken()) return;
    try {
      const me = await api.shared("/api/me");
      if (me.role !== "admin") return; // members are an admin's business
      build();
      root.hidden = false;
      await load();
    } catch (err) {
      if (err.status !== 401) api.showError(err, "Members");
    }
  });
})();
