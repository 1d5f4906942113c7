// New-dataset form: show the fields of the chosen method, optional folders, and a server-folder picker.
"use strict";
(function () {
  const form = document.getElementById("dataset-form");

  function sync() {
    const method = form.querySelector('input[name="method"]:checked').value;
    form.querySelectorAll("[data-method]").forEach((el) => { el.hidden = el.dataset.method !== method; });
    form.querySelectorAll("[data-show-if]").forEach((el) => {
      el.hidden = !document.getElementById(el.dataset.showIf).checked;
    });
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
      use.addEventListener("click", () => { input.value = data.path; box.classList.add("d-none"); input.focus(); });
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

  form.querySelectorAll("[data-folder-picker]").forEach((button) => {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.folderPicker);
      const box = form.querySelector(`[data-picker-for="${button.dataset.folderPicker}"]`);
      box.classList.toggle("d-none");
      if (!box.classList.contains("d-none")) load(box, input, input.value);
    });
  });
})();
