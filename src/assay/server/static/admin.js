/* Admin dashboard: every project's progress, per-annotator counts, exports.
 * Refreshes every 5 s, updating the page in place. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  if (!api.requireToken()) return;

  const REFRESH_MS = 5000;
  const FORMATS = ["jsonl", "csv", "parquet"];
  const STATS = [
    ["tasks", "tasks"], ["done", "done"], ["remaining", "remaining"],
    ["answers", "answers"], ["in_progress", "in progress"],
  ];
  const cards = new Map(); // project id -> {root, stats:{}, bar, barText, tbody, name, meta}
  let timer = null;
  let busy = false;

  function num(v) { return typeof v === "number" ? v.toLocaleString() : (v === undefined || v === null ? "—" : String(v)); }

  function exportLink(project, format) {
    const path = "/api/projects/" + encodeURIComponent(project.id) + "/export?format=" + format;
    const link = el("a", { href: path, class: "btn btn-small export-link", "data-format": format }, format);
    link.addEventListener("click", async function (e) {
      e.preventDefault();
      if (link.getAttribute("aria-busy") === "true") return;
      link.setAttribute("aria-busy", "true");
      link.textContent = format + "…";
      const safe = String(project.name || "project").replace(/[^\w.-]+/g, "_");
      try {
        await api.download(path, "assay-" + project.id + "-" + safe + "." + format);
      } catch (err) {
        api.showError(err, "Export " + format + " of \u201c" + project.name + "\u201d failed");
      } finally {
        link.removeAttribute("aria-busy");
        link.textContent = format;
      }
    });
    return link;
  }

  function buildCard(project) {
    const c = { stats: {} };
    c.name = el("a", { class: "project-link", href: "/admin/projects/" + encodeURIComponent(project.id) });
    c.meta = el("p", { class: "muted small" });
    const statList = el("dl", { class: "stats" });
    STATS.forEach(function (s) {
      const dd = el("dd", { "data-stat": s[0], text: "—" });
      c.stats[s[0]] = dd;
      statList.append(el("div", { class: "stat" }, el("dt", { text: s[1] }), dd));
    });
    c.bar = el("div", { class: "bar-fill" });
    c.barText = el("span", { class: "small muted" });
    c.tbody = el("tbody");
    const table = el("table", { class: "annotators" },
      el("thead", null, el("tr", null, el("th", { text: "annotator" }),
        el("th", { class: "num", text: "answers" }), el("th", { class: "num", text: "skips" }))),
      c.tbody);
    const exports = el("div", { class: "exports" }, el("span", { class: "small muted", text: "Export:" }));
    FORMATS.forEach(function (f) { exports.append(exportLink(project, f)); });
    c.root = el("section", { class: "card project-card", "data-project-id": project.id },
      el("div", { class: "card-head" }, el("div", null, el("h2", { class: "card-title" }, c.name), c.meta),
        el("div", { class: "card-actions" },
          (window.AssayKinds.forProject(project) || {}).quality
            ? el("a", { class: "btn btn-small quality-link", href: "/quality/" + encodeURIComponent(project.id) }, "Quality")
            : null,
          el("a", { class: "btn btn-small search-link", href: "/search/" + encodeURIComponent(project.dataset_id) +
            "?project=" + encodeURIComponent(project.id) }, "Search"),
          el("a", { class: "btn btn-small map-link", href: "/map/" + encodeURIComponent(project.dataset_id) +
            "?project=" + encodeURIComponent(project.id) }, "Map"),
          el("a", { class: "btn btn-small", href: "/label/" + encodeURIComponent(project.id) }, "Label"))),
      statList,
      el("div", { class: "bar", role: "presentation" }, c.bar), c.barText,
      table, exports);
    return c;
  }

  function updateCard(c, project, progress) {
    const schema = project.schema || {};
    c.name.textContent = project.name;
    c.meta.textContent = "#" + project.id + " · " + window.AssayKinds.title(project) +
      " · " + (schema.classes || []).length + " classes · overlap " + (project.overlap || 1);
    if (!progress) return;
    STATS.forEach(function (s) { c.stats[s[0]].textContent = num(progress[s[0]]); });
    const pct = progress.tasks ? Math.round(100 * (progress.done || 0) / progress.tasks) : 0;
    c.bar.style.width = pct + "%";
    c.barText.textContent = pct + "% complete";
    const rows = (progress.annotators || []).map(function (a) {
      return el("tr", { "data-user-id": a.user_id },
        el("td", { text: a.username }), el("td", { class: "num", text: num(a.answers) }),
        el("td", { class: "num", text: num(a.skips) }));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "3", class: "muted", text: "No answers yet" })));
    c.tbody.replaceChildren.apply(c.tbody, rows);
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const data = await api.get("/api/projects");
      const projects = data.projects || [];
      const progress = await Promise.all(projects.map(function (p) {
        return api.get("/api/projects/" + encodeURIComponent(p.id) + "/progress").catch(function (err) {
          if (err.status === 401) throw err;
          api.showError(err, "Progress of \u201c" + p.name + "\u201d");
          return null;
        });
      }));
      const list = document.getElementById("projects");
      const seen = new Set();
      projects.forEach(function (p, i) {
        const key = String(p.id);
        seen.add(key);
        let c = cards.get(key);
        if (!c) { c = buildCard(p); cards.set(key, c); }
        updateCard(c, p, progress[i]);
        // Keep server order; move nodes only when needed so focus is not lost.
        if (list.children[i] !== c.root) list.insertBefore(c.root, list.children[i] || null);
      });
      cards.forEach(function (c, key) { if (!seen.has(key)) { c.root.remove(); cards.delete(key); } });
      document.getElementById("empty").hidden = projects.length > 0;
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (err) {
      if (err.status !== 401) api.showError(err, "Refresh failed");
    } finally {
      busy = false;
      document.getElementById("loading").hidden = true;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (document.hidden) return; // resumes on visibilitychange
      refresh().then(schedule);
    }, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", async function () {
    document.getElementById("logout").addEventListener("click", function (e) {
      e.preventDefault();
      api.logout();
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh().then(schedule);
    });
    try {
      const me = await api.get("/api/me");
      document.getElementById("me").textContent = me.username + " (" + me.role + ")";
      if (me.role !== "admin" && me.role !== "reviewer") {
        document.getElementById("loading").hidden = true;
        api.showError("This page is for admins and reviewers.");
        return;
      }
    } catch (err) {
      if (err.status !== 401) api.showError(err);
      return;
    }
    await refresh();
    schedule();
  });
})();
