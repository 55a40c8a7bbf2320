/* Project quality page: annotator accuracy and confusion heatmaps, the
 * skill map (skill per annotator and class with intervals, the pairs each
 * one confuses most; GET /api/projects/{id}/skills),
 * Krippendorff's alpha, the consensus-confidence histogram, status counts,
 * and a "Re-fit now" button (admins). Data: GET /api/projects/{id}/quality. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  if (!api.requireToken()) return;

  const SVG = "http://www.w3.org/2000/svg";
  const projectId = Number(location.pathname.split("/").filter(Boolean)[1]);
  const base = "/api/projects/" + encodeURIComponent(projectId);
  let me = null;

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    for (let i = 2; i < arguments.length; i++) node.append(arguments[i]);
    return node;
  }
  function pct(v) { return typeof v === "number" ? (100 * v).toFixed(1) + "%" : "—"; }
  function num(v) { return typeof v === "number" ? v.toLocaleString() : "—"; }
  function fixed(v, d) { return typeof v === "number" ? v.toFixed(d) : "—"; }

  function stat(label, value, key) {
    return el("div", { class: "stat" }, el("dt", { text: label }), el("dd", { "data-stat": key, text: value }));
  }

  /** Confusion matrix as a table; cells shaded by value (0..1), numbers shown. */
  // Shades stay at most 70 % blue so the dark text keeps WCAG AA contrast (axe-core, test_accessibility).
  function heatmap(conf, classes) {
    if (!Array.isArray(conf)) return el("span", { class: "muted small", text: "not in the last re-fit" });
    const head = el("tr", null, el("th", { class: "hm-corner", title: "rows: true class; columns: answer", text: "true \u2193" }));
    classes.forEach(function (c) { head.append(el("th", { class: "hm-col", title: c, text: c })); });
    const rows = conf.map(function (row, i) {
      const tr = el("tr", null, el("th", { class: "hm-row", title: classes[i], text: classes[i] }));
      row.forEach(function (v, j) {
        const a = Math.max(0, Math.min(1, Number(v) || 0));
        const td = el("td", {
          class: "hm-cell" + (i === j ? " hm-diag" : ""),
          title: classes[i] + " \u2192 " + classes[j] + ": " + a.toFixed(3),
          text: a.toFixed(2),
        });
        td.style.backgroundColor = "rgba(47, 111, 235, " + (0.06 + 0.64 * a).toFixed(3) + ")";
        tr.append(td);
      });
      return tr;
    });
    return el("table", { class: "heatmap" }, el("thead", null, head), el("tbody", null, ...rows));
  }

  /** Inline SVG bar chart of the 10-bin confidence histogram. */
  function histogram(h) {
    const counts = h.counts || [];
    const edges = h.edges || [];
    const W = 520, H = 200, padL = 36, padB = 34, padT = 14, n = counts.length || 1;
    const max = Math.max(1, ...counts);
    const bw = (W - padL - 6) / n;
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "histogram", role: "img",
      "aria-label": "histogram of consensus confidence" });
    chart.append(svg("line", { x1: padL, y1: H - padB, x2: W - 4, y2: H - padB, class: "axis" }));
    chart.append(svg("text", { x: padL - 6, y: padT + 4, "text-anchor": "end", class: "tick" }, String(max)));
    chart.append(svg("text", { x: padL - 6, y: H - padB, "text-anchor": "end", class: "tick" }, "0"));
    counts.forEach(function (c, i) {
      const h1 = (H - padB - padT) * c / max;
      const x = padL + i * bw + 2;
      const bar = svg("rect", { x: x, y: H - padB - h1, width: bw - 4, height: Math.max(h1, 0), class: "bar-rect",
        "data-count": c });
      bar.append(svg("title", {}, (edges[i] !== undefined ? edges[i].toFixed(1) + "–" + edges[i + 1].toFixed(1) : "") + ": " + c + " items"));
      chart.append(bar);
      if (c > 0) chart.append(svg("text", { x: x + (bw - 4) / 2, y: H - padB - h1 - 3, "text-anchor": "middle", class: "tick" }, String(c)));
      if (edges[i] !== undefined) {
        chart.append(svg("text", { x: padL + i * bw, y: H - padB + 14, "text-anchor": "middle", class: "tick" }, edges[i].toFixed(1)));
      }
    });
    if (edges.length) chart.append(svg("text", { x: padL + n * bw, y: H - padB + 14, "text-anchor": "end", class: "tick" }, "1.0"));
    chart.append(svg("text", { x: padL + (W - padL) / 2, y: H - 4, "text-anchor": "middle", class: "tick" }, "confidence of the consensus label"));
    return chart;
  }

  function render(r) {
    const src = r.source === "refit" ? "last re-fit" + (r.fitted_at ? " (" + new Date(r.fitted_at * 1000).toLocaleString() + ")" : "")
      : r.source === "fit" ? "fitted now (no re-fit stored yet)" : "no answers yet";
    document.getElementById("method").textContent = "Method: " + (r.method === "ds" ? "Dawid-Skene" : r.method) + " · " + src +
      " · classes: " + (r.classes || []).join(", ");
    const alpha = r.agreement ? r.agreement.krippendorff_alpha : null;
    document.getElementById("summary").replaceChildren(
      stat("answers", num(r.answers), "answers"), stat("items answered", num(r.items), "items"),
      stat("annotators", num((r.annotators || []).length), "annotators"),
      stat("Krippendorff's \u03b1", fixed(alpha, 3), "alpha"));
    const sc = r.status_counts || {};
    document.getElementById("statuses").replaceChildren(
      stat("open", num(sc.open), "open"), stat("resolved", num(sc.resolved), "resolved"), stat("review", num(sc.review), "review"));
    const h = r.confidence_histogram || {};
    document.getElementById("hist-source").textContent = h.source === "item_consensus" ? "From the items' running consensus."
      : h.source === "fit" ? "From the posteriors of the fit." : "No items yet.";
    document.getElementById("histogram").replaceChildren(histogram(h));
    /** Accuracy with its 95 % interval and what it rests on; none without a basis. */
    function accuracyCell(a) {
      const b = a.basis || {};
      const on = [];
      if (b.gold) on.push(num(b.gold) + " gold");
      if (b.shared) on.push(num(b.shared) + " shared with others");
      if (b.model) on.push("the model");
      if (a.accuracy === null || a.accuracy === undefined) {
        return el("td", { class: "num muted", "data-basis": "none",
          title: "No gold answers and no item answered by anyone else: nothing to compare this person's answers with." },
          "no basis yet");
      }
      const iv = a.accuracy_interval;
      return el("td", { class: "num", "data-basis": on.length ? "some" : "none",
          title: "Estimated from " + (on.join(", ") || "nothing") + "; 95 % interval." },
        pct(a.accuracy), iv ? el("span", { class: "muted small", text: " (" + pct(iv[0]) + "–" + pct(iv[1]) + ")" }) : "");
    }
    const rows = (r.annotators || []).map(function (a) {
      return el("tr", { "data-user-id": a.user_id },
        el("td", { text: a.username || ("#" + a.user_id) }), el("td", { class: "num", text: num(a.answers) }),
        accuracyCell(a), el("td", null, a.confusion ? heatmap(a.confusion, r.classes || []) : ""));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "4", class: "muted", text: "No answers yet" })));
    document.querySelector("#annotators tbody").replaceChildren(...rows);
    document.getElementById("report").hidden = false;
    const at = r.computed_at ? new Date(r.computed_at * 1000) : new Date();
    document.getElementById("updated").textContent = "computed " + at.toLocaleTimeString() +
      (r.stale ? " · newer answers: a fresh report is being computed, reload in a moment" : "");
  }

  async function load() {
    const r = await api.get(base + "/quality");
    render(r);
    await Promise.all([loadGold(), loadExam(), loadTeaching(), loadReview(), loadModel(), loadSkills(),
      loadLabelErrors()]);
    return r;
  }

  let project = null;

  /** Spans, boxes, polygons: no class report or skill map; skills on known items (quality_known.js) and gold. */
  async function loadKnown(p) {
    ["summary", "histogram", "skills-card", "review-card", "annotators"].forEach(function (id) {
      document.getElementById(id).closest("section").hidden = true;
    });
    document.querySelector(".quality-grid").hidden = true;
    document.getElementById("report").hidden = false;
    await Promise.all([window.AssayKnownSkills.show(base, p), loadGold(), window.AssayReviewMarks.show(base, p)]);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  /** Learning curve: the model's accuracy on verified labels against the answers spent. */
  function learningCurve(versions) {
    const pts = versions.filter(function (v) { return typeof v.answers === "number"; });
    const W = 520, H = 220, padL = 40, padB = 36, padT = 12, padR = 10;
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "learning-curve", role: "img",
      "aria-label": "model accuracy against answers spent" });
    const maxX = Math.max(1, ...pts.map(function (v) { return v.answers; }));
    const x = function (a) { return padL + (W - padL - padR) * a / maxX; };
    const y = function (acc) { return H - padB - (H - padB - padT) * acc; };
    chart.append(svg("line", { x1: padL, y1: H - padB, x2: W - padR, y2: H - padB, class: "axis" }));
    chart.append(svg("line", { x1: padL, y1: padT, x2: padL, y2: H - padB, class: "axis" }));
    [0, 0.5, 1].forEach(function (t) {
      chart.append(svg("text", { x: padL - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, (100 * t) + "%"));
    });
    chart.append(svg("text", { x: W - padR, y: H - padB + 14, "text-anchor": "end", class: "tick" }, String(maxX)));
    chart.append(svg("text", { x: padL + (W - padL) / 2, y: H - 4, "text-anchor": "middle", class: "tick" }, "answers spent"));
    [["validation_accuracy", "curve-validation"], ["oof_accuracy", "curve-oof"]].forEach(function (s) {
      const ok = pts.filter(function (v) { return typeof v[s[0]] === "number"; });
      if (!ok.length) return;
      chart.append(svg("polyline", { class: s[1], fill: "none",
        points: ok.map(function (v) { return x(v.answers) + "," + y(v[s[0]]); }).join(" ") }));
      ok.forEach(function (v) {
        const dot = svg("circle", { cx: x(v.answers), cy: y(v[s[0]]), r: 3, class: s[1] + " curve-point",
          "data-version": v.version });
        dot.append(svg("title", {}, "version " + v.version + ": " + pct(v[s[0]]) + " after " + v.answers + " answers"));
        chart.append(dot);
      });
    });
    return chart;
  }

  async function loadModel() {
    const m = await api.get(base + "/model");
    const card = document.getElementById("model-card");
    if (!m.versions.length) { card.hidden = true; return; }
    const last = m.versions[m.versions.length - 1];
    document.getElementById("model-summary").textContent = "Version " + last.version + " on " + num(last.n_train) +
      " verified labels · validation accuracy " + pct(last.validation_accuracy) + " (out of fold " + pct(last.oof_accuracy) +
      ") · auto-labels " + (last.auto_state === "on" ? "on above " + pct(last.threshold) : last.auto_state) +
      " · " + num(m.auto_labeled) + " items auto-labeled. Blue: validation accuracy; grey: out of fold.";
    document.getElementById("learning-curve").replaceChildren(learningCurve(m.versions));
    card.hidden = false;
  }

  /** Skill map: annotators (rows) by classes (columns), each cell the chance the
   *  annotator answers the class when it is the truth, shaded, with its 90 % interval;
   *  the last column names the pairs they confuse most. */
  async function loadSkills(after) {
    const more = after !== undefined && after !== null;
    const m = await api.get(base + "/skills" + (more ? "?after=" + encodeURIComponent(after) : ""));
    const b = m.truth_basis || {};
    document.getElementById("skills-basis").textContent = "Scored on " + num(b.gold) + " gold items, " + num(b.review) +
      " reviewed items and " + num(b.consensus) + " items whose label from the answers is at least " +
      pct(m.min_confidence) + " sure. Each cell: how often the annotator answers the class when it is the truth, " +
      "with a 90 % interval; few answers lean on the annotator's overall accuracy and the crowd's usual mistakes. " +
      "\u2691 columns: the share right on the gold items of a named nuance.";
    const classes = m.classes || [];
    const head = el("tr", null, el("th", { text: "annotator" }));
    classes.forEach(function (c) { head.append(el("th", { class: "num", text: c })); });
    const nuances = m.nuances || [];
    nuances.forEach(function (n) {
      head.append(el("th", { class: "num nuance-head", title: "nuance: " + n.nuance + " (" + n.items + " gold items)",
        text: "\u2691 " + n.nuance }));
    });
    head.append(el("th", { text: "confuses most" }));
    if (!more) document.querySelector("#skills thead").replaceChildren(head);
    const rows = (m.annotators || []).map(function (a) {
      const tr = el("tr", { "data-user-id": a.user_id }, el("td", { text: a.username || ("#" + a.user_id) }));
      a.classes.forEach(function (c) {
        const v = Math.max(0, Math.min(1, c.skill));
        const td = el("td", { class: "num skill-cell", "data-class": c.class,
            "data-skill": v.toFixed(4),
            title: a.username + " on " + c.class + ": " + pct(c.skill) + " (90 % interval " + pct(c.interval[0]) + "–" +
              pct(c.interval[1]) + ", " + c.answers + " answers)" },
          el("span", { text: pct(c.skill) }),
          el("span", { class: "skill-interval", text: pct(c.interval[0]) + "–" + pct(c.interval[1]) }));
        td.style.backgroundColor = "rgba(47, 111, 235, " + (0.06 + 0.64 * v).toFixed(3) + ")";
        tr.append(td);
      });
      nuances.forEach(function (n) {
        const r = (n.annotators || []).find(function (x) { return x.user_id === a.user_id; });
        if (!r) { tr.append(el("td", { class: "num muted", "data-nuance": n.nuance, text: "\u2014" })); return; }
        const v = Math.max(0, Math.min(1, r.skill));
        const td = el("td", { class: "num skill-cell", "data-nuance": n.nuance,
            "data-skill": v.toFixed(4),
            title: a.username + " on " + n.nuance + ": " + pct(r.skill) + " right (90 % interval " + pct(r.interval[0]) +
              "\u2013" + pct(r.interval[1]) + ", " + r.answers + " gold answers)" },
          el("span", { text: pct(r.skill) }),
          el("span", { class: "skill-interval", text: pct(r.interval[0]) + "\u2013" + pct(r.interval[1]) }));
        td.style.backgroundColor = "rgba(47, 111, 235, " + (0.06 + 0.64 * v).toFixed(3) + ")";
        tr.append(td);
      });
      const pairs = (a.confused || []).filter(function (c) { return c.low >= 0.05; });
      tr.append(el("td", { class: "small", "data-confused": pairs.map(function (c) { return c.truth + ">" + c.answer; }).join(",") },
        pairs.length ? pairs.map(function (c) { return c.truth + " → " + c.answer + " " + pct(c.rate); }).join(" · ")
          : "no sure mistake"));
      return tr;
    });
    if (!rows.length && !more) {
      rows.push(el("tr", null, el("td", { colspan: String(classes.length + nuances.length + 2), class: "muted",
        text: "No answers on items with a known label yet" })));
    }
    const tbody = document.querySelector("#skills tbody");
    if (more) tbody.append(...rows); else tbody.replaceChildren(...rows);
    // a page of annotators at a time (by user id): the next on demand
    const button = document.getElementById("skills-more");
    button.hidden = m.next_after === null || m.next_after === undefined;
    button.onclick = function () { button.disabled = true; loadSkills(m.next_after).finally(function () { button.disabled = false; }); };
  }

  /** Gold record per annotator; admins can lift a pause. */
  async function loadGold() {
    const g = await api.get(base + "/annotators/gold");
    const bar = project && project.gold_min_accuracy;
    document.getElementById("gold-settings").textContent = (project && project.has_gold
      ? "Gold questions are mixed into " + pct(project.gold_rate) + " of each annotator's tasks. "
      : "No gold questions imported yet. ") +
      (bar ? "Annotators below " + pct(bar) + " after " + project.gold_min_answers + " gold answers are paused."
        : "Nobody is paused automatically (no accuracy bar set).");
    const rows = (g.annotators || []).map(function (a) {
      const status = el("td", { class: a.paused ? "paused" : "" });
      if (a.paused) {
        status.append(el("span", { class: "badge badge-warn", text: "paused" }));
        if (me && me.role === "admin") {
          const btn = el("button", { type: "button", class: "btn btn-small", "data-lift": a.user_id, text: "Lift pause" });
          btn.addEventListener("click", async function () {
            btn.disabled = true;
            try { await api.post(base + "/annotators/" + a.user_id + "/unpause"); await loadGold(); }
            catch (err) { btn.disabled = false; api.showError(err, "Could not lift the pause"); }
          });
          status.append(" ", btn);
        }
      } else status.textContent = "active";
      return el("tr", { "data-user-id": a.user_id },
        el("td", { text: a.username }), el("td", { class: "num", text: num(a.answers) }),
        el("td", { class: "num", text: pct(a.accuracy) }),
        el("td", { class: "num", text: a.window_correct + " / " + a.window_answers }), status);
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "5", class: "muted", text: "No gold answers yet" })));
    document.querySelector("#gold tbody").replaceChildren(...rows);
  }

  /** The qualification exam: each annotator's attempts and status; admins grant another attempt. */
  async function loadExam() {
    const card = document.getElementById("exam-card");
    card.hidden = !(project && typeof project.exam_size === "number");
    if (card.hidden) return;
    const x = await api.get(base + "/exam");
    document.getElementById("exam-settings").textContent = x.exam_size + " questions per attempt from " +
      x.exam_items + " exam items; " + pct(x.exam_pass) + " right passes; " + x.exam_retries +
      " more attempt(s) after a fail." + (x.exam_items ? "" : " Import gold with purpose 'exam' first.");
    const rows = (x.annotators || []).map(function (a) {
      const status = el("td", { "data-status": a.status });
      const label = { open: "taking it", passed: "passed", failed: "failed" }[a.status] || a.status;
      status.append(el("span", { class: a.status === "failed" ? "badge badge-warn" : "badge", text: label }));
      if (a.status === "failed" && me && me.role === "admin") {
        const btn = el("button", { type: "button", class: "btn btn-small", "data-grant": a.user_id, text: "Grant an attempt" });
        btn.addEventListener("click", async function () {
          btn.disabled = true;
          try { await api.post(base + "/annotators/" + a.user_id + "/exam/reset"); await loadExam(); }
          catch (err) { btn.disabled = false; api.showError(err, "Could not grant an attempt"); }
        });
        status.append(" ", btn);
      }
      const scores = a.attempts.map(function (t) { return t.score === null ? "…" : pct(t.score); }).join(" · ");
      return el("tr", { "data-user-id": a.user_id },
        el("td", { text: a.username }), status, el("td", { class: "num", text: num(a.attempts.length) }),
        el("td", { class: "num", text: scores || "—" }), el("td", { class: "num", text: pct(a.best_score) }),
        el("td", { class: "num", text: num(a.attempts_left) }));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "6", class: "muted", text: "Nobody has started the exam yet" })));
    document.querySelector("#exam tbody").replaceChildren(...rows);
  }

  /** A share right with its 90 % interval ("—" without checks). */
  function side(s) {
    if (!s || s.skill === null) return "—";
    return pct(s.skill) + " (" + s.right + "/" + s.checks + "; " + pct(s.interval[0]) + "\u2013" + pct(s.interval[1]) + ")";
  }
  function change(c) {
    if (!c || c.skill === null) return "—";
    const pts = function (v) { return (v >= 0 ? "+" : "") + (100 * v).toFixed(1); };
    return pts(c.skill) + " pts (" + pts(c.interval[0]) + " to " + pts(c.interval[1]) + ")";
  }

  /** Teaching by nuance: who is taught what, skill before vs after with 90 % intervals, pooled. */
  async function loadTeaching() {
    const card = document.getElementById("teach-card");
    card.hidden = !(project && typeof project.teach_bar === "number");
    if (card.hidden) return;
    const x = await api.get(base + "/teaching");
    const items = Object.keys(x.teaching_items || {}).map(function (k) { return k + " (" + x.teaching_items[k] + ")"; });
    document.getElementById("teach-settings").textContent = "A nuance is taught when the 90 % interval of an " +
      "annotator's skill on its hidden checks lies below " + pct(x.teach_bar) + " (after " + x.min_checks +
      " checks, and on their own answers alone too); " + pct(x.teach_rate) + " of their next tasks are then teaching items, " + x.teach_items +
      " per nuance. Teaching items: " + (items.length ? items.join(", ") : "none yet: import gold with purpose 'teach'") + ".";
    const pooled = x.project;
    document.getElementById("teach-pooled").textContent = pooled
      ? "Project, over " + pooled.needs + " nuance(s) taught: change " + change(pooled.change_since_detection) +
        " (checks after the weakness was found " + side(pooled.since_detection) + " \u2192 after teaching " +
        side(pooled.after) + "). Counting the checks that found the weakness too: before " + side(pooled.before) +
        ", change " + change(pooled.change) + " \u2014 this one overstates the effect (those checks were " +
        "picked for being low)."
      : "Nothing taught yet.";
    const label = { open: "being taught", taught: "taught, measuring", measured: "measured" };
    const rows = (x.needs || []).map(function (n) {
      return el("tr", { "data-user-id": n.user_id, "data-nuance": n.nuance },
        el("td", { text: n.username }), el("td", { text: n.nuance }),
        el("td", { "data-status": n.status }, el("span", { class: "badge", text: label[n.status] || n.status })),
        el("td", { class: "num", text: n.taught + (n.practice_right === null ? "" : " (" + n.practice_right + ")") }),
        el("td", { class: "num", "data-before": "", text: side(n.before) }),
        el("td", { class: "num", "data-after": "", text: side(n.after) }),
        el("td", { class: "num", "data-change": "", text: change(n.change) }),
        el("td", { class: "num", "data-change-since": "", text: change(n.change_since_detection) }));
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "8", class: "muted", text: "No weak nuance found yet" })));
    document.querySelector("#teaching tbody").replaceChildren(...rows);
  }

  /** One button per class; a click records a reviewer's final label for the item. */
  function decideButtons(li, itemId) {
    return api.decideButtons(base, li, itemId, project ? project.schema.classes.map(function (c) { return c.name; }) : []);
  }

  /** The first items of the review queue, each with one button per class. */
  async function loadReview() {
    const q = await api.get(base + "/consensus?status=review&limit=20");
    const list = document.getElementById("review");
    const itemText = await api.itemTexts((q.items || []).map(function (it) { return it.item_id; }));
    const entries = (q.items || []).map(function (it) {
      const li = el("li", { class: "review-item", "data-item-id": it.item_id },
        el("p", { class: "review-text", text: itemText(it.item_id) }),
        el("p", { class: "muted small", text: it.answers + " answers · leaning " + it.label + " (" + pct(it.confidence) + ")" }));
      const widget = window.AssayKinds.forProject(project);
      if (widget && widget.quality) li.append(decideButtons(li, it.item_id));
      return li;
    });
    if (!entries.length) entries.push(el("li", { class: "muted", text: "The review queue is empty." }));
    list.replaceChildren(...entries);
  }

  /** Probable label errors (GET /label-errors): the items whose label is most
   * probably wrong, each with one button per class. Hidden where the
   * project's kind has no such ranking (the API says so with a 400). */
  async function loadLabelErrors() {
    const card = document.getElementById("errors-card");
    let r;
    try { r = await api.get(base + "/label-errors?limit=20"); } catch (err) {
      if (err.status === 400) { card.hidden = true; return; }
      throw err;
    }
    card.hidden = false;
    document.getElementById("errors-summary").textContent = r.items_scored.toLocaleString() + " labelled items scored (" +
      (r.method === "crowd" ? "consensus of the answers with the model" : "each answer against the model") + "); " +
      r.flagged.toLocaleString() + " flagged. Most probably wrong first; your decision is final and counts like gold.";
    const itemText = await api.itemTexts(r.items.map(function (it) { return it.item_id; }));
    const entries = r.items.map(function (it) {
      const li = el("li", { class: "review-item", "data-item-id": it.item_id, "data-flagged": String(it.flagged) },
        el("p", { class: "review-text", text: itemText(it.item_id) }),
        el("p", { class: "muted small", text: (it.flagged ? "flagged · " : "") + "labelled " + it.label + " · quality " +
          fixed(it.quality, 3) + " · else " + it.suggested + " · " + it.answers + " answers" }));
      li.append(decideButtons(li, it.item_id));
      return li;
    });
    if (!entries.length) entries.push(el("li", { class: "muted", text: "No labelled item to score yet." }));
    document.getElementById("errors").replaceChildren(...entries);
  }

  async function refit() {
    const btn = document.getElementById("refit");
    const state = document.getElementById("refit-state");
    btn.disabled = true;
    state.textContent = "Re-fitting…";
    try {
      const before = (await api.get(base + "/quality")).fitted_at;
      await api.post(base + "/quality/refit");
      for (let i = 0; i < 60; i++) {
        await new Promise(function (ok) { setTimeout(ok, 500); });
        const r = await api.get(base + "/quality");
        if (r.source === "refit" && r.fitted_at !== before) { render(r); state.textContent = "Re-fit done."; return; }
      }
      state.textContent = "Re-fit still running; reload later.";
    } catch (err) {
      state.textContent = "";
      api.showError(err, "Re-fit failed");
    } finally {
      btn.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", async function () {
    document.getElementById("logout").addEventListener("click", function (e) {
      e.preventDefault();
      api.logout();
    });
    try {
      me = await api.get("/api/me");
      document.getElementById("me").textContent = me.username + " (" + me.role + ")";
      if (me.role !== "admin" && me.role !== "reviewer") {
        api.showError("This page is for admins and reviewers.");
        return;
      }
      const btn = document.getElementById("refit");
      if (me.role === "admin") btn.addEventListener("click", refit);
      else { btn.disabled = true; btn.title = "Only an admin may re-fit"; }
      const p = project = await api.get(base);
      document.getElementById("project-title").textContent = "Quality · " + p.name;
      document.title = "Quality · " + p.name + " · assay";
      if (window.AssayKnownSkills.kinds.indexOf(p.schema.kind) >= 0) await loadKnown(p);
      else await load();
    } catch (err) {
      if (err.status !== 401) api.showError(err);
    } finally {
      document.getElementById("loading").hidden = true;
    }
  });
})();
