// New-model form: the chosen network method and lr policy show their fields; "Customize" loads a standard
// network's text into the editor.
"use strict";
(function () {
  const form = document.getElementById("model-form");
  const checked = (name) => (form.querySelector(`input[name="${name}"]:checked`) || {}).value;

  function sync() {
    const method = checked("method");
    const framework = checked("framework");
    form.querySelectorAll("[data-method]").forEach((el) => { el.hidden = el.dataset.method !== method; });
    const policy = document.getElementById("lr_policy").value;
    form.querySelectorAll("[data-policy]").forEach((el) => { el.hidden = el.dataset.policy !== policy; });
    form.querySelectorAll("#standard-networks tr[data-frameworks]").forEach((tr) => {
      const ok = tr.dataset.frameworks.split(" ").includes(framework);
      tr.classList.toggle("text-muted", !ok);
      tr.querySelectorAll("input, button").forEach((el) => { el.disabled = !ok; });
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
