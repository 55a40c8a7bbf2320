/* One project's exports (issue 16 part 7): choose the format, a slice of the
 * project's dataset, a tag and whether to keep only labelled items; the file
 * streams from GET /api/projects/{id}/export and is saved by the browser. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  const m = /\/admin\/projects\/(\d+)/.exec(location.pathname);
  if (!m) return;
  const base = "/api/projects/" + m[1];
  // every format the export route takes; a kind's own ones say so (the server refuses the others, naming the right ones)
  const FORMATS = [
    ["jsonl", "JSON lines (every answer, the final label and its source)"],
    ["csv", "CSV (spreadsheet-safe)"],
    ["parquet", "Parquet"],
    ["labelstudio", "Label Studio JSON (whole project)"],
    ["spacy", "spaCy JSON lines (spans projects)"],
    ["conll", "CoNLL BIO tags (spans projects)"],
    ["coco", "COCO detection JSON (boxes and polygons; whole project)"],
  ];
  const FILTERED = ["jsonl", "csv", "parquet"]; // the formats a slice, a tag, "labelled only" or sources apply to
  // where a final label comes from (assay.engine.resolver.SOURCES); all ticked: no filter
  const SOURCES = [["gold", "gold"], ["review", "a reviewer"], ["consensus", "consensus"],
    ["auto", "the model (auto-label)"], ["majority", "majority vote"]];
  let root = null, project = null;

  function query() {
    const fmt = root.querySelector("#export-format").value;
    const params = new URLSearchParams({ format: fmt });
    if (FILTERED.indexOf(fmt) >= 0) {
      const slice = root.querySelector("#export-slice").value;
      const tag = root.querySelector("#export-tag").value.trim();
      if (slice) params.set("slice", slice);
      if (tag) params.set("tag", tag);
      if (root.querySelector("#export-labeled").checked) params.set("labeled_only", "true");
      const kept = SOURCES.map(function (x) { return x[0]; })
        .filter(function (name) { return root.querySelector("#export-source-" + name).checked; });
      if (kept.length < SOURCES.length) params.set("sources", kept.join(","));
    }
    return params;
  }

  function syncFilters() {
    const on = FILTERED.indexOf(root.querySelector("#export-format").value) >= 0;
    ["#export-slice", "#export-tag", "#export-labeled"].concat(SOURCES.map(function (x) { return "#export-source-" + x[0]; }))
      .forEach(function (s) { root.querySelector(s).disabled = !on; });
    root.querySelector("#export-filters-note").hidden = on;
  }

  async function download(e) {
    e.preventDefault();
    const params = query();
    const status = root.querySelector("#export-status");
    const btn = root.querySelector("#export-go");
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    status.textContent = "Exporting…";
    const safe = String(project.name || "project").replace(/[^\w.-]+/g, "_");
    try {
      await api.download(base + "/export?" + params.toString(), "assay-" + project.id + "-" + safe + "." + params.get("format"));
      status.textContent = "Downloaded the " + params.get("format") + " export" +
        (params.get("slice") ? " of slice \u201c" + params.get("slice") + "\u201d" : "") +
        (params.get("sources") ? " (labels from " + params.get("sources").split(",").join(", ") + ")" : "") + ".";
    } catch (err) {
      status.textContent = "Export failed: " + api.messageOf(err);
    } finally {
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
    }
  }

  async function loadSlices() {
    const select = root.querySelector("#export-slice");
    const r = await api.get("/api/datasets/" + encodeURIComponent(project.dataset_id) + "/slices");
    const opts = [el("option", { value: "", text: "All items" })];
    (r.slices || []).forEach(function (s) {
      opts.push(el("option", { value: s.name, text: s.name + (typeof s.item_count === "number" ? " (" + s.item_count + " items)" : "") }));
    });
    select.replaceChildren.apply(select, opts);
  }

  function build() {
    const fmt = el("select", { id: "export-format", name: "format" });
    FORMATS.forEach(function (f) { fmt.append(el("option", { value: f[0], text: f[1] })); });
    fmt.addEventListener("change", syncFilters);
    const form = el("form", { id: "export-form" },
      el("div", { class: "filters" },
        el("label", { for: "export-format", text: "Format " }), fmt,
        el("label", { for: "export-slice", text: " Slice " }), el("select", { id: "export-slice", name: "slice" },
          el("option", { value: "", text: "All items" })),
        el("label", { for: "export-tag", text: " Tag " }), el("input", { type: "text", id: "export-tag", name: "tag", maxlength: "64",
          placeholder: "any" }),
        el("label", { for: "export-labeled" }, el("input", { type: "checkbox", id: "export-labeled", name: "labeled_only" }),
          " only items with a final label")),
      el("fieldset", { class: "filters", id: "export-sources" },
        el("legend", { class: "small", text: "Keep items whose final label comes from" }),
        ...SOURCES.map(function (x) {
          return el("label", { for: "export-source-" + x[0] },
            el("input", { type: "checkbox", id: "export-source-" + x[0], "data-source": x[0], checked: true }), " " + x[1] + " ");
        })),
      el("p", { id: "export-filters-note", class: "muted small", hidden: true,
        text: "A slice, a tag, \u201conly labelled\u201d and label sources apply to JSON lines, CSV and Parquet; this format exports the whole project." }),
      el("button", { type: "submit", id: "export-go", class: "btn btn-primary", text: "Download export" }));
    form.addEventListener("submit", download);
    root.replaceChildren(
      el("h2", { class: "card-title", text: "Export" }),
      el("p", { class: "muted small", text: "Each item's final label and where it comes from (label_source: gold, review, consensus, auto or majority), its answers and provenance. The file streams as it is written." }),
      form,
      el("p", { id: "export-status", class: "small", role: "status" }));
    syncFilters();
  }

  document.addEventListener("DOMContentLoaded", async function () {
    root = document.getElementById("export");
    if (!root || !api.getToken()) return;
    try {
      project = await api.shared(base);
      build();
      await loadSlices();
    } catch (err) {
      if (err.status !== 401) api.showError(err, "Export");
    }
  });
})();
