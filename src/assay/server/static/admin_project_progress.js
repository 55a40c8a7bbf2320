/* One project's live progress (issue 16 part 6): answers per hour, seconds per
 * item, agreement with the final label and the model's accuracy over time,
 * for the project or one annotator. Reads GET /api/projects/{id}/progress/series
 * every few seconds and redraws in place (no reload). Each chart is an SVG
 * with a text summary and a table holding the same numbers. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  const m = /\/admin\/projects\/(\d+)/.exec(location.pathname);
  if (!m) return;
  const base = "/api/projects/" + m[1];
  const POLL_MS = 3000;
  const SVGNS = "http://www.w3.org/2000/svg";
  const W = 480, H = 160, L = 44, R = 8, T = 10, B = 24;
  const BUCKETS = { minute: 60, hour: 48, day: 30 };
  const CHARTS = [
    ["per_hour", "Answers per hour", "bars", function (v) { return num(v, 1); }],
    ["seconds_per_item", "Seconds per item", "line", function (v) { return num(v, 1) + " s"; }],
    ["agreement", "Agreement with the final label", "line", pct],
    ["model", "Model accuracy (out-of-fold)", "points", pct],
  ];
  let root = null, data = null, timer = null, busy = false, again = false;
  const charts = {};

  function num(v, d) { return typeof v === "number" ? v.toLocaleString(undefined, { maximumFractionDigits: d || 0 }) : "—"; }
  function pct(v) { return typeof v === "number" ? (100 * v).toFixed(1) + "%" : "—"; }
  function svg(tag, attrs) {
    const n = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    return n;
  }
  function when(t) {
    const d = new Date(t * 1000);
    if (data && data.bucket === "day") return d.toLocaleDateString();
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function buildChart(spec) {
    const id = "chart-" + spec[0];
    const c = { spec: spec };
    c.svg = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-labelledby": id + "-cap" });
    c.caption = el("figcaption", { id: id + "-cap", class: "small", "data-summary": spec[0] });
    c.tbody = el("tbody");
    const table = el("table", { class: "annotators chart-table", "data-table": spec[0] },
      el("caption", { class: "small muted", text: spec[1] + " per bucket" }),
      el("thead", null, el("tr", null, el("th", { scope: "col", text: spec[0] === "model" ? "trained" : "from" }),
        el("th", { scope: "col", class: "num", text: spec[1] }))), c.tbody);
    c.root = el("figure", { class: "chart card", id: id },
      el("h3", { class: "card-title", text: spec[1] }), c.svg, c.caption,
      el("details", null, el("summary", { text: "Show as a table" }), table));
    return c;
  }

  /** [[x, y], …] of the chart's series for who (null: the project). */
  function points(key, who) {
    if (key === "model") {
      return (data.model || []).filter(function (v) { return typeof v.oof_accuracy === "number"; })
        .map(function (v) { return [v.trained_at, v.oof_accuracy, "v" + v.version]; });
    }
    const s = who === null ? data.series : ((data.annotators.find(function (a) { return String(a.user_id) === who; }) || {}).series || []);
    return s.map(function (p) { return [p.start, p[key]]; });
  }

  function draw(c, pts) {
    const spec = c.spec, fmt = spec[3];
    const unit = spec[0] === "agreement" || spec[0] === "model";
    const ys = pts.map(function (p) { return p[1]; }).filter(function (v) { return typeof v === "number"; });
    const maxY = unit ? 1 : Math.max(1, ...ys);
    const x0 = data.since, x1 = data.since + data.series.length * data.seconds;
    const x = function (t) { return L + (W - L - R) * (t - x0) / Math.max(1, x1 - x0); };
    const y = function (v) { return H - B - (H - B - T) * v / maxY; };
    const nodes = [];
    [0, 0.5, 1].forEach(function (f) {
      nodes.push(svg("line", { x1: L, x2: W - R, y1: y(f * maxY), y2: y(f * maxY), stroke: "#d0d4da", "stroke-width": 1 }));
      const t = svg("text", { x: L - 4, y: y(f * maxY) + 4, "text-anchor": "end", "font-size": 10, fill: "#444" });
      t.textContent = unit ? Math.round(100 * f) + "%" : num(f * maxY, maxY < 10 ? 1 : 0);
      nodes.push(t);
    });
    const first = svg("text", { x: L, y: H - 6, "font-size": 10, fill: "#444" });
    first.textContent = when(x0);
    const last = svg("text", { x: W - R, y: H - 6, "font-size": 10, fill: "#444", "text-anchor": "end" });
    last.textContent = "now";
    nodes.push(first, last);
    const bw = (W - L - R) / Math.max(1, data.series.length);
    const ok = pts.filter(function (p) { return typeof p[1] === "number"; });
    if (spec[2] === "bars") {
      ok.forEach(function (p) {
        nodes.push(svg("rect", { x: x(p[0]) + 1, y: y(p[1]), width: Math.max(1, bw - 2), height: H - B - y(p[1]), fill: "#3b6fb6" }));
      });
    } else {
      const off = spec[2] === "points" ? 0 : bw / 2;
      if (ok.length > 1) {
        nodes.push(svg("polyline", { fill: "none", stroke: "#3b6fb6", "stroke-width": 2,
          points: ok.map(function (p) { return (x(p[0]) + off) + "," + y(p[1]); }).join(" ") }));
      }
      ok.forEach(function (p) { nodes.push(svg("circle", { cx: x(p[0]) + off, cy: y(p[1]), r: 3, fill: "#3b6fb6" })); });
    }
    c.svg.replaceChildren.apply(c.svg, nodes);
    c.caption.textContent = summary(spec, ok, fmt);
    const rows = (spec[0] === "model" ? ok : pts).map(function (p) {
      return el("tr", null, el("td", { text: (p[2] ? p[2] + " · " : "") + when(p[0]) }), el("td", { class: "num", text: fmt(p[1]) }));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "2", class: "muted", text: "No data in this window" })));
    c.tbody.replaceChildren.apply(c.tbody, rows);
  }

  function summary(spec, ok, fmt) {
    if (!ok.length) return spec[1] + ": no data in this window.";
    const lastP = ok[ok.length - 1];
    const vals = ok.map(function (p) { return p[1]; });
    return spec[1] + ": latest " + fmt(lastP[1]) + " (" + when(lastP[0]) + "); lowest " + fmt(Math.min(...vals)) +
      ", highest " + fmt(Math.max(...vals)) + " over " + ok.length + (spec[0] === "model" ? " model versions." : " buckets.");
  }

  function renderStats(who) {
    const w = who === null ? data.window : (data.annotators.find(function (a) { return String(a.user_id) === who; }) || {});
    root.querySelector("[data-stat=answers]").textContent = num(w.answers);
    root.querySelector("[data-stat=per_hour]").textContent = num(w.per_hour, 1);
    root.querySelector("[data-stat=seconds_per_item]").textContent = typeof w.seconds_per_item === "number" ? num(w.seconds_per_item, 1) + " s" : "—";
    root.querySelector("[data-stat=agreement]").textContent = data.agreement_measured ? pct(w.agreement) : "n/a";
  }

  function renderAnnotators() {
    const select = root.querySelector("#progress-who");
    const keep = select.value;
    const opts = [el("option", { value: "", text: "Whole project" })];
    data.annotators.forEach(function (a) { opts.push(el("option", { value: String(a.user_id), text: a.username || ("user " + a.user_id) })); });
    if (select.options.length !== opts.length || Array.from(select.options).some(function (o, i) { return o.value !== opts[i].value; })) {
      select.replaceChildren.apply(select, opts);
      select.value = opts.some(function (o) { return o.value === keep; }) ? keep : "";
    }
    const rows = data.annotators.map(function (a) {
      return el("tr", { "data-user-id": a.user_id }, el("th", { scope: "row", text: a.username || String(a.user_id) }),
        el("td", { class: "num", text: num(a.answers) }), el("td", { class: "num", text: num(a.per_hour, 1) }),
        el("td", { class: "num", text: num(a.seconds_per_item, 1) }),
        el("td", { class: "num", text: data.agreement_measured ? pct(a.agreement) : "n/a" }));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "5", class: "muted", text: "No answers in this window" })));
    const tbody = root.querySelector("#progress-annotators tbody");
    tbody.replaceChildren.apply(tbody, rows);
  }

  function render() {
    const who = root.querySelector("#progress-who").value || null;
    renderAnnotators();
    renderStats(root.querySelector("#progress-who").value || null);
    CHARTS.forEach(function (spec) { draw(charts[spec[0]], points(spec[0], spec[0] === "model" ? null : who)); });
    root.querySelector("#progress-note").textContent = (data.agreement_measured ? "" :
      "Agreement is measured for one-class projects only; the quality page scores this kind. ") +
      "Updated " + new Date().toLocaleTimeString() + ".";
  }

  async function refresh() {
    if (busy) { again = true; return; } // a change during a read: read once more after it
    busy = true;
    const bucket = root.querySelector("#progress-bucket").value;
    try {
      const who = root.querySelector("#progress-who").value;
      // only the annotator on show brings their per-bucket series (100 annotators' would be ~580 KB)
      data = await api.get(base + "/progress/series?bucket=" + bucket + "&buckets=" + BUCKETS[bucket] +
        "&series_of=" + (who ? encodeURIComponent(who) : "none"));
      render();
    } catch (err) {
      if (err.status !== 401) api.showError(err, "Live progress");
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (document.hidden) return; // resumes on visibilitychange
      refresh().then(schedule);
    }, POLL_MS);
  }

  function build() {
    const stats = el("dl", { class: "stats" });
    [["answers", "answers in window"], ["per_hour", "answers per hour"], ["seconds_per_item", "time per item"],
      ["agreement", "agreement"]].forEach(function (s) {
      stats.append(el("div", { class: "stat" }, el("dt", { text: s[1] }), el("dd", { "data-stat": s[0], text: "—" })));
    });
    const bucket = el("select", { id: "progress-bucket" },
      el("option", { value: "minute", text: "last hour, per minute" }),
      el("option", { value: "hour", text: "last 2 days, per hour", selected: true }),
      el("option", { value: "day", text: "last 30 days, per day" }));
    const who = el("select", { id: "progress-who" }, el("option", { value: "", text: "Whole project" }));
    bucket.addEventListener("change", function () { refresh(); });
    who.addEventListener("change", function () { refresh(); });
    const grid = el("div", { class: "quality-grid" });
    CHARTS.forEach(function (spec) { charts[spec[0]] = buildChart(spec); grid.append(charts[spec[0]].root); });
    root.replaceChildren(
      el("h2", { class: "card-title", text: "Live progress" }),
      el("div", { class: "filters" },
        el("label", { for: "progress-bucket", text: "Window " }), bucket,
        el("label", { for: "progress-who", text: " Show " }), who),
      stats, grid,
      el("table", { class: "annotators", id: "progress-annotators" },
        el("caption", { class: "small muted", text: "Per annotator, over the window" }),
        el("thead", null, el("tr", null, el("th", { scope: "col", text: "annotator" }),
          el("th", { scope: "col", class: "num", text: "answers" }), el("th", { scope: "col", class: "num", text: "per hour" }),
          el("th", { scope: "col", class: "num", text: "seconds per item" }), el("th", { scope: "col", class: "num", text: "agreement" }))),
        el("tbody")),
      el("p", { id: "progress-note", class: "muted small", "aria-live": "off" }));
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("progress");
    if (!root || !api.getToken()) return;
    build();
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh().then(schedule); });
    refresh().then(schedule);
  });
})();
