/* One project's settings (issue 16 part 3): a form built from
 * GET /api/settings/schema by settings_form.js (never a hand-kept list),
 * changeable settings editable, saved with PATCH /api/projects/{id}/settings;
 * the server's error (one sentence naming the setting) shows in #error. */
(function () {
  "use strict";
  const A = window.AssayAPI;
  const F = window.AssaySettingsForm;
  const pid = Number(location.pathname.split("/").pop());

  async function main() {
    A.requireToken();
    const [schema, project] = await Promise.all([A.get("/api/settings/schema"), A.shared("/api/projects/" + pid)]);
    document.getElementById("project-name").textContent = project.name;
    const form = document.getElementById("settings-form");
    const current = project.settings || project;
    const values = {};
    for (const row of schema) if (current[row.name] !== undefined) values[row.name] = current[row.name];
    F.build(form, schema, values, { prefix: "set-", disabled: function (row) { return !row.changeable; } });
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save settings";
    form.append(save);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await A.request("PATCH", "/api/projects/" + pid + "/settings", { body: F.read(form) });
        document.getElementById("settings-status").textContent = "Saved.";
        document.getElementById("error").hidden = true;
      } catch (e) { A.showError(e); }
    });
  }
  main().catch((e) => A.showError(e));
})();
