// The network editor (CodeMirror 6) over a <textarea> that stays the form field. `make install` bundles this file
// with esbuild into digits/static/vendor/codemirror/editor.js, an IIFE that sets window.DIGITSEditor.
//
// DIGITSEditor.attach(textarea, {language, labelledBy, describedBy}) hides the textarea, shows the editor in its
// place and keeps the textarea's value equal to the editor's text on every change, so a form post, a FormData
// (Visualize) and a page without this script all read the same field.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { bracketMatching, indentOnInput, indentUnit, StreamLanguage, syntaxHighlighting } from "@codemirror/language";
import { highlightSelectionMatches, search, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState, StateEffect, StateField } from "@codemirror/state";
import {
  Decoration, drawSelection, EditorView, highlightActiveLine, highlightActiveLineGutter, highlightSpecialChars,
  keymap, lineNumbers,
} from "@codemirror/view";
import { classHighlighter } from "@lezer/highlight";

// Caffe prototxt (protobuf text format): `# comments`, "strings", numbers, `key:` fields, `block {` messages and
// bare enum values (MAX, TRAIN). Indentation follows the braces.
const prototxt = StreamLanguage.define({
  name: "prototxt",
  startState: () => ({ depth: 0 }),
  copyState: (state) => ({ depth: state.depth }),
  token(stream, state) {
    if (stream.eatSpace()) return null;
    const ch = stream.peek();
    if (ch === "#") {
      stream.skipToEnd();
      return "comment";
    }
    if (ch === '"' || ch === "'") {
      stream.next();
      let escaped = false;
      while (!stream.eol()) {
        const c = stream.next();
        if (c === ch && !escaped) break;
        escaped = !escaped && c === "\\";
      }
      return "string";
    }
    if (ch === "{") {
      stream.next();
      state.depth += 1;
      return "brace";
    }
    if (ch === "}") {
      stream.next();
      state.depth = Math.max(0, state.depth - 1);
      return "brace";
    }
    if (stream.match(/^[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?)(?![\w.])/)) return "number";
    const word = stream.match(/^[A-Za-z_][\w.]*/);
    if (word) {
      const rest = stream.string.slice(stream.pos);
      if (/^\s*:/.test(rest)) return "propertyName";
      if (/^\s*\{/.test(rest)) return "typeName";
      if (/^(?:true|false|True|False|t|f)$/.test(word[0])) return "bool";
      if (/^-?(?:inf|infinity|nan)$/i.test(word[0])) return "number";
      return "atom";
    }
    if (ch === ":" || ch === "," || ch === ";" || ch === "[" || ch === "]" || ch === "<" || ch === ">") {
      stream.next();
      return "punctuation";
    }
    stream.next();
    return "invalid";
  },
  indent(state, textAfter, cx) {
    return Math.max(0, state.depth - (/^\s*\}/.test(textAfter) ? 1 : 0)) * cx.unit;
  },
  languageData: { commentTokens: { line: "#" }, indentOnInput: /^\s*\}$/ },
});

const LANGUAGES = { prototxt: () => prototxt, python: () => python() };

// One marked line (an error's): a line decoration, moved with edits, replaced by the next mark.
const markLine = StateEffect.define();
const markDecoration = Decoration.line({ class: "cm-marked-line" });
const markedLine = StateField.define({
  create: () => Decoration.none,
  update(marks, tr) {
    let next = marks.map(tr.changes);
    for (const effect of tr.effects) {
      if (effect.is(markLine)) next = effect.value === null ? Decoration.none : Decoration.set([markDecoration.range(effect.value)]);
    }
    return next;
  },
  provide: (field) => EditorView.decorations.from(field),
});

// Bootstrap's form-control look, fluid width, a height the person can drag; token colours on the stable tok-*
// classes that classHighlighter writes (a test or a stylesheet can name them).
const theme = EditorView.theme({
  "&": {
    height: "28rem",
    minHeight: "8rem",
    resize: "vertical",
    overflow: "hidden",
    width: "100%",
    fontSize: ".875rem",
    color: "var(--bs-body-color)",
    backgroundColor: "var(--bs-body-bg)",
    border: "var(--bs-border-width) solid var(--bs-border-color)",
    borderRadius: "var(--bs-border-radius)",
  },
  "&.cm-focused": { outline: "0", borderColor: "#86b7fe", boxShadow: "0 0 0 .25rem rgba(13, 110, 253, .25)" },
  "&.cm-invalid": { borderColor: "var(--bs-form-invalid-border-color)" },
  ".cm-scroller": { fontFamily: "var(--bs-font-monospace)", overflow: "auto" },
  ".cm-gutters": { backgroundColor: "var(--bs-tertiary-bg)", color: "var(--bs-secondary-color)", borderRight: "var(--bs-border-width) solid var(--bs-border-color)" },
  ".cm-activeLine": { backgroundColor: "rgba(13, 110, 253, .06)" },
  ".cm-activeLineGutter": { backgroundColor: "rgba(13, 110, 253, .15)", color: "var(--bs-body-color)" },
  ".cm-marked-line": { backgroundColor: "rgba(220, 53, 69, .16)", boxShadow: "inset 3px 0 0 var(--bs-danger)" },
  ".tok-comment": { color: "#5c6b77", fontStyle: "italic" },
  ".tok-string, .tok-string2": { color: "#0a6b2c" },
  ".tok-number": { color: "#9c3d00" },
  ".tok-bool, .tok-atom": { color: "#7a3e9d" },
  ".tok-keyword": { color: "#a3135e", fontWeight: "600" },
  ".tok-propertyName": { color: "#0b58a8" },
  ".tok-typeName, .tok-className": { color: "#7a4a00", fontWeight: "600" },
  ".tok-definition": { color: "#0b58a8" },
  ".tok-operator, .tok-punctuation": { color: "#555" },
  ".tok-invalid": { color: "var(--bs-danger)", textDecoration: "underline wavy" },
});

class NetworkEditor {
  constructor(textarea, { language = "prototxt", labelledBy, describedBy } = {}) {
    this.textarea = textarea;
    this.language = new Compartment();
    this.languageName = language;
    const contentAttributes = {};
    if (labelledBy) contentAttributes["aria-labelledby"] = labelledBy;
    if (describedBy) contentAttributes["aria-describedby"] = describedBy;
    // A field the server sent back invalid: the editor's text box is that field now (is-invalid is what the
    // page's error summary looks for when it moves the focus to the first invalid field).
    const invalid = textarea.classList.contains("is-invalid");
    if (invalid) Object.assign(contentAttributes, { class: "is-invalid", "aria-invalid": "true" });
    const state = EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        search({ top: true }),
        indentUnit.of("    "),
        EditorState.tabSize.of(4),
        syntaxHighlighting(classHighlighter),
        // Tab indents; Escape then Tab (or Ctrl-M first) moves the focus on, so the keyboard is never trapped.
        keymap.of([...defaultKeymap, ...historyKeymap, ...searchKeymap, indentWithTab]),
        this.language.of(LANGUAGES[language]()),
        markedLine,
        theme,
        EditorView.contentAttributes.of(contentAttributes),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) this.textarea.value = update.state.doc.toString();
        }),
      ],
    });
    this.view = new EditorView({ state });
    if (invalid) this.view.dom.classList.add("cm-invalid");
    textarea.insertAdjacentElement("afterend", this.view.dom);
    textarea.hidden = true;
    const form = textarea.form;
    if (form) {
      // The listener above already copies each change; these make sure a post never carries stale text.
      form.addEventListener("submit", () => { this.textarea.value = this.text; });
      form.addEventListener("formdata", (ev) => {
        if (this.textarea.name && ev.formData.has(this.textarea.name)) ev.formData.set(this.textarea.name, this.text);
      });
    }
  }

  get text() {
    return this.view.state.doc.toString();
  }

  /** Replaces the whole text (as Customize does); undo brings the previous text back. */
  setText(text) {
    this.view.dispatch({
      changes: { from: 0, to: this.view.state.doc.length, insert: text },
      selection: { anchor: 0 },
      effects: [markLine.of(null), EditorView.scrollIntoView(0)],
    });
    this.textarea.value = text;
  }

  /** "prototxt" or "python". */
  setLanguage(name) {
    if (!(name in LANGUAGES) || name === this.languageName) return;
    this.languageName = name;
    this.view.dispatch({ effects: this.language.reconfigure(LANGUAGES[name]()) });
  }

  /** Puts the cursor on line `n` (1-based, clamped; at `column` if given) and marks the line, scrolling only
   * the editor's own box to it (the page stays where the person is reading). Returns the line number used. */
  reveal(n, column) {
    const doc = this.view.state.doc;
    const line = doc.line(Math.min(Math.max(1, Math.trunc(n) || 1), doc.lines));
    const at = line.from + Math.min(Math.max(0, (column || 1) - 1), line.length);
    this.view.dispatch({ selection: { anchor: at }, effects: markLine.of(line.from) });
    this.view.requestMeasure({
      read: (view) => {
        const block = view.lineBlockAt(at);
        return block.top - (view.scrollDOM.clientHeight - block.height) / 2;
      },
      write: (top, view) => { view.scrollDOM.scrollTop = Math.max(0, top); },
    });
    return line.number;
  }

  /** reveal(), then brings the editor into view and focuses it with the cursor on that line. */
  goToLine(n, column) {
    const number = this.reveal(n, column);
    this.view.dispatch({ effects: EditorView.scrollIntoView(this.view.state.selection.main.head, { y: "center" }) });
    this.view.focus();
    return number;
  }

  clearMark() {
    this.view.dispatch({ effects: markLine.of(null) });
  }

  /** Measures again: the editor may have been laid out while its tab was hidden. */
  refresh() {
    this.view.requestMeasure();
  }

  focus() {
    this.view.focus();
  }
}

window.DIGITSEditor = {
  attach: (textarea, options) => new NetworkEditor(textarea, options),
  languages: Object.keys(LANGUAGES),
};
