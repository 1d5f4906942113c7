// "Test a model" on a model's page: follow a long classification's progress while its page is being made.
"use strict";
(function () {
  const section = document.getElementById("test-model");
  if (!section) return;
  const jobId = section.dataset.jobId;

  // Classify one: a file and a URL are alternatives; choosing one clears the other.
  const file = document.getElementById("classify-one-file");
  const url = document.getElementById("classify-one-url");
  if (file && url) {
    file.addEventListener("change", () => { if (file.value) url.value = ""; });
    url.addEventListener("input", () => { if (url.value) file.value = ""; });
  }

  // Classify many: the browser keeps this page until the result arrives, so show the worker's progress here.
  const form = document.getElementById("classify-many-form");
  if (!form) return;
  const progress = document.getElementById("classify-many-progress");
  const status = document.getElementById("classify-many-status");
  let socket = null;
  form.addEventListener("submit", (ev) => {
    const list = document.getElementById("classify-many-list");
    const zip = document.getElementById("classify-many-zip");
    if (!list.value && !zip.value) {
      ev.preventDefault();
      status.textContent = "Choose an image list or a zip of images first.";
      list.focus();
      return;
    }
    form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = true; });
    // The route is the button's own formaction when it has one (Top-N), else the form's action (Classify many).
    // Read the attribute: a button without one reports the page's own URL as its formAction.
    const submitter = ev.submitter;
    form.action = submitter && submitter.hasAttribute("formaction") ? submitter.formAction : form.dataset.action;
    progress.classList.remove("d-none");
    status.textContent = "Uploading and classifying…";
    if (!socket) {
      socket = DIGITS.live([jobId], {
        inference_progress: (msg) => {
          if (!msg.total) return;
          DIGITS.setProgress(progress.querySelector(".progress-bar"), msg.done / msg.total);
          status.textContent = `${msg.done} of ${msg.total} images`;
        },
      });
    }
  });
  // Coming back with the browser's Back button shows the form ready again.
  window.addEventListener("pageshow", () => {
    form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = false; });
  });
})();
