// A form sent back with errors (templates/_forms.html, error_summary): focus goes to the first field marked
// invalid, so its label and its message are read out; the summary's links move focus to their field too.
"use strict";
(function () {
  const summary = document.getElementById("form-errors");
  if (!summary) return;

  function shown(el) { return el.getClientRects().length > 0; }

  function field(name) {
    const el = document.getElementById(name) || document.querySelector(`[name="${CSS.escape(name)}"]`);
    return el && shown(el) ? el : null;
  }

  summary.querySelectorAll("a[data-field]").forEach((link) => {
    link.addEventListener("click", (ev) => {
      const el = field(link.dataset.field);
      if (!el) return;
      ev.preventDefault();
      el.focus();
    });
  });
  const first = Array.from(document.querySelectorAll(".is-invalid")).find(shown);
  (first || summary).focus();
})();
