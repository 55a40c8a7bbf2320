/* The text-span editor (label kind "spans"): marks entity spans on an item's
 * text; the answer is [[start, end, class], ...] (character offsets, end
 * exclusive), [] for "no entity". Mounted by label.js through the widget
 * registered in kinds.js (see its header for mount / answer / pick / key).
 *
 * Marking: select text with the mouse, then the class's key (or pick the
 * class first, then select: every selection becomes a span of it). Keyboard:
 * ←/→ move a caret by word, Shift+←/→ extend the selection, a class key
 * labels it. Selections snap to whole words. Click a span to select it:
 * Delete/Backspace removes it, a class key changes its class. n answers
 * "no entity" (with no span marked), Escape drops the selection.
 */
(function () {
  "use strict";

  const WORD = /[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;
  const HUES = [210, 30, 130, 280, 0, 180, 60, 330, 100, 250];

  function colour(i, alpha) { return "hsla(" + HUES[i % HUES.length] + ", 85%, 60%, " + alpha + ")"; }

  function tokensOf(text) {
    const out = [];
    let m;
    WORD.lastIndex = 0;
    while ((m = WORD.exec(text)) !== null) out.push([m.index, m.index + m[0].length]);
    return out;
  }

  function mount(host, ctx) {
    const classes = ctx.classes;
    const allowOverlap = !!((ctx.project && ctx.project.schema) || {}).overlap;
    const index = new Map(classes.map(function (c, i) { return [c.name, i]; }));
    let text = null;
    let tokens = [];
    let spans = [];          // [[start, end, name]], kept sorted
    let pending = null;      // {start, end}: the selection waiting for a class
    let selected = -1;       // index into spans of the clicked span
    let active = -1;         // class picked first: selections become spans of it
    let kb = null;           // keyboard selection {anchor, focus} (token indices)
    let answerNone = false;  // "No entity" was asked for: answer() may give []
    let gone = false;

    const bar = document.createElement("div");
    bar.className = "spans-bar";
    const none = document.createElement("button");
    none.type = "button";
    none.className = "btn btn-small spans-none";
    none.innerHTML = "No entity <kbd>n</kbd>";
    none.addEventListener("mousedown", function (e) { e.preventDefault(); });
    none.addEventListener("click", noEntity);
    const info = document.createElement("span");
    info.className = "spans-info muted small";
    bar.append(none, info);
    const box = document.createElement("div");
    box.className = "spans-text";
    box.setAttribute("aria-label", "Text to mark");
    box.textContent = "Loading…";
    host.append(bar, box);
    document.addEventListener("mouseup", onMouseUp); // a drag may end outside the text

    const start = Array.isArray(ctx.previous) ? ctx.previous : ctx.suggestion; // a redo, else the model's pre-label
    if (start === ctx.suggestion && Array.isArray(start)) {
      host.dataset.suggested = "1"; // the model's spans: the starting answer, marked as suggested
      bar.append(Object.assign(document.createElement("span"), { className: "spans-suggested muted small",
        textContent: "Marked by the model: adjust, then Enter" }));
    }
    if (Array.isArray(start)) {
      spans = start.filter(function (s) { return Array.isArray(s) && s.length === 3; })
        .map(function (s) { return [s[0], s[1], s[2]]; });
      sortSpans();
    }
    ctx.content.then(function (t) {
      if (gone) return;
      text = String(t);
      tokens = tokensOf(text);
      spans = spans.filter(function (s) { return s[1] <= text.length; });
      draw();
    }, function (err) {
      if (!gone) box.textContent = "Could not load the text: " + (err && err.message ? err.message : err);
    });

    function sortSpans() {
      spans.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0); });
    }

    /* ---------- drawing: the text cut at every span and selection boundary ---------- */

    function draw() {
      if (text === null) return;
      const cuts = new Set([0, text.length]);
      spans.forEach(function (s) { cuts.add(s[0]); cuts.add(s[1]); });
      if (pending) { cuts.add(pending.start); cuts.add(pending.end); }
      const at = Array.from(cuts).sort(function (a, b) { return a - b; });
      const frag = document.createDocumentFragment();
      for (let k = 0; k + 1 < at.length; k++) {
        const a = at[k], b = at[k + 1];
        const seg = document.createElement("span");
        seg.className = "seg";
        seg.dataset.start = a;
        seg.textContent = text.slice(a, b);
        const over = [];
        spans.forEach(function (s, i) { if (s[0] <= a && b <= s[1]) over.push(i); });
        if (over.length) {
          const top = over[over.length - 1];
          seg.classList.add("span-mark");
          seg.dataset.span = over.join(" ");
          seg.style.backgroundColor = colour(index.get(spans[top][2]) || 0, 0.35);
          if (over.length > 1) seg.classList.add("is-overlap");
          if (over.indexOf(selected) >= 0) seg.classList.add("is-selected");
        }
        if (pending && pending.start <= a && b <= pending.end) seg.classList.add("is-pending");
        frag.append(seg);
        spans.forEach(function (s, i) { // the class name after a span's last piece
          if (s[1] !== b) return;
          const tag = document.createElement("span");
          tag.className = "span-tag" + (i === selected ? " is-selected" : "");
          tag.dataset.span = String(i);
          tag.dataset.at = String(b);
          tag.textContent = s[2];
          tag.style.backgroundColor = colour(index.get(s[2]) || 0, 0.9);
          frag.append(tag);
        });
      }
      box.replaceChildren(frag);
      host.dataset.spans = JSON.stringify(spans);
      host.dataset.pending = pending ? pending.start + "," + pending.end : "";
      host.dataset.selected = String(selected);
      info.textContent = spans.length + (spans.length === 1 ? " span" : " spans") +
        (active >= 0 ? " · marking " + classes[active].name : "");
      document.querySelectorAll(".class-btn").forEach(function (b) {
        b.classList.toggle("is-selected", active >= 0 && b.dataset.class === classes[active].name);
      });
      const focus = box.querySelector(".is-pending, .span-mark.is-selected");
      if (focus && focus.scrollIntoView) focus.scrollIntoView({ block: "nearest" });
    }

    /* ---------- from the page's selection to character offsets ---------- */

    function offsetOf(node, off) {
      if (node.nodeType === Node.TEXT_NODE) {
        const seg = node.parentElement;
        if (seg && seg.classList.contains("seg")) return Number(seg.dataset.start) + off;
        if (seg && seg.classList.contains("span-tag")) return Number(seg.dataset.at);
        return null;
      }
      if (node === box) {
        const child = box.childNodes[off];
        if (!child) return text.length;
        return child.dataset.at !== undefined ? Number(child.dataset.at) : Number(child.dataset.start);
      }
      if (node.classList && node.classList.contains("seg"))
        return Number(node.dataset.start) + (off > 0 ? node.textContent.length : 0);
      if (node.classList && node.classList.contains("span-tag")) return Number(node.dataset.at);
      return null;
    }

    /** The words a character range touches, as a whole-word range; null if none. */
    function snap(start, end) {
      let a = -1, b = -1;
      tokens.forEach(function (t, i) {
        if (t[1] > start && t[0] < end) { if (a < 0) a = i; b = i; }
      });
      return a < 0 ? null : { start: tokens[a][0], end: tokens[b][1] };
    }

    function onMouseUp(e) {
      if (text === null) return;
      const sel = window.getSelection();
      const range = sel && sel.rangeCount ? sel.getRangeAt(0) : null;
      if (range && !range.collapsed && range.intersectsNode(box)) {
        // an end outside the text is the text's start or end
        const a = box.contains(range.startContainer) ? offsetOf(range.startContainer, range.startOffset) : 0;
        const b = box.contains(range.endContainer) ? offsetOf(range.endContainer, range.endOffset) : text.length;
        sel.removeAllRanges();
        const r = a === null || b === null ? null : snap(Math.min(a, b), Math.max(a, b));
        if (!r) { ctx.status("select some words"); return; }
        kb = null;
        selected = -1;
        offer(r);
        return;
      }
      if (!box.contains(e.target)) return;
      const hit = e.target.closest && e.target.closest("[data-span]");
      if (hit) {
        const on = hit.dataset.span.split(" ").map(Number);
        // a click on a piece covered by several spans cycles through them
        const k = on.indexOf(selected);
        selected = on[(k + 1) % on.length];
        pending = null;
        kb = null;
        draw();
        const s = spans[selected];
        ctx.status("span “" + text.slice(s[0], s[1]) + "” " + s[2] + " · Delete removes it, a class key changes it");
      } else if (selected >= 0 || pending) {
        selected = -1;
        pending = null;
        draw();
      }
    }

    /* ---------- making, changing and removing spans ---------- */

    /** A selection: a span at once when a class is active, else waiting for one. */
    function offer(r) {
      if (active >= 0) { add(r, active); return; }
      pending = r;
      draw();
      ctx.status("“" + text.slice(r.start, r.end) + "” · press its class's key");
    }

    function add(r, ci) {
      const name = classes[ci].name;
      if (spans.some(function (s) { return s[0] === r.start && s[1] === r.end && s[2] === name; })) {
        pending = null; draw(); ctx.status("already marked"); return false;
      }
      if (!allowOverlap) {
        const clash = spans.find(function (s) { return s[0] < r.end && r.start < s[1]; });
        if (clash) {
          ctx.status("refused: it overlaps “" + text.slice(clash[0], clash[1]) + "” (" + clash[2] +
            "); this project does not allow overlapping spans");
          host.dataset.refused = String((Number(host.dataset.refused) || 0) + 1);
          return false;
        }
      }
      spans.push([r.start, r.end, name]);
      sortSpans();
      pending = null;
      kb = null;
      selected = -1;
      draw();
      ctx.status("marked “" + text.slice(r.start, r.end) + "” as " + name);
      return true;
    }

    function removeSelected() {
      const s = spans[selected];
      spans.splice(selected, 1);
      selected = -1;
      draw();
      ctx.status("removed “" + text.slice(s[0], s[1]) + "” (" + s[2] + ")");
    }

    function pick(ci) {
      if (text === null || !classes[ci]) return;
      if (selected >= 0) { // change the class of the selected span
        const s = spans[selected];
        const rest = spans.filter(function (_, i) { return i !== selected; });
        const was = spans;
        spans = rest;
        selected = -1;
        if (!add({ start: s[0], end: s[1] }, ci)) { spans = was; draw(); }
        return;
      }
      if (pending) { add(pending, ci); return; }
      active = active === ci ? -1 : ci; // class first: the next selections are of it
      draw();
      ctx.status(active >= 0 ? "marking " + classes[ci].name + ": select the words" : "no class picked");
    }

    function noEntity() {
      if (text === null) return;
      if (spans.length) { ctx.status("remove the marked spans first (or Enter submits them)"); return; }
      spans = [];
      answerNone = true;
      ctx.submit();
    }

    function answer() {
      if (text === null) { ctx.status("the text is still loading"); return null; }
      if (!spans.length && !answerNone) {
        ctx.status("no span marked: press n (No entity) to say the text has none");
        return null;
      }
      answerNone = false;
      return spans.map(function (s) { return [s[0], s[1], s[2]]; });
    }

    /* ---------- keyboard: a caret that moves by word ---------- */

    function tokenAt(offset) {
      for (let i = 0; i < tokens.length; i++) if (tokens[i][1] > offset) return i;
      return tokens.length - 1;
    }

    function move(dir, extend) {
      if (!tokens.length) return;
      if (!kb) { // start from the selection, the selected span, or an end of the text
        const r = pending || (selected >= 0 ? { start: spans[selected][0], end: spans[selected][1] } : null);
        const from = r ? tokenAt(dir > 0 ? r.end - 1 : r.start) : (dir > 0 ? -1 : tokens.length);
        const i = Math.max(0, Math.min(tokens.length - 1, from + dir));
        kb = { anchor: extend && r ? tokenAt(dir > 0 ? r.start : r.end - 1) : i, focus: i };
      } else {
        const i = Math.max(0, Math.min(tokens.length - 1, kb.focus + dir));
        kb = { anchor: extend ? kb.anchor : i, focus: i };
      }
      const a = Math.min(kb.anchor, kb.focus), b = Math.max(kb.anchor, kb.focus);
      pending = { start: tokens[a][0], end: tokens[b][1] };
      selected = -1;
      draw();
      ctx.status("“" + text.slice(pending.start, pending.end) + "” · a class key marks it");
    }

    function key(e) {
      if (text === null) return false;
      switch (e.key) {
        case "ArrowRight": case "ArrowLeft":
          move(e.key === "ArrowRight" ? 1 : -1, e.shiftKey);
          return true;
        case "Delete": case "Backspace":
          if (selected >= 0) { if (!e.repeat) removeSelected(); return true; }
          if (e.key === "Delete" && pending) { // the caret's span, from the keyboard
            const i = spans.findIndex(function (s) { return s[0] <= pending.start && pending.end <= s[1]; });
            if (i >= 0) { selected = i; removeSelected(); return true; }
          }
          return e.key === "Delete";
        case "Escape":
          pending = null; kb = null; selected = -1; active = -1;
          draw();
          return true;
        case "n": case "N":
          if (!e.repeat) noEntity();
          return true;
      }
      return false;
    }

    return {
      answer: answer,
      pick: pick,
      key: key,
      destroy: function () { gone = true; document.removeEventListener("mouseup", onMouseUp); },
    };
  }

  window.AssaySpans = { mount: mount, tokensOf: tokensOf };
})();
