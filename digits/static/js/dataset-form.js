// New-dataset form: show the fields of the chosen method, optional folders, a server-folder picker, and a preview
// of what a chosen folder holds (its classes and image counts, a warning when it looks like the wrong folder).
"use strict";
(function () {
  const form = document.getElementById("dataset-form");

  function sync() {
    const method = form.querySelector('input[name="method"]:checked').value;
    form.querySelectorAll("[data-method]").forEach((el) => { el.hidden = el.dataset.method !== method; });
    form.querySelectorAll("[data-method-not]").forEach((el) => { el.hidden = el.dataset.methodNot === method; });
    form.querySelectorAll("[data-show-if]").forEach((el) => {
      el.hidden = !document.getElementById(el.dataset.showIf).checked;
    });
    // Compression is HDF5's (an LMDB is never compressed); HDF5 holds raw pixels, so the encoding is not used.
    const backend = form.elements.backend.value;
    form.querySelectorAll("[data-backend]").forEach((el) => { el.hidden = el.dataset.backend !== backend; });
    form.elements.encoding.disabled = backend === "hdf5";
  }
  form.addEventListener("change", sync);
  sync();

  function renderPicker(box, input, data) {
    box.replaceChildren();
    const body = document.createElement("div");
    body.className = "card-body py-2";
    const here = document.createElement("div");
    here.className = "small text-muted mb-2";
    here.textContent = data.path || "Data roots";
    body.appendChild(here);
    const list = document.createElement("div");
    list.className = "list-group list-group-flush folder-list";
    const add = (text, path) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "list-group-item list-group-item-action py-1";
      b.textContent = text;
      b.addEventListener("click", () => load(box, input, path));
      list.appendChild(b);
    };
    if (data.parent) add("⬑ ..", data.parent);
    data.folders.forEach((f) => add(f.name + "/", f.path));
    if (!data.folders.length) {
      const none = document.createElement("div");
      none.className = "text-muted small";
      none.textContent = "No subfolders.";
      list.appendChild(none);
    }
    body.appendChild(list);
    if (data.path) {
      const use = document.createElement("button");
      use.type = "button";
      use.className = "btn btn-sm btn-primary mt-2";
      use.textContent = "Use this folder";
      use.addEventListener("click", () => {
        input.value = data.path;
        box.classList.add("d-none");
        input.dispatchEvent(new Event("change", { bubbles: true }));
        input.focus();
      });
      body.appendChild(use);
    }
    box.appendChild(body);
    const first = box.querySelector("button");
    if (first) first.focus();
  }

  function load(box, input, path) {
    fetch(DIGITS.url("/datasets/folders/json?path=" + encodeURIComponent(path || "")))
      .then((r) => r.json().then((data) => ({ ok: r.ok, data })))
      .then(({ ok, data }) => {
        if (!ok) {
          box.textContent = data.error ? data.error.message : "Cannot list that folder.";
          box.classList.add("p-2", "text-danger");
          return;
        }
        box.classList.remove("p-2", "text-danger");
        renderPicker(box, input, data);
      });
  }

  // The preview under a folder field, asked for when the typed path settles or the field changes.
  function previewer(input) {
    const box = document.getElementById(input.dataset.folderPreview);
    let timer = null;
    let asked = null;

    function fill(path) {
      input.value = path;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      input.focus();
    }

    function render(data) {
      box.replaceChildren();
      const error = document.getElementById(input.id + "-error");
      if (!data.ok && error && error.textContent === data.problem) return;  // said beside the field already
      const line = document.createElement("div");
      line.className = data.ok ? "folder-preview-summary" : "folder-preview-problem text-body-secondary";
      line.textContent = data.ok ? data.summary : data.problem;
      box.appendChild(line);
      const warning = data.ok && data.warning;
      if (!warning) return;
      const alert = document.createElement("div");
      alert.className = "alert alert-warning folder-preview-warning text-break py-2 px-3 mt-1 mb-0";
      alert.dataset.kind = warning.kind;
      alert.append(warning.message);
      warning.suggestions.forEach((path) => {
        const use = document.createElement("button");
        use.type = "button";
        use.className = "btn btn-sm btn-outline-primary text-break text-start ms-2 mt-1";
        use.textContent = "Use " + path;
        use.addEventListener("click", () => fill(path));
        alert.append(" ", use);
      });
      box.appendChild(alert);
    }

    function ask() {
      clearTimeout(timer);
      const path = input.value.trim();
      if (path === asked) return;
      asked = path;
      if (!/^[/~]/.test(path)) {  // nothing that could be a server folder yet
        box.replaceChildren();
        return;
      }
      box.setAttribute("aria-busy", "true");
      fetch(DIGITS.url("/datasets/folders/preview/json?path=" + encodeURIComponent(path)))
        .then((r) => r.json())
        .then((data) => {
          if (input.value.trim() !== path) return;  // typed on meanwhile: a newer answer is coming
          render(data.error ? { ok: false, problem: data.error.message } : data);
        })
        .catch(() => box.replaceChildren())  // no answer (the page is being left, the server went away): no preview
        .finally(() => box.removeAttribute("aria-busy"));
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(ask, 400);
    });
    input.addEventListener("change", ask);
    if (input.value.trim()) ask();
  }
  form.querySelectorAll("[data-folder-preview]").forEach(previewer);

  form.querySelectorAll("[data-folder-picker]").forEach((button) => {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.folderPicker);
      const box = form.querySelector(`[data-picker-for="${button.dataset.folderPicker}"]`);
      box.classList.toggle("d-none");
      if (!box.classList.contains("d-none")) load(box, input, input.value);
    });
  });
})();
