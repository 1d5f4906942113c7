// New-model form: the chosen network method and lr policy show their fields; "Customize" loads a standard
// network's text into the editor.
"use strict";
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
  }
  form.addEventListener("change", sync);
  sync();

  form.querySelectorAll("[data-customize]").forEach((button) => {
    button.addEventListener("click", () => {
      const framework = checked("framework");
      fetch(DIGITS.url(`/models/networks/${framework}/${button.dataset.customize}`))
        .then((r) => (r.ok ? r.text() : Promise.reject(r)))
        .then((text) => {
          document.getElementById("custom_network").value = text;
          document.getElementById("method-custom").checked = true;
          sync();
          document.getElementById("custom_network").focus();
        });
    });
  });
})();

// Visualize: the chosen network as a graph with shapes, or the layer at fault.
(function () {
  const form = document.getElementById("model-form");
  const box = document.getElementById("network-graph");
  document.getElementById("visualize").addEventListener("click", () => {
    const data = new FormData(form);
    if (data.get("method") !== "custom") data.delete("custom_network");
    box.textContent = "Drawing…";
    fetch(DIGITS.url("/models/visualize/json"), { method: "POST", body: data, headers: { Accept: "application/json" } })
      .then((r) => r.json().then((js) => ({ ok: r.ok, js })))
      .then(({ ok, js }) => {
        if (!ok) {
          box.textContent = js.error ? js.error.message : "Cannot draw this network.";
          return;
        }
        NetworkGraph.draw(box, js);
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
