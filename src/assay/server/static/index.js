/* Home page: who am I, my projects, links to label them. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  if (!api.requireToken()) return;

  function progressText(p) {
    const mine = p.me ? p.me.answers : null;
    const parts = [];
    if (mine !== null && mine !== undefined) parts.push("you: " + mine);
    if (p.remaining !== undefined) parts.push("remaining " + p.remaining);
    return parts.join(" · ");
  }

  function projectRow(project) {
    const id = encodeURIComponent(project.id);
    const schema = project.schema || {};
    const classes = (schema.classes || []).length;
    const stats = el("span", { class: "project-stats muted", "data-role": "stats" });
    const row = el("li", { class: "project-row", "data-project-id": project.id },
      el("div", { class: "project-main" },
        el("span", { class: "project-name", text: project.name }),
        el("span", { class: "muted small", text:
          window.AssayKinds.title(project) + " · " + classes + " classes" }),
        stats),
      el("a", { class: "btn btn-primary label-link", href: "/label/" + id }, "Label"));
    api.get("/api/projects/" + id + "/progress")
      .then(function (p) { stats.textContent = progressText(p); })
      .catch(function () { /* progress is optional here */ });
    return row;
  }

  document.addEventListener("DOMContentLoaded", async function () {
    document.getElementById("logout").addEventListener("click", function (e) {
      e.preventDefault();
      api.logout();
    });
    try {
      const [me, data] = await Promise.all([api.get("/api/me"), api.get("/api/projects")]);
      document.getElementById("me").textContent = me.username + " (" + me.role + ")";
      document.body.dataset.role = me.role;
      document.getElementById("admin-link").hidden = !(me.role === "admin" || me.role === "reviewer");
      const list = document.getElementById("projects");
      const projects = data.projects || [];
      projects.forEach(function (p) { list.append(projectRow(p)); });
      document.getElementById("empty").hidden = projects.length > 0;
      const first = list.querySelector(".label-link");
      if (first) first.focus();
    } catch (err) {
      api.showError(err);
    } finally {
      document.getElementById("loading").hidden = true;
    }
  });
})();
