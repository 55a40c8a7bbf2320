/* One project's settings (issue 16 part 3): a form built from
 * GET /api/settings/schema (never a hand-kept list), changeable settings
 * editable, saved with PATCH /api/projects/{id}/settings; the server's
 * error (one sentence naming the setting) shows in #error. */
(function () {
  "use strict";
  const A = window.AssayAPI;
  const pid = Number(location.pathname.split("/").pop());

  function input(row, value) {
    const t = row.schema.type || (row.schema.anyOf || [])[0]?.type;
    const box = document.createElement("input");
    box.id = "set-" + row.name;
    box.name = row.name;
    box.type = t === "number" || t === "integer" ? "number" : "text";
    if (t === "number") box.step = "any";
    box.value = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(",") : String(value);
    box.disabled = !row.changeable;
    box.dataset.type = t || "string";
    return box;
  }

  function read(box) {
    const v = box.value.trim();
    if (v === "") return null;
    if (box.dataset.type === "number" || box.dataset.type === "integer") return Number(v);
    if (box.dataset.type === "array") return v.split(",").map((s) => s.trim()).filter(Boolean);
    if (box.dataset.type === "boolean") return v === "true";
    return v;
  }

  async function main() {
    A.requireToken();
    const [schema, project] = await Promise.all([A.get("/api/settings/schema"), A.get("/api/projects/" + pid)]);
    document.getElementById("project-name").textContent = project.name;
    const form = document.getElementById("settings-form");
    const current = project.settings || project;
    for (const row of schema) {
      const label = document.createElement("label");
      label.htmlFor = "set-" + row.name;
      label.textContent = row.name + (row.changeable ? "" : " (fixed)");
      const help = document.createElement("small");
      help.className = "muted";
      help.textContent = " " + row.description;
      const p = document.createElement("p");
      p.append(label, " ", input(row, current[row.name] ?? row.default), help);
      form.append(p);
    }
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save settings";
    form.append(save);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const box of form.querySelectorAll("input:not([disabled])")) body[box.name] = read(box);
      try {
        await A.request("PATCH", "/api/projects/" + pid + "/settings", { body: body });
        document.getElementById("settings-status").textContent = "Saved.";
        document.getElementById("error").hidden = true;
      } catch (e) { A.showError(e); }
    });
  }
  main().catch((e) => A.showError(e));
})();
