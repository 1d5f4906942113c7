// New-model form: the chosen network method and lr policy show their fields; "Customize" loads a standard or
// previous network's text into the editor; a previous model's snapshots to start from; random search's fields.
"use strict";

// The custom network's editor: CodeMirror (vendor/codemirror/editor.js) over the textarea, which stays the form
// field; without that script the textarea is the editor and these calls act on it.
const NetworkField = (function () {
  const textarea = document.getElementById("custom_network");
  const editor = window.DIGITSEditor
    ? window.DIGITSEditor.attach(textarea, {
      language: "prototxt",
      labelledBy: "custom_network-label",
      describedBy: ["custom_network-keys", textarea.getAttribute("aria-describedby")].filter(Boolean).join(" "),
    })
    : null;
  if (editor) {
    document.getElementById("custom_network-keys").hidden = false;
    // The label names the editor; a click on it focuses the editor as it would the textarea.
    document.getElementById("custom_network-label").addEventListener("click", (ev) => {
      ev.preventDefault();
      editor.focus();
    });
  }

  // Where line `n` (1-based) starts and ends in `text`.
  function lineRange(text, n) {
    let start = 0;
    for (let i = 1; i < n; i++) {
      const next = text.indexOf("\n", start);
      if (next < 0) break;
      start = next + 1;
    }
    const end = text.indexOf("\n", start);
    return [start, end < 0 ? text.length : end];
  }

  return {
    editor,
    setText(text) {
      if (editor) editor.setText(text);
      else textarea.value = text;
    },
    setFramework(framework) {
      if (editor) editor.setLanguage(framework === "torch" ? "python" : "prototxt");
    },
    refresh() { if (editor) editor.refresh(); },
    focus() { if (editor) editor.focus(); else textarea.focus(); },
    // Marks line `n` and shows it inside the editor, without moving the page or the focus.
    reveal(n, column) { if (editor) editor.reveal(n, column); },
    // Moves the cursor to line `n`, shows and focuses it.
    goToLine(n, column) {
      if (editor) return editor.goToLine(n, column);
      const [start, end] = lineRange(textarea.value, n);
      textarea.focus();
      textarea.setSelectionRange(start, end);
      return n;
    },
  };
})();

// "line 12" or "line 12, column 5" where a network error message starts (after "val stage: " for a Caffe
// network's other stages): the form's checks write them so.
function errorLine(message) {
  const m = /^(?:\w+ stage: )?line (\d+)(?:, column (\d+))?/.exec(message.trim());
  return m ? { line: Number(m[1]), column: m[2] ? Number(m[2]) : undefined } : null;
}

function goToLineButton(line, column) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "btn btn-sm btn-outline-danger ms-2 py-0";
  button.textContent = `Go to line ${line}`;
  button.dataset.gotoLine = String(line);
  button.addEventListener("click", () => NetworkField.goToLine(line, column));
  return button;
}

(function () {
  const form = document.getElementById("model-form");
  const checked = (name) => (form.querySelector(`input[name="${name}"]:checked`) || {}).value;

  // Without the 'code' permission a PyTorch network cannot be written or reused as Python: the Custom tab,
  // Customize and previous models with Python code are off for that framework, and the note says why.
  // getAttribute: on a form, .dataset is the control named "dataset" (the dataset select), not the data-* map.
  const codeAllowed = form.getAttribute("data-code-allowed") !== "0";

  function syncCode(framework) {
    const noCode = framework === "torch" && !codeAllowed;
    const custom = document.getElementById("method-custom");
    custom.disabled = noCode;
    form.querySelector('label[for="method-custom"]').classList.toggle("disabled", noCode);
    if (noCode && custom.checked) document.getElementById("method-standard").checked = true;
    form.querySelectorAll("#previous_networks option[data-code]").forEach((o) => {
      o.disabled = noCode;
      if (noCode && o.selected) o.selected = false;
    });
    const note = document.getElementById("code-refusal");
    if (note) note.hidden = !noCode;
    return noCode;
  }

  function sync() {
    const framework = checked("framework");
    const noCode = syncCode(framework);
    const method = checked("method");
    form.querySelectorAll("[data-method]").forEach((el) => { el.hidden = el.dataset.method !== method; });
    const policy = document.getElementById("lr_policy").value;
    form.querySelectorAll("[data-policy]").forEach((el) => { el.hidden = el.dataset.policy !== policy; });
    form.querySelectorAll("#standard-networks tr[data-frameworks]").forEach((tr) => {
      const ok = tr.dataset.frameworks.split(" ").includes(framework);
      tr.classList.toggle("text-muted", !ok);
      tr.querySelectorAll("input, button").forEach((el) => { el.disabled = !ok; });
      tr.querySelectorAll("[data-customize]").forEach((el) => { el.disabled = !ok || noCode; });
    });
    const previous = document.getElementById("previous_networks").selectedOptions[0];
    document.getElementById("customize-previous").disabled = !previous || !previous.value || previous.disabled
      || (previous.dataset.code === "1" && !codeAllowed);
    NetworkField.setFramework(framework);
    if (method === "custom") NetworkField.refresh();
  }
  form.addEventListener("change", sync);
  sync();

  // Opens `url`'s network text in the editor, on the Custom tab, with `framework` chosen.
  function customize(url, framework, button) {
    const status = document.getElementById("customize-status");
    status.textContent = "";
    fetch(DIGITS.url(url))
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`${r.status} ${r.statusText}`))))
      .then((text) => {
        document.getElementById(`framework-${framework}`).checked = true;
        document.getElementById("method-custom").checked = true;
        sync();
        NetworkField.setText(text);
        NetworkField.focus();
      })
      .catch((err) => {
        status.textContent = `Could not load the network (${err.message}).`;
        button.focus();
      });
  }

  form.querySelectorAll("[data-customize]").forEach((button) => {
    button.addEventListener("click", () => {
      const framework = checked("framework");
      customize(`/models/networks/${framework}/${button.dataset.customize}`, framework, button);
    });
  });
  document.getElementById("customize-previous").addEventListener("click", (ev) => {
    const option = document.getElementById("previous_networks").selectedOptions[0];
    if (!option || !option.value) return;
    const framework = option.dataset.framework;
    const file = framework === "torch" ? "network.py" : "network.prototxt";
    customize(`/models/${encodeURIComponent(option.value)}/${file}`, framework, ev.currentTarget);
  });

  // The server named a line of the custom network in its error: mark it, and offer to go there.
  const feedback = document.getElementById("custom_network-error");
  const where = feedback && errorLine(feedback.textContent);
  if (where) {
    feedback.appendChild(goToLineButton(where.line, where.column));
    NetworkField.reveal(where.line, where.column);
  }
  // The error list's link to this field leads to the editor (the textarea is hidden under it), at the line.
  if (feedback && NetworkField.editor) {
    document.querySelectorAll('#form-errors a[href="#custom_network"]').forEach((a) => {
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        if (where) NetworkField.goToLine(where.line, where.column);
        else NetworkField.focus();
      });
    });
  }
})();

// Visualize: the chosen network as a graph with shapes, or the layer at fault.
(function () {
  const form = document.getElementById("model-form");
  const box = document.getElementById("network-graph");
  document.getElementById("visualize").addEventListener("click", () => {
    const data = new FormData(form);
    const fromEditor = data.get("method") === "custom";
    if (!fromEditor) data.delete("custom_network");
    box.textContent = "Drawing…";
    fetch(DIGITS.url("/models/visualize/json"), { method: "POST", body: data, headers: { Accept: "application/json" } })
      .then((r) => r.json().then((js) => ({ ok: r.ok, js })))
      .then(({ ok, js }) => {
        if (!ok) {
          const alert = document.createElement("div");
          alert.className = "alert alert-warning py-2";
          alert.setAttribute("role", "alert");
          alert.textContent = js.error ? js.error.message : "Cannot draw this network.";
          box.replaceChildren(alert);
          return;
        }
        // An error in the editor's text: its line is marked there, and the message offers to go to it.
        const line = fromEditor && js.error && js.error.line;
        NetworkGraph.draw(box, js, line ? { errorAction: () => goToLineButton(js.error.line, js.error.column) } : {});
        if (line) NetworkField.reveal(js.error.line, js.error.column);
      });
  });
})();

// The lr policy preview: the learning rate across the run, redrawn when a policy field changes.
(function () {
  const form = document.getElementById("model-form");
  const svg = document.getElementById("lr-preview");
  const caption = document.getElementById("lr-preview-caption");
  const fields = ["learning_rate", "lr_policy", "lr_step_size", "lr_step_gamma", "lr_multistep_values",
    "lr_multistep_gamma", "lr_exp_gamma", "lr_inv_gamma", "lr_inv_power", "lr_poly_power", "lr_sigmoid_step",
    "lr_sigmoid_gamma"];
  let timer = null;
  function redraw() {
    const params = new URLSearchParams();
    fields.forEach((f) => { const el = form.elements[f]; if (el && el.value !== "") params.set(f, el.value); });
    fetch(DIGITS.url("/models/lr_policy/json?" + params)).then((r) => r.json().then((js) => ({ ok: r.ok, js })))
      .then(({ ok, js }) => {
        svg.replaceChildren();
        if (!ok) { caption.textContent = js.error ? js.error.message : "Cannot preview this policy."; return; }
        const max = Math.max(...js.points.map((p) => p[1])) || 1;
        const pts = js.points.map(([pct, lr]) => `${(pct * 3).toFixed(1)},${(88 - (lr / max) * 84).toFixed(1)}`).join(" ");
        const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
        line.setAttribute("points", pts);
        svg.appendChild(line);
        const last = js.points[js.points.length - 1][1];
        caption.textContent = `${js.policy}: ${js.points[0][1].toPrecision(3)} at the start, ${last.toPrecision(3)} at the end`;
      });
  }
  form.addEventListener("input", (ev) => {
    if (fields.includes(ev.target.name)) { clearTimeout(timer); timer = setTimeout(redraw, 200); }
  });
  form.addEventListener("change", (ev) => { if (fields.includes(ev.target.name)) redraw(); });
  redraw();
})();

// Random search's fields show while it is on (without scripts they always show; the server ignores them when off).
(function () {
  const toggle = document.getElementById("sweep_random");
  const fields = document.getElementById("random-search-fields");
  if (!toggle || !fields) return;
  const sync = () => { fields.hidden = !toggle.checked; };
  toggle.addEventListener("change", sync);
  sync();
})();

// The previous model's snapshot to start from: DIGITS' field `<id>-snapshot` (an epoch; 0 none; -1 the weights that
// model started from), a select of the chosen model's epochs, the latest chosen.
(function () {
  const previous = document.getElementById("previous_networks");
  const box = document.getElementById("previous-snapshot-box");
  const select = box && box.querySelector("select[data-previous-snapshot]");
  if (!previous || !select) return;
  const label = document.getElementById("previous-snapshot-label");
  let shownFor = previous.value;

  function fill() {
    const option = previous.selectedOptions[0];
    const id = option ? option.value : "";
    if (id === shownFor && select.options.length) return; // the server's (it keeps a choice the form came back with)
    shownFor = id;
    select.replaceChildren();
    box.hidden = !id;
    if (!id) {
      select.removeAttribute("name");
      return;
    }
    const field = `${id}-snapshot`;
    select.name = field;
    select.id = field;
    label.htmlFor = field;
    const epochs = JSON.parse(option.dataset.snapshots || "[]");
    epochs.slice().reverse().forEach((epoch, i) => {
      select.appendChild(new Option(`Epoch ${epoch}${i === 0 ? " (latest)" : ""}`, epoch, i === 0, i === 0));
    });
    select.appendChild(new Option("None: start from random weights", "0", !epochs.length, !epochs.length));
    if (option.dataset.pretrained === "1") select.appendChild(new Option("The weights it started from", "-1"));
  }
  previous.addEventListener("change", fill);
  fill();
})();

// A Caffe solver.prototxt fills the Solver fields (read by the server: /models/solver/json), and says what it
// converted and what the form takes elsewhere.
(function () {
  const form = document.getElementById("model-form");
  const input = document.getElementById("solver_file");
  const status = document.getElementById("solver-file-status");
  if (!form || !input || !status) return;
  const say = (text, bad) => { status.textContent = text; status.classList.toggle("text-danger", !!bad); };
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) return;
    const data = new FormData();
    data.append("csrf_token", form.elements.csrf_token.value);
    data.append("solver_file", file);
    say("Reading the solver…");
    fetch(DIGITS.url("/models/solver/json"), {
      method: "POST", body: data, headers: { Accept: "application/json" }, credentials: "same-origin",
    }).then((r) => r.json().then((js) => ({ ok: r.ok, js }))).then(({ ok, js }) => {
      if (!ok) { say((js.error && js.error.message) || "This solver file cannot be read.", true); return; }
      const filled = [];
      Object.entries(js.fields).forEach(([name, value]) => {
        const el = form.elements[name];
        if (!el) return;
        el.value = value;
        el.dispatchEvent(new Event("change", { bubbles: true }));
        const label = form.querySelector(`label[for="${CSS.escape(el.id)}"]`);
        filled.push(label ? label.textContent.trim() : name);
      });
      const notes = js.notes.length ? " " + js.notes.join(" ") : "";
      const what = filled.length ? `Filled from ${file.name}: ${filled.join(", ")}.` : `${file.name} sets none of these.`;
      say(what + notes);
    }).catch(() => say("The server could not be reached; try again.", true));
  });
})();
