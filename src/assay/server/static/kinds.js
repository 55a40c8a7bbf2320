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
