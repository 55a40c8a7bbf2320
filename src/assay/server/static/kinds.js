/* Label kinds in the browser: one widget per kind (the server's
 * assay.kinds `widget`, sent as `project.widget`).
 *
 * A widget says how answers of its kind are chosen and shown:
 *   title           how people call the kind ("single label")
 *   multiple        several classes make one answer (select, then submit);
 *                   otherwise choosing a class is the answer
 *   quality         the quality page and review decisions apply (one class per answer)
 *   names(label)    the class names a label holds, or null if it is not a label of the kind
 *   label(names)    the label to send for the chosen class names
 *   keysHelp, suggestionHint   the annotator screen's help lines
 *
 * A new kind registers its widget here with AssayKinds.register(name, widget).
 *
 * Editors: a widget whose answer is marked on the item itself (spans, boxes)
 * also has mount(host, ctx), which returns an editor; label.js then shows no
 * text or image of its own but calls:
 *   widget.mount(host, ctx) -> editor
 *     host  an empty <div id="item-editor"> in the item card (emptied again
 *           when the item leaves the screen)
 *     ctx   { item, project, classes: [{name, description}],
 *             keys: the key of class i (its own key, else "1".."9", "0"; or null),
 *             content: a Promise of the item's text (text items) or of its
 *                      image's object URL (image items),
 *             previous: the label being redone after an undo, or null,
 *             suggestion: the model's pre-label (the item's prediction, the
 *                      same for every task of the item, gold included), or
 *                      null; the editor starts from it when previous is null
 *                      and marks it as suggested,
 *             status(text): say something in the status line,
 *             submit(): submit editor.answer(), as Enter does }
 *   editor.answer()   the label to send, or null when there is none yet (it
 *                     says why through ctx.status)
 *   editor.pick(i)    class i was chosen (its button or its key)
 *   editor.key(e)     a keydown, offered before label.js's own keys (skip,
 *                     undo, digits, Enter); true if the editor took it
 *   editor.destroy()  the item leaves the screen (optional)
 * Such a widget sets multiple: true (Enter and the Submit button send
 * editor.answer()). Its code lives in its own file (static/spans.js …),
 * loaded by label.html before label.js; the entry here delegates to it.
 */
(function () {
  "use strict";
  const WIDGETS = {};

  function register(name, widget) {
    WIDGETS[name] = Object.freeze(Object.assign({ name: name }, widget));
    return WIDGETS[name];
  }

  register("single", {
    title: "single label",
    multiple: false,
    quality: true,
    names: function (label) { return typeof label === "string" ? [label] : null; },
    label: function (names) { return names[0]; },
    keysHelp: "Keys: the class's key (on its button) chooses it · a accept the suggestion · s skip · z undo",
    suggestionHint: "Press a to accept it, or choose another class.",
  });

  register("multi", {
    title: "multi-label",
    multiple: true,
    quality: false,
    names: function (label) {
      if (typeof label === "string") return [label];
      return Array.isArray(label) ? label.slice() : null;
    },
    label: function (names) { return names.slice(); },
    keysHelp: "Keys: the class's key (on its button) toggles it · a take the suggestion · Enter submit · s skip · z undo",
    suggestionHint: "Press a to select the suggested classes (then Enter), or choose your own.",
  });

  register("spans", {
    title: "text spans",
    multiple: true,
    quality: false,
    names: function () { return null; }, // no class-name suggestions for spans
    label: function () { return null; },
    keysHelp: "Select text with the mouse (or ←/→ move by word, Shift+←/→ extend), then its class's key; " +
      "or pick a class first, then select · click a span, Delete removes it · n no entity · Enter submit · s skip · z undo",
    suggestionHint: "The model's spans are marked: adjust them, then Enter (a takes them as they are).",
    mount: function (host, ctx) { return window.AssaySpans.mount(host, ctx); },
  });

  ["boxes", "polygons"].forEach(function (kind) { // the editors live in static/shapes.js
    register(kind, {
      title: kind === "boxes" ? "bounding boxes" : "polygons",
      multiple: true,
      quality: false,
      names: function () { return null; }, // no class-name suggestions for shapes
      label: function () { return null; },
      keysHelp: window.AssayShapes ? window.AssayShapes.keysHelp[kind] : "",
      suggestionHint: "The model's shapes are drawn: adjust them, then Enter (a takes them as they are).",
      mount: function (host, ctx) { return window.AssayShapes.mount(kind, host, ctx); },
    });
  });

  /** The widget for a project: the one the server named, else the one named
   * like its kind; null when this page has none. */
  function forProject(project) {
    const schema = (project && project.schema) || {};
    return WIDGETS[project && project.widget] || WIDGETS[schema.kind] || null;
  }

  /** How people call a project's kind ("single label", "multi-label", else its name). */
  function title(project) {
    const w = forProject(project);
    return w ? w.title : String(((project && project.schema) || {}).kind || "");
  }

  window.AssayKinds = { register: register, get: function (name) { return WIDGETS[name] || null; },
    forProject: forProject, title: title };
})();
