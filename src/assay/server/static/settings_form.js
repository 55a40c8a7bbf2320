/* A project's settings as form controls, built from GET /api/settings/schema
 * (assay.engine.settings.schema(): name, JSON-schema type and bounds,
 * default, description, changeable, at_create), never from a hand-kept list
 * of fields. Used by the project page (every setting; fixed ones disabled)
 * and the new-project wizard (the settings creation takes).
 *
 *   AssaySettingsForm.build(host, rows, values, opts) -> [controls]
 *     host    an element to append one <p> per setting to
 *     rows    the schema rows to show
 *     values  current values by name (missing: the row's default)
 *     opts    { prefix: id prefix ("set-"), disabled(row) -> bool }
 *   AssaySettingsForm.read(host) -> { name: value } of its enabled controls
 *     (empty -> null; numbers as numbers; arrays from comma-separated text)
 */
(function () {
  "use strict";

  function typeOf(schema) {
    if (schema.type) return schema.type;
    const first = (schema.anyOf || []).find(function (s) { return s.type && s.type !== "null"; });
    return first ? first.type : "string";
  }

  function control(row, value, id, disabled) {
    const t = typeOf(row.schema || {});
    const box = document.createElement("input");
    box.id = id;
    box.name = row.name;
    box.type = t === "number" || t === "integer" ? "number" : "text";
    if (t === "number") box.step = "any";
    box.value = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(",") : String(value);
    box.disabled = !!disabled;
    box.dataset.type = t;
    box.dataset.setting = row.name;
    return box;
  }

  function build(host, rows, values, opts) {
    opts = opts || {};
    const prefix = opts.prefix || "set-";
    const disabled = opts.disabled || function () { return false; };
    values = values || {};
    return rows.map(function (row) {
      const id = prefix + row.name;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = row.name + (disabled(row) ? " (fixed)" : "");
      const help = document.createElement("small");
      help.className = "muted";
      help.id = id + "-help";
      help.textContent = " " + (row.description || "");
      const value = Object.prototype.hasOwnProperty.call(values, row.name) ? values[row.name] : row.default;
      const box = control(row, value, id, disabled(row));
      box.setAttribute("aria-describedby", help.id);
      const p = document.createElement("p");
      p.className = "setting";
      p.append(label, " ", box, help);
      host.append(p);
      return box;
    });
  }

  function readOne(box) {
    const v = box.value.trim();
    if (v === "") return null;
    const t = box.dataset.type;
    if (t === "number" || t === "integer") return Number(v);
    if (t === "array") return v.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    if (t === "boolean") return v === "true";
    return v;
  }

  function read(host) {
    const body = {};
    host.querySelectorAll("input[data-setting]:not([disabled])").forEach(function (box) {
      body[box.name] = readOne(box);
    });
    return body;
  }

  window.AssaySettingsForm = { build: build, read: read, typeOf: typeOf };
})();
